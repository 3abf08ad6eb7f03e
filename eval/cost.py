"""What a generation costs: seconds per clip, time to first frame, network evaluations, memory.

Everything here goes through the :class:`vtlm.generate.interface.Generator` protocol, so any
generator (autoregressive, diffusion, a peer wrapped in the protocol) is measured the same way:

- ``peak_memory(device)``: a context manager; on exit its ``mb`` holds the peak memory in MB
  above what was in use on entry (CUDA: allocated tensors; CPU: the process's resident set).
- ``measure_generation(generator, captions, num_frames, ...)``: one dict of cost figures.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from vtlm.generate.interface import Generator

_STATM = "/proc/self/statm"


@dataclass
class MemoryPeak:
    """Peak memory of a block above its start, filled when the block exits (None before, or
    where it cannot be measured: no ``/proc/self/statm`` on this CPU platform)."""

    device: str
    bytes: int | None = None

    @property
    def mb(self) -> float | None:
        return None if self.bytes is None else self.bytes / 2**20


class _ResidentSetSampler(threading.Thread):
    """Reads the resident set size of this process every ``interval`` seconds; keeps the max."""

    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.fd = os.open(_STATM, os.O_RDONLY)
        self.stop = threading.Event()
        self.peak = self.start_bytes = self.read()

    def read(self) -> int:
        # statm: size resident shared text lib data dt, in pages
        return int(os.pread(self.fd, 128, 0).split()[1]) * self.page

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.peak = max(self.peak, self.read())

    def finish(self) -> int:
        self.stop.set()
        self.join()
        self.peak = max(self.peak, self.read())
        os.close(self.fd)
        return self.peak - self.start_bytes


@contextmanager
def peak_memory(device: str | torch.device = "cpu", interval: float = 0.002) -> Iterator[MemoryPeak]:
    """Measure the peak memory of the block above the memory in use when it starts.

    CUDA devices: ``torch.cuda.max_memory_allocated`` after resetting the peak statistics on
    entry; exact for tensors allocated through PyTorch's caching allocator, blind to memory
    other libraries allocate themselves (cuBLAS workspaces, NCCL buffers).

    CPU: a background thread reads the process's resident set size (RSS) from
    ``/proc/self/statm`` every ``interval`` seconds (2 ms by default), and once more on exit;
    the peak minus the RSS on entry is reported. On entry, the C heap's free pages are handed
    back to the OS (glibc ``malloc_trim``), so memory freed earlier and reused in the block
    counts. Resolution: an allocation that lives shorter than the sampling period (in
    practice the interval plus Python's GIL switch interval of 5 ms while the measured code
    runs pure Python) can be missed; memory counts only once its pages are touched; where the
    heap cannot be trimmed (not glibc), memory kept from earlier allocations is reused without
    raising the RSS and the block can read low. The RSS is that of the whole process, so other
    threads' allocations during the block count too.

    Yields a :class:`MemoryPeak` whose ``bytes`` / ``mb`` are set when the block exits.
    """
    device = torch.device(device)
    result = MemoryPeak(str(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        try:
            yield result
        finally:
            torch.cuda.synchronize(device)
            result.bytes = torch.cuda.max_memory_allocated(device) - start
        return
    if device.type != "cpu":
        raise ValueError(f"device: expected a cpu or cuda device, got {device}")
    if not os.path.exists(_STATM):
        yield result  # not measurable here: bytes stays None
        return
    if interval <= 0:
        raise ValueError(f"interval: expected seconds > 0, got {interval}")
    _release_free_heap()
    sampler = _ResidentSetSampler(interval)
    sampler.start()
    try:
        yield result
    finally:
        result.bytes = sampler.finish()


def _release_free_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc's ``malloc_trim``; elsewhere nothing),
    so that memory freed before a block and reused in it raises the RSS again."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


def _device_of(generator: Generator) -> torch.device:
    """The device of the generator's network (its ``model`` attribute), else the CPU."""
    model = getattr(generator, "model", None)
    if isinstance(model, torch.nn.Module):
        for parameter in model.parameters():
            return parameter.device
    return torch.device("cpu")


def _params(generator: Generator) -> int | None:
    """Parameters of the generative network (``generator.model``); the tokenizer is not counted."""
    model = getattr(generator, "model", None)
    if isinstance(model, torch.nn.Module):
        return int(sum(p.numel() for p in model.parameters()))
    return None


def _meter(generator: Generator):
    """The FLOP meter of the generative network (``generator.model.meter``), else None."""
    return getattr(getattr(generator, "model", None), "meter", None)


def _timed_call(generator: Generator, device: torch.device, captions, num_frames, prefix, seed) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    video = generator.generate(captions, num_frames, prefix=prefix, seed=seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if video.shape[0] != len(captions) or video.shape[2] != num_frames:
        raise ValueError(
            f"generator: asked for {len(captions)} videos of {num_frames} frames, got shape {tuple(video.shape)}"
        )
    return seconds


def measure_generation(
    generator: Generator,
    captions: list[str],
    num_frames: int,
    prefix: torch.Tensor | None = None,
    seed: int = 0,
    repeats: int = 3,
    fps: float = 8.0,
    device: str | torch.device | None = None,
    warmup: bool = True,
) -> dict:
    """Cost of ``generator.generate(captions, num_frames, prefix, seed)``.

    One call of ``len(captions)`` videos is a *call*; a *clip* is one of its videos. The first
    call is a warm-up: it is not timed, and the peak memory is taken over it (everything one
    generation needs above what is held before it, including caches it allocates; weights and
    caches kept from earlier calls are not counted). Then ``repeats`` timed calls.

    Args:
        generator: anything with the Generator protocol.
        captions: one caption per video of a call.
        num_frames: frames per video, 1 + j * temporal_stride, more than the prefix.
        prefix: (B, 3, k, H, W) in [-1, 1], the given first frames, or None (from text alone).
        seed: the seed of every call.
        repeats: timed calls after the warm-up (>= 1).
        fps: frame rate the videos are played at, for seconds per second of video.
        device: where to measure memory and synchronize; by default the device of
            ``generator.model``'s parameters, else the CPU.
        warmup: make the untimed warm-up calls. Off only for a generator that has just run
            the same work (the harness right after it generated the protocol's clips): then
            the peak memory is taken over the first timed call.

    Returns a dict:
        ``seconds_per_clip``: median seconds of a call / clips per call; ``seconds_per_clip_spread``:
        (max - min) / median over the repeats; ``seconds``: each timed call.
        ``seconds_per_video_second``: seconds per clip / seconds of generated video (the frames
        after the prefix, at ``fps``). ``frames_per_second``: generated frames per second.
        ``time_to_first_frame``: median seconds of a call that generates only the first new
        latent frame: ``num_frames = k + temporal_stride`` after a prefix of k frames, 1 frame
        from text (warm-up, then ``repeats`` calls). For an autoregressive model this is the
        wait for the first frame of any longer video, since frames come out in order. For a
        diffusion model that denoises a whole window jointly it is the cost of a window of one
        latent frame, the same NFE over fewer tokens: a lower bound on the first-frame wait of
        a full clip, where every frame of the window arrives at the end. It is what a user
        waits for before seeing anything when generating frame by frame.
        ``function_evaluations``: ``generator.function_evaluations(num_frames, k)`` when the
        generator has it, else None. ``flops_per_clip``: the forward FLOPs the generative
        network ran for one clip, counted by its meter as the call went (``vtlm.layers.flops``;
        the tokenizer's decode, the same for every generator, is not counted), and
        ``flops_per_video_second``; None for a network without a meter. ``peak_memory_mb``: see :func:`peak_memory` (None where
        it cannot be measured). ``params``: parameters of ``generator.model`` (None without one).
        Also echoed: clips_per_call, num_frames, prefix_frames, generated_frames, repeats, fps,
        device.
    """
    if not captions:
        raise ValueError("captions: expected at least one caption, got an empty list")
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    if fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    k = 0 if prefix is None else prefix.shape[2]
    if num_frames <= k:
        raise ValueError(f"num_frames: expected more than the {k} prefix frames, got {num_frames}")
    device = torch.device(device) if device is not None else _device_of(generator)
    batch, generated = len(captions), num_frames - k

    def timed(frames: int, calls: int) -> list[float]:
        return [_timed_call(generator, device, captions, frames, prefix, seed) for _ in range(calls)]

    meter = _meter(generator)
    before = meter.total if meter is not None else None
    with peak_memory(device) as memory:
        first_call = timed(num_frames, 1)  # the warm-up, or the first timed call without one
    flops = (meter.total - before) / batch if meter is not None else None
    seconds = timed(num_frames, repeats) if warmup else first_call + timed(num_frames, repeats - 1)
    median = statistics.median(seconds)

    first_frames = k + generator.temporal_stride if k else 1
    if first_frames == num_frames:
        first = median
    else:
        if warmup:
            timed(first_frames, 1)
        first = statistics.median(timed(first_frames, repeats))

    count = getattr(generator, "function_evaluations", None)
    return {
        "seconds_per_clip": median / batch,
        "seconds_per_clip_spread": (max(seconds) - min(seconds)) / median,
        "seconds": seconds,
        "seconds_per_video_second": (median / batch) / (generated / fps),
        "frames_per_second": batch * generated / median,
        "time_to_first_frame": first,
        "function_evaluations": count(num_frames, k) if count is not None else None,
        "flops_per_clip": flops,
        "flops_per_video_second": flops / (generated / fps) if flops is not None else None,
        "peak_memory_mb": memory.mb,
        "params": _params(generator),
        "clips_per_call": batch,
        "num_frames": num_frames,
        "prefix_frames": k,
        "generated_frames": generated,
        "repeats": repeats,
        "warmup": warmup,
        "fps": fps,
        "device": str(device),
    }
