"""The masked-decoding network: a pre-norm bidirectional transformer (RMSNorm, attention with
RoPE, SwiGLU) over [caption prefix | video codes], some codes replaced by the MASK id.

The network maps ids (B, N) at positions (N, 3) to logits over the codebook (B, N, codebook);
the token layout is the GPT's (``vtlm.gpt.vocab``) plus one embedding row for MASK. How it is
trained (objective.py) and sampled (sampling.py) lives apart. In the frame-causal layout the
caller passes ``frame_mask``'s block-causal mask, or decodes with the KV caches, frame by frame.
"""

from __future__ import annotations

import torch
from torch import nn

from vtlm.gpt.vocab import Vocab
from vtlm.layers.basic import RMSNorm
from vtlm.layers.block import Block, init_weights
from vtlm.layers.flops import FlopMeter, forward_flops, matmul_weights, training_flops
from vtlm.layers.masks import frame_causal_mask
from vtlm.layers.rope import rope_angles

from .config import MaskGITConfig


class MaskGIT(nn.Module):
    def __init__(self, cfg: MaskGITConfig):
        super().__init__()
        self.cfg = cfg
        self.vocab = Vocab(cfg.text_size, cfg.codebook_size)
        self.mask_id = self.vocab.size  # one row past the GPT's vocabulary: its ids are unchanged
        self.embed = nn.Embedding(self.vocab.size + 1, cfg.dim)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio, causal=False, backend=cfg.attention)
            for _ in range(cfg.depth)
        )
        self.norm = RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.codebook_size, bias=False)  # codes only: nothing else is predicted
        init_weights(self, self.blocks)
        self.meter = FlopMeter()  # forward FLOPs of every call (sampling costs)
        self.block_weights = matmul_weights(self.blocks)

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        start: int | None = None,
    ) -> torch.Tensor:
        """ids (B, N) int64 in [0, vocab.size] (vocab.size is MASK), positions (N, 3) int
        -> logits over the codebook (B, N, codebook_size) float.

        ``mask``: (N, N) bool attention mask (True: may attend), e.g. ``frame_mask``; None: full.
        ``start``: decoding with the caches set up; ids are positions [start, start + N) and see
        every cached position before them and each other.
        """
        return self.logits(self.hidden(ids, positions, mask, start))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output layer: hidden states (B, N, dim) -> logits (B, N, codebook_size), counted."""
        self.meter.add(2 * hidden.shape[0] * hidden.shape[1] * self.head.weight.numel())
        return self.head(hidden)

    def hidden(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        start: int | None = None,
    ) -> torch.Tensor:
        """The normalized last hidden states (B, N, dim) that ``head`` maps to logits (every call
        counted by ``meter``: the blocks here, the output layer in :meth:`logits`)."""
        rows, n = ids.shape
        cfg = self.cfg
        self.meter.add(rows * forward_flops(self.block_weights, cfg.depth, cfg.dim, n, (start or 0) + n))
        rope = rope_angles(
            positions.to(ids.device), self.cfg.dim // self.cfg.heads, self.cfg.rope, self.cfg.rope_base
        )
        if mask is not None:
            mask = mask.to(ids.device)
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, rope, start, mask)
        return self.norm(x)

    def frame_mask(self, frames: int, device=None) -> torch.Tensor | None:
        """The attention mask of [prefix | ``frames`` latent frames]: block-causal across frames
        when ``frame_causal`` (``vtlm.layers.masks.frame_causal_mask``), else None (full)."""
        if not self.cfg.frame_causal:
            return None
        return frame_causal_mask(self.cfg.prefix_len, self.cfg.frame_tokens, frames, device)

    def setup_caches(self, batch: int, length: int | None = None, dtype: torch.dtype | None = None) -> None:
        """Preallocate every layer's KV cache once, for ``batch`` sequences of ``length``."""
        weight = self.embed.weight
        for block in self.blocks:
            block.attn.setup_cache(batch, length or self.cfg.max_len, dtype or weight.dtype, weight.device)

    def num_params(self, embeddings: bool = True) -> int:
        total = sum(p.numel() for p in self.parameters())
        return total if embeddings else total - self.embed.weight.numel()

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward, vtlm.layers.flops): 6 per weight of the
        blocks and the output layer, plus attention over ``seq_len`` keys (a mask skips none)."""
        seq_len = seq_len or self.cfg.max_len
        return training_flops(
            matmul_weights(self.blocks, self.head), self.cfg.depth, self.cfg.dim, 1, seq_len
        )
