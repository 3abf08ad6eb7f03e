"""FLOPs of a transformer, counted the same way for every family.

Convention (Kaplan et al. 2020, Hoffmann et al. 2022): a multiply-add is 2 FLOPs; a token's
forward pass costs 2 FLOPs per weight it is multiplied by (every ``nn.Linear`` it goes through;
embeddings are lookups, norms, biases and activations elementwise and not counted), plus
attention: per layer, scores and the weighted sum of values, 2 * 2 * keys * dim. The backward
pass costs twice the forward, so training is 3x the forward. Attention counts every key a query
may see under its mask as if none were masked (a causal mask saves half in principle, not in
SDPA's dense kernels); sampling counts the keys actually held in the cache.
"""

from __future__ import annotations

from torch import nn


def matmul_weights(*modules: nn.Module) -> int:
    """Weights of the ``nn.Linear`` layers in ``modules`` (each counted once, even if shared)."""
    seen, total = set(), 0
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, nn.Linear) and id(layer.weight) not in seen:
                seen.add(id(layer.weight))
                total += layer.weight.numel()
    return total


def forward_flops(weights: int, depth: int, dim: int, queries: float, keys: float) -> float:
    """Forward FLOPs of ``queries`` tokens through ``weights`` matmul weights and ``depth``
    attention layers of width ``dim``, each query attending to ``keys`` keys on average."""
    return queries * (2.0 * weights + 4.0 * depth * dim * keys)


def training_flops(weights: int, depth: int, dim: int, tokens: float, keys: float) -> float:
    """Forward + backward FLOPs: three times the forward."""
    return 3.0 * forward_flops(weights, depth, dim, tokens, keys)


class FlopMeter:
    """Forward FLOPs a network has run, added call by call (a network keeps one as ``meter``).

    Sampling costs are read from it: the meter's total after a generation minus before, so
    every decoding schedule (cached, rolling, re-encoded windows, parallel, guidance's doubled
    batch) is counted as it actually ran, by the convention above.
    """

    def __init__(self):
        self.total = 0.0

    def add(self, flops: float) -> None:
        self.total += float(flops)
