import numpy as np
import pytest

from vtlm.data.moving_mnist import MovingMNISTConfig, MovingMNISTDataset


def test_moving_mnist_file_layout_splits_and_values(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(20, 30, 64, 64), dtype=np.uint8)
    path = tmp_path / "mnist_test_seq.npy"
    np.save(path, array)
    parts = {
        s: MovingMNISTDataset(MovingMNISTConfig(str(path), num_frames=10, split=s))
        for s in ("train", "val", "test")
    }
    assert [len(parts[s]) for s in ("train", "val", "test")] == [24, 3, 3]
    item = parts["test"][1]
    assert item["video"].shape == (3, 10, 64, 64)
    assert item["meta"]["index"] == 28
    expected = array[:10, 28].astype(np.float32) / 127.5 - 1
    assert np.allclose(item["video"][0].numpy(), expected, atol=1e-6)
    assert np.allclose(item["video"][0].numpy(), item["video"][2].numpy())
    small = MovingMNISTDataset(MovingMNISTConfig(str(path), num_frames=20, resolution=32))
    assert small[0]["video"].shape == (3, 20, 32, 32)


def test_moving_mnist_missing_file_says_nothing_is_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="downloads nothing"):
        MovingMNISTDataset(MovingMNISTConfig(str(tmp_path / "mnist_test_seq.npy")))
    np.save(tmp_path / "bad.npy", np.zeros((20, 4, 64, 64), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        MovingMNISTDataset(MovingMNISTConfig(str(tmp_path / "bad.npy")))
