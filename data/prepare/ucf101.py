"""UCF-101 (Soomro et al. 2012) with the official train / test lists of split 1.

SOURCE is the folder holding both downloads: ``UCF101.rar`` extracted (``UCF-101/<Class>/
v_<Class>_gGG_cCC.avi``) and the recognition split lists (``ucfTrainTestlist/trainlist01.txt``,
``testlist01.txt``, ``classInd.txt``), anywhere below it. ``trainlist01`` is train (less a
``val_fraction`` share of its groups, held out whole so no group's clips sit on both sides),
``testlist01`` is test. Captions are the class names split into words ('ApplyEyeMakeup' ->
'apply eye makeup'). A list entry whose file is missing is a counted failure; file names are
matched case-insensitively (copies of UCF-101 differ in the case of a few names).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ..manifest import class_caption
from .common import Outcome, PrepareConfig, VideoJob, carve_val, find_file, index_videos, place_videos

_GROUP = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


def read_list(path: Path, outcome: Outcome) -> list[str]:
    """The clip entries ('Class/v_Class_g08_c01.avi') of a split list; bad lines are failures."""
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        entry = words[0].replace("\\", "/")
        if len(PurePosixPath(entry).parts) != 2 or not entry.lower().endswith(".avi"):
            outcome.fail(f"{path.name}:{n}", "bad_entry", f"expected 'Class/file.avi [label]', got {line!r}")
            continue
        entries.append(entry)
    return entries


def class_indices(source: Path) -> dict[str, int]:
    """Lowercased class name -> index from classInd.txt ('1 ApplyEyeMakeup'); empty when it is absent."""
    try:
        path = find_file(source, "classInd.txt", "the class index")
    except FileNotFoundError:
        return {}
    pairs = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {name.lower(): int(index) for index, name in pairs if index.isdigit()}


def prepare(source: Path, out: Path, cfg: PrepareConfig) -> Outcome:
    outcome = Outcome(
        splits={
            "train": f"trainlist01.txt, less {cfg.val_fraction:.0%} of its (class, group) pairs",
            "val": f"{cfg.val_fraction:.0%} of trainlist01's (class, group) pairs",
            "test": "testlist01.txt",
        }
    )
    lists = {
        "train": find_file(source, "trainlist01.txt", "the official split-1 train list"),
        "test": find_file(source, "testlist01.txt", "the official split-1 test list"),
    }
    indices = class_indices(source)
    videos = {name.lower(): path for name, path in index_videos(source).items()}
    jobs = []
    for official, list_path in lists.items():
        entries = read_list(list_path, outcome)[: cfg.limit]
        for entry in entries:
            folder, name = PurePosixPath(entry).parts
            src = videos.get(name.lower())
            if src is None:
                outcome.fail(entry, "missing", f"listed in {list_path.name}, no such file in {source}")
                continue
            group = _GROUP.search(name)
            split = carve_val(official, f"{folder}/{group.group(1) if group else name}", cfg)
            row = {
                "caption": class_caption(folder),
                "split": split,
                "label": folder,
                "label_index": indices.get(folder.lower()),
                "official_split": official,
            }
            jobs.append(VideoJob(src, f"{split}/{folder}/{src.name}", row))
    place_videos(jobs, out, cfg, outcome)
    return outcome
