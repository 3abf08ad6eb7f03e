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

import json
import time
from pathlib import Path

from torch.utils.data import ConcatDataset, DataLoader

from vtlm.data.batching import ImageVideoBatchSampler, collate_clips
from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.inspect import format_summary, inspect_folder
from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, write_synthetic
from vtlm.data.text import TextTokenizer, train_text_tokenizer
from vtlm.data.token_datamodule import TokenDataConfig
from vtlm.data.video_datamodule import VideoDataConfig
from vtlm.eval.generators import describe
from vtlm.tokenizer.objective import LossConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .diffusion_cmds import DiTOverrides
from .diffusion_cmds import fit as fit_diffusion
from .forcing_cmds import fit as fit_forcing
from .gpt_cmds import GPTOverrides
from .gpt_cmds import fit as fit_gpt
from .maskgit_cmds import MaskGITOverrides
from .maskgit_cmds import fit as fit_maskgit
from .tokenizer_cmds import TokenizerOverrides, encode, fit

# Larger shapes than the generator's default (radius 4.5-6.4 px at 32 px): each spans two to
# three latent cells, so a 4x spatial tokenizer keeps squares, discs and triangles apart.
SHAPES = ShapesConfig(
    resolution=32, num_frames=17, max_objects=2, collisions=True, size_fractions=(0.14, 0.17, 0.2)
)
# 8*5*5*5 = 1000 FSQ codes: a vocabulary a few-minute GPT can learn (the default 4375 leaves
# most codes rare and costs a small GPT much of its compute in the output layer).
FSQ_LEVELS = (8, 5, 5, 5)
# Generator presets of the full run, matched within 5% of parameters on that vocabulary. At a
# few CPU minutes the ~1.25M `mini` models beat the 3-4.5M `tiny` ones (measured on this data,
# 4 minutes each: GPT validation loss 1.62 against 1.81 nats per video token, DiT flow loss
# 0.670 against 0.736, and the DiT's text-to-video clips went from mostly wrong colors to the
# captioned ones in 3 of 4 rows).
GENERATOR_PRESET = "mini"
# Training budgets of the full run, in steps (the learning-rate schedule decays over exactly these
# steps), so a seed gives the same figures on any machine. Chosen for at most 15 minutes end to
# end on the 2-core machine vtlm is developed on (2 threads, nothing else running): the README
# has the measured times, stage by stage.
TOKENIZER_STEPS = 320
GENERATOR_STEPS = 400
# The generator families the demo can train; `make demo` compares the first two.
FAMILIES = ("gpt", "diffusion", "forcing", "maskgit")
# The quick run's sampling sweep on the continuation protocol: one point per family.
QUICK_SWEEPS = {
    "gpt": {"temperature": [0.7]},
    "diffusion": {"steps": [5]},
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


class _Clock:
    def __init__(self):
        self.start = time.perf_counter()

    def stage(self, text: str) -> None:
        print(f"\n[{time.perf_counter() - self.start:6.1f} s] {text}", flush=True)


def _mixed_batches(data_dir: Path, seed: int) -> dict[str, int]:
    clip = ClipSpec(num_frames=9, resolution=32, frame_stride=2)
    videos = VideoFolderDataset(FolderConfig(root=str(data_dir), split="train", clip=clip))
    images = VideoFolderDataset(
        FolderConfig(root=str(data_dir), split="train", clip=ClipSpec(num_frames=1, resolution=32))
    )
    counts = videos.frame_counts() + images.frame_counts()
    sampler = ImageVideoBatchSampler(
        counts, video_batch_size=8, image_batch_size=32, image_share=0.25, seed=seed
    )
    seen: dict[str, int] = {}
    for batch in DataLoader(ConcatDataset([videos, images]), batch_sampler=sampler, collate_fn=collate_clips):
        key = "x".join(map(str, batch["video"].shape))
        seen[key] = seen.get(key, 0) + 1
    return seen


def _text_model(manifest: Path, out: Path) -> Path:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    captions = [r[k] for r in rows if r["split"] == "train" for k in ("caption_terse", "caption_descriptive")]
    path = train_text_tokenizer(captions, out, vocab_size=512)
    example = rows[0]["caption_descriptive"]
    print(
        f"   {path}: {TextTokenizer(path).vocab_size} pieces; {example!r} -> {len(TextTokenizer(path).encode(example))} pieces"
    )
    return path


def _evaluate(generators: dict[str, Path], out_dir: Path, quick: bool, anti_drift: bool) -> dict:
    """The shared harness on every generator: reconstruction, text-to-video, continuation of
    5 frames and 4x-long rollouts (sliding window vs last-frame chaining), then the report."""
    from vtlm.diffusion.flow import SamplerConfig
    from vtlm.diffusion.forcing import ForcingSamplerConfig
    from vtlm.eval.generators import SamplingSettings
    from vtlm.eval.harness import EvalConfig, run_eval

    cfg = EvalConfig(
        protocols=["shapes-recon", "shapes-t2v", "shapes-cont5", "shapes-rollout"],
        seeds=[0] if quick else [0, 1],
        num_clips=4 if quick else 16,
        protocol_clips={"shapes-rollout": 2 if quick else 4},  # 65-frame rollouts: the costliest
        samples_per_clip=2 if quick else 1,  # the full run's budget: one sample per clip and seed
        # Both runs sample the DiT with 10 Euler steps (measured on this data: the same quality
        # as 25 within the intervals, at 0.4x the cost), and the frame-causal DiT with as many per
        # frame; only the quick run sweeps settings.
        sampling=SamplingSettings(
            diffusion=SamplerConfig(steps=10, cfg_scale=3.0),
            forcing=ForcingSamplerConfig(steps=10, cfg_scale=3.0),
            sweeps=ANTI_DRIFT_SWEEPS if anti_drift else QUICK_SWEEPS if quick else {},
        ),
        sweep_protocol="shapes-rollout" if anti_drift else "shapes-cont5",
        cost_warmup=False,  # each generator is measured right after it generated the clips
        classifier_cache=str(out_dir / "eval_cache"),
        # quick: plumbing only, its adherence means little; full: 160 of the default 300 steps
        classifier_steps=20 if quick else 160,
        bootstrap=200 if quick else 2000,
        cost_repeats=1,
    )
    return run_eval([str(p) for p in generators.values()], cfg, out_dir / "eval", "vtlm demo")


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
    """
    families = list(families or ("gpt", "diffusion"))
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or len(set(families)) != len(families) or len(families) < 1:
        raise ValueError(f"families: expected distinct names from {list(FAMILIES)}, got {families}")
    clock, out_dir = _Clock(), Path(out)
    counts = {"train": 48, "val": 8, "test": 8} if quick else {"train": 512, "val": 64, "test": 64}
    data_dir = out_dir / "data" / "shapes"

    clock.stage(f"1. writing {sum(counts.values())} shapes clips to {data_dir} and inspecting them")
    manifest = write_synthetic(
        SyntheticConfig(shapes=SHAPES, seed=seed), data_dir, counts, workers=workers, progress=not quick
    )
    summary = inspect_folder(data_dir, preview=out_dir / "preview.png", preview_clips=6)
    print(format_summary(summary))
    if summary["unreadable"]:
        raise RuntimeError(f"{len(summary['unreadable'])} files written by the demo are unreadable")

    clock.stage("2. reading batches back: 9-frame clips (stride 2) mixed with 1-frame images")
    print(f"   batches (B x C x T x H x W: count): {_mixed_batches(data_dir, seed)}")

    clock.stage("3. training the caption text model")
    text_model = _text_model(manifest, out_dir / "text" / "shapes.model")

    clock.stage("4. training the tokenizer: 9x32x32 clips -> 3x8x8 FSQ codes")
    data = VideoDataConfig(
        synthetic=SyntheticConfig(shapes=SHAPES, seed=seed), image_share=0.1, val_clips=32 if quick else 128
    )
    trainer = TrainerConfig(
        out_dir=str(out_dir / "tokenizer"),
        max_steps=30 if quick else tokenizer_steps,
        max_minutes=None if quick else tokenizer_minutes,
        val_every_n_steps=30 if quick else tokenizer_steps,  # once, at the end
        limit_val_batches=4 if quick else 16,
        progress_bar=not quick,
        seed=seed,
    )
    tokenizer_dir = Path(
        fit(
            "debug" if quick else "small",
            TokenizerOverrides() if quick else TokenizerOverrides(fsq_levels=FSQ_LEVELS),
            data=data,
            trainer=trainer,
            loss=LossConfig(recon="l2"),  # the recipe of configs/tokenizer/shapes_small.yaml
            optim=OptimConfig(lr=2e-3, warmup_steps=5 if quick else 40, min_lr_ratio=0.05),
        )
    )

    clock.stage("5. tokenizing train / val / test into token shards")
    shard_counts = {"train": 64, "val": 8, "test": 8} if quick else {"train": 2048, "val": 256, "test": 256}
    shards = Path(
        encode(str(tokenizer_dir), str(out_dir / "tokens"), data=data, num_clips=shard_counts, batch_size=32)
    )

    clock.stage(f"6. training {', '.join(families)} on the shards (same budget, matched size)")
    tokens = TokenDataConfig(
        train=str(shards / "train"),
        val=str(shards / "val"),
        text_model=str(text_model),
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
    results = _evaluate(generators, out_dir, quick, anti_drift)
    report = out_dir / "eval" / "report.html"

    clock.stage(f"done: everything is under {out_dir}")
    return {
        "data": str(data_dir),
        "tokenizer": str(tokenizer_dir),
        "shards": str(shards),
        **{name: str(path) for name, path in generators.items()},
        "report": str(report),
        "results": str(out_dir / "eval" / "results.json"),
        "sample_grids": [str(out_dir / "eval" / g["file"]) for g in results["sample_grids"]],
    }
