"""The report's plots, drawn with matplotlib's Agg canvas (no pyplot, no display, no global state).

Each ``*_plot`` takes the result rows of one protocol (see :mod:`vtlm.eval.report.markdown`) and
returns a :class:`matplotlib.figure.Figure`, or None when the rows hold nothing to draw;
:func:`figure_png` turns a figure into PNG bytes. Colors follow the generator (same color in
every plot), markers and line styles follow the variant.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from vtlm.eval.report.formats import _finite
from vtlm.eval.report.markdown import metric_names, row_label

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Rollouts: sliding window solid, chaining dashed; other variants take the next free style.
FIXED_STYLES = {"default": "-", "sliding": "-", "chaining": "--"}
OTHER_STYLES = (":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)))


def generator_colors(names: Sequence[str]) -> dict[str, str]:
    """One color per generator name, in order (cycling after eight)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def variant_styles(variants: Sequence[str]) -> dict[str, object]:
    """A matplotlib line style per variant name: see FIXED_STYLES, the rest cycle OTHER_STYLES."""
    others = [v for v in dict.fromkeys(variants) if v not in FIXED_STYLES]
    styles = {v: OTHER_STYLES[i % len(OTHER_STYLES)] for i, v in enumerate(others)}
    return {v: FIXED_STYLES.get(v, styles.get(v)) for v in dict.fromkeys(variants)}


def set_margins(
    fig: Figure, left: float, right: float, top: float, bottom: float, wgap: float = 0.0, hgap: float = 0.0
) -> None:
    """Fixed margins and gaps between panels, in inches (a fixed layout draws in about half the
    time of matplotlib's constrained layout, which measures every text first)."""
    width, height = fig.get_size_inches()
    axes = fig.axes[0].get_subplotspec().get_gridspec() if fig.axes else None
    ncols, nrows = (axes.ncols, axes.nrows) if axes is not None else (1, 1)
    panel_w = (width - left - right - wgap * (ncols - 1)) / ncols
    panel_h = (height - top - bottom - hgap * (nrows - 1)) / nrows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=wgap / panel_w if ncols > 1 else 0.2,
        hspace=hgap / panel_h if nrows > 1 else 0.2,
    )


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def pareto_front(
    costs: Sequence[float], qualities: Sequence[float], higher_is_better: bool = True
) -> list[int]:
    """Indices of the points no other point dominates, by increasing cost.

    Point j dominates i when it costs no more and is no worse, and is strictly better in one of
    the two. Exact duplicates do not dominate each other (both are kept).
    """
    if len(costs) != len(qualities):
        raise ValueError(f"costs, qualities: expected equal lengths, got {len(costs)} and {len(qualities)}")
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -sign * qualities[i]))
    front: list[int] = []
    best, best_cost = -math.inf, math.inf  # best quality so far and the least cost reaching it
    for i in order:
        quality = sign * qualities[i]
        if quality > best:
            best, best_cost = quality, costs[i]
            front.append(i)
        elif quality == best and costs[i] == best_cost:
            front.append(i)
    return front


def _axis_label(name: str, figure: dict) -> str:
    unit = f" ({figure['unit']})" if figure.get("unit") else ""
    if "higher_is_better" not in figure:
        return name + unit
    return f"{name}{unit}, {'higher' if figure['higher_is_better'] else 'lower'} is better"


def _floats(values: Sequence) -> list[float]:
    """Curve values as floats, an undefined one (None in results.json) as NaN (a gap in the line)."""
    return [math.nan if v is None else float(v) for v in values]


def _finite_figure(figure: dict | None) -> bool:
    """A figure with a finite mean (its interval may be missing: a set-level figure of one seed)."""
    return bool(figure) and _finite(figure.get("mean"))


def _error_bars(figures: Sequence[dict]) -> list[list[float]]:
    """Matplotlib's yerr: [below, above] each mean, 0 where a figure has no interval."""
    below, above = [], []
    for f in figures:
        low, high = f.get("ci_low"), f.get("ci_high")
        finite = _finite(low) and _finite(high)
        below.append(f["mean"] - low if finite else 0.0)
        above.append(high - f["mean"] if finite else 0.0)
    return [below, above]


# Sampling-cost axes of the Pareto plot: the cost dict's key -> axis label.
COST_AXES = {"seconds_per_clip": "seconds per clip", "flops_per_clip": "network FLOPs per clip"}


def pareto_plot(
    rows: Sequence[dict], metric: str, colors: dict[str, str], title: str, cost: str = "seconds_per_clip"
) -> Figure | None:
    """Quality ``metric`` (mean with its interval) against a sampling cost per clip (``cost``:
    a key of COST_AXES, measured seconds or counted FLOPs), one point per row.

    Each generator's own front (across its step counts or sampling settings) is a thin line in
    its color; the front across all rows is a thick grey line underneath.
    """
    points = [
        row
        for row in rows
        if _finite_figure((row.get("metrics") or {}).get(metric))
        and isinstance((row.get("cost") or {}).get(cost), (int, float))
        and row["cost"][cost] > 0
    ]
    if not points:
        return None
    figures = [row["metrics"][metric] for row in points]
    label = COST_AXES[cost]
    costs = [row["cost"][cost] for row in points]
    means = [f["mean"] for f in figures]
    higher = figures[0].get("higher_is_better", True)
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    set_margins(fig, left=0.85, right=0.2, top=0.4, bottom=0.6)
    front = pareto_front(costs, means, higher)
    ax.plot([costs[i] for i in front], [means[i] for i in front], color="0.6", lw=5, alpha=0.45,
            solid_capstyle="round", zorder=1, label="Pareto front (all)")  # fmt: skip
    generators = list(dict.fromkeys(row["generator"] for row in points))
    for g, generator in enumerate(generators):
        mine = [i for i, row in enumerate(points) if row["generator"] == generator]
        own = [mine[j] for j in pareto_front([costs[i] for i in mine], [means[i] for i in mine], higher)]
        if len(own) > 1:
            ax.plot(
                [costs[i] for i in own], [means[i] for i in own], color=colors[generator], lw=1.2, zorder=2
            )
        ax.errorbar(
            [costs[i] for i in mine],
            [means[i] for i in mine],
            yerr=_error_bars([figures[i] for i in mine]),
            fmt=MARKERS[g % len(MARKERS)], color=colors[generator], ms=7, capsize=3, zorder=3, label=generator,
        )  # fmt: skip
        for i in mine:
            ax.annotate(points[i]["variant"], (costs[i], means[i]), xytext=(6, 5), textcoords="offset points",
                        fontsize=8, color="0.25")  # fmt: skip
    if max(costs) / min(costs) > 8:
        ax.set_xscale("log")
        ax.set_xlabel(f"sampling cost: {label} (log scale)")
    else:
        ax.set_xlabel(f"sampling cost: {label}")
    ax.margins(x=0.12, y=0.08)  # room for the variant labels
    ax.set_ylabel(_axis_label(metric, figures[0]))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    return fig


def drift_plot(
    rows: Sequence[dict], colors: dict[str, str], title: str, context_frames: int | None = None
) -> Figure | None:
    """Per-frame curves (mean line, interval band), one panel per metric, one line per row.

    Color = generator, line style = variant (sliding solid, chaining dashed). A drift
    ``threshold`` is a dotted grey line; ``context_frames`` is named in the frame axis label.
    """
    names = metric_names(rows, key="curves")
    if not names:
        return None
    styles = variant_styles([row["variant"] for row in rows])
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(figsize=(4.6 * ncols + 1.8, 3.4 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    set_margins(fig, left=0.8, right=2.0, top=0.75, bottom=0.55, wgap=0.8, hgap=0.85)
    for ax, name in zip(axes, names):
        unit_figure = {}
        for row in rows:
            curve = (row.get("curves") or {}).get(name)
            if not curve or not curve.get("frames"):
                continue
            unit_figure = unit_figure or curve
            color, style = colors[row["generator"]], styles[row["variant"]]
            ax.plot(
                curve["frames"],
                _floats(curve["mean"]),
                color=color,
                linestyle=style,
                lw=1.8,
                label=row_label(row),
            )
            if curve.get("ci_low") and curve.get("ci_high"):
                ax.fill_between(
                    curve["frames"],
                    _floats(curve["ci_low"]),
                    _floats(curve["ci_high"]),
                    color=color,
                    alpha=0.13,
                    lw=0,
                )
        thresholds = {(row.get("drift") or {}).get(name, {}).get("threshold") for row in rows} - {None}
        for threshold in sorted(thresholds):
            ax.axhline(threshold, color="0.4", linestyle=":", lw=1, label=f"drift threshold {threshold:g}")
        context = f" (frames 0–{context_frames - 1} are context)" if context_frames else ""
        ax.set_xlabel("frame index" + context)
        ax.set_ylabel(_axis_label(name, unit_figure))
        if len(names) > 1:
            ax.set_title(name)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    legend = {}  # label -> handle, across panels (each has its own threshold)
    for ax in axes[: len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(
        list(legend.values()),
        list(legend),
        loc="upper right",
        bbox_to_anchor=(1.0, 0.93),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(title, y=1 - 0.12 / fig.get_size_inches()[1])
    return fig


def bar_plot(rows: Sequence[dict], colors: dict[str, str], title: str) -> Figure | None:
    """One panel per metric: a bar per row at its mean, error bars from ci_low to ci_high."""
    names = [
        n for n in metric_names(rows) if any(_finite_figure((r.get("metrics") or {}).get(n)) for r in rows)
    ]
    if not names:
        return None
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    width = max(4.2, 0.55 * len(rows) + 1.5)
    fig = Figure(figsize=(width * ncols, 3.6 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    set_margins(fig, left=0.8, right=0.2, top=0.8, bottom=1.25, wgap=0.85, hgap=1.55)
    for ax, name in zip(axes, names):
        drawn = [r for r in rows if _finite_figure((r.get("metrics") or {}).get(name))]
        figures = [r["metrics"][name] for r in drawn]
        x = range(len(drawn))
        ax.bar(x, [f["mean"] for f in figures], color=[colors[r["generator"]] for r in drawn], alpha=0.85)
        ax.errorbar(
            x,
            [f["mean"] for f in figures],
            yerr=_error_bars(figures),
            fmt="none", ecolor="black", capsize=4, lw=1.2,
        )  # fmt: skip
        ax.set_xticks(list(x), [row_label(r) for r in drawn], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(_axis_label(name, figures[0]), fontsize=9)
        ax.set_title(f"{name} ({figures[0].get('kind', 'mean')})", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title, y=1 - 0.12 / fig.get_size_inches()[1])
    return fig
