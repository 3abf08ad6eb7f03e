"""GAN objectives and stabilizers for tokenizer training, kept apart from the networks.

Everything here takes logits or networks as arguments and returns tensors; nothing knows about
Lightning, optimizers or logging. Logits are unbounded floats of any shape (a PatchGAN grid
such as (B, 1, t', h', w')); "real" logits should go up, "fake" logits down. Losses are means
over every logit, so they do not depend on the grid size.

* :func:`d_loss` / :func:`g_loss`: hinge or non-saturating losses.
* :class:`LeCAM`: the LeCAM regularizer of the discriminator (Tseng et al., CVPR 2021).
* :func:`r1_penalty`: the R1 gradient penalty on real inputs (Mescheder et al., 2018).
* :func:`adaptive_weight`: the VQGAN balance of reconstruction and adversarial gradients.
* :func:`adversarial_factor`: the delayed, linearly warmed-up start of the GAN terms.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GANLossKind = Literal["hinge", "non_saturating"]


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake))).

    Zero once real logits are >= 1 and fake logits <= -1. Returns a scalar >= 0.
    """
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -mean(fake). Returns an unbounded scalar."""
    return -fake_logits.mean()


def ns_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator non-saturating (logistic) loss, halved like the hinge loss.

    0.5 * (mean(softplus(-real)) + mean(softplus(fake))) = 0.5 * (-log sigmoid(real) -
    log(1 - sigmoid(fake))); softplus keeps it finite for large logits. Scalar >= 0.
    """
    return 0.5 * (F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean())


def ns_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator non-saturating loss: mean(softplus(-fake)) = -mean(log sigmoid(fake)). Scalar >= 0."""
    return F.softplus(-fake_logits).mean()


def _check_kind(kind: str) -> None:
    if kind not in ("hinge", "non_saturating"):
        raise ValueError(f"kind must be 'hinge' or 'non_saturating', got {kind!r}")


def d_loss(kind: GANLossKind, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the given kind on real and fake logits. Returns a scalar."""
    _check_kind(kind)
    return hinge_d_loss(real, fake) if kind == "hinge" else ns_d_loss(real, fake)


def g_loss(kind: GANLossKind, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss of the given kind on fake logits. Returns a scalar."""
    _check_kind(kind)
    return hinge_g_loss(fake) if kind == "hinge" else ns_g_loss(fake)


class LeCAM(nn.Module):
    """LeCAM regularizer (Tseng et al., "Regularizing GANs under limited data", 2021).

    Keeps exponential moving averages of the mean real logit and the mean fake logit,
    ``ema <- decay * ema + (1 - decay) * mean(logits)`` (both start at 0), and penalizes

        R = mean(relu(real - ema_fake)^2) + mean(relu(ema_real - fake)^2),

    i.e. real logits that climb above the fake average and fake logits that fall below the
    real average. It bounds how far the discriminator can push its two outputs apart, which
    keeps it from overfitting a small or easy dataset. Add ``weight * penalty`` to the
    discriminator loss (weights around 1e-3 to 1e-2 are typical for hinge losses).

    The averages are registered buffers (``ema_real``, ``ema_fake``, float32 scalars), so they
    are saved in checkpoints and moved with ``.to()``. Under data parallelism each process keeps
    its own averages.
    """

    def __init__(self, decay: float = 0.99) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros((), dtype=torch.float32))
        self.register_buffer("ema_fake", torch.zeros((), dtype=torch.float32))

    @torch.no_grad()
    def update(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        """Move the averages toward the batch means of the (any-shape) real and fake logits."""
        self.ema_real.lerp_(real_logits.detach().float().mean(), 1.0 - self.decay)
        self.ema_fake.lerp_(fake_logits.detach().float().mean(), 1.0 - self.decay)

    def penalty(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """R above for the current logits against the stored averages. Scalar >= 0, float32."""
        real_term = F.relu(real_logits.float() - self.ema_fake).pow(2).mean()
        fake_term = F.relu(self.ema_real - fake_logits.float()).pow(2).mean()
        return real_term + fake_term


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty: mean over the batch of ||d sum(D(x_i)) / d x_i||^2 at real inputs.

    discriminator: maps ``real`` to logits of any shape with a leading batch dimension; batch
        elements must not interact (no BatchNorm), or the per-sample gradients mix.
    real: float (B, ...) real inputs, e.g. (B, 3, T, H, W) in [-1, 1]; it is detached here.
    Returns a float32 scalar >= 0 built with ``create_graph=True``, so backpropagating it
    trains the discriminator. The usual loss term is ``gamma / 2 * r1_penalty(D, x)``; it is
    often computed only every few steps ("lazy" R1) to save the double backward.
    """
    x = real.detach().requires_grad_(True)
    logits = discriminator(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(dim=1).mean()


def adaptive_weight(
    rec_loss: torch.Tensor,
    g_loss: torch.Tensor,
    last_layer: torch.Tensor,
    max_weight: float = 1e4,
    eps: float = 1e-4,
) -> torch.Tensor:
    """VQGAN balance: ||d rec / d W|| / (||d g / d W|| + eps), clamped to [0, max_weight].

    rec_loss, g_loss: scalar losses of the autoencoder, both functions of ``last_layer``.
    last_layer: the weight W of the decoder's last layer (a leaf tensor that requires grad).
    Returns a detached float32 scalar; multiply the generator loss by it so its gradient at
    the output layer has the size of the reconstruction gradient. The gradients are taken with
    ``torch.autograd.grad(..., retain_graph=True)``: the graph survives for the real backward
    and nothing is written to ``last_layer.grad``.
    """
    (rec_grad,) = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
    (g_grad,) = torch.autograd.grad(g_loss, last_layer, retain_graph=True)
    weight = rec_grad.float().norm() / (g_grad.float().norm() + eps)
    return weight.clamp(0.0, max_weight).detach()


def adversarial_factor(step: int, start_step: int, warmup_steps: int = 0) -> float:
    """Multiplier of the GAN terms at optimizer step ``step`` (the "delayed start").

    0 for ``step < start_step``; then ``(step - start_step + 1) / warmup_steps`` capped at 1,
    so the factor is 1/warmup_steps at ``start_step`` and reaches 1 at
    ``start_step + warmup_steps - 1``. With ``warmup_steps = 0`` it jumps to 1 at start_step.
    Returns a float in [0, 1].
    """
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if step < start_step:
        return 0.0
    if warmup_steps == 0:
        return 1.0
    return min(1.0, (step - start_step + 1) / warmup_steps)
