"""Physics-IQ motion-mask metrics for any pair of videos: where, when and how much things move.

Follows the recipe of the Physics-IQ benchmark (Motamed et al. 2025, "Do generative video models
understand physical principles?", arXiv 2501.09038; reference code at
github.com/google-deepmind/physics-IQ-benchmark, ``physiq/binary_mask_generator.py`` and
``physiq/calculate_and_write_metrics_to_csv.py``), re-implemented in numpy:

Motion masks, per frame:
  1. grey = OpenCV's fixed-point RGB -> grey conversion (0.299 R + 0.587 G + 0.114 B, rounded);
  2. a 5x5 Gaussian blur with OpenCV's default sigma, i.e. the binomial kernel [1, 4, 6, 4, 1] / 16
     in each direction, mirror-padded (OpenCV's BORDER_REFLECT_101), rounded to uint8;
  3. a running-average background, started at frame 0 and updated *before* differencing:
     ``bg = (1 - 0.3) * bg + 0.3 * grey`` in float64; motion where ``|grey - round(bg)| > 10``,
     rounding as OpenCV does (to float32, then half to even);
  4. a morphological opening then closing with a 5x5 square (drops specks, fills pinholes).
  Frame 0 has no earlier frame, so its mask is empty (pass ``previous`` to give it one).

Scores between a generated and a true continuation of the same length:
  - spatial IoU: IoU of the masks OR-ed over time (where motion happened at all);
  - spatiotemporal IoU: IoU of each frame's masks, averaged over frames (where and when);
  - weighted spatial IoU: with ``w(p)`` the fraction of frames in which pixel p moves,
    ``sum(min(w_gen, w_true)) / sum(max(w_gen, w_true))`` (where and how much);
  - MSE between the frames with intensities scaled to [0, 1], averaged over all pixels.
  Two empty masks have IoU 1 (both agree nothing moves), as in the reference code.

Choices where the reference is silent or tied to its data, each a parameter:
  - The reference scores 4x-downsampled frames and masks of its high-resolution videos; we score
    at the given resolution (resize first for the same effect).
  - ``MotionMaskConfig.blur_size`` and ``morph_size`` may be set to 1 to turn those steps off
    (useful for small frames, where a 5x5 opening erases objects under 5 pixels).
  - The grey conversion uses OpenCV 5's 15-bit coefficients; OpenCV 4's 14-bit ones differ by one
    grey level on rare ties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SCORE_KEYS = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")
_GREY_WEIGHTS = (9798, 19235, 3735)  # R, G, B in units of 2**-15 (OpenCV's fixed point)


@dataclass(frozen=True)
class MotionMaskConfig:
    """How motion masks are made; the defaults reproduce the Physics-IQ benchmark."""

    threshold: int = 10  # a pixel moves where |grey - background| > threshold (grey levels 0..255)
    background_rate: float = 0.3  # weight of the newest frame in the running-average background
    blur_size: int = 5  # taps of the binomial blur before differencing; odd, 1 turns it off
    morph_size: int = 5  # side of the square for the opening then closing; odd, 1 turns it off

    def __post_init__(self):
        if not 0 <= self.threshold <= 255:
            raise ValueError(f"threshold: expected grey levels in [0, 255], got {self.threshold}")
        if not 0.0 < self.background_rate <= 1.0:
            raise ValueError(f"background_rate: expected a value in (0, 1], got {self.background_rate}")
        for name in ("blur_size", "morph_size"):
            size = getattr(self, name)
            if size < 1 or size % 2 == 0:
                raise ValueError(f"{name}: expected an odd size >= 1, got {size}")


def _check_video(name: str, video: np.ndarray, ndim: int) -> None:
    if not isinstance(video, np.ndarray) or video.dtype != np.uint8:
        raise ValueError(f"{name}: expected a uint8 numpy array, got {getattr(video, 'dtype', type(video))}")
    if video.ndim != ndim or video.shape[-1] != 3 or video.shape[-4] < 1:
        layout = "(T, H, W, 3)" if ndim == 4 else "(B, T, H, W, 3)"
        raise ValueError(f"{name}: expected an RGB video {layout} with T >= 1, got shape {video.shape}")


def _grey(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) RGB -> int64 (..., H, W) grey levels, rounded half up."""
    r, g, b = (frames[..., i].astype(np.int64) for i in range(3))
    wr, wg, wb = _GREY_WEIGHTS
    return (wr * r + wg * g + wb * b + (1 << 14)) >> 15


def _binomial_blur(grey: np.ndarray, size: int) -> np.ndarray:
    """Separable binomial blur of int (T, H, W) grey frames, mirror-padded, rounded half up."""
    if size == 1:
        return grey
    if size // 2 >= min(grey.shape[1:]):
        raise ValueError(
            f"blur_size: {size} needs frames larger than {size // 2} pixels, got {grey.shape[1:]}"
        )
    taps = np.array([1], dtype=np.int64)
    for _ in range(size - 1):
        taps = np.convolve(taps, [1, 1])  # a row of Pascal's triangle, sums to 2**(size - 1)
    half = size // 2
    padded = np.pad(grey, ((0, 0), (half, half), (half, half)), mode="reflect")
    h, w = grey.shape[1:]
    rows = sum(tap * padded[:, :, i : i + w] for i, tap in enumerate(taps))  # (T, H + 2 half, W)
    both = sum(tap * rows[:, i : i + h, :] for i, tap in enumerate(taps))  # (T, H, W)
    shift = 2 * (size - 1)
    return (both + (1 << (shift - 1))) >> shift


def _window(mask: np.ndarray, size: int, erode: bool) -> np.ndarray:
    """Erosion (all in the window) or dilation (any) of bool (T, H, W) by a size x size square.
    Outside the frame counts as neutral, as OpenCV's default border for morphology."""
    half = size // 2
    padded = np.pad(mask, ((0, 0), (half, half), (half, half)), constant_values=erode)
    reduce = np.all if erode else np.any
    rows = reduce(sliding_window_view(padded, size, axis=2), axis=-1)  # (T, H + 2 half, W)
    return reduce(sliding_window_view(rows, size, axis=1), axis=-1)  # (T, H, W)


def motion_masks(
    video: np.ndarray, config: MotionMaskConfig | None = None, previous: np.ndarray | None = None
) -> np.ndarray:
    """Where each frame moves against a running-average background.

    video: uint8 (T, H, W, 3) RGB, or a batch (B, T, H, W, 3).
    previous: optional uint8 (H, W, 3) frame just before the clip (e.g. the last context frame,
        (B, H, W, 3) for a batch); it starts the background so frame 0 gets a mask too.
    Returns bool (T, H, W) (or (B, T, H, W)); without ``previous`` frame 0 is all False.
    """
    config = config or MotionMaskConfig()
    if isinstance(video, np.ndarray) and video.ndim == 5:
        _check_video("video", video, 5)
        if previous is not None and previous.shape != video.shape[:1] + video.shape[2:]:
            raise ValueError(
                f"previous: expected shape {video.shape[:1] + video.shape[2:]}, got {previous.shape}"
            )
        return np.stack(
            [
                motion_masks(clip, config, None if previous is None else previous[i])
                for i, clip in enumerate(video)
            ]
        )
    _check_video("video", video, 4)
    if previous is not None:
        if (
            not isinstance(previous, np.ndarray)
            or previous.dtype != np.uint8
            or previous.shape != video.shape[1:]
        ):
            got = f"{getattr(previous, 'dtype', type(previous))} {getattr(previous, 'shape', '')}"
            raise ValueError(f"previous: expected a uint8 frame of shape {video.shape[1:]}, got {got}")
        return motion_masks(np.concatenate([previous[None], video]), config)[1:]

    grey = _binomial_blur(_grey(video), config.blur_size)  # (T, H, W) int
    masks = np.zeros(grey.shape, dtype=bool)
    background = grey[0].astype(np.float64)
    for t in range(1, len(grey)):
        background = background * (1.0 - config.background_rate) + grey[t] * config.background_rate
        # round as OpenCV's convertScaleAbs: through float32, half to even (ties are common here)
        rounded = np.clip(np.rint(background.astype(np.float32)), 0, 255).astype(np.int64)
        masks[t] = np.abs(grey[t] - rounded) > config.threshold
    if config.morph_size > 1:
        size = config.morph_size
        masks = _window(_window(masks, size, erode=True), size, erode=False)  # opening
        masks = _window(_window(masks, size, erode=False), size, erode=True)  # closing
    return masks


def _iou(a: np.ndarray, b: np.ndarray, empty_iou: float) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else empty_iou


def physics_iq_scores(
    generated: np.ndarray,
    true: np.ndarray,
    config: MotionMaskConfig | None = None,
    previous: np.ndarray | None = None,
    empty_iou: float = 1.0,
) -> dict[str, float]:
    """Physics-IQ scores of one generated continuation against the true one.

    generated, true: uint8 (T, H, W, 3) RGB of one shape.
    previous: optional uint8 (H, W, 3) last frame before both continuations (see motion_masks).
    empty_iou: the IoU of two empty masks (1.0 in the benchmark: both agree nothing moves).
    Returns {"spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou"} in [0, 1] (higher is
    better) and "mse" of intensities in [0, 1] (lower is better).
    """
    _check_video("generated", generated, 4)
    _check_video("true", true, 4)
    if generated.shape != true.shape:
        raise ValueError(f"generated and true: expected one shape, got {generated.shape} and {true.shape}")
    mask_gen = motion_masks(generated, config, previous)  # (T, H, W)
    mask_true = motion_masks(true, config, previous)
    weight_gen, weight_true = mask_gen.mean(axis=0), mask_true.mean(axis=0)  # (H, W) in [0, 1]
    weighted_union = np.maximum(weight_gen, weight_true).sum()
    diff = generated.astype(np.float64) / 255.0 - true.astype(np.float64) / 255.0
    return {
        "spatial_iou": _iou(mask_gen.any(axis=0), mask_true.any(axis=0), empty_iou),
        "spatiotemporal_iou": float(np.mean([_iou(g, t, empty_iou) for g, t in zip(mask_gen, mask_true)])),
        "weighted_spatial_iou": (
            float(np.minimum(weight_gen, weight_true).sum() / weighted_union) if weighted_union else empty_iou
        ),
        "mse": float(np.mean(diff**2)),
    }


def physics_iq_per_clip(
    generated: np.ndarray,
    true: np.ndarray,
    config: MotionMaskConfig | None = None,
    previous: np.ndarray | None = None,
    empty_iou: float = 1.0,
) -> dict[str, np.ndarray]:
    """physics_iq_scores of each clip of uint8 (B, T, H, W, 3) batches: float64 (B,) per key.
    previous: optional uint8 (B, H, W, 3)."""
    _check_video("generated", generated, 5)
    _check_video("true", true, 5)
    if generated.shape != true.shape:
        raise ValueError(f"generated and true: expected one shape, got {generated.shape} and {true.shape}")
    if previous is not None and previous.shape != generated.shape[:1] + generated.shape[2:]:
        raise ValueError(
            f"previous: expected shape {generated.shape[:1] + generated.shape[2:]}, got {previous.shape}"
        )
    clips = [
        physics_iq_scores(g, t, config, None if previous is None else previous[i], empty_iou)
        for i, (g, t) in enumerate(zip(generated, true))
    ]
    return {key: np.array([clip[key] for clip in clips]) for key in SCORE_KEYS}


def physics_iq_scores_batch(
    generated: np.ndarray,
    true: np.ndarray,
    config: MotionMaskConfig | None = None,
    previous: np.ndarray | None = None,
    empty_iou: float = 1.0,
) -> dict[str, float]:
    """physics_iq_per_clip averaged over clips (the benchmark averages per clip, then over clips)."""
    per_clip = physics_iq_per_clip(generated, true, config, previous, empty_iou)
    return {key: float(values.mean()) for key, values in per_clip.items()}
