"""What every ``fit`` command does around its model: seed, run directory, the run's settings
as YAML, training with resumption, and the export of the trained model at the end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import yaml

from vtlm.train.trainer import TrainerConfig, build_trainer


def start_run(trainer: TrainerConfig, settings: dict) -> Path:
    """Seed everything, create the run directory and write OUT/run.yaml (plain values)."""
    L.seed_everything(trainer.seed, workers=True, verbose=False)
    run_dir = trainer.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.yaml").write_text(
        yaml.safe_dump(json.loads(json.dumps(settings, default=str)), sort_keys=False)
    )
    return run_dir


def fit_and_export(
    trainer: TrainerConfig, module: L.LightningModule, datamodule: L.LightningDataModule, name: str
) -> str:
    """Train (continuing from the last checkpoint when trainer.resume says so), then export
    OUT/NAME on rank 0 and print its step, minutes and validation metrics."""
    pl_trainer = build_trainer(trainer)
    start = time.perf_counter()
    pl_trainer.fit(module, datamodule=datamodule, ckpt_path=trainer.resume_path())
    if not pl_trainer.is_global_zero:
        return ""
    minutes = (time.perf_counter() - start) / 60
    if not module.last_val:  # a run too short to validate still reports its metrics
        pl_trainer.validate(module, datamodule=datamodule, verbose=False)
    out = module.export(trainer.run_dir / name)
    summary = {"step": int(module.global_step), "minutes": round(minutes, 2), **module.last_val}
    print(
        f"exported {out}: "
        + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
    )
    return str(out)
