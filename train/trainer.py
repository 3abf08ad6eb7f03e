"""Trainer settings shared by every ``vtlm ... fit`` command, and the Lightning Trainer they build.

A run directory holds ``checkpoints/`` (Lightning checkpoints to resume from: ``last.ckpt``
and one every ``checkpoint_every_n_steps``, written atomically, plus ``last.ckpt`` on SIGTERM),
``logs/`` (CSV, and TensorBoard when installed) and the exported model directory written at
the end. A resumed run appends to ``logs/metrics.csv``: rows after the checkpoint it resumes
from (logged by the stopped run, and logged again now) are dropped first.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from .checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointError,
    RunCheckpoint,
    newest_valid_checkpoint,
    read_checkpoint,
)
from .resume import RandomState

log = logging.getLogger(__name__)


@dataclass
class TrainerConfig:
    """Where a run writes, how long it trains, and on what hardware."""

    # Run directory (checkpoints/, logs/, the exported model).
    out_dir: str = "runs/train"
    max_steps: int = 1000
    # Stop after this many minutes of training even before max_steps (None: no limit).
    max_minutes: float | None = None
    # A budget in training FLOPs instead of steps (generators: the model's own count per batch,
    # see vtlm.train.cost): max_steps becomes the steps whose batches add up to it, so families
    # and sizes get equal compute. None: max_steps as given.
    max_flops: float | None = None
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
    # auto: continue from out_dir/checkpoints/last.ckpt, or when it is damaged from the newest
    # interval checkpoint that loads (each one skipped is named with the reason); none: start
    # afresh; anything else: a checkpoint path (refused, naming it, when it does not load).
    resume: str = "auto"
    seed: int = 0
    progress_bar: bool = True

    def __post_init__(self):
        if self.max_steps < 1:
            raise ValueError(f"max_steps: expected >= 1, got {self.max_steps}")
        if self.max_flops is not None and self.max_flops <= 0:
            raise ValueError(f"max_flops: expected > 0 FLOPs (or null), got {self.max_flops}")
        for name in ("log_every_n_steps", "val_every_n_steps", "checkpoint_every_n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir)

    def resume_path(self) -> str | None:
        """The checkpoint to resume from, or None.

        Raises:
            CheckpointError: ``resume`` is a path whose file is missing or does not load, or
                ``auto`` finds checkpoints of which none loads.
        """
        if self.resume == "none":
            return None
        if self.resume == "auto":
            path, skipped = newest_valid_checkpoint(self.run_dir / "checkpoints")
            if path is None and skipped:
                reasons = "; ".join(why for _, why in skipped)
                raise CheckpointError(
                    f"resume: no checkpoint of {self.run_dir / 'checkpoints'} loads ({reasons}); "
                    "pass trainer.resume none to start afresh there, or a checkpoint path"
                )
            if rank_zero_only.rank == 0:
                for bad, why in skipped:
                    log.warning("resume: skipping %s: %s", bad.name, why)
                if skipped:
                    log.warning("resume: continuing from %s instead", path)
            return str(path) if path is not None else None
        read_checkpoint(self.resume, mmap=True)
        return self.resume


class _KeptWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is appended to, not deleted."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = sorted(next(csv.reader(handle), []))


class RunCSVLogger(CSVLogger):
    """CSV metrics in RUN/logs/metrics.csv, appended to across resumes."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeptWriter(log_dir=self.log_dir)
        return self._experiment


def prune_metrics(path: str | os.PathLike, step: int) -> int:
    """Drop the rows of a metrics.csv logged at ``step`` or later (the file, when none is left);
    returns how many were dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [r for r in rows if not (r.get("step") or "").isdigit() or int(r["step"]) < step]
    if not kept:
        path.unlink()
    elif len(kept) < len(rows):
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)
    return len(rows) - len(kept)


def build_trainer(
    cfg: TrainerConfig, callbacks: list | None = None, use_distributed_sampler: bool = False
) -> L.Trainer:
    """A Lightning Trainer for ``cfg``: atomic, weights-only checkpoints (interval, last, and on
    SIGTERM), the random generators' states in every checkpoint, CSV rows flushed at every
    logged step. The data modules shard their own batches by rank, so Lightning's sampler
    replacement is off by default."""
    run_dir = cfg.run_dir
    loggers: list = [
        RunCSVLogger(str(run_dir), name="logs", version="", flush_logs_every_n_steps=cfg.log_every_n_steps)
    ]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name="logs", version="tb"))
    except ImportError:
        pass
    checkpoints = RunCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="step{step:07d}",
        auto_insert_metric_name=False,
        every_n_train_steps=cfg.checkpoint_every_n_steps,
        save_last=True,
        save_top_k=-1,
        enable_version_counter=False,  # a resumed run overwrites the stopped run's later files
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
        callbacks=[
            checkpoints,
            RandomState(),
            LearningRateMonitor(logging_interval="step"),
            *(callbacks or []),
        ],
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=cfg.log_every_n_steps,
        val_check_interval=cfg.val_every_n_steps,
        check_val_every_n_epoch=None,
        limit_val_batches=cfg.limit_val_batches,
        num_sanity_val_steps=0,
        enable_progress_bar=cfg.progress_bar and not os.environ.get("VTLM_NO_PROGRESS"),
        use_distributed_sampler=use_distributed_sampler,
        enable_model_summary=False,
    )
