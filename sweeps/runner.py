"""Running a sweep on this machine: the world once, then every point one after another.

Layout of OUT (``sweep.out``)::

    sweep.yaml          the sweep as resolved (what every point was made from)
    world.json          the shards, text model and tokenizer every point trains on
    points.tsv          index, family, name and fit config of each point (the launch scripts read it)
    points/NNN-.../     fit.yaml, run/ (checkpoints, logs, the exported model),
                        eval-<caption>/ (the harness's results.json and report), point.json
    results.json/.csv   the collected table; report.html / report.md with the plots

A point is finished when its ``point.json`` exists (written last, atomically): a rerun skips it.
A killed point resumes: its fit continues from the run's last checkpoint, then it is evaluated.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import yaml

from vtlm.cli.world import Clock, World, prepare_world

from .config import Point, SweepConfig
from .points import check_points, eval_config, fit_args, point_dir, run_fit, write_fit_config

POINT_FILE = "point.json"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def world_of(cfg: SweepConfig) -> World:
    """The world the points train on: the reused one, or the one built under OUT/world."""
    if cfg.world.shards is not None:
        return World(text_model=Path(cfg.world.text_model), shards=Path(cfg.world.shards))
    root = Path(cfg.out) / "world"
    return World(
        text_model=root / "text" / "shapes.model",
        shards=root / "tokens",
        tokenizer=root / "tokenizer" / "tokenizer",
    )


def write_plan(cfg: SweepConfig, points: list[Point], world: World) -> Path:
    """sweep.yaml, points.tsv and every point's fit.yaml (checked first: nothing is written for
    a sweep with a bad point)."""
    check_points(cfg, points, world)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(
        yaml.safe_dump(json.loads(json.dumps(dataclasses.asdict(cfg))), sort_keys=False)
    )
    rows = []
    for point in points:
        path = write_fit_config(fit_args(cfg, point, world), point_dir(cfg, point) / "fit.yaml")
        rows.append(f"{point.index}\t{point.family}\t{point.name}\t{path}")
    (out / "points.tsv").write_text("index\tfamily\tname\tfit_config\n" + "\n".join(rows) + "\n")
    return out / "points.tsv"


def prepare(cfg: SweepConfig) -> World:
    """Build the world (unless reused; a finished world is not rebuilt) and record it."""
    world = world_of(cfg)
    if cfg.world.shards is None and not (world.shards / "test" / "index.json").exists():
        world = prepare_world(cfg.world, Path(cfg.out) / "world", Clock())
    info = {k: str(v) if v is not None else None for k, v in dataclasses.asdict(world).items()}
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    _write_atomic(Path(cfg.out) / "world.json", json.dumps(info, indent=2))
    return world


def finished(cfg: SweepConfig, point: Point) -> dict | None:
    """The point's record when it has finished, else None."""
    path = point_dir(cfg, point) / POINT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def run_point(cfg: SweepConfig, point: Point) -> dict:
    """Train the point from its fit.yaml (resuming a killed fit), evaluate it with each caption
    kind, and write its point.json. A finished point is returned as it is."""
    from vtlm.eval.harness import run_eval
    from vtlm.eval.protocols.registry import get_protocol

    done = finished(cfg, point)
    if done is not None:
        print(f"[sweep] {point.name}: finished earlier, skipped", flush=True)
        return done
    folder = point_dir(cfg, point)
    print(f"\n[sweep] {point.name}: training ({point.label})", flush=True)
    start = time.perf_counter()
    model = run_fit(point.family, folder / "fit.yaml")
    fit_seconds = time.perf_counter() - start
    evals, eval_seconds = {}, 0.0
    for number, caption in enumerate(cfg.eval_captions):
        settings = eval_config(cfg, caption)
        if number:  # the other caption kinds: text-to-video only
            t2v = [p for p in settings.protocols if get_protocol(p).kind == "text_to_video"]
            settings = dataclasses.replace(settings, protocols=t2v, sweep_protocol=None, protocol_clips={})
        print(f"[sweep] {point.name}: evaluating ({caption} captions)", flush=True)
        start = time.perf_counter()
        command = f"vtlm sweep run {cfg.out}/sweep.yaml (point {point.name}, {caption} captions)"
        run_eval([model], settings, folder / f"eval-{caption}", command)
        eval_seconds += time.perf_counter() - start
        evals[caption] = str(folder / f"eval-{caption}" / "results.json")
    record = {
        "index": point.index,
        "name": point.name,
        "label": point.label,
        "family": point.family,
        "values": point.values,
        "fit_config": str(folder / "fit.yaml"),
        "model": model,
        "evals": evals,
        "seconds": {"fit": round(fit_seconds, 2), "eval": round(eval_seconds, 2)},
    }
    _write_atomic(folder / POINT_FILE, json.dumps(record, indent=2))
    return record
