"""Runs that survive kills: a run stopped by SIGKILL or SIGTERM mid-epoch and resumed logs the
losses of the run that was never stopped; DDP (two CPU processes) trains, exports once, resumes
and only rank 0 writes; a killed tokenization resumes without encoding a finished shard again."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from tests.conftest import generator_fit_args
from vtlm.cli.main import main
from vtlm.data.batching import ImageVideoBatchSampler
from vtlm.data.shard_dataset import TokenShards
from vtlm.train.checkpoint_io import read_checkpoint
from vtlm.train.resume import SeededBatches, SeededItems, resume_position
from vtlm.train.trainer import RunCSVLogger, prune_metrics

# `vtlm ARGS` that stops at the end of the batch that reaches global step VTLM_TEST_STALL and
# waits there for a signal: SIGKILL lands at a known point, SIGTERM is seen by Lightning.
STALL = """
import os, sys, time
from lightning.pytorch.callbacks import Callback
import vtlm.cli.runs as runs

STEP = int(os.environ["VTLM_TEST_STALL"])


class Stall(Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == STEP:
            print("STALLED", flush=True)
            while not trainer.received_sigterm:
                time.sleep(0.05)


build = runs.build_trainer
runs.build_trainer = lambda cfg, callbacks=(): build(cfg, callbacks=[*callbacks, Stall()])
from vtlm.cli.main import main
main(sys.argv[1:])
"""


def stop_at(tmp_path: Path, script: str, args: list[str], env: dict, sig: int) -> tuple[int, str]:
    """Run ``script ARGS``, wait until it prints STALLED, send ``sig``; (return code, output)."""
    path, log = tmp_path / f"driver_{time.monotonic_ns()}.py", tmp_path / f"out_{time.monotonic_ns()}.log"
    path.write_text(script)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(path), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "VTLM_NO_PROGRESS": "1", **env},
        )
        deadline = time.monotonic() + 400
        while "STALLED" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, f"the run ended before stalling:\n{log.read_text()[-3000:]}"
        proc.send_signal(sig)
        code = proc.wait(timeout=120)
    return code, log.read_text()


def logged(run: Path, key: str = "train/loss") -> dict[int, float]:
    rows = [r for r in csv.DictReader(open(run / "logs" / "metrics.csv")) if r.get(key)]
    steps = [int(r["step"]) for r in rows]
    assert len(steps) == len(set(steps)), f"a step logged twice: {steps}"
    return {int(r["step"]): float(r[key]) for r in rows}


# -- the pieces ------------------------------------------------------------------------------


def test_resume_position_matches_a_simulation_of_the_training_loop():
    for batches in (1, 3, 7):
        for accumulate in (1, 2, 3):
            step, seen = 0, {0: (0, 0)}
            for epoch in range(3):
                for b in range(batches):
                    if (b + 1) % accumulate == 0 or b + 1 == batches:  # the last step takes the rest
                        step += 1
                        seen[step] = (epoch, b + 1) if b + 1 < batches else (epoch + 1, 0)
            for g, where in seen.items():
                assert resume_position(g, batches, accumulate) == where, (g, batches, accumulate)


def test_seeded_batches_skip_change_order_by_epoch_and_seed_every_item():
    counts = [9] * 20 + [1] * 8
    inner = ImageVideoBatchSampler(counts, 4, 2, 0.3, seed=5)
    per_epoch = []
    for epoch in (0, 1):
        inner.set_epoch(epoch)
        per_epoch.append([list(b) for b in inner])
    assert per_epoch[0] != per_epoch[1]  # the order is the epoch's

    batches = SeededBatches(ImageVideoBatchSampler(counts, 4, 2, 0.3, seed=5), seed=0)
    first, second = list(batches), list(batches)  # one pass per epoch
    assert [[i for i, _ in b] for b in first] == per_epoch[0]
    assert [[i for i, _ in b] for b in second] == per_epoch[1]
    seeds = [s for b in first + second for _, s in b]
    assert len(set(seeds)) == len(seeds)

    resumed = SeededBatches(ImageVideoBatchSampler(counts, 4, 2, 0.3, seed=5), seed=0, epoch=1, skip=3)
    assert len(resumed) == len(second)
    assert list(resumed) == second[3:] and list(resumed) == list(SeededBatches(inner, 0, epoch=2))
    with pytest.raises(ValueError, match="set_epoch"):
        SeededBatches([[0, 1]], seed=0)


class _RandomWindows(Dataset):
    """Draws from the global generators on every access, like the window and folder datasets."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return torch.tensor([index, int(torch.randint(0, 10**6, ())), int(np.random.randint(0, 10**6))])


def test_seeded_items_are_the_same_with_and_without_workers_and_leave_the_generator_alone():
    batches = [[(i, 1000 + i), (i + 6, 2000 + i)] for i in range(6)]

    def load(workers):  # a loader of its own generator, as ResumableData builds
        loader = DataLoader(SeededItems(_RandomWindows()), batch_sampler=batches, num_workers=workers,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip
        return list(loader)

    before = torch.get_rng_state()
    main_process = load(0)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(main_process, load(2)))
    assert len({int(row[1]) for batch in main_process for row in batch}) == 12


def test_a_resumed_run_keeps_the_log_up_to_its_checkpoint_and_appends(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with open(logs / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["step", "train/loss"])
        writer.writeheader()
        writer.writerows({"step": k, "train/loss": 10 - k} for k in range(8))  # a run killed after step 7
    assert prune_metrics(logs / "metrics.csv", 5) == 3  # resuming from step 5: rows 5-7 come again
    logger = RunCSVLogger(str(tmp_path), name="logs", version="", flush_logs_every_n_steps=1)
    logger.log_metrics({"train/loss": 4.5, "val/psnr": 20.0}, step=5)  # a new column, flushed now
    rows = list(csv.DictReader(open(logs / "metrics.csv")))
    assert [(r["step"], r["train/loss"], r["val/psnr"]) for r in rows] == [
        *((str(k), str(10 - k), "") for k in range(5)),
        ("5", "4.5", "20.0"),
    ]


# -- whole runs ------------------------------------------------------------------------------


@pytest.mark.slow
def test_gpt_killed_then_preempted_mid_epoch_logs_the_losses_of_the_unstopped_run(
    random_token_pipeline, tmp_path
):
    # 24 clips in batches of 8: 3 batches per epoch. Windows of 2 of the clips' 3 latent frames
    # start at random, captions drop at random: the data and the random streams both matter.
    def args(run, workers):
        return generator_fit_args("gpt", random_token_pipeline, run, 10, "0.003") + [
            "--trainer.checkpoint_every_n_steps", "4", "--trainer.val_every_n_steps", "5",
            "--trainer.log_every_n_steps", "1", "--data.window", "2", "--loss.caption_dropout", "0.3",
            "--data.num_workers", str(workers)]  # fmt: skip

    reference, run = tmp_path / "reference", tmp_path / "run"
    main(args(reference, 0))
    # SIGKILL after step 5: interval checkpoint at step 4, in the middle of epoch 1.
    code, out = stop_at(tmp_path, STALL, args(run, 2), {"VTLM_TEST_STALL": "5"}, signal.SIGKILL)
    assert code == -signal.SIGKILL, out[-2000:]
    last = run / "checkpoints" / "last.ckpt"
    assert read_checkpoint(last)["global_step"] == 4
    last.write_bytes(last.read_bytes()[:1000])  # and last.ckpt damaged: step0000004.ckpt is used
    # Resumed, then SIGTERM at step 6 (the end of epoch 1): last.ckpt at step 6, exit status 143.
    code, out = stop_at(tmp_path, STALL, args(run, 2), {"VTLM_TEST_STALL": "6"}, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, out[-2000:]
    assert "skipping last.ckpt" in out and "resuming from" in out and "step0000004.ckpt (step 4)" in out
    assert read_checkpoint(last)["global_step"] == 6
    main(args(run, 2))

    expected, got = logged(reference), logged(run)
    assert sorted(got) == sorted(expected) == list(range(10))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-7)
    lr = "lr-AdamW/pg1"
    assert logged(run, lr) == pytest.approx(logged(reference, lr), rel=1e-6)


@pytest.mark.slow
def test_tokenizer_killed_mid_epoch_logs_the_losses_of_the_unstopped_run(tmp_path):
    def args(run):
        return ["tokenizer", "fit", "--preset_name", "debug", "--trainer.out_dir", str(run), "--trainer.max_steps", "6",
                "--trainer.checkpoint_every_n_steps", "3", "--trainer.val_every_n_steps", "4",
                "--trainer.limit_val_batches", "1", "--trainer.log_every_n_steps", "1", "--trainer.progress_bar", "false",
                "--data.batch_size", "4", "--data.val_clips", "4", "--data.image_share", "0.25",
                "--data.image_batch_size", "4", "--optim.warmup_steps", "2"]  # fmt: skip

    reference, run = tmp_path / "reference", tmp_path / "run"
    main(args(reference))
    code, out = stop_at(tmp_path, STALL, args(run), {"VTLM_TEST_STALL": "4"}, signal.SIGKILL)
    assert code == -signal.SIGKILL, out[-2000:]
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 3
    main(args(run))
    expected, got = logged(reference), logged(run)
    assert sorted(got) == list(range(6))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-7)
    for key in ("train/psnr_video", "train/psnr_image"):
        assert logged(run, key) == pytest.approx(logged(reference, key), rel=1e-5)


# Records, in every rank but 0, each file written, created, renamed or removed under RUN.
AUDIT = """
import atexit, os, sys

RUN, RANK = os.path.realpath(os.environ["VTLM_TEST_RUN"]), int(os.environ.get("LOCAL_RANK", "0"))
WRITES = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC)
seen, busy = [], [False]


def audit(event, args):
    if busy[0] or RANK == 0:
        return
    paths = []
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (isinstance(flags, int) and flags & WRITES):
            paths = [args[0]]
    elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate", "shutil.rmtree"):
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    for p in paths:
        p = os.path.realpath(os.fsdecode(p))
        if p.startswith(RUN):
            seen.append(f"{event} {p}")


def report():
    busy[0] = True
    with open(os.environ["VTLM_TEST_AUDIT"] + f".rank{RANK}", "w") as f:
        f.write("\\n".join(seen))


sys.addaudithook(audit)
atexit.register(report)
from vtlm.cli.main import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_ddp_two_processes_checkpoint_resume_exactly_and_only_rank_zero_writes(
    random_token_pipeline, tmp_path
):
    script = tmp_path / "audited.py"
    script.write_text(AUDIT)

    def ddp(run, steps):
        cmd = [
            sys.executable,
            str(script),
            *generator_fit_args("gpt", random_token_pipeline, run, steps, "0.003"),
        ]
        cmd += ["--data.batch_size", "4", "--trainer.devices", "2", "--trainer.strategy", "ddp",
                "--trainer.accelerator", "cpu", "--trainer.log_every_n_steps", "1",
                "--trainer.checkpoint_every_n_steps", "2", "--optim.min_lr_ratio", "1.0"]  # fmt: skip
        env = {**os.environ, "VTLM_TEST_RUN": str(run), "VTLM_TEST_AUDIT": str(tmp_path / f"audit{steps}")}
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    # A constant learning rate after warmup: a 4-step run continued to 6 is the 6-step run.
    reference, run = tmp_path / "reference", tmp_path / "run"
    ddp(reference, 6)
    first = ddp(run, 4)
    assert (
        first.stdout.count("exported") == 1  # only rank 0 exports
        and read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 4
    )
    assert (run / "gpt" / "weights.safetensors").is_file() and max(logged(run, "train/video_loss")) <= 4
    second = ddp(run, 6)
    assert "resuming from" in second.stdout and second.stdout.count("exported") == 1
    assert logged(run) == pytest.approx(logged(reference), rel=1e-5, abs=1e-6) and len(logged(run)) == 6

    for steps in (4, 6):
        rank1 = Path(f"{tmp_path}/audit{steps}.rank1")
        assert rank1.is_file(), "rank 1 did not run the audited script"
        assert rank1.read_text() == "", f"rank 1 wrote files:\n{rank1.read_text()}"
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert [n for n in names if n.startswith("checkpoints")] == [
        "checkpoints/last.ckpt", "checkpoints/step0000002.ckpt", "checkpoints/step0000004.ckpt",
        "checkpoints/step0000006.ckpt"]  # fmt: skip
    assert not [n for n in names if ".tmp" in n or "version_" in n or "lightning_logs" in n]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("lightning_logs")) == []


# Stops `vtlm tokenizer encode` inside the write of its third shard's .bin (half written).
STALL_ENCODE = """
import sys, time
import vtlm.data.shards as shards

calls = [0]
write = shards._atomic_write


def stalling_write(path, data):
    calls[0] += 1
    if calls[0] == 5:  # .bin, .json of shard 0, of shard 1, then the .bin of shard 2
        tmp = path.with_name(f".{path.name}.tmp4242")
        tmp.write_bytes(bytes(data)[: len(data) // 2])
        print("STALLED", flush=True)
        time.sleep(3600)
    write(path, data)


shards._atomic_write = stalling_write
from vtlm.cli.main import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_killed_tokenization_resumes_without_reencoding_or_duplicates(
    random_token_pipeline, tmp_path, capsys
):
    out = tmp_path / "tokens"
    args = ["tokenizer", "encode", str(random_token_pipeline["tokenizer"]), str(out), "--splits", "[train]",
            "--num_clips", "{train: 40}", "--batch_size", "8", "--clips_per_shard", "8"]  # fmt: skip
    code, log = stop_at(tmp_path, STALL_ENCODE, args, {}, signal.SIGKILL)
    assert code == -signal.SIGKILL, log[-2000:]
    split = out / "train"
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in split.glob("rank00-0000[01].*")}
    assert sorted(done) == ["rank00-00000.bin", "rank00-00000.json", "rank00-00001.bin", "rank00-00001.json"]
    assert (split / ".rank00-00002.bin.tmp4242").is_file() and not (split / "index.json").exists()

    main(args)
    assert "'skipped_done': 16" in capsys.readouterr().out
    assert {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n in done for p in [split / n]} == done
    assert not list(split.glob(".*tmp*"))
    shards = TokenShards(split)  # checksums verified
    keys = [shards.key(i) for i in range(len(shards))]
    assert sorted(keys) == [f"shapes/train/{i:07d}" for i in range(40)]
    # The same clips encoded in one go by the fixture: the same codes.
    whole = TokenShards(random_token_pipeline["train"])
    for i in range(len(whole)):
        np.testing.assert_array_equal(shards.codes(keys.index(whole.key(i))), whole.codes(i))
