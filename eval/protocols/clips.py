"""Held-out clips for a protocol: videos, captions and (built-in data) the exact labels.

Built-in data is rendered from the test split of the same generator the models were trained
on (its settings come from the tokenizer run's ``run.yaml`` unless given), at the protocol's
length: a 65-frame rollout is scored against the simulator's own 65-frame truth. Real data
comes from a folder (test split, windows from the start of each file) or the Moving MNIST
array (the last 10% of sequences).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.moving_mnist import MovingMNISTConfig, MovingMNISTDataset
from vtlm.data.synthetic import SyntheticConfig, SyntheticDataset

from .registry import Protocol


@dataclass
class HeldOut:
    """``video`` float (N, 3, T, R, R) in [-1, 1]; one caption per clip; labels for built-in data."""

    video: torch.Tensor
    captions: list[str]
    labels: list[dict] | None
    source: str


def synthetic_from_run(tokenizer_dir: str | Path) -> SyntheticConfig | None:
    """The built-in data config the tokenizer was trained on (its run's run.yaml), or None."""
    run_yaml = Path(tokenizer_dir).parent / "run.yaml"
    if not run_yaml.is_file():
        return None
    data = (yaml.safe_load(run_yaml.read_text()) or {}).get("data") or {}
    if data.get("source") != "synthetic" or not data.get("synthetic"):
        return None
    return SyntheticConfig(**data["synthetic"])


def _stack(items: list[dict]) -> torch.Tensor:
    return torch.stack([item["video"] for item in items])


def load_held_out(
    protocol: Protocol,
    synthetic: SyntheticConfig | None,
    path: str | None,
    caption: str = "descriptive",
    caption_frames: int | None = None,
) -> HeldOut:
    """``protocol.num_clips`` held-out clips of ``protocol.total_frames`` frames.

    ``synthetic``: the built-in data (for shapes/digits protocols); ``path``: a folder or
    ``mnist_test_seq.npy`` (for real-data protocols); ``caption``: descriptive or terse
    (built-in data); ``caption_frames``: built-in captions describe this many first frames
    (a rollout's captions are its training-length clip's, not the whole rollout's events).
    """
    n, frames, res = protocol.num_clips, protocol.total_frames, protocol.resolution
    if protocol.dataset in ("shapes", "digits"):
        if synthetic is None:
            raise ValueError(
                f"{protocol.name}: built-in {protocol.dataset} data needs its settings "
                "(none found in the tokenizer's run.yaml; pass --synthetic.*)"
            )
        kind_cfg = getattr(synthetic, protocol.dataset)
        if kind_cfg.resolution != res:
            raise ValueError(
                f"{protocol.name}: the data is {kind_cfg.resolution} px, the protocol {res} px "
                f"(pass --resolution {kind_cfg.resolution})"
            )
        cfg = dataclasses.replace(
            synthetic,
            kind=protocol.dataset,
            split="test",
            num_clips=n,
            caption=caption,
            **{protocol.dataset: dataclasses.replace(kind_cfg, num_frames=frames)},
        )
        items = [SyntheticDataset(cfg)[i] for i in range(n)]
        captions = [item["caption"] for item in items]
        if caption_frames and caption_frames < frames:
            short = dataclasses.replace(
                cfg, **{protocol.dataset: dataclasses.replace(kind_cfg, num_frames=caption_frames)}
            )
            captions = [SyntheticDataset(short)[i]["caption"] for i in range(n)]
        return HeldOut(
            _stack(items),
            captions,
            [item["meta"]["labels"] for item in items],
            f"built-in {protocol.dataset}, test split, seed {cfg.seed}",
        )
    if path is None:
        raise ValueError(f"{protocol.name}: {protocol.source or protocol.dataset} needs --data PATH")
    if protocol.dataset == "moving_mnist":
        dataset = MovingMNISTDataset(
            MovingMNISTConfig(path=path, num_frames=frames, resolution=res, split="test")
        )
    else:
        clip = ClipSpec(num_frames=frames, resolution=res, window="start")
        dataset = VideoFolderDataset(FolderConfig(root=path, split="test", clip=clip, media="videos"))
    if len(dataset) < n:
        raise ValueError(f"{protocol.name}: {path} has {len(dataset)} held-out clips, the protocol needs {n}")
    items = [dataset[i] for i in range(n)]
    return HeldOut(_stack(items), [item["caption"] for item in items], None, f"{path} (test split)")
