"""A sweep's configuration: the world it trains on, each family's base recipe, and the grid.

A sweep file (YAML) reads::

    out: runs/sweeps/shapes_cpu
    world: {seed: 0, tokenizer_steps: 320}     # or {shards: DIR, text_model: FILE} to reuse one
    common:                                    # fit arguments of every point
      data: {window: 3, batch_size: 8}
      trainer: {limit_val_batches: 8}
    families:                                  # each family's own fit arguments
      gpt: {model: {text_len: 32}, optim: {lr: 2.0e-3}}
      diffusion: {model: {text_len: 32}, optim: {lr: 1.0e-3}}
    grid:                                      # dotted fit arguments -> values; every combination
      family: [gpt, diffusion]
      preset_name: [micro, mini]
      trainer.max_flops: [1.0e+12, 3.0e+12]
    eval: {protocols: [shapes-t2v, shapes-cont5], seeds: [0], num_clips: 8}

A point's fit arguments are ``common``, then its family's, then its grid values, merged key by
key; ``family`` is the one grid key that is not a fit argument. Every point is parsed by its
family's own ``fit`` command before anything trains, so an unknown field, or one that family
cannot take, is refused naming the point and the field.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from vtlm.cli.world import WorldConfig

FAMILIES = ("gpt", "diffusion", "forcing", "maskgit")
# Caption fields the harness evaluates text-to-video with (EvalConfig.caption).
EVAL_CAPTIONS = ("descriptive", "terse")


@dataclass
class SweepConfig:
    """One sweep: where it writes, what it trains on, its points and how they are evaluated."""

    out: str = "runs/sweep"
    world: WorldConfig = field(default_factory=WorldConfig)
    # Fit arguments of every point, then of each family (gpt, diffusion, forcing, maskgit).
    common: dict[str, Any] = field(default_factory=dict)
    families: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Dotted fit argument -> values; the points are every combination, in the order written.
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # EvalConfig fields for every point's harness run (same protocols, seeds and clips for all).
    eval: dict[str, Any] = field(default_factory=dict)
    # Text-to-video captions each point is evaluated with (descriptive, terse): both for the
    # caption-detail question, where adherence is read on either kind.
    eval_captions: list[str] = field(default_factory=lambda: ["descriptive"])

    def __post_init__(self):
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"families: {unknown} are not families; expected some of {list(FAMILIES)}")
        if not self.grid:
            raise ValueError("grid: expected at least one field with values, e.g. {family: [gpt, diffusion]}")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key}: expected a non-empty list of values, got {values!r}")
        families = self.grid.get("family", [])
        bad = sorted({str(f) for f in families} - set(FAMILIES))
        if bad:
            raise ValueError(f"grid.family: {bad} are not families; expected some of {list(FAMILIES)}")
        if "family" not in self.grid and len(self.families) != 1:
            raise ValueError(
                "grid.family: name the families to train (or configure exactly one under families)"
            )
        bad = sorted(set(self.eval_captions) - set(EVAL_CAPTIONS)) or not self.eval_captions
        if bad:
            raise ValueError(
                f"eval_captions: expected some of {list(EVAL_CAPTIONS)}, got {self.eval_captions}"
            )
        if "caption" in self.eval:
            raise ValueError("eval.caption: set eval_captions instead (each point is evaluated with each)")


@dataclass
class Point:
    """One grid point: its number, family, grid values and merged fit arguments."""

    index: int
    family: str
    values: dict[str, Any]  # the grid values of this point (family included)
    args: dict[str, Any]  # the fit command's arguments, before the sweep sets paths

    @property
    def name(self) -> str:
        """``003-gpt-mini-1e+12``: the point's folder, readable in a listing."""
        shown = [_short(v) for k, v in self.values.items() if k != "family"]
        return "-".join([f"{self.index:03d}", self.family, *shown]).replace("/", "_")

    @property
    def label(self) -> str:
        """``gpt, preset_name=mini, trainer.max_flops=1e+12``."""
        return ", ".join(
            [self.family] + [f"{k}={_short(v)}" for k, v in self.values.items() if k != "family"]
        )


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` laid over it, nested dicts merged key by key (copies)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def dotted(key: str, value: Any) -> dict:
    """``dotted("trainer.max_flops", 1e12)`` -> ``{"trainer": {"max_flops": 1e12}}``."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def expand(cfg: SweepConfig) -> list[Point]:
    """Every combination of the grid's values, as points with their merged fit arguments."""
    keys = list(cfg.grid)
    points = []
    for index, combo in enumerate(itertools.product(*(cfg.grid[k] for k in keys))):
        values = dict(zip(keys, combo))
        family = str(values.get("family", next(iter(cfg.families), "")))
        args = merge(cfg.common, cfg.families.get(family, {}))
        for key, value in values.items():
            if key != "family":
                args = merge(args, dotted(key, value))
        points.append(Point(index, family, {"family": family, **values}, args))
    return points
