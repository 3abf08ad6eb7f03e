"""The tokenizer's ceiling beside every generator figure and the feature distance's
real-vs-real floor, read back from a real harness run: the quick demo's evaluation of its debug
GPT and diffusion checkpoints (conftest.quick_demo, run once per session)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import FAMILIES

from vtlm.eval.report.markdown import format_number

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # the quick demo: minutes, once per session

GENERATION = ("shapes-t2v", "shapes-cont5", "shapes-rollout")
GENERATORS = FAMILIES


def _row(results: dict, protocol: str, generator: str, variant: str) -> dict:
    found = [
        r
        for r in results["results"]
        if (r["protocol"], r["generator"], r["variant"]) == (protocol, generator, variant)
    ]
    assert len(found) == 1, f"{protocol} {generator} {variant}: {len(found)} rows"
    return found[0]


def _clips(results: dict, protocol: str) -> int:
    return results["protocols"][protocol]["num_clips"]


def test_every_generation_protocol_has_a_ceiling_row_on_the_same_clips(demo_eval):
    results, _ = demo_eval
    recon = _row(results, "shapes-recon", "tokenizer", "default")
    assert not [
        r for r in results["results"] if r["variant"] == "ceiling" and r["protocol"] == "shapes-recon"
    ]
    for protocol in GENERATION:
        ceiling = _row(results, protocol, "tokenizer", "ceiling")
        variants = ("sliding", "chaining") if protocol == "shapes-rollout" else ("default",)
        for generator in GENERATORS:
            for variant in variants:
                generated = _row(results, protocol, generator, variant)
                for name in ("psnr", "ssim", "caption_adherence", "classifier_fd"):
                    assert ceiling["metrics"][name]["n"] == generated["metrics"][name]["n"], name
                assert ceiling["curves"]["psnr"]["frames"] == generated["curves"]["psnr"]["frames"]
        assert ceiling["metrics"]["psnr"]["n"] == _clips(results, protocol)
        assert "cost" not in ceiling
    # the same clips reconstructed and scored the same way: t2v scores all 17 frames like the
    # reconstruction protocol, cont5 its frames 5..16
    assert _clips(results, "shapes-t2v") == _clips(results, "shapes-recon") == _clips(results, "shapes-cont5")
    t2v = _row(results, "shapes-t2v", "tokenizer", "ceiling")
    assert t2v["metrics"]["psnr"]["mean"] == pytest.approx(recon["metrics"]["psnr"]["mean"])
    assert t2v["metrics"]["classifier_fd"]["mean"] == pytest.approx(recon["metrics"]["classifier_fd"]["mean"])
    cont5 = _row(results, "shapes-cont5", "tokenizer", "ceiling")
    assert cont5["curves"]["psnr"]["mean"] == pytest.approx(recon["curves"]["psnr"]["mean"][5:])


def test_adherence_relative_to_the_ceiling_is_generator_over_ceiling(demo_eval):
    results, _ = demo_eval
    checked, expected_checks = 0, 0
    for protocol in GENERATION:
        ceiling = _row(results, protocol, "tokenizer", "ceiling")
        rows = [r for r in results["results"] if r["protocol"] == protocol and r["generator"] != "tokenizer"]
        assert {r["generator"] for r in rows} == set(GENERATORS)
        for row in rows:
            relative = row["relative_to_ceiling"]
            expected = {"caption_adherence"} | (
                set() if protocol == "shapes-rollout" else {"adherence_colors", "adherence_colors_shapes"}
            )
            assert set(relative) == expected
            expected_checks += len(expected)
            for name, rel in relative.items():
                mine, best = row["metrics"][name]["mean"], ceiling["metrics"][name]["mean"]
                assert (rel["generator"], rel["ceiling"]) == (mine, best)
                assert rel["difference"] == pytest.approx(mine - best)
                assert rel["ratio"] == (pytest.approx(mine / best) if best else None)
                checked += 1
    # t2v, cont5 (sweep variants included): three adherence metrics per row; rollout: one per strategy
    assert checked == expected_checks >= 2 * (3 + 3 + 2)
    assert "relative_to_ceiling" not in _row(results, "shapes-t2v", "tokenizer", "ceiling")


def test_floor_is_recorded_per_set_size_and_shrinks_with_it(demo_eval):
    results, _ = demo_eval
    assert set(results["floors"]) == set(GENERATION)
    for protocol in GENERATION:
        floor = results["floors"][protocol]
        assert floor["metrics"] == ["classifier_fd"]
        sizes = [p["n"] for p in floor["by_n"]]
        assert len(sizes) >= 2 and sizes == sorted(set(sizes)) and sizes[0] >= 2
        values = [p["classifier_fd"] for p in floor["by_n"]]
        assert all(math.isfinite(v) and v > 0 for v in values)
        assert values[-1] < values[0]  # sampling noise shrinks as the sets grow
        clips = _clips(results, protocol)
        samples = results["protocols"][protocol]["samples_per_clip"]
        matched = floor["matched"]
        # held-out clips against as many other real clips as the generated set holds (per seed)
        assert (matched["n_held_out"], matched["n_other"]) == (clips, clips * samples)
        assert math.isfinite(matched["classifier_fd"]) and matched["classifier_fd"] > 0
    # t2v and cont5 judge the same 17-frame window: one pool, one floor
    assert results["floors"]["shapes-t2v"]["by_n"] == results["floors"]["shapes-cont5"]["by_n"]


def test_report_shows_the_ceiling_and_floor_tables(demo_eval):
    results, out = demo_eval
    report = (out / "report.md").read_text()
    sections = {s.split("\n", 1)[0]: s for s in report.split("## Protocol: ")[1:]}
    assert "vs the tokenizer's ceiling" not in sections["shapes-recon"]
    for protocol in GENERATION:
        section = sections[protocol]
        assert "### vs the tokenizer's ceiling" in section
        assert "### Real-vs-real floor of the feature distances" in section
        for point in results["floors"][protocol]["by_n"]:
            n = point["n"]
            assert f"| {n} vs {n} | {format_number(point['classifier_fd'])} |" in section
        variant = "sliding" if protocol == "shapes-rollout" else "default"
        for generator in GENERATORS:
            rel = _row(results, protocol, generator, variant)["relative_to_ceiling"]["caption_adherence"]
            ratio = "—" if rel["ratio"] is None else f"{rel['ratio']:.3f}"
            line = f"| {generator} | {variant} | caption_adherence | {rel['generator']:.3f} | {rel['ceiling']:.3f} | {ratio} |"
            assert line in section
    page = (out / "report.html").read_text()
    assert page.count("<h3>vs the tokenizer&#x27;s ceiling</h3>") == len(GENERATION)
    assert page.count("<h3>Real-vs-real floor of the feature distances</h3>") == len(GENERATION)
    leakage = results["leakage"]
    assert leakage["checked"] is True
    for generator in GENERATORS:  # every entry of the generator's train shards was compared
        record = leakage["generators"][generator]
        index = json.loads((Path(record["train_shards"]) / "index.json").read_text())
        assert record["entries"] == index["num_clips"] > 0
    # the held-out clips' codes at the tokenizer's training length (9 frames: 3 latent frames),
    # one hash per clip of the largest held-out set
    assert leakage["content_hashes"] == {"3": max(p["num_clips"] for p in results["protocols"].values())}
