"""The standard Moving MNIST test array (``mnist_test_seq.npy``), when the user has the file.

The file holds uint8 (20, N, 64, 64): 20 frames of N sequences (N = 10,000 in the published
file). Nothing is downloaded: pass the path of a copy you have. The common protocol conditions
on the first 10 frames and predicts the next 10 (see ``vtlm.eval`` protocols).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from torch.utils.data import Dataset

from .clips import resize_crop, to_clip_tensor
from .splits import check_split


@dataclass
class MovingMNISTConfig:
    """A slice of the Moving MNIST array as a dataset."""

    # Path to mnist_test_seq.npy (uint8, (20, N, 64, 64)).
    path: str
    # Frames per clip, taken from the start of each 20-frame sequence.
    num_frames: int = 20
    # Output side in pixels (64 is the file's own).
    resolution: int = 64
    # Sequences are split by index: the last test_fraction is test, the val_fraction before it val.
    split: Literal["train", "val", "test", "all"] = "all"
    val_fraction: float = 0.1
    test_fraction: float = 0.1


class MovingMNISTDataset(Dataset):
    """Items ``{"video": float32 (3, T, R, R) in [-1, 1], "caption": "", "meta": {"index"}}``."""

    def __init__(self, cfg: MovingMNISTConfig):
        check_split(cfg.split, allow_all=True)
        path = Path(cfg.path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"path: {path} does not exist; vtlm downloads nothing, pass the path of your copy of mnist_test_seq.npy"
            )
        self.array = np.load(path, mmap_mode="r")
        if self.array.ndim != 4 or self.array.dtype != np.uint8:
            raise ValueError(
                f"{path}: expected uint8 (frames, sequences, H, W), got {self.array.dtype} {self.array.shape}"
            )
        frames, count = self.array.shape[:2]
        if not 1 <= cfg.num_frames <= frames:
            raise ValueError(f"num_frames: expected 1..{frames} for {path}, got {cfg.num_frames}")
        n_test, n_val = round(count * cfg.test_fraction), round(count * cfg.val_fraction)
        bounds = {"train": (0, count - n_test - n_val), "val": (count - n_test - n_val, count - n_test)}
        bounds.update({"test": (count - n_test, count), "all": (0, count)})
        self.start, self.stop = bounds[cfg.split]
        self.cfg = cfg

    def __len__(self) -> int:
        return self.stop - self.start

    def frame_counts(self) -> list[int]:
        return [self.cfg.num_frames] * len(self)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside [0, {len(self)})")
        sequence = np.asarray(self.array[: self.cfg.num_frames, self.start + index])  # (T, H, W)
        frames = np.repeat(sequence[..., None], 3, axis=-1)
        frames = resize_crop(frames, self.cfg.resolution)
        return {"video": to_clip_tensor(frames), "caption": "", "meta": {"index": self.start + index}}
