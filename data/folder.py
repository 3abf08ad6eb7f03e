"""A dataset over a folder of real files: videos (mp4, avi, webm, mkv, ...) and images.

Every file is probed once (frame count, fps, size) into an index cached beside the data as
``.vtlm_index.json`` and re-probed only when its size or modification time changes. Files that
cannot be read, and videos too short for the clip spec, are left out, counted and reported
once; a folder with no usable file is an error that names the folder. A file that breaks
later, while training, is skipped (another clip with the same frame count is returned) and
counted, never ending the run (a frame of a video stands in for a broken image), and is not
read again. So is a file whose probe or read takes longer than ``read_timeout`` seconds (a
decoder that hangs): it is abandoned and counted, and the worker moves on.

An image is a 1-frame clip, so one dataset can serve images and videos together; items then
differ in frame count, and :class:`vtlm.data.batching.ImageVideoBatchSampler` keeps each batch
to one frame count.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from .clips import ClipSpec, clip_indices, resize_crop, to_clip_tensor
from .manifest import class_caption, read_manifest, sidecar_caption
from .splits import check_split, split_of
from .video_io import (
    ReadTimeout,
    VideoInfo,
    VideoReadError,
    get_backend,
    is_image,
    is_video,
    probe_file,
    read_frames,
    with_timeout,
)

log = logging.getLogger(__name__)

INDEX_NAME = ".vtlm_index.json"
INDEX_VERSION = 1
_UCF_GROUP = re.compile(r"_g(\d\d)_c\d\d")


@dataclass
class FolderConfig:
    """A folder of video and image files as a dataset."""

    # Folder searched recursively for video and image files.
    root: str
    # How clips are cut from each file (frames, stride or fps, window, resolution, crop).
    clip: ClipSpec = field(default_factory=ClipSpec)
    # Captions: JSONL or CSV manifest (path, caption). None: root/manifest.jsonl or .csv if present.
    manifest: str | None = None
    # Caption source. auto: manifest, else a sidecar name.txt, else empty. class_folder: the
    # parent folder's name (UCF-101 layout, 'ApplyEyeMakeup' -> 'apply eye makeup').
    captions: Literal["auto", "manifest", "sidecar", "class_folder", "none"] = "auto"
    # Which files: videos and images, only videos, or only images.
    media: Literal["both", "videos", "images"] = "both"
    # Which split to serve. A manifest's 'split' field wins; UCF-101 file names put groups
    # 1-7 in test (the official split 1); otherwise a hash of the relative path decides.
    split: Literal["train", "val", "test", "all"] = "all"
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    split_seed: int = 0
    # Video reader: auto (decord, PyAV for what decord cannot read), decord or pyav.
    backend: Literal["auto", "decord", "pyav"] = "auto"
    # Keep the probe results in root/.vtlm_index.json (skipped when the folder is read-only).
    cache_index: bool = True
    # Seconds one file's probe or read may take; a slower one (a hanging decoder) is abandoned,
    # and the file skipped and counted like an unreadable one. None: no limit.
    read_timeout: float | None = 60.0

    def __post_init__(self):
        if isinstance(self.clip, dict):
            self.clip = ClipSpec(**self.clip)
        check_split(self.split, allow_all=True)
        if self.media not in ("both", "videos", "images"):
            raise ValueError(f"media: expected 'both', 'videos' or 'images', got {self.media!r}")
        if self.captions not in ("auto", "manifest", "sidecar", "class_folder", "none"):
            raise ValueError(
                f"captions: expected auto, manifest, sidecar, class_folder or none, got {self.captions!r}"
            )
        if self.read_timeout is not None and not self.read_timeout > 0:
            raise ValueError(f"read_timeout: expected seconds > 0 or None, got {self.read_timeout}")


@dataclass
class FileEntry:
    """One usable file of the index."""

    path: str  # relative to the root
    info: VideoInfo
    caption: str
    split: str
    meta: dict

    @property
    def is_image(self) -> bool:
        return is_image(self.path)


def scan_files(root: Path, media: str) -> list[Path]:
    """Video and image files below ``root``, sorted, hidden files and folders skipped."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if (media != "images" and is_video(path)) or (media != "videos" and is_image(path)):
                found.append(path)
    return found


def probe_all(
    root: Path, files: list[Path], backend, use_cache: bool, timeout: float | None = None
) -> dict[str, dict]:
    """{relative path: {"info": {...}} or {"error": reason}}, from the cache where still valid;
    a probe taking more than ``timeout`` seconds is an error."""
    cache_path = root / INDEX_NAME
    cached: dict = {}
    if use_cache and cache_path.is_file():
        try:
            payload = json.loads(cache_path.read_text())
            if payload.get("version") == INDEX_VERSION:
                cached = payload["files"]
        except (OSError, ValueError, KeyError):
            log.warning("%s: index cache unreadable, rebuilding it", cache_path)
    results, changed, timed_out = {}, False, set()
    for path in files:
        rel = path.relative_to(root).as_posix()
        stat = path.stat()
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        old = cached.get(rel)
        if old is not None and old.get("size") == stamp["size"] and old.get("mtime_ns") == stamp["mtime_ns"]:
            results[rel] = old
            continue
        changed = True
        try:
            info = with_timeout(lambda: probe_file(path, backend), timeout, path, "probing")  # noqa: B023
            results[rel] = {**stamp, "info": asdict(info)}
        except VideoReadError as err:
            results[rel] = {**stamp, "error": err.reason}
            if isinstance(err, ReadTimeout):
                timed_out.add(rel)  # probed again next time, not remembered as unreadable
    if use_cache and (changed or set(results) != set(cached)):
        tmp = cache_path.with_name(f"{INDEX_NAME}.tmp{os.getpid()}")
        kept = {rel: r for rel, r in results.items() if rel not in timed_out}
        try:
            tmp.write_text(json.dumps({"version": INDEX_VERSION, "files": kept}))
            os.replace(tmp, cache_path)
        except OSError as err:
            log.info("%s: not caching the file index (%s)", root, err)
    return results


class VideoFolderDataset(Dataset):
    """Clips from a folder of files: items are dicts

    ``{"video": float32 (3, T, R, R) in [-1, 1], "caption": str, "meta": dict}`` where T is
    ``cfg.clip.num_frames`` for a video and 1 for an image; ``meta`` holds the relative path,
    the source frame indices and any extra manifest fields.
    """

    def __init__(self, cfg: FolderConfig, allow_empty: bool = False):
        self.cfg = cfg
        self.root = Path(cfg.root).expanduser().resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"root: {self.root} is not a folder")
        self.backend = get_backend(cfg.backend)
        files = scan_files(self.root, cfg.media)
        probed = probe_all(self.root, files, self.backend, cfg.cache_index, cfg.read_timeout)
        manifest = self._manifest()
        self.unreadable = {rel: r["error"] for rel, r in probed.items() if "error" in r}
        self.too_short: list[str] = []
        self.entries: list[FileEntry] = []
        for rel, result in probed.items():
            if "error" in result:
                continue
            info = VideoInfo(**result["info"])
            if not is_image(rel) and cfg.clip.num_frames > 1 and info.num_frames < cfg.clip.span(info.fps):
                self.too_short.append(rel)
                continue
            row = manifest.get(str(self.root / rel), {})
            split = row.get("split") or self._split_of(rel)
            if cfg.split != "all" and split != cfg.split:
                continue
            meta = {k: v for k, v in row.items() if k not in ("path", "caption")}
            self.entries.append(FileEntry(rel, info, self._caption(rel, row), split, meta))
        if self.unreadable or self.too_short:
            log.warning(
                "%s: skipped %d unreadable and %d too-short files (e.g. %s)",
                self.root,
                len(self.unreadable),
                len(self.too_short),
                next(iter(self.unreadable.items()), None) or self.too_short[:1],
            )
        if not self.entries and not (allow_empty and files):
            raise ValueError(
                f"{self.root}: no usable file for split {cfg.split!r} ({len(files)} {cfg.media} files found, "
                f"{len(self.unreadable)} unreadable, {len(self.too_short)} shorter than "
                f"{cfg.clip.num_frames} frames at stride {cfg.clip.frame_stride})"
            )
        self.runtime_failures: dict[str, str] = {}
        self._broken: set[int] = set()  # items whose file failed while reading

    def _manifest(self) -> dict[str, dict]:
        if self.cfg.captions not in ("auto", "manifest"):
            return {}
        path = self.cfg.manifest
        if path is None:
            candidates = [self.root / "manifest.jsonl", self.root / "manifest.csv"]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                if self.cfg.captions == "manifest":
                    raise FileNotFoundError(
                        f"manifest: captions='manifest' but {self.root} has no manifest.jsonl/.csv"
                    )
                return {}
        return read_manifest(path)

    def _caption(self, rel: str, row: dict) -> str:
        mode = self.cfg.captions
        if mode in ("auto", "manifest") and row:
            return row["caption"]
        if mode in ("auto", "sidecar"):
            return sidecar_caption(self.root / rel) or ""
        if mode == "class_folder":
            parent = Path(rel).parent.name
            return class_caption(parent) if parent else ""
        return ""

    def _split_of(self, rel: str) -> str:
        group = _UCF_GROUP.search(Path(rel).name)
        if self.cfg.captions == "class_folder" and group:
            if 1 <= int(group.group(1)) <= 7:
                return "test"
            return (
                "val" if split_of(rel, self.cfg.val_fraction, 0.0, self.cfg.split_seed) == "val" else "train"
            )
        return split_of(rel, self.cfg.val_fraction, self.cfg.test_fraction, self.cfg.split_seed)

    def __len__(self) -> int:
        return len(self.entries)

    def frame_counts(self) -> list[int]:
        """Frames of each item's clip (1 for images), for grouping batches by shape."""
        return [1 if e.is_image else self.cfg.clip.num_frames for e in self.entries]

    def report(self) -> dict:
        """Counts of what was used and what was skipped, with reasons."""
        return {
            "root": str(self.root),
            "usable": len(self.entries),
            "videos": sum(not e.is_image for e in self.entries),
            "images": sum(e.is_image for e in self.entries),
            "unreadable": dict(self.unreadable),
            "too_short": list(self.too_short),
            "failed_while_reading": dict(self.runtime_failures),
        }

    def load(self, index: int, rng: np.random.Generator, num_frames: int | None = None) -> dict:
        """Item ``index`` (``num_frames`` frames of a video instead of the clip spec's: 1 lets a
        video frame stand in for an image); raises VideoReadError when its file cannot be
        decoded in ``read_timeout`` seconds."""
        entry = self.entries[index]
        spec = self.cfg.clip
        num_frames = spec.num_frames if num_frames is None else num_frames
        if entry.is_image:
            indices = [0]
        elif num_frames == 1:
            indices = [int(rng.integers(0, entry.info.num_frames))] if spec.window == "random" else [0]
        else:
            indices = clip_indices(entry.info.num_frames, entry.info.fps, spec, rng)
        path = self.root / entry.path
        frames = with_timeout(
            lambda: read_frames(path, indices, self.backend), self.cfg.read_timeout, path, "reading"
        )
        frames = resize_crop(frames, spec.resolution, spec.crop, rng)
        meta = {"path": entry.path, "frame_indices": indices, **entry.meta}
        return {"video": to_clip_tensor(frames), "caption": entry.caption, "meta": meta}

    def _stand_ins(self, frames: int) -> list[int]:
        """Items not known to fail that give a clip of ``frames`` frames (for 1: any file)."""
        broken = self._broken
        return [
            i
            for i, e in enumerate(self.entries)
            if i not in broken and (frames == 1 or (not e.is_image and frames == self.cfg.clip.num_frames))
        ]

    def __getitem__(self, index: int) -> dict:
        # Seeded from torch's generator: distinct per worker and reproducible under
        # lightning.seed_everything(workers=True).
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        frames_wanted = 1 if self.entries[index].is_image else self.cfg.clip.num_frames
        last_error = None
        for _ in range(16):
            if index not in self._broken:  # a file that failed once is not read again
                try:
                    return self.load(index, rng, frames_wanted)
                except VideoReadError as err:
                    last_error = err
                    if err.path not in self.runtime_failures:
                        log.warning("skipping %s: %s", err.path, err.reason)
                    self.runtime_failures[err.path] = err.reason
                    self._broken.add(index)
            stand_ins = self._stand_ins(frames_wanted)
            if not stand_ins:
                raise RuntimeError(
                    f"{self.root}: every file that can give a {frames_wanted}-frame clip failed to decode "
                    f"({len(self._broken)} files; last: {last_error})"
                )
            index = stand_ins[int(rng.integers(0, len(stand_ins)))]
        raise RuntimeError(f"{self.root}: 16 files in a row failed to decode; last: {last_error}")
