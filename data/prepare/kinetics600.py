"""Kinetics-600 (Carreira et al. 2018) from its CSV annotations and downloaded clips.

SOURCE holds the annotation CSVs (``train.csv``, ``validate.csv``, ``test.csv``, columns
``label,youtube_id,time_start,time_end,split``) and the clips, named
``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` (any video extension), in class folders or
flat, anywhere below it. Splits are the CSVs' own (``split`` column, else the file name):
train, val (validate), test. Captions are the class names ('playing bagpipes'); a row without a
label (some test CSVs) gets an empty caption. Clips that were never downloaded (many YouTube
videos are gone) are counted as missing.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .common import Outcome, PrepareConfig, VideoJob, index_videos, place_videos

_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validate": "val"}
_SPLITS.update({"validation": "val", "test": "test", "testing": "test"})
_COLUMNS = ("youtube_id", "time_start", "time_end")


def annotation_files(source: Path) -> list[Path]:
    """CSV files below ``source`` whose header has the Kinetics columns."""
    found = []
    for path in sorted(source.rglob("*.csv")) if source.is_dir() else [source]:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), [])
        if all(column in header for column in _COLUMNS):
            found.append(path)
    if not found:
        raise FileNotFoundError(
            f"source: no Kinetics annotation CSV (columns label,youtube_id,time_start,time_end,split) in {source}"
        )
    return found


def clip_stem(row: dict) -> str:
    """'<youtube_id>_<start:06d>_<end:06d>'; ValueError for a row without those fields."""
    return (
        f"{row['youtube_id'].strip()}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
    )


def prepare(source: Path, out: Path, cfg: PrepareConfig) -> Outcome:
    outcome = Outcome(splits={"train": "train CSV rows", "val": "validate CSV rows", "test": "test CSV rows"})
    videos = {Path(name).stem: path for name, path in index_videos(source).items()}
    jobs, seen, taken = [], set(), {"train": 0, "val": 0, "test": 0}
    for path in annotation_files(source):
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            for n, row in enumerate(csv.DictReader(handle), start=2):
                item = f"{path.name}:{n}"
                official = (row.get("split") or path.stem).strip().lower()
                split = _SPLITS.get(official)
                try:
                    stem = clip_stem(row)
                except (KeyError, ValueError, TypeError, AttributeError):
                    outcome.fail(item, "bad_entry", f"expected youtube_id, time_start, time_end, got {row}")
                    continue
                if split is None:
                    outcome.fail(item, "bad_entry", f"{stem}: unknown split {official!r}")
                    continue
                if cfg.limit is not None and taken[split] >= cfg.limit:
                    continue
                taken[split] += 1
                if stem in seen:
                    outcome.fail(item, "duplicate", f"{stem} listed again")
                    continue
                seen.add(stem)
                src = videos.get(stem)
                if src is None:
                    outcome.fail(item, "missing", f"no clip {stem}.mp4 in {source}")
                    continue
                label = (row.get("label") or "").strip().strip('"')
                caption = label.replace("_", " ")
                row_out = {
                    "caption": caption,
                    "split": split,
                    "label": label or None,
                    "official_split": official,
                }
                jobs.append(VideoJob(src, f"{split}/{src.name}", row_out))
    place_videos(jobs, out, cfg, outcome)
    return outcome
