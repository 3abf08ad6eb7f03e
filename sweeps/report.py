"""The sweep's report: report.html and report.md beside results.json, plots under OUT/plots/.

- **Scaling**: every headline metric against training FLOPs (log axes for power laws), one
  color per family, each point marked by its size, with the fitted line and its exponent.
- **Crossings**: where two families' fitted lines cross, and whether that compute was measured.
- **Sampling cost**: each metric against the network FLOPs of sampling a clip (counted as it
  ran), so quality can be read at equal inference cost; the measured seconds are in the table.
- **Data knobs** (when the grid has them): metrics against the image share; caption adherence
  by training captions and evaluation captions; paired verdicts against each knob's baseline.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from matplotlib.figure import Figure

from vtlm.eval.report.html import STYLE
from vtlm.eval.report.plots import figure_png, generator_colors

from .collect import METRICS, SweepMetric

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _size_key(points: list[dict]) -> str | None:
    """The grid key that names a point's size (a preset), to mark points by."""
    for key in ("preset_name", "model.dim", "model.depth"):
        if any(key in p for p in points):
            return key
    return None


def _panels(count: int) -> tuple[Figure, list]:
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows))
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(count)]
    fig.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.12, wspace=0.35, hspace=0.55)
    return fig, axes


def _present(points: list[dict]) -> list[SweepMetric]:
    return [m for m in METRICS if any(m.key in p for p in points)]


def scaling_plot(points: list[dict], fits: dict) -> Figure | None:
    metrics = _present(points)
    if not metrics:
        return None
    colors = generator_colors([p["family"] for p in points])
    size_key = _size_key(points)
    sizes = list(dict.fromkeys(str(p.get(size_key)) for p in points)) if size_key else []
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for family, color in colors.items():
            mine = [
                p for p in points if p["family"] == family and metric.key in p and p.get("training_flops")
            ]
            for p in mine:
                marker = MARKERS[sizes.index(str(p.get(size_key))) % len(MARKERS)] if size_key else "o"
                ax.scatter(p["training_flops"], p[metric.key], color=color, marker=marker, s=22, zorder=3)
            fit = fits.get(metric.key, {}).get("fits", {}).get(family)
            if fit is not None:
                label = f"{family}: b={fit['exponent']:.2f}"
                ax.plot(fit["curve"]["flops"], fit["curve"]["value"], color=color, lw=1.2, label=label)
            elif mine:
                ax.plot([], [], color=color, label=family)
        ax.set_xscale("log")
        shown = [p[metric.key] for p in points if metric.key in p and p[metric.key] is not None]
        if fit_form_is_power(metric) and shown and min(shown) > 0:
            ax.set_yscale("log")
        ax.set_title(metric.title, fontsize=9)
        ax.set_xlabel("training FLOPs", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    if sizes:
        fig.suptitle(
            f"markers: {size_key} = "
            + ", ".join(f"{s} ({MARKERS[i % len(MARKERS)]})" for i, s in enumerate(sizes)),
            fontsize=9,
        )
    return fig


def fit_form_is_power(metric: SweepMetric) -> bool:
    return metric.unit not in ("dB", "dB/frame", "share")


def cost_plot(points: list[dict]) -> Figure | None:
    """Each metric against the cost of sampling a text-to-video clip: the network FLOPs counted
    as it ran (the same on every machine), else the measured seconds."""
    key = (
        "sampling_flops_per_clip"
        if any(p.get("sampling_flops_per_clip") for p in points)
        else "sampling_seconds_per_clip"
    )
    label = (
        "network FLOPs to sample a t2v clip"
        if key.startswith("sampling_flops")
        else "seconds to sample a t2v clip (this machine)"
    )
    metrics = [m for m in _present(points) if any(p.get(key) for p in points)]
    if not metrics:
        return None
    colors = generator_colors([p["family"] for p in points])
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for family, color in colors.items():
            mine = [p for p in points if p["family"] == family and metric.key in p and p.get(key)]
            ax.scatter([p[key] for p in mine], [p[metric.key] for p in mine], color=color, s=22, label=family)
        ax.set_xscale("log")
        ax.set_title(metric.title, fontsize=9)
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return fig


def image_share_plot(points: list[dict]) -> Figure | None:
    key = "data.image_share"
    metrics = [m for m in _present(points) if not m.drift]
    if not any(key in p for p in points) or not metrics:
        return None
    colors = generator_colors([p["family"] for p in points])
    fig, axes = _panels(len(metrics))
    for ax, metric in zip(axes, metrics):
        for family, color in colors.items():
            mine = sorted(
                (p for p in points if p["family"] == family and metric.key in p), key=lambda p: p[key]
            )
            groups: dict[str, list[dict]] = {}
            for p in mine:  # one line per setting of the other grid keys
                rest = tuple((k, str(v)) for k, v in p.items() if "." in k and k != key)
                groups.setdefault(str(rest), []).append(p)
            for members in groups.values():
                ax.plot(
                    [p[key] for p in members], [p[metric.key] for p in members], marker="o", color=color, lw=1
                )
            ax.plot([], [], color=color, label=family)
        ax.set_title(metric.title, fontsize=9)
        ax.set_xlabel("share of image batches in training", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    return fig


def caption_plot(points: list[dict]) -> Figure | None:
    key = "data.caption_field"
    if not any(key in p for p in points):
        return None
    evals = [m for m in METRICS if m.metric == "caption_adherence" and any(m.key in p for p in points)]
    if not evals:
        return None
    fig = Figure(figsize=(6.5, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{p['family']}\n{p[key]}" for p in points if key in p]
    width = 0.8 / len(evals)
    for i, metric in enumerate(evals):
        values = [p.get(metric.key, float("nan")) for p in points if key in p]
        ax.bar([j + i * width for j in range(len(values))], values, width, label=metric.title)
    ax.set_xticks([j + width * (len(evals) - 1) / 2 for j in range(len(labels))], labels, fontsize=6)
    ax.set_ylabel("caption adherence", fontsize=8)
    ax.set_title("adherence by training captions (x) and evaluation captions (bars)", fontsize=9)
    ax.legend(fontsize=6)
    fig.subplots_adjust(bottom=0.25)
    return fig


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def tables(table: dict, fits: dict, verdicts: list[dict]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The report's tables as (header, rows), shared by the HTML and the Markdown."""
    points = table["points"]
    grid_keys = [k for k in table["grid"] if k != "family"]
    metrics = _present(points)
    header = [
        "point",
        "family",
        *grid_keys,
        "params",
        "steps",
        "training FLOPs",
        "train s",
        "sample FLOPs/clip",
        "sample s/clip",
    ]
    rows = [
        [p["name"], p["family"], *[_fmt(p.get(k)) for k in grid_keys], _fmt(p["params"]), _fmt(p["steps"]),
         _fmt(p["training_flops"]), _fmt(p["training_seconds"]), _fmt(p.get("sampling_flops_per_clip")),
         _fmt(p.get("sampling_seconds_per_clip"))]
        + [_fmt(p.get(m.key)) for m in metrics]
        for p in points
    ]  # fmt: skip
    out = {"points": (header + [m.key for m in metrics], rows)}
    fit_rows = []
    for key, found in fits.items():
        for family, fit in found["fits"].items():
            low, high = fit["exponent_interval"]
            fit_rows.append(
                [
                    key,
                    family,
                    fit["form"],
                    f"{fit['exponent']:.3f} [{_fmt(low)}, {_fmt(high)}]",
                    f"{fit['r2']:.2f}",
                    str(fit["n"]),
                ]
            )
    out["fits"] = (["metric", "family", "form", "exponent b [95% bootstrap]", "R^2", "points"], fit_rows)
    cross_rows = [
        [
            key,
            f"{c['first']} / {c['second']}",
            _fmt(c["flops"]),
            "measured" if c["measured"] else "extrapolated",
            c["better_above"],
        ]
        for key, found in fits.items()
        for c in found["crossings"]
    ]
    out["crossings"] = (["metric", "families", "crossing FLOPs", "range", "better above"], cross_rows)
    verdict_rows = [
        [v["knob"], f"{_fmt(v['value'])} vs {_fmt(v['baseline'])}", f"{v['a']} vs {v['b']}", v["caption"], v["protocol"],
         v["metric"], f"{_fmt(v['mean_diff'])} [{_fmt(v['interval'][0])}, {_fmt(v['interval'][1])}]", _fmt(v["p_holm"]),
         v["verdict"]]
        for v in verdicts
    ]  # fmt: skip
    out["verdicts"] = (
        [
            "knob",
            "value vs baseline",
            "points",
            "eval captions",
            "protocol",
            "metric",
            "mean diff [95%]",
            "p (Holm)",
            "verdict",
        ],
        verdict_rows,
    )
    return out


def write_report(table: dict, fits: dict, verdicts: list[dict], out: Path, command: str) -> dict[str, Path]:
    """report.html, report.md and the plots (PNG) under ``out``."""
    plots_dir = out / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    points = table["points"]
    figures = {
        "scaling": (scaling_plot(points, fits), "metrics against training FLOPs, with fitted power laws"),
        "sampling_cost": (cost_plot(points), "metrics against the cost of sampling a clip (network FLOPs)"),
        "image_share": (image_share_plot(points), "metrics against the share of images in training"),
        "captions": (caption_plot(points), "caption adherence by training and evaluation captions"),
    }
    written = {}
    for name, (fig, _) in figures.items():
        if fig is not None:
            path = plots_dir / f"{name}.png"
            path.write_bytes(figure_png(fig, dpi=90))
            written[name] = path
    parts = tables(table, fits, verdicts)
    titles = {
        "points": "Points",
        "fits": "Scaling fits",
        "crossings": "Crossings",
        "verdicts": "Data knobs: paired verdicts",
    }
    machine = next((p.get("machine") for p in points if p.get("machine")), None)
    html = [f"<!doctype html><html><head><meta charset='utf-8'><title>vtlm sweep</title><style>{STYLE}</style></head><body>",
            f"<h1>vtlm sweep: {escape(table['out'])}</h1>",
            f"<p class='note'>command: <code>{escape(command)}</code>; {len(points)} points finished, {len(table['missing'])} missing"
            + (f"; machine: {escape(str(machine))}" if machine else "") + "</p>"]  # fmt: skip
    md = [f"# vtlm sweep: {table['out']}", "", f"command: `{command}`; {len(points)} points finished", ""]
    for name, (header, rows) in parts.items():
        if rows:
            html.append(f"<h2>{titles[name]}</h2>" + _table(header, rows))
            md += [f"## {titles[name]}", "", _md_table(header, rows), ""]
        if name == "fits":
            for plot, (_, alt) in figures.items():
                if plot in written:
                    html.append(
                        f"<h2>{escape(alt)}</h2><figure><img class='plot' data-plot='{plot}' src='plots/{plot}.png' alt='{escape(alt)}'></figure>"
                    )
                    md += [f"![{alt}](plots/{plot}.png)", ""]
    if table["missing"]:
        html.append("<p class='warn'>not finished: " + escape(", ".join(table["missing"])) + "</p>")
    html.append("</body></html>")
    (out / "report.html").write_text("\n".join(html))
    (out / "report.md").write_text("\n".join(md))
    return {"html": out / "report.html", "md": out / "report.md", **written}
