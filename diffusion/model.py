"""The diffusion transformer (DiT): bidirectional attention over [caption | latent patches],
adaLN-zero conditioning on a noise level *per token*, built from the GPT's shared layers.

Each latent frame carries its own noise level, so a clean prefix (continuation) is just
frames at level 0, and a later frame-causal variant needs no change to the network. The
network predicts a velocity (or noise) of the same shape as its input; the objective and the
samplers live in ``flow.py`` and take the network as a callable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vtlm.layers.attention import Attention
from vtlm.layers.basic import SwiGLU
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

    def forward(self, x: torch.Tensor, cond: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(cond)).chunk(6, dim=-1)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1, rope)
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

    def forward(self, latents: torch.Tensor, levels: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        cfg, p = self.cfg, self.cfg.patch
        b, _, t, h, w = latents.shape
        x = rearrange(latents, "b d t (h p) (w q) -> b (t h w) (d p q)", p=p, q=p)
        tokens = torch.cat([self.text_embed(text), self.latent_in(x)], dim=1)
        # per-token conditioning: caption tokens at level 0, each latent frame at its own level
        frame_levels = levels.repeat_interleave(cfg.frame_tokens, dim=1)  # (B, t * frame tokens)
        all_levels = torch.cat([levels.new_zeros(b, cfg.text_len), frame_levels], dim=1)
        cond = self.time_mlp(timestep_features(all_levels, cfg.dim))
        rope = rope_angles(self.positions(t, latents.device), cfg.dim // cfg.heads, cfg.rope, cfg.rope_base)
        for block in self.blocks:
            tokens = block(tokens, cond, rope)
        shift, scale = self.ada_out(F.silu(cond)).chunk(2, dim=-1)
        out = self.latent_out(self.norm_out(tokens) * (1 + scale) + shift)[:, cfg.text_len :]
        return rearrange(out, "b (t h w) (d p q) -> b d t (h p) (w q)", t=t, h=h // p, w=w // p, p=p, q=p)

    def num_params(self) -> int:
        return sum(q.numel() for q in self.parameters())

    def flops_per_example(self, frames: int) -> float:
        """Training FLOPs of one example (forward + backward): 6 * parameters in the blocks per
        token + attention, over caption + latent tokens."""
        tokens = self.cfg.text_len + frames * self.cfg.frame_tokens
        block_params = sum(q.numel() for q in self.blocks.parameters())
        return tokens * (6 * block_params + 12 * self.cfg.depth * self.cfg.dim * tokens)


def caption_batch(captions: list[list[int]], text_len: int, drop: torch.Tensor | None = None) -> torch.Tensor:
    """(B, text_len) caption ids padded with <pad>; dropped captions are all <pad>."""
    rows = []
    for b, ids in enumerate(captions):
        ids = [] if drop is not None and bool(drop[b]) else list(ids)[:text_len]
        rows.append(ids + [PAD_ID] * (text_len - len(ids)))
    return torch.tensor(rows, dtype=torch.long)
