"""The evaluation report: a results dict (results.json) -> report.md and a self-contained report.html.

    from vtlm.eval.report import write_report
    paths = write_report(results, Path("runs/demo/eval"))  # {"markdown": ..., "html": ..., "results": ...}

:mod:`~vtlm.eval.report.markdown` formats the tables (shared by both outputs),
:mod:`~vtlm.eval.report.plots` draws the figures, :mod:`~vtlm.eval.report.html` assembles the
page and :mod:`~vtlm.eval.report.browser` opens it in headless Chromium to check it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from vtlm.eval.report.html import render_html
from vtlm.eval.report.markdown import check_results, render_markdown

__all__ = ["write_report", "render_html", "render_markdown"]


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary name and rename, so no half-written report is left behind."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _finite(value):
    """``value`` with every non-finite float as None and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_json(results: dict) -> str:
    """results.json's text: strict JSON (an undefined figure is null, never a bare NaN that
    other JSON readers refuse)."""
    return json.dumps(_finite(results), indent=1, allow_nan=False) + "\n"


def write_report(
    results: dict, out_dir: str | os.PathLike, primary_metric: str | None = None
) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns their paths.

    ``results`` is the harness's results dict (schema ``vtlm_eval`` 1); sample-grid files it
    names are read relative to ``out_dir``. ``results.json`` is written too when absent (an
    existing one is left as is). ``primary_metric`` picks the quality axis of the cost plot
    (default: each protocol's first metric whose kind is a mean). Returns
    ``{"markdown": path, "html": path, "results": path}``.
    """
    check_results(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
        "results": out_dir / "results.json",
    }
    if not paths["results"].exists():
        _write_text(paths["results"], results_json(results))
    _write_text(paths["markdown"], render_markdown(results))
    _write_text(paths["html"], render_html(results, out_dir, primary_metric))
    return paths
