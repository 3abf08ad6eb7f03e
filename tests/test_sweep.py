"""`vtlm sweep`: grids checked before anything trains, launch scripts for a cluster, and a quick
sweep end to end on the debug token pipeline (trained, evaluated by the harness, collected,
fitted, reported), rerun without retraining what finished."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import VTLM

from vtlm.cli.main import main
from vtlm.eval.report.browser import chromium_path, dump_dom
from vtlm.sweeps.fits import crossing, fit_scaling

BUDGET = 1e12  # training FLOPs of the first quick point (a hundredth after --quick: a few debug steps)


def sweep_file(tmp_path: Path, pipeline: dict, grid: dict, **extra) -> Path:
    cfg = {
        "out": str(tmp_path / "sweep"),
        "world": {"shards": str(pipeline["train"].parent), "text_model": str(pipeline["text"])},
        "common": {"data": {"window": 3, "batch_size": 4}, "optim": {"warmup_steps": 2}},
        "families": {"gpt": {"optim": {"lr": 1e-3}}, "diffusion": {"optim": {"lr": 1e-3}}},
        "grid": grid,
        "eval": {"protocols": ["shapes-t2v", "shapes-cont5"], "sweep_protocol": None, "leakage_check": False},
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "grid, named",
    [
        ({"family": ["gpt", "diffusion"], "data.bogus": [1]}, "bogus"),
        ({"family": ["gpt"], "trainer.max_flops": ["lots"]}, "max_flops"),
        # the GPT's objective has context corruption, the DiT's has none: the DiT point is refused
        ({"family": ["gpt", "diffusion"], "loss.corruption_max": [0.1]}, "001-diffusion"),
    ],
)
def test_a_bad_grid_is_refused_before_anything_trains(tmp_path, grid, named):
    fake = {"train": tmp_path / "nowhere" / "train", "text": tmp_path / "nowhere.model"}
    path = sweep_file(tmp_path, fake, grid)
    with pytest.raises(SystemExit, match=named):
        main(["sweep", "run", str(path)])
    assert not (tmp_path / "sweep" / "points").exists()


def test_plan_writes_a_config_per_point_and_scripts_naming_every_point(tmp_path):
    fake = {"train": tmp_path / "w" / "train", "text": tmp_path / "w.model"}
    grid = {
        "family": ["gpt", "diffusion"],
        "preset_name": ["debug", "micro"],
        "trainer.max_flops": [1e12, 3e12],
    }
    main(["sweep", "plan", str(sweep_file(tmp_path, fake, grid))])
    out = tmp_path / "sweep"
    rows = (out / "points.tsv").read_text().splitlines()[1:]
    assert len(rows) == 8
    names = [row.split("\t")[2] for row in rows]
    slurm, torchrun = (out / "launch_slurm.sh").read_text(), (out / "launch_torchrun.sh").read_text()
    for name in names:
        assert name in slurm and name in torchrun
        fit = yaml.safe_load((out / "points" / name / "fit.yaml").read_text())
        assert fit["trainer"]["out_dir"] == str(out / "points" / name / "run")
    assert "--array=0-7" in slurm and torchrun.count("torchrun ") == 8
    for script in ("launch_slurm.sh", "slurm_point.sh", "launch_torchrun.sh"):
        subprocess.run(["bash", "-n", str(out / script)], check=True)
    # the cluster runs each point as `vtlm FAMILY fit --config POINT/fit.yaml`: the file parses
    point = out / "points" / names[-1] / "fit.yaml"
    shown = subprocess.run(
        [VTLM, "diffusion", "fit", "--config", str(point), "--print_config"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "max_flops: 3000000000000.0" in shown.stdout and "preset_name: micro" in shown.stdout


def test_scaling_fit_recovers_a_power_law_and_finds_where_lines_cross():
    flops = [1e10, 3e10, 1e11, 3e11, 1e12]
    fit = fit_scaling(flops, [5.0 * c**-0.25 for c in flops], "power")
    assert fit["exponent"] == pytest.approx(-0.25) and fit["r2"] == pytest.approx(1.0)
    low, high = fit["exponent_interval"]
    assert low == pytest.approx(-0.25) and high == pytest.approx(-0.25)  # one point per budget: exact
    share = fit_scaling(flops, [1 - 2.0 * c**-0.1 for c in flops], "error_power")
    assert share["exponent"] == pytest.approx(-0.1)
    # y1 = 10 C^-0.2 and y2 = 10^-0.1 C^-0.1 cross at C = 10^11; the first is better (lower) above it
    a = fit_scaling(flops, [10 * c**-0.2 for c in flops], "power")
    b = fit_scaling(flops, [10**-0.1 * c**-0.1 for c in flops], "power")
    found = crossing(a, b, higher_is_better=False)
    assert np.log10(found["flops"]) == pytest.approx(11.0) and found["better_above"] == "first"
    assert found["measured"]
    far = fit_scaling(flops, [10**-0.3 * c**-0.1 for c in flops], "power")  # crosses at 10^13
    assert not crossing(a, far, higher_is_better=False)["measured"]
    # PSNR-like figures (higher is better, fitted on a log axis): the steeper one wins above
    up = fit_scaling(flops, [2 * np.log10(c) for c in flops], "log_linear")
    flat = fit_scaling(flops, [np.log10(c) + 11 for c in flops], "log_linear")
    assert crossing(up, flat, higher_is_better=True)["better_above"] == "first"
    assert fit_scaling([1e10, 1e10], [1.0, 2.0], "power") is None  # one compute value: no fit
    assert fit_scaling(flops, [0.0] * 5, "error_power") is None  # nothing varies (all at the floor)
    # two budgets, three sizes each: resampled within each budget, the slope's interval stays finite
    two = [1e11, 1.05e11, 0.98e11, 1e12, 1.02e12, 0.97e12]
    noisy = fit_scaling(two, [2.0, 2.2, 1.9, 1.0, 1.1, 0.9], "power")
    assert (
        noisy["levels"] == 2
        and noisy["exponent_interval"][0] <= noisy["exponent"] <= noisy["exponent_interval"][1]
    )
    assert -1 < noisy["exponent_interval"][0] and noisy["exponent_interval"][1] < 0


@pytest.mark.timeout(900)
def test_quick_sweep_end_to_end_then_rerun_without_retraining(tmp_path, token_pipeline, capsys):
    grid = {"family": ["gpt", "diffusion"], "trainer.max_flops": [BUDGET, 3 * BUDGET]}
    path = sweep_file(tmp_path, token_pipeline, grid)
    main(["sweep", "run", str(path), "--quick", "true"])
    out = tmp_path / "sweep_quick"
    table = json.loads((out / "results.json").read_text())
    points = table["points"]
    assert [p["name"] for p in points] == ["000-gpt-1e+12", "001-gpt-3e+12"] and not table["missing"]
    for point, budget in zip(points, (BUDGET / 100, 3 * BUDGET / 100)):
        per_step = point["training_flops"] / point["steps"]
        assert budget <= point["training_flops"] < budget + per_step  # the budget in FLOPs, whole steps
        assert point["config"]["trainer"]["max_flops"] == budget  # the resolved config, kept
        for key in ("bits_per_video_token", "classifier_fd", "caption_adherence", "cont_psnr"):
            assert key in point["figures"], key
    assert points[1]["steps"] > points[0]["steps"]
    fit = table["fits"]["bits_per_video_token"]["fits"]["gpt"]
    assert fit["n"] == 2
    assert fit["flops_range"] == pytest.approx([points[0]["training_flops"], points[1]["training_flops"]])
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and "training_flops" in rows[0]
    html = (out / "report.html").read_text()
    assert "000-gpt-1e+12" in html and "Scaling fits" in html
    assert (out / "plots" / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    if chromium_path():
        dom = dump_dom(out / "report.html")
        assert 'data-plot="scaling"' in dom.replace("'", '"')

    # A rerun skips both finished points; a point killed after training resumes from its checkpoint.
    first = points[0]
    (out / "points" / first["name"] / "point.json").unlink()
    capsys.readouterr()
    main(["sweep", "run", str(path), "--quick", "true"])
    text = capsys.readouterr().out
    assert "001-gpt-3e+12: finished earlier, skipped" in text
    assert "000-gpt-1e+12: finished earlier" not in text and "resuming from" in text
    again = json.loads((out / "results.json").read_text())["points"]
    assert again[0]["steps"] == first["steps"] and again[0]["training_flops"] == first["training_flops"]


@pytest.mark.parametrize("name", ["shapes_cpu", "shapes_data", "kinetics600_gpu"])
def test_shipped_sweeps_plan_cleanly(tmp_path, name):
    """Every point of the shipped sweep files passes its family's fit command, and the plan names
    them all (written under tmp_path; nothing trains)."""
    from vtlm.sweeps.commands import load_config
    from vtlm.sweeps.config import expand

    cfg = yaml.safe_load(Path(f"configs/sweeps/{name}.yaml").read_text())
    cfg["out"] = str(tmp_path / name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    main(["sweep", "plan", str(path)])
    points = expand(load_config(str(path)))
    expected = {"shapes_cpu": 24, "shapes_data": 12, "kinetics600_gpu": 36}[name]
    assert len(points) == expected
    assert len((tmp_path / name / "points.tsv").read_text().splitlines()) == expected + 1
