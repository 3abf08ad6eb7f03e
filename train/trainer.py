"""Trainer settings shared by every ``vtlm ... fit`` command, and the Lightning Trainer they build.

A run directory holds ``checkpoints/`` (Lightning checkpoints to resume from: ``last.ckpt``
and one every ``checkpoint_every_n_steps``), ``logs/`` (CSV, and TensorBoard when installed)
and the exported model directory written at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger


@dataclass
class TrainerConfig:
    """Where a run writes, how long it trains, and on what hardware."""

    # Run directory (checkpoints/, logs/, the exported model).
    out_dir: str = "runs/train"
    max_steps: int = 1000
    # Stop after this many minutes of training even before max_steps (None: no limit).
    max_minutes: float | None = None
    # Lightning's hardware settings: any accelerator, device count, node count and strategy
    # (ddp, fsdp, ...) Lightning supports.
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    # "32-true" on CPU; "bf16-mixed" on a recent GPU.
    precision: str = "32-true"
    # Batches whose gradients are summed before each optimizer step (automatic optimization only).
    accumulate_grad_batches: int = 1
    log_every_n_steps: int = 10
    val_every_n_steps: int = 250
    # Validation batches per check (None: the whole validation set).
    limit_val_batches: int | None = 8
    checkpoint_every_n_steps: int = 250
    # auto: continue from out_dir/checkpoints/last.ckpt when it exists; none: start afresh;
    # anything else: a checkpoint path.
    resume: str = "auto"
    seed: int = 0
    progress_bar: bool = True

    def __post_init__(self):
        if self.max_steps < 1:
            raise ValueError(f"max_steps: expected >= 1, got {self.max_steps}")
        for name in ("log_every_n_steps", "val_every_n_steps", "checkpoint_every_n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir)

    def resume_path(self) -> str | None:
        """The checkpoint to resume from, or None."""
        if self.resume == "none":
            return None
        if self.resume == "auto":
            last = self.run_dir / "checkpoints" / "last.ckpt"
            return str(last) if last.is_file() else None
        if not Path(self.resume).is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {self.resume}")
        return self.resume


def build_trainer(
    cfg: TrainerConfig, callbacks: list | None = None, use_distributed_sampler: bool = False
) -> L.Trainer:
    """A Lightning Trainer for ``cfg``. The data modules shard their own batches by rank, so
    Lightning's sampler replacement is off by default."""
    run_dir = cfg.run_dir
    loggers: list = [CSVLogger(str(run_dir), name="logs", version="")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name="logs", version="tb"))
    except ImportError:
        pass
    checkpoints = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=cfg.checkpoint_every_n_steps,
        save_last=True,
        save_top_k=-1,
    )
    return L.Trainer(
        default_root_dir=str(run_dir),
        max_steps=cfg.max_steps,
        max_time={"minutes": cfg.max_minutes} if cfg.max_minutes else None,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=cfg.strategy,
        precision=cfg.precision,
        accumulate_grad_batches=cfg.accumulate_grad_batches,
        logger=loggers,
        callbacks=[checkpoints, LearningRateMonitor(logging_interval="step"), *(callbacks or [])],
        log_every_n_steps=cfg.log_every_n_steps,
        val_check_interval=cfg.val_every_n_steps,
        check_val_every_n_epoch=None,
        limit_val_batches=cfg.limit_val_batches,
        num_sanity_val_steps=0,
        enable_progress_bar=cfg.progress_bar and not os.environ.get("VTLM_NO_PROGRESS"),
        use_distributed_sampler=use_distributed_sampler,
        enable_model_summary=False,
    )
