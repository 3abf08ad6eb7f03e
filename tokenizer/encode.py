"""Offline tokenization: a dataset -> token shards, once, so the GPT and the diffusion baseline
train on codes without decoding video.

Runs on one process or many (Lightning Fabric: any device count, node count or launcher):
rank r encodes items r, r + world, r + 2 world, ... into shards prefixed ``rank{r:02d}``, and
rank 0 joins every rank's shards in ``index.json``. A killed run resumes: keys already in
complete shards are skipped, half-written shards are discarded. The index records the
tokenizer's config and the hash of its weights, so a model trained on the shards can check
that it is paired with the tokenizer that made them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from vtlm.data.shards import ShardWriter, done_keys, write_index
from vtlm.train.checkpoint import WEIGHTS_NAME

from .model import VideoTokenizer


def weights_sha256(model_dir: str | os.PathLike) -> str:
    """Hash of a model directory's weights file: the identity of a trained tokenizer."""
    digest = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_NAME, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Indexed(Dataset):
    """(index, item) pairs, so a batch knows which keys it holds."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, dict | None]:
        return index, self.dataset[index]


def _batches(
    dataset: Dataset, indices: list[int], batch_size: int, workers: int
) -> Iterator[list[tuple[int, dict | None]]]:
    loader = DataLoader(
        Subset(_Indexed(dataset), indices), batch_size=batch_size, num_workers=workers, collate_fn=list
    )
    yield from loader


@torch.no_grad()
def encode_to_shards(
    tokenizer: VideoTokenizer,
    dataset: Dataset,
    keys: list[str],
    out_dir: str | os.PathLike,
    rank: int = 0,
    world_size: int = 1,
    batch_size: int = 16,
    workers: int = 0,
    clips_per_shard: int = 1024,
    chunk_frames: int | None = None,
    progress: bool = True,
) -> dict:
    """Encode this rank's share of ``dataset`` (items with "video", "caption", "meta"; None for
    an unreadable item) into shards. ``keys[i]`` names item i. Returns counts."""
    from tqdm import tqdm

    done = done_keys(out_dir)
    todo = [i for i in range(rank, len(keys), world_size) if keys[i] not in done]
    counts = {
        "encoded": 0,
        "skipped_done": len(range(rank, len(keys), world_size)) - len(todo),
        "unreadable": 0,
    }
    device = next(tokenizer.parameters()).device
    tokenizer.eval()
    with ShardWriter(
        out_dir,
        prefix=f"rank{rank:02d}",
        codebook_size=tokenizer.codebook_size,
        clips_per_shard=clips_per_shard,
    ) as writer:
        bar = tqdm(total=len(todo), desc=f"encoding (rank {rank})", disable=not progress, unit="clip")
        for batch in _batches(dataset, todo, batch_size, workers):
            good = [(i, item) for i, item in batch if item is not None]
            counts["unreadable"] += len(batch) - len(good)
            for shape in {tuple(item["video"].shape) for _, item in good}:  # equal shapes encode together
                group = [(i, item) for i, item in good if tuple(item["video"].shape) == shape]
                video = torch.stack([item["video"] for _, item in group]).to(device)
                codes = tokenizer.encode(video, chunk_frames=chunk_frames).cpu()
                for (i, item), item_codes in zip(group, codes):
                    writer.add(keys[i], item_codes, item["caption"], item["meta"])
                counts["encoded"] += len(group)
            bar.update(len(batch))
        bar.close()
    return counts


def finish_index(
    out_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike, tokenizer: VideoTokenizer, data: dict
) -> Path:
    """Join all ranks' shards; record which tokenizer made them and from what data."""
    extra = {
        "tokenizer_dir": str(Path(tokenizer_dir).resolve()),
        "tokenizer_sha256": weights_sha256(tokenizer_dir),
        "tokenizer": tokenizer.cfg.to_dict(),
        "data": data,
    }
    return write_index(out_dir, extra=extra)
