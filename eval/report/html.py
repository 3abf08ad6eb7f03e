"""results.json -> one self-contained HTML page: tables, plots (inline PNG) and sample videos.

Nothing on the page points outside it: plots are base64 PNG data URIs drawn by
:mod:`vtlm.eval.report.plots`, sample grids are embedded as data URIs (mp4/webm as ``<video>``,
gif/png as ``<img>``), and the style sheet and the one small script are inline. Every text taken
from the results (captions, names, notes) goes through :func:`html.escape`.

Element ids a test or a reader can look for: ``plot-<p>-pareto``, ``plot-<p>-drift``,
``plot-<p>-bars`` (``<img data-plot=... data-protocol=...>``, ``<p>`` = protocol index and
slug) and ``sample-<k>`` (``<video>`` or ``<img>`` with ``data-sample`` = its file). The inline
script records, once media have loaded, a JSON list in ``body[data-media-state]``: per element
its id, readyState (videos) or completeness (images), pixel width, error code, and for samples
the mean RGB of the first decoded frame; ``body[data-media-ready]`` turns "true" when every
element has loaded or failed. ``chromium --dump-dom`` then shows whether the page really works.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from html import escape
from pathlib import Path

from vtlm.eval.report import plots
from vtlm.eval.report.comparisons import SECTIONS, VERDICT_HEADER, comparison_sentence, comparison_table
from vtlm.eval.report.decomposition import decomposition_tables
from vtlm.eval.report.markdown import (
    check_results,
    cost_table,
    describe_value,
    drift_table,
    generator_table,
    headline_table,
    interval_sentence,
    kind_lines,
    metric_names,
    protocol_names,
    protocol_rows,
    quality_table,
)

MEDIA_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".png": "image/png"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 13px; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; } td:nth-child(-n+2), th:nth-child(-n+2) { text-align: left; }
.meta td, .meta th { text-align: left; white-space: normal; }
#generators td:nth-last-child(-n+2), #generators th:nth-last-child(-n+2) { text-align: left; white-space: normal; min-width: 14em; }
#headline th { white-space: normal; } #headline .ci { color: #666; font-size: 11px; }
#headline td.verdicts { white-space: normal; text-align: left; min-width: 16em; }
code { background: #f4f4f4; padding: 1px 4px; word-break: break-all; }
.warn { background: #fff4d6; border: 1px solid #e6c15a; padding: .4em 1em; }
.note { color: #555; font-size: 13px; }
figure { margin: 1em 0; } figure img.plot { max-width: 100%; border: 1px solid #eee; }
.grid { display: inline-grid; grid-template-columns: auto auto; gap: 4px 10px; align-items: stretch; }
.grid .cols { display: flex; width: 0; min-width: 100%; }  /* as wide as the video, not wider */
.grid .cols span { flex: 1; text-align: center; font-size: 11px; font-weight: 600; }
.grid .rows { display: flex; flex-direction: column; margin: 0; padding-left: 1.5em; font-size: 12px; }
.grid .rows li { flex: 1; display: flex; align-items: center; max-width: 28em; }
.grid video, .grid img { image-rendering: pixelated; display: block; }
"""

READINESS_SCRIPT = """
(function () {
  var firstFrame = {};
  function meanColor(el, w, h) {
    try {
      var c = document.createElement('canvas'); c.width = w; c.height = h;
      var g = c.getContext('2d'); g.drawImage(el, 0, 0);
      var d = g.getImageData(0, 0, w, h).data, s = [0, 0, 0];
      for (var i = 0; i < d.length; i += 4) { s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2]; }
      return s.map(function (v) { return v / (d.length / 4); });
    } catch (e) { return String(e); }
  }
  function report() {
    var state = [], done = true;
    document.querySelectorAll('video[data-sample], img[data-sample], img[data-plot]').forEach(function (el) {
      var video = el.tagName === 'VIDEO';
      var item = {id: el.id, tag: el.tagName.toLowerCase(),
                  ready: video ? el.readyState : (el.complete ? 4 : 0),
                  width: video ? el.videoWidth : el.naturalWidth,
                  height: video ? el.videoHeight : el.naturalHeight,
                  error: video && el.error ? el.error.code : null};
      if (el.hasAttribute('data-sample')) {
        // measured once: an image when decoded, a video when its first frame is ready (its
        // 'loadeddata' below, or any later report if that fired before the listener was attached)
        var shown = video ? el.readyState >= 2 && el.currentTime === 0 : el.complete && el.naturalWidth;
        if (!(el.id in firstFrame) && shown) firstFrame[el.id] = meanColor(el, item.width, item.height);
        item.first_frame_mean_rgb = firstFrame[el.id] || null;
      }
      if (item.ready < 2 && item.error === null && !(!video && el.complete)) done = false;
      state.push(item);
    });
    document.body.setAttribute('data-media-state', JSON.stringify(state));
    document.body.setAttribute('data-media-ready', String(done));
  }
  document.querySelectorAll('video[data-sample]').forEach(function (v) {
    v.addEventListener('loadeddata', report);
    v.addEventListener('error', report);
  });
  window.addEventListener('load', report);
})();
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def _cell(column: int, text: str) -> str:
    return f"<td>{escape(text)}</td>"


def _table(header: list[str], cells: list[list[str]], cell: Callable[[int, str], str] = _cell) -> str:
    """An HTML table; ``cell(column, text)`` renders each body cell (default: escaped text)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(j, text) for j, text in enumerate(line)) + "</tr>" for line in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_INTERVAL = re.compile(r"^(?P<value>\S+) \[(?P<interval>[^\]]+)\](?P<unit>.*)$")


def _headline(header: list[str], cells: list[list[str]]) -> str:
    """The headline table, narrow enough to read without scrolling: a figure's interval on a
    second, smaller line under its value, and the verdicts column wrapping."""
    verdicts = header.index(VERDICT_HEADER) if VERDICT_HEADER in header else None

    def cell(column: int, text: str) -> str:
        if column == verdicts:
            return f'<td class="verdicts">{escape(text)}</td>'
        match = _INTERVAL.match(text)
        if match is None:
            return _cell(column, text)
        value, interval, unit = (escape(match[k]) for k in ("value", "interval", "unit"))
        return f'<td>{value}{unit}<br><span class="ci">[{interval}]</span></td>'

    return _table(header, cells, cell)


def _plot_img(fig, element_id: str, kind: str, protocol: str, alt: str) -> str:
    if fig is None:
        return ""
    data = base64.b64encode(plots.figure_png(fig)).decode("ascii")
    return (
        f'<figure><img class="plot" id="{escape(element_id)}" data-plot="{kind}" data-protocol="{escape(protocol)}" '
        f'alt="{escape(alt)}" src="data:image/png;base64,{data}"></figure>'
    )


def media_tag(path: Path, element_id: str, label: str) -> str:
    """A video file as an inline element: mp4/webm -> <video>, gif/png -> <img> (data URIs)."""
    kind = MEDIA_TYPES.get(path.suffix.lower())
    if kind is None:
        raise ValueError(
            f"sample grid file {str(path)!r}: expected one of {sorted(MEDIA_TYPES)}, got {path.suffix!r}"
        )
    src = f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    attributes = f'id="{escape(element_id)}" data-sample="{escape(label)}" src="{src}"'
    if kind.startswith("video/"):
        return f"<video {attributes} controls autoplay loop muted playsinline></video>"
    return f'<img {attributes} alt="{escape(label)}">'


def _sample_grid(grid: dict, out_dir: Path, element_id: str) -> str:
    title = escape(str(grid.get("title") or grid["file"]))
    path = out_dir / grid["file"]
    if not path.is_file():
        return f'<p class="warn">sample grid "{title}": file {escape(grid["file"])} is missing</p>'
    columns = "".join(f"<span>{escape(str(c))}</span>" for c in grid.get("columns") or [])
    rows = "".join(f"<li>{escape(str(r))}</li>" for r in grid.get("rows") or [])
    fps = f", {escape(str(grid['fps']))} frames/s" if grid.get("fps") else ""
    return (
        f"<figure><figcaption><b>{title}</b>{fps} <span class='note'>({escape(grid['file'])})</span></figcaption>"
        f'<div class="grid"><div class="cols">{columns}</div><div></div>'
        f"<div>{media_tag(path, element_id, grid['file'])}</div><ol class='rows'>{rows}</ol></div></figure>"
    )


def _primary_metric(rows: list[dict], wanted: str | None) -> str | None:
    names = metric_names(rows)
    if wanted in names:
        return wanted
    means = [
        n
        for n in names
        if all(r["metrics"][n].get("kind", "mean") == "mean" for r in rows if n in (r.get("metrics") or {}))
    ]
    return (means or names or [None])[0]


def _protocol_section(
    results: dict, index: int, protocol: str, out_dir: Path, primary_metric: str | None
) -> str:
    key = f"{index}-{_slug(protocol)}"
    definition = dict((results.get("protocols") or {}).get(protocol) or {})
    notes = definition.pop("notes", None)
    rows = protocol_rows(results, protocol)
    colors = plots.generator_colors([*(results.get("generators") or {}), *(r["generator"] for r in rows)])
    out = [f'<section class="protocol" id="protocol-{key}" data-protocol="{escape(str(protocol))}">']
    out.append(f"<h2>Protocol: {escape(str(protocol))}</h2>")
    if definition:
        out.append(f"<p>{escape(describe_value(definition))}</p>")
    if notes:
        out.append(f'<p class="note">{escape(str(notes))}</p>')
    if not rows:
        out.append("<p>No results for this protocol.</p>")
    else:
        out.append("<h3>Quality</h3>" + _table(*quality_table(rows)))
        out.append(f'<p class="note">{escape(interval_sentence(results.get("settings") or {}))}</p>')
        out.append(
            '<ul class="note">' + "".join(f"<li>{escape(line)}</li>" for line in kind_lines(rows)) + "</ul>"
        )
        for title, header, cells, note in decomposition_tables(results, protocol):
            out.append(
                f"<h3>{escape(title)}</h3>" + _table(header, cells) + f'<p class="note">{escape(note)}</p>'
            )
        metric = _primary_metric(rows, primary_metric)
        if metric is not None:
            for cost, suffix in (("seconds_per_clip", ""), ("flops_per_clip", "-flops")):
                axis = plots.COST_AXES[cost]
                fig = plots.pareto_plot(rows, metric, colors, f"{protocol}: {metric} vs {axis}", cost)
                alt = f"{metric} against {axis}"
                out.append(_plot_img(fig, f"plot-{key}-pareto{suffix}", f"pareto{suffix}", protocol, alt))
        context = definition.get("context_frames")
        fig = plots.drift_plot(
            rows, colors, f"{protocol}: per-frame curves", context if isinstance(context, int) else None
        )
        out.append(_plot_img(fig, f"plot-{key}-drift", "drift", protocol, "metrics against frame index"))
        fig = plots.bar_plot(rows, colors, f"{protocol}: metrics with intervals")
        out.append(
            _plot_img(fig, f"plot-{key}-bars", "bars", protocol, "metric means with confidence intervals")
        )
        header, cells = cost_table(rows)
        if len(header) > 2:
            out.append("<h3>Cost</h3>" + _table(header, cells))
        header, cells = drift_table(rows)
        if cells:
            out.append("<h3>Drift</h3>" + _table(header, cells))
    grids = [g for g in results.get("sample_grids") or [] if g.get("protocol") == protocol]
    if grids:
        out.append("<h3>Samples</h3>")
    for k, grid in enumerate(grids):
        out.append(_sample_grid(grid, out_dir, f"sample-{key}-{k}"))
    return "\n".join(out) + "</section>"


def render_html(results: dict, out_dir: Path, primary_metric: str | None = None) -> str:
    """The whole page. ``out_dir`` is the report folder the results' sample paths are relative to;
    ``primary_metric`` is the quality axis of the cost plot (default: the first mean-kind metric).
    """
    check_results(results)
    out_dir = Path(out_dir)
    settings = results.get("settings") or {}
    tokenizer = results.get("tokenizer") or {}
    meta = [
        ("created", escape(str(results.get("created", "—")))),
        ("command", f"<code>{escape(str(results.get('command', '—')))}</code>"),
        ("tokenizer", f"{escape(str(tokenizer.get('path', '—')))} <span class='note'>sha256 {escape(str(tokenizer.get('sha256', '—')))}</span>"),
        ("machine", escape(describe_value(results.get("machine") or {}))),
        *((escape(str(k)), escape(describe_value(v))) for k, v in settings.items()),
    ]  # fmt: skip
    notes = results.get("not_computed") or []
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>vtlm evaluation report {escape(str(results.get('created', '')))}</title>",
        f"<style>{STYLE}</style></head>",
        '<body data-report="vtlm-eval" data-media-ready="false">',
        "<header><h1>vtlm evaluation report</h1>",
        '<table class="meta" id="settings">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in meta) + "</table></header>",
        '<section id="not-computed" class="warn"><h3>Not computed</h3><ul>'
        + ("".join(f"<li>{escape(str(n))}</li>" for n in notes) or "<li>everything was computed</li>")
        + "</ul></section>",
        '<section id="generators"><h2>Generators</h2>' + _table(*generator_table(results.get("generators") or {})) + "</section>",
        '<section id="headline"><h2>Headline</h2>' + _headline(*headline_table(results))
        + f'<p class="note">{escape(interval_sentence(settings))} Every figure: the protocol sections below.</p></section>',
    ]  # fmt: skip
    for key, title in SECTIONS.items():
        if results.get(key):
            out.append(
                f'<section id="{_slug(key)}"><h2>{escape(title)}</h2>' + _table(*comparison_table(results, key))
                + f'<p class="note">{escape(comparison_sentence(results, key))}</p></section>'
            )  # fmt: skip
    for index, protocol in enumerate(protocol_names(results)):
        out.append(_protocol_section(results, index, protocol, out_dir, primary_metric))
    out.append(f"<script>{READINESS_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
