"""Drift summary of a per-step metric curve: how fast a rollout degrades and when it gets too bad.

A curve is one value per generated frame (PSNR, SSIM, FVD of a window, ...), as a float (T,)
numpy array. Frames before ``start`` (e.g. the context frames) are ignored throughout.
"""

from __future__ import annotations

import numpy as np


def drift_summary(
    curve: np.ndarray, higher_is_better: bool, threshold: float | None = None, start: int = 0
) -> dict[str, float | int | None]:
    """Summarize the degradation of ``curve[start:]``.

    curve: finite float (T,), one value per frame (clip PSNR at infinity first, e.g. to 100 dB).
    higher_is_better: True for PSNR/SSIM-like curves, False for error-like ones.
    threshold: the value past which quality is unacceptable; None skips the crossing.
    Returns:
      "degradation_slope": least-squares slope of the curve per frame over frames start..T-1,
        signed so that positive means getting worse (the negated slope when higher is better);
      "frames_to_threshold": frames from ``start`` until the first frame strictly worse than the
        threshold (0 if frame ``start`` already is), or None if it never is or threshold is None;
      "start_value", "end_value": curve[start] and curve[-1].
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1:
        raise ValueError(f"curve: expected a 1-D array (T,), got shape {curve.shape}")
    if not 0 <= start <= len(curve) - 2:
        raise ValueError(
            f"start: expected 0 <= start <= T - 2 = {len(curve) - 2} (two frames to fit), got {start}"
        )
    tail = curve[start:]
    if not np.isfinite(tail).all():
        raise ValueError(
            "curve: expected finite values from start on (clip inf, e.g. PSNR of identical frames)"
        )
    frames = np.arange(len(tail), dtype=np.float64)
    centred = frames - frames.mean()
    slope = float(np.sum(centred * (tail - tail.mean())) / np.sum(centred**2))

    crossing = None
    if threshold is not None:
        worse = tail < threshold if higher_is_better else tail > threshold
        if worse.any():
            crossing = int(np.argmax(worse))
    return {
        "degradation_slope": -slope if higher_is_better else slope,
        "frames_to_threshold": crossing,
        "start_value": float(tail[0]),
        "end_value": float(tail[-1]),
    }
