"""Reading video and image files behind one interface.

Two video backends answer the same two calls, ``probe(path) -> VideoInfo`` and
``read(path, indices) -> uint8 (N, H, W, 3)``:

- ``decord``: random access, fast; its wheels exist for Linux x86_64 and Windows only.
- ``pyav``: PyAV (FFmpeg), everywhere; decodes forward to the highest wanted frame.

``auto`` uses decord where it imports and falls back to PyAV for a file decord fails on
(decord 0.6 rejects some frame widths, e.g. 48 px, that FFmpeg decodes fine), so a file is
unreadable only when both fail. Images (png, jpg, ...) are read with Pillow as 1-frame videos.
Every failure is raised as :class:`VideoReadError`, which names the file: that includes a
frame larger than ``MAX_FRAME_PIXELS`` (refused from the header, before any decoding) and, with
:func:`with_timeout`, a probe or read that takes too long.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Frames with more pixels (8192 x 8192) are refused: a header can claim any size, and decoding
# allocates it before finding out the data is not there.
MAX_FRAME_PIXELS = 8192 * 8192
T = TypeVar("T")


class VideoReadError(RuntimeError):
    """A file could not be probed or decoded; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ReadTimeout(VideoReadError):
    """A probe or read that took longer than its time limit (the file may be fine next time)."""


@dataclass(frozen=True)
class VideoInfo:
    """What a probe learns without decoding the frames."""

    num_frames: int
    fps: float
    height: int
    width: int

    @property
    def duration(self) -> float:
        """Seconds, from the frame count and the frame rate."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0


def _check_size(path, height: int, width: int) -> None:
    if height * width > MAX_FRAME_PIXELS:
        raise VideoReadError(
            path, f"frames of {width}x{height} pixels, more than MAX_FRAME_PIXELS ({MAX_FRAME_PIXELS})"
        )


def with_timeout(fn: Callable[[], T], seconds: float | None, path: str | os.PathLike, what: str) -> T:
    """``fn()``, or :class:`ReadTimeout` naming ``path`` when it takes more than ``seconds``.

    ``fn`` runs on a daemon thread that is abandoned, not killed, on a timeout: a decoder stuck
    for good keeps its thread until the process ends, but the caller moves on. None: no limit.
    """
    if seconds is None:
        return fn()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as err:  # handed to the caller below
            outcome["error"] = err

    thread = threading.Thread(target=run, name=f"vtlm-{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ReadTimeout(path, f"{what} took more than {seconds:g} s; abandoned (read_timeout)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def is_image(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _check_indices(path, indices: Sequence[int], num_frames: int) -> list[int]:
    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError(f"{path}: no frame indices asked for")
    bad = [i for i in indices if i < 0 or i >= num_frames]
    if bad:
        raise VideoReadError(path, f"frame indices {bad[:5]} outside [0, {num_frames})")
    return indices


class PyAVBackend:
    """PyAV (FFmpeg) reader: works on every platform PyAV has wheels for."""

    name = "pyav"

    def probe(self, path: str | os.PathLike) -> VideoInfo:
        import av

        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise VideoReadError(path, "no video stream")
                stream = container.streams.video[0]
                _check_size(path, stream.codec_context.height or 0, stream.codec_context.width or 0)
                rate = stream.average_rate or stream.guessed_rate
                fps = float(rate) if rate else 0.0
                # The header's frame count is missing or wrong in some containers (webm, avi):
                # count the packets instead (no decoding), one per frame for video codecs.
                num_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
            with av.open(str(path)) as container:
                first = next(container.decode(video=0), None)
                if first is None:
                    raise VideoReadError(path, "no decodable frames")
                height, width = first.height, first.width
        except VideoReadError:
            raise
        except Exception as err:  # PyAV raises many FFmpeg error types
            raise VideoReadError(path, f"pyav cannot open: {err}") from err
        if num_frames == 0 or height == 0 or width == 0:
            raise VideoReadError(path, "no decodable frames")
        return VideoInfo(num_frames=num_frames, fps=fps, height=height, width=width)

    def read(self, path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
        import av

        wanted = sorted(set(int(i) for i in indices))
        if not wanted or wanted[0] < 0:
            raise VideoReadError(path, f"bad frame indices {list(indices)[:5]}")
        found: dict[int, np.ndarray] = {}
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                last = wanted[-1]
                for i, frame in enumerate(container.decode(stream)):
                    if i in wanted:
                        found[i] = frame.to_ndarray(format="rgb24")
                    if i >= last:
                        break
        except Exception as err:
            raise VideoReadError(path, f"pyav cannot decode: {err}") from err
        missing = [i for i in wanted if i not in found]
        if missing:
            raise VideoReadError(path, f"frames {missing[:5]} not decodable (file has fewer frames)")
        return np.stack([found[int(i)] for i in indices])


class DecordBackend:
    """decord reader: seeks to the wanted frames instead of decoding everything before them."""

    name = "decord"

    def __init__(self):
        import decord  # noqa: F401  (raises ImportError where decord has no wheel)

    def _open(self, path):
        import decord

        try:
            return decord.VideoReader(str(path), num_threads=1)
        except Exception as err:  # decord raises DECORDError or RuntimeError
            raise VideoReadError(path, f"decord cannot open: {err}") from err

    def probe(self, path: str | os.PathLike) -> VideoInfo:
        reader = self._open(path)
        num_frames = len(reader)
        if num_frames == 0:
            raise VideoReadError(path, "no decodable frames")
        try:
            height, width, _ = reader[0].shape
        except Exception as err:
            raise VideoReadError(path, f"decord cannot decode frame 0: {err}") from err
        return VideoInfo(num_frames=num_frames, fps=float(reader.get_avg_fps()), height=height, width=width)

    def read(self, path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
        reader = self._open(path)
        indices = _check_indices(path, indices, len(reader))
        try:
            return reader.get_batch(indices).asnumpy()
        except Exception as err:
            raise VideoReadError(path, f"decord cannot decode: {err}") from err


class AutoBackend:
    """decord where available, PyAV for the files decord cannot handle (or everywhere without it)."""

    name = "auto"

    def __init__(self):
        self.pyav = PyAVBackend()
        try:
            self.decord: DecordBackend | None = DecordBackend()
        except ImportError:
            self.decord = None

    def probe(self, path: str | os.PathLike) -> VideoInfo:
        if self.decord is not None:
            try:
                return self.decord.probe(path)
            except VideoReadError:
                pass
        return self.pyav.probe(path)

    def read(self, path: str | os.PathLike, indices: Sequence[int]) -> np.ndarray:
        if self.decord is not None:
            try:
                return self.decord.read(path, indices)
            except VideoReadError:
                pass
        return self.pyav.read(path, indices)


BACKENDS = {"auto": AutoBackend, "decord": DecordBackend, "pyav": PyAVBackend}


def get_backend(name: str = "auto") -> AutoBackend | DecordBackend | PyAVBackend:
    """A video backend by name: ``auto``, ``decord`` or ``pyav``."""
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {sorted(BACKENDS)}, got {name!r}")
    try:
        return BACKENDS[name]()
    except ImportError as err:
        raise ValueError(f"backend: {name!r} is not installed here ({err}); use 'auto' or 'pyav'") from err


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as a 1-frame video: uint8 (1, H, W, 3) RGB (gray and RGBA converted)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            _check_size(path, image.height, image.width)
            rgb = np.asarray(image.convert("RGB"))
    except VideoReadError:
        raise
    except Exception as err:
        raise VideoReadError(path, f"cannot read image: {err}") from err
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise VideoReadError(path, f"image has shape {rgb.shape}")
    return rgb[None]


def probe_file(path: str | os.PathLike, backend) -> VideoInfo:
    """VideoInfo of a video or an image (an image: 1 frame, fps 0). Frames larger than
    MAX_FRAME_PIXELS are refused."""
    if is_image(path):
        from PIL import Image

        try:
            with Image.open(path) as image:
                width, height = image.size
                _check_size(path, height, width)
                image.verify()
        except VideoReadError:
            raise
        except Exception as err:
            raise VideoReadError(path, f"cannot read image: {err}") from err
        return VideoInfo(num_frames=1, fps=0.0, height=height, width=width)
    info = backend.probe(path)
    _check_size(path, info.height, info.width)
    return info


def read_frames(path: str | os.PathLike, indices: Sequence[int], backend) -> np.ndarray:
    """Frames of a video or an image: uint8 (N, H, W, 3) RGB, in the order of ``indices``."""
    if is_image(path):
        image = read_image(path)
        _check_indices(path, indices, 1)
        return np.repeat(image, len(indices), axis=0)
    return backend.read(path, indices)
