"""Throughput: seconds of video generated per second, by family and batch size, and each
family's best batch.

A user generating many clips cares about throughput, not one clip's latency: a batch shares
each network call's weight reads among its clips, so the GPT's batch-1 decoding (bound by
reading every weight once per token) gains most. Both networks are the bench's ``tiny``
generators (random weights, the 17x64x64 clip of the generation bench); the GPT samples with
its KV cache and no guidance, the DiT with 10 Euler steps. Each batch size is measured through
:func:`vtlm.eval.cost.measure_generation` (a warm-up call, then timed calls).

Quick mode (tests): the ``debug`` generators, 5x32x32 clips, batches 1 and 2, one repeat.
"""

from __future__ import annotations

from pathlib import Path

from vtlm.diffusion.flow import SamplerConfig
from vtlm.eval.cost import measure_generation
from vtlm.generate.interface import load_generator

from .assets import NUM_FRAMES, RESOLUTION, bench_captions, generator_dirs

FPS = 8.0
BATCHES = (1, 4, 16)


def run_throughput_bench(work_dir: Path, quick: bool = False) -> tuple[list[dict], list[str]]:
    """Rows (video seconds per second, one per family and batch) and a note per family naming
    its best batch."""
    preset, tokenizer_preset = ("debug", "debug") if quick else ("tiny", "small")
    frames, side, repeats = (5, 32, 1) if quick else (NUM_FRAMES, RESOLUTION, 2)
    batches = (1, 2) if quick else BATCHES
    dirs = generator_dirs(work_dir / "bench_generators", preset, tokenizer_preset, side, frames)
    families = {
        "gpt": (lambda: load_generator(dirs.gpt), "KV cache, no guidance"),
        "diffusion": (
            lambda: load_generator(dirs.diffusion, sampler=SamplerConfig(steps=10, solver="euler")),
            "Euler 10 steps, no guidance",
        ),
    }
    rows, notes = [], []
    for family, (load, sampler) in families.items():
        generator = load()
        rates = {}
        for batch in batches:
            captions = bench_captions(batch)
            cost = measure_generation(generator, captions, frames, seed=0, repeats=repeats, fps=FPS)
            rates[batch] = 1.0 / cost["seconds_per_video_second"]
            rows.append(
                {
                    "id": f"throughput_{family}_b{batch}",
                    "workload": f"throughput {frames}x{side}x{side}: {family} {preset}, batch {batch}",
                    "unit": "video s/s",
                    "vtlm": rates[batch],
                    "vtlm_spread": cost["seconds_per_clip_spread"],
                    "peers": {},
                    "batch": batch,
                    "family": family,
                    "sampler": sampler,
                    "cost": cost,
                }
            )
        best = max(rates, key=rates.get)
        notes.append(
            f"throughput: {family} {preset} ({sampler}) generates {rates[best]:.2f} seconds of {FPS:g} fps video "
            f"per second at its best batch, {best} of {list(batches)} ({rates[best] / rates[batches[0]]:.1f}x batch 1)"
        )
    return rows, notes
