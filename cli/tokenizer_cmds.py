"""``vtlm tokenizer ...``: train the video tokenizer, export it, tokenize a dataset into shards."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from vtlm.data.video_datamodule import VideoDataConfig
from vtlm.tokenizer.config import TokenizerConfig, preset
from vtlm.tokenizer.objective import LossConfig
from vtlm.train.optim import OptimConfig
from vtlm.train.trainer import TrainerConfig

from .overrides import apply_overrides, overrides_of
from .runs import fit_and_export, start_run

TokenizerOverrides = overrides_of(TokenizerConfig)


def fit(
    preset_name: str = "small",
    model: TokenizerOverrides = TokenizerOverrides(),
    loss: LossConfig = LossConfig(),
    optim: OptimConfig = OptimConfig(),
    data: VideoDataConfig = VideoDataConfig(),
    trainer: TrainerConfig = TrainerConfig(out_dir="runs/tokenizer"),
    ema_decay: float | None = 0.999,
) -> str:
    """Train the causal 3-D tokenizer; resume from the run's last checkpoint when there is one.

    Writes OUT/checkpoints (resumable), OUT/logs (CSV, TensorBoard), OUT/samples
    (ground truth | reconstruction grids at each validation) and, at the end, OUT/tokenizer:
    the model directory that `vtlm tokenizer encode` and `load_tokenizer` read.

    Args:
        preset_name: tokenizer preset (debug, small, base) that `model` fields override.
        model: tokenizer fields to change from the preset.
        loss: reconstruction, quantizer, perceptual and adversarial losses.
        optim: AdamW and the warmup + cosine schedule.
        data: training clips (built-in or a folder), image share, batch sizes.
        trainer: run directory, steps, time budget, hardware, checkpoints, resumption.
        ema_decay: EMA of the weights (evaluated and exported); null to turn off. The decay
            in use at step n is min(ema_decay, (1 + n) / (10 + n)): 0.99 at step 900.
    """
    from vtlm.data.video_datamodule import VideoDataModule
    from vtlm.tokenizer.training import TokenizerModule, count_parameters

    cfg = apply_overrides(preset(preset_name), model)
    latent = cfg.latent_shape(
        data.num_frames, data.resolution, data.resolution
    )  # impossible shapes fail here
    settings = {
        "preset": preset_name,
        "model": cfg.to_dict(),
        "loss": asdict(loss),
        "optim": asdict(optim),
        "data": asdict(data),
        "trainer": asdict(trainer),
        "ema_decay": ema_decay,
    }
    run_dir = start_run(trainer, settings)
    module = TokenizerModule(
        cfg,
        loss,
        optim,
        total_steps=trainer.max_steps,
        ema_decay=ema_decay,
        sample_dir=str(run_dir / "samples"),
    )
    print(
        f"tokenizer: {count_parameters(module.tokenizer) / 1e6:.2f}M parameters, {cfg.quantizer} "
        f"({cfg.codebook_size or 'continuous'} codes); {data.num_frames}x{data.resolution}x{data.resolution} -> "
        f"{latent[0]}x{latent[1]}x{latent[2]} latents; run dir {run_dir}",
        flush=True,
    )
    return fit_and_export(trainer, module, VideoDataModule(data), "tokenizer")


def encode(
    tokenizer: str,
    out: str,
    data: VideoDataConfig = VideoDataConfig(),
    splits: list[str] = ["train", "val", "test"],  # noqa: B006 (jsonargparse needs a literal default)
    num_clips: dict[str, int] | None = None,
    max_frames: int | None = None,
    batch_size: int = 16,
    workers: int = 0,
    clips_per_shard: int = 1024,
    chunk_frames: int | None = None,
    devices: int = 1,
    num_nodes: int = 1,
    accelerator: str = "cpu",
    train_images: int = 0,
) -> str:
    """Tokenize a dataset into token shards (OUT/SPLIT/...), resumable and spread over processes.

    Built-in data: `num_clips` clips per split (default train 2048, val 128, test 128) of
    data.num_frames frames. Folder data: every file whole (up to max_frames), so the GPT can
    read windows of any length. Each split gets its own shard folder with an index.json that
    records the tokenizer that made it.

    Args:
        tokenizer: model directory written by `vtlm tokenizer fit` (RUN/tokenizer).
        out: output folder; OUT/train, OUT/val, OUT/test are created.
        data: the clips: source, frames per clip, resolution (as for fit).
        splits: which splits to encode.
        num_clips: clips per split for built-in data, e.g. {train: 4096, val: 256}.
        max_frames: cap on frames per file for folder data (None: whole files).
        batch_size: clips encoded together.
        workers: data loader processes per rank.
        clips_per_shard: clips per shard file.
        chunk_frames: encode long videos in causal chunks of this many frames (bounded memory).
        devices: processes on this machine (each encodes a disjoint slice).
        num_nodes: machines.
        accelerator: cpu, cuda, auto.
        train_images: built-in data: also this many 1-frame clips (images) in the train split,
            scenes distinct from its videos (keys KIND/train/image/N), for generators trained
            with images mixed in (``TokenDataConfig.image_share``).
    """
    import lightning as L

    from vtlm.data.clips import ClipSpec
    from vtlm.data.folder import FolderConfig
    from vtlm.data.video_datamodule import synthetic_split
    from vtlm.data.whole_videos import WholeVideoDataset
    from vtlm.tokenizer.encode import encode_to_shards, finish_index
    from vtlm.tokenizer.io import load_tokenizer

    fabric = L.Fabric(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy="ddp" if devices * num_nodes > 1 else "auto",
    )
    fabric.launch()
    model = load_tokenizer(tokenizer, device=fabric.device)
    if model.codebook_size is None:
        raise ValueError(
            f"tokenizer: {tokenizer} has a continuous bottleneck ({model.cfg.quantizer}); shards hold discrete codes"
        )
    model.cfg.latent_shape(data.num_frames, data.resolution, data.resolution)
    if train_images < 0 or (train_images and data.source != "synthetic"):
        raise ValueError(
            f"train_images: expected >= 0, and only for built-in data (folders hold their own images), got {train_images}"
        )
    counts = {"train": 2048, "val": 128, "test": 128, **(num_clips or {})}
    for split in splits:
        split_dir = Path(out) / split
        if data.source == "synthetic":
            dataset = synthetic_split(data, split, data.num_frames, counts[split])
            keys = [f"{data.synthetic.kind}/{split}/{i:07d}" for i in range(len(dataset))]
            if split == "train" and train_images:
                dataset, keys = _with_images(data, dataset, keys, train_images)
        else:
            spec = ClipSpec(num_frames=1, resolution=data.resolution)
            folder = FolderConfig(
                root=data.folder_root, clip=spec, captions=data.folder_captions, media="videos", split=split
            )
            dataset = WholeVideoDataset(folder, model.cfg.temporal_downsample, max_frames)
            keys = [dataset.key(i) for i in range(len(dataset))]
            if not keys:
                print(f"{split}: no file of {data.folder_root} is in this split; skipped")
                continue
        result = encode_to_shards(
            model,
            dataset,
            keys,
            split_dir,
            fabric.global_rank,
            fabric.world_size,
            batch_size,
            workers,
            clips_per_shard,
            chunk_frames,
            progress=fabric.is_global_zero,
        )
        print(f"rank {fabric.global_rank} {split}: {result}", flush=True)
        fabric.barrier()
        if fabric.is_global_zero:
            index = finish_index(
                split_dir,
                tokenizer,
                model,
                {
                    "source": data.source,
                    "num_frames": data.num_frames,
                    "resolution": data.resolution,
                    "split": split,
                },
            )
            print(f"wrote {index}")
        fabric.barrier()
    return str(out)


def _with_images(data, videos, keys: list[str], count: int):
    """``videos`` and their keys followed by ``count`` 1-frame clips of the train split, rendered
    from clip indices after the videos' (other scenes, never another split's)."""
    from torch.utils.data import ConcatDataset, Subset

    from vtlm.data.video_datamodule import synthetic_split

    first = len(videos)
    images = Subset(synthetic_split(data, "train", 1, first + count), range(first, first + count))
    image_keys = [f"{data.synthetic.kind}/train/image/{i:07d}" for i in range(first, first + count)]
    return ConcatDataset([videos, images]), keys + image_keys


COMMANDS = {"fit": fit, "encode": encode}
