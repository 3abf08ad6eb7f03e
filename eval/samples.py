"""Sample grids of a protocol: ground truth | each generator, a few held-out clips as rows."""

from __future__ import annotations

from pathlib import Path

import torch

from vtlm.data.writers import frame_strip, grid_video, to_uint8, upscale, write_mp4, write_png

from .protocols.clips import HeldOut
from .protocols.registry import Protocol


def write_grid(
    out_dir: Path,
    name: str,
    protocol: Protocol,
    data: HeldOut,
    columns: dict[str, torch.Tensor],
    rows: int,
    fps: float,
) -> dict:
    """Write OUT/samples/NAME.mp4 (playable) and NAME.png (a frame strip); return the grid's
    entry for results.json. ``columns``: name -> videos (N, 3, T, R, R) in [-1, 1]."""
    rows = min(rows, len(data.captions))
    total = protocol.total_frames
    videos = {
        "ground truth": data.video[:rows, :, :total],
        **{k: v[:rows, :, :total] for k, v in columns.items()},
    }
    factor = max(1, 96 // protocol.resolution)
    sheet = upscale(grid_video([to_uint8(v) for v in videos.values()]), factor)
    folder = out_dir / "samples"
    video_path = write_mp4(folder / f"{name}.mp4", sheet, fps=fps, crf=12, pix_fmt="yuv420p")
    strip_path = write_png(folder / f"{name}.png", frame_strip(sheet, max_frames=min(total, 9)))
    titles = {
        "reconstruction": "held-out clips and their reconstructions by the tokenizer",
        "text_to_video": "text-to-video from held-out captions",
        "continuation": f"continuations of the first {protocol.context_frames} frames",
        "rollout": f"long rollouts to {total} frames from {protocol.context_frames} frames: sliding window vs last-frame chaining",
    }
    return {
        "protocol": name,
        "title": titles[protocol.kind],
        "columns": list(videos),
        "rows": data.captions[:rows],
        "file": str(video_path.relative_to(out_dir)),
        "strip": str(strip_path.relative_to(out_dir)),
        "fps": fps,
    }
