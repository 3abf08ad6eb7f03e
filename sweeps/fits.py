"""Scaling fits: each family's metric against training compute, and where two families cross.

A metric is fitted on a log-compute axis ``u = log10(FLOPs)`` in the form that makes a power
law a straight line:

- a positive figure where lower is better (bits, distances, pixel errors): ``log10(y) = a + b u``,
  i.e. ``y = 10^a * C^b`` (b < 0: it improves with compute);
- a share where higher is better (adherence): the same on the error ``1 - y``;
- a figure already logarithmic or signed (PSNR in dB, a drift slope): ``y = a + b u``.

The exponent's interval is a percentile bootstrap over the points, resampled with replacement
within each compute level (points whose compute lies within 0.1 decade of each other: one
budget), so every resample keeps the sweep's budgets and the slope stays defined. With two
budgets and three sizes a family has six points: the interval is wide, and says so. A metric
that does not vary over a family's points (every clip at the floor) is not fitted. Two
families' lines cross where ``a1 + b1 u = a2 + b2 u``; the crossing is reported with the
measured compute range, so an extrapolated one is never read as measured.
"""

from __future__ import annotations

import math

import numpy as np

FORMS = {"power", "error_power", "log_linear"}


def form_of(unit: str, higher_is_better: bool) -> str:
    """The fitted form for a metric of this unit and direction (see the module docstring)."""
    if unit in ("dB", "dB/frame"):
        return "log_linear"
    return "error_power" if higher_is_better and unit == "share" else "power"


def _transform(values: np.ndarray, form: str) -> np.ndarray:
    if form == "log_linear":
        return values
    target = 1.0 - values if form == "error_power" else values
    return np.log10(np.clip(target, 1e-6, None))


def _inverse(q: np.ndarray, form: str) -> np.ndarray:
    if form == "log_linear":
        return q
    return 1.0 - 10.0**q if form == "error_power" else 10.0**q


def _line(u: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(u, q, 1)
    return float(intercept), float(slope)


def compute_levels(u: np.ndarray, gap: float = 0.1) -> list[np.ndarray]:
    """Indices of ``u`` (log10 FLOPs) grouped into levels: sorted, split where two neighbours
    are more than ``gap`` decades apart."""
    order = np.argsort(u)
    levels, current = [], [order[0]]
    for previous, index in zip(order[:-1], order[1:]):
        if u[index] - u[previous] > gap:
            levels.append(np.array(current))
            current = []
        current.append(index)
    levels.append(np.array(current))
    return levels


def fit_scaling(
    flops: list[float],
    values: list[float],
    form: str,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict | None:
    """The fit of ``values`` against ``flops`` in ``form``; None with fewer than two compute
    levels or values that do not vary. Returns intercept ``a``, ``exponent`` b with its bootstrap
    interval, R^2, n, the compute range and ``curve``: the fitted line at 50 points over that
    range."""
    if form not in FORMS:
        raise ValueError(f"form: expected one of {sorted(FORMS)}, got {form!r}")
    pairs = [(c, v) for c, v in zip(flops, values) if c and c > 0 and v is not None and math.isfinite(v)]
    if not pairs:
        return None
    u = np.log10(np.array([c for c, _ in pairs], dtype=float))
    q = _transform(np.array([v for _, v in pairs], dtype=float), form)
    levels = compute_levels(u)
    spread = float(np.sum((q - q.mean()) ** 2))
    if len(levels) < 2 or spread <= 1e-12 * max(1.0, float(np.sum(q**2))):
        return None
    a, b = _line(u, q)
    r2 = 1.0 - float(np.sum((q - (a + b * u)) ** 2)) / spread
    rng = np.random.default_rng(seed)
    slopes = []
    for _ in range(resamples):
        pick = np.concatenate([rng.choice(level, len(level)) for level in levels])
        slopes.append(_line(u[pick], q[pick])[1])
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(slopes, [tail, 1 - tail]) if slopes else (np.nan, np.nan)  # resamples 0
    grid = np.linspace(u.min(), u.max(), 50)
    return {
        "form": form,
        "a": a,
        "exponent": b,
        "exponent_interval": [float(low), float(high)],
        "r2": r2,
        "n": len(u),
        "levels": len(levels),
        "flops_range": [float(10 ** u.min()), float(10 ** u.max())],
        "curve": {"flops": (10**grid).tolist(), "value": _inverse(a + b * grid, form).tolist()},
    }


def crossing(first: dict, second: dict, higher_is_better: bool) -> dict | None:
    """Where two fits of one metric cross: the compute, whether it lies inside the compute both
    measured, and which is better below and above it. None for parallel lines."""
    if first["form"] != second["form"] or first["exponent"] == second["exponent"]:
        return None
    u = (second["a"] - first["a"]) / (first["exponent"] - second["exponent"])
    low = max(first["flops_range"][0], second["flops_range"][0])
    high = min(first["flops_range"][1], second["flops_range"][1])
    flops = 10.0**u
    # on the transformed axis lower is better except for log_linear figures where higher is
    better_above_first = first["exponent"] < second["exponent"]
    if first["form"] == "log_linear" and higher_is_better:
        better_above_first = not better_above_first
    return {
        "flops": flops,
        "measured": bool(low <= flops <= high),
        "better_above": "first" if better_above_first else "second",
    }
