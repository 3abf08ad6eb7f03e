import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vtlm.data.shard_dataset import TokenShardDataset, TokenShards, collate_codes
from vtlm.data.shards import INDEX_NAME, ShardError, ShardWriter, done_keys, verify_shard, write_index

GRID = (4, 5)


def make_clips(n: int, codebook_size: int, seed: int = 0, frames=(1, 3, 6)) -> list[tuple]:
    """(key, int64 codes (t, 4, 5), caption, meta), t cycling through ``frames``; clip 0 holds
    codebook_size - 1 and clip 1 holds 0, the ends of the range."""
    rng = np.random.default_rng(seed)
    clips = []
    for k in range(n):
        t = frames[k % len(frames)]
        codes = rng.integers(0, codebook_size, size=(t, *GRID))
        clips.append((f"clip{k:03d}", codes, f"caption {k}", {"label": k % 3, "split": "train"}))
    clips[0][1].flat[0] = codebook_size - 1
    clips[1][1].flat[-1] = 0
    return clips


def write(out_dir, clips, prefix="rank00", codebook_size=4096, per_shard=3, skip=frozenset()):
    with ShardWriter(out_dir, prefix, codebook_size, clips_per_shard=per_shard) as writer:
        for key, codes, caption, meta in clips:
            if key not in skip:
                writer.add(key, codes, caption, meta)
    return writer


@pytest.mark.parametrize("codebook_size, dtype", [(4096, "uint16"), (70000, "int32")])
def test_round_trip_across_three_shards(tmp_path, codebook_size, dtype):
    clips = make_clips(8, codebook_size)
    clips[2] = (clips[2][0], torch.from_numpy(clips[2][1]).int(), clips[2][2], clips[2][3])  # a torch input
    writer = write(tmp_path, clips, codebook_size=codebook_size)
    assert writer.shards_written == ["rank00-00000", "rank00-00001", "rank00-00002"]
    header = json.loads((tmp_path / "rank00-00000.json").read_text())
    assert header["dtype"] == dtype
    itemsize = np.dtype(dtype).itemsize
    assert (tmp_path / "rank00-00000.bin").stat().st_size == header["num_tokens"] * itemsize
    index = json.loads(write_index(tmp_path, extra={"tokenizer": "debug", "sha": "abc"}).read_text())
    assert [s["clips"] for s in index["shards"]] == [3, 3, 2]

    shards = TokenShards(tmp_path)
    assert len(shards) == 8 and shards.codebook_size == codebook_size and shards.grid == GRID
    assert shards.extra == {"tokenizer": "debug", "sha": "abc"}
    assert shards.num_tokens == sum(np.asarray(c[1]).size for c in clips)
    for i, (key, codes, caption, meta) in enumerate(clips):
        got = shards.codes(i)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.asarray(codes))
        assert (shards.key(i), shards.caption(i), shards.meta(i)) == (key, caption, meta)
        assert shards.shape(i) == tuple(np.asarray(codes).shape)
    assert shards.codes(0).max() == codebook_size - 1  # the top of the range survives
    assert shards.shape(0)[0] == 1  # an image


@pytest.mark.parametrize(
    "codes, match",
    [
        (np.full((2, 4, 5), 4096), r"\[0, 4096\)"),
        (np.full((2, 4, 5), -1), r"\[-1, -1\]"),
        (np.zeros((4, 5), dtype=np.int64), "shape"),
        (np.zeros((1, 2, 4, 5), dtype=np.int64), "shape"),
        (np.zeros((0, 4, 5), dtype=np.int64), "shape"),
        (np.zeros((2, 4, 5), dtype=np.float32), "integer dtype"),
    ],
)
def test_writer_rejects_bad_codes(tmp_path, codes, match):
    writer = ShardWriter(tmp_path, "rank00", 4096)
    with pytest.raises(ValueError, match=match):
        writer.add("bad", codes)


def test_writer_rejects_duplicate_key_and_bad_meta(tmp_path):
    writer = ShardWriter(tmp_path, "rank00", 16)
    writer.add("a", np.zeros((1, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="'a'"):
        writer.add("a", np.zeros((1, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="JSON"):
        writer.add("b", np.zeros((1, 2, 2), dtype=np.int64), meta={"x": object()})


def test_resume_after_kill_mid_shard(tmp_path):
    clips = make_clips(10, 4096)
    # The killed run: two complete shards, then a third .bin whose .json never got written,
    # and a temporary file of the next .bin.
    write(tmp_path, clips[:6])
    (tmp_path / "rank00-00002.bin").write_bytes(b"\x01\x02" * 50)
    (tmp_path / ".rank00-00003.bin.tmp1234").write_bytes(b"\x00")
    (tmp_path / "rank01-00000.bin").write_bytes(b"\x00")  # another rank's shard in progress

    done = done_keys(tmp_path)
    assert done == {c[0] for c in clips[:6]}
    ShardWriter(tmp_path, "rank00", 4096)  # opening cleans up this prefix
    assert not (tmp_path / "rank00-00002.bin").exists()
    assert not (tmp_path / ".rank00-00003.bin.tmp1234").exists()
    writer = write(tmp_path, clips, skip=done)
    assert writer.shards_written == ["rank00-00002", "rank00-00003"]
    assert (tmp_path / "rank01-00000.bin").exists()  # not this writer's prefix

    shards = TokenShards(write_index(tmp_path).parent)
    keys = [shards.key(i) for i in range(len(shards))]
    assert sorted(keys) == [c[0] for c in clips]  # every key exactly once
    for i, key in enumerate(keys):
        np.testing.assert_array_equal(shards.codes(i), clips[int(key[4:])][1])
    # Adding a done key to a resumed writer is refused.
    with pytest.raises(ValueError, match="clip000.*rank00-00000"):
        ShardWriter(tmp_path, "rank00", 4096).add("clip000", clips[0][1])


def test_two_ranks_join_in_one_index_and_duplicates_are_named(tmp_path):
    clips = make_clips(9, 4096)
    write(tmp_path, clips[:5], prefix="rank00", per_shard=2)
    write(tmp_path, clips[5:], prefix="rank01", per_shard=2)
    index = json.loads(write_index(tmp_path).read_text())
    assert index["num_clips"] == 9 and index["grid"] == list(GRID)
    assert [s["name"] for s in index["shards"]] == [
        "rank00-00000",
        "rank00-00001",
        "rank00-00002",
        "rank01-00000",
        "rank01-00001",
    ]
    assert {TokenShards(tmp_path).key(i) for i in range(9)} == {c[0] for c in clips}

    write(tmp_path, clips[3:4], prefix="rank02")  # clip003 again, by another rank
    with pytest.raises(ValueError, match=r"'clip003'.*rank00-00001.*rank02-00000"):
        write_index(tmp_path)


def test_index_refuses_mixed_grids(tmp_path):
    write(tmp_path, [("a", np.zeros((1, 4, 5), dtype=np.int64), "", {})], prefix="r0")
    write(tmp_path, [("b", np.zeros((1, 8, 8), dtype=np.int64), "", {})], prefix="r1")
    with pytest.raises(ValueError, match="grid"):
        write_index(tmp_path)


def test_corruption_is_detected(tmp_path):
    write(tmp_path, make_clips(6, 4096))
    write_index(tmp_path)
    target = tmp_path / "rank00-00001.bin"
    good = target.read_bytes()
    TokenShards(tmp_path)  # opens cleanly

    flipped = bytearray(good)
    flipped[7] ^= 0x01
    target.write_bytes(bytes(flipped))
    with pytest.raises(ShardError, match="rank00-00001.bin.*sha256"):
        TokenShards(tmp_path)
    assert len(TokenShards(tmp_path, verify=False)) == 6  # verification is what caught it

    target.write_bytes(good[:-2])
    with pytest.raises(ShardError, match="rank00-00001.bin.*bytes"):
        TokenShards(tmp_path)
    target.unlink()
    with pytest.raises(ShardError, match="rank00-00001.bin.*missing"):
        verify_shard(tmp_path / "rank00-00001.json")

    (tmp_path / INDEX_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"vtlm tokenizer encode"):
        TokenShards(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        TokenShardDataset(str(tmp_path / "nowhere"))


def test_window_mode(tmp_path):
    clips = make_clips(9, 4096, frames=(1, 3, 6))
    write(tmp_path, clips)
    write_index(tmp_path)
    shards = TokenShards(tmp_path)
    ds = TokenShardDataset(shards, mode="window", window=3)
    assert ds.num_excluded == 3 and len(ds) == 6  # the images (t = 1) are left out
    assert ds.frame_counts() == [3] * 6
    starts = set()
    for _ in range(10):
        for index in range(len(ds)):
            item = ds[index]
            assert item["codes"].shape == (3, *GRID) and item["codes"].dtype == torch.int64
            start, key = item["meta"]["frame_start"], item["meta"]["key"]
            stored = clips[int(key[4:])][1]
            np.testing.assert_array_equal(item["codes"].numpy(), stored[start : start + 3])
            assert item["meta"]["label"] == int(key[4:]) % 3
            if stored.shape[0] == 6:
                starts.add(start)
    assert starts == {0, 1, 2, 3}  # windows vary across calls and reach both ends

    torch.manual_seed(3)
    first = [ds[5]["meta"]["frame_start"] for _ in range(8)]
    torch.manual_seed(3)
    assert [ds[5]["meta"]["frame_start"] for _ in range(8)] == first  # reproducible under a seed

    assert TokenShardDataset(shards, mode="window", window=6).num_excluded == 6
    with pytest.raises(ValueError, match="window=7"):
        TokenShardDataset(shards, mode="window", window=7)
    with pytest.raises(ValueError, match="window"):
        TokenShardDataset(shards, mode="window")


def test_clip_mode_and_collate(tmp_path):
    clips = make_clips(6, 4096, frames=(1, 3))
    write(tmp_path, clips)
    write_index(tmp_path)
    ds = TokenShardDataset(str(tmp_path))
    assert len(ds) == 6 and ds.num_excluded == 0 and ds.frame_counts() == [1, 3] * 3
    for index in range(6):
        item = ds[index]
        np.testing.assert_array_equal(item["codes"].numpy(), clips[index][1])
        assert item["caption"] == clips[index][2] and item["meta"]["frame_start"] == 0
    videos = TokenShardDataset(str(tmp_path), min_frames=2)
    assert len(videos) == 3 and videos.num_excluded == 3

    batch = collate_codes([ds[1], ds[3]])
    assert batch["codes"].shape == (2, 3, *GRID) and batch["caption"] == ["caption 1", "caption 3"]
    with pytest.raises(ValueError, match=r"different shapes.*\(1, 4, 5\).*\(3, 4, 5\)"):
        collate_codes([ds[0], ds[1]])


def test_dataloader_with_workers_and_pickling(tmp_path):
    clips = [("long", np.arange(40 * 20).reshape(40, *GRID) % 4096, "", {})]
    clips += make_clips(7, 4096, seed=1, frames=(2, 5))
    write(tmp_path, clips)
    write_index(tmp_path)
    ds = TokenShardDataset(str(tmp_path), mode="window", window=1)
    ds[0]
    assert ds.shards._maps  # a map is open here...
    copy = pickle.loads(pickle.dumps(ds))
    assert not copy.shards._maps  # ...and is not pickled: the copy reopens its own
    np.testing.assert_array_equal(copy.shards.codes(0), ds.shards.codes(0))

    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_codes)
    batches = list(loader)
    assert sum(len(b["caption"]) for b in batches) == len(ds) == 8

    # Two spawn workers draw different windows: worker k serves batches k, k + 2, ...
    loader = DataLoader(
        ds,
        batch_size=None,
        sampler=[0] * 8,
        num_workers=2,
        multiprocessing_context="spawn",
    )
    starts = [item["meta"]["frame_start"] for item in loader]
    assert len(starts) == 8 and starts[0::2] != starts[1::2]
