"""What a sweep's table says: per-family scaling fits and crossings, and the data knobs' paired
verdicts (points that differ only in the image share, or only in the training captions)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from vtlm.eval.stats.paired import compare_results

from .collect import METRICS
from .fits import crossing, fit_scaling, form_of

# Grid keys that are data questions, not compute: their points are compared pairwise.
DATA_KNOBS = ("data.image_share", "data.caption_field")


def scaling(points: list[dict]) -> dict:
    """metric key -> {"fits": {family: fit}, "crossings": [...]} over the points' training FLOPs.
    Points of a data-knob sweep are fitted only at each knob's first value (the baseline)."""
    out = {}
    for metric in METRICS:
        fits = {}
        for family in dict.fromkeys(p["family"] for p in points):
            mine = [p for p in points if p["family"] == family and metric.key in p]
            fit = fit_scaling(
                [p["training_flops"] for p in mine],
                [p[metric.key] for p in mine],
                form_of(metric.unit, metric.higher_is_better),
            )
            if fit is not None:
                fits[family] = fit
        crossings = []
        for (f1, a), (f2, b) in itertools.combinations(fits.items(), 2):
            found = crossing(a, b, metric.higher_is_better)
            if found is not None:
                better = f1 if found.pop("better_above") == "first" else f2
                crossings.append({"first": f1, "second": f2, "better_above": better, **found})
        if fits:
            out[metric.key] = {"fits": fits, "crossings": crossings}
    return out


def _rows_of(point: dict, caption: str, name: str) -> list[dict]:
    path = Path(point["evals"][caption])
    rows = json.loads(path.read_text())["results"]
    return [{**r, "generator": name} for r in rows if r["generator"] != "tokenizer"]


def knob_verdicts(points: list[dict], records: dict[str, dict], grid: dict) -> list[dict]:
    """For each data knob in the grid: every point against the point that differs only in that
    knob, at the knob's first value; paired over the same clips and seeds (Holm within each
    protocol and pair), with each eval caption kind. ``records``: point name -> point.json."""
    out = []
    for knob in DATA_KNOBS:
        if knob not in grid or len(grid[knob]) < 2:
            continue
        baseline = grid[knob][0]
        others = [k for k in grid if k != knob]
        for point in points:
            if point.get(knob) == baseline:
                continue
            base = next(
                (
                    q
                    for q in points
                    if q.get(knob) == baseline and all(q.get(k) == point.get(k) for k in others)
                ),
                None,
            )
            if base is None:
                continue
            a, b = records[point["name"]], records[base["name"]]
            for caption in set(a["evals"]) & set(b["evals"]):
                rows = _rows_of(a, caption, point["name"]) + _rows_of(b, caption, base["name"])
                for entry in compare_results(rows, num_resamples=1000):
                    out.append(
                        {
                            "knob": knob,
                            "value": point.get(knob),
                            "baseline": baseline,
                            "caption": caption,
                            **entry,
                        }
                    )
    return out
