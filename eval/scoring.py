"""Scores of one batch of generated clips against the true clips, per clip (and per frame).

Every function takes generated and true videos (N, 3, T, R, R) in [-1, 1] and the first
scored frame, and returns arrays: (N, F) per-frame values over the F scored frames, or (N,)
per-clip values. Which metrics apply depends on the protocol and on what the data carries
(labels for the built-in data); ``score_clips`` collects all of them by name.
"""

from __future__ import annotations

import numpy as np
import torch

from vtlm.common.pixel_metrics import DATA_RANGE, mse_per_frame, psnr_per_frame, ssim_per_frame
from vtlm.data.synthetic.shapes import COLOR_NAMES
from vtlm.data.writers import to_uint8

from .metrics.physics_iq import MotionMaskConfig, physics_iq_per_clip
from .metrics.temporal import flicker
from .physics.track_scores import compare_tracks
from .physics.tracker import reference_from_labels, track

#: name -> (unit, higher is better) for every per-clip or per-frame metric this module makes
METRICS = {
    "psnr": ("dB", True),
    "ssim": ("", True),
    "mse": ("", False),
    "flicker_ratio": ("ratio", None),
    "flicker_excess": ("", False),
    "spatial_iou": ("", True),
    "spatiotemporal_iou": ("", True),
    "weighted_spatial_iou": ("", True),
    "physics_iq_mse": ("", False),
    "position_error": ("px", False),
    "presence": ("share", True),
    "color_kept": ("share", True),
    "shape_kept": ("share", True),
    "wall_bounce_recall": ("share", True),
    "collision_recall": ("share", True),
    "identity_swaps": ("count", False),
    "spurious_bounces": ("count", False),
    "caption_adherence": ("share", True),
    "adherence_colors": ("share", True),
    "adherence_colors_shapes": ("share", True),
}


def pixel_scores(generated: torch.Tensor, true: torch.Tensor, first: int) -> dict[str, np.ndarray]:
    """PSNR (dB, data range 2), SSIM and MSE of the scored frames: (N, F) each."""
    g, t = generated[:, :, first:].float(), true[:, :, first:].float()
    return {
        "psnr": psnr_per_frame(g, t, DATA_RANGE).clamp(max=100.0).numpy(),
        "ssim": ssim_per_frame(g, t, DATA_RANGE).numpy(),
        "mse": mse_per_frame(g, t).numpy(),
    }


def flicker_scores(generated: torch.Tensor, true: torch.Tensor, first: int) -> dict[str, np.ndarray]:
    """Temporal flicker of the scored frames (and the step into them) vs the true clip's: (N,).

    ``flicker_ratio``: generated / true mean absolute frame difference (1 is the truth's
    motion energy; above is flicker or too much motion, below is frozen video);
    ``flicker_excess``: |ratio - 1|, the distance from the truth either way.
    """
    start = max(first - 1, 0)
    g = flicker(generated[:, :, start:].float()).double().mean(dim=1)
    t = flicker(true[:, :, start:].float()).double().mean(dim=1)
    ratio = (g / t.clamp(min=1e-3)).numpy()
    return {"flicker_ratio": ratio, "flicker_excess": np.abs(ratio - 1.0)}


def motion_config(resolution: int) -> MotionMaskConfig:
    return MotionMaskConfig() if resolution >= 64 else MotionMaskConfig(morph_size=1)


def physics_iq(generated: torch.Tensor, true: torch.Tensor, first: int) -> dict[str, np.ndarray]:
    """Physics-IQ motion-mask scores of the scored frames: (N,) each.

    The benchmark's 5x5 opening erases objects under 5 px, so below 64 px the masks skip the
    morphology (blur and thresholds stay the benchmark's); the settings go into results.json.
    """
    g = to_uint8(generated[:, :, first:])
    t = to_uint8(true[:, :, first:])
    previous = to_uint8(true[:, :, first - 1 : first])[:, 0] if first > 0 else None
    scores = physics_iq_per_clip(g, t, motion_config(generated.shape[-1]), previous=previous)
    return {("physics_iq_mse" if k == "mse" else k): v for k, v in scores.items()}


def tracker_scores(generated: torch.Tensor, labels: list[dict], first: int) -> dict[str, np.ndarray]:
    """Objects tracked by color in the generated clips vs the labelled truth.

    Per frame (N, F): position_error (px; NaN where an object vanished), presence,
    color_kept, shape_kept; per clip (N,): wall_bounce_recall, collision_recall (NaN for a
    clip without such events in the scored frames), identity_swaps, spurious_bounces
    (reversals no true event explains). See ``vtlm.eval.physics.track_scores.compare_tracks``.
    """
    frames = to_uint8(generated)  # (N, T, R, R, 3)
    out: dict[str, list] = {}
    for video, clip_labels in zip(frames, labels):
        # every palette color is tracked, so an object that changed color still counts as present
        result = compare_tracks(
            track(video, COLOR_NAMES), reference_from_labels(clip_labels), start_frame=first
        )
        for key in ("position_error", "presence", "color_kept", "shape_kept"):
            out.setdefault(key, []).append(np.asarray(result["curves"][key], dtype=np.float64))
        summary = result["summary"]
        for key in ("wall_bounce_recall", "collision_recall", "identity_swaps"):
            out.setdefault(key, []).append(float(summary[key]))
        spurious = summary["wall_bounce_spurious"] + summary["collision_spurious"]
        out.setdefault("spurious_bounces", []).append(float(spurious))
    return {
        key: np.stack(values) if np.ndim(values[0]) else np.asarray(values) for key, values in out.items()
    }


def score_clips(
    generated: torch.Tensor, true: torch.Tensor, first: int, labels: list[dict] | None, tracked: bool
) -> dict[str, np.ndarray]:
    """Every per-frame and per-clip metric that applies: name -> (N, F) or (N,)."""
    if generated.shape != true.shape:
        raise ValueError(
            f"generated {tuple(generated.shape)} and true {tuple(true.shape)} clips differ in shape"
        )
    scores = {**pixel_scores(generated, true, first), **flicker_scores(generated, true, first)}
    if generated.shape[2] - first >= 2:
        scores.update(physics_iq(generated, true, first))
    if tracked and labels is not None:
        scores.update(tracker_scores(generated, labels, first))
    return scores
