"""What every generator family's Lightning module shares, so a family writes only its objective.

A family module (GPT, diffusion, and the families between them) subclasses
:class:`GeneratorModule`, builds its network and hands it to ``__init__`` under the family's
name (``self.gpt``, ``self.dit``: checkpoint keys stay ``gpt.*``, ``dit.*``), then writes
``training_step``, ``validation_step`` and ``training_flops``. The base owns the rest:

- AdamW with decay / no-decay groups, linear warmup + cosine decay per step;
- the gradient-norm watch (measured, clipped, spikes warned) before every optimizer step;
- EMA weights updated after every step, evaluated and exported when kept;
- the non-finite loss stop, with the last checkpoint kept;
- the validation metrics of the last validation, and the export of the model directory
  (weights, config, the tokenizer and text model the generator pairs with, training cost).

Batches are ``{"codes": (B, t, h, w) int64, "text": list of caption id lists}`` for every family.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch
from torch import nn

from .checkpoint import save_model_dir
from .ema import EMA
from .health import GradNormWatch
from .optim import OptimConfig, build_optimizer, build_scheduler


class GeneratorModule(L.LightningModule):
    """Base of the generator families' training modules.

    Args:
        family: the model directory's kind and the network's attribute name (``gpt``, ``dit``).
        net: the family's network; registered as ``self.<family>``.
        hparams: the family's own settings (model, objective), as plain values, for the checkpoint.
        optim: optimizer and learning-rate schedule.
        total_steps: steps the schedule decays over.
        ema_decay: EMA of the weights (evaluated and exported); None: off.
        tokenizer: what the generator pairs with (tokenizer dir and hash, text model, train shards).
        kind: the exported model directory's kind (default: ``family``).
    """

    def __init__(
        self,
        family: str,
        net: nn.Module,
        hparams: dict,
        optim: OptimConfig,
        total_steps: int,
        ema_decay: float | None,
        tokenizer: dict | None,
        kind: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(
            {**hparams, "optim": asdict(optim), "total_steps": total_steps, "ema_decay": ema_decay}
        )
        self.family, self.kind = family, kind or family
        self.optim_cfg, self.total_steps = optim, total_steps
        setattr(self, family, net)
        self.ema = EMA(net, ema_decay) if ema_decay else None
        self.tokenizer_info = tokenizer or {}
        self.grad_watch = GradNormWatch(self.kind)
        self.last_val: dict[str, float] = {}

    @property
    def net(self) -> nn.Module:
        """The trained network."""
        return getattr(self, self.family)

    @property
    def eval_net(self) -> nn.Module:
        """The network to evaluate and export: the EMA weights when kept."""
        return self.ema.shadow if self.ema is not None else self.net

    @staticmethod
    def caption_drop(count: int, dropout: float) -> torch.Tensor | None:
        """(count,) bool: which captions of a training batch are dropped (the unconditional
        model that classifier-free guidance needs); None when ``dropout`` is 0."""
        return torch.rand(count) < dropout if dropout > 0 else None

    def configure_optimizers(self):
        optimizer = build_optimizer(self.net, self.optim_cfg)
        return [optimizer], [
            {"scheduler": build_scheduler(optimizer, self.optim_cfg, self.total_steps), "interval": "step"}
        ]

    def log_training(self, loss: torch.Tensor, logs: dict, batch_size: int) -> None:
        """Stop on a non-finite loss (the last checkpoint is kept); log the loss and its parts."""
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{self.kind}: non-finite loss {float(loss.detach())} at step {self.global_step}; "
                "stopping, the last checkpoint is kept"
            )
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=batch_size)

    def on_before_optimizer_step(self, optimizer) -> None:
        norm = self.grad_watch(self.net.parameters(), self.optim_cfg.grad_clip, self.global_step)
        self.log("train/grad_norm", norm)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.ema is not None:
            self.ema.update(self.net)

    def on_validation_epoch_end(self) -> None:
        self.last_val = {
            k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")
        }

    def export_state(self) -> dict[str, torch.Tensor]:
        """Tensors of the model directory: the evaluated weights (a family adds its buffers)."""
        return self.eval_net.state_dict()

    def export(self, path: str | Path, training: dict | None = None) -> Path:
        """Weights (EMA when kept) + config + the tokenizer and text model this generator pairs with."""
        extra = {
            "step": int(self.global_step),
            "val": self.last_val,
            "params": self.net.num_params(),
            "training": training or {},
            "tokenizer": self.tokenizer_info,
        }
        return save_model_dir(path, self.kind, self.hparams["model"], self.export_state(), extra)


class CodeModule(GeneratorModule):
    """A transformer over the tokenizer's codes (the GPT, masked decoding): its model and
    objective configs recorded as ``model`` and ``loss``, and its hidden-state function
    compiled when asked (``forward_hidden``, for the chunked loss)."""

    def __init__(
        self,
        family: str,
        net: nn.Module,
        model_cfg,
        loss_cfg,
        optim: OptimConfig,
        total_steps: int,
        ema_decay: float | None,
        compile: bool,
        tokenizer: dict | None,
    ):
        hparams = {"model": model_cfg.to_dict(), "loss": asdict(loss_cfg)}
        super().__init__(family, net, hparams, optim, total_steps, ema_decay, tokenizer)
        self.model_cfg, self.loss_cfg = model_cfg, loss_cfg
        self.forward_hidden = torch.compile(net.hidden) if compile else net.hidden

    def log_validation(self, logs: dict, loss_key: str, size: int) -> None:
        """The validation loss ``logs[loss_key]`` (``<what>_loss``, nats per token) and its
        bits (``bits_per_<what>_token``), as every code family reports them."""
        bits_key = f"bits_per_{loss_key.removesuffix('_loss')}_token"
        self.log(f"val/{loss_key}", logs[loss_key], sync_dist=True, batch_size=size)
        self.log(f"val/{bits_key}", logs[bits_key], sync_dist=True, batch_size=size, prog_bar=True)
