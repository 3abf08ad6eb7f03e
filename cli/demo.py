"""``vtlm demo``: the researcher workflow end to end on built-in data, on CPU.

The stages run in order and print where their output is:

1. write the built-in ``shapes`` dataset (1-2 shapes, collisions) as mp4 files, inspect it;
2. read it back through the real-file path in batches that mix images and videos;
3. train a SentencePiece caption model;
4. train the causal 3-D tokenizer (9x32x32 clips -> 3x8x8 FSQ codes);
5. tokenize train / val / test once into token shards;
6. train the GPT and the diffusion baseline on the shards, at matched parameters (within
   5%) and the same number of training steps (``--families`` adds frame-causal diffusion and
   masked parallel decoding, or picks any of the four);
7. run the evaluation harness on them (reconstruction, text-to-video, continuation of 5
   frames, 4x-long rollouts by sliding window and by last-frame chaining, a diffusion-steps
   and temperature sweep in the quick run) and write its report: OUT/eval/report.html, report.md,
   results.json and sample grids under OUT/eval/samples/.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.eval.generators import describe
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .diffusion_cmds import DiTOverrides
from .diffusion_cmds import fit as fit_diffusion
from .forcing_cmds import fit as fit_forcing
from .gpt_cmds import GPTOverrides
from .gpt_cmds import fit as fit_gpt
from .maskgit_cmds import MaskGITOverrides
from .maskgit_cmds import fit as fit_maskgit
from .world import TOKENIZER_STEPS, Clock, WorldConfig, prepare_world

if TYPE_CHECKING:
    from vtlm.eval.harness import EvalConfig

# Generator presets of the full run, matched within 5% of parameters on that vocabulary. At a
# few CPU minutes the ~1.25M `mini` models beat the 3-4.5M `tiny` ones (measured on this data,
# 4 minutes each: GPT validation loss 1.62 against 1.81 nats per video token, DiT flow loss
# 0.670 against 0.736, and the DiT's text-to-video clips went from mostly wrong colors to the
# captioned ones in 3 of 4 rows).
GENERATOR_PRESET = "mini"
# Training budgets of the full run, in steps (the learning-rate schedule decays over exactly these
# steps; the tokenizer's, TOKENIZER_STEPS, belongs to the world), so a seed gives the same figures
# on any machine. Chosen for about 15 minutes end to end on the 2-core machine vtlm is developed
# on (2 threads, nothing else running): the README has the measured times, stage by stage.
GENERATOR_STEPS = 400
# Held-out clips the evaluation judges, one sample each (a quarter for the 4x rollouts). At 64,
# the two demo seeds' paired tests detect about 0.85 dB of text-to-video PSNR and 0.07 SSIM, and
# the 16 rollouts about 1-1.2 dB (32 clips: 1.1-1.5 dB, 8 rollouts: 1.6-2.8 dB); a smaller true
# gap needs about (detectable / gap)^2 times as many clips.
EVAL_CLIPS = 64
# The generator families the demo can train; `make demo` compares the first two.
FAMILIES = ("gpt", "diffusion", "forcing", "maskgit")
# The quick run's sampling sweep on the continuation protocol: one point per family.
QUICK_SWEEPS = {
    "gpt": {"temperature": [0.7]},
    "diffusion": {"steps": [3]},
    "forcing": {"context_noise": [0.0]},
    "maskgit": {"steps": [4]},
}
# `--anti_drift`: each family's sampling-time anti-drift options, run on the rollout protocol by
# both strategies beside the defaults (GPT and masked decoding: the context re-encoded through
# the tokenizer; frame-causal diffusion: clean context, and more context noise than the default).
ANTI_DRIFT_SWEEPS = {
    "gpt": {"reencode_context": [True]},
    "maskgit": {"reencode_context": [True]},
    "forcing": {"context_noise": [0.0, 0.3]},
}


def _family_fits(quick: bool) -> dict[str, tuple]:
    """Per family: its fit command, its model overrides and its optimizer. The token families
    (GPT, masked decoding) share one recipe, the latent ones (DiT, frame-causal DiT) another;
    the learning rates were tuned on the GPT and the DiT (the other two take their sibling's)."""
    warmup = 5 if quick else 40
    tokens = OptimConfig(lr=2e-3, weight_decay=0.1, betas=(0.9, 0.95), warmup_steps=warmup)
    latents = OptimConfig(lr=1e-3, betas=(0.9, 0.95), warmup_steps=warmup)
    return {
        "gpt": (fit_gpt, GPTOverrides(text_len=32), tokens),
        "diffusion": (fit_diffusion, DiTOverrides(text_len=32), latents),
        "forcing": (fit_forcing, DiTOverrides(text_len=32), latents),
        "maskgit": (fit_maskgit, MaskGITOverrides(text_len=32), tokens),
    }


def eval_config(out_dir: Path, quick: bool, anti_drift: bool, eval_clips: int = EVAL_CLIPS) -> EvalConfig:
    """The demo's harness settings: reconstruction, text-to-video, continuation of 5 frames and
    4x-long rollouts (sliding window vs last-frame chaining) on ``eval_clips`` held-out clips
    (a quarter of them for the rollouts; 4 and 2 in the quick run)."""
    from vtlm.diffusion.flow import SamplerConfig
    from vtlm.diffusion.forcing import ForcingSamplerConfig
    from vtlm.eval.generators import SamplingSettings
    from vtlm.eval.harness import EvalConfig

    return EvalConfig(
        protocols=["shapes-recon", "shapes-t2v", "shapes-cont5", "shapes-rollout"],
        # One seed over the clips rather than two seeds over half as many: the same generation
        # cost, and the paired tests' n is the number of clips, so twice the clips shrink the
        # detectable difference by about 1/sqrt(2) where two seeds per clip only average out
        # the sampling noise.
        seeds=[0],
        num_clips=4 if quick else eval_clips,
        # 65-frame rollouts: the costliest
        protocol_clips={"shapes-rollout": 2 if quick else max(1, eval_clips // 4)},
        samples_per_clip=2 if quick else 1,  # the full run's budget: one sample per clip
        # Both runs sample the DiT with 5 DPM-Solver++(2M) steps: measured on seed 0's DiT, 64
        # clips, paired against 10 Euler steps, it costs 0.58x as much with text-to-video PSNR
        # +0.13 dB and SSIM +0.007 (both significant, tiny beside the GPT-DiT gaps) and no
        # difference in adherence, position or shape (4 steps: +0.21 dB; 8: -0.11 dB). The
        # frame-causal DiT takes 10 Euler steps per frame; only the quick run sweeps settings.
        sampling=SamplingSettings(
            diffusion=SamplerConfig(steps=5, solver="dpmpp_2m", cfg_scale=3.0),
            forcing=ForcingSamplerConfig(steps=10, cfg_scale=3.0),
            sweeps=ANTI_DRIFT_SWEEPS if anti_drift else QUICK_SWEEPS if quick else {},
        ),
        sweep_protocol="shapes-rollout" if anti_drift else "shapes-cont5",
        cost_warmup=False,  # each generator is measured right after it generated the clips
        # The attribute classifier of this world ships trained with vtlm (its default 300 steps),
        # so it is loaded, not trained: the same weights judge every run on every machine.
        classifier_cache=str(out_dir / "eval_cache"),
        bootstrap=200 if quick else 2000,
        cost_repeats=1,
    )


def demo(
    out: str = "runs/demo",
    quick: bool = False,
    seed: int = 0,
    workers: int = 2,
    tokenizer_steps: int = TOKENIZER_STEPS,
    generator_steps: int = GENERATOR_STEPS,
    tokenizer_minutes: float | None = None,
    generator_minutes: float | None = None,
    families: list[str] | None = None,
    anti_drift: bool = False,
    eval_clips: int = EVAL_CLIPS,
) -> dict:
    """Run the workflow on built-in data and print where every output is.

    Args:
        out: output folder.
        quick: a small, fast run (for tests and a first look).
        seed: dataset seed.
        workers: processes writing video files.
        tokenizer_steps: training steps of the tokenizer (the full run). Budgets are steps, so
            the same seed gives the same figures on any machine, up to floating-point noise.
        generator_steps: training steps of the GPT and of the diffusion model, each (the full run).
        tokenizer_minutes: also stop the tokenizer after this many minutes (None: steps only).
            A time budget makes the result depend on the machine's speed.
        generator_minutes: the same for each generator.
        families: the generator families trained and compared, from gpt, diffusion, forcing
            (frame-causal diffusion) and maskgit (masked parallel decoding); all at matched
            parameters and the same steps on the same shards (None: gpt and diffusion).
        anti_drift: also run each family's sampling-time anti-drift options on the 4x rollouts
            (ANTI_DRIFT_SWEEPS), their drift curves drawn beside the defaults'.
        eval_clips: held-out clips the harness judges (a quarter of them for the 4x rollouts);
            the smallest difference its paired tests detect shrinks as 1 / sqrt(eval_clips),
            and the evaluation's time grows in proportion (the full run).
    """
    if eval_clips < 4:
        raise ValueError(f"eval_clips: expected at least 4 held-out clips (one rollout), got {eval_clips}")
    families = list(families or ("gpt", "diffusion"))
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or len(set(families)) != len(families) or len(families) < 1:
        raise ValueError(f"families: expected distinct names from {list(FAMILIES)}, got {families}")
    clock, out_dir = Clock(), Path(out)
    world_cfg = WorldConfig(
        seed=seed,
        tokenizer_steps=tokenizer_steps,
        tokenizer_minutes=tokenizer_minutes,
        quick=quick,
        workers=workers,
    )
    world = prepare_world(world_cfg, out_dir, clock)
    shards = world.shards

    clock.stage(f"6. training {', '.join(families)} on the shards (same budget, matched size)")
    tokens = TokenDataConfig(
        train=str(shards / "train"),
        val=str(shards / "val"),
        text_model=str(world.text_model),
        window=3,
        batch_size=8,
    )
    generators = {}
    fits = _family_fits(quick)
    for name in families:
        fit_fn, overrides, optim = fits[name]
        run = TrainerConfig(
            out_dir=str(out_dir / name),
            max_steps=30 if quick else generator_steps,
            max_minutes=None if quick else generator_minutes,
            val_every_n_steps=30 if quick else generator_steps,
            limit_val_batches=2 if quick else 8,
            progress_bar=not quick,
            seed=seed,
        )
        generators[name] = Path(
            fit_fn("debug" if quick else GENERATOR_PRESET, overrides, data=tokens, trainer=run, optim=optim)
        )
    sizes = {name: describe(path)["params"] for name, path in generators.items()}
    gap = (max(sizes.values()) - min(sizes.values())) / min(sizes.values())
    listed = ", ".join(f"{name} {size / 1e6:.3f}M" for name, size in sizes.items())
    print(f"   parameters: {listed} (at most {gap:.1%} apart)")
    if gap > 0.05 and not quick:
        raise RuntimeError(
            f"the generators are {gap:.1%} apart in parameters, more than the 5% the comparison needs"
        )

    clock.stage("7. the evaluation harness: every generator through the same protocols, then the report")
    from vtlm.eval.harness import run_eval

    cfg = eval_config(out_dir, quick, anti_drift, eval_clips)
    results = run_eval([str(p) for p in generators.values()], cfg, out_dir / "eval", "vtlm demo")
    report = out_dir / "eval" / "report.html"

    clock.stage(f"done: everything is under {out_dir}")
    return {
        "data": str(world.data),
        "tokenizer": str(world.tokenizer),
        "shards": str(shards),
        **{name: str(path) for name, path in generators.items()},
        "report": str(report),
        "results": str(out_dir / "eval" / "results.json"),
        "sample_grids": [str(out_dir / "eval" / g["file"]) for g in results["sample_grids"]],
    }
