"""Caption manifests: which caption (and labels) belong to which file.

A manifest is JSONL (one object per line with at least ``path`` and usually ``caption``; other
keys such as ``split``, ``caption_terse`` or ``labels`` are kept as metadata) or CSV with a
``path`` and a ``caption`` column. Paths are relative to the manifest's folder unless absolute.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the line."""


def read_manifest(path: str | os.PathLike) -> dict[str, dict]:
    """Entries keyed by the file's absolute, normalized path."""
    path = Path(path)
    base = path.parent
    entries: dict[str, dict] = {}
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise ManifestError(
                    f"{path}: expected a header with a 'path' column, got {reader.fieldnames}"
                )
            rows = [(n + 2, dict(row)) for n, row in enumerate(reader)]
    else:
        rows = []
        with open(path, encoding="utf-8") as handle:
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ManifestError(f"{path}:{n}: not valid JSON ({err.msg})") from err
                if not isinstance(row, dict) or "path" not in row:
                    raise ManifestError(f"{path}:{n}: expected an object with a 'path' key")
                rows.append((n, row))
    for _, row in rows:
        row["caption"] = row.get("caption") or ""
        entries[str((base / row["path"]).resolve())] = row
    return entries


def write_manifest(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """JSONL manifest, written to a temporary name and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    os.replace(tmp, path)
    return path


def sidecar_caption(video_path: str | os.PathLike) -> str | None:
    """Caption from ``name.txt`` beside ``name.mp4``, if there is one."""
    sidecar = Path(video_path).with_suffix(".txt")
    if sidecar.is_file():
        return sidecar.read_text(encoding="utf-8").strip()
    return None


def class_caption(folder_name: str) -> str:
    """UCF-101-style class folder name as a caption: 'ApplyEyeMakeup' -> 'apply eye makeup'."""
    words, current = [], ""
    for char in folder_name.replace("_", " "):
        if char == " ":
            if current:
                words.append(current)
            current = ""
        elif char.isupper() and current and not current[-1].isupper():
            words.append(current)
            current = char
        else:
            current += char
    if current:
        words.append(current)
    return " ".join(word.lower() for word in words)
