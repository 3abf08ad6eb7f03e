"""Frame-causal diffusion (diffusion forcing): the objective and the frame-by-frame sampler.

The network is the DiT with ``frame_causal=True``: a latent frame sees the caption, itself and
earlier frames. Rectified flow as in ``flow.py`` (x_s = (1 - s) x0 + s noise, predict
v = noise - x0), but every latent frame draws its *own* level, so the network learns to denoise
a frame whatever the noise on the frames before it: the history a frame sees is noised at random
levels in most examples, which is context-noise augmentation built in. Two kinds of examples make
the sampling-time situations explicit (a split point k: frames before it are *history*, kept out
of the loss, frames from k on draw their own levels):

- history examples: history frames at levels uniform in [0, ``max_context_noise``], what the
  sampler gives them (``context_noise``); 0 trains on clean history only;
- history-dropout examples: history frames at level 1, pure noise: the "no history" model that
  history guidance contrasts with (the network reads level 1 as "nothing known").

Sampling goes chunk by chunk (``chunk`` latent frames, 1 by default): each chunk is integrated
from noise (Euler / Heun, ``flow.solver_step``) while it attends to the caption and the held
frames; once done it is noised to ``context_noise``, conditioned on that level, and committed
(one more network call) to the network's caches, so an earlier frame is encoded once, never at
every step. Past the trained window (``max_frames``) the window rolls: the oldest held frame
leaves (the first stays with ``anchor_first``), and held keys are re-rotated to their new
positions (``vtlm.layers.rolling_cache``) instead of re-encoding the window.

That rolling cache equals re-encoding the window with positions restarted exactly for a one-block
network; deeper, a held frame's keys still carry what it saw when committed, including frames
that have left the window (the test suite checks the one-block case). Measured on the debug preset
(2 blocks, trained 150 steps on the random-tokenizer shards, 9 latent frames, window 3, 10 steps,
CFG 3): the rolled frames differ from re-encoding by 0.6% relative RMS (another seed: 128%), and
the cached sampler took 1.35 s against 3.78 s for re-encoding at every step (2.8x).

Guidance: v = v(no history, no caption) + hist_scale (v(history, no caption) - v(no history, no
caption)) + cfg_scale (v(history, caption) - v(history, no caption)), the needed branches in one
batch (scales of 1 drop the terms they make vanish).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .flow import FlowConfig, Net, SamplerConfig, check_level_sampling, sample_levels, solver_step


@dataclass
class ForcingConfig:
    """How training draws per-frame noise levels, history and dropped history."""

    # Per-frame levels: logit-normal (more weight mid-path) or uniform, independent per frame.
    level_sampling: Literal["logit_normal", "uniform"] = "logit_normal"
    # Share of examples with a history (frames before a random split, out of the loss) at
    # levels uniform in [0, max_context_noise]: the anti-drift noise augmentation's knob.
    history_share: float = 0.3
    max_context_noise: float = 0.2
    # Share of examples whose history is pure noise at level 1 (history guidance's "no history").
    history_dropout: float = 0.1
    # Probability that a caption is dropped (the unconditional model for guidance).
    caption_dropout: float = 0.1

    def __post_init__(self):
        check_level_sampling(self.level_sampling)
        values = (self.history_share, self.history_dropout, self.max_context_noise, self.caption_dropout)
        if not all(0 <= v <= 1 for v in values) or self.history_share + self.history_dropout > 1:
            raise ValueError(
                "history_share, history_dropout, max_context_noise, caption_dropout: expected values in "
                f"[0, 1] and history_share + history_dropout <= 1, got {values}"
            )


def noised(x0: torch.Tensor, levels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The flow path per frame: x0, noise (B, D, t, h, w), levels (B, t) -> (1 - s) x0 + s noise."""
    s = levels[:, None, :, None, None].to(x0.dtype)
    return (1 - s) * x0 + s * noise


def training_loss(
    net: Net, x0: torch.Tensor, text: torch.Tensor, cfg: ForcingConfig, generator=None
) -> tuple[torch.Tensor, dict]:
    """Flow-matching loss with one noise level per latent frame, on the frames that are not history.

    x0: clean normalized latents (B, D, t, h, w); text: caption ids (B, L). Returns the loss and
    its logs (the loss, the mean share of history frames).
    """
    b, t = x0.shape[0], x0.shape[2]
    device = x0.device
    levels = sample_levels(b * t, FlowConfig(level_sampling=cfg.level_sampling), device, generator).view(b, t)
    draw = torch.rand(b, device=device, generator=generator)
    split = torch.randint(1, max(t, 2), (b,), device=device, generator=generator)  # history: frames < split
    before = (torch.arange(t, device=device)[None] < split[:, None]) & (t > 1)  # (B, t)
    kept = (draw < cfg.history_share)[:, None] & before
    dropping = (draw >= cfg.history_share) & (draw < cfg.history_share + cfg.history_dropout)
    dropped = dropping[:, None] & before
    context = torch.rand(b, t, device=device, generator=generator) * cfg.max_context_noise
    levels = torch.where(kept, context, levels).masked_fill(dropped, 1.0)
    noise = torch.randn(x0.shape, device=device, generator=generator, dtype=x0.dtype)
    pred = net(noised(x0, levels, noise), levels, text)
    per_frame = (pred.float() - (noise - x0).float()).pow(2).mean(dim=(1, 3, 4))  # (B, t)
    trained = (~(kept | dropped)).float()
    loss = (per_frame * trained).sum() / trained.sum().clamp(min=1)
    return loss, {"forcing_loss": loss.detach(), "history_frames": 1 - trained.mean()}


@dataclass
class ForcingSamplerConfig:
    """Frame-by-frame sampling: solver, context noise, guidance, window."""

    steps: int = 25
    solver: Literal["euler", "heun"] = "euler"
    # Level the held frames are noised to and conditioned on (0: clean history). 0.1: inside the
    # training range (max_context_noise 0.2). On the debug model (150 steps) 16-frame rollouts
    # drifted alike at 0, 0.1, 0.2 and 0.3 (latent std 0.95 -> 0.93 for all): not yet decided.
    context_noise: float = 0.1
    # History guidance (1: off) and classifier-free guidance on the caption (1: off).
    hist_scale: float = 1.0
    cfg_scale: float = 1.0
    # Keep the first latent frame in the window when it rolls past max_frames.
    anchor_first: bool = False
    # Latent frames decoded together (frame-causal among themselves).
    chunk: int = 1

    def __post_init__(self):
        SamplerConfig(steps=self.steps, solver=self.solver)  # the same checks
        if not 0 <= self.context_noise <= 1 or self.chunk < 1:
            raise ValueError(
                f"context_noise, chunk: expected a level in [0, 1] and chunk >= 1, got {self.context_noise}, {self.chunk}"
            )

    @property
    def branches(self) -> tuple[str, ...]:
        """Guidance branches evaluated in one batch: (no) history x (no) caption, as "nu", "hu", "hc"."""
        hist, text = self.hist_scale != 1.0, self.cfg_scale != 1.0
        return ("nu",) * hist + ("hu",) * (hist or text) + ("hc",)

    def function_evaluations(self, frames: int, prefix: int, window: int) -> int:
        """Network calls for ``frames`` latent frames after ``prefix`` given ones: the solver's
        calls per generated chunk, plus one commit per chunk that later frames see."""
        per_chunk = SamplerConfig(steps=self.steps, solver=self.solver).nfe
        chunk = min(self.chunk, window - 1)
        made = -(-(frames - prefix) // chunk)
        return made * per_chunk + -(-prefix // chunk) + max(made - 1, 0)


def _guide(v: torch.Tensor, cfg: ForcingSamplerConfig) -> torch.Tensor:
    parts = dict(zip(cfg.branches, v.chunk(len(cfg.branches))))
    out = parts["hc"]
    if "hu" in parts:
        out = parts["hu"] + cfg.cfg_scale * (out - parts["hu"])
    if "nu" in parts:
        out = out + (cfg.hist_scale - 1) * (parts["hu"] - parts["nu"])
    return out


class CachedWindow:
    """What a chunk sees, through the network's caches (a frame-causal ``DiT``)."""

    def __init__(self, net, text: torch.Tensor, capacity: int, chunk: int, anchor: bool):
        self.net = net
        net.setup_frame_caches(text.shape[0], capacity, chunk, anchor)
        net.start_frames(text)

    def velocity(self, x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        return self.net.forward_frames(x, levels, write=False)

    def commit(self, x: torch.Tensor, levels: torch.Tensor) -> None:
        self.net.forward_frames(x, levels, write=True)


class FullWindow:
    """The reference: [caption | held frames | chunk] re-encoded by a full forward (frame-causal
    mask) at every call, positions restarted; any callable network."""

    def __init__(self, net: Net, text: torch.Tensor, capacity: int, anchor: bool):
        self.net, self.text, self.capacity, self.anchor = net, text, capacity, anchor
        self.held: list[tuple[torch.Tensor, torch.Tensor]] = []  # (x (R, D, 1, h, w), level (R, 1))

    def velocity(self, x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        xs = torch.cat([f for f, _ in self.held] + [x], dim=2)
        ls = torch.cat([s for _, s in self.held] + [levels], dim=1)
        return self.net(xs, ls, self.text)[:, :, -x.shape[2] :]

    def commit(self, x: torch.Tensor, levels: torch.Tensor) -> None:
        self.held += [(x[:, :, j : j + 1], levels[:, j : j + 1]) for j in range(x.shape[2])]
        while len(self.held) > self.capacity:
            self.held.pop(1 if self.anchor else 0)


@torch.no_grad()
def sample(
    net: Net,
    shape: tuple[int, ...],
    text: torch.Tensor,
    cfg: ForcingSamplerConfig,
    window: int,
    prefix: torch.Tensor | None = None,
    uncond_text: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    cached: bool = True,
) -> torch.Tensor:
    """Latents (B, D, T, h, w) chunk by chunk from noise; prefix (B, D, k, h, w) kept exactly.

    ``window``: latent frames the network was trained on (its max_frames); any T works, the
    window rolls. ``text``: caption ids (B, L); ``uncond_text``: the all-pad captions, needed
    when a guidance scale is not 1. ``cached``: through the network's caches (a frame-causal
    DiT); False: the full-forward reference (any callable).
    """
    b, _, total, _, _ = shape
    device = text.device
    if window < 2:
        raise ValueError(f"window: expected >= 2 latent frames (history and a chunk), got {window}")
    names = cfg.branches
    if len(names) > 1 and uncond_text is None:
        raise ValueError("uncond_text: guidance needs the unconditional captions")
    rows = torch.cat([text if name == "hc" else uncond_text for name in names])
    history = torch.tensor([name[0] == "h" for name in names], device=device).repeat_interleave(b)
    chunk = min(cfg.chunk, window - 1)  # at least one frame of history stays in the window
    capacity = window - chunk
    view = (
        CachedWindow(net, rows, capacity, chunk, cfg.anchor_first)
        if cached
        else FullWindow(net, rows, capacity, cfg.anchor_first)
    )

    def commit(frames: torch.Tensor) -> None:
        """Hold ``frames`` (B, D, c, h, w): noised to context_noise; pure noise at level 1 on
        the no-history rows."""
        c = frames.shape[2]
        level = torch.where(history, cfg.context_noise, 1.0)[:, None].expand(-1, c)  # (R, c)
        x = frames.repeat(len(names), 1, 1, 1, 1)
        noise = torch.randn(x.shape, device=device, generator=generator)
        view.commit(noised(x, level, noise), level)

    out = torch.randn(shape, device=device, generator=generator)  # every chunk's starting noise
    k = 0 if prefix is None else prefix.shape[2]
    for start in range(0, k, chunk):
        end = min(start + chunk, k)
        out[:, :, start:end] = prefix[:, :, start:end]
        commit(out[:, :, start:end])
    grid = torch.linspace(1.0, 0.0, cfg.steps + 1, device=device)
    for start in range(k, total, chunk):
        x = out[:, :, start : start + chunk]
        c = x.shape[2]

        def velocity(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            levels = torch.full((len(names) * b, x.shape[2]), float(s), device=device)
            return _guide(view.velocity(x.repeat(len(names), 1, 1, 1, 1), levels), cfg)

        for i in range(cfg.steps):
            x = solver_step(velocity, x, grid[i], grid[i + 1], cfg.solver, i == cfg.steps - 1)
        out[:, :, start : start + c] = x
        if start + c < total:
            commit(x)
    return out
