"""Shared fixtures, made once per session: small video files written with PyAV, debug
checkpoints trained by the CLI, and the quick demo (whose evaluation stage is the session's one
real harness run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vtlm.data.writers import write_mp4

# `make test` runs two pytest-xdist workers (--dist loadgroup). A test file is one unit of work
# on one worker, so a session fixture is built once per file that needs it; the files that read
# the quick demo (minutes) and the quick bench share one unit, so each runs once. The units that
# take longest start first, so the two workers finish together.
SHARED_UNITS = {name: "quick_demo" for name in (
    "test_cli.py", "test_eval_ceiling.py", "test_eval_harness.py", "test_paired_stats.py", "test_bench.py"
)}  # fmt: skip
FIRST_UNITS = ("quick_demo", "test_readme.py", "test_classifier.py", "test_reliability_resume.py")


def pytest_itemcollected(item):
    """Each test's unit, marked as it is collected (before xdist reads the marks)."""
    if item.get_closest_marker("xdist_group") is None:
        item.add_marker(pytest.mark.xdist_group(SHARED_UNITS.get(item.path.name, item.path.name)))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    rank = {unit: i for i, unit in enumerate(FIRST_UNITS)}
    unit = lambda item: item.get_closest_marker("xdist_group").args[0]  # noqa: E731
    items.sort(key=lambda item: rank.get(unit(item), len(rank)))  # stable: file order otherwise


def pytest_collection_finish(session):
    """Under --dist loadgroup, refuse to run when the units did not reach xdist (it reads them
    from "@unit" node id suffixes): every quick-demo reader would then build its own demo."""
    if session.config.getoption("loadgroup", False) and any("@" not in i.nodeid for i in session.items):
        raise pytest.UsageError(
            "pytest-xdist --dist loadgroup did not group the tests (see pyproject's pytest pin)"
        )


if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker: the workers share the cores
    os.environ["OMP_NUM_THREADS"] = "1"  # the console-script subprocesses too
    torch.set_num_threads(1)


def moving_square(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): a bright square moving right on a dark, noisy background."""
    rng = np.random.default_rng(seed)
    video = (rng.random((frames, height, width, 3)) * 40).astype(np.uint8)
    side = max(4, min(height, width) // 4)
    for t in range(frames):
        x = (2 * t) % max(1, width - side)
        video[t, height // 3 : height // 3 + side, x : x + side] = (230, 60, 40)
    return video


@pytest.fixture(scope="session")
def video_folder(tmp_path_factory):
    """A folder with 4 good videos (one in a subfolder, one 48 px wide), a too-short one,
    an image, a corrupt file and a caption manifest. Returns (root, the frames written)."""
    root = tmp_path_factory.mktemp("videos")
    written = {}
    for name, (t, h, w) in {
        "a.mp4": (24, 32, 32),
        "b.mp4": (20, 40, 64),
        "sub/c.mp4": (30, 32, 32),
        "wide48.mp4": (20, 32, 48),  # decord 0.6 fails on this width: PyAV reads it
        "short.mp4": (3, 32, 32),
    }.items():
        frames = moving_square(t, h, w, seed=len(written))
        write_mp4(root / name, frames, fps=10, crf=0, pix_fmt="yuv444p")
        written[name] = frames
    from PIL import Image

    image = moving_square(1, 48, 40)[0]
    Image.fromarray(image).save(root / "still.png")
    written["still.png"] = image[None]
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (root / "manifest.jsonl").write_text(
        '{"path": "a.mp4", "caption": "a red square moves right"}\n'
        '{"path": "sub/c.mp4", "caption": "another square", "split": "val"}\n'
    )
    (root / "b.txt").write_text("sidecar caption for b\n")
    return root, written


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def debug_tokenizer_run(tmp_path_factory):
    """A debug-preset tokenizer trained for 40 steps by `vtlm tokenizer fit` (shared by tests).
    Returns the run directory; RUN/tokenizer is the exported model directory."""
    from vtlm.cli.main import main

    run = tmp_path_factory.mktemp("tokenizer_run")
    main(
        [
            "tokenizer",
            "fit",
            "--preset_name",
            "debug",
            "--trainer.out_dir",
            str(run),
            "--trainer.max_steps",
            "40",
            "--trainer.val_every_n_steps",
            "20",
            "--trainer.limit_val_batches",
            "2",
            "--trainer.progress_bar",
            "false",
            "--data.batch_size",
            "4",
            "--data.val_clips",
            "8",
            "--data.image_share",
            "0.25",
            "--optim.warmup_steps",
            "5",
            "--trainer.checkpoint_every_n_steps",
            "20",
        ]
    )
    return run


@pytest.fixture(scope="session")
def token_pipeline(debug_tokenizer_run, tmp_path_factory):
    """Token shards (train 24, val 8 clips of 9x32x32 shapes) from the debug tokenizer, and a
    caption text model: what `vtlm gpt fit` reads. Returns a dict of paths."""
    from vtlm.cli.main import main

    root = tmp_path_factory.mktemp("tokens")
    main(
        [
            "tokenizer",
            "encode",
            str(debug_tokenizer_run / "tokenizer"),
            str(root / "tokens"),
            "--splits",
            "[train, val]",
            "--num_clips",
            "{train: 24, val: 8}",
            "--batch_size",
            "8",
        ]
    )
    main(["data", "train-text", str(root / "text.model"), "--num_captions", "400", "--vocab_size", "400"])
    return {
        "train": root / "tokens" / "train",
        "val": root / "tokens" / "val",
        "text": root / "text.model",
        "tokenizer": debug_tokenizer_run / "tokenizer",
        "root": root,
    }


def generator_fit_args(kind: str, pipeline: dict, run, steps: int, lr: str) -> list[str]:
    """`vtlm {gpt,diffusion} fit` on the token pipeline with the debug preset."""
    return [kind, "fit", "--preset_name", "debug", "--data.train", str(pipeline["train"]), "--data.val", str(pipeline["val"]),
            "--data.text_model", str(pipeline["text"]), "--data.batch_size", "8", "--trainer.out_dir", str(run),
            "--trainer.max_steps", str(steps), "--trainer.val_every_n_steps", str(max(1, steps // 2)),
            "--trainer.limit_val_batches", "1", "--trainer.progress_bar", "false", "--trainer.log_every_n_steps", "2",
            "--optim.lr", lr, "--optim.warmup_steps", "3"]  # fmt: skip


@pytest.fixture(scope="session")
def debug_gpt_run(token_pipeline, tmp_path_factory):
    """A debug-preset GPT trained for 30 steps on the token pipeline; returns its run dir."""
    from vtlm.cli.main import main

    run = tmp_path_factory.mktemp("gpt_run")
    main(generator_fit_args("gpt", token_pipeline, run, 30, "0.003"))
    return run


@pytest.fixture(scope="session")
def debug_diffusion_run(token_pipeline, tmp_path_factory):
    """A debug-preset diffusion transformer trained for 30 steps on the token pipeline."""
    from vtlm.cli.main import main

    run = tmp_path_factory.mktemp("diffusion_run")
    main(generator_fit_args("diffusion", token_pipeline, run, 30, "0.002"))
    return run


@pytest.fixture(scope="session")
def random_token_pipeline(tmp_path_factory):
    """Like ``token_pipeline``, in seconds: an untrained debug tokenizer (random weights, saved
    as a model directory), its codes of 24 train and 8 val shapes clips (9x32x32 -> 3x8x8) as
    shards, and a caption text model. Returns a dict of paths."""
    from vtlm.data.shard_dataset import TokenShards
    from vtlm.data.text import train_text_tokenizer
    from vtlm.data.video_datamodule import VideoDataConfig, synthetic_split
    from vtlm.tokenizer.config import preset
    from vtlm.tokenizer.encode import encode_to_shards, finish_index
    from vtlm.tokenizer.model import VideoTokenizer
    from vtlm.train.checkpoint import save_model_dir

    root = tmp_path_factory.mktemp("random_tokens")
    torch.manual_seed(0)
    cfg = preset("debug")
    model = VideoTokenizer(cfg).eval()
    save_model_dir(root / "tokenizer", "tokenizer", cfg.to_dict(), model.state_dict(), {"step": 0})
    data = VideoDataConfig()
    captions = []
    for split, count in (("train", 24), ("val", 8)):
        dataset = synthetic_split(data, split, 9, count)
        keys = [f"shapes/{split}/{i:07d}" for i in range(count)]
        encode_to_shards(model, dataset, keys, root / split, batch_size=8, clips_per_shard=8, progress=False)
        finish_index(root / split, root / "tokenizer", model, {"split": split})
        shards = TokenShards(root / split)
        captions += [shards.caption(i) for i in range(len(shards))]
        captions += [shards.meta(i)["caption_terse"] for i in range(len(shards))]
    train_text_tokenizer(captions, root / "text.model", vocab_size=400)
    return {
        "train": root / "train",
        "val": root / "val",
        "text": root / "text.model",
        "tokenizer": root / "tokenizer",
        "root": root,
    }


VTLM = str(Path(sys.executable).with_name("vtlm"))
# Every generator family: the quick demo trains and evaluates them all side by side.
FAMILIES = ("gpt", "diffusion", "forcing", "maskgit")


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """`vtlm demo --quick` as a person runs it (the console script in a subprocess), once per
    session, with every generator family. test_cli checks what it writes; its evaluation stage
    (the harness on the demo's debug tokenizer and its four debug generators: every protocol, ceilings, floors, a sampling
    sweep, paired comparisons and the report) is the real harness output that the harness,
    ceiling and paired-comparison tests read. Minutes on a 2-core machine: every test that uses
    it carries a pytest timeout above the subprocess limit. Returns (output folder, the finished
    process)."""
    out = tmp_path_factory.mktemp("quick_demo") / "demo"
    result = subprocess.run(
        [VTLM, "demo", "--out", str(out), "--quick", "true", "--families", f"[{', '.join(FAMILIES)}]"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return out, result


@pytest.fixture(scope="session")
def demo_eval(quick_demo):
    """The quick demo's evaluation: (results.json as read back, its folder with the reports)."""
    out, result = quick_demo
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "eval" / "results.json").read_text()), out / "eval"


@pytest.fixture(scope="session")
def quick_bench(tmp_path_factory):
    """`vtlm bench --quick` on the workloads that need no peer library (data, loader, generation,
    throughput, gpu), as a person runs it (the console script in a subprocess), once per session: test_cli
    and test_bench read it. Returns (output folder, the finished process)."""
    out = tmp_path_factory.mktemp("quick_bench") / "bench"
    args = [
        "bench",
        "--out",
        str(out),
        "--quick",
        "true",
        "--workloads",
        "data,loader,generation,throughput,gpu",
    ]
    # One torch thread: on a shared machine two spinning OpenMP threads make small ops crawl.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return out, subprocess.run([VTLM, *args], capture_output=True, text=True, timeout=300, env=env)
