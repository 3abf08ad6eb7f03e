"""What caps a batch-1 GPT sampler on this machine, measured beside it (``gpt_bench``).

- the float32 matmul peak (for MFU, measured in turns with the training steps it judges) and
  the copy bandwidth (for the memory-bandwidth bound);
- the matmul floor: the batch-1 matrix-vector products alone, every Linear weight read once
  per token as a cached decoding step must;
- the decode floor: those products with each block's attention over ``context`` cached keys and
  values between them, bare, in the step's order, the work no cached decoder can skip.

Both floors take the faster of two weight layouts (row-major (out, in) as stored, or a
transposed (in, out) copy) and the median of their repeats. ``sample_with_floors`` measures
them in turns with the samples they judge, since a shared machine's speed drifts over minutes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from vtlm.gpt.model import GPT

from .timing import Measurement, measure_in_turns, timed

ATTENTION = "attention"  # marks where a block's attention sits among the floor's operators


def matmul_peak(size: int = 1024, repeats: int = 5) -> float:
    """float32 FLOP/s of a square matmul on this machine, the best of a few tries."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        best = min(best, (time.perf_counter() - start) / 4)
    return 2 * size**3 / best


def utilization(flops_per_item: float, measurement: Measurement, peaks: list[float]) -> float:
    """The median over repeats of (FLOP/s of that call) / (the peak measured in the same round,
    ``timing.measure_in_turns``): a shared machine drifts, and a peak measured minutes away
    once made a training step read at 115% of it."""
    rates = [flops_per_item * measurement.items / s for s in measurement.seconds]
    return statistics.median(rate / peak for rate, peak in zip(rates, peaks))


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second moved by a large tensor copy (read + write)."""
    src = torch.empty(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(timed(lambda: dst.copy_(src)) for _ in range(repeats))
    return 2 * src.numel() * 4 / best


def matmul_floor(model: torch.nn.Module, repeats: int = 20) -> float:
    """Tokens per second of the model's batch-1 matrix-vector products alone: every Linear
    weight once per token, in order, in its own dtype."""
    return _floor([m for m in model.modules() if isinstance(m, torch.nn.Linear)], repeats)


def decode_floor(model: GPT, context: int, repeats: int = 20) -> float:
    """Tokens per second of a cached decoding step's unskippable work at ``context`` cached
    positions: per block, the qkv product, attention of one query over ``context`` keys and
    values (SDPA, the cache's layout), then the output and MLP products; then the output layer.
    Bare operators in the step's order, so the cache reads compete with the weight reads as they
    do in decoding. Attention's cost grows linearly with the context, so the mean context of a
    run stands for it."""
    order = [op for b in model.blocks for op in (b.attn.qkv, ATTENTION, b.attn.proj, b.mlp.w13, b.mlp.w2)]
    head_dim = model.cfg.dim // model.cfg.heads
    return _floor(order + [model.head], repeats, (model.cfg.heads, head_dim, context))


def _floor(order: list, repeats: int, attention: tuple[int, int, int] | None = None) -> float:
    """1 / the median seconds of one pass over ``order`` (Linear layers and ``ATTENTION``
    marks, the latter with (heads, head_dim, context)), in the faster weight layout."""
    linears = [op for op in order if op != ATTENTION]
    dtype = linears[-1].weight.dtype
    inputs = {(m.weight.shape[1], m.weight.dtype): torch.randn(1, m.weight.shape[1], dtype=m.weight.dtype)
              for m in linears}  # fmt: skip
    cache = []
    if attention is not None:
        heads, head_dim, context = attention
        query = torch.randn(1, heads, 1, head_dim, dtype=dtype)
        cache = [
            torch.randn(1, heads, context, head_dim, dtype=dtype) for _ in range(2 * order.count(ATTENTION))
        ]
    stored = [op if op == ATTENTION else op.weight.detach() for op in order]
    flipped = [op if op == ATTENTION else op.weight.detach().t().contiguous() for op in order]

    def one_pass(ops: list, transposed: bool) -> None:
        kv = iter(cache)
        for op in ops:
            if isinstance(op, str):
                F.scaled_dot_product_attention(query, next(kv), next(kv))
            elif transposed:
                inputs[(op.shape[0], op.dtype)] @ op
            else:
                F.linear(inputs[(op.shape[1], op.dtype)], op)

    best = float("inf")
    with torch.no_grad():
        for ops, transposed in ((stored, False), (flipped, True)):
            one_pass(ops, transposed)
            times = sorted(timed(lambda o=ops, t=transposed: one_pass(o, t)) for _ in range(repeats))
            best = min(best, times[len(times) // 2])
    return 1 / best


def sample_with_floors(
    model: GPT,
    samples: dict[str, Callable[[], object]],
    new: int,
    context: int,
    repeats: int,
    warmup: bool = True,
) -> tuple[dict[str, Measurement], dict]:
    """The rates of ``samples`` (each call decodes ``new`` tokens: ``model``'s sampler, and
    peers' to compare with it) and the two floors of ``model``'s weights, measured in turns
    (``timing.measure_in_turns``: each sample once, then each floor, ``repeats`` rounds; warm-ups
    and any compiling first, unless the caller did them), so that all see the same moments of
    the machine. Returns the
    measurements by name and {"matmul_floor", "decode_floor", "decode_floor_context"}: the
    floors' medians in tokens/s, the decode floor at ``context``."""
    matmuls, decodes = [], []

    def floors_now() -> None:
        matmuls.append(matmul_floor(model, repeats=5))
        decodes.append(decode_floor(model, context, repeats=5))

    rates = measure_in_turns(samples, new, "tokens/s", repeats, floors_now, warmup)
    floors = {
        "matmul_floor": statistics.median(matmuls),
        "decode_floor": statistics.median(decodes),
        "decode_floor_context": context,
    }
    return rates, floors


def floor_fractions(rate: float, floors: dict) -> dict:
    """The floors (``sample_with_floors``) and the fractions of them that ``rate`` reaches."""
    if not floors:
        return {}
    return {
        **floors,
        "fraction_of_floor": rate / floors["matmul_floor"],
        "fraction_of_decode_floor": rate / floors["decode_floor"],
    }
