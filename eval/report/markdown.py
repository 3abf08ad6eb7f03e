"""results.json -> Markdown summary, and the table cells the HTML page shares with it.

The results dict is the harness's output (schema ``vtlm_eval`` 1): ``settings``, ``generators``,
``protocols``, one ``results`` row per (protocol, generator, variant) with ``metrics`` (name ->
figure: mean, ci_low, ci_high, n, kind, unit, higher_is_better), ``curves``, ``drift`` and
``cost``, plus ``sample_grids`` and ``not_computed`` notes. Every figure is printed as
"mean [ci_low, ci_high] unit", with as many decimals as two significant digits of the interval
width need, so the cell shows what the interval can resolve and no more.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from vtlm.eval.report import comparisons
from vtlm.eval.report.decomposition import decomposition_tables
from vtlm.eval.report.formats import (  # noqa: F401  (re-exported: the reports' cell formats)
    MISSING,
    _finite,
    describe_kind,
    describe_value,
    figure_decimals,
    format_count,
    format_figure,
    format_number,
)

SCHEMA_VERSION = 1
COST_COLUMNS = (  # cost key -> column title
    ("seconds_per_clip", "s / clip"),
    ("seconds_per_video_second", "s / video second"),
    ("time_to_first_frame", "time to first frame (s)"),
    ("frames_per_second", "frames / s"),
    ("function_evaluations", "function evaluations"),
    ("flops_per_clip", "network GFLOPs / clip"),
    ("peak_memory_mb", "peak memory (MB)"),
    ("params", "params"),
)


def check_results(results: dict) -> None:
    """Raise ValueError unless ``results`` looks like a schema-1 results dict."""
    if not isinstance(results, dict):
        raise ValueError(f"results: expected a dict (results.json), got {type(results).__name__}")
    if results.get("vtlm_eval") != SCHEMA_VERSION:
        raise ValueError(
            f"results['vtlm_eval']: expected schema version {SCHEMA_VERSION}, got {results.get('vtlm_eval')!r}"
        )
    rows = results.get("results")
    if not isinstance(rows, list):
        raise ValueError(f"results['results']: expected a list of rows, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        missing = [key for key in ("protocol", "generator", "variant") if key not in row]
        if missing:
            raise ValueError(
                f"results['results'][{i}]: expected keys protocol, generator, variant; missing {missing}"
            )


# ---------------------------------------------------------------------------- numbers and cells


def row_label(row: dict) -> str:
    """ "gpt" for the default variant, "gpt (steps=10)" otherwise."""
    return row["generator"] if row["variant"] == "default" else f"{row['generator']} ({row['variant']})"


def protocol_names(results: dict) -> list[str]:
    """Protocols in definition order, then any that only appear in rows or sample grids."""
    names = list(results.get("protocols") or {})
    for item in [*results["results"], *(results.get("sample_grids") or [])]:
        if item.get("protocol") not in names:
            names.append(item.get("protocol"))
    return names


def protocol_rows(results: dict, protocol: str) -> list[dict]:
    return [row for row in results["results"] if row["protocol"] == protocol]


def metric_names(rows: Sequence[dict], key: str = "metrics") -> list[str]:
    """Names under ``row[key]`` across rows, in first-seen order."""
    names: list[str] = []
    for row in rows:
        names += [name for name in row.get(key) or {} if name not in names]
    return names


def metric_header(rows: Sequence[dict], name: str) -> str:
    """Column title: the metric and which way is better."""
    for row in rows:
        figure = (row.get("metrics") or {}).get(name)
        if figure and "higher_is_better" in figure:
            return f"{name} {'↑' if figure['higher_is_better'] else '↓'}"
    return name


def quality_table(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: one row per generator/variant, one column per metric; a column shows
    every row with the decimals its most precise figure needs."""
    names = metric_names(rows)
    header = ["generator", "variant", *(metric_header(rows, n) for n in names)]
    figures = [[(row.get("metrics") or {}).get(n) for n in names] for row in rows]
    decimals = [
        max((figure_decimals(line[j]) for line in figures if line[j]), default=0) for j in range(len(names))
    ]
    cells = [
        [row["generator"], row["variant"], *map(format_figure, line, decimals)]
        for row, line in zip(rows, figures)
    ]
    return header, cells


# The headline: a few figures of every protocol side by side (all figures are in the sections).
HEADLINE_METRICS = (
    "psnr",
    "ssim",
    "adherence_colors",
    "caption_adherence",
    "position_error",
    "classifier_fd",
)


def headline_table(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and cells: one line per protocol and default variant (rollouts: per strategy),
    the headline metrics some line reports, the paired verdicts against the other generators
    (when results.json has comparisons) and seconds per clip."""
    rows = [
        row
        for protocol in protocol_names(results)
        for row in protocol_rows(results, protocol)
        if row["variant"] in ("default", "sliding", "chaining")
    ]
    names = [n for n in HEADLINE_METRICS if any(n in (row.get("metrics") or {}) for row in rows)]
    figures = [[(row.get("metrics") or {}).get(n) for n in names] for row in rows]
    decimals = [max((figure_decimals(f[j]) for f in figures if f[j]), default=0) for j in range(len(names))]
    paired = bool(results.get("comparisons"))
    header = ["protocol", "generator", "variant", *(metric_header(rows, n) for n in names),
              *([comparisons.VERDICT_HEADER] if paired else []), "s / clip"]  # fmt: skip
    cells = [
        [row["protocol"], row["generator"], row["variant"], *map(format_figure, line, decimals),
         *([comparisons.headline_verdicts(results, row)] if paired else []),
         format_number((row.get("cost") or {}).get("seconds_per_clip"))]
        for row, line in zip(rows, figures)
    ]  # fmt: skip
    return header, cells


def cost_table(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the sampling cost, only the columns some row reports."""
    columns = [(k, t) for k, t in COST_COLUMNS if any(k in (row.get("cost") or {}) for row in rows)]
    cells = []
    for row in rows:
        cost = row.get("cost") or {}
        line = [row["generator"], row["variant"]]
        for key, _ in columns:
            value = cost.get(key)
            if key == "flops_per_clip" and value is not None:
                value = value / 1e9
            line.append(format_count(value) if key == "params" else format_number(value))
        cells.append(line)
    return ["generator", "variant", *(t for _, t in columns)], cells


def drift_table(rows: Sequence[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the drift summaries (one line per row and metric)."""
    header = [
        "generator",
        "variant",
        "metric",
        "start",
        "end",
        "slope / frame",
        "threshold",
        "frames to threshold",
    ]
    cells = []
    for row in rows:
        for name, drift in (row.get("drift") or {}).items():
            reached = drift.get("frames_to_threshold")
            values = [drift.get(k) for k in ("start_value", "end_value", "degradation_slope", "threshold")]
            cells.append(
                [row["generator"], row["variant"], name]
                + [format_number(v) for v in values]
                + ["not reached" if reached is None else format_number(reached)]
            )
    return header, cells


def kind_lines(rows: Sequence[dict]) -> list[str]:
    """One sentence per metric: what the figure is (its kind), its unit, direction and n."""
    lines = []
    for name in metric_names(rows):
        figures = [row["metrics"][name] for row in rows if name in (row.get("metrics") or {})]
        kinds = list(dict.fromkeys(describe_kind(f.get("kind")) for f in figures))
        counts = sorted({f["n"] for f in figures if f.get("n") is not None})
        text = f"{name}: {'; '.join(kinds)}"
        if figures[0].get("unit"):
            text += f", in {figures[0]['unit']}"
        if "higher_is_better" in figures[0]:
            text += ", higher is better" if figures[0]["higher_is_better"] else ", lower is better"
        if counts:
            text += f", n = {counts[0]}" if len(counts) == 1 else f", n = {counts[0]}–{counts[-1]}"
        lines.append(text)
    return lines


def interval_sentence(settings: dict) -> str:
    confidence, resamples = settings.get("confidence"), settings.get("bootstrap")
    text = "Brackets: "
    text += f"{confidence * 100:g}% confidence interval" if _finite(confidence) else "confidence interval"
    return text + (f" (bootstrap, {resamples} resamples)." if resamples else ".")


# ---------------------------------------------------------------------------- Markdown


def _md_text(text) -> str:
    """Text from the results inside Markdown: HTML-escaped, no table-breaking pipes or newlines."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_code(text) -> str:
    fence = "``" if "`" in str(text) else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _md_table(header: list[str], cells: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_text(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_text(c) for c in line) + " |" for line in cells]
    return [*lines, ""]


def render_markdown(results: dict) -> str:
    """The whole Markdown report of a results dict (see the module docstring)."""
    check_results(results)
    settings = results.get("settings") or {}
    out = ["# vtlm evaluation report", ""]
    if results.get("created"):
        out.append(f"- created: {_md_text(results['created'])}")
    if results.get("command"):
        out.append(f"- command: {_md_code(results['command'])}")
    tokenizer = results.get("tokenizer") or {}
    if tokenizer:
        out.append(
            f"- tokenizer: {_md_text(tokenizer.get('path', MISSING))} (sha256 {_md_text(tokenizer.get('sha256', MISSING))})"
        )
    if results.get("machine"):
        out.append(f"- machine: {_md_text(describe_value(results['machine']))}")
    out += ["", "## Settings", ""]
    out += [f"- {_md_text(key)}: {_md_text(describe_value(value))}" for key, value in settings.items()]
    out += ["", "## Not computed", ""]
    out += [f"- {_md_text(note)}" for note in results.get("not_computed") or []] or [
        "- (everything was computed)"
    ]
    out += ["", "## Generators", ""]
    out += _md_table(*generator_table(results.get("generators") or {}))
    out += ["", "## Headline", ""] + _md_table(*headline_table(results))
    out += [
        "",
        interval_sentence(settings),
        "Every figure and every metric: the protocol sections below.",
        "",
    ]
    for key, title in comparisons.SECTIONS.items():
        if results.get(key):
            out += [f"## {title}", ""] + _md_table(*comparisons.comparison_table(results, key))
            out += [_md_text(comparisons.comparison_sentence(results, key)), ""]
    for protocol in protocol_names(results):
        out += _markdown_protocol(results, protocol)
    return "\n".join(out).rstrip() + "\n"


def generator_table(generators: dict) -> tuple[list[str], list[list[str]]]:
    header = [
        "generator",
        "kind",
        "params",
        "training steps",
        "training time (s)",
        "training FLOPs",
        "sampling",
        "path",
    ]
    cells = []
    for name, gen in generators.items():
        training = gen.get("training") or {}
        flops = training.get("flops")
        cells.append(
            [name, str(gen.get("kind", MISSING)), format_count(gen.get("params")), format_number(training.get("steps")),
             format_number(training.get("seconds")), f"{flops:.2g}" if _finite(flops) else MISSING,
             describe_value(gen.get("sampling") or {}), str(gen.get("path", MISSING))]
        )  # fmt: skip
    return header, cells


def _markdown_protocol(results: dict, protocol: str) -> list[str]:
    definition = dict((results.get("protocols") or {}).get(protocol) or {})
    notes = definition.pop("notes", None)
    rows = protocol_rows(results, protocol)
    out = [f"## Protocol: {_md_text(protocol)}", ""]
    if definition:
        out += [_md_text(describe_value(definition)), ""]
    if notes:
        out += [_md_text(notes), ""]
    if rows:
        out += ["### Quality", ""]
        out += _md_table(*quality_table(rows))
        out += [interval_sentence(results.get("settings") or {}), ""]
        out += [f"- {_md_text(line)}" for line in kind_lines(rows)] + [""]
        for title, header, cells, note in decomposition_tables(results, protocol):
            out += [f"### {title}", ""] + _md_table(header, cells) + [_md_text(note), ""]
        header, cells = cost_table(rows)
        if len(header) > 2:
            out += ["### Cost", ""] + _md_table(header, cells)
        header, cells = drift_table(rows)
        if cells:
            out += ["### Drift", ""] + _md_table(header, cells)
    else:
        out += ["No results for this protocol.", ""]
    grids = [g for g in results.get("sample_grids") or [] if g.get("protocol") == protocol]
    if grids:
        out += ["### Samples", ""]
    for grid in grids:
        out.append(
            f"- [{_md_text(grid.get('title', grid['file']))}](<{grid['file']}>): columns {_md_text(' | '.join(grid.get('columns') or []))}"
        )
        out += [f"  {i}. {_md_text(caption)}" for i, caption in enumerate(grid.get("rows") or [], start=1)]
    return [*out, ""] if grids else out
