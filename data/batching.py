"""Batches of clips, and batches that mix images (1-frame clips) with videos.

A batch is ``{"video": float32 (B, 3, T, H, W) in [-1, 1], "caption": list[str], "meta":
list[dict]}``. All clips of one batch share T; :class:`ImageVideoBatchSampler` draws batches
that are all-image or all-video, with the share of image batches as a knob (the "video-native"
joint training of the tokenizer and the GPT).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


def stack_batch(items: Sequence[dict], key: str) -> dict:
    """Stack ``item[key]`` tensors (all of one shape) and list every other field."""
    shapes = {tuple(item[key].shape) for item in items}
    if len(shapes) != 1:
        raise ValueError(
            f"batch: {key} of different shapes {sorted(shapes)} in one batch; "
            "use ImageVideoBatchSampler to keep images and videos in separate batches"
        )
    batch = {key: torch.stack([item[key] for item in items])}
    for field in items[0]:
        if field != key:
            batch[field] = [item.get(field) for item in items]
    return batch


def collate_clips(items: Sequence[dict]) -> dict:
    """Clips (3, T, H, W) -> ``{"video": (B, 3, T, H, W), "caption": [...], "meta": [...]}``."""
    return stack_batch(items, "video")


class ImageVideoBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices, each all-image (T = 1) or all-video (T > 1).

    Args:
        frame_counts: frames of each dataset item (e.g. ``dataset.frame_counts()``).
        video_batch_size: clips per video batch.
        image_batch_size: images per image batch (images are cheap, so often larger).
        image_share: share of batches that are image batches, in [0, 1]. 0 gives only video
            batches; 1 only image batches. When the data has no images (or no videos) the
            other kind is used throughout.
        seed: shuffling seed; the order changes with :meth:`set_epoch`.
        rank, world_size: this process's slice: batch k goes to rank k % world_size. Defaults
            to the initialized torch.distributed group, else a single process.
        drop_last: drop the last partial batch of each kind.

    One epoch covers every video once (the videos set the epoch's length); image batches are
    interleaved in proportion, drawing images in a shuffled cycle.
    """

    def __init__(
        self,
        frame_counts: Sequence[int],
        video_batch_size: int,
        image_batch_size: int,
        image_share: float,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = True,
    ):
        if not 0.0 <= image_share <= 1.0:
            raise ValueError(f"image_share: expected a value in [0, 1], got {image_share}")
        if video_batch_size < 1 or image_batch_size < 1:
            raise ValueError(f"batch sizes: expected >= 1, got {video_batch_size}, {image_batch_size}")
        counts = np.asarray(frame_counts)
        self.images = np.flatnonzero(counts == 1)
        self.videos = np.flatnonzero(counts > 1)
        if len(self.images) == 0 and len(self.videos) == 0:
            raise ValueError("frame_counts: empty dataset")
        if len(self.videos) == 0:
            image_share = 1.0
        elif len(self.images) == 0:
            image_share = 0.0
        self.image_share = image_share
        self.video_batch_size, self.image_batch_size = video_batch_size, image_batch_size
        self.seed, self.epoch, self.drop_last = seed, 0, drop_last
        if world_size is None:
            dist = torch.distributed
            initialized = dist.is_available() and dist.is_initialized()
            world_size = dist.get_world_size() if initialized else 1
            rank = dist.get_rank() if initialized else 0
        self.rank, self.world_size = rank or 0, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _count(self) -> tuple[int, int]:
        """(video batches, image batches) in one epoch, over all ranks."""
        if self.image_share >= 1.0:
            total = len(self.images)
            n = total // self.image_batch_size if self.drop_last else math.ceil(total / self.image_batch_size)
            return 0, max(n, 1)
        total = len(self.videos)
        n_video = (
            total // self.video_batch_size if self.drop_last else math.ceil(total / self.video_batch_size)
        )
        n_video = max(n_video, 1)
        n_image = round(n_video * self.image_share / (1.0 - self.image_share))
        return n_video, n_image

    def __len__(self) -> int:
        # Every rank gets the same number of batches (DDP steps in lockstep): the remainder is dropped.
        return sum(self._count()) // self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n_video, n_image = self._count()
        videos = rng.permutation(self.videos)
        video_batches = [
            videos[k * self.video_batch_size : (k + 1) * self.video_batch_size] for k in range(n_video)
        ]
        needed = n_image * self.image_batch_size
        if needed:
            cycles = math.ceil(needed / len(self.images))
            images = np.concatenate([rng.permutation(self.images) for _ in range(cycles)])[:needed]
            image_batches = np.split(images, n_image)
        else:
            image_batches = []
        # Interleave image and video batches in a seeded random order.
        kinds = np.array([0] * len(video_batches) + [1] * len(image_batches))
        kinds = kinds[rng.permutation(len(kinds))]
        queues = {0: iter(video_batches), 1: iter(image_batches)}
        usable = len(self) * self.world_size
        for k, kind in enumerate(kinds[:usable]):
            batch = next(queues[int(kind)])
            if k % self.world_size == self.rank:
                yield [int(i) for i in batch]
