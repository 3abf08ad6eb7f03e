"""``vtlm data prepare NAME SOURCE OUT``: standard data sets you downloaded, in vtlm's folder layout.

Nothing is downloaded. Each set has one module that reads its own source layout and official
splits; :func:`prepare_set` runs it and writes OUT/manifest.jsonl (``path``, ``caption``,
``split`` per usable file, read by :class:`vtlm.data.folder.VideoFolderDataset`) and
OUT/prepared.json (the record of what it was made from; see ``common``). Running it again on
the same OUT keeps the files already placed or written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from . import bair, kinetics600, mmnist, ssv2, ucf101
from .common import Outcome, PrepareConfig, finish

SetName = Literal["ucf101", "ssv2", "kinetics600", "bair", "mmnist"]

PREPARERS: dict[str, Callable[[Path, Path, PrepareConfig], Outcome]] = {
    "ucf101": ucf101.prepare,
    "ssv2": ssv2.prepare,
    "kinetics600": kinetics600.prepare,
    "bair": bair.prepare,
    "mmnist": mmnist.prepare,
}


def prepare_set(name: str, source: str | Path, out: str | Path, cfg: PrepareConfig | None = None) -> dict:
    """Prepare set ``name`` from ``source`` (a folder, or Moving MNIST's .npy file) into ``out``.

    Returns the record written to OUT/prepared.json (counts per split, failures with reasons).
    Raises FileNotFoundError / ValueError naming what is missing from ``source``.
    """
    if name not in PREPARERS:
        raise ValueError(f"name: expected one of {sorted(PREPARERS)}, got {name!r}")
    cfg = cfg or PrepareConfig()
    source, out = Path(source).expanduser().resolve(), Path(out).expanduser().resolve()
    if not source.exists():
        raise FileNotFoundError(f"source: {source} does not exist")
    if out == source or out in source.parents or source in out.parents:
        raise ValueError(f"out: {out} must be outside the source {source} (and not hold it)")
    out.mkdir(parents=True, exist_ok=True)
    outcome = PREPARERS[name](source, out, cfg)
    return finish(name, source, out, cfg, outcome)


__all__ = ["PREPARERS", "PrepareConfig", "SetName", "prepare_set"]
