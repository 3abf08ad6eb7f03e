"""The tokenizer's ceiling beside every generator figure and the feature distance's
real-vs-real floor, read back from a real ``run_eval`` on debug checkpoints (the debug
diffusion model at 2 solver steps: the fastest generator to sample)."""

from __future__ import annotations

import json
import math

import pytest

from vtlm.eval.report.markdown import format_number

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]  # one run_eval (~4 min on 2 busy cores), shared by the module

GENERATION = ("shapes-t2v", "shapes-cont5", "shapes-rollout")


@pytest.fixture(scope="module")
def evaluated(debug_diffusion_run, tmp_path_factory):
    """One run_eval of the debug diffusion model on reconstruction and the three generation
    protocols (3 clips, 2 on the rollout, one seed, one sample); returns (results.json as read
    back, the output folder)."""
    from vtlm.diffusion.flow import SamplerConfig
    from vtlm.eval.generators import SamplingSettings
    from vtlm.eval.harness import EvalConfig, run_eval

    out = tmp_path_factory.mktemp("eval_ceiling")
    cfg = EvalConfig(
        protocols=["shapes-recon", *GENERATION],
        sweep_protocol=None,
        seeds=[0],
        num_clips=3,
        samples_per_clip=1,
        protocol_clips={"shapes-rollout": 2},
        sampling=SamplingSettings(
            diffusion=SamplerConfig(steps=2, cfg_scale=3.0), gpt_temperatures=[], diffusion_steps=[]
        ),
        bootstrap=100,
        classifier_cache=str(out / "cache"),
        classifier_steps=20,
        cost_repeats=1,
        floor_sizes=[2, 8],
    )
    run_eval([str(debug_diffusion_run / "diffusion")], cfg, out / "eval")
    return json.loads((out / "eval" / "results.json").read_text()), out / "eval"


def _row(results: dict, protocol: str, generator: str, variant: str) -> dict:
    found = [
        r
        for r in results["results"]
        if (r["protocol"], r["generator"], r["variant"]) == (protocol, generator, variant)
    ]
    assert len(found) == 1, f"{protocol} {generator} {variant}: {len(found)} rows"
    return found[0]


def test_every_generation_protocol_has_a_ceiling_row_on_the_same_clips(evaluated):
    results, _ = evaluated
    recon = _row(results, "shapes-recon", "tokenizer", "default")
    assert not [
        r for r in results["results"] if r["variant"] == "ceiling" and r["protocol"] == "shapes-recon"
    ]
    for protocol in GENERATION:
        ceiling = _row(results, protocol, "tokenizer", "ceiling")
        variants = ("sliding", "chaining") if protocol == "shapes-rollout" else ("default",)
        for variant in variants:
            generated = _row(results, protocol, "diffusion", variant)
            for name in ("psnr", "ssim", "caption_adherence", "classifier_fd"):
                assert ceiling["metrics"][name]["n"] == generated["metrics"][name]["n"], name
            assert ceiling["curves"]["psnr"]["frames"] == generated["curves"]["psnr"]["frames"]
        assert ceiling["metrics"]["psnr"]["n"] == (2 if protocol == "shapes-rollout" else 3)
        assert "cost" not in ceiling
    # the same clips reconstructed and scored the same way: t2v scores all 17 frames like the
    # reconstruction protocol, cont5 its frames 5..16
    t2v = _row(results, "shapes-t2v", "tokenizer", "ceiling")
    assert t2v["metrics"]["psnr"]["mean"] == pytest.approx(recon["metrics"]["psnr"]["mean"])
    assert t2v["metrics"]["classifier_fd"]["mean"] == pytest.approx(recon["metrics"]["classifier_fd"]["mean"])
    cont5 = _row(results, "shapes-cont5", "tokenizer", "ceiling")
    assert cont5["curves"]["psnr"]["mean"] == pytest.approx(recon["curves"]["psnr"]["mean"][5:])


def test_adherence_relative_to_the_ceiling_is_generator_over_ceiling(evaluated):
    results, _ = evaluated
    checked = 0
    for protocol in GENERATION:
        ceiling = _row(results, protocol, "tokenizer", "ceiling")
        rows = [r for r in results["results"] if r["protocol"] == protocol and r["generator"] == "diffusion"]
        assert rows
        for row in rows:
            relative = row["relative_to_ceiling"]
            expected = {"caption_adherence"} | (
                set() if protocol == "shapes-rollout" else {"adherence_colors", "adherence_colors_shapes"}
            )
            assert set(relative) == expected
            for name, rel in relative.items():
                mine, best = row["metrics"][name]["mean"], ceiling["metrics"][name]["mean"]
                assert (rel["generator"], rel["ceiling"]) == (mine, best)
                assert rel["difference"] == pytest.approx(mine - best)
                assert rel["ratio"] == (pytest.approx(mine / best) if best else None)
                checked += 1
    assert checked == 3 + 3 + 2  # t2v, cont5: three adherence metrics; rollout: one per strategy
    assert "relative_to_ceiling" not in _row(results, "shapes-t2v", "tokenizer", "ceiling")


def test_floor_is_recorded_per_set_size_and_shrinks_with_it(evaluated):
    results, _ = evaluated
    assert set(results["floors"]) == set(GENERATION)
    for protocol in GENERATION:
        floor = results["floors"][protocol]
        assert floor["metrics"] == ["classifier_fd"]
        assert [p["n"] for p in floor["by_n"]] == [2, 8]
        values = [p["classifier_fd"] for p in floor["by_n"]]
        assert all(math.isfinite(v) and v > 0 for v in values)
        assert values[1] < values[0]  # sampling noise shrinks as the sets grow
        clips = 2 if protocol == "shapes-rollout" else 3
        matched = floor["matched"]
        assert (matched["n_held_out"], matched["n_other"]) == (clips, clips)  # one sample per clip
        assert math.isfinite(matched["classifier_fd"]) and matched["classifier_fd"] > 0
    # t2v and cont5 judge the same 17-frame window: one pool, one floor
    assert results["floors"]["shapes-t2v"]["by_n"] == results["floors"]["shapes-cont5"]["by_n"]


def test_report_shows_the_ceiling_and_floor_tables(evaluated):
    results, out = evaluated
    report = (out / "report.md").read_text()
    sections = {s.split("\n", 1)[0]: s for s in report.split("## Protocol: ")[1:]}
    assert "vs the tokenizer's ceiling" not in sections["shapes-recon"]
    for protocol in GENERATION:
        section = sections[protocol]
        assert "### vs the tokenizer's ceiling" in section
        assert "### Real-vs-real floor of the feature distances" in section
        assert "| 2 vs 2 |" in section and "| 8 vs 8 |" in section
        variant = "sliding" if protocol == "shapes-rollout" else "default"
        rel = _row(results, protocol, "diffusion", variant)["relative_to_ceiling"]["caption_adherence"]
        ratio = "—" if rel["ratio"] is None else f"{rel['ratio']:.3f}"
        line = f"| diffusion | {variant} | caption_adherence | {rel['generator']:.3f} | {rel['ceiling']:.3f} | {ratio} |"
        assert line in section
        point = results["floors"][protocol]["by_n"][1]["classifier_fd"]
        assert f"| 8 vs 8 | {format_number(point)} |" in section
    page = (out / "report.html").read_text()
    assert page.count("<h3>vs the tokenizer&#x27;s ceiling</h3>") == len(GENERATION)
    assert page.count("<h3>Real-vs-real floor of the feature distances</h3>") == len(GENERATION)
    assert results["leakage"]["checked"] is True
    assert results["leakage"]["generators"]["diffusion"]["entries"] == 24
    assert results["leakage"]["content_hashes"] == {"3": 3}  # the held-out clips' codes at 9 frames
