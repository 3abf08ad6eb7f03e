"""Writing clips for people to look at: mp4 (PyAV), GIF and PNG (Pillow), and side-by-side grids.

Everything here takes frames as uint8 (T, H, W, 3) RGB numpy arrays; :func:`to_uint8` turns a
model's float video, (C, T, H, W) or (B, C, T, H, W) in [-1, 1], into that layout. Files are
written to a temporary name beside the target and renamed, so a killed run never leaves half a
file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def to_uint8(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float video in [-1, 1] -> uint8 frames.

    (C, T, H, W) -> (T, H, W, 3); (B, C, T, H, W) -> (B, T, H, W, 3). One-channel input is
    repeated to RGB. Values outside [-1, 1] are clipped.
    """
    if isinstance(video, torch.Tensor):
        video = video.detach().float().cpu().numpy()
    if video.ndim not in (4, 5):
        raise ValueError(f"video: expected (C, T, H, W) or (B, C, T, H, W), got shape {video.shape}")
    channel_axis = video.ndim - 4
    if video.shape[channel_axis] == 1:
        video = np.repeat(video, 3, axis=channel_axis)
    if video.shape[channel_axis] != 3:
        raise ValueError(f"video: expected 1 or 3 channels, got {video.shape[channel_axis]}")
    frames = np.clip((video + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    return np.moveaxis(frames, channel_axis, -1)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(
            f"frames: expected uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}"
        )
    return frames


def _atomic_target(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 8.0,
    crf: int = 18,
    pix_fmt: str = "yuv420p",
) -> Path:
    """H.264 mp4 of uint8 (T, H, W, 3) frames.

    ``yuv420p`` plays everywhere (browsers included) but needs even sides: odd sides are padded
    by repeating the last row or column. ``yuv444p`` keeps full color resolution (better for
    tiny synthetic data, where 4:2:0 chroma visibly smears 32 px shapes); ``crf`` 0 is lossless.
    """
    import av

    frames = _check_frames(frames)
    if pix_fmt == "yuv420p":
        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    path, tmp = _atomic_target(path)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=round(fps))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = pix_fmt
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0) -> Path:
    """Looping GIF of uint8 (T, H, W, 3) frames."""
    from PIL import Image

    frames = _check_frames(frames)
    images = [Image.fromarray(frame) for frame in frames]
    path, tmp = _atomic_target(path)
    try:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(20, round(1000 / fps)),
            loop=0,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """PNG of a uint8 (H, W, 3) image."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    path, tmp = _atomic_target(path)
    try:
        Image.fromarray(image).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def grid_video(columns: Sequence[np.ndarray], pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Side-by-side video: one column per source, one row per clip.

    ``columns[j]`` is uint8 (B, T_j, H, W, 3): e.g. ground truth | reconstruction | sample.
    Columns shorter in time are padded with black frames. Returns uint8 (T, H', W', 3) with
    T = max T_j, H' = B * (H + pad) + pad and W' = len(columns) * (W + pad) + pad.
    """
    if not columns:
        raise ValueError("columns: expected at least one (B, T, H, W, 3) array")
    shapes = {(c.shape[0], c.shape[2], c.shape[3]) for c in columns}
    if len(shapes) != 1 or any(c.ndim != 5 or c.dtype != np.uint8 for c in columns):
        raise ValueError(
            f"columns: expected uint8 (B, T, H, W, 3) with equal B, H, W, got {[c.shape for c in columns]}"
        )
    batch, height, width = shapes.pop()
    frames = max(c.shape[1] for c in columns)
    out = np.full(
        (frames, batch * (height + pad) + pad, len(columns) * (width + pad) + pad, 3), pad_value, np.uint8
    )
    for j, column in enumerate(columns):
        x = pad + j * (width + pad)
        for b in range(batch):
            y = pad + b * (height + pad)
            out[:, y : y + height, x : x + width] = 0
            out[: column.shape[1], y : y + height, x : x + width] = column[b]
    return out


def frame_strip(frames: np.ndarray, max_frames: int = 16, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """One still image of a video: up to ``max_frames`` evenly spaced frames laid left to right.

    ``frames``: uint8 (T, H, W, 3) (a :func:`grid_video` works too). Returns uint8 (H + 2 pad, W', 3).
    """
    frames = _check_frames(frames)
    count = min(max_frames, frames.shape[0])
    picks = np.linspace(0, frames.shape[0] - 1, count).round().astype(int)
    height, width = frames.shape[1:3]
    out = np.full((height + 2 * pad, count * (width + pad) + pad, 3), pad_value, np.uint8)
    for k, t in enumerate(picks):
        x = pad + k * (width + pad)
        out[pad : pad + height, x : x + width] = frames[t]
    return out


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of uint8 (..., H, W, 3), so 32 px clips are visible."""
    if factor <= 1:
        return frames
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)
