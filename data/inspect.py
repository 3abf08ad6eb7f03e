"""What is in a folder of videos: counts, durations, resolutions, unreadable files, a preview.

Used by ``vtlm data inspect PATH``. Reads without writing anything into the folder.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from .clips import resize_crop
from .folder import probe_all, scan_files
from .manifest import read_manifest, sidecar_caption
from .video_io import VideoInfo, get_backend, is_image, read_frames
from .writers import frame_strip, write_png


def inspect_folder(
    root: str | os.PathLike,
    backend: str = "auto",
    preview: str | os.PathLike | None = None,
    preview_clips: int = 8,
    preview_frames: int = 8,
    preview_size: int = 64,
) -> dict:
    """Summary of every video and image below ``root``; optionally a preview PNG.

    The preview has one row per clip (the first ``preview_clips`` readable videos, else images)
    and ``preview_frames`` evenly spaced frames per row, each ``preview_size`` px square.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"path: {root} is not a folder")
    reader = get_backend(backend)
    files = scan_files(root, "both")
    probed = probe_all(root, files, reader, use_cache=False)
    infos = {rel: VideoInfo(**r["info"]) for rel, r in probed.items() if "info" in r}
    videos = {rel: info for rel, info in infos.items() if not is_image(rel)}
    manifest = {}
    for name in ("manifest.jsonl", "manifest.csv"):
        if (root / name).is_file():
            manifest = read_manifest(root / name)
            break
    captioned = sum(1 for rel in infos if str(root / rel) in manifest or sidecar_caption(root / rel))
    frames = np.array([info.num_frames for info in videos.values()] or [0])
    durations = np.array([info.duration for info in videos.values()] or [0.0])
    summary = {
        "root": str(root),
        "files": len(files),
        "videos": len(videos),
        "images": len(infos) - len(videos),
        "unreadable": {rel: r["error"] for rel, r in probed.items() if "error" in r},
        "captioned": captioned,
        "frames": {
            "total": int(frames.sum()),
            "min": int(frames.min()),
            "median": float(np.median(frames)),
            "max": int(frames.max()),
        },
        "duration_s": {
            "total": float(durations.sum()),
            "min": float(durations.min()),
            "max": float(durations.max()),
        },
        "fps": dict(Counter(round(info.fps, 2) for info in videos.values()).most_common()),
        "resolutions": {
            f"{h}x{w}": n for (h, w), n in Counter((i.height, i.width) for i in infos.values()).most_common()
        },
    }
    if preview is not None and infos:
        picks = (list(videos) or list(infos))[:preview_clips]
        rows = []
        for rel in picks:
            info = infos[rel]
            indices = np.linspace(0, info.num_frames - 1, preview_frames).round().astype(int).tolist()
            clip = resize_crop(read_frames(root / rel, indices, reader), preview_size)
            rows.append(frame_strip(clip, max_frames=preview_frames))
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        summary["preview"] = str(write_png(preview, np.concatenate(rows, axis=0)))
    return summary


def format_summary(summary: dict) -> str:
    """The summary as a few human-readable lines."""
    lines = [
        f"{summary['root']}: {summary['files']} files, {summary['videos']} videos, {summary['images']} images, "
        f"{len(summary['unreadable'])} unreadable, {summary['captioned']} with captions",
        f"  frames per video: min {summary['frames']['min']}, median {summary['frames']['median']:g}, "
        f"max {summary['frames']['max']} ({summary['frames']['total']} in all, {summary['duration_s']['total']:.1f} s)",
        f"  fps: {summary['fps']}",
        f"  resolutions (HxW): {summary['resolutions']}",
    ]
    for rel, reason in list(summary["unreadable"].items())[:10]:
        lines.append(f"  unreadable: {rel}: {reason}")
    if len(summary["unreadable"]) > 10:
        lines.append(f"  ... and {len(summary['unreadable']) - 10} more unreadable")
    if "preview" in summary:
        lines.append(f"  preview: {summary['preview']}")
    return "\n".join(lines)
