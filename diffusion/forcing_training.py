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
    """Frame-causal diffusion: one noise level per latent frame (diffusion forcing)."""

    loss_fn, val_name = staticmethod(training_loss), "forcing_loss"

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
        self.objective_cfg = forcing
        # validation: per-frame levels on every frame (no history examples)
        self.val_cfg = ForcingConfig(history_share=0.0, history_dropout=0.0)
