"""The generators a harness run compares: names, the tokenizer they must share, variants.

A *variant* is one generator with one set of sampling settings: the default, or a point of a
sweep (diffusion step counts, autoregressive temperatures, anti-drift options, any setting of a
family's sampling config), which the report places on a quality-vs-cost Pareto front and, on
rollouts, beside the default's drift curves.
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

# Per model kind: the SamplingSettings field of its sampling config, and the generator
# attribute that holds that config.
FAMILY_SAMPLING: dict[str, tuple[str, str]] = {
    "gpt": ("gpt", "sampling"),
    "diffusion": ("diffusion", "sampler"),
    "forcing": ("forcing", "sampler"),
    "maskgit": ("maskgit", "sampling"),
}


def _default_sweeps() -> dict[str, dict[str, list]]:
    return {
        "gpt": {"temperature": [0.7, 1.0]},
        "diffusion": {"steps": [10, 25, 50]},
        "forcing": {"context_noise": [0.0, 0.3]},
        "maskgit": {"steps": [4, 8, 16]},
    }


@dataclass
class SamplingSettings:
    """Default sampling of each family, and the sweeps run on the sweep protocol."""

    gpt: SamplingConfig = dataclasses.field(default_factory=lambda: SamplingConfig(top_k=100, cfg_scale=3.0))
    diffusion: SamplerConfig = dataclasses.field(
        default_factory=lambda: SamplerConfig(steps=25, cfg_scale=3.0)
    )
    forcing: ForcingSamplerConfig = dataclasses.field(
        default_factory=lambda: ForcingSamplerConfig(steps=25, cfg_scale=3.0)
    )
    maskgit: MaskGITSamplingConfig = dataclasses.field(
        default_factory=lambda: MaskGITSamplingConfig(steps=8, cfg_scale=3.0)
    )
    # Sweeps on the sweep protocol: family -> setting of its sampling config -> values, each a
    # variant beside the default (one setting changed at a time; a value equal to the default
    # is skipped). E.g. {gpt: {temperature: [0.7], reencode_context: [true], weights: [int8]}};
    # {} runs none.
    sweeps: dict[str, dict[str, list[bool | int | float | str]]] = dataclasses.field(
        default_factory=_default_sweeps
    )

    def __post_init__(self):
        for family, settings in self.sweeps.items():
            if family not in FAMILY_SAMPLING:
                raise ValueError(
                    f"sweeps: unknown family {family!r}; expected one of {sorted(FAMILY_SAMPLING)}"
                )
            fields = {f.name for f in dataclasses.fields(getattr(self, family))}
            unknown = sorted(set(settings) - fields)
            if unknown:
                raise ValueError(
                    f"sweeps.{family}: {unknown} not settings of its sampling; known: {sorted(fields)}"
                )


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
    """Report names: the model kind; where kinds repeat, the kind and its run directory's name
    (RUN/gpt -> "gpt (RUN)"), numbered when even those repeat (gpt, gpt (gpt_corruption), gpt-2)."""
    kinds = [describe(path)["kind"] or Path(path).name for path in paths]
    names: list[str] = []
    for path, kind in zip(paths, kinds):
        run = Path(path).resolve().parent.name
        base = f"{kind} ({run})" if kinds.count(kind) > 1 and run != kind else kind
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
    field, attribute = FAMILY_SAMPLING[default.kind]
    base = getattr(sampling, field)
    out = []
    for setting, values in sampling.sweeps.get(default.kind, {}).items():
        for value in values:
            if value == getattr(base, setting):
                continue
            model = _with_setting(default.model, attribute, dataclasses.replace(base, **{setting: value}))
            settings = {**default.settings, setting: value}
            label = f"{setting}={value if isinstance(value, (bool, str)) else format(value, 'g')}"
            out.append(Variant(default.generator, label, default.kind, settings, model))
    return out


def _with_setting(model: Generator, attribute: str, value) -> Generator:
    """A shallow copy of a loaded generator with one sampling setting replaced."""
    import copy

    clone = copy.copy(model)
    setattr(clone, attribute, value)
    return clone
