"""Batches of token windows from token shards, with their captions as text ids.

Train batches hold windows of ``window`` latent frames from clips at least that long; clips
of one latent frame (images) can be mixed in as 1-frame batches (``image_share``). Captions
are encoded with the SentencePiece model once, when the data module is set up.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import lightning as L
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from .batching import ImageVideoBatchSampler, stack_batch
from .shard_dataset import TokenShardDataset, TokenShards
from .text import TextTokenizer


@dataclass
class TokenDataConfig:
    """Token shards to train on, and how they are batched."""

    # Shard folders written by `vtlm tokenizer encode` (OUT/train, OUT/val).
    train: str = "runs/tokens/shapes/train"
    val: str | None = "runs/tokens/shapes/val"
    # The SentencePiece model (`vtlm data train-text`) that encodes the captions.
    text_model: str = "runs/text/shapes.model"
    # Which caption of each clip: the stored one, or (built-in data) the terse / descriptive one,
    # or "mixed": terse for half of the clips and descriptive for the others (fixed per clip).
    caption_field: Literal["caption", "caption_terse", "caption_descriptive", "mixed"] = "caption"
    # Latent frames per training window.
    window: int = 3
    batch_size: int = 16
    # Share of batches made of 1-latent-frame clips (images), when the shards hold some.
    image_share: float = 0.0
    num_workers: int = 0
    seed: int = 0


class CaptionedTokens(Dataset):
    """Items ``{"codes": (t, h, w) int64, "text": list[int], "meta": dict}`` for the items
    ``indices`` of ``tokens`` (all when None); ``text_ids`` maps a clip's key to its caption ids."""

    def __init__(
        self, tokens: TokenShardDataset, text_ids: dict[str, list[int]], indices: list[int] | None = None
    ):
        self.tokens, self.text_ids = tokens, text_ids
        self.indices = list(range(len(tokens))) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def frame_counts(self) -> list[int]:
        counts = self.tokens.frame_counts()
        return [counts[i] for i in self.indices]

    def __getitem__(self, index: int) -> dict:
        item = self.tokens[self.indices[index]]
        return {"codes": item["codes"], "text": self.text_ids[item["meta"]["key"]], "meta": item["meta"]}


def collate_tokens(items: list[dict]) -> dict:
    """Windows (t, h, w) -> ``{"codes": (B, t, h, w), "text": [...], "meta": [...]}``."""
    return stack_batch(items, "codes")


def _field_of(field: str, key: str) -> str:
    """The caption field of one clip: ``mixed`` picks terse or descriptive by the clip's key."""
    if field != "mixed":
        return field
    return "caption_terse" if zlib.crc32(key.encode()) % 2 else "caption_descriptive"


def _captions(shards: TokenShards, field: str, text: TextTokenizer) -> dict[str, list[int]]:
    """Caption ids of every clip, by key (``field`` falls back to the stored caption)."""
    captions = []
    for i in range(len(shards)):
        name = _field_of(field, shards.key(i))
        captions.append(
            shards.caption(i) if name == "caption" else shards.meta(i).get(name, shards.caption(i))
        )
    return dict(zip((shards.key(i) for i in range(len(shards))), text.encode_batch(captions)))


class TokenDataModule(L.LightningDataModule):
    def __init__(self, cfg: TokenDataConfig):
        super().__init__()
        self.cfg = cfg
        self.train_shards = TokenShards(cfg.train)
        self.val_shards = TokenShards(cfg.val) if cfg.val else None
        self.text = TextTokenizer(cfg.text_model)
        self.train_set = self.val_set = None

    def _datasets(self, shards: TokenShards) -> tuple[Dataset, list[int]]:
        captions = _captions(shards, self.cfg.caption_field, self.text)
        videos = CaptionedTokens(TokenShardDataset(shards, mode="window", window=self.cfg.window), captions)
        counts = videos.frame_counts()
        clips = TokenShardDataset(shards, mode="clip")
        images = [i for i, t in enumerate(clips.frame_counts()) if t == 1]  # 1-latent-frame clips
        if self.cfg.image_share > 0 and images and self.cfg.window > 1:
            image_set = CaptionedTokens(clips, captions, images)
            return ConcatDataset([videos, image_set]), counts + image_set.frame_counts()
        return videos, counts

    def batch_mix(self) -> list[tuple[float, dict]]:
        """What a training step holds, as (share of steps, a batch of that shape with empty
        captions): video windows, and image batches when images are mixed in. For budgets in
        FLOPs (a model's ``training_flops`` reads only the shapes)."""
        import torch

        self.setup()
        h, w = self.train_shards.grid
        counts = set(self.train_counts)
        share = self.cfg.image_share if 1 in counts and len(counts) > 1 else float(counts == {1})

        def batch(frames: int) -> dict:
            size = self.cfg.batch_size
            return {"codes": torch.zeros(size, frames, h, w, dtype=torch.long), "text": [[]] * size}

        mix = [(1.0 - share, batch(self.cfg.window)), (share, batch(1))]
        return [(weight, b) for weight, b in mix if weight > 0]

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.train_counts = self._datasets(self.train_shards)
            if self.val_shards is not None:
                captions = _captions(self.val_shards, self.cfg.caption_field, self.text)
                self.val_set = CaptionedTokens(
                    TokenShardDataset(self.val_shards, mode="window", window=self.cfg.window), captions
                )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        sampler = ImageVideoBatchSampler(
            self.train_counts,
            self.cfg.batch_size,
            self.cfg.batch_size,
            self.cfg.image_share,
            seed=self.cfg.seed,
        )
        return DataLoader(
            self.train_set, batch_sampler=sampler, collate_fn=collate_tokens, num_workers=self.cfg.num_workers
        )

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self.val_set is None:
            return []
        return DataLoader(
            self.val_set,
            batch_size=self.cfg.batch_size,
            collate_fn=collate_tokens,
            num_workers=self.cfg.num_workers,
        )
