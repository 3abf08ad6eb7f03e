"""Watching a run's numerical health: the gradient norm of every step, and its spikes."""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Iterable

import torch

log = logging.getLogger(__name__)


class GradNormWatch:
    """Measures (and optionally clips) the global gradient norm at every optimizer step, and
    warns when it spikes: above ``factor`` times the median of the last ``window`` steps' norms
    (once ``min_history`` steps are known), or non-finite.

    Args:
        name: what is trained, for the warnings (``gpt``, ``tokenizer``, ...).
        factor: a norm above ``factor`` x the running median is a spike.
        window: steps the running median covers.
        min_history: steps seen before spikes are judged.

    ``spikes`` counts the spikes seen. Reading the norm synchronizes with the device once per
    step.
    """

    def __init__(self, name: str, factor: float = 10.0, window: int = 100, min_history: int = 10):
        if factor <= 1:
            raise ValueError(f"factor: expected > 1, got {factor}")
        if window < 1 or not 1 <= min_history <= window:
            raise ValueError(
                f"window, min_history: expected 1 <= min_history <= window, got {window}, {min_history}"
            )
        self.name, self.factor, self.min_history = name, factor, min_history
        self.history: deque[float] = deque(maxlen=window)
        self.spikes = 0

    def __call__(
        self, parameters: Iterable[torch.nn.Parameter], max_norm: float | None, step: int
    ) -> torch.Tensor:
        """The global L2 norm of the parameters' gradients before clipping (a 0-dim tensor);
        gradients are scaled down to ``max_norm`` when it is set and exceeded."""
        params = [p for p in parameters if p.grad is not None]
        if not params:
            return torch.zeros(())
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if max_norm:
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
        self.observe(float(norm), step)
        return norm

    def observe(self, norm: float, step: int) -> bool:
        """Record one step's norm; True (and a warning) when it is a spike."""
        if not math.isfinite(norm):
            self.spikes += 1
            log.warning("%s: non-finite gradient norm %s at step %d", self.name, norm, step)
            return True
        spike = False
        if len(self.history) >= self.min_history:
            median = statistics.median(self.history)
            if norm > self.factor * median:
                spike = True
                self.spikes += 1
                log.warning(
                    "%s: gradient norm %.4g at step %d is %.1fx the median %.4g of the last %d steps",
                    self.name,
                    norm,
                    step,
                    norm / median if median > 0 else math.inf,
                    median,
                    len(self.history),
                )
        self.history.append(norm)
        return spike
