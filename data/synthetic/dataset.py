"""Built-in procedural data as a torch Dataset, generated on the fly, or written to disk as files.

Clip ``i`` of a split is rendered from :func:`vtlm.data.splits.clip_seed` (dataset seed, split,
i), so a split of any size exists without storage, is the same on every machine, and never
shares a clip with the other splits. :func:`write_synthetic` writes the same clips as mp4 files
with a JSONL manifest (captions, labels), so the real-file path of vtlm reads them too.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from torch.utils.data import Dataset

from ..clips import to_clip_tensor
from ..manifest import write_manifest
from ..splits import check_split, clip_seed
from ..writers import write_mp4
from .clip import SyntheticClip
from .digits import DigitsConfig, render_digits
from .shapes import ShapesConfig, render_shapes


@dataclass
class SyntheticConfig:
    """Which built-in dataset, which split, how many clips, which captions."""

    # shapes: colored shapes bouncing (collisions, camera pan optional); digits: Moving-MNIST style.
    kind: Literal["shapes", "digits"] = "shapes"
    shapes: ShapesConfig = field(default_factory=ShapesConfig)
    digits: DigitsConfig = field(default_factory=DigitsConfig)
    split: Literal["train", "val", "test"] = "train"
    # Clips in this split (generated on the fly, so a large number costs no storage).
    num_clips: int = 10_000
    # Dataset seed: with the split and the clip index it fixes every clip.
    seed: int = 0
    # Caption served as "caption": descriptive, terse, or a random choice of the two per item
    # (mixed), so a researcher can measure what descriptive captions buy.
    caption: Literal["descriptive", "terse", "mixed"] = "descriptive"

    def __post_init__(self):
        if isinstance(self.shapes, dict):
            self.shapes = ShapesConfig(**self.shapes)
        if isinstance(self.digits, dict):
            self.digits = DigitsConfig(**self.digits)
        if self.kind not in ("shapes", "digits"):
            raise ValueError(f"kind: expected 'shapes' or 'digits', got {self.kind!r}")
        check_split(self.split)
        if self.num_clips < 1:
            raise ValueError(f"num_clips: expected >= 1, got {self.num_clips}")
        if self.caption not in ("descriptive", "terse", "mixed"):
            raise ValueError(f"caption: expected 'descriptive', 'terse' or 'mixed', got {self.caption!r}")

    @property
    def num_frames(self) -> int:
        return self.shapes.num_frames if self.kind == "shapes" else self.digits.num_frames

    @property
    def resolution(self) -> int:
        return self.shapes.resolution if self.kind == "shapes" else self.digits.resolution


def render_clip(cfg: SyntheticConfig, index: int, split: str | None = None) -> SyntheticClip:
    """Clip ``index`` of ``split`` (default: the config's split)."""
    seed = clip_seed(cfg.seed, split or cfg.split, index)
    if cfg.kind == "shapes":
        return render_shapes(cfg.shapes, seed)
    return render_digits(cfg.digits, seed)


class SyntheticDataset(Dataset):
    """Items ``{"video": float32 (3, T, R, R) in [-1, 1], "caption": str, "meta": dict}``.

    ``meta`` holds both captions, the structured labels (objects, per-frame positions, events)
    and the clip's split, index and seed. Item ``i`` is the same on every call, except the
    caption choice when ``caption="mixed"`` (seeded by the index too, so also fixed).
    """

    def __init__(self, cfg: SyntheticConfig):
        self.cfg = cfg

    def __len__(self) -> int:
        return self.cfg.num_clips

    def frame_counts(self) -> list[int]:
        return [self.cfg.num_frames] * len(self)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        clip = render_clip(self.cfg, index)
        caption = self.cfg.caption
        if caption == "mixed":
            caption = (
                "terse" if np.random.default_rng([self.cfg.seed, index]).random() < 0.5 else "descriptive"
            )
        meta = {
            "split": self.cfg.split,
            "index": index,
            "seed": clip_seed(self.cfg.seed, self.cfg.split, index),
            "caption_terse": clip.caption_terse,
            "caption_descriptive": clip.caption_descriptive,
            "labels": clip.labels,
        }
        text = clip.caption_terse if caption == "terse" else clip.caption_descriptive
        return {"video": to_clip_tensor(clip.frames), "caption": text, "meta": meta}


def _write_one(job: tuple[SyntheticConfig, str, int, str, float]) -> dict:
    cfg, split, index, out_dir, fps = job
    clip = render_clip(cfg, index, split)
    rel = f"{split}/{cfg.kind}_{index:06d}.mp4"
    target = Path(out_dir) / rel
    if not target.is_file():  # files are renamed into place, so an existing one is complete
        # 4:4:4 lossless keeps colors exact at 32 px (4:2:0 smears small shapes' edges).
        write_mp4(target, clip.frames, fps=fps, crf=0, pix_fmt="yuv444p")
    return {
        "path": rel,
        "caption": clip.caption_descriptive,
        "caption_terse": clip.caption_terse,
        "caption_descriptive": clip.caption_descriptive,
        "split": split,
        "index": index,
        "seed": clip_seed(cfg.seed, split, index),
        "labels": clip.labels,
    }


def write_synthetic(
    cfg: SyntheticConfig,
    out_dir: str | os.PathLike,
    counts: dict[str, int],
    fps: float = 8.0,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Write ``counts[split]`` clips of each split as mp4 files plus ``manifest.jsonl``.

    Re-running after an interruption skips the clips already written. Returns the manifest path.
    """
    from tqdm import tqdm

    jobs = [(cfg, split, i, str(out_dir), fps) for split, n in counts.items() for i in range(n)]
    for split in counts:
        check_split(split)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(tqdm(pool.map(_write_one, jobs, chunksize=8), total=len(jobs), disable=not progress))
    else:
        rows = [_write_one(job) for job in tqdm(jobs, disable=not progress, desc="writing clips")]
    return write_manifest(Path(out_dir) / "manifest.jsonl", rows)
