"""BAIR robot pushing (Ebert et al. 2017) from its TFRecord files, without TensorFlow.

SOURCE is the extracted ``bair_robot_pushing_dataset_v0.tar`` (``softmotion30_44k/train/*.tfrecords``
and ``softmotion30_44k/test/*.tfrecords``): the official split is the folder a file sits in.
Each record is a ``tf.train.Example`` holding one 30-step sequence; frame ``t`` of a camera is
the bytes feature ``{t}/image_aux1/encoded`` (or ``image_main``), raw uint8 64x64x3. Every
sequence becomes one clip, written as H.264 at the writers' lossless setting (crf 0, 4:4:4;
only the RGB <-> YUV conversion rounds), captioned "a robot arm pushes objects". A record with
a bad checksum or a malformed frame is a counted failure; a file cut short loses only the
records after the cut.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..writers import write_mp4
from .common import Outcome, PrepareConfig, carve_val, run_jobs
from .tfrecord import parse_example, read_records

CAPTION = "a robot arm pushes objects"


def sequence_frames(features: dict[str, list[bytes]], camera: str) -> np.ndarray:
    """uint8 (T, S, S, 3) frames of one camera from an Example's bytes features."""
    frames = []
    while (key := f"{len(frames)}/image_{camera}/encoded") in features:
        values = features[key]
        if len(values) != 1:
            raise ValueError(f"{key}: expected one image, got {len(values)}")
        side = math.isqrt(len(values[0]) // 3)
        if side == 0 or side * side * 3 != len(values[0]):
            raise ValueError(f"{key}: {len(values[0])} bytes is not a raw square RGB image (S*S*3)")
        frames.append(np.frombuffer(values[0], np.uint8).reshape(side, side, 3))
    if not frames:
        raise ValueError(f"no frame 0/image_{camera}/encoded")
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"frames of different sizes: {sorted({f.shape for f in frames})}")
    return np.stack(frames)


def _prepare_file(job: tuple[Path, str, Path, PrepareConfig, int | None]) -> tuple[list[dict], list[dict]]:
    """Clips of one TFRecord file: (manifest rows, failures); at most ``max_records`` records."""
    path, official, out, cfg, max_records = job
    rows, failures = [], []
    for record in read_records(path):
        if max_records is not None and record.index >= max_records:
            break
        item = f"{path.name}[{record.index}]"
        if record.data is None:
            failures.append({"item": item, "kind": "bad_record", "reason": record.error})
            continue
        try:
            frames = sequence_frames(parse_example(record.data), cfg.bair_camera)
        except ValueError as err:
            failures.append({"item": item, "kind": "bad_record", "reason": str(err)})
            continue
        split = carve_val(official, f"{path.stem}/{record.index}", cfg)
        rel = f"{split}/{path.stem}/{record.index:04d}.mp4"
        if not (out / rel).is_file():
            write_mp4(out / rel, frames, fps=cfg.fps, crf=0, pix_fmt="yuv444p")
        rows.append(
            {
                "path": rel,
                "caption": CAPTION,
                "split": split,
                "record": item,
                "frames": int(frames.shape[0]),
                "official_split": official,
            }
        )
    return rows, failures


def prepare(source: Path, out: Path, cfg: PrepareConfig) -> Outcome:
    outcome = Outcome(
        splits={
            "train": f"train/*.tfrecords, less {cfg.val_fraction:.0%} of its sequences",
            "val": f"{cfg.val_fraction:.0%} of train/*.tfrecords' sequences",
            "test": "test/*.tfrecords",
        }
    )
    files = {
        official: sorted(p for p in source.rglob("*.tfrecords") if p.parent.name == official)
        for official in ("train", "test")
    }
    if not any(files.values()):
        raise FileNotFoundError(f"source: no train/*.tfrecords or test/*.tfrecords below {source}")
    for official, paths in files.items():
        if cfg.limit is None:
            jobs = [(path, official, out, cfg, None) for path in paths]
            results = list(run_jobs(_prepare_file, jobs, cfg.workers, f"BAIR {official}"))
        else:  # one file after another until the limit is reached
            results, left = [], cfg.limit
            for path in paths:
                if left <= 0:
                    break
                rows, failures = _prepare_file((path, official, out, cfg, left))
                results.append((rows, failures))
                left -= len(rows) + len(failures)
        for rows, failures in results:
            outcome.rows += rows
            outcome.failures += failures
    return outcome
