"""The masking schedule shared by training and sampling.

``mask_ratio(r)`` is the share of tokens still masked at progress r in [0, 1]: 1 at the start,
0 at the end. Training draws r ~ U(0, 1) and masks that share; sampling with S steps keeps
``mask_ratio((s + 1) / S)`` of the tokens masked after step s, so the network sees the mask
ratios in sampling that it was trained on.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Schedule = Literal["cosine", "linear"]


def mask_ratio(r: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """Share still masked at progress ``r`` (any shape, values in [0, 1]) -> same shape in [0, 1].

    cosine: cos(pi / 2 * r) (MaskGIT's default: few tokens decided early, many late); linear: 1 - r.
    """
    if schedule == "cosine":
        return torch.cos(math.pi / 2 * r)
    if schedule == "linear":
        return 1 - r
    raise ValueError(f"schedule: expected 'cosine' or 'linear', got {schedule!r}")


def masked_counts(total: int, steps: int, schedule: Schedule) -> list[int]:
    """Tokens still masked after each of min(steps, total) decoding steps, ending at 0.

    ``floor(total * mask_ratio((s + 1) / S))``, kept between the steps left (each later step
    unmasks at least one) and one fewer than before (each step unmasks at least one); with
    ``steps >= total`` it is one token per step.
    """
    if total < 1:
        return []
    steps = max(1, min(steps, total))
    counts, before = [], total
    for s in range(steps):
        target = math.floor(total * float(mask_ratio(torch.tensor((s + 1) / steps), schedule)) + 1e-9)
        after = max(steps - s - 1, min(target, before - 1))
        counts.append(after)
        before = after
    return counts
