"""The pre-norm transformer block shared by the token families (GPT, masked decoding).

``x + attn(norm1(x))``, then ``+ mlp(norm2(x))``: RMSNorm, self-attention with RoPE (causal or
bidirectional, optionally an explicit mask), SwiGLU. The attribute names (``norm1``, ``attn``,
``norm2``, ``mlp``) are the checkpoint keys of every model built from it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import Attention, StaticKV
from .basic import RMSNorm, SwiGLU
from .rolling_cache import RollingKV


class Block(nn.Module):
    """One transformer layer of width ``dim``; the MLP is ``mlp_ratio * dim`` wide (SwiGLU)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, causal: bool, backend: str = "auto"):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
        self.attn = Attention(dim, heads, causal=causal, backend=backend)
        self.mlp = SwiGLU(dim, int(mlp_ratio * dim))

    def forward(
        self,
        x: torch.Tensor,
        rope: torch.Tensor,
        start: int | torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        cache: RollingKV | StaticKV | None = None,
    ) -> torch.Tensor:
        """x (B, N, C) -> (B, N, C); ``rope``, ``start`` and ``mask`` as in ``Attention.forward``.

        ``cache``: decode through this rolling or static cache (slots from ``start``) instead
        of the attention's own KV cache."""
        h = self.norm1(x)
        if cache is None:
            x = x + self.attn(h, rope, start, mask)
        else:
            x = x + cache.attend(self.attn, h, rope, start, mask)
        return x + self.mlp(self.norm2(x))


def init_weights(model: nn.Module, blocks: nn.ModuleList) -> None:
    """GPT-2's initialization: every Linear and Embedding weight ~ N(0, 0.02), then each
    residual branch's output projection (attention ``proj``, MLP ``w2``) of ``blocks`` scaled
    down by sqrt(2 * depth), so the residual stream's variance does not grow with depth."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
    for block in blocks:
        for proj in (block.attn.proj, block.mlp.w2):
            nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(blocks)))
