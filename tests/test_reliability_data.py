"""Bad data: every generated file (empty, truncated, wrong container, a header claiming huge
frames, 1 frame, gray, RGBA, palette, 16-bit, odd sizes) is read correctly or skipped and
counted; none crashes a run, and a hanging decode is abandoned after ``read_timeout``."""

import functools
import io
import struct
import tempfile
import time
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils.data import DataLoader

import vtlm.data.folder as folder_module
from tests.conftest import moving_square
from vtlm.data.batching import ImageVideoBatchSampler, collate_clips
from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.video_io import MAX_FRAME_PIXELS, VideoReadError, is_image, probe_file, read_frames
from vtlm.data.writers import write_mp4

FRAMES, SIDE = 5, 16  # clips of 5 frames at 16 px


@functools.cache
def good_video(frames=12, height=32, width=32, gray=False, faststart=False) -> bytes:
    """Bytes of a valid H.264 mp4: RGB 4:4:4 (written by vtlm), or 8-bit gray, or with its index
    first (``faststart``: a cut file then keeps its first frames)."""
    path = Path(tempfile.mkdtemp()) / "v.mp4"
    pixels = moving_square(frames, height, width)
    if not (gray or faststart):
        write_mp4(path, pixels, fps=8, crf=0, pix_fmt="yuv444p")
        return path.read_bytes()
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "gray" if gray else "yuv420p"
        for frame in pixels:
            plane = np.ascontiguousarray(frame[..., 0]) if gray else frame
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(plane, format="gray" if gray else "rgb24"))
            )
        container.mux(stream.encode())
    return path.read_bytes()


def image_bytes(mode: str, width: int, height: int, fmt: str) -> bytes:
    rgb = Image.fromarray(moving_square(1, height, width)[0])
    image = rgb.convert("I;16") if mode == "I;16" else rgb.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header that claims width x height, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )


VIDEO_EXT = st.sampled_from([".mp4", ".webm", ".avi", ".mkv"])
IMAGE_EXT = st.sampled_from([".png", ".jpg", ".bmp", ".webp"])
FRACTION = st.floats(0.0, 0.98)
# (kind, file name, bytes, what must happen: "usable", "skipped" or "either")
BAD_FILES = st.one_of(
    st.tuples(st.just("empty"), st.one_of(VIDEO_EXT, IMAGE_EXT)).map(
        lambda a: (a[0], "f" + a[1], b"", "skipped")
    ),
    st.tuples(st.just("truncated video"), FRACTION, st.booleans()).map(
        lambda a: (
            a[0],
            "f.mp4",
            good_video(faststart=a[2])[: int(len(good_video(faststart=a[2])) * a[1])],
            "either",
        )
    ),
    st.tuples(st.just("truncated image"), FRACTION, st.sampled_from(["PNG", "JPEG"])).map(
        lambda a: (a[0], "f." + a[2].lower(), image_bytes("RGB", 40, 30, a[2])[: int(3000 * a[1])], "either")
    ),
    st.tuples(st.just("wrong container"), VIDEO_EXT).map(
        lambda a: (a[0], "f" + a[1], image_bytes("RGB", 20, 20, "PNG"), "skipped")
    ),
    st.tuples(st.just("video named as image"), IMAGE_EXT).map(
        lambda a: (a[0], "f" + a[1], good_video(), "skipped")
    ),
    st.tuples(
        st.just("random bytes"), st.one_of(VIDEO_EXT, IMAGE_EXT), st.binary(min_size=1, max_size=2000)
    ).map(lambda a: (a[0], "f" + a[1], a[2], "either")),
    st.tuples(st.just("huge header"), st.integers(9000, 100_000), st.integers(9000, 100_000)).map(
        lambda a: (a[0], "f.png", png_claiming(a[1], a[2]), "skipped")
    ),
    st.just(("one frame video", "f.mp4", good_video(1), "skipped")),  # too short for 5 frames
    st.tuples(st.just("odd video"), st.integers(9, 41), st.integers(9, 41), st.integers(FRAMES, 9)).map(
        lambda a: (a[0], "f.mp4", good_video(a[3], a[1], a[2]), "usable")
    ),
    st.just(("gray video", "f.mp4", good_video(8, 32, 32, gray=True), "usable")),
    st.tuples(
        st.just("image"),
        st.sampled_from(["L", "LA", "RGBA", "P", "1", "I;16"]),
        st.integers(1, 67),
        st.integers(1, 67),
        st.sampled_from(["PNG", "WEBP", "BMP"]),
    )
    .filter(lambda a: not (a[1] == "I;16" and a[4] != "PNG") and not (a[1] == "LA" and a[4] == "BMP"))
    .map(lambda a: (f"{a[1]} image", "f." + a[4].lower(), image_bytes(a[1], a[2], a[3], a[4]), "usable")),
)


def dataset(root: Path, timeout: float | None = 20.0) -> VideoFolderDataset:
    clip = ClipSpec(num_frames=FRAMES, resolution=SIDE, window="random", crop="random")
    return VideoFolderDataset(
        FolderConfig(root=str(root), clip=clip, cache_index=False, read_timeout=timeout)
    )


def check_item(ds: VideoFolderDataset, index: int) -> dict:
    item = ds[index]  # an image's stand-in may be a frame of a video: the shape is the request's
    frames = 1 if is_image(ds.entries[index].path) else FRAMES
    video = item["video"]
    assert video.shape == (3, frames, SIDE, SIDE) and video.dtype == torch.float32
    assert torch.isfinite(video).all() and video.min() >= -1 and video.max() <= 1
    return item


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(bad=BAD_FILES)
def test_every_bad_file_is_read_or_skipped_and_counted(bad):
    kind, name, payload, expected = bad
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "good.mp4").write_bytes(good_video())
        (root / name).write_bytes(payload)
        ds = dataset(root)
        usable = {e.path for e in ds.entries}
        skipped = set(ds.unreadable) | set(ds.too_short)
        assert "good.mp4" in usable
        assert (name in usable) != (name in skipped), kind  # exactly one of the two
        if expected != "either":
            assert (name in usable) == (expected == "usable"), (kind, ds.report())
        for reason in ds.unreadable.values():
            assert isinstance(reason, str) and reason
        for index in range(len(ds)):
            item = check_item(ds, index)
            if item["meta"]["path"] != ds.entries[index].path:  # replaced: its file failed, counted
                assert str(root / ds.entries[index].path) in ds.report()["failed_while_reading"]
        if expected == "usable" and is_image(name):  # any valid image reads as RGB; gray stays gray
            pixels = read_frames(root / name, [0], ds.backend)
            assert pixels.shape[-1] == 3 and pixels.dtype == np.uint8
            if kind in ("L image", "1 image", "I;16 image") and name.endswith((".png", ".bmp")):
                assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_a_header_claiming_huge_frames_is_refused_before_decoding(tmp_path):
    for width, height in ((100_000, 100_000), (9000, 9000)):
        path = tmp_path / f"huge{width}.png"
        path.write_bytes(png_claiming(width, height))
        with pytest.raises(VideoReadError, match=f"huge{width}.png"):
            probe_file(path, None)
        with pytest.raises(VideoReadError, match=f"huge{width}.png"):
            read_frames(path, [0], None)
    assert 9000 * 9000 > MAX_FRAME_PIXELS > 4096 * 4096


@pytest.fixture
def slow_file(tmp_path, monkeypatch):
    """A folder of two good videos whose reader hangs (sleeps 60 s) on slow.mp4."""
    for name in ("fine.mp4", "slow.mp4"):
        (tmp_path / name).write_bytes(good_video())
    real = folder_module.read_frames

    def hanging(path, indices, backend):
        if Path(path).name == "slow.mp4":
            time.sleep(60)
        return real(path, indices, backend)

    monkeypatch.setattr(folder_module, "read_frames", hanging)
    return tmp_path


def test_a_hanging_read_is_abandoned_after_read_timeout_and_counted(slow_file):
    ds = dataset(slow_file, timeout=0.5)
    slow = [e.path for e in ds.entries].index("slow.mp4")
    start = time.monotonic()
    item = check_item(ds, slow)
    assert time.monotonic() - start < 10 and item["meta"]["path"] == "fine.mp4"  # another clip
    failures = ds.report()["failed_while_reading"]
    assert (
        list(failures) == [str(slow_file / "slow.mp4")]
        and "took more than 0.5 s" in failures[str(slow_file / "slow.mp4")]
    )
    with pytest.raises(ValueError, match="read_timeout"):
        FolderConfig(root=str(slow_file), read_timeout=0)


def test_dataloader_workers_survive_bad_and_hanging_files(slow_file):
    # One of each kind beside the good and the hanging file; two workers, nothing may stall.
    files = {
        "empty.mp4": b"",
        "cut.mp4": good_video()[:700],
        "huge.png": png_claiming(100_000, 100_000),
        "gray.png": image_bytes("L", 13, 29, "PNG"),
        "rgba.png": image_bytes("RGBA", 31, 7, "PNG"),
        "odd.mp4": good_video(7, 19, 33),
        "png.mp4": image_bytes("RGB", 20, 20, "PNG"),
    }
    for name, payload in files.items():
        (slow_file / name).write_bytes(payload)
    ds = dataset(slow_file, timeout=0.5)
    assert {"empty.mp4", "huge.png", "png.mp4", "cut.mp4"} <= set(ds.unreadable) | set(ds.too_short)
    assert {e.path for e in ds.entries} == {"fine.mp4", "slow.mp4", "gray.png", "rgba.png", "odd.mp4"}
    sampler = ImageVideoBatchSampler(ds.frame_counts(), 2, 2, 0.5, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_clips, num_workers=2, timeout=60)
    start = time.monotonic()
    batches = list(loader)
    assert time.monotonic() - start < 40 and len(batches) == len(sampler)
    for batch in batches:
        assert batch["video"].shape[2:] in ((1, SIDE, SIDE), (FRAMES, SIDE, SIDE))
