"""The generators a harness run compares: names, the tokenizer they must share, variants.

A *variant* is one generator with one set of sampling settings: the default, or a point of a
sweep (diffusion step counts; autoregressive temperature / top-k), which the report places on
a quality-vs-cost Pareto front.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from vtlm.diffusion.flow import SamplerConfig
from vtlm.diffusion.forcing import ForcingSamplerConfig
from vtlm.generate.interface import Generator, load_generator
from vtlm.gpt.sampling import SamplingConfig
from vtlm.maskgit.sampling import MaskGITSamplingConfig


@dataclass
class SamplingSettings:
    """Default sampling of each family, and the sweeps run on the sweep protocol."""

    gpt: SamplingConfig = dataclasses.field(default_factory=lambda: SamplingConfig(top_k=100, cfg_scale=3.0))
    diffusion: SamplerConfig = dataclasses.field(
        default_factory=lambda: SamplerConfig(steps=25, cfg_scale=3.0)
    )
    # Diffusion solver steps swept on the sweep protocol (empty: no sweep).
    diffusion_steps: list[int] = dataclasses.field(default_factory=lambda: [10, 25, 50])
    # Autoregressive temperatures swept on the sweep protocol (empty: no sweep).
    gpt_temperatures: list[float] = dataclasses.field(default_factory=lambda: [0.7, 1.0])
    forcing: ForcingSamplerConfig = dataclasses.field(
        default_factory=lambda: ForcingSamplerConfig(steps=25, cfg_scale=3.0)
    )
    # Frame-causal diffusion: context noise levels swept on the sweep protocol (empty: no sweep).
    forcing_context_noise: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.3])
    maskgit: MaskGITSamplingConfig = dataclasses.field(
        default_factory=lambda: MaskGITSamplingConfig(steps=8, cfg_scale=3.0)
    )
    # Masked-decoding unmasking steps swept on the sweep protocol (empty: no sweep).
    maskgit_steps: list[int] = dataclasses.field(default_factory=lambda: [4, 8, 16])


@dataclass
class Variant:
    generator: str  # the generator's name in the report
    label: str  # "default", "steps=10", "temperature=0.7"
    kind: str  # gpt | diffusion
    settings: dict  # the sampling settings as plain values
    model: Generator


def describe(path: str | Path) -> dict:
    """Kind, parameters, training step and tokenizer of a model directory, from its config.yaml."""
    config = Path(path) / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{path}: not a model directory (no config.yaml)")
    meta = yaml.safe_load(config.read_text()) or {}
    return {
        "path": str(path),
        "kind": meta.get("kind"),
        "params": meta.get("params"),
        "step": meta.get("step"),
        "tokenizer": meta.get("tokenizer") or {},
        "training": meta.get("training") or {},
    }


def names_for(paths: list[str]) -> list[str]:
    """Report names: the model kind, numbered when two share it (gpt, diffusion, gpt-2)."""
    names: list[str] = []
    for path in paths:
        base = describe(path)["kind"] or Path(path).name
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def check_shared_tokenizer(described: dict[str, dict]) -> dict:
    """The tokenizer every generator was trained with; a clear error when they differ."""
    shas = {name: d["tokenizer"].get("sha256") for name, d in described.items()}
    if len(set(shas.values())) > 1 or None in shas.values():
        listing = ", ".join(f"{name}: {sha or 'not recorded'}" for name, sha in shas.items())
        raise ValueError(
            "generators must share one tokenizer to be compared on the same footing; "
            f"their tokenizer weight hashes differ ({listing})"
        )
    first = next(iter(described.values()))["tokenizer"]
    return {"path": first.get("dir"), "dir": first.get("dir"), "sha256": first.get("sha256")}


def default_variant(name: str, path: str, sampling: SamplingSettings, device: str) -> Variant:
    model = load_generator(
        path, device, sampling.gpt, sampling.diffusion, maskgit=sampling.maskgit, forcing=sampling.forcing
    )
    kind = describe(path)["kind"]
    settings = dataclasses.asdict(sampling.gpt if kind == "gpt" else sampling.diffusion)
    if kind == "maskgit":
        settings = dataclasses.asdict(sampling.maskgit)
    if kind == "forcing":
        settings = dataclasses.asdict(sampling.forcing)
    return Variant(name, "default", kind, settings, model)


def sweep_variants(default: Variant, sampling: SamplingSettings) -> list[Variant]:
    """The sweep points of one generator, sharing its loaded weights (settings differ only)."""
    out = []
    if default.kind == "diffusion":
        for steps in sampling.diffusion_steps:
            if steps == sampling.diffusion.steps:
                continue
            model = _with_setting(
                default.model, "sampler", dataclasses.replace(sampling.diffusion, steps=steps)
            )
            settings = {**default.settings, "steps": steps}
            out.append(Variant(default.generator, f"steps={steps}", "diffusion", settings, model))
    elif default.kind == "gpt":
        for temperature in sampling.gpt_temperatures:
            if temperature == sampling.gpt.temperature:
                continue
            cfg = dataclasses.replace(sampling.gpt, temperature=temperature)
            model = _with_setting(default.model, "sampling", cfg)
            settings = {**default.settings, "temperature": temperature}
            out.append(Variant(default.generator, f"temperature={temperature:g}", "gpt", settings, model))
    elif default.kind == "maskgit":
        for steps in sampling.maskgit_steps:
            if steps == sampling.maskgit.steps:
                continue
            cfg = dataclasses.replace(sampling.maskgit, steps=steps)
            model = _with_setting(default.model, "sampling", cfg)
            settings = {**default.settings, "steps": steps}
            out.append(Variant(default.generator, f"steps={steps}", "maskgit", settings, model))
    elif default.kind == "forcing":
        for level in sampling.forcing_context_noise:
            if level == sampling.forcing.context_noise:
                continue
            cfg = dataclasses.replace(sampling.forcing, context_noise=level)
            settings = {**default.settings, "context_noise": level}
            model = _with_setting(default.model, "sampler", cfg)
            out.append(Variant(default.generator, f"context_noise={level:g}", "forcing", settings, model))
    return out


def _with_setting(model: Generator, attribute: str, value) -> Generator:
    """A shallow copy of a loaded generator with one sampling setting replaced."""
    import copy

    clone = copy.copy(model)
    setattr(clone, attribute, value)
    return clone
