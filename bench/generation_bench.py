"""Generation cost: one 17x64x64 clip from a caption, by the GPT and by the diffusion baseline.

Both networks are the ``tiny`` preset (matched in parameters), hold the clip's 5 latent
frames in one window, and share one tokenizer at 4x8x8 compression; all weights are random
(speed does not depend on training). The GPT samples 5 x 64 codes with its KV cache (one
network evaluation per code, no guidance); the DiT integrates the flow with Euler at 10, 25
and 50 steps (one evaluation per step, no guidance; Heun takes 2 * steps - 1). Each is
measured through the Generator interface by :func:`vtlm.eval.cost.measure_generation`.

The GPT's decoding options, on the same network, sampling codes only (the tokenizer's decode
is the same for all of them, so it is left out of these timings): a 4x rollout (4x the window
in latent frames, sliding) re-encoding the window per new frame against the rolling KV cache,
speculative Jacobi decoding (greedy and temperature 1) and rows in parallel (ZipAR / diagonal,
at lags 1 and 2) against the plain sampler on one window, with their sequential network calls
per clip. The variants being compared are timed in turns, so load on a shared machine falls on
all of them. With random weights the model's next tokens are not those of the previous frame,
so Jacobi accepts few guesses here: its calls per clip measure the schedule's floor, not what a
trained model reaches; rows in parallel change the distribution, and their quality is the
harness's to judge (a sweep over row_lag).

Quick mode (tests): the ``debug`` presets and tokenizer, 5x32x32 clips, one repeat.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from vtlm.diffusion.flow import SamplerConfig
from vtlm.eval.cost import measure_generation
from vtlm.generate.interface import load_generator
from vtlm.generate.pairing import caption_ids
from vtlm.gpt.sampling import SamplingConfig, sample_codes
from vtlm.gpt.stream import network_calls

from .assets import NUM_FRAMES, RESOLUTION, bench_captions, generator_dirs

FPS = 8.0
STEPS = (10, 25, 50)
ROLLOUT = 4  # the long rollout: this many windows of latent frames
ROW_LAGS = (1, 2)  # rows in parallel: 1 is diagonal decoding


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
    gpt_rows, gpt_notes = gpt_decoding_rows(gpt, captions, repeats, shape)
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
    rows += gpt_rows
    notes = gpt_notes + [
        "generation: Heun takes 2 * steps - 1 network evaluations per window against Euler's steps, "
        "so Heun at n steps costs about Euler at 2n - 1",
        "generation: time to first frame is one generate call of a single latent frame; a diffusion "
        "window of the whole clip delivers all its frames at the end (see vtlm.eval.cost)",
    ]
    return rows, notes


def _timed_in_turns(model, ids, frames: int, configs: dict[str, SamplingConfig], repeats: int) -> dict:
    """Per config: median seconds and network calls of sampling ``frames`` latent frames of
    codes, after one warm-up call each; the configs take turns in every repeat."""
    seconds = {name: [] for name in configs}
    calls = {}
    for repeat in range(repeats + 1):
        for name, cfg in configs.items():
            generator = torch.Generator().manual_seed(repeat)
            start = time.perf_counter()
            with network_calls(model) as count:
                sample_codes(model, ids, frames, cfg, generator=generator)
            if repeat:  # the first turn warms up
                seconds[name].append(time.perf_counter() - start)
            calls.setdefault(name, []).append(count[0])
    return {
        name: {
            "seconds": statistics.median(seconds[name]),
            "spread": (max(seconds[name]) - min(seconds[name])) / statistics.median(seconds[name]),
            "calls": statistics.mean(calls[name]),
        }
        for name in configs
    }


def _codes_row(key: str, workload: str, timing: dict, **extra) -> dict:
    return {
        "id": key,
        "workload": workload,
        "unit": "s/clip",
        "vtlm": timing["seconds"],
        "vtlm_spread": timing["spread"],
        "peers": {},
        "network_calls": timing["calls"],
        **extra,
    }


def gpt_decoding_rows(gpt, captions: list[str], repeats: int, shape: dict) -> tuple[list[dict], list[str]]:
    """Rows and notes of the GPT's decoding options (codes only, batch 1): the 4x rollout
    re-encoding the window or rolling the cache, and Jacobi against the plain sampler."""
    m, model = gpt.cfg, gpt.model
    ids = caption_ids(gpt.text, captions, m.text_len)
    grid = f"{m.grid_h}x{m.grid_w}"
    frames = ROLLOUT * m.max_frames
    runs = _timed_in_turns(
        model,
        ids,
        frames,
        {"reencode": SamplingConfig(), "rolling": SamplingConfig(rolling_cache=True)},
        repeats,
    )
    speedup = runs["reencode"]["seconds"] / runs["rolling"]["seconds"]
    what = f"GPT {ROLLOUT}x rollout, {frames}x{grid} latents, window {m.max_frames}"
    rows = [
        _codes_row("generation_gpt_rollout_reencode", f"{what}: re-encode", runs["reencode"], shape=shape),
        _codes_row(
            "generation_gpt_rollout_rolling",
            f"{what}: rolling cache",
            runs["rolling"],
            shape=shape,
            speedup_vs_reencode=speedup,
        ),
    ]
    notes = [
        f"generation: {what}: the rolling cache {speedup:.2f}x the speed of re-encoding the window "
        f"({runs['rolling']['seconds']:.2f} s against {runs['reencode']['seconds']:.2f} s of codes per clip; "
        f"{runs['rolling']['calls']:.0f} network calls each)"
    ]
    window = min(8, m.frame_tokens)
    for temperature in (0.0, 1.0):
        plain = SamplingConfig(temperature=temperature)
        schedules = {f"Jacobi, {window} per call": replace(plain, jacobi_window=window)}
        if temperature:  # rows in parallel do not depend on the temperature: once
            schedules.update(
                {f"rows in parallel, lag {lag}": replace(plain, row_lag=lag) for lag in ROW_LAGS}
            )
        runs = _timed_in_turns(model, ids, m.max_frames, {"plain": plain, **schedules}, repeats)
        label = "greedy" if temperature == 0 else f"temperature {temperature:g}"
        what = f"GPT {m.max_frames}x{grid} latents, {label}"
        for name, cfg in schedules.items():
            speedup = runs["plain"]["seconds"] / runs[name]["seconds"]
            key = f"jacobi_t{temperature:g}" if cfg.jacobi_window > 1 else f"rows_lag{cfg.row_lag}"
            rows.append(
                _codes_row(
                    f"generation_gpt_{key}",
                    f"{what}: {name}",
                    runs[name],
                    shape=shape,
                    jacobi_window=cfg.jacobi_window,
                    row_lag=cfg.row_lag,
                    sequential_calls=runs["plain"]["calls"],
                    sequential_seconds=runs["plain"]["seconds"],
                    speedup_vs_sequential=speedup,
                )
            )
            caveat = (
                "random weights: few guesses are accepted"
                if cfg.jacobi_window > 1
                else "quality not measured here"
            )
            notes.append(
                f"generation: {what}: {name}: {runs[name]['calls']:.0f} sequential network calls per clip "
                f"against {runs['plain']['calls']:.0f}, at {speedup:.2f}x the plain sampler's speed ({caveat})"
            )
    return rows, notes
