"""From per-clip values over seeds and samples to reported figures and per-step curves.

Values come as arrays (S seeds, J samples, N clips) or (S, J, N, F frames). A figure is a
mean over frames, then clips: each clip's value is averaged over seeds and samples, and the
confidence interval is a bootstrap over clips (the held-out data is what varies between
studies). ``seed_std`` is the spread of the per-seed means. A best-of-J figure first takes,
per seed and clip, the best of the J samples (what frame-prediction papers report); its
``kind`` says so. Set-level metrics (Frechet distances) have one value per seed: their
interval is a bootstrap over seeds (none from a single seed).
"""

from __future__ import annotations

import warnings

import numpy as np

from .bootstrap import summarize


def _nanmean(values: np.ndarray, axis) -> np.ndarray:
    with warnings.catch_warnings():  # all-NaN slices give NaN, which is what they mean
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


class Aggregator:
    """Turns value arrays into JSON-ready figures with one confidence setting."""

    def __init__(self, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0):
        self.confidence, self.num_resamples, self.seed = confidence, num_resamples, seed

    def _summary(self, values: np.ndarray) -> dict:
        """NaN marks an undefined value (no bounce to recall, an object lost): dropped, and
        counted in ``n_dropped``, without a warning per figure."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return summarize(values, self.confidence, self.num_resamples, self.seed)

    def figure(self, values: np.ndarray, unit: str, higher_is_better: bool) -> dict:
        """(S, J, N[, F]) -> mean over frames, clips, seeds and samples, with its interval."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 4:
            values = _nanmean(values, axis=3)
        per_clip = _nanmean(values, axis=(0, 1))
        out = self._summary(per_clip)
        seed_means = _nanmean(values, axis=(1, 2))
        out.update(
            kind="mean",
            unit=unit,
            higher_is_better=higher_is_better,
            seed_std=float(np.nanstd(seed_means)) if np.isfinite(seed_means).sum() > 1 else 0.0,
            seeds=len(seed_means),
        )
        return out

    def best_of(self, values: np.ndarray, unit: str, higher_is_better: bool) -> dict:
        """(S, J, N[, F]) -> per seed and clip the best of the J samples, then as ``figure``."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 4:
            values = _nanmean(values, axis=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            best = np.nanmax(values, axis=1) if higher_is_better else np.nanmin(values, axis=1)
        out = self.figure(best[:, None], unit, higher_is_better)
        out["kind"] = f"best-of-{values.shape[1]}"
        return out

    def set_level(self, per_seed: list[float], unit: str, higher_is_better: bool) -> dict:
        """One value per seed (a distance between sets) -> mean with a bootstrap over seeds; one
        seed gives no interval (NaN ends), not a zero-width one: the real-vs-real floor of the
        same size says what a difference of this n means."""
        out = self._summary(np.asarray(per_seed, dtype=np.float64))
        kind = f"set-level, mean over {len(per_seed)} seeds"
        if len(per_seed) < 2:
            out.update(ci_low=float("nan"), ci_high=float("nan"))
            kind = "set-level, one seed (no interval)"
        out.update(kind=kind, unit=unit, higher_is_better=higher_is_better)
        return out

    def curve(self, values: np.ndarray, frames: list[int], unit: str, higher_is_better: bool) -> dict:
        """(S, J, N, F) -> per frame: mean and bootstrap interval over clips."""
        values = np.asarray(values, dtype=np.float64)
        per_clip = _nanmean(values, axis=(0, 1))  # (N, F)
        stats = [self._summary(per_clip[:, f]) for f in range(per_clip.shape[1])]
        return {
            "frames": list(frames),
            "mean": [s["mean"] for s in stats],
            "ci_low": [s["ci_low"] for s in stats],
            "ci_high": [s["ci_high"] for s in stats],
            "unit": unit,
            "higher_is_better": higher_is_better,
        }
