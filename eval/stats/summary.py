"""Derived blocks of a result row: drift summaries of its curves, and training cost."""

from __future__ import annotations

import numpy as np

from .drift import drift_summary

#: thresholds at which a curve counts as degraded (frames before crossing are reported)
DRIFT_THRESHOLDS = {
    "psnr": 15.0,
    "ssim": 0.5,
    "position_error": 4.0,
    "presence": 0.5,
    "color_kept": 0.5,
    "shape_kept": 0.5,
    "caption_adherence": 0.5,
}


def drift_block(curves: dict[str, dict]) -> dict:
    """Per curve: degradation slope per frame (positive: worsening) and frames until its
    threshold is crossed, for the curves with a direction."""
    out = {}
    for key, curve in curves.items():
        if curve.get("higher_is_better") is None or len(curve["mean"]) < 2:
            continue
        values = np.asarray(curve["mean"], dtype=np.float64)
        if not np.isfinite(values).all():  # e.g. every object lost at some frame
            continue
        summary = drift_summary(values, bool(curve["higher_is_better"]), DRIFT_THRESHOLDS.get(key))
        out[key] = {**summary, "threshold": DRIFT_THRESHOLDS.get(key), "first_frame": curve["frames"][0]}
    return out


def training_block(described: dict) -> dict:
    """Training steps, seconds and FLOPs recorded by the fit command (what is known)."""
    training = dict(described.get("training") or {})
    if described.get("step") is not None:
        training.setdefault("steps", described["step"])
    return training
