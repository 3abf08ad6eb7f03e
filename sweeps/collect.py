"""Gather a sweep's finished points into one table: each point's resolved config, its training
compute, and the harness's headline figures, as JSON (every figure with its interval) and CSV.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from vtlm.eval.generators import describe

from .config import SweepConfig
from .points import point_dir
from .runner import POINT_FILE


@dataclass(frozen=True)
class SweepMetric:
    """A headline figure read from a point's harness results."""

    key: str  # the column name
    title: str
    protocol_kind: str  # text_to_video, continuation, rollout
    metric: str  # the harness's metric name
    higher_is_better: bool
    unit: str
    caption: str = "descriptive"  # the eval caption kind it is read from
    drift: bool = False  # the rollout's degradation slope (sliding window) instead of a mean


METRICS = (
    SweepMetric("bits_per_video_token", "bits per video token (t2v clips)", "text_to_video", "bits_per_video_token", False, "bits"),
    SweepMetric("classifier_fd", "classifier Frechet distance (t2v)", "text_to_video", "classifier_fd", False, ""),
    SweepMetric("caption_adherence", "caption adherence (t2v, descriptive)", "text_to_video", "caption_adherence", True, "share"),
    SweepMetric("caption_adherence_terse", "caption adherence (t2v, terse)", "text_to_video", "caption_adherence", True, "share", "terse"),
    SweepMetric("adherence_colors_shapes", "colors and shapes adherence (t2v)", "text_to_video", "adherence_colors_shapes", True, "share"),
    SweepMetric("cont_psnr", "continuation PSNR", "continuation", "psnr", True, "dB"),
    SweepMetric("position_error", "tracker position error (continuation)", "continuation", "position_error", False, "px"),
    SweepMetric("drift_psnr", "PSNR drift at 4x length (sliding, dB lost per frame)", "rollout", "psnr", False, "dB/frame", drift=True),
)  # fmt: skip


def _figure(results: dict, metric: SweepMetric) -> dict | None:
    """``{"mean", "low", "high"}`` of the metric in one harness results dict, or None."""
    names = [n for n, p in results["protocols"].items() if p["kind"] == metric.protocol_kind]
    for row in results["results"]:
        if row["protocol"] not in names or row["generator"] == "tokenizer":
            continue
        if metric.drift:
            if row["variant"] == "sliding" and metric.metric in row.get("drift", {}):
                return {"mean": row["drift"][metric.metric]["degradation_slope"], "low": None, "high": None}
            continue
        if row["variant"] == "default" and metric.metric in row["metrics"]:
            figure = row["metrics"][metric.metric]
            return {"mean": figure["mean"], "low": figure.get("ci_low"), "high": figure.get("ci_high")}
    return None


def _sampling_cost(results: dict) -> dict:
    """Seconds and network evaluations of one text-to-video clip (the harness's cost row)."""
    names = [n for n, p in results["protocols"].items() if p["kind"] == "text_to_video"]
    for row in results["results"]:
        if row["protocol"] in names and row["generator"] != "tokenizer" and row["variant"] == "default":
            cost = row.get("cost") or {}
            return {
                "sampling_seconds_per_clip": cost.get("seconds_per_clip"),
                "sampling_function_evaluations": cost.get("function_evaluations"),
                "sampling_flops_per_clip": cost.get("flops_per_clip"),
            }
    return {}


def point_row(record: dict) -> dict:
    """One table row from a finished point's record (point.json)."""
    info = describe(record["model"])
    training = info.get("training") or {}
    results = {caption: json.loads(Path(path).read_text()) for caption, path in record["evals"].items()}
    row = {
        "name": record["name"],
        "family": record["family"],
        **{k: v for k, v in record["values"].items() if k != "family"},
        "params": info["params"],
        "steps": training.get("steps"),
        "training_flops": training.get("flops"),
        "training_seconds": training.get("seconds"),
        "fit_seconds": record["seconds"]["fit"],
        "eval_seconds": record["seconds"]["eval"],
    }
    first = next(iter(results.values()))
    row.update(_sampling_cost(first))
    figures = {}
    for metric in METRICS:
        if metric.caption in results:
            figure = _figure(results[metric.caption], metric)
            if figure is not None and figure["mean"] is not None:
                figures[metric.key] = figure
                row[metric.key] = figure["mean"]
    row["figures"] = figures
    row["config"] = yaml.safe_load(Path(record["fit_config"]).read_text())
    row["machine"] = first.get("machine")
    return row


def collect(cfg: SweepConfig, points) -> dict:
    """The sweep's table from every finished point (missing ones listed), written to
    OUT/results.json and OUT/results.csv."""
    rows, missing = [], []
    for point in points:
        path = point_dir(cfg, point) / POINT_FILE
        if path.is_file():
            rows.append(point_row(json.loads(path.read_text())))
        else:
            missing.append(point.name)
    table = {
        "vtlm_sweep": 1,
        "out": cfg.out,
        "grid": cfg.grid,
        "metrics": [m.__dict__ for m in METRICS],
        "points": rows,
        "missing": missing,
    }
    out = Path(cfg.out)
    (out / "results.json").write_text(json.dumps(table, indent=2, default=str))
    columns = [k for k in rows[0] if k not in ("figures", "config", "machine")] if rows else []
    for metric in METRICS:
        if metric.key not in columns and any(metric.key in r for r in rows):
            columns.append(metric.key)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return table
