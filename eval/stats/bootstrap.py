"""Figures over several seeds (or clips): mean, spread and a percentile-bootstrap interval.

Values are a 1-D float numpy array, one per seed or clip. Non-finite values (NaN, +-inf: a
diverged run, a PSNR of identical frames) are dropped before anything is computed, with a
RuntimeWarning; ``summarize`` reports how many in ``n_dropped``, so a table can show them.
The caller records whether a figure is a mean or a best-of-N; these functions return numbers only.
"""

from __future__ import annotations

import warnings

import numpy as np

_CHUNK_ELEMENTS = 1 << 20  # resampled values held at once


def _finite(values: np.ndarray) -> tuple[np.ndarray, int]:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values: expected a 1-D array, got shape {values.shape}")
    keep = np.isfinite(values)
    dropped = int((~keep).sum())
    if dropped:
        warnings.warn(f"dropped {dropped} non-finite of {len(values)} values", RuntimeWarning, stacklevel=3)
    return values[keep], dropped


def _bootstrap(values: np.ndarray, confidence: float, num_resamples: int, seed: int) -> tuple[float, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples: expected at least 1, got {num_resamples}")
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(num_resamples)
    step = max(1, _CHUNK_ELEMENTS // n)
    for begin in range(0, num_resamples, step):
        count = min(step, num_resamples - begin)
        picks = rng.integers(0, n, size=(count, n))  # (count, n) indices drawn with replacement
        means[begin : begin + count] = values[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``: (low, high).

    values: float (N,); non-finite entries are dropped (with a warning). One value v gives
    (v, v); no finite value gives (nan, nan). The same seed gives the same interval.
    """
    finite, _ = _finite(values)
    return _bootstrap(finite, confidence, num_resamples, seed)


def summarize(
    values: np.ndarray, confidence: float = 0.95, num_resamples: int = 2000, seed: int = 0
) -> dict[str, float | int]:
    """Mean, sample standard deviation (ddof 1; 0 for one value) and bootstrap interval.

    values: float (N,), one per seed or clip; non-finite entries are dropped (with a warning).
    Returns {"mean", "std", "ci_low", "ci_high"} (nan when no value is finite) and the counts
    {"n": values used, "n_dropped": non-finite values dropped}.
    """
    finite, dropped = _finite(values)
    low, high = _bootstrap(finite, confidence, num_resamples, seed)
    n = len(finite)
    return {
        "mean": float(finite.mean()) if n else float("nan"),
        "std": float(finite.std(ddof=1)) if n > 1 else (0.0 if n else float("nan")),
        "ci_low": low,
        "ci_high": high,
        "n": n,
        "n_dropped": dropped,
    }


def best_of_n(per_sample: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Best score of each clip over its samples.

    per_sample: float (clips, samples), one score per generated sample of each clip.
    Returns float64 (clips,): the max over samples if higher is better, else the min. NaN
    samples are skipped; a clip whose samples are all NaN gives NaN.
    """
    per_sample = np.asarray(per_sample, dtype=np.float64)
    if per_sample.ndim != 2 or per_sample.shape[1] < 1:
        raise ValueError(
            f"per_sample: expected a (clips, samples) array with samples >= 1, got {per_sample.shape}"
        )
    worst = -np.inf if higher_is_better else np.inf
    filled = np.where(np.isnan(per_sample), worst, per_sample)
    best = filled.max(axis=1) if higher_is_better else filled.min(axis=1)
    return np.where(np.isnan(per_sample).all(axis=1), np.nan, best)
