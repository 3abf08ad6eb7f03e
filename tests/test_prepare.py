"""`vtlm data prepare` on tiny fabricated copies of each set's source layout."""

from __future__ import annotations

import csv
import json
import os
import struct

import google_crc32c
import numpy as np
import pytest

from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.manifest import read_manifest
from vtlm.data.prepare import PrepareConfig, prepare_set
from vtlm.data.video_io import get_backend, read_frames
from vtlm.data.writers import write_mp4

FRAMES = 9


def clip(path, seed: int = 0, frames: int = FRAMES, side: int = 16):
    """A short noisy clip (mp4 data under whatever extension the set uses: readers probe content)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (frames, side, side, 3), dtype=np.uint8)
    write_mp4(path, pixels, fps=10, crf=0, pix_fmt="yuv444p")


def corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)


def manifest_rows(out) -> dict[str, dict]:
    return {
        json.loads(line)["path"]: json.loads(line)
        for line in (out / "manifest.jsonl").read_text().splitlines()
    }


def folder_items(out, split: str) -> list[dict]:
    spec = ClipSpec(num_frames=5, resolution=16, window="start")
    ds = VideoFolderDataset(FolderConfig(root=str(out), split=split, clip=spec, captions="manifest"))
    return [ds[i] for i in range(len(ds))]


def test_ucf101_official_split_lists_class_captions_and_counted_failures(tmp_path):
    src = tmp_path / "src"
    videos = src / "UCF-101"
    names = {
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi": 0,
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi": 1,
        "HandstandPushups/v_HandstandPushups_g09_c01.avi": 2,  # listed as HandStand: case differs
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi": 3,
        "YoYo/v_YoYo_g02_c01.avi": 4,
    }
    for name, seed in names.items():
        clip(videos / name, seed)
    corrupt(videos / "YoYo/v_YoYo_g10_c01.avi")
    lists = src / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 HandstandPushups\n3 YoYo\n")
    (lists / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi 1\n"
        "HandstandPushups/v_HandStandPushups_g09_c01.avi 2\n"
        "YoYo/v_YoYo_g10_c01.avi 3\n"  # corrupt file
        "YoYo/v_YoYo_g11_c01.avi 3\n"  # missing file
        "not a list entry\n"
    )
    (lists / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nYoYo/v_YoYo_g02_c01.avi\n"
    )
    out = tmp_path / "out"
    record = prepare_set("ucf101", src, out, PrepareConfig(val_fraction=0.0))
    rows = manifest_rows(out)
    assert record["counts"] == {"train": 3, "val": 0, "test": 2}
    assert record["failures_by_kind"] == {"bad_entry": 1, "unreadable": 1, "missing": 1}
    assert any("g11" in f["item"] for f in record["failures"] if f["kind"] == "missing")
    row = rows["train/HandstandPushups/v_HandstandPushups_g09_c01.avi"]
    assert row["caption"] == "handstand pushups" and row["label_index"] == 2
    assert rows["test/YoYo/v_YoYo_g02_c01.avi"]["caption"] == "yo yo"
    placed = out / "test/YoYo/v_YoYo_g02_c01.avi"
    assert os.stat(placed).st_ino == os.stat(videos / "YoYo/v_YoYo_g02_c01.avi").st_ino  # hard link
    test_items = folder_items(out, "test")
    assert sorted(item["caption"] for item in test_items) == ["apply eye makeup", "yo yo"]
    rerun = prepare_set("ucf101", src, out, PrepareConfig(val_fraction=0.0))  # keeps what is there
    assert rerun["counts"] == record["counts"] and manifest_rows(out) == rows
    prepared = json.loads((out / "prepared.json").read_text())
    assert prepared["set"] == "ucf101" and prepared["source"] == str(src.resolve())
    assert prepared["vtlm_version"] and prepared["date"] and prepared["options"]["val_fraction"] == 0.0

    # val is carved from train by (class, group): both g08 clips land on the same side.
    again = prepare_set("ucf101", src, tmp_path / "out_val", PrepareConfig(val_fraction=0.5, files="copy"))
    rows = manifest_rows(tmp_path / "out_val")
    g08 = {r["split"] for r in rows.values() if "_g08_" in r["path"]}
    assert len(g08) == 1 and again["counts"]["test"] == 2
    assert {r["split"] for r in rows.values() if r["official_split"] == "train"} <= {"train", "val"}


def test_ssv2_fills_templates_maps_validation_to_test_and_counts_missing(tmp_path):
    src = tmp_path / "src"
    for vid in ("1", "2", "3", "7"):
        clip(src / "20bn-something-something-v2" / f"{vid}.webm", int(vid))
    labels = src / "labels"
    labels.mkdir()
    train = [
        {"id": "1", "label": "putting a cup on the table", "template": "Putting [something] on [something]",
         "placeholders": ["a cup", "the table"]},
        {"id": "2", "label": "pen falling like a rock", "template": "[Something] falling like a rock",
         "placeholders": []},  # counts differ: the label is the caption
        {"id": "4", "label": "missing video", "template": "Holding [something]", "placeholders": ["x"]},
        {"label": "no id"},
    ]  # fmt: skip
    validation = [{"id": "7", "label": "a b", "template": "Pushing [something]", "placeholders": ["a box"]}]
    (labels / "something-something-v2-train.json").write_text(json.dumps(train))
    (labels / "something-something-v2-validation.json").write_text(json.dumps(validation))
    (labels / "something-something-v2-labels.json").write_text(
        json.dumps({"Putting something on something": "0", "Pushing something": "1"})
    )
    out = tmp_path / "out"
    record = prepare_set("ssv2", src, out, PrepareConfig(val_fraction=0.0))
    rows = manifest_rows(out)
    assert record["counts"] == {"train": 2, "val": 0, "test": 1}
    assert record["failures_by_kind"] == {"missing": 1, "bad_entry": 1}
    assert rows["train/1.webm"]["caption"] == "Putting a cup on the table"
    assert rows["train/1.webm"]["label_index"] == 0
    assert rows["train/2.webm"]["caption"] == "pen falling like a rock"
    assert rows["test/7.webm"]["caption"] == "Pushing a box"
    assert rows["test/7.webm"]["official_split"] == "validation"
    assert [item["caption"] for item in folder_items(out, "test")] == ["Pushing a box"]
    labelled = prepare_set(
        "ssv2", src, tmp_path / "out2", PrepareConfig(val_fraction=0.0, ssv2_caption="label")
    )
    assert manifest_rows(tmp_path / "out2")["train/1.webm"]["caption"] == "putting a cup on the table"
    assert labelled["counts"]["train"] == 2


def test_kinetics600_csv_splits_class_folders_or_flat_and_missing_clips(tmp_path):
    src = tmp_path / "k600"
    clip(src / "videos" / "playing bagpipes" / "abcDEF_000010_000020.mp4", 1)
    clip(src / "videos" / "abseiling" / "XYZ-_9_000000_000010.mp4", 2)
    clip(src / "val_flat" / "qqqqq_000005_000015.mp4", 3)
    clip(src / "val_flat" / "ttttt_000001_000011.mp4", 4)
    corrupt(src / "videos" / "abseiling" / "broken_000000_000010.mp4")
    header = ["label", "youtube_id", "time_start", "time_end", "split"]
    tables = {
        "train.csv": [
            ["playing bagpipes", "abcDEF", "10", "20", "train"],
            ["abseiling", "XYZ-_9", "0", "10", "train"],
            ["abseiling", "ABCdef", "10", "20", "train"],  # youtube ids are case-sensitive: missing
            ["abseiling", "broken", "0", "10", "train"],  # corrupt clip
            ["abseiling", "bad", "soon", "10", "train"],  # bad row
        ],
        "validate.csv": [["air drumming", "qqqqq", "5", "15", "validate"]],
        "test.csv": [["", "ttttt", "1", "11", "test"]],
    }
    for name, rows in tables.items():
        with open(src / name, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows])
    out = tmp_path / "out"
    record = prepare_set("kinetics600", src, out)
    rows = manifest_rows(out)
    assert record["counts"] == {"train": 2, "val": 1, "test": 1}
    assert record["failures_by_kind"] == {"missing": 1, "unreadable": 1, "bad_entry": 1}
    assert rows["train/abcDEF_000010_000020.mp4"]["caption"] == "playing bagpipes"
    assert rows["val/qqqqq_000005_000015.mp4"]["caption"] == "air drumming"
    assert rows["test/ttttt_000001_000011.mp4"]["caption"] == ""
    assert [item["caption"] for item in folder_items(out, "val")] == ["air drumming"]
    limited = prepare_set("kinetics600", src, tmp_path / "limited", PrepareConfig(limit=1))
    assert limited["counts"] == {"train": 1, "val": 1, "test": 1}


# --- BAIR: TFRecord framing and tf.train.Example written here, independently of vtlm's reader.


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # length-delimited (wire type 2)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _example(features: dict[str, bytes | list[float]]) -> bytes:
    entries = b""
    for key, value in features.items():
        if isinstance(value, bytes):
            feature = _field(1, _field(1, value))  # Feature.bytes_list.value
        else:
            feature = _field(2, _field(1, struct.pack(f"<{len(value)}f", *value)))  # packed floats
        entries += _field(1, _field(1, key.encode()) + _field(2, feature))
    return _field(1, entries)


def _masked(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _frame_record(data: bytes, break_crc: bool = False) -> bytes:
    length = struct.pack("<Q", len(data))
    crc = _masked(data) ^ (1 if break_crc else 0)
    return length + struct.pack("<I", _masked(length)) + data + struct.pack("<I", crc)


def _sequence(seed: int, frames: int = 3) -> tuple[np.ndarray, bytes]:
    pixels = np.random.default_rng(seed).integers(0, 255, (frames, 64, 64, 3), dtype=np.uint8)
    features: dict[str, bytes | list[float]] = {}
    for t in range(frames):
        features[f"{t}/action"] = [0.5, -0.25]
        features[f"{t}/image_main/encoded"] = bytes(64 * 64 * 3)
        features[f"{t}/image_aux1/encoded"] = pixels[t].tobytes()
    return pixels, _example(features)


def test_bair_tfrecords_become_clips_with_checksums_verified(tmp_path):
    root = tmp_path / "src" / "softmotion30_44k"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    sequences = [_sequence(seed) for seed in range(4)]
    (root / "train" / "traj_0_to_1.tfrecords").write_bytes(
        _frame_record(sequences[0][1]) + _frame_record(sequences[1][1])
    )
    test_file = _frame_record(sequences[2][1]) + _frame_record(sequences[3][1], break_crc=True)
    test_file += _frame_record(_example({"0/image_aux1/encoded": b"\x01" * 100}))  # not a square image
    test_file += _frame_record(sequences[3][1])[:50]  # cut short
    (root / "test" / "traj_2_to_3.tfrecords").write_bytes(test_file)
    out = tmp_path / "out"
    record = prepare_set("bair", tmp_path / "src", out, PrepareConfig(val_fraction=0.0))
    assert record["counts"] == {"train": 2, "val": 0, "test": 1}
    reasons = sorted(f["reason"] for f in record["failures"])
    assert len(reasons) == 3 and all(f["kind"] == "bad_record" for f in record["failures"])
    assert "data checksum mismatch" in reasons and any(r.startswith("truncated") for r in reasons)
    assert any("not a raw square RGB image" in r for r in reasons)
    rows = manifest_rows(out)
    assert {r["caption"] for r in rows.values()} == {"a robot arm pushes objects"}
    decoded = read_frames(out / "test/traj_2_to_3/0000.mp4", [0, 1, 2], get_backend("pyav"))
    diff = np.abs(decoded.astype(int) - sequences[2][0].astype(int))
    assert decoded.shape == (3, 64, 64, 3) and diff.mean() < 1.0 and diff.max() <= 4  # aux1, near lossless


def test_tfrecord_length_checksum_ends_the_file(tmp_path):
    from vtlm.data.prepare.tfrecord import parse_example, read_records

    good = _frame_record(b"abc")
    bad_length = bytearray(_frame_record(b"defg"))
    bad_length[8] ^= 0xFF
    path = tmp_path / "x.tfrecords"
    path.write_bytes(good + bytes(bad_length) + good)
    records = list(read_records(path))
    assert [r.data for r in records] == [b"abc", None] and "length checksum" in records[1].error
    assert parse_example(_example({"k": b"v", "f": [1.0]})) == {"k": [b"v"]}
    with pytest.raises(ValueError, match="malformed"):
        parse_example(_field(1, b"\x0a\xff"))


def test_moving_mnist_array_becomes_clips_split_like_the_protocol(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (20, 10, 64, 64), dtype=np.uint8)
    (tmp_path / "src").mkdir()
    np.save(tmp_path / "src" / "mnist_test_seq.npy", array)
    out = tmp_path / "out"
    from vtlm.cli.main import main

    main(["data", "prepare", "mmnist", str(tmp_path / "src"), str(out), "--options.workers", "2"])
    record = json.loads((out / "prepared.json").read_text())
    assert record["counts"] == {"train": 8, "val": 1, "test": 1} and record["failed"] == 0
    rows = manifest_rows(out)
    assert rows["test/seq_00009.mp4"] == {
        "path": "test/seq_00009.mp4", "caption": "moving digits", "split": "test", "index": 9, "frames": 20,
    }  # fmt: skip
    decoded = read_frames(out / "test/seq_00009.mp4", list(range(20)), get_backend("pyav"))
    assert np.abs(decoded[..., 0].astype(int) - array[:, 9].astype(int)).max() <= 4
    assert len(read_manifest(out / "manifest.jsonl")) == 10


def test_a_source_without_the_annotation_files_is_an_error_naming_them(tmp_path, capsys):
    from vtlm.cli.main import main

    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "prepare", "ucf101", str(tmp_path / "empty"), str(tmp_path / "out")])
    assert "trainlist01.txt" in str(exit_info.value)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "prepare", "bair", str(tmp_path / "empty"), str(tmp_path / "out")])
    assert "tfrecords" in str(exit_info.value)
    with pytest.raises(ValueError, match="outside the source"):
        prepare_set("kinetics600", tmp_path, tmp_path / "inside")
