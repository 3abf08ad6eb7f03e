"""The diffusion transformer (DiT): bidirectional attention over [caption | latent patches],
adaLN-zero conditioning on a noise level *per token*, built from the GPT's shared layers.

Each latent frame carries its own noise level, so a clean prefix (continuation) is just
frames at level 0. With ``cfg.frame_causal`` (the forcing family) a frame attends to the
caption, itself and earlier frames only (``vtlm.layers.masks.frame_causal_mask``), and the
network also decodes frame by frame through per-layer caches (``setup_frame_caches``,
``start_frames``, ``forward_frames``), each earlier frame encoded once. The network predicts a
velocity (or noise) of the same shape as its input; the objectives and the samplers live in
``flow.py`` and ``forcing.py`` and take the network as a callable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtlm.layers.attention import Attention
from vtlm.layers.basic import SwiGLU
from vtlm.layers.flops import FlopMeter, forward_flops, matmul_weights
from vtlm.layers.masks import frame_causal_mask
from vtlm.layers.rolling_cache import FrameKV
from vtlm.layers.rope import rope_angles

from .config import DiTConfig

PAD_ID = 0  # vtlm.data.text's <pad>: an all-pad caption is the unconditional prefix


def timestep_features(levels: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features (..., dim) of noise levels in [0, 1] (scaled by 1000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=levels.device) / half)
    angles = levels.float()[..., None] * 1000.0 * freqs
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class DiTBlock(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(cfg.dim, cfg.heads, causal=False, backend=cfg.attention)
        self.mlp = SwiGLU(cfg.dim, int(cfg.mlp_ratio * cfg.dim))
        self.ada = nn.Linear(cfg.dim, 6 * cfg.dim)
        nn.init.zeros_(self.ada.weight)  # adaLN-zero: every block starts as the identity
        nn.init.zeros_(self.ada.bias)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        rope: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: FrameKV | None = None,
        write: bool = False,
    ) -> torch.Tensor:
        """x, cond (B, N, dim); ``mask`` (N, N) or a frame ``cache`` (and whether to commit x to it)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(cond)).chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + gate1 * (
            self.attn(h, rope, mask=mask) if cache is None else cache.attend(self.attn, h, rope, write)
        )
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class DiT(nn.Module):
    """(latents (B, D, t, h, w), levels (B, t) in [0, 1], caption ids (B, text_len)) -> (B, D, t, h, w)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        p = cfg.patch
        self.text_embed = nn.Embedding(cfg.text_size, cfg.dim)
        self.latent_in = nn.Linear(cfg.latent_dim * p * p, cfg.dim)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.latent_out = nn.Linear(cfg.dim, cfg.latent_dim * p * p)
        for layer in (self.ada_out, self.latent_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.text_embed.weight, std=0.02)
        self.frame_caches: list[FrameKV] = []  # frame-by-frame decoding only (setup_frame_caches)
        self.meter = FlopMeter()  # forward FLOPs of every call (sampling costs)
        self.token_weights = matmul_weights(self.blocks, self.time_mlp)  # every token's
        self.latent_weights = matmul_weights(self.latent_in, self.ada_out, self.latent_out)  # latent tokens'

    def positions(self, frames: int, device) -> torch.Tensor:
        """(text_len + frames * frame_tokens, 3): caption on the diagonal, then the patch grid."""
        cfg, text = self.cfg, self.cfg.text_len
        prefix = torch.arange(text, device=device)[:, None].expand(-1, 3)
        grid = torch.stack(
            torch.meshgrid(
                torch.arange(frames, device=device),
                torch.arange(cfg.grid_h // cfg.patch, device=device),
                torch.arange(cfg.grid_w // cfg.patch, device=device),
                indexing="ij",
            ),
            dim=-1,
        ).reshape(-1, 3)
        if cfg.rope == "1d":
            return torch.arange(text + grid.shape[0], device=device)[:, None].expand(-1, 3)
        return torch.cat([prefix, grid + text])

    def _rope(self, positions: torch.Tensor) -> torch.Tensor:
        return rope_angles(positions, self.cfg.dim // self.cfg.heads, self.cfg.rope, self.cfg.rope_base)

    def _frame_inputs(self, latents: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame tokens and their conditioning, both (B, t * frame_tokens, dim): each latent
        frame's tokens carry that frame's level."""
        p = self.cfg.patch
        x = rearrange(latents, "b d t (h p) (w q) -> b (t h w) (d p q)", p=p, q=p)
        frame_levels = levels.repeat_interleave(self.cfg.frame_tokens, dim=1)  # (B, t * frame tokens)
        return self.latent_in(x), self.time_mlp(timestep_features(frame_levels, self.cfg.dim))

    def _caption_inputs(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Caption tokens and their conditioning (level 0), both (B, text_len, dim)."""
        zeros = torch.zeros(text.shape, device=text.device)
        return self.text_embed(text), self.time_mlp(timestep_features(zeros, self.cfg.dim))

    def _frame_outputs(self, tokens: torch.Tensor, cond: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Frame tokens (B, t * frame_tokens, dim) -> (B, D, t, h, w) as ``shape``."""
        p, (_, _, t, h, w) = self.cfg.patch, shape
        shift, scale = self.ada_out(F.silu(cond)).chunk(2, dim=-1)
        out = self.latent_out(self.norm_out(tokens) * (1 + scale) + shift)
        return rearrange(out, "b (t h w) (d p q) -> b d t (h p) (w q)", t=t, h=h // p, w=w // p, p=p, q=p)

    def forward(self, latents: torch.Tensor, levels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        cfg, t = self.cfg, latents.shape[2]
        frames, frame_cond = self._frame_inputs(latents, levels)
        caption, caption_cond = self._caption_inputs(text)
        tokens, cond = torch.cat([caption, frames], dim=1), torch.cat([caption_cond, frame_cond], dim=1)
        rope = self._rope(self.positions(t, latents.device))
        mask = (
            frame_causal_mask(cfg.text_len, cfg.frame_tokens, t, latents.device) if cfg.frame_causal else None
        )
        for block in self.blocks:
            tokens = block(tokens, cond, rope, mask)
        self.meter.add(latents.shape[0] * self.forward_flops(t, t))
        return self._frame_outputs(tokens[:, cfg.text_len :], frame_cond, latents.shape)

    # -- frame-by-frame decoding (frame-causal networks) -------------------------------------
    def setup_frame_caches(self, batch: int, capacity: int, max_chunk: int, anchor: bool) -> None:
        """Preallocate each block's cache for ``batch`` rows: ``capacity`` held latent frames
        (capacity + max_chunk <= max_frames, the window trained on), chunks of up to
        ``max_chunk`` frames, the first frame kept as an anchor when the window rolls."""
        cfg = self.cfg
        if not cfg.frame_causal:
            raise ValueError("setup_frame_caches: frame-by-frame decoding needs a frame-causal network")
        if capacity + max_chunk > cfg.max_frames:
            raise ValueError(
                f"capacity + max_chunk: {capacity} + {max_chunk} frames exceed the window of {cfg.max_frames}"
            )
        weight = self.latent_in.weight
        frame_rope = self._rope(self.positions(cfg.max_frames, weight.device))[cfg.text_len :]
        self.frame_caches = [
            FrameKV(
                batch,
                cfg.heads,
                cfg.dim // cfg.heads,
                cfg.text_len,
                cfg.frame_tokens,
                capacity,
                max_chunk,
                anchor,
                frame_rope,
                weight.dtype,
                weight.device,
            )
            for _ in self.blocks
        ]

    def start_frames(self, text: torch.Tensor) -> None:
        """Empty the caches and encode the captions (B, text_len) into them (they see only themselves)."""
        tokens, cond = self._caption_inputs(text)
        rope = self._rope(self.positions(0, text.device))
        for block, cache in zip(self.blocks, self.frame_caches):
            cache.reset()
            tokens = block(tokens, cond, rope, cache=cache)
        cfg = self.cfg
        self.meter.add(
            text.shape[0] * forward_flops(self.token_weights, cfg.depth, cfg.dim, cfg.text_len, cfg.text_len)
        )

    def forward_frames(self, latents: torch.Tensor, levels: torch.Tensor, write: bool) -> torch.Tensor:
        """The velocity (B, D, c, h, w) of a chunk of c latent frames (levels (B, c)) placed after
        the held frames, seeing the caption and every held frame. ``write``: commit the chunk's
        keys and values (once per frame; the window rolls past its capacity)."""
        cfg, c = self.cfg, latents.shape[2]
        first = self.frame_caches[0].frames
        tokens, cond = self._frame_inputs(latents, levels)
        rope = self._rope(self.positions(first + c, latents.device))[
            cfg.text_len + first * cfg.frame_tokens :
        ]
        for block, cache in zip(self.blocks, self.frame_caches):
            tokens = block(tokens, cond, rope, cache=cache, write=write)
        self.meter.add(latents.shape[0] * self.forward_flops(c, first + c))
        return self._frame_outputs(tokens, cond, latents.shape)

    def num_params(self) -> int:
        return sum(q.numel() for q in self.parameters())

    def flops_per_example(self, frames: int) -> float:
        """Training FLOPs of one example of ``frames`` latent frames (forward + backward,
        vtlm.layers.flops): every token (caption and latent) goes through the blocks and the
        noise-level MLP and attends to all tokens; latent tokens also through the input and
        output layers."""
        return 3 * self.forward_flops(frames, frames)

    def forward_flops(self, queries: int, keys: int) -> float:
        """Forward FLOPs of ``queries`` latent frames (with the caption when ``queries`` equals
        ``keys``, a whole window; else frames decoded through the caches) attending to the
        caption and ``keys`` latent frames."""
        cfg = self.cfg
        frame_tokens = queries * cfg.frame_tokens
        tokens = frame_tokens + (cfg.text_len if queries == keys else 0)
        key_tokens = cfg.text_len + keys * cfg.frame_tokens
        body = forward_flops(
            matmul_weights(self.blocks, self.time_mlp), cfg.depth, cfg.dim, tokens, key_tokens
        )
        return body + frame_tokens * 2.0 * matmul_weights(self.latent_in, self.ada_out, self.latent_out)


def caption_batch(captions: list[list[int]], text_len: int, drop: torch.Tensor | None = None) -> torch.Tensor:
    """(B, text_len) caption ids padded with <pad>; dropped captions are all <pad>."""
    rows = []
    for b, ids in enumerate(captions):
        ids = [] if drop is not None and bool(drop[b]) else list(ids)[:text_len]
        rows.append(ids + [PAD_ID] * (text_len - len(ids)))
    return torch.tensor(rows, dtype=torch.long)
