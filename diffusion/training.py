"""Lightning module that trains the diffusion transformer on the same token shards as the GPT.

Codes are mapped to the tokenizer's latents (exactly what the codes stand for) with the
tokenizer's own bottleneck, normalized per channel with statistics of the training shards, and
learned with the rectified-flow objective. Batches: ``{"codes": (B, t, h, w), "text": [...]}``.
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

from .config import DiTConfig
from .flow import FlowConfig, training_loss
from .model import DiT, caption_batch


class DiffusionModule(L.LightningModule):
    def __init__(
        self,
        model: DiTConfig,
        flow: FlowConfig,
        optim: OptimConfig,
        total_steps: int,
        to_latents: torch.nn.Module,
        latent_mean: list[float],
        latent_std: list[float],
        ema_decay: float | None = None,
        tokenizer: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(
            {
                "model": model.to_dict(),
                "flow": asdict(flow),
                "optim": asdict(optim),
                "total_steps": total_steps,
                "ema_decay": ema_decay,
            }
        )
        self.model_cfg, self.flow_cfg, self.optim_cfg, self.total_steps = model, flow, optim, total_steps
        self.dit = DiT(model)
        self.ema = EMA(self.dit, ema_decay) if ema_decay else None
        self._to_latents = [to_latents.eval().requires_grad_(False)]  # a list: not a submodule, not saved
        self.register_buffer("latent_mean", torch.tensor(latent_mean).view(1, -1, 1, 1, 1))
        self.register_buffer("latent_std", torch.tensor(latent_std).view(1, -1, 1, 1, 1))
        self.tokenizer_info = tokenizer or {}
        self.grad_watch = GradNormWatch("diffusion")
        self.last_val: dict[str, float] = {}

    def configure_optimizers(self):
        optimizer = build_optimizer(self.dit, self.optim_cfg)
        return [optimizer], [
            {"scheduler": build_scheduler(optimizer, self.optim_cfg, self.total_steps), "interval": "step"}
        ]

    def latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, t, h, w) -> normalized latents (B, D, t, h, w)."""
        bottleneck = self._to_latents[0].to(codes.device)
        with torch.no_grad():
            return (bottleneck.indices_to_latents(codes) - self.latent_mean) / self.latent_std

    def _text(self, batch: dict, dropout: float) -> torch.Tensor:
        drop = torch.rand(len(batch["text"])) < dropout if dropout > 0 else None
        return caption_batch(batch["text"], self.model_cfg.text_len, drop).to(self.device)

    def training_flops(self, batch: dict) -> float:
        """FLOPs of one training step on ``batch`` (forward + backward, every example)."""
        return batch["codes"].shape[0] * self.dit.flops_per_example(batch["codes"].shape[1])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0 = self.latents(batch["codes"])
        loss, logs = training_loss(
            self.dit, x0, self._text(batch, self.flow_cfg.caption_dropout), self.flow_cfg
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"diffusion: non-finite loss {float(loss.detach())} at step {self.global_step}; stopping, the last checkpoint is kept"
            )
        size = x0.shape[0]
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=size)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        norm = self.grad_watch(self.dit.parameters(), self.optim_cfg.grad_clip, self.global_step)
        self.log("train/grad_norm", norm)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update(self.dit)

    @property
    def eval_dit(self) -> DiT:
        return self.ema.shadow if self.ema is not None else self.dit

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        x0 = self.latents(batch["codes"])
        generator = torch.Generator(device=x0.device).manual_seed(
            batch_idx
        )  # the same noise at every validation
        loss, _ = training_loss(
            self.eval_dit, x0, self._text(batch, 0.0), FlowConfig(prefix_share=0.0), generator
        )
        self.log("val/flow_loss", loss, sync_dist=True, batch_size=x0.shape[0], prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self.last_val = {
            k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")
        }

    def export(self, path: str | Path, training: dict | None = None) -> Path:
        """DiT weights (EMA when kept) + latent statistics + config + the tokenizer it pairs with."""
        state = {**self.eval_dit.state_dict(), "latent_mean": self.latent_mean, "latent_std": self.latent_std}
        extra = {
            "step": int(self.global_step),
            "val": self.last_val,
            "params": self.dit.num_params(),
            "training": training or {},
            "tokenizer": self.tokenizer_info,
        }
        return save_model_dir(path, "diffusion", self.model_cfg.to_dict(), state, extra)
