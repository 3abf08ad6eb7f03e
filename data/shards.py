"""Token shards: clips tokenized once into integer codes on disk, written in parallel and resumably.

A video tokenizer turns a clip into a grid of codes of shape (t, h, w) (an image has t = 1),
each in [0, codebook_size). The GPT and the diffusion baseline train on these codes, read from
shards, and never decode video. :class:`vtlm.data.shard_dataset.TokenShards` reads them.

On-disk format (version 1). A shard folder holds, per shard ``NAME = {prefix}-{n:05d}``:

- ``NAME.bin``: the codes of all the shard's clips, each flattened in (t, h, w) C order and
  concatenated; little endian ``uint16`` when codebook_size <= 65536, else ``int32``.
- ``NAME.json``: written after the .bin, to a temporary name then renamed::

      {"format": "vtlm-token-shard", "version": 1, "dtype": "uint16" | "int32",
       "codebook_size": int, "num_tokens": int (length of the flat array),
       "sha256": hex digest of the .bin bytes,
       "clips": [{"key": str, "offset": int, "shape": [t, h, w], "caption": str,
                  "meta": {...}}, ...]}

  ``offset`` is in tokens (not bytes); clips lie back to back in the order listed.

A shard is complete iff its .json exists. A .bin without a .json is what a kill mid-shard leaves;
the next :class:`ShardWriter` with that prefix deletes it. Every process (rank) of a parallel
tokenization writes with its own prefix (``rank00``, ``rank01``, ...) into the same folder;
:func:`write_index` then joins all complete shards into ``index.json`` (written atomically)::

      {"format": "vtlm-token-index", "version": 1, "codebook_size": int, "grid": [h, w],
       "num_clips": int, "num_tokens": int,
       "shards": [{"name": "rank00-00000", "clips": int, "tokens": int, "sha256": hex}, ...],
       "extra": {...}}   # caller's dict, e.g. the tokenizer config and checkpoint hash

Resuming a killed run: skip every key in :func:`done_keys` and open a new writer with the same
prefix; it numbers its shards after the highest complete one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SHARD_FORMAT = "vtlm-token-shard"
INDEX_FORMAT = "vtlm-token-index"
INDEX_NAME = "index.json"
_SHARD_NAME = re.compile(r"^(?P<prefix>.+)-(?P<number>\d{5,})$")
_TEMP_NAME = re.compile(r"^\.(?P<stem>.+)\.(bin|json)\.tmp\d+$")  # see _atomic_write
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CHUNK = 1 << 20


class ShardError(ValueError):
    """A shard whose files are missing, truncated or corrupt; the message names the file."""


def code_dtype(codebook_size: int) -> np.dtype:
    """On-disk dtype for codes in [0, codebook_size): little endian uint16, else int32."""
    if codebook_size <= 65536:
        return np.dtype("<u2")
    if codebook_size <= 2**31:
        return np.dtype("<i4")
    raise ValueError(f"codebook_size: at most 2**31 codes fit in int32, got {codebook_size}")


def complete_shards(out_dir: str | os.PathLike, prefix: str | None = None) -> list[tuple[str, int, Path]]:
    """(prefix, number, json path) of every complete shard in ``out_dir``, sorted.

    ``prefix`` keeps only that prefix's shards. A missing folder has none.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for path in out_dir.glob("*.json"):
        match = _SHARD_NAME.match(path.stem)
        if match is None or path.name == INDEX_NAME:
            continue
        if prefix is None or match["prefix"] == prefix:
            found.append((match["prefix"], int(match["number"]), path))
    return sorted(found)


def read_shard_header(json_path: str | os.PathLike) -> dict:
    """A shard's .json, checked for format, version and consistent clip offsets."""
    json_path = Path(json_path)
    try:
        header = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ShardError(f"{json_path}: unreadable shard header ({err})") from err
    if not isinstance(header, dict) or header.get("format") != SHARD_FORMAT:
        raise ShardError(f"{json_path}: not a vtlm token shard header")
    if header.get("version") != FORMAT_VERSION:
        raise ShardError(
            f"{json_path}: shard format version {header.get('version')}, this vtlm reads {FORMAT_VERSION}"
        )
    expected = 0
    for clip in header["clips"]:
        if clip["offset"] != expected:
            raise ShardError(
                f"{json_path}: clip {clip['key']!r} at offset {clip['offset']}, expected {expected}"
            )
        expected += int(np.prod(clip["shape"]))
    if expected != header["num_tokens"]:
        raise ShardError(f"{json_path}: clips hold {expected} tokens, header says {header['num_tokens']}")
    return header


def _checked_bin(json_path: Path, header: dict) -> Path:
    """The shard's .bin path; ShardError when it is missing or not of the header's size."""
    bin_path = json_path.with_suffix(".bin")
    if not bin_path.is_file():
        raise ShardError(f"{bin_path}: missing (its header {json_path.name} exists)")
    size, expected = bin_path.stat().st_size, header["num_tokens"] * np.dtype(header["dtype"]).itemsize
    if size != expected:
        raise ShardError(f"{bin_path}: {size} bytes, expected {expected} (truncated?)")
    return bin_path


def verify_shard(json_path: str | os.PathLike) -> None:
    """Recompute the sha256 of the shard's .bin and compare with its .json.

    Raises:
        ShardError: naming the file, when the .bin is missing, has the wrong size, or its
            checksum differs (a flipped byte, a partial copy).
    """
    json_path = Path(json_path)
    header = read_shard_header(json_path)
    bin_path = _checked_bin(json_path, header)
    digest = hashlib.sha256()
    with open(bin_path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != header["sha256"]:
        raise ShardError(f"{bin_path}: sha256 differs from {json_path.name}; the shard is corrupt")


def done_keys(out_dir: str | os.PathLike) -> set[str]:
    """Keys of all clips in the complete shards of ``out_dir`` (every prefix): skip these on resume."""
    keys: set[str] = set()
    for _, _, path in complete_shards(out_dir):
        keys.update(clip["key"] for clip in read_shard_header(path)["clips"])
    return keys


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(handle)`` into a hidden temporary name beside ``path`` (``.NAME.tmpPID``), fsync,
    then rename over ``path``: readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_write(path: Path, data: bytes | memoryview) -> None:
    atomic_write(path, lambda handle: handle.write(data))


class ShardWriter:
    """Buffers tokenized clips and writes them as shards ``{prefix}-{n:05d}``.

    Args:
        out_dir: the shard folder (created if missing); several writers with different
            prefixes may share it, e.g. one per rank.
        prefix: this writer's shard name prefix, e.g. ``rank03``: letters, digits, ``_.-``.
            Two live writers must never share a prefix.
        codebook_size: codes must lie in [0, codebook_size); sets the on-disk dtype.
        clips_per_shard: clips buffered before a shard is written.

    On opening, the writer resumes its prefix: it deletes ``.bin`` files (and temporary files)
    of its prefix that have no ``.json`` (a kill mid-shard) and numbers new shards after the
    highest complete one. Adding a key already in a complete shard of its prefix is an error:
    the caller skips the keys in :func:`done_keys`.

    Used as a context manager, leaving the block normally writes the remainder; leaving it by
    an exception does not (those clips are encoded again on resume).
    """

    def __init__(
        self, out_dir: str | os.PathLike, prefix: str, codebook_size: int, clips_per_shard: int = 1024
    ):
        if not _PREFIX.match(prefix):
            raise ValueError(f"prefix: expected letters, digits and _.- (not first), got {prefix!r}")
        if int(codebook_size) < 1:
            raise ValueError(f"codebook_size: expected >= 1, got {codebook_size}")
        if clips_per_shard < 1:
            raise ValueError(f"clips_per_shard: expected >= 1, got {clips_per_shard}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix, self.codebook_size = prefix, int(codebook_size)
        self.clips_per_shard = clips_per_shard
        self.dtype = code_dtype(self.codebook_size)
        existing = complete_shards(self.out_dir, prefix)
        self._done: dict[str, str] = {}
        for _, _, path in existing:
            header = read_shard_header(path)
            if header["codebook_size"] != self.codebook_size:
                raise ValueError(
                    f"codebook_size: {path} was written with {header['codebook_size']}, "
                    f"this writer has {self.codebook_size}"
                )
            self._done.update((clip["key"], path.stem) for clip in header["clips"])
        self._next = existing[-1][1] + 1 if existing else 0
        self.removed_orphans = self._remove_orphans({path.stem for _, _, path in existing})
        self._buffer: list[tuple[str, np.ndarray, str, dict]] = []
        self._keys: set[str] = set()
        self.shards_written: list[str] = []

    def _remove_orphans(self, complete: set[str]) -> list[str]:
        removed = []
        for path in sorted(self.out_dir.iterdir()):
            temp = _TEMP_NAME.match(path.name)
            if temp is not None:
                stem = temp["stem"]
            elif path.suffix == ".bin" and path.stem not in complete:
                stem = path.stem
            else:
                continue
            match = _SHARD_NAME.match(stem)
            if match is not None and match["prefix"] == self.prefix:
                path.unlink()
                removed.append(path.name)
        if removed:
            log.warning(
                "%s: removed %d unfinished files of prefix %s: %s",
                self.out_dir,
                len(removed),
                self.prefix,
                removed,
            )
        return removed

    def add(
        self,
        key: str,
        codes: np.ndarray | torch.Tensor,
        caption: str = "",
        meta: dict | None = None,
    ) -> None:
        """Buffer one clip; writes a shard when ``clips_per_shard`` clips are buffered.

        Args:
            key: unique id of the clip across the whole corpus (e.g. source path + window).
            codes: integer (t, h, w) codes in [0, codebook_size); numpy or torch, any device.
            caption: the clip's text.
            meta: JSON-serializable dict (labels, split, source frames, ...).
        """
        if not isinstance(key, str) or not key:
            raise ValueError(f"key: expected a non-empty str, got {key!r}")
        if key in self._keys or key in self._done:
            where = self._done.get(key, "this writer's buffer or shards")
            raise ValueError(f"key {key!r}: already written ({where}); skip the keys in done_keys(out_dir)")
        if isinstance(codes, torch.Tensor):
            codes = codes.detach().cpu().numpy()
        codes = np.asarray(codes)
        if codes.dtype == np.bool_ or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes of {key!r}: expected an integer dtype, got {codes.dtype}")
        if codes.ndim != 3 or codes.size == 0:
            raise ValueError(
                f"codes of {key!r}: expected a non-empty (t, h, w) array, got shape {codes.shape}"
            )
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= self.codebook_size:
            raise ValueError(
                f"codes of {key!r}: values in [{low}, {high}], expected [0, {self.codebook_size}) "
                f"(codebook_size {self.codebook_size})"
            )
        if not isinstance(caption, str):
            raise ValueError(f"caption of {key!r}: expected str, got {type(caption).__name__}")
        meta = {} if meta is None else meta
        try:
            meta = json.loads(json.dumps(meta))
        except (TypeError, ValueError) as err:
            raise ValueError(f"meta of {key!r}: not JSON-serializable ({err})") from err
        if not isinstance(meta, dict):
            raise ValueError(f"meta of {key!r}: expected a dict, got {type(meta).__name__}")
        self._buffer.append((key, codes.astype(self.dtype), caption, meta))
        self._keys.add(key)
        if len(self._buffer) >= self.clips_per_shard:
            self.flush()

    def flush(self) -> Path | None:
        """Write the buffered clips as one shard (.bin, then .json); returns the .json path."""
        if not self._buffer:
            return None
        name = f"{self.prefix}-{self._next:05d}"
        flat = np.concatenate([codes.reshape(-1) for _, codes, _, _ in self._buffer])
        clips, offset = [], 0
        for key, codes, caption, meta in self._buffer:
            clips.append(
                {"key": key, "offset": offset, "shape": list(codes.shape), "caption": caption, "meta": meta}
            )
            offset += codes.size
        header = {
            "format": SHARD_FORMAT,
            "version": FORMAT_VERSION,
            "dtype": "uint16" if self.dtype == np.dtype("<u2") else "int32",
            "codebook_size": self.codebook_size,
            "num_tokens": int(flat.size),
            "sha256": hashlib.sha256(flat.data).hexdigest(),
            "clips": clips,
        }
        _atomic_write(self.out_dir / f"{name}.bin", flat.data)
        json_path = self.out_dir / f"{name}.json"
        _atomic_write(json_path, json.dumps(header).encode("utf-8"))
        self._next += 1
        self._buffer.clear()
        self.shards_written.append(name)
        return json_path

    def close(self) -> None:
        """Write the remaining buffered clips."""
        self.flush()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


def write_index(out_dir: str | os.PathLike, extra: dict | None = None) -> Path:
    """Join every complete shard of ``out_dir`` (all prefixes) into ``out_dir/index.json``.

    Args:
        out_dir: the shard folder.
        extra: JSON-serializable dict stored as is, e.g. the tokenizer's config and checkpoint
            hash, for a GPT to check it pairs with the tokenizer that made the codes.

    Raises:
        ValueError: no complete shard; a key in two places (names the key and both shards);
            shards that disagree on codebook_size or on the (h, w) grid.
        ShardError: a shard's .bin missing or of the wrong size (checksums are checked when
            the shards are opened, not here).
    """
    out_dir = Path(out_dir)
    shards = complete_shards(out_dir)
    if not shards:
        raise ValueError(f"{out_dir}: no complete shard (NAME.json beside NAME.bin) to index")
    seen: dict[str, str] = {}
    entries, codebook_sizes, grids = [], {}, {}
    for _, _, path in shards:
        header = read_shard_header(path)
        _checked_bin(path, header)
        codebook_sizes.setdefault(header["codebook_size"], path.stem)
        for clip in header["clips"]:
            if clip["key"] in seen:
                raise ValueError(
                    f"key {clip['key']!r} appears twice: in shard {seen[clip['key']]} and in shard {path.stem}"
                )
            seen[clip["key"]] = path.stem
            grids.setdefault(tuple(clip["shape"][1:]), path.stem)
        entries.append(
            {
                "name": path.stem,
                "clips": len(header["clips"]),
                "tokens": header["num_tokens"],
                "sha256": header["sha256"],
            }
        )
    if len(codebook_sizes) > 1:
        raise ValueError(f"codebook_size: shards disagree, {codebook_sizes} (size: first shard)")
    if len(grids) > 1:
        raise ValueError(f"grid: clips of different (h, w) grids, {grids} (grid: first shard)")
    try:
        extra = json.loads(json.dumps(extra or {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"extra: not JSON-serializable ({err})") from err
    index = {
        "format": INDEX_FORMAT,
        "version": FORMAT_VERSION,
        "codebook_size": next(iter(codebook_sizes)),
        "grid": list(next(iter(grids))),
        "num_clips": len(seen),
        "num_tokens": sum(e["tokens"] for e in entries),
        "shards": entries,
        "extra": extra,
    }
    path = out_dir / INDEX_NAME
    _atomic_write(path, json.dumps(index, indent=1).encode("utf-8"))
    return path
