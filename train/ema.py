"""Exponential moving average of a network's weights, kept beside the network."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """A frozen copy of ``model`` whose floating-point weights trail the model's:
    ``shadow = d * shadow + (1 - d) * weight`` after every :meth:`update`, with
    ``d = min(decay, (1 + n) / (10 + n))`` at update n, so short runs are not stuck near the
    initial weights. Buffers
    (e.g. a VQ codebook kept by EMA itself) are copied as they are. Saved in the
    owner's state dict, so resuming restores it."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay: expected a value in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        n = int(self.updates)
        decay = min(self.decay, (1 + n) / (10 + n))
        for mine, theirs in zip(self.shadow.parameters(), model.parameters()):
            mine.lerp_(theirs.detach(), 1.0 - decay)
        for mine, theirs in zip(self.shadow.buffers(), model.buffers()):
            mine.copy_(theirs)
        self.updates += 1

    def train(self, mode: bool = True) -> EMA:
        super().train(mode)
        self.shadow.eval()  # the average is only ever evaluated
        return self
