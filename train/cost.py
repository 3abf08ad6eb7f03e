"""What a training run cost: wall time and FLOPs, kept across resumes.

The harness compares generators at matched training compute, so every fit records the same
two figures the same way: ``seconds`` of training (batch to batch, data loading included,
validation excluded) and ``flops``, the model's own count for each batch it trained on
(``module.training_flops(batch)``: forward + backward, summed over ranks). Both are saved in
every checkpoint (Lightning keeps a callback's state), so a run resumed after a kill reports
the total, not the last leg.
"""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class TrainingCost(Callback):
    """Training seconds and FLOPs of a fit, resumable. ``summary(step)`` is what models export."""

    def __init__(self):
        self.seconds = 0.0
        self.flops: float | None = None
        self._mark: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.seconds += now - self._mark
        self._mark = now
        count = getattr(pl_module, "training_flops", None)
        if count is not None:
            self.flops = (self.flops or 0.0) + float(count(batch)) * trainer.world_size

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._mark is not None:  # up to here: training
            self.seconds += time.perf_counter() - self._mark
            self._mark = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._mark = time.perf_counter()

    def state_dict(self) -> dict:
        return {"seconds": self.seconds, "flops": self.flops}

    def load_state_dict(self, state_dict: dict) -> None:
        self.seconds = float(state_dict.get("seconds", 0.0))
        self.flops = state_dict.get("flops")

    def summary(self, step: int) -> dict:
        """``{"steps", "seconds", "flops"}`` (flops None when the model does not count them)."""
        return {"steps": int(step), "seconds": round(self.seconds, 2), "flops": self.flops}
