"""The built-in world every comparison stands on: data, caption text model, tokenizer, token shards.

``prepare_world`` runs the first five stages of the demo (and of a sweep that builds its own
world): write the built-in ``shapes`` clips as mp4 files and inspect them, read mixed image /
video batches back through the real-file path, train the SentencePiece caption model, train the
causal 3-D tokenizer, and tokenize train / val / test once into token shards. Every generator
of a demo or a sweep then trains on the same shards, decoded by the same tokenizer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import ConcatDataset, DataLoader

from vtlm.data.batching import ImageVideoBatchSampler, collate_clips
from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.inspect import format_summary, inspect_folder
from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, write_synthetic
from vtlm.data.text import TextTokenizer, train_text_tokenizer
from vtlm.data.video_datamodule import VideoDataConfig
from vtlm.tokenizer.objective import LossConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .tokenizer_cmds import TokenizerOverrides, encode, fit

# Larger shapes than the generator's default (radius 4.5-6.4 px at 32 px): each spans two to
# three latent cells, so a 4x spatial tokenizer keeps squares, discs and triangles apart.
SHAPES = ShapesConfig(
    resolution=32, num_frames=17, max_objects=2, collisions=True, size_fractions=(0.14, 0.17, 0.2)
)
# 8*5*5*5 = 1000 FSQ codes: a vocabulary a few-minute GPT can learn (the default 4375 leaves
# most codes rare and costs a small GPT much of its compute in the output layer).
FSQ_LEVELS = (8, 5, 5, 5)
# The tokenizer's training steps (about 6 minutes on the 2-core development machine). Its
# learning rate decays to 5% over them, and the exported weights are the trained ones, not an
# EMA: on held-out clips at 900 steps the average over the last ~100 steps lost 0.6 dB.
TOKENIZER_STEPS = 900


@dataclass
class WorldConfig:
    """How the world is built (or which one is reused).

    A sweep reuses a world by naming its ``shards`` folder (holding train / val [/ test] shard
    folders) and its ``text_model``; otherwise the world is built under the run's output folder.
    """

    # Reuse: a folder of token shards (OUT/tokens of a demo or sweep) and its caption model.
    shards: str | None = None
    text_model: str | None = None
    # Build: the dataset seed, the tokenizer's training steps, and the size of each split.
    seed: int = 0
    tokenizer_steps: int = TOKENIZER_STEPS
    # Also stop the tokenizer after this many minutes (None: steps only; machine-dependent).
    tokenizer_minutes: float | None = None
    # 1-frame clips (images, distinct scenes from the videos) tokenized into the train shards,
    # for generators trained with images mixed in (TokenDataConfig.image_share).
    train_images: int = 0
    # A small world for tests and a first look (debug tokenizer, tens of clips).
    quick: bool = False
    workers: int = 2

    def __post_init__(self):
        if (self.shards is None) != (self.text_model is None):
            raise ValueError("shards, text_model: a reused world needs both (or neither, to build one)")
        if self.tokenizer_steps < 1 or self.train_images < 0:
            raise ValueError(
                f"tokenizer_steps, train_images: expected >= 1 and >= 0, got {self.tokenizer_steps}, {self.train_images}"
            )


@dataclass
class World:
    """Paths of a built (or reused) world."""

    text_model: Path
    shards: Path  # holds train/, val/ and (built worlds) test/
    tokenizer: Path | None = None
    data: Path | None = None


class Clock:
    """Stage lines with the seconds since the run started."""

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


def prepare_world(cfg: WorldConfig, out_dir: Path, clock: Clock) -> World:
    """Build the world under ``out_dir`` (stages 1-5), or return the reused one."""
    if cfg.shards is not None:
        shards, text = Path(cfg.shards), Path(cfg.text_model)
        for path in (shards / "train", shards / "val", text):
            if not path.exists():
                raise FileNotFoundError(f"world: {path} does not exist (world.shards / world.text_model)")
        return World(text_model=text, shards=shards)
    quick, seed = cfg.quick, cfg.seed
    counts = {"train": 48, "val": 8, "test": 8} if quick else {"train": 512, "val": 64, "test": 64}
    data_dir = out_dir / "data" / "shapes"

    clock.stage(f"1. writing {sum(counts.values())} shapes clips to {data_dir} and inspecting them")
    manifest = write_synthetic(
        SyntheticConfig(shapes=SHAPES, seed=seed), data_dir, counts, workers=cfg.workers, progress=not quick
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
        max_steps=30 if quick else cfg.tokenizer_steps,
        max_minutes=None if quick else cfg.tokenizer_minutes,
        val_every_n_steps=30 if quick else cfg.tokenizer_steps,  # once, at the end
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
            ema_decay=None,
        )
    )

    clock.stage("5. tokenizing train / val / test into token shards")
    shard_counts = {"train": 64, "val": 8, "test": 8} if quick else {"train": 2048, "val": 256, "test": 256}
    shards = Path(
        encode(
            str(tokenizer_dir),
            str(out_dir / "tokens"),
            data=data,
            num_clips=shard_counts,
            batch_size=32,
            train_images=cfg.train_images,
        )
    )
    return World(text_model=text_model, shards=shards, tokenizer=tokenizer_dir, data=data_dir)
