"""Something-Something v2 (Goyal et al. 2017) from its JSON labels and webm files.

SOURCE holds the videos (``<id>.webm``, e.g. in ``20bn-something-something-v2/``) and the
label files (``something-something-v2-train.json``, ``-validation.json``, ``-labels.json``)
anywhere below it. Each entry is ``{"id", "label", "template", "placeholders"}``; the caption
is the template with each ``[something]`` filled by its placeholder in order ('Putting
[something] on [something]' + ['a cup', 'the table'] -> 'Putting a cup on the table'), or the
``label`` field (``ssv2_caption``). The official test set has no labels and is not prepared;
the official validation set is vtlm's ``test`` split (the held-out set results are reported
on), and ``val_fraction`` of train is held out as ``val``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .common import Outcome, PrepareConfig, VideoJob, carve_val, find_file, index_videos, place_videos

_SLOT = re.compile(r"\[something\]", re.IGNORECASE)
LISTS = {"train": "something-something-v2-train.json", "test": "something-something-v2-validation.json"}


def fill_template(template: str, placeholders: list[str]) -> str | None:
    """The template with its slots filled in order; None when the counts differ."""
    if len(_SLOT.findall(template)) != len(placeholders):
        return None
    filled = iter(placeholders)
    return _SLOT.sub(lambda _: next(filled), template)


def caption_of(entry: dict, mode: str) -> str | None:
    """An entry's caption (None when the entry gives none)."""
    label = entry.get("label")
    if mode == "filled" and isinstance(entry.get("template"), str):
        filled = fill_template(entry["template"], list(entry.get("placeholders") or []))
        if filled is not None:
            return filled
    return label if isinstance(label, str) and label else None


def _label_indices(source: Path) -> dict[str, int]:
    """Template without brackets ('Putting something on something') -> class index from -labels.json; empty when absent."""
    try:
        path = find_file(source, "something-something-v2-labels.json", "the class index")
    except FileNotFoundError:
        return {}
    return {name: int(index) for name, index in json.loads(path.read_text(encoding="utf-8")).items()}


def read_entries(path: Path) -> list:
    """The list of a labels JSON file (a file that is not one is an error naming it)."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of entries, got {type(entries).__name__}")
    return entries


def prepare(source: Path, out: Path, cfg: PrepareConfig) -> Outcome:
    outcome = Outcome(
        splits={
            "train": f"something-something-v2-train.json, less {cfg.val_fraction:.0%} of it by id",
            "val": f"{cfg.val_fraction:.0%} of something-something-v2-train.json by id",
            "test": "something-something-v2-validation.json (the official test set is unlabeled)",
        }
    )
    files = {official: find_file(source, name, f"SSv2 {official} labels") for official, name in LISTS.items()}
    classes = _label_indices(source)
    videos = index_videos(source)
    jobs, seen = [], set()
    for official, path in files.items():
        for n, entry in enumerate(read_entries(path)[: cfg.limit]):
            item = f"{path.name}[{n}]"
            if not isinstance(entry, dict) or not str(entry.get("id", "")).strip():
                outcome.fail(item, "bad_entry", "expected an object with an 'id'")
                continue
            vid = str(entry["id"]).strip()
            caption = caption_of(entry, cfg.ssv2_caption)
            if caption is None:
                outcome.fail(
                    item, "bad_entry", f"id {vid}: no label, and no template filled by its placeholders"
                )
                continue
            if vid in seen:
                outcome.fail(item, "duplicate", f"id {vid} listed again")
                continue
            seen.add(vid)
            src = videos.get(f"{vid}.webm")
            if src is None:
                outcome.fail(item, "missing", f"id {vid}: no {vid}.webm in {source}")
                continue
            split = carve_val(official, vid, cfg)
            template = entry.get("template")
            row = {
                "caption": caption,
                "split": split,
                "id": vid,
                "template": template,
                "label_index": classes.get(str(template).replace("[", "").replace("]", "")),
                "official_split": "validation" if official == "test" else official,
            }
            jobs.append(VideoJob(src, f"{split}/{src.name}", row))
    place_videos(jobs, out, cfg, outcome)
    return outcome
