"""How the report writes numbers: table cells for figures with intervals, counts and settings.

Every figure is printed as "mean [ci_low, ci_high] unit", with as many decimals as two
significant digits of the interval width need, so the cell shows what the interval can resolve
and no more. Shared by the Markdown and HTML reports and their tables.
"""

from __future__ import annotations

import math

MISSING = "—"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _decimals_for(x: float, width: float | None = None) -> int:
    """Two significant digits of the interval width, or three of the value when there is none."""
    if width is not None and _finite(width) and width > 0:
        return min(4, max(0, 1 - math.floor(math.log10(width))))
    if not _finite(x) or x == 0:
        return 0
    return min(4, max(0, 2 - math.floor(math.log10(abs(x)))))


def format_number(x, decimals: int | None = None) -> str:
    """A number for a table cell: ``decimals`` fixed, else three significant digits; None -> "—"."""
    if x is None:
        return MISSING
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if decimals is None:
        if isinstance(x, int) or (abs(x) >= 1000 and float(x).is_integer()):
            return f"{int(x):,}"
        decimals = _decimals_for(x)
    return f"{x:,.{decimals}f}"


def format_count(x) -> str:
    """Parameter counts and the like: 4512345 -> "4.51 M"."""
    if not _finite(x):
        return format_number(x)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {suffix}"
    return format_number(x)


def figure_decimals(figure: dict) -> int:
    """Decimals a figure needs: two significant digits of its interval's width."""
    low, high = figure.get("ci_low"), figure.get("ci_high")
    return _decimals_for(figure.get("mean"), high - low if _finite(low) and _finite(high) else None)


def format_figure(figure: dict | None, decimals: int | None = None) -> str:
    """A metric figure -> "mean [ci_low, ci_high] unit" (the interval only when both ends exist).

    ``decimals`` defaults to :func:`figure_decimals` (a table passes its column's finest)."""
    if not figure or figure.get("mean") is None:
        return MISSING
    low, high = figure.get("ci_low"), figure.get("ci_high")
    has_ci = _finite(low) and _finite(high)
    decimals = figure_decimals(figure) if decimals is None else decimals
    text = format_number(figure["mean"], decimals if _finite(figure["mean"]) else None)
    if has_ci:
        text += f" [{format_number(low, decimals)}, {format_number(high, decimals)}]"
    unit = figure.get("unit")
    return f"{text} {unit}" if unit else text


def describe_kind(kind: str | None) -> str:
    """A figure's ``kind`` in words: "mean" and "best-of-N" are known, others are shown as given."""
    if kind in (None, "mean"):
        return "mean over clips and seeds"
    if kind.startswith("best-of-"):
        return f"best of {kind.removeprefix('best-of-')} samples per clip, then mean over clips and seeds"
    return kind


def describe_value(value) -> str:
    """Free-form settings and definitions in one line: dicts as "k: v, ...", lists comma-joined."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {describe_value(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, (list, tuple)):
        return ", ".join(describe_value(v) for v in value) or MISSING
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)
