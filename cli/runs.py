"""What every ``fit`` command does around its model: seed, run directory, the run's settings
as YAML, training with exact resumption, and the export of the trained model at the end.

Only rank 0 writes files. A run stopped by SIGTERM saves ``last.ckpt`` and exits with status
143; the same command then resumes it.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from vtlm.train.checkpoint_io import read_checkpoint, remove_stale_temporaries
from vtlm.train.cost import TrainingCost
from vtlm.train.resume import ResumableData
from vtlm.train.trainer import TrainerConfig, build_trainer, prune_metrics

log = logging.getLogger(__name__)


def start_run(trainer: TrainerConfig, settings: dict) -> Path:
    """Seed everything, create the run directory and write OUT/run.yaml (plain values; rank 0)."""
    L.seed_everything(trainer.seed, workers=True, verbose=False)
    run_dir = trainer.run_dir
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.yaml").write_text(
            yaml.safe_dump(json.loads(json.dumps(settings, default=str)), sort_keys=False)
        )
    return run_dir


def _prepare_resume(trainer: TrainerConfig) -> str | None:
    """The checkpoint to resume from; on rank 0, the run's metrics.csv cut back to its step (to
    nothing for a fresh start) and temporary files of killed saves removed."""
    path = trainer.resume_path()
    if rank_zero_only.rank == 0:
        removed = remove_stale_temporaries(trainer.run_dir / "checkpoints")
        if removed:
            log.warning(
                "removed %d unfinished checkpoint file(s) of a killed save: %s", len(removed), removed
            )
        step = int(read_checkpoint(path, mmap=True)["global_step"]) if path is not None else 0
        prune_metrics(trainer.run_dir / "logs" / "metrics.csv", step)  # a fresh run: every row
        if path is not None:
            print(f"resuming from {path} (step {step})", flush=True)
    return path


def flops_budget(trainer: TrainerConfig, module: L.LightningModule, datamodule) -> TrainerConfig:
    """``trainer`` with ``max_steps`` set from ``max_flops``: the budget over the mean FLOPs of a
    training step (the model's own count, over the data's mix of video and image batches), at
    least one step. The module's schedule then decays over those steps."""
    count = getattr(module, "training_flops", None)
    mix = getattr(datamodule, "batch_mix", None)
    if count is None or mix is None:
        raise ValueError(
            f"trainer.max_flops: {type(module).__name__} does not count its training FLOPs; budget it in max_steps"
        )
    per_step = sum(share * float(count(batch)) for share, batch in mix())
    steps = max(1, math.ceil(trainer.max_flops / per_step))
    print(
        f"budget: {trainer.max_flops:.3g} FLOPs at {per_step:.3g} per step -> {steps} steps "
        f"(max_steps {trainer.max_steps} replaced)",
        flush=True,
    )
    module.total_steps = steps
    module.hparams["total_steps"] = steps
    return replace(trainer, max_steps=steps)


def fit_and_export(
    trainer: TrainerConfig, module: L.LightningModule, datamodule: L.LightningDataModule, name: str
) -> str:
    """Train (continuing from the last valid checkpoint when trainer.resume says so), then export
    OUT/NAME on rank 0 and print its step, minutes and validation metrics. A budget in FLOPs
    (``trainer.max_flops``) is turned into steps first."""
    if trainer.max_flops is not None:
        trainer = flops_budget(trainer, module, datamodule)
    ckpt_path = _prepare_resume(trainer)
    cost = TrainingCost()
    pl_trainer = build_trainer(trainer, callbacks=[cost])
    start = time.perf_counter()
    try:
        pl_trainer.fit(module, datamodule=ResumableData(datamodule, trainer.seed), ckpt_path=ckpt_path)
    except SIGTERMException:
        if pl_trainer.is_global_zero:
            print(
                f"stopped by SIGTERM at step {pl_trainer.global_step}; "
                f"{trainer.run_dir / 'checkpoints' / 'last.ckpt'} saved, run the same command to resume",
                file=sys.stderr,
                flush=True,
            )
        raise SystemExit(128 + signal.SIGTERM) from None
    if not pl_trainer.is_global_zero:
        return ""
    minutes = (time.perf_counter() - start) / 60
    if not module.last_val:  # a run too short to validate still reports its metrics
        pl_trainer.validate(module, datamodule=datamodule, verbose=False)
    out = module.export(trainer.run_dir / name, cost.summary(module.global_step))
    summary = {"step": int(module.global_step), "minutes": round(minutes, 2), **module.last_val}
    print(
        f"exported {out}: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
    )
    return str(out)


def check_window(window: int, max_frames: int, shards, train: str) -> None:
    """A generator's training window must fit its context and the shards' longest clip."""
    if window > max_frames:
        raise ValueError(
            f"data.window: {window} latent frames do not fit the context (model.max_frames {max_frames})"
        )
    longest = int(shards.frame_counts().max())
    if window > longest:
        raise ValueError(
            f"data.window: expected at most {longest} latent frames (the longest clip of {train}), got {window}"
        )


def pairing(shards, text_model: str, train: str) -> dict:
    """What a generator trained on ``shards`` pairs with, recorded in its model directory: the
    tokenizer (dir, hash), the text model, and the train shards (for eval's leakage guard)."""
    return {
        "dir": shards.extra.get("tokenizer_dir"),
        "sha256": shards.extra.get("tokenizer_sha256"),
        "text_model": str(Path(text_model).resolve()),
        "train_shards": str(Path(train).resolve()),
    }


class ShardSetup:
    """What every generator's fit needs from its token shards, made once: the data module, the
    pairing record, a preset sized to the data (text vocabulary, latent grid; the window
    checked against the context) and the run's settings for run.yaml."""

    def __init__(self, preset_name: str, data):
        from vtlm.data.token_datamodule import TokenDataModule

        self.preset_name, self.data = preset_name, data
        self.datamodule = TokenDataModule(data)
        self.shards = self.datamodule.train_shards
        self.info = pairing(self.shards, data.text_model, data.train)

    def sized(self, cfg, **sizes):
        """``cfg`` (a family's config dataclass) with the data's text vocabulary, latent grid and
        the family's ``sizes`` (codebook, latent channels), its training window checked."""
        h, w = self.shards.grid
        cfg = replace(cfg, text_size=self.datamodule.text.vocab_size, grid_h=h, grid_w=w, **sizes)
        check_window(self.data.window, cfg.max_frames, self.shards, self.data.train)
        return cfg

    def run_settings(self, cfg, **sections: dict) -> dict:
        """The run's settings: preset, model, data and the family's sections (plain values)."""
        return {"preset": self.preset_name, "model": cfg.to_dict(), "data": asdict(self.data), **sections}
