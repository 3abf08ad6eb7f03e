"""RMSNorm and the SwiGLU MLP: the per-token layers of the GPT and the diffusion transformer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """x / rms(x) * gain over the last dimension, computed in float32 (one fused op)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), self.weight.shape, self.weight.float(), self.eps).type_as(x)


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x), hidden width rounded up to a multiple of 64."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = 64 * ((hidden + 63) // 64)
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)  # w1 and w3 in one matmul
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * value)
