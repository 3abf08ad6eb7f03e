"""What every ``vtlm data prepare`` set shares: options, placing and checking files, the record.

A prepared folder is what :class:`vtlm.data.folder.VideoFolderDataset` reads: video files under
``OUT/<split>/...`` and ``OUT/manifest.jsonl`` with one row per usable file (``path`` relative
to OUT, ``caption``, ``split`` and the set's own fields such as ``label`` or
``official_split``), plus ``OUT/prepared.json``: what it was made from (source, set, options),
counts per split, and every failure with its reason. A bad or missing source file is a counted
failure, never an error; a source without the set's annotation files is an error that names
what was looked for.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from ..manifest import write_manifest
from ..splits import SPLITS, hash_fraction
from ..video_io import VIDEO_EXTENSIONS, VideoReadError, get_backend, probe_file, read_frames

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class PrepareConfig:
    """Options of ``vtlm data prepare`` (the set-specific ones name their set)."""

    # How source videos reach OUT: hardlink (no extra space; a copy where a link cannot be
    # made, e.g. across file systems) or copy.
    files: Literal["hardlink", "copy"] = "hardlink"
    # Probe every source video and decode its first frame; one that fails is counted, not placed.
    check_videos: bool = True
    # Share of the official train split held out as vtlm's `val` split (by a stable hash of a
    # group key), for sets whose official splits have no validation set (all but Kinetics-600;
    # Moving MNIST has its own index split).
    val_fraction: float = 0.02
    split_seed: int = 0
    # At most this many items per official split (None: all): a quick look before the full run.
    limit: int | None = None
    # Processes checking, linking and encoding in parallel.
    workers: int = 1
    # Frame rate written into the clips made from records and arrays (BAIR, Moving MNIST).
    fps: float = 10.0
    # BAIR: which camera (aux1: the view of published BAIR results; main: the other one).
    bair_camera: Literal["aux1", "main"] = "aux1"
    # SSv2: captions from the template filled with its placeholders, or the label field.
    ssv2_caption: Literal["filled", "label"] = "filled"

    def __post_init__(self):
        if self.files not in ("hardlink", "copy"):
            raise ValueError(f"files: expected 'hardlink' or 'copy', got {self.files!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in [0, 1), got {self.val_fraction}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit: expected >= 1 or None, got {self.limit}")
        if self.workers < 1:
            raise ValueError(f"workers: expected >= 1, got {self.workers}")
        if self.fps <= 0:
            raise ValueError(f"fps: expected > 0, got {self.fps}")


@dataclass
class Outcome:
    """What a set's preparation produced: manifest rows, failures, and how splits were made."""

    rows: list[dict] = field(default_factory=list)
    # {"item": what failed (a list entry, a file, a record), "kind": missing | unreadable |
    # bad_entry | bad_record | duplicate, "reason": words}
    failures: list[dict] = field(default_factory=list)
    # Official split -> vtlm split, in words (recorded in prepared.json).
    splits: dict[str, str] = field(default_factory=dict)

    def fail(self, item: str, kind: str, reason: str) -> None:
        self.failures.append({"item": item, "kind": kind, "reason": reason})


@dataclass
class VideoJob:
    """One source video to check and place at ``OUT/rel`` with its manifest row."""

    src: Path
    rel: str
    row: dict


def carve_val(split: str, key: str, cfg: PrepareConfig) -> str:
    """``train`` -> ``val`` for a ``cfg.val_fraction`` share of train keys (stable hash)."""
    if split == "train" and cfg.val_fraction > 0 and hash_fraction(key, cfg.split_seed) < cfg.val_fraction:
        return "val"
    return split


def find_file(source: Path, name: str, what: str) -> Path:
    """The first file called ``name`` below ``source`` (``source`` itself when it is that file)."""
    if source.is_file() and source.name == name:
        return source
    if source.is_dir():
        found = sorted(source.rglob(name))
        if found:
            return found[0]
    raise FileNotFoundError(f"source: no {name} ({what}) found in {source}")


def index_videos(source: Path) -> dict[str, Path]:
    """Every video file below ``source`` by file name (hidden folders skipped; first one wins)."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if Path(name).suffix.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                found.setdefault(name, Path(folder) / name)
    return found


def run_jobs(fn: Callable[[J], R], jobs: list[J], workers: int, desc: str) -> Iterator[R]:
    """``fn(job)`` for every job, in order; over ``workers`` processes when more than one."""
    from tqdm import tqdm

    if workers <= 1 or len(jobs) <= 1:
        results: Iterable[R] = map(fn, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers)
        results = pool.map(fn, jobs, chunksize=max(1, min(64, len(jobs) // (4 * workers))))
    try:
        yield from tqdm(results, total=len(jobs), desc=desc, unit="item", disable=None, leave=False)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


_BACKEND = None


def check_video(path: Path) -> str | None:
    """None when ``path`` probes and its first frame decodes, else the reason it does not."""
    global _BACKEND
    if _BACKEND is None:
        _BACKEND = get_backend("auto")
    try:
        probe_file(path, _BACKEND)
        read_frames(path, [0], _BACKEND)
    except VideoReadError as err:
        return err.reason
    return None


def _place(job: tuple[Path, Path, str, bool]) -> str | None:
    """Link or copy ``src`` to ``dst`` after checking it; None, or why it was not placed."""
    src, dst, files, check = job
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return None  # placed (and checked) by an earlier run
    if check:
        reason = check_video(src)
        if reason is not None:
            return reason
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    if files == "hardlink":
        try:
            os.link(src, dst)
            return None
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return None


def place_videos(jobs: list[VideoJob], out: Path, cfg: PrepareConfig, outcome: Outcome) -> None:
    """Check and place every job's video; usable ones become manifest rows, others failures."""
    work = [(job.src, out / job.rel, cfg.files, cfg.check_videos) for job in jobs]
    for job, reason in zip(jobs, run_jobs(_place, work, cfg.workers, "placing videos")):
        if reason is None:
            outcome.rows.append({"path": job.rel, **job.row})
        else:
            outcome.fail(str(job.src), "unreadable", reason)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vtlm")
    except PackageNotFoundError:
        return "unknown"


def finish(name: str, source: Path, out: Path, cfg: PrepareConfig, outcome: Outcome) -> dict:
    """Write OUT/manifest.jsonl and OUT/prepared.json; returns the record."""
    rows = sorted(outcome.rows, key=lambda row: row["path"])
    write_manifest(out / "manifest.jsonl", rows)
    counts = Counter(row["split"] for row in rows)
    record = {
        "set": name,
        "source": str(source),
        "out": str(out),
        "vtlm_version": _version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "options": asdict(cfg),
        "splits": outcome.splits,
        "counts": {split: counts.get(split, 0) for split in SPLITS},
        "failed": len(outcome.failures),
        "failures_by_kind": dict(Counter(f["kind"] for f in outcome.failures)),
        "failures": outcome.failures,
    }
    tmp = out / f".prepared.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, out / "prepared.json")
    return record
