"""The ready anti-drift ablation (configs/ablations/anti_drift/): its training configs train
as written (with a debug preset and tiny shards swapped in), and its evaluation config runs the
rollouts with every sampling-time anti-drift option beside the defaults, their drift curves in
the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vtlm.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs/ablations/anti_drift"


def _tiny(pipeline: dict, out: Path) -> list[str]:
    """Overrides that point a config at the test shards and make its run seconds long."""
    return ["--preset_name", "debug", "--data.train", str(pipeline["train"]), "--data.val", str(pipeline["val"]),
            "--data.text_model", str(pipeline["text"]), "--trainer.out_dir", str(out), "--trainer.max_steps", "3",
            "--trainer.val_every_n_steps", "3", "--trainer.limit_val_batches", "1", "--trainer.progress_bar", "false",
            "--optim.warmup_steps", "1"]  # fmt: skip


@pytest.mark.slow
def test_anti_drift_ablation_trains_and_draws_the_options_beside_the_defaults(
    random_token_pipeline, tmp_path
):
    gpt_cfg = yaml.safe_load((CONFIGS / "gpt_corruption.yaml").read_text())
    forcing_cfg = yaml.safe_load((CONFIGS / "forcing_clean_context.yaml").read_text())
    assert gpt_cfg["loss"]["corruption_max"] > 0 and forcing_cfg["forcing"]["max_context_noise"] == 0
    main(
        [
            "gpt",
            "fit",
            "--config",
            str(CONFIGS / "gpt_corruption.yaml"),
            *_tiny(random_token_pipeline, tmp_path / "gpt_corruption"),
        ]
    )
    main(["forcing", "fit", "--config", str(CONFIGS / "forcing_clean_context.yaml"),
          *_tiny(random_token_pipeline, tmp_path / "forcing_clean_context")])  # fmt: skip
    gpt, forcing = str(tmp_path / "gpt_corruption/gpt"), str(tmp_path / "forcing_clean_context/forcing")
    for path, section, key in ((gpt, "loss", "corruption_max"), (forcing, "forcing", "max_context_noise")):
        run = yaml.safe_load((Path(path).parent / "run.yaml").read_text())
        assert run[section][key] == (gpt_cfg if section == "loss" else forcing_cfg)[section][key]

    evaluation = yaml.safe_load((CONFIGS / "eval.yaml").read_text())["eval"]
    assert evaluation["sweep_protocol"] == "shapes-rollout" and evaluation["protocols"] == ["shapes-rollout"]
    assert evaluation["sampling"]["sweeps"]["forcing"]["context_noise"] == [0.0, 0.3]
    # the config's sweeps, one point each (a rollout per point is the test's cost)
    sweeps = "{gpt: {reencode_context: [true]}, forcing: {context_noise: [0.3]}}"
    out = tmp_path / "eval"  # synthetic kind digits: shapes clips, no attribute classifier to train
    main(["eval", "compare", gpt, forcing, "--config", str(CONFIGS / "eval.yaml"), "--out", str(out), "--eval.sampling.sweeps", sweeps,
          "--eval.num_clips", "1", "--eval.seeds", "[0]", "--eval.bootstrap", "20", "--eval.floor_sizes", "[]",
          "--eval.leakage_check", "false", "--eval.sampling.forcing.steps", "2", "--eval.sampling.gpt.top_k", "10",
          "--eval.synthetic.kind", "digits", "--eval.synthetic.shapes.resolution", "32"])  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    variants = {(r["generator"], r["variant"]) for r in results["results"] if r["generator"] != "tokenizer"}
    assert variants == {
        (g, f"{strategy}{option}")
        for strategy in ("sliding", "chaining")
        for g, option in [
            ("gpt", ""),
            ("gpt", ", reencode_context=True"),
            ("forcing", ""),
            ("forcing", ", context_noise=0.3"),
        ]  # fmt: skip
    }
    reencoded = next(r for r in results["results"] if r["variant"] == "sliding, reencode_context=True")
    assert reencoded["settings"]["reencode_context"] is True and len(reencoded["curves"]["psnr"]["mean"]) > 16
    page = (out / "report.html").read_text()
    assert "reencode_context=True" in page and 'data-plot="drift"' in page
