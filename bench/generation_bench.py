"""Generation cost: one 17x64x64 clip from a caption, by the GPT and by the diffusion baseline.

Both networks are the ``tiny`` preset (matched in parameters), hold the clip's 5 latent
frames in one window, and share one tokenizer at 4x8x8 compression; all weights are random
(speed does not depend on training). The GPT samples 5 x 64 codes with its KV cache (one
network evaluation per code, no guidance); the DiT integrates the flow with Euler at 10, 25
and 50 steps (one evaluation per step, no guidance; Heun takes 2 * steps - 1). Each is
measured through the Generator interface by :func:`vtlm.eval.cost.measure_generation`.

Quick mode (tests): the ``debug`` presets and tokenizer, 5x32x32 clips, one repeat.
"""

from __future__ import annotations

from pathlib import Path

from vtlm.diffusion.flow import SamplerConfig
from vtlm.eval.cost import measure_generation
from vtlm.generate.interface import load_generator

from .assets import NUM_FRAMES, RESOLUTION, bench_captions, generator_dirs

FPS = 8.0
STEPS = (10, 25, 50)


def _row(key: str, workload: str, cost: dict, **extra) -> dict:
    return {
        "id": key,
        "workload": workload,
        "unit": "s/clip",
        "vtlm": cost["seconds_per_clip"],
        "vtlm_spread": cost["seconds_per_clip_spread"],
        "peers": {},
        "cost": cost,
        **extra,
    }


def run_generation_bench(work_dir: Path, quick: bool = False) -> tuple[list[dict], list[str]]:
    """Rows (seconds per clip, with the full cost dict under ``cost``) and notes."""
    preset, tokenizer_preset = ("debug", "debug") if quick else ("tiny", "small")
    frames, side, repeats = (5, 32, 1) if quick else (NUM_FRAMES, RESOLUTION, 3)
    dirs = generator_dirs(work_dir / "bench_generators", preset, tokenizer_preset, side, frames)
    captions = bench_captions(1)
    clip = f"{frames}x{side}x{side}"
    shape = {"clip": clip, "preset": preset, "tokenizer_preset": tokenizer_preset, "fps": FPS, "batch": 1}

    rows = []
    gpt = load_generator(dirs.gpt)
    cost = measure_generation(gpt, captions, frames, seed=0, repeats=repeats, fps=FPS)
    rows.append(
        _row(
            "generation_gpt",
            f"generate {clip}: GPT {preset}, cached sampling",
            cost,
            shape=shape,
            sampler="KV cache, temperature 1, no top-k, no guidance",
        )
    )
    for steps in STEPS:
        diffusion = load_generator(dirs.diffusion, sampler=SamplerConfig(steps=steps, solver="euler"))
        cost = measure_generation(diffusion, captions, frames, seed=0, repeats=repeats, fps=FPS)
        rows.append(
            _row(
                f"generation_diffusion_euler{steps}",
                f"generate {clip}: DiT {preset}, Euler {steps} steps",
                cost,
                shape=shape,
                sampler=f"Euler, {steps} steps, no guidance",
                heun_nfe_per_window=SamplerConfig(steps=steps, solver="heun").nfe,
            )
        )
    notes = [
        "generation: Heun takes 2 * steps - 1 network evaluations per window against Euler's steps, "
        "so Heun at n steps costs about Euler at 2n - 1",
        "generation: time to first frame is one generate call of a single latent frame; a diffusion "
        "window of the whole clip delivers all its frames at the end (see vtlm.eval.cost)",
    ]
    return rows, notes
