"""Reading token shards: the codes of a tokenized corpus, memory-mapped, as a torch Dataset.

:class:`TokenShards` opens a shard folder through its ``index.json`` (format in
:mod:`vtlm.data.shards`), checks every shard's checksum once, and reads any clip's codes from
read-only memory maps. :class:`TokenShardDataset` serves whole clips or random windows of latent
frames; :func:`collate_codes` stacks them. Items and batches::

    item  = {"codes": int64 (t, h, w), "caption": str, "meta": dict}
    batch = {"codes": int64 (B, t, h, w), "caption": list[str], "meta": list[dict]}

Codes lie in [0, codebook_size). Clips of different t (images have t = 1) go to separate
batches through :class:`vtlm.data.batching.ImageVideoBatchSampler` and ``frame_counts()``.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .batching import stack_batch
from .shards import FORMAT_VERSION, INDEX_FORMAT, INDEX_NAME, ShardError, read_shard_header, verify_shard


class TokenShards:
    """The clips of a shard folder, by position 0 .. len - 1 in index order.

    Args:
        root: folder holding ``index.json`` and the shards it lists.
        verify: recompute each shard's sha256 on opening (reads every .bin once).

    Raises:
        FileNotFoundError: no ``index.json`` in ``root``.
        ShardError: a listed shard is missing, truncated, corrupt, or was rewritten after the
            index was written.

    Memory maps open on first use, at most ``MAX_OPEN_MAPS`` at a time, and are not pickled:
    a copy sent to a DataLoader worker opens its own.
    """

    MAX_OPEN_MAPS = 256

    def __init__(self, root: str | os.PathLike, verify: bool = True):
        self.root = Path(root)
        index_path = self.root / INDEX_NAME
        if not index_path.is_file():
            raise FileNotFoundError(
                f"{self.root}: no {INDEX_NAME} (not a token shard folder); run `vtlm tokenizer encode` first"
            )
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ShardError(f"{index_path}: not valid JSON ({err}); rerun write_index") from err
        if (
            not isinstance(index, dict)
            or index.get("format") != INDEX_FORMAT
            or index.get("version") != FORMAT_VERSION
        ):
            raise ShardError(
                f"{index_path}: not a version-{FORMAT_VERSION} token index "
                f"(format {index.get('format')!r}, version {index.get('version')!r})"
            )
        self.codebook_size: int = index["codebook_size"]
        self.grid: tuple[int, int] = tuple(index["grid"])
        self.extra: dict = index["extra"]
        self.num_tokens: int = index["num_tokens"]
        self._bins: list[tuple[Path, str]] = []  # (path, numpy dtype) per shard
        shard_of, offsets, shapes = [], [], []
        self._keys: list[str] = []
        self._captions: list[str] = []
        self._metas: list[dict] = []
        for number, entry in enumerate(index["shards"]):
            json_path = self.root / f"{entry['name']}.json"
            header = read_shard_header(json_path)
            if header["sha256"] != entry["sha256"] or len(header["clips"]) != entry["clips"]:
                raise ShardError(
                    f"{json_path}: differs from {index_path}; the shard was rewritten, rerun write_index"
                )
            if verify:
                verify_shard(json_path)
            self._bins.append(
                (json_path.with_suffix(".bin"), "<u2" if header["dtype"] == "uint16" else "<i4")
            )
            for clip in header["clips"]:
                shard_of.append(number)
                offsets.append(clip["offset"])
                shapes.append(clip["shape"])
                self._keys.append(clip["key"])
                self._captions.append(clip["caption"])
                self._metas.append(clip["meta"])
        self._shard_of = np.asarray(shard_of, dtype=np.int32)
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._shapes = np.asarray(shapes, dtype=np.int64).reshape(-1, 3)
        self._maps: OrderedDict[int, np.memmap] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = OrderedDict()
        return state

    def _map(self, shard: int) -> np.memmap:
        if shard in self._maps:
            self._maps.move_to_end(shard)
            return self._maps[shard]
        path, dtype = self._bins[shard]
        mapped = np.memmap(path, dtype=dtype, mode="r")
        self._maps[shard] = mapped
        if len(self._maps) > self.MAX_OPEN_MAPS:
            self._maps.popitem(last=False)
        return mapped

    def codes(self, i: int, start: int = 0, frames: int | None = None) -> np.ndarray:
        """Codes of clip ``i``: int64 (t, h, w) in [0, codebook_size), a copy.

        ``start`` and ``frames`` read only latent frames [start, start + frames) (all frames
        from ``start`` when ``frames`` is None); the result is then (frames, h, w).
        """
        t, h, w = (int(n) for n in self._shapes[i])
        frames = t - start if frames is None else frames
        if not (0 <= start and frames >= 1 and start + frames <= t):
            raise IndexError(f"frames [{start}, {start + frames}) of clip {i}: the clip has {t} frames")
        begin = int(self._offsets[i]) + start * h * w
        flat = self._map(int(self._shard_of[i]))[begin : begin + frames * h * w]
        return flat.astype(np.int64).reshape(frames, h, w)

    def caption(self, i: int) -> str:
        return self._captions[i]

    def meta(self, i: int) -> dict:
        """The clip's stored meta dict (a copy)."""
        return dict(self._metas[i])

    def key(self, i: int) -> str:
        return self._keys[i]

    def shape(self, i: int) -> tuple[int, int, int]:
        """(t, h, w) of clip ``i``."""
        return tuple(int(n) for n in self._shapes[i])

    def frame_counts(self) -> np.ndarray:
        """int64 (len,): latent frames t of each clip."""
        return self._shapes[:, 0].copy()


class TokenShardDataset(Dataset):
    """Token clips as dataset items ``{"codes": int64 (t, h, w), "caption": str, "meta": dict}``.

    Args:
        shards: an open :class:`TokenShards`, or a shard folder to open (checksums verified).
        mode: ``clip`` serves whole clips; ``window`` a random run of ``window`` latent frames
            of a clip, drawn anew on every access with ``torch.randint`` (reproducible under a
            global seed, distinct across DataLoader workers).
        window: latent frames per item in window mode (required there, refused in clip mode).
        min_frames: clips with fewer latent frames are left out (2 leaves out images).

    Clips left out (shorter than ``min_frames``, or than ``window`` in window mode) are
    counted in ``num_excluded``. ``meta`` is the stored meta plus ``key`` (the clip's key) and
    ``frame_start`` (first latent frame served, 0 in clip mode).
    """

    def __init__(
        self,
        shards: TokenShards | str | os.PathLike,
        mode: Literal["clip", "window"] = "clip",
        window: int | None = None,
        min_frames: int = 1,
    ):
        if mode not in ("clip", "window"):
            raise ValueError(f"mode: expected 'clip' or 'window', got {mode!r}")
        if mode == "window" and (window is None or window < 1):
            raise ValueError(f"window: window mode needs a window of >= 1 latent frames, got {window}")
        if mode == "clip" and window is not None:
            raise ValueError(f"window: only used in window mode, got window={window} in clip mode")
        self.shards = shards if isinstance(shards, TokenShards) else TokenShards(shards)
        self.mode, self.window, self.min_frames = mode, window, min_frames
        frames = self.shards.frame_counts()
        shortest = max(min_frames, window or 1)
        self._clips = np.flatnonzero(frames >= shortest)
        self.num_excluded = int(len(frames) - len(self._clips))
        if len(self._clips) == 0:
            what = f"window={window}" if mode == "window" else f"min_frames={min_frames}"
            raise ValueError(
                f"{what}: no clip of {self.shards.root} has >= {shortest} latent frames "
                f"(longest: {int(frames.max(initial=0))})"
            )

    def __len__(self) -> int:
        return len(self._clips)

    def frame_counts(self) -> list[int]:
        """Latent frames of each item (``window`` in window mode), for grouping batches by shape."""
        if self.mode == "window":
            return [self.window] * len(self._clips)
        return self.shards.frame_counts()[self._clips].tolist()

    def __getitem__(self, index: int) -> dict:
        clip = int(self._clips[index])
        frames = self.shards.shape(clip)[0]
        start, length = 0, frames
        if self.mode == "window":
            start = int(torch.randint(0, frames - self.window + 1, ()).item())
            length = self.window
        codes = torch.from_numpy(self.shards.codes(clip, start, length))
        meta = {**self.shards.meta(clip), "key": self.shards.key(clip), "frame_start": start}
        return {"codes": codes, "caption": self.shards.caption(clip), "meta": meta}


def collate_codes(items: Sequence[dict]) -> dict:
    """Stack items into ``{"codes": int64 (B, t, h, w), "caption": list[str], "meta": list[dict]}``.

    Raises:
        ValueError: items of different (t, h, w) shapes.
    """
    return stack_batch(items, "codes")
