"""Numerical faults: a non-finite loss stops the run at its step and keeps the last good
checkpoint (tokenizer, GPT, diffusion); non-finite weights are never saved; the gradient norm is
logged every step and its spikes are warned about."""

import csv
import logging
import math

import pytest
import torch
from lightning.pytorch.callbacks import Callback

import vtlm.cli.runs as runs
from tests.conftest import generator_fit_args
from vtlm.cli.main import main
from vtlm.train.checkpoint_io import read_checkpoint
from vtlm.train.health import GradNormWatch


class Poison(Callback):
    """Sets the first trained weight to NaN at a global step: at the start of that step's batch
    (the loss goes NaN there) or, ``after_step``, once its optimizer step is done."""

    def __init__(self, step: int, after_step: bool = False):
        self.step, self.after_step = step, after_step

    def _poison(self, trainer, pl_module) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(p for p in pl_module.parameters() if p.requires_grad).fill_(float("nan"))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not self.after_step:
            self._poison(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.after_step:  # runs before the checkpoint callback, which Lightning puts last
            self._poison(trainer, pl_module)


@pytest.fixture
def with_callbacks(monkeypatch):
    """Make every `vtlm ... fit` in the test build its trainer with these extra callbacks."""

    def install(*extra):
        build = runs.build_trainer
        monkeypatch.setattr(
            runs, "build_trainer", lambda cfg, callbacks=(): build(cfg, callbacks=[*callbacks, *extra])
        )

    return install


def finite(checkpoint: dict) -> bool:
    return all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values() if t.is_floating_point())


def fit_args(kind: str, pipeline: dict, run, steps: int) -> list[str]:
    if kind == "tokenizer":
        return ["tokenizer", "fit", "--preset_name", "debug", "--trainer.out_dir", str(run), "--trainer.max_steps",
                str(steps), "--trainer.progress_bar", "false", "--data.batch_size", "2", "--data.val_clips", "2",
                "--trainer.limit_val_batches", "1", "--trainer.checkpoint_every_n_steps", "2",
                "--trainer.log_every_n_steps", "1"]  # fmt: skip
    return generator_fit_args(kind, pipeline, run, steps, "0.002") + [
        "--trainer.checkpoint_every_n_steps", "2", "--trainer.log_every_n_steps", "1"]  # fmt: skip


@pytest.mark.parametrize("kind", ["tokenizer", "gpt", "diffusion"])
def test_a_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(
    kind, random_token_pipeline, tmp_path, with_callbacks
):
    with_callbacks(Poison(step=3))
    run = tmp_path / kind
    with pytest.raises(
        FloatingPointError, match=f"{kind}: non-finite loss nan at step 3.*last checkpoint is kept"
    ):
        main(fit_args(kind, random_token_pipeline, run, 8))
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step0000002.ckpt"]
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 2 and finite(last)
    assert not (run / kind).exists()  # nothing exported


def test_non_finite_weights_are_never_checkpointed(random_token_pipeline, tmp_path, with_callbacks, caplog):
    with_callbacks(Poison(step=4, after_step=True))  # weights go NaN right before the step-4 save
    run = tmp_path / "gpt"
    with caplog.at_level(logging.ERROR, logger="vtlm"), pytest.raises(FloatingPointError, match="at step 4"):
        main(fit_args("gpt", random_token_pipeline, run, 8))
    assert "not saving" in caplog.text and "non-finite at step 4" in caplog.text
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt", "step0000002.ckpt"]
    assert read_checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 2


def test_grad_norm_watch_measures_clips_and_flags_spikes(caplog):
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 4)), torch.nn.Parameter(torch.randn(5))]
    for p in params:
        p.grad = torch.randn_like(p) * 3
    expected = math.sqrt(sum(float((p.grad**2).sum()) for p in params))
    watch = GradNormWatch("test", factor=10, window=20, min_history=5)
    norm = watch(params, max_norm=1.0, step=0)
    assert float(norm) == pytest.approx(expected, rel=1e-6)  # the norm before clipping
    assert math.sqrt(sum(float((p.grad**2).sum()) for p in params)) == pytest.approx(1.0, rel=1e-5)

    watch = GradNormWatch("test", factor=10, window=20, min_history=5)
    with caplog.at_level(logging.WARNING, logger="vtlm"):
        flags = [
            watch.observe(v, step) for step, v in enumerate([1.0, 1.2, 0.8, 1.1, 0.9, 9.0, 30.0, 1.0], 1)
        ]
        assert watch.observe(float("inf"), 9)
    assert flags == [False] * 6 + [True, False]  # 9 < 10 x the median 1.0; 30 > 10 x 1.05
    assert "gradient norm 30 at step 7 is 28.6x the median 1.05 of the last 6 steps" in caplog.text
    assert "non-finite gradient norm inf at step 9" in caplog.text and watch.spikes == 2
    with pytest.raises(ValueError, match="factor"):
        GradNormWatch("x", factor=1.0)


class Spike(Callback):
    """Multiplies every gradient by 1000 at one step, before the module measures them."""

    def __init__(self, step: int):
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step == self.step:
            for p in pl_module.parameters():
                if p.grad is not None:
                    p.grad.mul_(1000)


def test_gpt_logs_the_grad_norm_every_step_and_warns_of_a_spike(
    random_token_pipeline, tmp_path, with_callbacks, caplog
):
    with_callbacks(Spike(step=11))
    run = tmp_path / "gpt"
    args = generator_fit_args("gpt", random_token_pipeline, run, 12, "0.002")
    args += [
        "--trainer.log_every_n_steps",
        "1",
        "--optim.grad_clip",
        "null",
        "--trainer.val_every_n_steps",
        "100",
    ]
    with caplog.at_level(logging.WARNING, logger="vtlm"):
        main(args)
    rows = [r for r in csv.DictReader(open(run / "logs" / "metrics.csv")) if r.get("train/grad_norm")]
    norms = {int(r["step"]): float(r["train/grad_norm"]) for r in rows}
    assert sorted(norms) == list(range(12))  # every step, with clipping off
    assert norms[11] > 100 * max(norms[k] for k in range(1, 11))
    spikes = [r.getMessage() for r in caplog.records if "gradient norm" in r.getMessage()]
    assert len(spikes) == 1 and spikes[0].startswith("gpt: gradient norm") and "at step 11" in spikes[0]
