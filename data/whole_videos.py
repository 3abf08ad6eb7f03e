"""Whole files as clips, for offline tokenization: every frame (up to a cap) of each video.

A causal tokenizer encodes a long video in chunks with the same codes as one pass, so a file
is tokenized whole and the GPT later reads windows of any length from its codes. Frame counts
are cut to the longest ``1 + k * frame_multiple`` the file allows.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from .clips import resize_crop, to_clip_tensor
from .folder import FolderConfig, VideoFolderDataset
from .video_io import VideoReadError, read_frames


class WholeVideoDataset(Dataset):
    """Items ``{"key": relative path, "video": (3, T, R, R) in [-1, 1], "caption", "meta"}``
    (None for a file that fails to decode; the caller counts and skips it).

    Args:
        cfg: the folder; its clip spec sets the resolution and the frame stride / fps.
        frame_multiple: T is cut to 1 + k * frame_multiple (the tokenizer's temporal stride).
        max_frames: cap on T per file (None: the whole file).
    """

    def __init__(self, cfg: FolderConfig, frame_multiple: int, max_frames: int | None = None):
        self.folder = VideoFolderDataset(cfg, allow_empty=True)  # a split may hold no file
        self.frame_multiple, self.max_frames = frame_multiple, max_frames

    def __len__(self) -> int:
        return len(self.folder)

    def key(self, index: int) -> str:
        return self.folder.entries[index].path

    def __getitem__(self, index: int) -> dict | None:
        entry = self.folder.entries[index]
        spec = self.folder.cfg.clip
        stride = spec.stride_for(entry.info.fps)
        frames = 1 + (entry.info.num_frames - 1) // stride
        if self.max_frames:
            frames = min(frames, self.max_frames)
        frames = 1 + (frames - 1) // self.frame_multiple * self.frame_multiple
        indices = list(range(0, frames * stride, stride))
        try:
            pixels = read_frames(self.folder.root / entry.path, indices, self.folder.backend)
        except VideoReadError:
            return None
        pixels = resize_crop(pixels, spec.resolution, "center", np.random.default_rng(0))
        meta = {"path": entry.path, "split": entry.split, "frame_stride": stride, **entry.meta}
        return {"key": entry.path, "video": to_clip_tensor(pixels), "caption": entry.caption, "meta": meta}
