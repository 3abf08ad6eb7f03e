import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vtlm.data.batching import collate_clips
from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.splits import clip_seed
from vtlm.data.synthetic import DigitsConfig, ShapesConfig, SyntheticConfig, SyntheticDataset

SMALL = ShapesConfig(resolution=32, num_frames=9)


def test_items_are_deterministic_and_in_range():
    ds = SyntheticDataset(SyntheticConfig(shapes=SMALL, num_clips=10))
    a, b = ds[3], ds[3]
    assert a["video"].shape == (3, 9, 32, 32) and a["video"].dtype == torch.float32
    assert torch.equal(a["video"], b["video"]) and a["caption"] == b["caption"]
    assert -1 <= a["video"].min() and a["video"].max() <= 1
    assert not torch.equal(ds[3]["video"], ds[4]["video"])
    assert a["caption"] == a["meta"]["caption_descriptive"] and a["meta"]["labels"]["num_frames"] == 9
    with pytest.raises(IndexError):
        ds[10]


def test_splits_are_disjoint_draws():
    seeds = {s: {clip_seed(0, s, i) for i in range(500)} for s in ("train", "val", "test")}
    assert not (seeds["train"] & seeds["val"]) and not (seeds["train"] & seeds["test"])
    train = SyntheticDataset(SyntheticConfig(shapes=SMALL, split="train", num_clips=4))
    test = SyntheticDataset(SyntheticConfig(shapes=SMALL, split="test", num_clips=4))
    assert all(not torch.equal(train[i]["video"], test[i]["video"]) for i in range(4))
    other_seed = SyntheticDataset(SyntheticConfig(shapes=SMALL, split="train", num_clips=4, seed=1))
    assert not torch.equal(train[0]["video"], other_seed[0]["video"])


def test_caption_modes():
    terse = SyntheticDataset(SyntheticConfig(shapes=SMALL, caption="terse", num_clips=20))
    assert all(terse[i]["caption"] == terse[i]["meta"]["caption_terse"] for i in range(5))
    mixed = SyntheticDataset(SyntheticConfig(shapes=SMALL, caption="mixed", num_clips=40))
    kinds = {mixed[i]["caption"] == mixed[i]["meta"]["caption_terse"] for i in range(40)}
    assert kinds == {True, False}
    assert [mixed[i]["caption"] for i in range(5)] == [mixed[i]["caption"] for i in range(5)]


def test_digits_and_images_from_the_same_generator():
    digits = SyntheticDataset(
        SyntheticConfig(kind="digits", digits=DigitsConfig(resolution=32, num_frames=5))
    )
    item = digits[0]
    assert item["video"].shape == (3, 5, 32, 32) and item["caption"].startswith("digit")
    images = SyntheticDataset(SyntheticConfig(shapes=ShapesConfig(resolution=32, num_frames=1)))
    assert images[0]["video"].shape == (3, 1, 32, 32) and images.frame_counts()[0] == 1


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="kind"):
        SyntheticConfig(kind="balls")
    with pytest.raises(ValueError, match="num_clips"):
        SyntheticConfig(num_clips=0)
    with pytest.raises(ValueError, match="split"):
        SyntheticConfig(split="validation")
    assert SyntheticConfig(shapes={"resolution": 48}).resolution == 48


def test_loaders_with_worker_processes(video_folder):
    """Datasets pickle and load in worker processes (spawn-safe), for both built-in and files."""
    synthetic = SyntheticDataset(SyntheticConfig(shapes=SMALL, num_clips=8))
    root, _ = video_folder
    files = VideoFolderDataset(
        FolderConfig(root=str(root), media="videos", clip=ClipSpec(num_frames=9, resolution=32))
    )
    for ds in (synthetic, files):
        pickle.loads(pickle.dumps(ds))
        batches = list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_clips))
        assert sum(b["video"].shape[0] for b in batches) == len(ds)
    first = next(iter(DataLoader(synthetic, batch_size=4, num_workers=2, collate_fn=collate_clips)))
    assert np.allclose(first["video"][1].numpy(), synthetic[1]["video"].numpy())
