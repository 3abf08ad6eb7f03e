"""Lightning module of the frame-causal diffusion (forcing) family: the frame-causal DiT on the
same normalized latents as the diffusion baseline (``training.LatentModule``), trained with one
noise level per latent frame (``forcing.training_loss``). Model directories are of kind ``forcing``.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from vtlm.train.optim import OptimConfig

from .config import DiTConfig
from .forcing import ForcingConfig, training_loss
from .training import LatentModule


class ForcingModule(LatentModule):
    def __init__(
        self,
        model: DiTConfig,
        forcing: ForcingConfig,
        optim: OptimConfig,
        total_steps: int,
        to_latents: torch.nn.Module,
        latent_mean: list[float],
        latent_std: list[float],
        ema_decay: float | None = None,
        tokenizer: dict | None = None,
    ):
        if not model.frame_causal:
            raise ValueError("model.frame_causal: the forcing family trains a frame-causal DiT")
        super().__init__(
            model, {"forcing": asdict(forcing)}, optim, total_steps, to_latents, latent_mean, latent_std,
            ema_decay, tokenizer, kind="forcing",
        )  # fmt: skip
        self.forcing_cfg = forcing

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x0 = self.latents(batch["codes"])
        text = self._text(batch, self.forcing_cfg.caption_dropout)
        loss, logs = training_loss(self.dit, x0, text, self.forcing_cfg)
        self.log_training(loss, logs, x0.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Per-frame levels on every frame (no history examples), the same noise every time."""
        x0 = self.latents(batch["codes"])
        generator = torch.Generator(device=x0.device).manual_seed(batch_idx)
        plain = ForcingConfig(history_share=0.0, history_dropout=0.0)
        loss, _ = training_loss(self.eval_net, x0, self._text(batch, 0.0), plain, generator)
        self.log("val/forcing_loss", loss, sync_dist=True, batch_size=x0.shape[0], prog_bar=True)
