"""Paired comparisons of generators (vtlm.eval.stats.paired) on arrays with known answers, and the
report made from the harness's real output: verdict, Drift and Cost cells read back from
report.md and report.html."""

from __future__ import annotations

import html
import itertools
import math
import re

import numpy as np
import pytest

from vtlm.eval.stats.paired import (
    NO_DIFFERENCE,
    compare_family,
    compare_pair,
    compare_results,
    holm,
    min_detectable_difference,
    per_clip_block,
    sign_flip_p,
)


def _shifted(rng, shift: float, seeds: int = 2, clips: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), (seeds, clips) each: b = a - shift plus small noise; clips differ a lot."""
    a = rng.normal(20.0, 3.0, size=(seeds, clips))
    return a, a - shift + rng.normal(0.0, 0.2, size=a.shape)


def test_a_large_effect_gets_the_right_verdict_and_direction():
    rng = np.random.default_rng(0)
    a, b = _shifted(rng, 1.0)  # a is higher by 1
    for metric, higher in (("psnr", True), ("position_error", False)):
        forward = compare_family({metric: (a, b)})[metric]
        backward = compare_family({metric: (b, a)})[metric]
        assert forward["mean_diff"] == pytest.approx(1.0, abs=0.1) and forward["interval"][0] > 0.5
        assert backward["mean_diff"] == pytest.approx(-forward["mean_diff"])
        assert forward["p"] < 0.001 and forward["higher_is_better"] is higher
        assert forward["verdict"] == ("better" if higher else "worse")
        assert backward["verdict"] == ("worse" if higher else "better")


def test_identical_arrays_give_no_difference_with_p_one():
    rng = np.random.default_rng(1)
    for clips in (5, 60):  # exact sign patterns, then random ones
        a = rng.normal(0.5, 0.2, size=(3, clips))
        result = compare_family({"ssim": (a, a.copy())})["ssim"]
        assert result["p"] == 1.0 and result["p_holm"] == 1.0 and result["verdict"] == NO_DIFFERENCE
        assert result["mean_diff"] == 0.0 and result["interval"] == [0.0, 0.0]


def test_three_clips_cannot_reach_five_percent():
    """Exact sign flips of 3 differences: the observed pattern and its mirror are the most
    extreme of 8, so p = 2/8 however large the effect."""
    p, exact = sign_flip_p(np.array([5.0, 6.0, 7.0]))
    assert exact and p == pytest.approx(0.25)
    a = np.full((1, 3), 30.0)
    assert compare_family({"psnr": (a, a - 10)})["psnr"]["verdict"] == NO_DIFFERENCE


def test_holm_matches_a_hand_computation():
    # sorted: 0.001 * 3 = 0.003, 0.04 * 2 = 0.08, 0.045 * 1 = 0.045 -> raised to 0.08 (monotone)
    assert holm([0.04, 0.045, 0.001]) == pytest.approx([0.08, 0.08, 0.003])
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    kept, missing = holm([0.5, float("nan")])
    assert kept == 0.5 and math.isnan(missing)
    rng = np.random.default_rng(2)
    a, b = _shifted(rng, 0.05, clips=30)
    family = compare_family({"psnr": (a, b), "ssim": (a, b + 0.02), "position_error": (a, b - 0.03)})
    adjusted = holm([r["p"] for r in family.values()])
    assert [r["p_holm"] for r in family.values()] == pytest.approx(adjusted)


def test_mdd_matches_a_hand_value():
    # z(0.975) = 1.959964, z(0.8) = 0.841621: (1.959964 + 0.841621) * 2 / sqrt(16)
    assert min_detectable_difference(2.0, 16, 0.05) == pytest.approx(1.4007925, rel=1e-6)
    assert math.isnan(min_detectable_difference(2.0, 1, 0.05))
    rng = np.random.default_rng(3)
    a, b = _shifted(rng, 0.3, clips=25)
    family = compare_family({"psnr": (a, b), "ssim": (a, b)})  # two metrics: level 0.05 / 2
    sd = np.mean(a - b, axis=0).std(ddof=1)
    # z(1 - 0.025 / 2) = z(0.9875) = 2.241403
    assert family["psnr"]["mdd"] == pytest.approx((2.241403 + 0.841621) * sd / 5.0, rel=1e-6)
    assert family["psnr"]["mdd_alpha"] == pytest.approx(0.025)


def test_the_interval_resamples_clips_with_their_seeds():
    """Seeds perfectly anti-correlated within each clip: every clip's mean difference is 0.5,
    so resampling clips (seeds together) gives the interval [0.5, 0.5]; resampling seeds on
    their own would mix the wildly different per-seed values into a wide interval."""
    rng = np.random.default_rng(4)
    spread = rng.normal(0.0, 5.0, size=30)
    a = np.stack([0.5 + spread, 0.5 - spread])  # (2 seeds, 30 clips) of differences
    result = compare_pair(a, np.zeros_like(a))
    assert result["mean_diff"] == pytest.approx(0.5)
    assert result["interval"] == pytest.approx([0.5, 0.5], abs=1e-9)
    assert result["n_clips"] == 30 and result["n_seeds"] == 2


def test_pairs_with_a_missing_value_are_left_out_and_results_are_deterministic():
    a = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan]])
    b = np.zeros_like(a)
    result = compare_pair(a, b)
    assert result["n_clips"] == 2 and result["mean_diff"] == pytest.approx((2.0 + 2.0) / 2)
    rng = np.random.default_rng(5)
    x, y = _shifted(rng, 0.1, clips=50)
    rows = [{"protocol": "p", "generator": g, "variant": "default", "per_clip": {"psnr": v.tolist()}}
            for g, v in (("gpt", x), ("diffusion", y))]  # fmt: skip
    assert compare_results(rows, seed=7) == compare_results(rows, seed=7)
    assert compare_results(rows, seed=7)[0]["p"] != compare_results(rows, seed=8)[0]["p"]


def test_per_clip_block_averages_samples_and_frames_and_keeps_nan_as_null():
    values = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)  # seeds, samples, clips, frames
    values[1, :, 2] = np.nan
    block = per_clip_block({"psnr": values, "flicker_ratio": values[..., 0]})
    assert list(block) == ["psnr"]  # headline metrics only
    assert np.array(block["psnr"], dtype=float)[0] == pytest.approx(values[0].mean(axis=(0, 2)))
    assert block["psnr"][1][2] is None and len(block["psnr"]) == 2 and len(block["psnr"][0]) == 4


# ---------------------------------------------------------------------------- from real harness output


@pytest.fixture(scope="module")
def real_report(demo_eval):
    """The quick demo's harness run (conftest.quick_demo): its debug GPT and diffusion models on
    every protocol, the rollout among them. Returns (results, report.md, report.html)."""
    results, out = demo_eval
    return results, (out / "report.md").read_text(), (out / "report.html").read_text()


def _md_tables(text: str, title: str) -> list[list[dict]]:
    """Every Markdown table right under a heading ending in ``title``, as rows of {header: cell}."""
    tables = []
    for part in re.split(r"^#+ .*" + re.escape(title) + r"\n\n", text, flags=re.M)[1:]:
        lines = part.split("\n\n")[0].splitlines()
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        tables.append([dict(zip(header, (c.strip() for c in ln.strip("|").split("|")))) for ln in lines[2:]])
    return tables


def _html_table(page: str, marker: str) -> list[dict]:
    """The first HTML table after ``marker`` (e.g. 'id="headline"'), as rows of {header: cell}."""
    section = page.split(marker)[1].split("</table>")[0]
    header = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", section)]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1])
    return [
        dict(zip(header, (html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)))) for r in rows
    ]


def _entry(results, protocol, strategy, a, b, metric) -> dict:
    (entry,) = [e for e in results["comparisons"] if (e["protocol"], e["strategy"], e["a"], e["b"], e["metric"])
                == (protocol, strategy, a, b, metric)]  # fmt: skip
    return entry


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the quick demo (conftest.quick_demo): minutes, once per session
def test_comparisons_pair_the_harness_rows_and_reach_both_reports(real_report):
    results, markdown, page = real_report
    keys = {"protocol", "strategy", "a", "b", "metric", "mean_diff", "interval", "p", "p_holm", "verdict", "mdd",
            "n_clips", "n_seeds", "higher_is_better"}  # fmt: skip
    entries = results["comparisons"]
    generation = {name: p for name, p in results["protocols"].items() if p["kind"] != "reconstruction"}
    assert generation, "the quick demo runs no generation protocol"
    assert {(e["protocol"], e["strategy"]) for e in entries} == {
        (name, strategy) for name, p in generation.items()
        for strategy in (("sliding", "chaining") if p["kind"] == "rollout" else (None,))}  # fmt: skip
    rows = {(r["protocol"], r["generator"], r["variant"]): r for r in results["results"]}
    order = list(results["generators"])
    pairs = {(a, b) for i, a in enumerate(order) for b in order[i + 1 :]}
    assert {(e["a"], e["b"]) for e in entries} == pairs  # every pair, in the generators' order
    for e in entries:
        assert keys <= set(e)
        assert e["n_seeds"] == len(results["settings"]["seeds"])
        assert e["n_clips"] == results["protocols"][e["protocol"]]["num_clips"]
        assert 0 < e["p"] <= e["p_holm"] <= 1
        if 2 ** e["n_clips"] <= 10_000:  # exact sign flips: the observed pattern and its mirror
            assert e["p"] >= 2 / 2 ** e["n_clips"] - 1e-12
            if 2 / 2 ** e["n_clips"] > e["alpha"]:  # a handful of clips cannot reach the level
                assert e["verdict"] == NO_DIFFERENCE
        if e["metric"] in ("psnr", "ssim"):  # never NaN: the difference of the rows' reported means
            variant = e["strategy"] or "default"
            means = [
                rows[(e["protocol"], g, variant)]["metrics"][e["metric"]]["mean"] for g in (e["a"], e["b"])
            ]
            assert e["mean_diff"] == pytest.approx(means[0] - means[1], abs=1e-3)
    by_pair = lambda e: (e["protocol"], e["strategy"], e["a"], e["b"])  # noqa: E731
    for (protocol, strategy, a, b), family in itertools.groupby(
        sorted(entries, key=lambda e: str(by_pair(e))), by_pair
    ):
        compared = {e["metric"] for e in family}
        assert {"psnr", "ssim", "caption_adherence"} <= compared
        pair = [rows[(protocol, g, strategy or "default")]["per_clip"] for g in (a, b)]
        for name in set(pair[0]) - compared:  # left out only where no (seed, clip) has both values
            both = np.isfinite(np.array(pair[0][name], float)) & np.isfinite(np.array(pair[1][name], float))
            assert not both.any(), name
    for table in (_md_tables(markdown, "Paired comparisons")[0], _html_table(page, 'id="comparisons"')):
        assert len(table) == len(entries)
        for line in table:
            strategy = None if line["strategy"] == "—" else line["strategy"]
            e = _entry(
                results, line["protocol"], strategy, line["A"], line["B"], line["metric"].split(" ")[0]
            )
            assert line["verdict (A vs B)"] == e["verdict"]
            assert float(line["p"]) == pytest.approx(e["p"], abs=5e-4)
            assert line["clips × seeds"] == f"{e['n_clips']} × {e['n_seeds']}"
            assert float(line["MDD"]) == pytest.approx(e["mdd"], rel=0.05, abs=1e-3)
    assert "Holm" in markdown.split("## Paired comparisons")[1].split("\n## ")[0]


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the quick demo (conftest.quick_demo): minutes, once per session
def test_sweep_variants_are_paired_with_their_own_default(real_report):
    """The quick demo sweeps one sampling setting per family on the continuation protocol: each
    sweep row is compared with its generator's default row on the same clips and seeds."""
    results, markdown, page = real_report
    entries = results["variant_comparisons"]
    rows = {(r["protocol"], r["generator"], r["variant"]): r for r in results["results"]}
    swept = {(r["generator"], r["variant"]) for r in results["results"]
             if r["protocol"] == "shapes-cont5" and r["variant"] != "default" and r["generator"] != "tokenizer"}  # fmt: skip
    assert len(swept) == len(results["generators"])  # one sweep point per family
    assert {(e["a"], e["b"]) for e in entries} == {(f"{g} [{v}]", g) for g, v in swept}
    for e in entries:
        generator, variant = e["b"], e["a"].split(" [")[1].rstrip("]")
        if e["metric"] in ("psnr", "ssim"):
            means = [
                rows[("shapes-cont5", generator, v)]["metrics"][e["metric"]]["mean"]
                for v in (variant, "default")
            ]
            assert e["mean_diff"] == pytest.approx(means[0] - means[1], abs=1e-3)
    title = "Sampling settings against the default (paired)"
    for table in (_md_tables(markdown, title)[0], _html_table(page, 'id="variant-comparisons"')):
        assert len(table) == len(entries) and {line["A"] for line in table} == {e["a"] for e in entries}


@pytest.mark.slow
@pytest.mark.timeout(1500)  # the quick demo (conftest.quick_demo): minutes, once per session
def test_headline_verdict_cells_name_each_metrics_verdict(real_report):
    results, markdown, page = real_report
    column = "verdict vs other generators (paired, Holm)"
    for table in (_md_tables(markdown, "Headline")[0], _html_table(page, 'id="headline"')):
        checked = 0
        for line in table:
            if line["generator"] == "tokenizer":  # the reconstruction row: nothing to compare with
                assert line[column] == "—"
                continue
            strategy = None if line["variant"] == "default" else line["variant"]
            me, order = line["generator"], list(results["generators"])
            segments = dict(seg.removeprefix("vs ").split(": ", 1) for seg in line[column].split(" · "))
            assert list(segments) == [g for g in order if g != me]  # every other generator, in order
            for opponent, groups in segments.items():
                a, b = sorted((me, opponent), key=order.index)
                for group in groups.split("; "):  # "better: psnr, ssim"
                    said, metrics = group.split(": ")
                    for metric in metrics.split(", "):
                        wanted = _entry(results, line["protocol"], strategy, a, b, metric)["verdict"]
                        if me == b:  # B: the verdict seen from its side
                            wanted = {"better": "worse", "worse": "better"}.get(wanted, wanted)
                        assert said == wanted
                        checked += 1
        assert checked == len(results["comparisons"]) * 2  # each comparison seen from both sides


DRIFT_COLUMNS = {"start": "start_value", "end": "end_value", "slope / frame": "degradation_slope"}


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_drift_cells_of_a_real_report_are_numbers(real_report):
    results, markdown, page = real_report
    drift = {(r["protocol"], r["generator"], r["variant"], m): d for r in results["results"]
             for m, d in (r.get("drift") or {}).items()}  # fmt: skip
    md_sections = {s.split("\n", 1)[0]: s for s in markdown.split("## Protocol: ")[1:]}
    html_sections = {
        re.match(r'[^>]*data-protocol="([^"]+)"', s)[1]: s
        for s in page.split('<section class="protocol"')[1:]
    }
    assert set(md_sections) == set(html_sections) == set(results["protocols"])
    md_lines = [
        (p, line) for p, s in md_sections.items() for table in _md_tables(s, "Drift") for line in table
    ]
    html_lines = [(p, line) for p, s in html_sections.items() if "<h3>Drift</h3>" in s
                  for line in _html_table(s, "<h3>Drift</h3>")]  # fmt: skip
    assert len(md_lines) == len(html_lines) == len(drift) > 0
    assert {p for p, _ in md_lines} >= {"shapes-cont5", "shapes-rollout"}
    for protocol, line in md_lines + html_lines:
        d = drift[(protocol, line["generator"], line["variant"], line["metric"])]
        for column, key in DRIFT_COLUMNS.items():
            assert re.fullmatch(r"-?[\d,]*\.?\d+", line[column]), (column, line)
            assert float(line[column].replace(",", "")) == pytest.approx(d[key], rel=0.01, abs=1e-3)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_rollout_cost_is_measured_on_the_rollout(real_report):
    """The rollout's cost row generates its 65 frames by its strategy: more network evaluations
    than the 17-frame continuation; for the GPT (one per latent token) exactly in proportion
    to the frames generated, by sliding and by chaining alike."""
    results, _, _ = real_report
    length = results["protocols"]["shapes-rollout"]["frames_used"]["generate"]
    rows = {(r["protocol"], r["generator"], r["variant"]): r.get("cost") for r in results["results"]}
    for generator in ("gpt", "diffusion"):
        short = rows[("shapes-cont5", generator, "default")]
        for strategy in ("sliding", "chaining"):
            cost = rows[("shapes-rollout", generator, strategy)]
            assert cost["num_frames"] == length == 65
            assert cost["generated_frames"] == 65 - cost["prefix_frames"]
            assert cost["function_evaluations"] > short["function_evaluations"]
            if generator == "gpt":
                per_frame = short["function_evaluations"] / short["generated_frames"]
                assert cost["function_evaluations"] == per_frame * cost["generated_frames"]
