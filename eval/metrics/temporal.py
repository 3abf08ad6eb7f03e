"""Temporal flicker: how much consecutive frames differ, and how that compares with the true clip.

Videos are (B, 3, T, H, W) float tensors in [-1, 1]. Flicker is reported in 8-bit grey levels
(0..255): the [-1, 1] range is mapped to [0, 255] before differencing, so a black frame followed
by a white one scores 255 and a static video 0. Flicker counts all change, so real motion raises
it too; compare with the true clip's flicker (``flicker_ratio``) rather than read it alone.
"""

from __future__ import annotations

import torch


def _check(name: str, video: torch.Tensor) -> None:
    if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[1] != 3 or video.shape[2] < 2:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"{name}: expected a (B, 3, T, H, W) video tensor with T >= 2, got {shape}")


def flicker(video: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of consecutive frames, in grey levels [0, 255].

    video: (B, 3, T, H, W) float in [-1, 1].
    Returns float32 (B, T - 1); entry t compares frame t + 1 with frame t, averaged over
    channels and pixels.
    """
    _check("video", video)
    levels = (video.double() + 1.0) * 127.5  # (B, 3, T, H, W) in [0, 255]
    return (levels[:, :, 1:] - levels[:, :, :-1]).abs().mean(dim=(1, 3, 4)).float()


def flicker_ratio(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean flicker of each generated clip over that of its reference clip: float32 (B,).

    generated, reference: (B, 3, T, H, W) float in [-1, 1], same B (T, H, W may differ).
    1 means as much frame-to-frame change as the reference; above 1, more (flicker or jitter);
    below 1, less (frozen video). A static reference gives 1 against a static clip and inf
    against a changing one.
    """
    _check("generated", generated)
    _check("reference", reference)
    if generated.shape[0] != reference.shape[0]:
        raise ValueError(
            f"generated and reference: expected one batch size, got {generated.shape[0]} and {reference.shape[0]}"
        )
    gen = flicker(generated).double().mean(dim=1)  # (B,)
    ref = flicker(reference).double().mean(dim=1)
    ratio = gen / ref  # x / 0 -> inf, 0 / 0 -> nan
    return torch.where((gen == 0) & (ref == 0), torch.ones_like(ratio), ratio).float()
