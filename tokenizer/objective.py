"""The tokenizer's training objective, apart from the network.

Generator loss = reconstruction (L1, L2 or both) + the bottleneck's auxiliary loss
(commitment, entropy, KL; already weighted) + perceptual (optional, from user weights)
+ adversarial (optional; delayed start, linear warmup, adaptive weight).
Discriminator loss = hinge or non-saturating + LeCAM and/or R1 regularization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .adversarial import LeCAM, adaptive_weight, adversarial_factor, d_loss, g_loss, r1_penalty
from .discriminator import DiscriminatorConfig, PatchDiscriminator3D
from .quantizers import Quantized


@dataclass
class LossConfig:
    """Weights and schedules of the tokenizer's losses."""

    recon: Literal["l1", "l2", "l1+l2"] = "l1"
    # Perceptual (LPIPS-style) loss weight; 0 turns it off. Needs both weight files (nothing is
    # downloaded): torchvision's VGG16 ImageNet weights and LPIPS's vgg.pth linear layers.
    perceptual_weight: float = 0.0
    vgg_path: str | None = None
    lpips_path: str | None = None
    # Frames per clip the perceptual loss looks at (evenly spaced), to bound its cost.
    perceptual_frames: int = 4
    # Adversarial loss weight; 0 turns the discriminator off.
    adversarial_weight: float = 0.0
    gan_loss: Literal["hinge", "non_saturating"] = "hinge"
    # Delayed start and linear warmup of the adversarial terms (steps).
    adversarial_start: int = 2000
    adversarial_warmup: int = 500
    # Balance adversarial against reconstruction gradients at the decoder's last layer.
    adaptive_weight: bool = True
    # Discriminator regularizers: LeCAM (weight; 0 off) and R1 gradient penalty (gamma; 0 off).
    lecam_weight: float = 0.001
    r1_gamma: float = 0.0
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    discriminator_lr: float = 1e-4
    # LFQ: the entropy loss is multiplied by a factor that falls linearly from
    # lfq_entropy_start to 1 over lfq_entropy_anneal_steps (spread codes early, then settle).
    lfq_entropy_start: float = 3.0
    lfq_entropy_anneal_steps: int = 2000

    def __post_init__(self):
        if isinstance(self.discriminator, dict):
            self.discriminator = DiscriminatorConfig(**self.discriminator)
        if self.recon not in ("l1", "l2", "l1+l2"):
            raise ValueError(f"recon: expected 'l1', 'l2' or 'l1+l2', got {self.recon!r}")
        if self.perceptual_weight > 0 and not (self.vgg_path and self.lpips_path):
            raise ValueError(
                "perceptual_weight > 0 needs vgg_path (torchvision's vgg16-397923af.pth) and lpips_path "
                "(LPIPS's vgg.pth); vtlm downloads nothing: pass the files you have, or set perceptual_weight: 0"
            )
        for name in ("perceptual_weight", "adversarial_weight", "lecam_weight", "r1_gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")


def reconstruction_loss(kind: str, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    recon, target = recon.float(), target.float()
    if kind == "l1":
        return F.l1_loss(recon, target)
    if kind == "l2":
        return F.mse_loss(recon, target)
    return F.l1_loss(recon, target) + F.mse_loss(recon, target)


class TokenizerObjective(nn.Module):
    """Holds what the losses need beyond the tokenizer: the discriminator, LeCAM averages and the
    frozen perceptual network. Call :meth:`generator_loss` and :meth:`discriminator_loss`."""

    def __init__(self, cfg: LossConfig):
        super().__init__()
        self.cfg = cfg
        self.perceptual = None
        if cfg.perceptual_weight > 0:
            from .perceptual import PerceptualLoss

            self.perceptual = PerceptualLoss.from_files(
                cfg.vgg_path, cfg.lpips_path, max_frames=cfg.perceptual_frames
            )
        self.discriminator = PatchDiscriminator3D(cfg.discriminator) if cfg.adversarial_weight > 0 else None
        self.lecam = LeCAM() if self.discriminator is not None and cfg.lecam_weight > 0 else None

    def adversarial_factor(self, step: int) -> float:
        if self.discriminator is None:
            return 0.0
        return adversarial_factor(step, self.cfg.adversarial_start, self.cfg.adversarial_warmup)

    def lfq_entropy_scale(self, step: int) -> float:
        progress = min(1.0, step / max(1, self.cfg.lfq_entropy_anneal_steps))
        return self.cfg.lfq_entropy_start + (1.0 - self.cfg.lfq_entropy_start) * progress

    def generator_loss(
        self,
        video: torch.Tensor,
        recon: torch.Tensor,
        quantized: Quantized,
        step: int,
        last_layer: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total generator loss (scalar) and its parts for logging (detached)."""
        rec = reconstruction_loss(self.cfg.recon, recon, video)
        total = rec + quantized.aux_loss
        logs = {"rec": rec.detach(), "aux": quantized.aux_loss.detach()}
        if self.perceptual is not None:
            perceptual = self.perceptual(recon, video)
            total = total + self.cfg.perceptual_weight * perceptual
            logs["perceptual"] = perceptual.detach()
        factor = self.adversarial_factor(step)
        if factor > 0:
            self.discriminator.requires_grad_(False)
            gen = g_loss(self.cfg.gan_loss, self.discriminator(recon))
            self.discriminator.requires_grad_(True)
            weight = adaptive_weight(rec, gen, last_layer) if self.cfg.adaptive_weight else torch.ones(())
            total = total + factor * self.cfg.adversarial_weight * weight * gen
            logs.update({"g_adv": gen.detach(), "adv_weight": weight.detach()})
        return total, logs

    def discriminator_loss(
        self, video: torch.Tensor, recon: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Discriminator loss on real clips and detached reconstructions, with its regularizers."""
        real_input = video.detach().requires_grad_(self.cfg.r1_gamma > 0)
        real, fake = self.discriminator(real_input), self.discriminator(recon.detach())
        loss = d_loss(self.cfg.gan_loss, real, fake)
        logs = {"d_loss": loss.detach(), "d_real": real.mean().detach(), "d_fake": fake.mean().detach()}
        if self.lecam is not None:
            penalty = self.lecam.penalty(real, fake)
            self.lecam.update(real, fake)
            loss = loss + self.cfg.lecam_weight * penalty
            logs["lecam"] = penalty.detach()
        if self.cfg.r1_gamma > 0:
            r1 = r1_penalty(self.discriminator, real_input)
            loss = loss + 0.5 * self.cfg.r1_gamma * r1
            logs["r1"] = r1.detach()
        return loss, logs
