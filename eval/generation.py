"""Running a generator on a protocol's clips: batches, samples per clip, and the two ways of
extending a video past one clip.

``sliding``: one call for the whole length; the generator keeps several latent frames of
context as its window slides (what both vtlm generators do). ``chaining``: the image-to-video
route: generate one clip, restart from its last frame alone, repeat; each new clip sees one
frame of the past.
"""

from __future__ import annotations

from typing import Literal

import torch

from vtlm.generate.interface import Generator

Strategy = Literal["sliding", "chaining"]


def sample_seed(seed: int, sample: int, batch: int) -> int:
    """The seed of one generate call: distinct per (seed, sample, batch), stable across runs."""
    return seed * 1_000_003 + sample * 10_007 + batch


def generate_batched(
    generator: Generator,
    captions: list[str],
    num_frames: int,
    prefix: torch.Tensor | None,
    seed: int,
    sample: int,
    batch_size: int,
) -> torch.Tensor:
    """Videos (N, 3, num_frames, R, R) in [-1, 1], ``batch_size`` clips per call, on the CPU.

    ``prefix``: (N, 3, k, R, R) given frames or None (text only).
    """
    out = []
    for b, start in enumerate(range(0, len(captions), batch_size)):
        part = slice(start, start + batch_size)
        given = None if prefix is None else prefix[part]
        video = generator.generate(captions[part], num_frames, given, seed=sample_seed(seed, sample, b))
        out.append(video.float().cpu())
    return torch.cat(out)


def chain(
    generator: Generator,
    captions: list[str],
    prefix: torch.Tensor,
    total_frames: int,
    clip_frames: int,
    seed: int,
    sample: int,
    batch_size: int,
) -> torch.Tensor:
    """Last-frame chaining: videos (N, 3, >= total_frames, R, R); the first clip continues
    ``prefix``, every later one starts from the previous clip's last frame alone."""
    video = generate_batched(generator, captions, clip_frames, prefix, seed, sample, batch_size)
    link = 0
    while video.shape[2] < total_frames:
        link += 1
        last = video[:, :, -1:]
        clip = generate_batched(
            generator, captions, clip_frames, last, seed + 7919 * link, sample, batch_size
        )
        video = torch.cat([video, clip[:, :, 1:]], dim=2)
    return video[:, :, :total_frames]


def extend(
    generator: Generator,
    strategy: Strategy,
    captions: list[str],
    prefix: torch.Tensor,
    total_frames: int,
    clip_frames: int,
    seed: int,
    sample: int,
    batch_size: int,
) -> torch.Tensor:
    """A long rollout by ``strategy``: (N, 3, total_frames, R, R)."""
    if strategy == "sliding":
        return generate_batched(generator, captions, total_frames, prefix, seed, sample, batch_size)
    if strategy == "chaining":
        return chain(generator, captions, prefix, total_frames, clip_frames, seed, sample, batch_size)
    raise ValueError(f"strategy: expected 'sliding' or 'chaining', got {strategy!r}")


class _Recorded:
    """A generator whose calls are listed as (num_frames, prefix_frames) in ``calls``."""

    def __init__(self, generator: Generator, calls: list[tuple[int, int]]):
        self.generator, self.calls = generator, calls

    def generate(self, captions, num_frames, prefix=None, seed=0):
        self.calls.append((num_frames, 0 if prefix is None else prefix.shape[2]))
        return self.generator.generate(captions, num_frames, prefix, seed=seed)


class Rollout:
    """A generator run the way a rollout protocol runs it: ``generate(captions, num_frames,
    prefix)`` goes through :func:`extend` by ``strategy``, so the cost of a long video
    (seconds, network evaluations, memory) is measured on what the rollout really does.

    Calls of at most ``clip_frames`` frames (e.g. the time-to-first-frame call) go to the
    generator directly: both strategies start with one such clip. ``function_evaluations``
    sums the generator's own count over the calls the last ``generate`` of that length made
    (None when the generator has no count). ``model`` is the generator's network, for the
    parameter count and device.
    """

    def __init__(self, generator: Generator, strategy: Strategy, clip_frames: int, batch_size: int):
        if strategy not in ("sliding", "chaining"):
            raise ValueError(f"strategy: expected 'sliding' or 'chaining', got {strategy!r}")
        self.generator, self.strategy = generator, strategy
        self.clip_frames, self.batch_size = clip_frames, batch_size
        self.temporal_stride, self.resolution = generator.temporal_stride, generator.resolution
        self.model = getattr(generator, "model", None)
        self._calls: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def generate(self, captions, num_frames, prefix=None, seed=0) -> torch.Tensor:
        """Videos (B, 3, num_frames, R, R) in [-1, 1], as ``extend`` makes them (sample 0)."""
        calls: list[tuple[int, int]] = []
        recorded = _Recorded(self.generator, calls)
        if num_frames <= self.clip_frames:
            video = recorded.generate(captions, num_frames, prefix, seed=seed)
        else:
            video = extend(
                recorded,
                self.strategy,
                captions,
                prefix,
                num_frames,
                self.clip_frames,
                seed,
                0,
                self.batch_size,
            )
        self._calls[(num_frames, 0 if prefix is None else prefix.shape[2])] = calls
        return video

    @property
    def function_evaluations(self):
        count = getattr(self.generator, "function_evaluations", None)
        if count is None:
            return None

        def total(num_frames: int, prefix_frames: int = 0) -> int:
            calls = self._calls.get((num_frames, prefix_frames))
            if calls is None:
                raise ValueError(f"no rollout of {num_frames} frames after {prefix_frames} was generated yet")
            return sum(count(n, k) for n, k in calls)

        return total
