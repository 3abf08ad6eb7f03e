"""The `vtlm` command as a person runs it: subprocesses for the console script, main() in-process."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vtlm.cli.main import main
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, render_clip
from vtlm.data.text import TextTokenizer

VTLM = [str(Path(sys.executable).with_name("vtlm"))]


def run(*args, cwd=None, timeout=300):
    return subprocess.run(VTLM + list(args), capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_make_synthetic_writes_files_that_match_the_generator(tmp_path):
    out = tmp_path / "shapes"
    main(
        [
            "data",
            "make-synthetic",
            str(out),
            "--num_train",
            "3",
            "--num_val",
            "1",
            "--num_test",
            "1",
            "--data.shapes.resolution",
            "32",
            "--data.shapes.num_frames",
            "9",
            "--data.seed",
            "7",
        ]
    )
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["split"] for r in rows] == ["train"] * 3 + ["val", "test"]
    assert (tmp_path / "shapes_preview.png").is_file()
    cfg = SyntheticConfig(shapes=ShapesConfig(resolution=32, num_frames=9), seed=7)
    ds = VideoFolderDataset(
        FolderConfig(root=str(out), split="val", clip={"num_frames": 9, "resolution": 32, "window": "start"})
    )
    item, clip = ds[0], render_clip(cfg, 0, "val")
    assert item["caption"] == clip.caption_descriptive == rows[3]["caption"]
    assert rows[3]["labels"] == json.loads(json.dumps(clip.labels))
    frames = ((item["video"].permute(1, 2, 3, 0).numpy() + 1) * 127.5).round()
    assert np.abs(frames - clip.frames).max() <= 3  # 4:4:4 lossless H.264: only color-space rounding


def test_train_text_from_built_in_data_and_from_a_manifest(tmp_path):
    model = tmp_path / "text" / "shapes.model"
    main(["data", "train-text", str(model), "--num_captions", "300", "--vocab_size", "400"])
    tok = TextTokenizer(model)
    caption = render_clip(SyntheticConfig(), 5, "test").caption_descriptive
    assert tok.decode(tok.encode(caption)) == caption
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,caption\na.mp4,a red circle\nb.mp4,a blue square bounces\n" * 10)
    main(
        [
            "data",
            "train-text",
            str(tmp_path / "csv.model"),
            "--manifest",
            str(manifest),
            "--vocab_size",
            "300",
        ]
    )
    assert (
        TextTokenizer(tmp_path / "csv.model").decode(
            TextTokenizer(tmp_path / "csv.model").encode("a red circle")
        )
        == "a red circle"
    )


def test_inspect_reports_and_writes_a_preview_without_touching_the_folder(video_folder, tmp_path):
    root, _ = video_folder
    before = sorted(p.name for p in root.rglob("*"))
    preview = tmp_path / "preview.png"
    result = run(
        "data", "inspect", str(root), "--preview", str(preview), "--json_out", str(tmp_path / "s.json")
    )
    assert result.returncode == 0, result.stderr
    assert "5 videos, 1 images, 1 unreadable" in result.stdout and "broken.mp4" in result.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["resolutions"]["32x32"] == 3 and summary["frames"]["max"] == 30
    assert preview.is_file() and sorted(p.name for p in root.rglob("*")) == before


def test_bad_config_key_and_value_are_named(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  shapes:\n    resolutoin: 32\n")
    result = run("data", "make-synthetic", str(tmp_path / "x"), "--config", str(config))
    assert result.returncode != 0 and "resolutoin" in result.stderr
    result = run("data", "make-synthetic", str(tmp_path / "x"), "--data.shapes.max_objects", "9")
    assert result.returncode != 0 and "max_objects" in result.stderr
    result = run("nonsense")
    assert result.returncode != 0 and "unknown group" in result.stderr
    assert not (tmp_path / "x").exists()


def test_help_and_print_config_work(tmp_path):
    assert "make-synthetic" in run("data", "--help").stdout
    printed = run("data", "make-synthetic", "--print_config", str(tmp_path / "o"))
    assert printed.returncode == 0 and "resolution: 32" in printed.stdout
    config = tmp_path / "c.yaml"
    config.write_text(
        printed.stdout.replace("num_train: 1000", "num_train: 2")
        .replace("num_val: 64", "num_val: 0")
        .replace("num_test: 64", "num_test: 0")
        .replace("preview: true", "preview: false")
    )
    assert run("data", "make-synthetic", "--config", str(config)).returncode == 0
    assert len(list((tmp_path / "o" / "train").glob("*.mp4"))) == 2


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_quick_demo_runs_end_to_end(quick_demo):
    # The quick demo trains four small models and runs every protocol with the tokenizer's ceiling,
    # floors and full-length rollout costs: minutes on a 2-core machine, more under load. It runs
    # once per session (conftest.quick_demo); the harness tests read its evaluation.
    out, result = quick_demo
    assert result.returncode == 0, result.stderr[-2000:]
    for name in (
        "preview.png",
        "eval/results.json",
        "eval/report.md",
        "eval/report.html",
        "eval/samples/shapes-cont5.mp4",
        "eval/samples/shapes-rollout.png",
        "text/shapes.model",
        "tokenizer/tokenizer/weights.safetensors",
        "tokens/test/index.json",
        "gpt/gpt/weights.safetensors",
        "diffusion/diffusion/weights.safetensors",
        "forcing/forcing/weights.safetensors",
        "maskgit/maskgit/weights.safetensors",
    ):
        assert (out / name).is_file(), name
    assert "done" in result.stdout


def test_quick_bench_writes_ratios(quick_bench):
    out, result = quick_bench  # conftest: `vtlm bench --quick` once per session
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "bench.json").read_text())
    row = next(row for row in report["rows"] if row["id"] == "data_read")
    assert row["vtlm"] > 0 and row["peers"]["pyav"] > 0 and report["machine"]["torch"]
    assert "x)" in result.stdout
    for name in ("data", "loader", "generation", "gpu"):  # each workload is announced as it starts
        assert f"] {name}: " in result.stdout, name


def test_demo_eval_clips_set_the_harness_clip_counts(tmp_path):
    """`vtlm demo --eval_clips N`: N held-out clips, a quarter of them for the 4x rollouts, one
    seed; the quick run keeps its 4 and 2; fewer than 4 is refused before any work."""
    from vtlm.cli.demo import EVAL_CLIPS, demo, eval_config
    from vtlm.eval.harness import _protocol

    default = eval_config(tmp_path, quick=False, anti_drift=False)
    assert (default.num_clips, default.protocol_clips, default.seeds) == (
        EVAL_CLIPS,
        {"shapes-rollout": EVAL_CLIPS // 4},
        [0],
    )
    more = eval_config(tmp_path, quick=False, anti_drift=False, eval_clips=128)
    assert more.num_clips == 128 and more.protocol_clips == {"shapes-rollout": 32}
    # and the harness judges that many, past the protocols' default counts (64 and 16)
    counts = {name: _protocol(name, more, None).num_clips for name in more.protocols}
    assert counts == {"shapes-recon": 128, "shapes-t2v": 128, "shapes-cont5": 128, "shapes-rollout": 32}
    quick = eval_config(tmp_path, quick=True, anti_drift=False, eval_clips=128)
    assert quick.num_clips == 4 and quick.protocol_clips == {"shapes-rollout": 2}
    with pytest.raises(ValueError, match="eval_clips: expected at least 4"):
        demo(out=str(tmp_path / "demo"), eval_clips=2)
    assert not (tmp_path / "demo").exists()
