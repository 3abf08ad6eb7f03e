"""Rectified flow (flow matching) over latent frames: the objective and the samplers.

Path: x_s = (1 - s) x0 + s noise for a noise level s in [0, 1]; the network predicts the
velocity v = noise - x0. Every latent frame has its own level: frames given as a clean
prefix sit at s = 0, enter the network unchanged and are left out of the loss, so "continue
this clip" is the task the GPT solves. Everything takes the network as a callable
``net(latents (B, D, t, h, w), levels (B, t), text (B, L)) -> velocity``.

Samplers integrate from s = 1 to 0 with Euler (NFE = steps) or Heun (NFE = 2 steps - 1);
classifier-free guidance evaluates conditional and unconditional in one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

Net = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class FlowConfig:
    """How training draws noise levels and clean prefixes."""

    # Levels: logit-normal (more weight mid-path, as in recent rectified-flow models) or uniform.
    level_sampling: Literal["logit_normal", "uniform"] = "logit_normal"
    # Share of training examples that get a clean prefix of 1..max_prefix_frames latent frames.
    prefix_share: float = 0.5
    max_prefix_frames: int = 2
    # Probability that a caption is dropped (the unconditional model for guidance).
    caption_dropout: float = 0.1

    def __post_init__(self):
        if self.level_sampling not in ("logit_normal", "uniform"):
            raise ValueError(
                f"level_sampling: expected 'logit_normal' or 'uniform', got {self.level_sampling!r}"
            )
        if not 0 <= self.prefix_share <= 1 or not 0 <= self.caption_dropout <= 1:
            raise ValueError(
                f"prefix_share, caption_dropout: expected values in [0, 1], got {self.prefix_share}, {self.caption_dropout}"
            )


def sample_levels(batch: int, cfg: FlowConfig, device, generator=None) -> torch.Tensor:
    """One noise level per example, (B,) in (0, 1)."""
    if cfg.level_sampling == "uniform":
        return torch.rand(batch, device=device, generator=generator)
    return torch.sigmoid(torch.randn(batch, device=device, generator=generator))


def training_loss(
    net: Net, x0: torch.Tensor, text: torch.Tensor, cfg: FlowConfig, generator=None
) -> tuple[torch.Tensor, dict]:
    """Flow-matching loss on the frames that are not a clean prefix.

    x0: clean normalized latents (B, D, t, h, w); text: caption ids (B, L).
    """
    b, t = x0.shape[0], x0.shape[2]
    device = x0.device
    levels = sample_levels(b, cfg, device, generator)[:, None].expand(b, t).clone()  # (B, t)
    prefix = torch.zeros(b, dtype=torch.long, device=device)
    if t > 1 and cfg.max_prefix_frames > 0:
        has = torch.rand(b, device=device, generator=generator) < cfg.prefix_share
        count = torch.randint(
            1, min(cfg.max_prefix_frames, t - 1) + 1, (b,), device=device, generator=generator
        )
        prefix = torch.where(has, count, prefix)
    clean = torch.arange(t, device=device)[None] < prefix[:, None]  # (B, t)
    levels = levels.masked_fill(clean, 0.0)
    noise = torch.randn(x0.shape, device=device, generator=generator, dtype=x0.dtype)
    s = levels[:, None, :, None, None]
    xs = (1 - s) * x0 + s * noise
    target = noise - x0
    pred = net(xs, levels, text)
    per_frame = (pred.float() - target.float()).pow(2).mean(dim=(1, 3, 4))  # (B, t)
    weight = (~clean).float()
    loss = (per_frame * weight).sum() / weight.sum().clamp(min=1)
    return loss, {"flow_loss": loss.detach(), "prefix_frames": prefix.float().mean()}


@dataclass
class SamplerConfig:
    """Numerical integration of the flow from noise to latents."""

    steps: int = 25
    solver: Literal["euler", "heun"] = "euler"
    # Classifier-free guidance: v = v_uncond + scale * (v_cond - v_uncond); 1 is plain conditional.
    cfg_scale: float = 1.0

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps: expected >= 1, got {self.steps}")
        if self.solver not in ("euler", "heun"):
            raise ValueError(f"solver: expected 'euler' or 'heun', got {self.solver!r}")

    @property
    def nfe(self) -> int:
        """Network evaluations per sample (a guided evaluation counts once: one batch)."""
        return self.steps if self.solver == "euler" else 2 * self.steps - 1


def _velocity(
    net: Net,
    x: torch.Tensor,
    levels: torch.Tensor,
    text: torch.Tensor,
    uncond: torch.Tensor | None,
    scale: float,
):
    if uncond is None:
        return net(x, levels, text)
    v_cond, v_uncond = net(torch.cat([x, x]), torch.cat([levels, levels]), torch.cat([text, uncond])).chunk(2)
    return v_uncond + scale * (v_cond - v_uncond)


def solver_step(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    s: torch.Tensor,
    s_next: torch.Tensor,
    solver: str,
    last: bool,
) -> torch.Tensor:
    """x at level s -> x at level s_next < s, with ``velocity(x, level)``: Euler, or Heun (Euler
    on the ``last`` step, as ``sample`` does). For samplers that drive their own loop."""
    v = velocity(x, s)
    x_next = x + (s_next - s) * v
    if solver == "heun" and not last:
        x_next = x + (s_next - s) * 0.5 * (v + velocity(x_next, s_next))
    return x_next


@torch.no_grad()
def sample(
    net: Net,
    shape: tuple[int, ...],
    text: torch.Tensor,
    cfg: SamplerConfig,
    prefix: torch.Tensor | None = None,
    uncond_text: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Latents (B, D, t, h, w) from noise; prefix (B, D, k, h, w) frames are kept exactly.

    ``uncond_text``: the all-pad captions, needed when cfg_scale != 1.
    """
    device = text.device
    x = torch.randn(shape, device=device, generator=generator)
    b, t = shape[0], shape[2]
    k = 0 if prefix is None else prefix.shape[2]
    if k:
        x[:, :, :k] = prefix
    guided = cfg.cfg_scale != 1.0
    if guided and uncond_text is None:
        raise ValueError("uncond_text: classifier-free guidance needs the unconditional captions")
    uncond = uncond_text if guided else None
    grid = torch.linspace(1.0, 0.0, cfg.steps + 1, device=device)
    is_prefix = torch.arange(t, device=device)[None] < k

    def levels_at(s: torch.Tensor) -> torch.Tensor:
        return torch.full((b, t), float(s), device=device).masked_fill(is_prefix, 0.0)

    for i in range(cfg.steps):
        s, s_next = grid[i], grid[i + 1]
        v = _velocity(net, x, levels_at(s), text, uncond, cfg.cfg_scale)
        x_next = x + (s_next - s) * v
        if cfg.solver == "heun" and i < cfg.steps - 1:
            v_next = _velocity(net, x_next, levels_at(s_next), text, uncond, cfg.cfg_scale)
            x_next = x + (s_next - s) * 0.5 * (v + v_next)
        x = x_next
        if k:
            x[:, :, :k] = prefix  # the prefix never moves
    return x
