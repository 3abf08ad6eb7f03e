"""A sweep point as a normal fit job: its arguments checked by the family's own ``fit`` command,
written as the YAML that ``vtlm FAMILY fit --config`` reads, and run from that file.

The local runner and a cluster job run a point the same way, from the same file: the local
runner calls the fit command in-process (:func:`run_fit`), a cluster job runs ``vtlm FAMILY fit
--config POINT/fit.yaml`` (Lightning then spreads it over the job's GPUs and nodes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser

from vtlm.cli.world import World
from vtlm.eval.harness import EvalConfig

from .config import Point, SweepConfig, merge


def fit_command(family: str) -> Callable[..., str]:
    """The ``fit`` function of a family's CLI group."""
    if family == "gpt":
        from vtlm.cli.gpt_cmds import fit
    elif family == "diffusion":
        from vtlm.cli.diffusion_cmds import fit
    elif family == "forcing":
        from vtlm.cli.forcing_cmds import fit
    elif family == "maskgit":
        from vtlm.cli.maskgit_cmds import fit
    else:
        raise ValueError(f"family: expected gpt, diffusion, forcing or maskgit, got {family!r}")
    return fit


def _parser(function: Callable) -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_function_arguments(function, as_group=False)
    return parser


def point_dir(cfg: SweepConfig, point: Point) -> Path:
    return Path(cfg.out) / "points" / point.name


def fit_args(cfg: SweepConfig, point: Point, world: World) -> dict:
    """The point's complete fit arguments: the world's shards and text model, the point's run
    directory, then the sweep's arguments (which may not move the shards: every point trains on
    the same ones)."""
    data = point.args.get("data", {})
    moved = sorted(set(data) & {"train", "val", "text_model"})
    if moved:
        raise ValueError(
            f"point {point.name}: data.{moved[0]} is set by the sweep's world (every point trains on the same shards)"
        )
    base = {
        "data": {
            "train": str(world.shards / "train"),
            "val": str(world.shards / "val"),
            "text_model": str(world.text_model),
        },
        "trainer": {"out_dir": str(point_dir(cfg, point) / "run"), "progress_bar": False},
    }
    args = merge(base, point.args)
    args["trainer"]["out_dir"] = base["trainer"]["out_dir"]  # never the sweep file's
    return args


def check_points(cfg: SweepConfig, points: list[Point], world: World) -> None:
    """Parse every point with its family's fit command and the eval settings with EvalConfig;
    refuse the sweep, naming the point and the field, before anything trains."""
    parsers: dict[str, ArgumentParser] = {}
    for point in points:
        parser = parsers.setdefault(point.family, _parser(fit_command(point.family)))
        try:
            parser.parse_object(fit_args(cfg, point, world))
        except Exception as err:  # jsonargparse's ArgumentError names the field
            raise ValueError(f"point {point.name} ({point.label}): {err}") from None
    eval_config(cfg, "descriptive")


def eval_config(cfg: SweepConfig, caption: str) -> EvalConfig:
    """The harness settings of every point (sweep.eval), with its text-to-video caption kind and
    the classifier cached once for the whole sweep."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(EvalConfig, "eval")
    values = {"classifier_cache": str(Path(cfg.out) / "eval_cache"), **cfg.eval, "caption": caption}
    try:
        parsed = parser.parse_object({"eval": values})
    except Exception as err:
        raise ValueError(f"eval: {err}") from None
    return parser.instantiate(parsed).eval


def write_fit_config(args: dict, path: Path) -> Path:
    """The YAML that ``vtlm FAMILY fit --config PATH`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(args)), sort_keys=False))
    return path


def run_fit(family: str, path: Path) -> str:
    """Run the family's fit command on the YAML at ``path`` (as ``vtlm FAMILY fit --config``
    would); returns the exported model directory."""
    function = fit_command(family)
    parser = _parser(function)
    parsed = parser.parse_object(yaml.safe_load(path.read_text()))
    init = parser.instantiate(parsed)
    return function(**vars(init))
