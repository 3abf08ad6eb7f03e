"""The evaluation harness end to end on debug checkpoints, and its pieces with known answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import FAMILIES

from vtlm.eval.generation import chain
from vtlm.eval.protocols.registry import PROTOCOLS, Protocol, fit_to_stride, get_protocol
from vtlm.eval.stats.aggregate import Aggregator


def test_fit_to_stride_never_gives_more_context_than_the_protocol():
    for protocol in PROTOCOLS.values():
        for stride in (1, 2, 4, 8):
            fit = fit_to_stride(protocol, stride)
            assert (fit["context"] - 1) % stride == 0 or fit["context"] == 0
            assert (fit["generate"] - 1) % stride == 0 and fit["generate"] >= protocol.total_frames
            if protocol.kind in ("continuation", "rollout"):
                assert 1 <= fit["context"] <= protocol.context_frames
            exact = (
                fit["context"] in (0, protocol.context_frames) and fit["generate"] == protocol.total_frames
            )
            assert (fit["note"] == "") == (
                exact or protocol.kind == "reconstruction" and fit["generate"] == protocol.total_frames
            )
    mmnist = fit_to_stride(get_protocol("mmnist-10-10"), 4)
    assert (mmnist["context"], mmnist["generate"]) == (9, 21) and "9 of the protocol's 10" in mmnist["note"]


def test_bad_protocols_and_names_are_refused():
    with pytest.raises(ValueError, match="unknown 'nope'"):
        get_protocol("nope")
    with pytest.raises(ValueError, match="text_to_video takes no context"):
        Protocol("x", "text_to_video", 1, 17, 32, 4)
    with pytest.raises(ValueError, match="needs context_frames >= 1"):
        Protocol("x", "continuation", 0, 17, 32, 4)


def test_aggregator_means_best_of_and_curves_follow_their_definitions():
    rng = np.random.default_rng(0)
    values = rng.normal(20.0, 2.0, size=(3, 4, 10, 6))  # seeds, samples, clips, frames
    agg = Aggregator(num_resamples=500)
    fig = agg.figure(values, "dB", True)
    assert fig["mean"] == pytest.approx(values.mean()) and fig["n"] == 10 and fig["kind"] == "mean"
    assert fig["ci_low"] < fig["mean"] < fig["ci_high"]
    best = agg.best_of(values, "dB", True)
    expected = values.mean(axis=3).max(axis=1).mean()
    assert best["mean"] == pytest.approx(expected) and best["kind"] == "best-of-4"
    worst_first = agg.best_of(values, "", False)
    assert worst_first["mean"] == pytest.approx(values.mean(axis=3).min(axis=1).mean())
    curve = agg.curve(values, list(range(5, 11)), "dB", True)
    assert curve["mean"] == pytest.approx(values.mean(axis=(0, 1, 2)).tolist())
    assert all(lo <= m <= hi for lo, m, hi in zip(curve["ci_low"], curve["mean"], curve["ci_high"]))


class _Recorder:
    """A generator that records its calls and returns constant frames per call."""

    temporal_stride, resolution = 4, 8

    def __init__(self):
        self.calls = []

    def generate(self, captions, num_frames, prefix=None, seed=0):
        self.calls.append((num_frames, None if prefix is None else prefix.shape[2]))
        video = torch.full((len(captions), 3, num_frames, 8, 8), len(self.calls) / 10)
        if prefix is not None:
            video[:, :, : prefix.shape[2]] = prefix
        return video


def test_chaining_restarts_from_the_last_frame_alone():
    gen = _Recorder()
    prefix = torch.zeros(2, 3, 5, 8, 8)
    video = chain(gen, ["a", "b"], prefix, total_frames=65, clip_frames=17, seed=0, sample=0, batch_size=8)
    assert video.shape == (2, 3, 65, 8, 8)
    assert gen.calls == [(17, 5), (17, 1), (17, 1), (17, 1)]
    # frame 16 ends clip 1 and starts clip 2; frame 17 is clip 2's first new frame
    assert video[0, 0, 16].unique().item() == pytest.approx(0.1) and video[
        0, 0, 17
    ].unique().item() == pytest.approx(0.2)


def test_clip_counts_set_every_protocol_and_protocol_clips_win(tmp_path):
    from vtlm.eval.harness import EvalConfig, _protocol, run_eval

    cfg = EvalConfig(num_clips=3, samples_per_clip=2, protocol_clips={"shapes-rollout": 2})
    cont5 = get_protocol("shapes-cont5")
    assert _protocol("shapes-rollout", cfg, None).num_clips == 2
    assert _protocol("shapes-cont5", cfg, None).num_clips == 3
    assert _protocol("shapes-cont5", cfg, None).samples_per_clip == min(2, cont5.samples_per_clip)
    # built-in data is generated: more clips than the protocol's default are there to judge
    more = EvalConfig(num_clips=cont5.num_clips + 8)
    assert _protocol("shapes-cont5", more, None).num_clips == cont5.num_clips + 8
    assert _protocol("shapes-cont5", EvalConfig(), None).num_clips == cont5.num_clips
    for bad in ({"num_clips": 0}, {"protocol_clips": {"shapes-t2v": -1}}):
        with pytest.raises(ValueError, match="num_clips|protocol_clips.shapes-t2v"):
            EvalConfig(**bad)
    with pytest.raises(ValueError, match="protocol_clips"):  # refused before any model is read
        run_eval(
            ["nowhere"], EvalConfig(protocols=["shapes-t2v"], protocol_clips={"shapes-rollout": 2}), tmp_path
        )


def test_eval_compare_flags_reach_the_eval_config(capsys):
    from vtlm.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(
            ["eval", "compare", "runs/a/gpt", "runs/b/diffusion", "--out", "runs/eval/x",
             "--eval.protocols", "[shapes-cont5, shapes-rollout]", "--eval.seeds", "[0, 1]", "--eval.num_clips", "3",
             "--eval.protocol_clips", "{shapes-rollout: 2}", "--eval.sampling.sweeps", "{diffusion: {steps: [4]}}",
             "--eval.classifier_steps", "20", "--print_config"]
        )  # fmt: skip
    assert done.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    cfg = printed["eval"]
    assert cfg["protocols"] == ["shapes-cont5", "shapes-rollout"] and cfg["seeds"] == [0, 1]
    assert cfg["num_clips"] == 3 and cfg["protocol_clips"] == {"shapes-rollout": 2}
    assert cfg["sampling"]["sweeps"] == {"diffusion": {"steps": [4]}}
    assert cfg["classifier_steps"] == 20


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the quick demo (conftest.quick_demo) trains and evaluates: minutes
def test_report_names_follow_kinds_then_run_directories(tmp_path):
    from vtlm.eval.generators import names_for

    paths = []
    for run, kind in (("demo/gpt", "gpt"), ("ablations/gpt_corruption/gpt", "gpt"), ("demo/diffusion", "diffusion"),
                      ("copy/gpt", "gpt")):  # fmt: skip
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "config.yaml").write_text(f"kind: {kind}\n")
        paths.append(str(tmp_path / run))
    assert names_for(paths) == ["gpt (demo)", "gpt (gpt_corruption)", "diffusion", "gpt (copy)"]
    assert names_for(paths[:1] + paths[2:3]) == ["gpt", "diffusion"]


def test_sweeps_change_one_setting_at_a_time_and_name_it():
    """A sweep variant shares the loaded generator's weights and changes one setting of its
    family's sampling config (booleans too: the anti-drift options); unknown families and
    settings are refused up front, naming them."""
    from types import SimpleNamespace

    from vtlm.eval.generators import SamplingSettings, Variant, sweep_variants
    from vtlm.gpt.sampling import SamplingConfig

    sweeps = {"temperature": [1.0, 0.7], "reencode_context": [True], "weights": ["int8"]}
    sampling = SamplingSettings(sweeps={"gpt": sweeps})
    model = SimpleNamespace(sampling=sampling.gpt, weights=object())
    default = Variant("gpt", "default", "gpt", {}, model)
    variants = sweep_variants(default, sampling)
    # 1.0 is the default temperature; a setting's value may be a word
    assert [v.label for v in variants] == ["temperature=0.7", "reencode_context=True", "weights=int8"]
    assert variants[2].model.sampling.weights == "int8" and variants[2].settings == {"weights": "int8"}
    assert variants[1].model.sampling == SamplingConfig(top_k=100, cfg_scale=3.0, reencode_context=True)
    assert all(v.model.weights is model.weights for v in variants) and model.sampling is sampling.gpt
    assert sweep_variants(Variant("d", "default", "diffusion", {}, model), SamplingSettings(sweeps={})) == []
    with pytest.raises(ValueError, match="unknown family 'dit'"):
        SamplingSettings(sweeps={"dit": {"steps": [5]}})
    with pytest.raises(ValueError, match=r"sweeps.maskgit: \['temperatures'\]"):
        SamplingSettings(sweeps={"maskgit": {"temperatures": [0.5]}})


def test_harness_writes_every_row_and_report_file(demo_eval):
    """The harness's output on the quick demo's debug GPT and diffusion checkpoints."""
    from vtlm.tokenizer.io import load_tokenizer

    results, out = demo_eval
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    rows = {(r["protocol"], r["generator"], r["variant"]): r for r in results["results"]}
    assert tuple(results["generators"]) == FAMILIES
    assert ("shapes-recon", "tokenizer", "default") in rows
    for gen in FAMILIES:
        assert {("shapes-t2v", gen, "default"), ("shapes-cont5", gen, "default")} <= set(rows)
        assert {("shapes-rollout", gen, "sliding"), ("shapes-rollout", gen, "chaining")} <= set(rows)
    # the sampling sweep on the continuation protocol: each variant is named by what it changes
    sweep = [r for r in results["results"] if r["protocol"] == "shapes-cont5"
             and r["generator"] != "tokenizer" and r["variant"] != "default"]  # fmt: skip
    assert sweep, "the quick demo no longer runs a sampling sweep"
    for row in sweep:
        name, value = row["variant"].split("=")
        assert row["settings"][name] == pytest.approx(float(value)), row["variant"]
        assert row["settings"] != rows[("shapes-cont5", row["generator"], "default")]["settings"]
    protocol = results["protocols"]["shapes-cont5"]
    samples = protocol["samples_per_clip"]
    assert samples > 1, "the quick demo must draw several samples per clip for the best-of figures"
    cont = rows[("shapes-cont5", "gpt", "default")]
    assert cont["metrics"]["psnr"]["n"] == protocol["num_clips"]
    assert cont["metrics"][f"psnr_best_of_{samples}"]["kind"] == f"best-of-{samples}"
    assert len(cont["curves"]["psnr"]["mean"]) == 12 and cont["curves"]["psnr"]["frames"][0] == 5
    assert {"position_error", "caption_adherence", "spatial_iou", "flicker_ratio", "classifier_fd"} <= set(
        cont["metrics"]
    )
    # 17 frames after 5 given: the new latent frames of the tokenizer's grid, one network call per token
    tokenizer = load_tokenizer(results["tokenizer"]["dir"]).cfg
    (frames, h, w), given = tokenizer.latent_shape(17, 32, 32), tokenizer.latent_shape(5, 32, 32)[0]
    assert cont["cost"]["function_evaluations"] == (frames - given) * h * w
    # sampling FLOPs, counted by each network's meter as it ran: every generator, growing with length
    for key, row in rows.items():
        if key[1] != "tokenizer" and "cost" in row:
            assert row["cost"]["flops_per_clip"] > 0, key
    t2v = rows[("shapes-t2v", "gpt", "default")]["cost"]["flops_per_clip"]
    assert rows[("shapes-rollout", "gpt", "sliding")]["cost"]["flops_per_clip"] > 3 * t2v
    page = (out / "report.html").read_text()  # quality against counted FLOPs beside measured seconds
    assert page.count('data-plot="pareto-flops"') == page.count('data-plot="pareto"') == 3
    assert "network GFLOPs / clip" in page
    rollout = rows[("shapes-rollout", "gpt", "chaining")]
    assert len(rollout["curves"]["psnr"]["mean"]) == 60 and "psnr" in rollout["drift"]
    assert rollout["metrics"]["psnr"]["n"] == results["protocols"]["shapes-rollout"]["num_clips"]
    assert any("FVD: not computed" in note for note in results["not_computed"])
    for grid in results["sample_grids"]:
        assert (out / grid["file"]).is_file()
    assert results["generators"]["gpt"]["params"] > 0 and results["tokenizer"]["sha256"]
    for gen in FAMILIES:  # training compute, recorded the same way for every family
        training = results["generators"][gen]["training"]
        run = yaml.safe_load((Path(results["generators"][gen]["path"]).parent / "run.yaml").read_text())
        assert training["steps"] == run["trainer"]["max_steps"]
        assert training["seconds"] > 0 and training["flops"] > 0


def test_a_set_level_figure_of_one_seed_has_no_interval_and_still_shows(demo_eval):
    """The quick demo runs one seed: its Frechet distances are one value each, reported without
    an interval (not a zero-width one), printed without brackets and still drawn."""
    from vtlm.eval.report.formats import format_figure

    results, out = demo_eval
    assert results["settings"]["seeds"] == [0]
    figures = [r["metrics"]["classifier_fd"] for r in results["results"] if "classifier_fd" in r["metrics"]]
    assert figures and all(f["ci_low"] is None and f["ci_high"] is None for f in figures)
    assert all(f["kind"] == "set-level, one seed (no interval)" and f["mean"] > 0 for f in figures)
    t2v = next(r for r in results["results"] if r["protocol"] == "shapes-t2v" and r["generator"] == "gpt")
    cell = format_figure(t2v["metrics"]["classifier_fd"])
    assert "[" not in cell and f"| {cell} |" in (out / "report.md").read_text()
    from vtlm.eval.report import plots

    rows = [r for r in results["results"] if r["protocol"] == "shapes-t2v"]
    fig = plots.bar_plot(rows, plots.generator_colors([r["generator"] for r in rows]), "t2v")
    assert any(ax.get_title().startswith("classifier_fd") for ax in fig.axes if ax.get_visible())


def test_report_renders_again_from_results_json_as_read_back(demo_eval, tmp_path):
    """results.json keeps an undefined figure as null (strict JSON): the report drawn from it
    again (``write_report`` on the file's contents) has the same plots and tables."""
    from vtlm.eval.report import write_report

    results, out = demo_eval
    curves = [c for row in results["results"] for c in (row.get("curves") or {}).values()]
    assert any(v is None for c in curves for v in c["mean"]), "no undefined frame left to exercise"
    for grid in results["sample_grids"]:
        (tmp_path / grid["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / grid["file"], tmp_path / grid["file"])
    paths = write_report(results, tmp_path)
    again, first = paths["html"].read_text(), (out / "report.html").read_text()
    assert again.count('class="plot"') == first.count('class="plot"') > 0
    assert again.count("<table") == first.count("<table")


def test_compare_refuses_generators_with_different_tokenizers(demo_eval, tmp_path):
    """The quick demo's GPT and DiT (one tokenizer) pass; a copy of the DiT that records another
    tokenizer's hash is refused."""
    from vtlm.eval.generators import check_shared_tokenizer, describe

    demo = demo_eval[1].parent
    gpt, diffusion = demo / "gpt" / "gpt", demo / "diffusion" / "diffusion"
    check_shared_tokenizer({"gpt": describe(gpt), "diffusion": describe(diffusion)})
    other = tmp_path / "diffusion"
    shutil.copytree(diffusion, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["tokenizer"]["sha256"] = "0" * 64
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    described = {"gpt": describe(gpt), "diffusion": describe(other)}
    with pytest.raises(ValueError, match="must share one tokenizer"):
        check_shared_tokenizer(described)
