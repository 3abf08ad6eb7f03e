"""From a file's frames to a model's clip: which frames, what size, what value range.

A clip is float32 (C=3, T, H, W) in [-1, 1], with H = W = ``resolution``. The steps are
:func:`clip_indices` (which source frames), :func:`resize_crop` (shorter side to the resolution,
then a square crop) and :func:`to_clip_tensor` (uint8 -> float in [-1, 1], channels first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ClipSpec:
    """How clips are cut from a video file."""

    # Frames per clip. The tokenizer needs 1 + k * (temporal compression); 1 is an image.
    num_frames: int = 17
    # Step between sampled source frames; ignored when target_fps is set.
    frame_stride: int = 1
    # Resample to this frame rate instead (stride = round(source fps / target_fps), at least 1).
    target_fps: float | None = None
    # Where the temporal window sits: random (training), center or start (evaluation).
    window: Literal["random", "center", "start"] = "random"
    # Output side in pixels: the shorter side is resized to it, then a square is cropped.
    resolution: int = 64
    # Which square: the center (evaluation) or a random one (training augmentation).
    crop: Literal["center", "random"] = "center"

    def __post_init__(self):
        if self.num_frames < 1:
            raise ValueError(f"num_frames: expected >= 1, got {self.num_frames}")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride: expected >= 1, got {self.frame_stride}")
        if self.target_fps is not None and self.target_fps <= 0:
            raise ValueError(f"target_fps: expected > 0 or None, got {self.target_fps}")
        if self.resolution < 8:
            raise ValueError(f"resolution: expected >= 8, got {self.resolution}")
        if self.window not in ("random", "center", "start"):
            raise ValueError(f"window: expected 'random', 'center' or 'start', got {self.window!r}")
        if self.crop not in ("center", "random"):
            raise ValueError(f"crop: expected 'center' or 'random', got {self.crop!r}")

    def stride_for(self, fps: float) -> int:
        """Source-frame step for a file recorded at ``fps``."""
        if self.target_fps is None or fps <= 0:
            return self.frame_stride
        return max(1, round(fps / self.target_fps))

    def span(self, fps: float) -> int:
        """Source frames one clip covers."""
        return (self.num_frames - 1) * self.stride_for(fps) + 1


def clip_indices(
    num_source_frames: int, fps: float, spec: ClipSpec, rng: np.random.Generator
) -> list[int] | None:
    """Source frame indices of one clip, or None when the file is too short for it."""
    stride, span = spec.stride_for(fps), spec.span(fps)
    if num_source_frames < span:
        return None
    slack = num_source_frames - span
    if spec.window == "random":
        start = int(rng.integers(0, slack + 1))
    elif spec.window == "center":
        start = slack // 2
    else:
        start = 0
    return list(range(start, start + span, stride))


def resize_crop(
    frames: np.ndarray, resolution: int, crop: str = "center", rng: np.random.Generator | None = None
) -> np.ndarray:
    """uint8 (T, H, W, 3) -> uint8 (T, R, R, 3): shorter side resized to R (antialiased), square crop."""
    height, width = frames.shape[1:3]
    scale = resolution / min(height, width)
    new_h, new_w = max(resolution, round(height * scale)), max(resolution, round(width * scale))
    if (new_h, new_w) != (height, width):
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        frames = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    if crop == "random":
        rng = rng if rng is not None else np.random.default_rng()
        top = int(rng.integers(0, new_h - resolution + 1))
        left = int(rng.integers(0, new_w - resolution + 1))
    else:
        top, left = (new_h - resolution) // 2, (new_w - resolution) // 2
    return np.ascontiguousarray(frames[:, top : top + resolution, left : left + resolution])


def to_clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, H, W) in [-1, 1]."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float()
    return video.div_(127.5).sub_(1.0)
