"""RMSNorm and the SwiGLU MLP: the per-token layers of the GPT and the diffusion transformer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def linear(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """``layer(x)``, or ``x @ W^T`` from the transposed weight copy that ``keep_transposed`` made,
    when x is a single row: on CPU, MKL runs the row-major matrix-vector product on one thread,
    the (in, out) layout on all of them (the bench model's weights: 3.31 against 2.15 ms a token)."""
    transposed = getattr(layer, "transposed_weight", None)
    if transposed is not None and x.shape[:-1].numel() == 1:
        return x @ transposed
    return layer(x)


def keep_transposed(module: nn.Module, on: bool) -> None:
    """Give every Linear of ``module`` a contiguous (in, out) copy of its weight for single-row
    decoding (``on``), or drop the copies. Copies are made from the current weights: call again
    after the weights change."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            layer.transposed_weight = layer.weight.detach().t().contiguous() if on else None


class RMSNorm(nn.Module):
    """x / rms(x) * gain over the last dimension, computed in float32.

    Written out (square, sum, scale, rsqrt, two products) rather than ``F.rms_norm``, which on a
    CPU runs the same steps plus a mean's division and scalar conversions: 25 against 35 us a
    row (``make bench``'s decoding runs 13 a token). Float32 inputs skip the no-op casts."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x if x.dtype == torch.float32 else x.float()
        weight = self.weight if self.weight.dtype == torch.float32 else self.weight.float()
        scale = x32.square().sum(-1, keepdim=True).mul_(1 / x.shape[-1]).add_(self.eps).rsqrt_()
        y = x32 * scale * weight
        return y if y.dtype == x.dtype else y.to(x.dtype)


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x), hidden width rounded up to a multiple of 64."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = 64 * ((hidden + 63) // 64)
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)  # w1 and w3 in one matmul
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = linear(x, self.w13).chunk(2, dim=-1)
        return linear(F.silu(gate) * value, self.w2)
