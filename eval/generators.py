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
    kind: str  # gpt | diffusion | forcing | maskgit
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


# Per model kind: the SamplingSettings field of its default sampling, the generator attribute
# that holds it, and the setting swept on the sweep protocol with the SamplingSettings list of
# its values.
FAMILY_SAMPLING: dict[str, tuple[str, str, str, str]] = {
    "gpt": ("gpt", "sampling", "temperature", "gpt_temperatures"),
    "diffusion": ("diffusion", "sampler", "steps", "diffusion_steps"),
    "forcing": ("forcing", "sampler", "context_noise", "forcing_context_noise"),
    "maskgit": ("maskgit", "sampling", "steps", "maskgit_steps"),
}


def default_variant(name: str, path: str, sampling: SamplingSettings, device: str) -> Variant:
    kind = describe(path)["kind"]
    if kind not in FAMILY_SAMPLING:
        raise ValueError(f"{path}: model kind {kind!r} is not a generator ({sorted(FAMILY_SAMPLING)})")
    model = load_generator(
        path, device, sampling.gpt, sampling.diffusion, maskgit=sampling.maskgit, forcing=sampling.forcing
    )
    settings = dataclasses.asdict(getattr(sampling, FAMILY_SAMPLING[kind][0]))
    return Variant(name, "default", kind, settings, model)


def sweep_variants(default: Variant, sampling: SamplingSettings) -> list[Variant]:
    """The sweep points of one generator, sharing its loaded weights (settings differ only)."""
    field, attribute, setting, values = FAMILY_SAMPLING[default.kind]
    base = getattr(sampling, field)
    out = []
    for value in getattr(sampling, values):
        if value == getattr(base, setting):
            continue
        model = _with_setting(default.model, attribute, dataclasses.replace(base, **{setting: value}))
        settings = {**default.settings, setting: value}
        out.append(Variant(default.generator, f"{setting}={value:g}", default.kind, settings, model))
    return out


def _with_setting(model: Generator, attribute: str, value) -> Generator:
    """A shallow copy of a loaded generator with one sampling setting replaced."""
    import copy

    clone = copy.copy(model)
    setattr(clone, attribute, value)
    return clone
