"""Lightning module that trains the GPT on token shards: network + next-token objective +
AdamW (decay / no-decay groups) with warmup + cosine, EMA weights, optional torch.compile.

Batches: ``{"codes": (B, t, h, w) int64, "text": list of caption id lists}``. Gradient
accumulation, clipping, precision and strategy (DDP, FSDP) come from the Lightning Trainer.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from vtlm.train.checkpoint import save_model_dir
from vtlm.train.ema import EMA
from vtlm.train.health import GradNormWatch
from vtlm.train.optim import OptimConfig, build_optimizer, build_scheduler

from .config import GPTConfig
from .model import GPT
from .objective import GPTLossConfig, build_sequences, next_token_loss


class GPTModule(L.LightningModule):
    def __init__(
        self,
        model: GPTConfig,
        loss: GPTLossConfig,
        optim: OptimConfig,
        total_steps: int,
        ema_decay: float | None = None,
        compile: bool = False,
        tokenizer: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(
            {
                "model": model.to_dict(),
                "loss": asdict(loss),
                "optim": asdict(optim),
                "total_steps": total_steps,
                "ema_decay": ema_decay,
            }
        )
        self.model_cfg, self.loss_cfg, self.optim_cfg, self.total_steps = model, loss, optim, total_steps
        self.gpt = GPT(model)
        self.ema = EMA(self.gpt, ema_decay) if ema_decay else None
        self.forward_hidden = torch.compile(self.gpt.hidden) if compile else self.gpt.hidden
        self.tokenizer_info = tokenizer or {}
        self.grad_watch = GradNormWatch("gpt")
        self.last_val: dict[str, float] = {}

    def configure_optimizers(self):
        optimizer = build_optimizer(self.gpt, self.optim_cfg)
        return [optimizer], [
            {"scheduler": build_scheduler(optimizer, self.optim_cfg, self.total_steps), "interval": "step"}
        ]

    def _sequences(self, batch: dict, drop_captions: bool):
        codes = batch["codes"]
        drop = None
        if drop_captions and self.loss_cfg.caption_dropout > 0:
            drop = torch.rand(codes.shape[0]) < self.loss_cfg.caption_dropout
        return build_sequences(self.gpt.vocab, codes, batch["text"], self.model_cfg.text_len, drop)

    def training_flops(self, batch: dict) -> float:
        """FLOPs of one training step on ``batch`` (forward + backward over its input tokens)."""
        b, t, h, w = batch["codes"].shape
        inputs = self.model_cfg.text_len + 2 + t * h * w  # BOS, caption, BOV, codes, EOV; minus the last
        return b * inputs * self.gpt.flops_per_token(inputs)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        sequences = self._sequences(batch, drop_captions=True)
        loss, logs = next_token_loss(
            self.gpt, sequences, self.loss_cfg, self.global_step, self.forward_hidden
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"gpt: non-finite loss {float(loss.detach())} at step {self.global_step}; stopping, the last checkpoint is kept"
            )
        size = batch["codes"].shape[0]
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=size)
        self.log("train/corruption", self.loss_cfg.corruption(self.global_step), batch_size=size)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        norm = self.grad_watch(self.gpt.parameters(), self.optim_cfg.grad_clip, self.global_step)
        self.log("train/grad_norm", norm)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update(self.gpt)

    @property
    def eval_gpt(self) -> GPT:
        return self.ema.shadow if self.ema is not None else self.gpt

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        sequences = self._sequences(batch, drop_captions=False)
        _, logs = next_token_loss(self.eval_gpt, sequences, GPTLossConfig(), step=0)
        size = batch["codes"].shape[0]
        self.log("val/video_loss", logs["video_loss"], sync_dist=True, batch_size=size)
        self.log(
            "val/bits_per_video_token",
            logs["bits_per_video_token"],
            sync_dist=True,
            batch_size=size,
            prog_bar=True,
        )

    def on_validation_epoch_end(self) -> None:
        self.last_val = {
            k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")
        }

    def export(self, path: str | Path, training: dict | None = None) -> Path:
        """Weights (EMA when kept) + config + the tokenizer this GPT's codes came from."""
        extra = {
            "step": int(self.global_step),
            "val": self.last_val,
            "params": self.gpt.num_params(),
            "training": training or {},
            "tokenizer": self.tokenizer_info,
        }
        return save_model_dir(path, "gpt", self.model_cfg.to_dict(), self.eval_gpt.state_dict(), extra)
