import json

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from tests.conftest import moving_square
from vtlm.data.batching import ImageVideoBatchSampler, collate_clips
from vtlm.data.clips import ClipSpec
from vtlm.data.folder import INDEX_NAME, FolderConfig, VideoFolderDataset
from vtlm.data.manifest import class_caption
from vtlm.data.writers import write_mp4


def folder(root, **overrides):
    clip = overrides.pop("clip", ClipSpec(num_frames=9, resolution=32, window="start"))
    return VideoFolderDataset(FolderConfig(root=str(root), clip=clip, **overrides))


def test_folder_reads_clips_skips_bad_files_and_counts_them(video_folder):
    root, written = video_folder
    ds = folder(root)
    report = ds.report()
    assert set(report["unreadable"]) == {"broken.mp4"}
    assert report["too_short"] == ["short.mp4"]
    assert (report["videos"], report["images"]) == (4, 1)
    by_path = {e.path: i for i, e in enumerate(ds.entries)}
    item = ds[by_path["a.mp4"]]
    assert item["video"].shape == (3, 9, 32, 32) and item["video"].dtype == torch.float32
    assert -1.0 <= item["video"].min() and item["video"].max() <= 1.0
    expected = torch.from_numpy(written["a.mp4"][:9]).permute(3, 0, 1, 2).float() / 127.5 - 1
    assert (item["video"] - expected).abs().max() < 0.03
    assert item["caption"] == "a red square moves right"
    assert ds[by_path["b.mp4"]]["caption"] == "sidecar caption for b"
    assert ds[by_path["wide48.mp4"]]["caption"] == ""
    assert ds[by_path["still.png"]]["video"].shape == (3, 1, 32, 32)
    assert ds[by_path["sub/c.mp4"]]["meta"]["split"] == "val"


def test_resize_crop_keeps_the_center_of_a_wide_video(video_folder):
    root, _ = video_folder
    ds = folder(root, media="videos")
    item = ds[[e.path for e in ds.entries].index("b.mp4")]  # 40x64 -> 32x51 -> center 32x32
    assert item["video"].shape == (3, 9, 32, 32)


def test_stride_fps_and_windows(video_folder):
    root, _ = video_folder
    ds = folder(
        root, media="videos", clip=ClipSpec(num_frames=5, frame_stride=3, window="center", resolution=32)
    )
    k = [e.path for e in ds.entries].index("a.mp4")  # 24 frames, span 13 -> start 5
    assert ds[k]["meta"]["frame_indices"] == [5, 8, 11, 14, 17]
    ds = folder(
        root, media="videos", clip=ClipSpec(num_frames=4, target_fps=5, window="start", resolution=32)
    )
    assert ds[k]["meta"]["frame_indices"] == [0, 2, 4, 6]  # 10 fps file -> every second frame
    ds = folder(root, media="videos", clip=ClipSpec(num_frames=9, window="random", resolution=32))
    starts = {ds[k]["meta"]["frame_indices"][0] for _ in range(12)}
    assert len(starts) > 1 and all(0 <= s <= 24 - 9 for s in starts)


def test_corrupt_file_at_read_time_is_skipped_and_counted(video_folder, tmp_path):
    root = tmp_path / "data"
    for name in ("x.mp4", "y.mp4"):
        write_mp4(root / name, moving_square(12, 32, 32), fps=10, crf=0, pix_fmt="yuv444p")
    ds = folder(root, cache_index=False)
    (root / "x.mp4").write_bytes(b"garbage")  # breaks after the index was built
    got = [ds[0]["meta"]["path"], ds[1]["meta"]["path"]]
    assert got == ["y.mp4", "y.mp4"]
    assert list(ds.report()["failed_while_reading"]) == [str(root / "x.mp4")]


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no videos here")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=f"{tmp_path}.*no usable file.*1 unreadable"):
        folder(tmp_path)


def test_index_cache_is_reused_and_rebuilt_when_files_change(tmp_path, monkeypatch):
    write_mp4(tmp_path / "one.mp4", moving_square(12, 32, 32), fps=10)
    assert len(folder(tmp_path)) == 1
    assert "one.mp4" in json.loads((tmp_path / INDEX_NAME).read_text())["files"]
    from vtlm.data import folder as folder_module

    calls = []
    real_probe = folder_module.probe_file
    monkeypatch.setattr(
        folder_module, "probe_file", lambda path, backend: calls.append(path) or real_probe(path, backend)
    )
    assert len(folder(tmp_path)) == 1 and calls == []  # cached
    write_mp4(tmp_path / "two.mp4", moving_square(12, 32, 32), fps=10)
    assert len(folder(tmp_path)) == 2 and [p.name for p in calls] == ["two.mp4"]
    (tmp_path / "one.mp4").unlink()
    assert len(folder(tmp_path)) == 1
    assert set(json.loads((tmp_path / INDEX_NAME).read_text())["files"]) == {"two.mp4"}


def test_splits_are_fixed_disjoint_and_cover_everything(tmp_path):
    for k in range(40):
        write_mp4(tmp_path / f"v{k:02d}.mp4", moving_square(9, 16, 16, seed=k), fps=10)
    clip = ClipSpec(num_frames=9, resolution=16)
    parts = {
        s: {e.path for e in folder(tmp_path, clip=clip, split=s, val_fraction=0.2, test_fraction=0.2).entries}
        for s in ("train", "val", "test")
    }
    assert sum(map(len, parts.values())) == 40 and len(set.union(*parts.values())) == 40
    assert all(parts.values())
    again = {
        e.path for e in folder(tmp_path, clip=clip, split="test", val_fraction=0.2, test_fraction=0.2).entries
    }
    assert again == parts["test"]


def test_ucf101_layout_class_captions_and_official_test_groups(tmp_path):
    for name in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "Basketball/v_Basketball_g12_c02.avi"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_mp4(tmp_path / "tmp.mp4", moving_square(10, 32, 32), fps=10)
        (tmp_path / "tmp.mp4").rename(tmp_path / name)  # an H.264 stream in an .avi name: ffmpeg sniffs it
    test = folder(tmp_path, captions="class_folder", split="test")
    assert [(e.path, e.caption) for e in test.entries] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "apply eye makeup")
    ]
    assert class_caption("YoYo") == "yo yo" and class_caption("PlayingDaf") == "playing daf"


def test_images_and_videos_mix_in_batches_of_one_shape_each(video_folder):
    root, _ = video_folder
    videos = folder(root, media="videos")
    images = folder(root, clip=ClipSpec(num_frames=1, resolution=32))  # every file as one frame
    mixed = ConcatDataset([videos, images])
    counts = videos.frame_counts() + images.frame_counts()
    sampler = ImageVideoBatchSampler(counts, video_batch_size=2, image_batch_size=3, image_share=0.5, seed=1)
    shapes = [
        tuple(b["video"].shape) for b in DataLoader(mixed, batch_sampler=sampler, collate_fn=collate_clips)
    ]
    assert sorted(set(shapes)) == [(2, 3, 9, 32, 32), (3, 3, 1, 32, 32)]
    assert shapes.count((2, 3, 9, 32, 32)) == 2 and shapes.count((3, 3, 1, 32, 32)) == 2
    with pytest.raises(ValueError, match="ImageVideoBatchSampler"):
        collate_clips([videos[0], images[0]])


def test_batch_sampler_shares_ranks_and_epochs():
    counts = [9] * 40 + [1] * 100
    full = ImageVideoBatchSampler(counts, 4, 8, image_share=0.2, seed=0, rank=0, world_size=1)
    batches = list(full)
    images = [b for b in batches if counts[b[0]] == 1]
    assert len(batches) == 12 and len(images) == 2  # 10 video batches cover the 40 videos once
    assert sorted(i for b in batches if counts[b[0]] == 9 for i in b) == list(range(40))
    ranks = [list(ImageVideoBatchSampler(counts, 4, 8, 0.2, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 6
    assert sorted(map(tuple, ranks[0] + ranks[1])) == sorted(map(tuple, batches))
    full.set_epoch(1)
    assert list(full) != batches
    with pytest.raises(ValueError, match="image_share"):
        ImageVideoBatchSampler(counts, 4, 8, image_share=1.5)
    only_images = ImageVideoBatchSampler([1] * 10, 4, 5, image_share=0.0)
    assert [len(b) for b in only_images] == [5, 5]


def test_clip_spec_names_the_bad_field():
    with pytest.raises(ValueError, match="num_frames"):
        ClipSpec(num_frames=0)
    with pytest.raises(ValueError, match="window"):
        ClipSpec(window="middle")
    with pytest.raises(ValueError, match="split"):
        FolderConfig(root=".", split="training")
    assert np.isclose(ClipSpec(num_frames=5, target_fps=10).span(30.0), 13)
