"""Rectified flow (flow matching) over latent frames: the objective and the samplers.

Path: x_s = (1 - s) x0 + s noise for a noise level s in [0, 1]; the network predicts the
velocity v = noise - x0. Every latent frame has its own level: frames given as a clean
prefix sit at s = 0, enter the network unchanged and are left out of the loss, so "continue
this clip" is the task the GPT solves. Everything takes the network as a callable
``net(latents (B, D, t, h, w), levels (B, t), text (B, L)) -> velocity``.

Samplers integrate from s = 1 to 0 with Euler (NFE = steps), Heun (NFE = 2 steps - 1) or
DPM-Solver++(2M) (NFE = steps: a second-order multistep update in the data prediction
x0 = x - s v, with log-SNR lambda = log((1 - s) / s)); classifier-free guidance evaluates
conditional and unconditional in one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

Net = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def check_level_sampling(value: str) -> None:
    """Refuse a noise-level distribution other than logit-normal or uniform, naming the field."""
    if value not in ("logit_normal", "uniform"):
        raise ValueError(f"level_sampling: expected 'logit_normal' or 'uniform', got {value!r}")


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
        check_level_sampling(self.level_sampling)
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
    solver: Literal["euler", "heun", "dpmpp_2m"] = "euler"
    # Classifier-free guidance: v = v_uncond + scale * (v_cond - v_uncond); 1 is plain conditional.
    cfg_scale: float = 1.0

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps: expected >= 1, got {self.steps}")
        if self.solver not in ("euler", "heun", "dpmpp_2m"):
            raise ValueError(f"solver: expected 'euler', 'heun' or 'dpmpp_2m', got {self.solver!r}")

    @property
    def nfe(self) -> int:
        """Network evaluations per sample (a guided evaluation counts once: one batch)."""
        return 2 * self.steps - 1 if self.solver == "heun" else self.steps


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
    on the ``last`` step, where s_next = 0 leaves nothing to correct with)."""
    v = velocity(x, s)
    x_next = x + (s_next - s) * v
    if solver == "heun" and not last:
        x_next = x + (s_next - s) * 0.5 * (v + velocity(x_next, s_next))
    return x_next


def integrate(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    grid: torch.Tensor,
    solver: str,
    after_step: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """x at level grid[0] -> x at grid[-1], through the decreasing levels of ``grid`` (steps + 1,).

    Euler and Heun step by :func:`solver_step`. DPM-Solver++(2M) moves the data prediction
    D along the exact solution of the linear part, x' = (s' / s) x + (1 - s' / s) D (Euler's
    update when D is the current x0 prediction), with D extrapolated in lambda from the last two
    predictions: D = x0 + (x0 - x0_prev) / (2 r), r = h_prev / h. Its first steps (lambda = -inf
    at s = 1) and the last (s' = 0, lambda = +inf) are first order. ``after_step``: applied to x
    after every step (a clean prefix put back)."""
    previous = None  # (lambda, x0 prediction) of the last step
    steps = len(grid) - 1
    for i in range(steps):
        s, s_next, last = grid[i], grid[i + 1], i == steps - 1
        if solver != "dpmpp_2m":
            x = solver_step(velocity, x, s, s_next, solver, last)
        else:
            x0 = x - s * velocity(x, s)
            lam = torch.log((1 - s) / s)
            data = x0
            if previous is not None and torch.isfinite(previous[0]) and not last:
                h = torch.log((1 - s_next) / s_next) - lam
                r = (lam - previous[0]) / h
                data = x0 + (x0 - previous[1]) / (2 * r)
            x = (s_next / s) * x + (1 - s_next / s) * data
            previous = (lam, x0)
        if after_step is not None:
            x = after_step(x)
    return x


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

    def velocity(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return _velocity(net, x, levels_at(s), text, uncond, cfg.cfg_scale)

    def keep_prefix(x: torch.Tensor) -> torch.Tensor:
        if k:
            x[:, :, :k] = prefix  # the prefix never moves
        return x

    return integrate(velocity, x, grid, cfg.solver, keep_prefix)
