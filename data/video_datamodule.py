"""Clips for training on video: built-in data or a folder of files, images mixed in by a knob.

Train batches come from :class:`ImageVideoBatchSampler`: each batch holds ``batch_size``
clips of ``num_frames`` frames, or ``image_batch_size`` single frames, with ``image_share``
of the batches being image batches (the tokenizer's joint image + video training). The sampler
shards batches across distributed ranks itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import lightning as L
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from .batching import ImageVideoBatchSampler, collate_clips
from .clips import ClipSpec
from .folder import FolderConfig, VideoFolderDataset
from .synthetic import ShapesConfig, SyntheticConfig, SyntheticDataset


@dataclass
class VideoDataConfig:
    """Which clips to train on, and how they are batched."""

    # synthetic: a built-in dataset generated on the fly; folder: files under folder_root.
    source: Literal["synthetic", "folder"] = "synthetic"
    synthetic: SyntheticConfig = field(
        default_factory=lambda: SyntheticConfig(
            shapes=ShapesConfig(resolution=32, num_frames=9, collisions=True, camera_pan=True)
        )
    )
    # For source=folder: the folder, and its caption source (see FolderConfig).
    folder_root: str | None = None
    folder_captions: Literal["auto", "manifest", "sidecar", "class_folder", "none"] = "auto"
    # Frames per training clip (1 + k * the tokenizer's temporal stride) and square resolution.
    num_frames: int = 9
    resolution: int = 32
    batch_size: int = 8
    # Share of train batches that are single frames (images), and their batch size.
    image_share: float = 0.0
    image_batch_size: int = 32
    num_workers: int = 0
    # Validation clips (built-in data) and the seed of the batch order.
    val_clips: int = 64
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.synthetic, dict):
            self.synthetic = SyntheticConfig(**self.synthetic)
        if self.source not in ("synthetic", "folder"):
            raise ValueError(f"source: expected 'synthetic' or 'folder', got {self.source!r}")
        if self.source == "folder" and not self.folder_root:
            raise ValueError("folder_root: expected a folder when source='folder'")
        if self.num_frames < 1 or self.batch_size < 1 or self.image_batch_size < 1:
            raise ValueError(
                f"num_frames, batch_size, image_batch_size: expected >= 1, got {self.num_frames}, {self.batch_size}, {self.image_batch_size}"
            )
        if not 0.0 <= self.image_share <= 1.0:
            raise ValueError(f"image_share: expected a value in [0, 1], got {self.image_share}")


def synthetic_split(
    cfg: VideoDataConfig, split: str, frames: int, count: int | None = None
) -> SyntheticDataset:
    """The built-in dataset of ``cfg`` for one split, at ``frames`` frames and cfg's resolution."""
    base = cfg.synthetic
    shapes = replace(base.shapes, num_frames=frames, resolution=cfg.resolution)
    digits = replace(base.digits, num_frames=frames, resolution=cfg.resolution)
    return SyntheticDataset(
        replace(base, shapes=shapes, digits=digits, split=split, num_clips=count or base.num_clips)
    )


def _folder(cfg: VideoDataConfig, split: str, frames: int, media: str, window: str) -> VideoFolderDataset:
    clip = ClipSpec(num_frames=frames, resolution=cfg.resolution, window=window, crop="center")
    return VideoFolderDataset(
        FolderConfig(root=cfg.folder_root, clip=clip, captions=cfg.folder_captions, media=media, split=split)
    )


def build_video_datasets(cfg: VideoDataConfig) -> tuple[Dataset, Dataset, list[int]]:
    """(train dataset, validation dataset, frame counts of the train items)."""
    if cfg.source == "synthetic":
        videos = synthetic_split(cfg, "train", cfg.num_frames)
        images = synthetic_split(cfg, "train", 1) if cfg.image_share > 0 else None
        val = synthetic_split(cfg, "val", cfg.num_frames, cfg.val_clips)
    else:
        videos = _folder(cfg, "train", cfg.num_frames, "videos", "random")
        images = _folder(cfg, "train", 1, "both", "random") if cfg.image_share > 0 else None
        val = _folder(cfg, "val", cfg.num_frames, "videos", "start")
    counts = videos.frame_counts() + (images.frame_counts() if images is not None else [])
    train = ConcatDataset([videos, images]) if images is not None else videos
    return train, val, counts


class VideoDataModule(L.LightningDataModule):
    """Lightning data module over :class:`VideoDataConfig`."""

    def __init__(self, cfg: VideoDataConfig):
        super().__init__()
        self.cfg = cfg
        self.train_set = self.val_set = None
        self.frame_counts: list[int] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set, self.frame_counts = build_video_datasets(self.cfg)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        sampler = ImageVideoBatchSampler(
            self.frame_counts,
            self.cfg.batch_size,
            self.cfg.image_batch_size,
            self.cfg.image_share,
            seed=self.cfg.seed,
        )
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            collate_fn=collate_clips,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return DataLoader(
            self.val_set,
            batch_size=self.cfg.batch_size,
            collate_fn=collate_clips,
            num_workers=self.cfg.num_workers,
        )
