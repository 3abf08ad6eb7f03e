"""Fixed, seeded train / validation / test splits, so every figure is measured on held-out clips.

Built-in procedural data: clip ``i`` of split ``s`` is drawn from a seed derived from
(dataset seed, s, i), so the three splits are disjoint random draws and any number of clips can
be generated on the fly. Files: a file's split is a hash of its path relative to the dataset
root and a split seed, so it never changes when other files are added or removed.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


def check_split(split: str, allow_all: bool = False) -> str:
    allowed = SPLITS + (("all",) if allow_all else ())
    if split not in allowed:
        raise ValueError(f"split: expected one of {list(allowed)}, got {split!r}")
    return split


def clip_seed(seed: int, split: str, index: int) -> int:
    """The generator seed of clip ``index`` of ``split`` in a built-in dataset with ``seed``."""
    check_split(split)
    state = np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]).generate_state(2)
    return (int(state[0]) << 32 | int(state[1])) & ((1 << 63) - 1)  # fits int64 for any JSON reader


def hash_fraction(key: str, seed: int = 0) -> float:
    """A stable number in [0, 1) from a string (same on every machine and Python version)."""
    digest = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str, val_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """Split of a file keyed by its relative path: test, then val, then train by hash."""
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction, test_fraction: expected >= 0 with a sum < 1, got {val_fraction}, {test_fraction}"
        )
    u = hash_fraction(key, seed)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"
