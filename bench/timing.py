"""Timing for benchmarks: warm up, repeat, report the median and the spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Measurement:
    """Throughput of one workload: ``items`` processed per call, seconds per call over repeats."""

    name: str
    items: float
    unit: str
    seconds: list[float]

    @property
    def median_rate(self) -> float:
        return self.items / statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Relative spread of the rate: (max - min) / median of seconds per call."""
        return (max(self.seconds) - min(self.seconds)) / statistics.median(self.seconds)

    def to_dict(self) -> dict:
        return {**asdict(self), "median_rate": self.median_rate, "spread": self.spread}


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(
    name: str, fn: Callable[[], object], items: float, unit: str, warmup: int = 1, repeats: int = 5
) -> Measurement:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    for _ in range(warmup):
        fn()
    seconds = [timed(fn) for _ in range(repeats)]
    return Measurement(name=name, items=items, unit=unit, seconds=seconds)


def measure_in_turns(
    fns: dict[str, Callable[[], object]],
    items: float,
    unit: str,
    repeats: int = 5,
    after_round: Callable[[], object] | None = None,
    warmup: bool = True,
) -> dict[str, Measurement]:
    """``measure`` for several workloads compared with each other: each warmed up once (unless
    the caller did), then timed once per round in turn, ``repeats`` rounds (``after_round``
    called after each), so that every workload sees the same minutes of a machine whose speed
    drifts."""
    for fn in fns.values() if warmup else ():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds[name].append(timed(fn))
        if after_round is not None:
            after_round()
    return {name: Measurement(name=name, items=items, unit=unit, seconds=s) for name, s in seconds.items()}
