import numpy as np
import pytest

from vtlm.data import video_io
from vtlm.data.video_io import AutoBackend, PyAVBackend, VideoReadError, get_backend, read_frames


def test_pyav_and_decord_read_the_written_frames(video_folder):
    root, written = video_folder
    pytest.importorskip("decord")
    for name in ("a.mp4", "b.mp4"):
        expected = written[name]
        for backend in ("decord", "pyav"):
            reader = get_backend(backend)
            info = reader.probe(root / name)
            assert (info.num_frames, info.height, info.width) == expected.shape[:3]
            assert info.fps == pytest.approx(10.0)
            got = reader.read(root / name, [5, 0, 7])
            assert got.shape == (3, *expected.shape[1:])
            # yuv444p at crf 0: only the RGB <-> YUV rounding remains
            assert np.abs(got.astype(int) - expected[[5, 0, 7]]).max() <= 3


def test_auto_falls_back_to_pyav_where_decord_fails(video_folder):
    root, written = video_folder
    decord_backend = pytest.importorskip("decord") and get_backend("decord")
    with pytest.raises(VideoReadError):
        decord_backend.read(root / "wide48.mp4", [0, 1])
    frames = get_backend("auto").read(root / "wide48.mp4", [0, 1, 2])
    assert frames.shape == (3, 32, 48, 3)
    assert np.abs(frames.astype(int) - written["wide48.mp4"][:3]).max() <= 3


def test_auto_without_decord_uses_pyav(video_folder, monkeypatch):
    """Platforms without a decord wheel (Linux aarch64, Apple silicon) read through PyAV."""
    root, written = video_folder

    def no_decord(self):
        raise ImportError("No module named 'decord'")

    monkeypatch.setattr(video_io.DecordBackend, "__init__", no_decord)
    reader = get_backend("auto")
    assert reader.decord is None
    frames = reader.read(root / "a.mp4", [1, 2])
    assert np.abs(frames.astype(int) - written["a.mp4"][1:3]).max() <= 3
    with pytest.raises(ValueError, match="not installed"):
        get_backend("decord")


def test_corrupt_and_missing_files_raise_errors_naming_the_file(video_folder, tmp_path):
    root, _ = video_folder
    for reader in (AutoBackend(), PyAVBackend()):
        for path in (root / "broken.mp4", tmp_path / "missing.mp4"):
            with pytest.raises(VideoReadError, match=path.name):
                reader.probe(path)
    with pytest.raises(VideoReadError, match="outside|fewer"):
        get_backend("auto").read(root / "short.mp4", [0, 5])


def test_image_is_a_one_frame_video(video_folder):
    root, written = video_folder
    frames = read_frames(root / "still.png", [0], get_backend("auto"))
    assert frames.shape == (1, 48, 40, 3)
    assert np.array_equal(frames, written["still.png"])


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend"):
        get_backend("opencv")
