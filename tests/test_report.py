"""The evaluation report: tables checked against the results they print, the page checked in
headless Chromium (plots decoded, sample videos playing, first frames matching the numpy frames)."""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import re

import numpy as np
import pytest

from vtlm.data.writers import grid_video, upscale, write_gif, write_mp4
from vtlm.eval.report import browser, write_report
from vtlm.eval.report.markdown import format_figure
from vtlm.eval.report.plots import pareto_front

NOT_COMPUTED = "FVD: not computed (no I3D weights; pass --i3d PATH)"
EVIL_CAPTION = 'a red circle <script>alert("x")</script> & "friends" moves left'


def _figure(rng, mean, half, n, unit, higher, kind="mean"):
    low, high = mean - half * rng.uniform(0.7, 1.3), mean + half * rng.uniform(0.7, 1.3)
    return {"mean": mean, "ci_low": low, "ci_high": high, "std": 2 * half, "n": n, "kind": kind, "unit": unit,
            "higher_is_better": higher}  # fmt: skip


def _curve(rng, frames, start, slope, half, unit="dB", higher=True):
    mean = [start + slope * (f - frames[0]) + rng.normal(0, half / 5) for f in frames]
    return {"frames": list(frames), "mean": mean, "ci_low": [m - half for m in mean], "ci_high": [m + half for m in mean],
            "unit": unit, "higher_is_better": higher}  # fmt: skip


def _row(rng, protocol, generator, variant, quality, seconds, curves=None, t2v=False):
    if t2v:
        metrics = {"caption_adherence": _figure(rng, 0.5 + 0.05 * quality, 0.04, 64, "share", True),
                   "classifier_fd": _figure(rng, 180 - 8 * quality, 12.0, 256, "", False)}  # fmt: skip
    else:
        metrics = {"psnr": _figure(rng, 14 + quality, 0.4, 64, "dB", True),
                   "psnr_best_of_4": _figure(rng, 15.5 + quality, 0.4, 64, "dB", True, "best-of-4"),
                   "ssim": _figure(rng, 0.4 + 0.04 * quality, 0.02, 64, "", True),
                   "position_error": _figure(rng, 6 - 0.5 * quality, 0.5, 64, "px", False)}  # fmt: skip
    row = {"protocol": protocol, "generator": generator, "variant": variant, "metrics": metrics,
           "cost": {"seconds_per_clip": seconds, "seconds_per_video_second": seconds / 2.0, "time_to_first_frame": seconds / 10,
                    "frames_per_second": 17 / seconds, "function_evaluations": 192, "peak_memory_mb": 300.0, "params": 4512345}}  # fmt: skip
    if curves:
        row["curves"], row["drift"] = curves, {
            name: {"slope": -0.3, "frames_to_threshold": 7, "threshold": 15.0 if name == "psnr" else 0.3,
                   "start": c["mean"][0], "end": c["mean"][-1]} for name, c in curves.items()}  # fmt: skip
    return row


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A realistic results dict (2 generators; continuation with a diffusion step sweep and an AR
    temperature, text-to-video, rollout with sliding/chaining), its sample grids, the report."""
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("report")
    rows = []
    for variant, quality, seconds in (("default", 4.0, 1.2), ("temperature=0.7", 4.4, 1.2)):
        rows.append(
            _row(
                rng,
                "shapes-cont5",
                "gpt",
                variant,
                quality,
                seconds,
                {"psnr": _curve(rng, range(5, 17), 20, -0.6, 0.5)},
            )
        )
    for steps, quality in ((10, 2.0), (25, 3.6), (50, 4.2)):
        rows.append(_row(rng, "shapes-cont5", "diffusion", f"steps={steps}", quality, 0.08 * steps,
                         {"psnr": _curve(rng, range(5, 17), 19, -0.4, 0.6)}))  # fmt: skip
    rows += [_row(rng, "shapes-t2v", "gpt", "default", 3.0, 1.5, t2v=True),
             _row(rng, "shapes-t2v", "diffusion", "steps=25", 2.0, 2.0, t2v=True)]  # fmt: skip
    for generator, variant in itertools.product(("gpt", "diffusion"), ("sliding", "chaining")):
        slope = -0.25 if variant == "sliding" else -0.4
        curves = {"psnr": _curve(rng, range(5, 49), 20, slope, 0.6),
                  "ssim": _curve(rng, range(5, 49), 0.6, slope / 40, 0.03, unit="")}  # fmt: skip
        rows.append(
            _row(rng, "shapes-rollout", generator, variant, 3.0, 4.0 if generator == "gpt" else 9.0, curves)
        )
    clips = upscale(rng.integers(0, 256, (3, 2, 8, 16, 16, 3), dtype=np.uint8), 2)  # (column, B, T, H, W, 3)
    grid = grid_video(list(clips))  # (8, 70, 104, 3): 2 rows, 3 columns
    write_mp4(out / "samples" / "shapes-cont5.mp4", grid, fps=6)
    write_gif(out / "samples" / "shapes-rollout.gif", grid, fps=6)
    results = {
        "vtlm_eval": 1, "created": "2026-11-25T05:00:00Z",
        "command": "vtlm eval compare runs/demo/gpt runs/demo/diffusion --seeds [0,1,2]",
        "machine": {"cpu": "2 cores", "torch": "2.13.0+cpu"},
        "tokenizer": {"path": "runs/demo/tokenizer", "sha256": "ab" * 32},
        "settings": {"seeds": [0, 1, 2], "confidence": 0.95, "bootstrap": 2000, "ssim": {"window": 11, "sigma": 1.5},
                     "data_range": 2.0, "fvd": None},
        "generators": {
            "gpt": {"path": "runs/demo/gpt", "kind": "gpt", "params": 4512345, "sampling": {"temperature": 1.0, "top_k": 0},
                    "training": {"steps": 693, "seconds": 270.0, "flops": 1.2e15}},
            "diffusion": {"path": "runs/demo/diffusion", "kind": "diffusion", "params": 4700000, "sampling": {"steps": 25},
                          "training": {"steps": 700, "seconds": 300.0, "flops": 1.3e15}}},
        "protocols": {
            "shapes-cont5": {"kind": "continuation", "context_frames": 5, "total_frames": 17, "resolution": 32,
                             "num_clips": 64, "samples_per_clip": 4, "source": "vtlm built-in", "notes": "held-out seeds"},
            "shapes-t2v": {"kind": "text-to-video", "total_frames": 17, "resolution": 32, "num_clips": 64},
            "shapes-rollout": {"kind": "rollout", "context_frames": 5, "total_frames": 49, "resolution": 32, "num_clips": 16}},
        "results": rows,
        "sample_grids": [
            {"protocol": "shapes-cont5", "title": "continuation of 5 frames", "columns": ["ground truth", "gpt", "diffusion"],
             "rows": [EVIL_CAPTION, "a blue square bounces"], "file": "samples/shapes-cont5.mp4", "fps": 6},
            {"protocol": "shapes-rollout", "title": "rollout", "columns": ["ground truth", "sliding", "chaining"],
             "rows": ["one", "two"], "file": "samples/shapes-rollout.gif", "fps": 6}],
        "not_computed": [NOT_COMPUTED],
    }  # fmt: skip
    paths = write_report(results, out)
    return {"results": results, "paths": paths, "grid": grid, "out": out}


def _numbers(cell: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"-?[\d,]*\.?\d+", cell)]


def _dominates(costs, qualities, sign, j, i) -> bool:
    """The definition: j costs no more and is no worse than i, and is strictly better in one."""
    no_worse = costs[j] <= costs[i] and sign * qualities[j] >= sign * qualities[i]
    return no_worse and (costs[j] < costs[i] or sign * qualities[j] > sign * qualities[i])


def test_pareto_front_matches_the_definition():
    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(1, 12))
        costs, qualities = rng.integers(0, 5, n).astype(float), rng.integers(0, 5, n).astype(float)
        higher = bool(trial % 2)
        sign = 1 if higher else -1
        expected = {
            i for i in range(n) if not any(_dominates(costs, qualities, sign, j, i) for j in range(n))
        }
        front = pareto_front(list(costs), list(qualities), higher)
        assert set(front) == expected and len(front) == len(expected)
        assert [costs[i] for i in front] == sorted(costs[i] for i in front)


def test_figure_cells_print_the_given_numbers():
    rng = np.random.default_rng(2)
    for _ in range(100):
        mean = float(rng.uniform(-50, 500))
        figure = {
            "mean": mean,
            "ci_low": mean - rng.uniform(0.001, 20),
            "ci_high": mean + rng.uniform(0.001, 20),
            "unit": "dB",
        }
        cell = format_figure(figure)
        printed = _numbers(cell)
        decimals = len(cell.split(" [")[0].partition(".")[2])
        for got, want in zip(printed, (figure["mean"], figure["ci_low"], figure["ci_high"])):
            assert abs(got - want) <= 0.5 * 10**-decimals + 1e-9, cell
        assert cell.endswith(" dB") and len(printed) == 3
        # the interval is resolved: its width is printed with at least two significant digits
        assert (printed[2] - printed[1]) * 10**decimals >= 9.5 or decimals == 4


def test_markdown_has_the_tables_kinds_and_notes(report):
    text = report["paths"]["markdown"].read_text()
    results = report["results"]
    assert NOT_COMPUTED in text.splitlines()[text.splitlines().index("## Not computed") + 2]
    assert "seeds: 0, 1, 2" in text and "95% confidence interval (bootstrap, 2000 resamples)" in text
    for protocol in results["protocols"]:
        section = text.split(f"## Protocol: {protocol}\n")[1].split("\n## ")[0]
        rows = [r for r in results["results"] if r["protocol"] == protocol]
        names = list(rows[0]["metrics"])
        table = section.split("### Quality\n\n")[1].split("\n\n")[0].splitlines()
        header = [c.strip() for c in table[0].strip("|").split("|")]
        assert [h.split(" ")[0] for h in header] == ["generator", "variant", *names]
        assert len(table) == 2 + len(rows)
        for row, line in zip(rows, table[2:]):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[:2] == [row["generator"], row["variant"]]
            for name, cell in zip(names, cells[2:]):
                figure = row["metrics"][name]
                mean, low, high = _numbers(cell.split(" " + figure["unit"])[0] if figure["unit"] else cell)
                assert abs(mean - figure["mean"]) < 0.01 * max(1, abs(figure["mean"]))
                assert low <= mean <= high and (cell.endswith(figure["unit"]))
        assert "### Cost" in section and "s / clip" in section
        if protocol != "shapes-t2v":
            assert "psnr_best_of_4: best of 4 samples per clip" in section
            assert "psnr: mean over clips and seeds, in dB, higher is better, n = 64" in section
    assert "<script>" not in text and "&lt;script&gt;" in text  # captions are escaped


def test_headline_lists_every_protocol_default_with_its_figures(report):
    text = report["paths"]["markdown"].read_text()
    table = text.split("## Headline\n\n")[1].split("\n\n")[0].splitlines()
    header = [c.strip().split(" ")[0] for c in table[0].strip("|").split("|")]
    rows = [r for r in report["results"]["results"] if r["variant"] in ("default", "sliding", "chaining")]
    assert header[:4] == ["protocol", "generator", "variant", "psnr"] and header[-1] == "s"
    assert len(table) == 2 + len(rows)
    for row, line in zip(rows, table[2:]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:3] == [row["protocol"], row["generator"], row["variant"]]
        if "psnr" in row["metrics"]:
            assert _numbers(cells[3])[0] == pytest.approx(row["metrics"]["psnr"]["mean"], abs=0.1)
        else:  # text-to-video has no frame-by-frame truth
            assert cells[3] == "—"
    assert "Headline" in report["paths"]["html"].read_text()


def test_results_json_written_when_absent_and_kept_when_present(report, tmp_path):
    assert json.loads(report["paths"]["results"].read_text()) == report["results"]
    (tmp_path / "results.json").write_text("{}")
    write_report(
        {**report["results"], "results": report["results"]["results"][5:7], "sample_grids": []}, tmp_path
    )
    assert (tmp_path / "results.json").read_text() == "{}"
    with pytest.raises(ValueError, match="vtlm_eval"):
        write_report({**report["results"], "vtlm_eval": 2}, tmp_path)


def test_html_is_self_contained_and_escaped(report):
    page = report["paths"]["html"].read_text()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)
    assert EVIL_CAPTION not in page and html.escape(EVIL_CAPTION) in page
    assert html.escape(NOT_COMPUTED) in page.split('id="not-computed"')[1].split("</section>")[0]
    for kind in ("pareto", "drift", "bars"):
        assert page.count(f'data-plot="{kind}"') == (3 if kind != "drift" else 2)  # t2v has no curves


def test_page_loads_in_headless_chromium(report):
    if browser.chromium_path() is None:
        pytest.skip("headless Chromium not found at /usr/bin/chromium: apt-get install chromium")
    from PIL import Image

    page = report["paths"]["html"].read_text()
    dom = browser.dump_dom(report["paths"]["html"], budget_ms=5000)
    assert 'data-media-ready="true"' in dom
    state = {
        item["id"]: item
        for item in json.loads(html.unescape(re.search(r'data-media-state="([^"]*)"', dom)[1]))
    }
    assert dom.count("<script") == 1  # the caption's <script> stayed text
    assert html.escape(EVIL_CAPTION, quote=False) in dom
    plots = re.findall(r'<img class="plot" id="([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"', page)
    assert len(plots) == 8
    for element_id, data in plots:
        width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
        assert state[element_id]["ready"] == 4 and state[element_id]["width"] == width > 0, state[element_id]
        assert state[element_id]["height"] == height
    samples = [item for item in state.values() if "first_frame_mean_rgb" in item]
    assert sorted(item["tag"] for item in samples) == ["img", "video"]
    want = report["grid"][0].reshape(-1, 3).mean(axis=0)
    for item in samples:
        assert item["error"] is None and item["ready"] >= 2, item
        assert (item["width"], item["height"]) == report["grid"].shape[2:0:-1]
        assert np.abs(np.array(item["first_frame_mean_rgb"]) - want).max() < 4.0, (item, want)


def test_chromium_reports_a_broken_video(report, tmp_path):
    if browser.chromium_path() is None:
        pytest.skip("headless Chromium not found at /usr/bin/chromium: apt-get install chromium")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    grid = {"protocol": "shapes-t2v", "title": "broken", "columns": [], "rows": [], "file": "broken.mp4"}
    results = {**report["results"], "results": report["results"]["results"][5:7], "sample_grids": [grid]}
    dom = browser.dump_dom(write_report(results, tmp_path)["html"], budget_ms=3000)
    state = json.loads(html.unescape(re.search(r'data-media-state="([^"]*)"', dom)[1]))
    (video,) = [item for item in state if item["tag"] == "video"]
    assert video["error"] is not None and video["ready"] < 2 and video["width"] == 0


def test_missing_chromium_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "chromium_path", lambda: None)
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        browser.dump_dom(tmp_path / "page.html")
