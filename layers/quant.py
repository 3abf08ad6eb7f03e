"""Int8 weight-only linear layers, for decoding with a quarter of the weight bytes.

Each weight row (output channel) is stored as int8 with one float scale, symmetric:
``w ~ w_int8 * scale``, scale = max |w| of the row / 127. Activations stay in floating point;
the product runs in torch's int8-weight matmul (``torch._weight_int8pack_mm``), so no float
copy of the weights is made. Batch-1 decoding reads every weight once per token: a quarter of
the bytes is what can make it faster where the weights do not fit the CPU's caches and the
kernel is fast. On the AVX2 development CPU (no AVX-512 / VNNI) it is not: batch-1 sampling of
the bench GPT ran at 0.55x the float32 rate, and 64-row products 35-70x slower. The rounding
error of a weight is at most half a step, scale / 2.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class Int8Linear(nn.Module):
    """A frozen ``nn.Linear`` with int8 weights and per-row scales (inference only).

    Input (..., in_features) float32 / bfloat16 / float16; output (..., out_features), same dtype.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        out = torch._weight_int8pack_mm(flat.contiguous(), self.weight, self.scale.to(x.dtype))
        if self.bias is not None:
            out = out + self.bias.to(x.dtype)
        return out.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 weights"


def int8_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with every ``nn.Linear`` an :class:`Int8Linear`
    (embeddings, norms and everything else as they were); ``model`` is left unchanged."""
    quantized = copy.deepcopy(model).eval()
    for module in list(quantized.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, child_name, Int8Linear(child))
    return quantized


def is_int8(model: nn.Module) -> bool:
    """Whether ``model`` holds int8 linear layers (made by :func:`int8_copy`)."""
    return any(isinstance(m, Int8Linear) for m in model.modules())


def weight_bytes(model: nn.Module) -> int:
    """Bytes of weights one decoding step reads: every linear layer's weight (int8 ones with their
    scales) and bias, norms and the other parameters, each tensor once; an embedding table only
    where a linear layer shares it (a tied output layer), since a step reads one row of it."""
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            continue
        tensors = list(module.parameters(recurse=False))
        if isinstance(module, Int8Linear):
            tensors += [module.weight, module.scale, module.bias]
        for t in tensors:
            if t is not None and id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total
