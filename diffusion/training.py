"""Lightning modules that train the diffusion transformer on the same token shards as the GPT,
on the generator-training base (AdamW groups, warmup + cosine, EMA, gradient watch, export).

Codes are mapped to the tokenizer's latents (exactly what the codes stand for) with the
tokenizer's own bottleneck, normalized per channel with statistics of the training shards, and
learned with the rectified-flow objective. Batches: ``{"codes": (B, t, h, w), "text": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import torch

from vtlm.train.generator import GeneratorModule
from vtlm.train.optim import OptimConfig

from .config import DiTConfig
from .flow import FlowConfig, training_loss
from .model import DiT, caption_batch


class LatentModule(GeneratorModule):
    """A DiT trained on the tokenizer's normalized latents: what the diffusion and the
    frame-causal (forcing) families share. ``objective``: the family's objective settings, by
    name, for the checkpoint; ``kind``: the exported model directory's kind.

    A family sets ``loss_fn`` (``(net, x0, text, cfg, generator) -> (loss, logs)``),
    ``objective_cfg`` (its settings, with ``caption_dropout``), ``val_cfg`` (the settings
    validation scores with, the same noise every time) and ``val_name`` (the logged metric).
    """

    loss_fn: Callable
    val_name: str

    def __init__(
        self,
        model: DiTConfig,
        objective: dict,
        optim: OptimConfig,
        total_steps: int,
        to_latents: torch.nn.Module,
        latent_mean: list[float],
        latent_std: list[float],
        ema_decay: float | None,
        tokenizer: dict | None,
        kind: str,
    ):
        hparams = {"model": model.to_dict(), **objective}
        super().__init__("dit", DiT(model), hparams, optim, total_steps, ema_decay, tokenizer, kind=kind)
        self.model_cfg = model
        self._to_latents = [to_latents.eval().requires_grad_(False)]  # a list: not a submodule, not saved
        self.register_buffer("latent_mean", torch.tensor(latent_mean).view(1, -1, 1, 1, 1))
        self.register_buffer("latent_std", torch.tensor(latent_std).view(1, -1, 1, 1, 1))

    def latents(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, t, h, w) -> normalized latents (B, D, t, h, w)."""
        bottleneck = self._to_latents[0].to(codes.device)
        with torch.no_grad():
            return (bottleneck.indices_to_latents(codes) - self.latent_mean) / self.latent_std

    def _text(self, batch: dict, dropout: float) -> torch.Tensor:
        drop = self.caption_drop(len(batch["text"]), dropout)
        return caption_batch(batch["text"], self.model_cfg.text_len, drop).to(self.device)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0 = self.latents(batch["codes"])
        text = self._text(batch, self.objective_cfg.caption_dropout)
        loss, logs = type(self).loss_fn(self.dit, x0, text, self.objective_cfg)
        self.log_training(loss, logs, x0.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        x0 = self.latents(batch["codes"])
        generator = torch.Generator(device=x0.device).manual_seed(batch_idx)  # the same noise each time
        loss, _ = type(self).loss_fn(self.eval_net, x0, self._text(batch, 0.0), self.val_cfg, generator)
        self.log(f"val/{self.val_name}", loss, sync_dist=True, batch_size=x0.shape[0], prog_bar=True)

    def training_flops(self, batch: dict) -> float:
        """FLOPs of one training step on ``batch`` (forward + backward, every example)."""
        return batch["codes"].shape[0] * self.dit.flops_per_example(batch["codes"].shape[1])

    def export_state(self) -> dict[str, torch.Tensor]:
        """DiT weights (EMA when kept) + the latent statistics sampling un-normalizes with."""
        return {**self.eval_net.state_dict(), "latent_mean": self.latent_mean, "latent_std": self.latent_std}


class DiffusionModule(LatentModule):
    """The diffusion baseline: the whole window denoised at one level (rectified flow)."""

    loss_fn, val_name = staticmethod(training_loss), "flow_loss"

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
        super().__init__(
            model, {"flow": asdict(flow)}, optim, total_steps, to_latents, latent_mean, latent_std,
            ema_decay, tokenizer, kind="diffusion",
        )  # fmt: skip
        self.objective_cfg = flow
        self.val_cfg = FlowConfig(prefix_share=0.0)  # every frame to predict
