"""``vtlm sweep``: grids of training runs through the shared harness, with one command.

vtlm sweep run configs/sweeps/shapes_cpu.yaml      # here, point after point; resumable
vtlm sweep plan configs/sweeps/cluster_gpu.yaml    # configs + SLURM / torchrun scripts
vtlm sweep prepare SWEEP | point SWEEP --index N | collect SWEEP   # what the scripts run
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from .analysis import knob_verdicts, scaling
from .collect import collect as collect_table
from .config import Point, SweepConfig, expand
from .plan import write_scripts
from .points import point_dir
from .report import write_report
from .runner import POINT_FILE, prepare, run_point, world_of, write_plan

# --quick: the plumbing of a sweep file end to end in a minute or two.
QUICK_EVAL = {
    "num_clips": 2,
    "seeds": [0],
    "samples_per_clip": 1,
    "protocol_clips": {},
    "classifier_steps": 20,
    "bootstrap": 100,
    "cost_repeats": 1,
    "cost_warmup": False,
    "floor_sizes": [2],
    "report": False,
}


def load_config(path: str) -> SweepConfig:
    """The sweep file at ``path``, every field checked (an unknown or ill-typed one is named)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"config: no sweep file at {path}")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(SweepConfig, "sweep")
    try:
        parsed = parser.parse_object({"sweep": yaml.safe_load(Path(path).read_text()) or {}})
    except Exception as err:
        raise ValueError(f"{path}: {err}") from None
    return parser.instantiate(parsed).sweep


def quick_variant(cfg: SweepConfig) -> tuple[SweepConfig, list[Point]]:
    """The first two points only, as debug models, budgets cut (steps to at most 10, FLOPs to a
    hundredth), the world small, the evaluation at 2 clips and 1 seed; written under OUT_quick."""
    eval_cfg = {**cfg.eval, **QUICK_EVAL}
    world = cfg.world if cfg.world.shards else dataclasses.replace(cfg.world, quick=True)
    quick = dataclasses.replace(cfg, out=f"{cfg.out}_quick", world=world, eval=eval_cfg)
    points = []
    for point in expand(quick)[:2]:
        args = {**point.args, "preset_name": "debug"}
        trainer = dict(args.get("trainer", {}))
        trainer["max_steps"] = min(int(trainer.get("max_steps", 10)), 10)
        if trainer.get("max_flops"):
            trainer["max_flops"] = float(trainer["max_flops"]) / 100
        trainer.update(val_every_n_steps=10, limit_val_batches=1)
        args["trainer"] = trainer
        args["data"] = {**args.get("data", {}), "batch_size": 4}
        points.append(dataclasses.replace(point, args=args))
    return quick, points


def _finish(cfg: SweepConfig, points: list[Point], command: str) -> dict:
    """Collect the finished points, fit, compare, and write the report."""
    import json

    table = collect_table(cfg, points)
    fits = scaling(table["points"])
    records = {
        p.name: json.loads((point_dir(cfg, p) / POINT_FILE).read_text())
        for p in points
        if (point_dir(cfg, p) / POINT_FILE).is_file()
    }
    verdicts = knob_verdicts(table["points"], records, cfg.grid)
    table.update(fits=fits, verdicts=verdicts)
    out = Path(cfg.out)
    (out / "results.json").write_text(json.dumps(table, indent=2, default=str))
    written = write_report(table, fits, verdicts, out, command)
    print(f"[sweep] wrote {out / 'results.json'}, {out / 'results.csv'}, {written['html']}", flush=True)
    return table


def run(sweep: str, quick: bool = False) -> dict:
    """Train and evaluate every point of the sweep here, one after another, then report.

    Every point is checked before anything trains. A rerun skips finished points and resumes a
    killed one from its checkpoint.

    Args:
        sweep: the sweep file (YAML; see configs/sweeps/).
        quick: the first two points only, as debug models with cut budgets and a small
            evaluation, under OUT_quick: the file's plumbing end to end in a minute or two.
    """
    cfg = load_config(sweep)
    cfg, points = quick_variant(cfg) if quick else (cfg, expand(cfg))
    write_plan(cfg, points, world_of(cfg))
    print(f"[sweep] {len(points)} points under {cfg.out}", flush=True)
    prepare(cfg)
    for point in points:
        run_point(cfg, point)
    return _finish(cfg, points, f"vtlm sweep run {sweep}" + (" --quick true" if quick else ""))


def plan(sweep: str) -> dict:
    """Write every point's fit config, points.tsv and the SLURM / torchrun launch scripts.

    Args:
        sweep: the sweep file (YAML).
    """
    cfg = load_config(sweep)
    points = expand(cfg)
    tsv = write_plan(cfg, points, world_of(cfg))
    scripts = write_scripts(Path(cfg.out) / "sweep.yaml", Path(cfg.out), points, tsv)
    for path in scripts.values():
        print(f"[sweep] wrote {path}")
    return {"points": str(tsv), **{k: str(v) for k, v in scripts.items()}}


def prepare_world(sweep: str) -> str:
    """Build the world the sweep's points train on (data, text model, tokenizer, shards).

    Args:
        sweep: the sweep file (YAML).
    """
    return str(prepare(load_config(sweep)).shards)


def point(sweep: str, index: int) -> dict:
    """Train (or resume) and evaluate one point: what a cluster job runs.

    Args:
        sweep: the sweep file (YAML).
        index: the point's number (its line in points.tsv).
    """
    cfg = load_config(sweep)
    points = expand(cfg)
    if not 0 <= index < len(points):
        raise ValueError(f"index: expected 0..{len(points) - 1}, got {index}")
    return run_point(cfg, points[index])


def collect(sweep: str) -> dict:
    """Gather the finished points into results.json / results.csv and write the report.

    Args:
        sweep: the sweep file (YAML).
    """
    cfg = load_config(sweep)
    return _finish(cfg, expand(cfg), f"vtlm sweep collect {sweep}")


COMMANDS = {"run": run, "plan": plan, "prepare": prepare_world, "point": point, "collect": collect}
