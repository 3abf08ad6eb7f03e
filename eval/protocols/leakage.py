"""The leakage guard: refuse to score models on held-out clips their training data holds.

Checked before anything is generated, against what the tokenizer and every generator
trained on:

- **Built-in data, by identity.** Held-out clip ``i`` is drawn from
  ``clip_seed(dataset seed, "test", i)`` (:mod:`vtlm.data.splits`). The tokenizer trained on
  split ``train`` of the data config in its run's ``run.yaml``; a generator trained on the
  clips of its train shards, whose entries record their clip seed in ``meta["seed"]``.
- **Folder data, by file.** Held-out files (the test split) against the tokenizer's training
  files (the train split of its ``folder_root``, absolute paths) and the generators' shard
  entries (``meta["path"]``, relative to a folder the shards do not record, so a file of the
  same relative name counts as the same file).
- **Any data, by content.** The held-out clips' exact codes (``tokenizer.encode`` of the first
  ``1 + (t - 1) * stride`` frames) against every train shard entry of ``t`` latent frames,
  compared by hash. This finds a held-out clip copied into training data under any name.

Where a generator's training shards come from: ``tokenizer.train_shards`` in its
``config.yaml`` (recorded at export), else ``data.train`` of the ``run.yaml`` beside its model
directory. What cannot be checked (no run.yaml, no shards) is listed under ``unverified``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.shards import INDEX_NAME, read_shard_header
from vtlm.data.splits import clip_seed
from vtlm.data.synthetic import SyntheticConfig
from vtlm.tokenizer.model import VideoTokenizer

from .clips import load_held_out
from .registry import Protocol

BUILT_IN = ("shapes", "digits")


class LeakageError(ValueError):
    """Held-out clips overlap what a model trained on; the message names every overlap."""


@dataclass
class HeldOutSet:
    """The held-out clips of a run, by identity.

    ``seeds``: clip seed -> "shapes test #i (dataset seed S)" for built-in clips; ``builtin``:
    (kind, dataset seed, split) -> clip count; ``files``: absolute path -> relative path of
    the held-out files of folder data; ``protocols``: one protocol per data set with the most
    clips (what the content check renders).
    """

    seeds: dict[int, str] = field(default_factory=dict)
    builtin: dict[tuple[str, int, str], int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    protocols: list[Protocol] = field(default_factory=list)

    def describe(self) -> list[str]:
        out = [
            f"built-in {k}, split {s}, dataset seed {d}, clips 0..{n - 1}"
            for (k, d, s), n in self.builtin.items()
        ]
        return out + ([f"{len(self.files)} files (test split)"] if self.files else [])


def held_out_set(
    protocols: dict[str, Protocol], synthetic: SyntheticConfig | None, data: str | None, split: str = "test"
) -> HeldOutSet:
    """What ``load_held_out`` serves for ``protocols``: built-in clips 0..n-1 of ``split``
    (``load_held_out`` always uses the test split; another split is for the guard's own tests),
    folder files of the test split in the order it reads them."""
    held = HeldOutSet()
    widest: dict[str, Protocol] = {}
    for protocol in protocols.values():
        if protocol.dataset not in widest or protocol.num_clips > widest[protocol.dataset].num_clips:
            widest[protocol.dataset] = protocol
    held.protocols = list(widest.values())
    for dataset, protocol in widest.items():
        if dataset in BUILT_IN and synthetic is not None:
            held.builtin[(dataset, synthetic.seed, split)] = protocol.num_clips
            for i in range(protocol.num_clips):
                label = f"{dataset} {split} #{i} (dataset seed {synthetic.seed})"
                held.seeds[clip_seed(synthetic.seed, split, i)] = label
        elif dataset == "folder" and data is not None:
            clip = ClipSpec(num_frames=protocol.total_frames, resolution=protocol.resolution, window="start")
            folder = VideoFolderDataset(
                FolderConfig(root=data, split="test", clip=clip, media="videos"), True
            )
            for entry in folder.entries[: protocol.num_clips]:
                held.files[str(folder.root / entry.path)] = entry.path
    return held


# ---------------------------------------------------------------------------- what was trained on


def _yaml(path: Path) -> dict | None:
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else None


def tokenizer_overlaps(held: HeldOutSet, tokenizer_dir: str | Path, record: dict) -> list[str]:
    """Held-out clips in the tokenizer's training data (the ``run.yaml`` of its run)."""
    run_yaml = Path(tokenizer_dir).parent / "run.yaml"
    data = (_yaml(run_yaml) or {}).get("data")
    if not data:
        record["unverified"].append(
            f"tokenizer: no data config in {run_yaml}; its training clips are unknown"
        )
        return []
    if data.get("source") == "synthetic":
        return _synthetic_overlaps(held, SyntheticConfig(**data["synthetic"]), run_yaml, record)
    root = data.get("folder_root")
    if not root or not Path(root).is_dir():
        record["unverified"].append(f"tokenizer: its training folder {root!r} ({run_yaml}) is not here")
        return []
    record["tokenizer"] = {"run_yaml": str(run_yaml), "trained_on": f"train split of {root}"}
    if not held.files:
        return []  # built-in held-out clips are no files of a folder
    spec = ClipSpec(num_frames=1, resolution=int(data.get("resolution", 32)))  # every train file
    config = FolderConfig(root=root, split="train", clip=spec, captions=data.get("folder_captions", "auto"))
    folder = VideoFolderDataset(config, allow_empty=True)
    both = sorted(set(held.files) & {str(folder.root / e.path) for e in folder.entries})
    if not both:
        return []
    return [
        f"tokenizer ({run_yaml}: train split of {root}) trained on held-out files {both[:5]} ({len(both)} files)"
    ]


def _synthetic_overlaps(held: HeldOutSet, train: SyntheticConfig, run_yaml: Path, record: dict) -> list[str]:
    """Built-in clips are the same draw iff kind, dataset seed, split and index agree."""
    what = f"built-in {train.kind}, split train, dataset seed {train.seed}, clips 0..{train.num_clips - 1}"
    record["tokenizer"] = {"run_yaml": str(run_yaml), "trained_on": what}
    out = []
    for (kind, seed, split), count in held.builtin.items():
        n = min(count, train.num_clips)
        if (kind, seed, split) == (train.kind, train.seed, "train") and n > 0:
            out.append(f"tokenizer ({run_yaml}: {what}) trained on held-out clips {kind} train #0..#{n - 1} "
                       f"(dataset seed {seed}, {n} clips)")  # fmt: skip
    return out


def training_shards(model_dir: str | Path) -> Path | None:
    """The train shard folder a generator trained on: ``tokenizer.train_shards`` of its config.yaml,
    else ``data.train`` of the run.yaml beside it (relative paths from the current folder)."""
    config = _yaml(Path(model_dir) / "config.yaml") or {}
    recorded = (config.get("tokenizer") or {}).get("train_shards")
    if recorded is None:
        recorded = ((_yaml(Path(model_dir).parent / "run.yaml") or {}).get("data") or {}).get("train")
    return Path(recorded) if recorded else None


def _shard_entries(folder: Path):
    """(shard .bin path, key, meta, codes int64 (t, h, w)) of every clip listed in index.json."""
    index = json.loads((folder / INDEX_NAME).read_text())
    for shard in index["shards"]:
        header = read_shard_header(folder / f"{shard['name']}.json")
        bin_path = folder / f"{shard['name']}.bin"
        flat = np.memmap(bin_path, dtype="<u2" if header["dtype"] == "uint16" else "<i4", mode="r")
        for clip in header["clips"]:
            size = int(np.prod(clip["shape"]))
            codes = flat[clip["offset"] : clip["offset"] + size].astype(np.int64).reshape(clip["shape"])
            yield bin_path, clip["key"], clip.get("meta") or {}, codes


def code_hash(codes: np.ndarray | torch.Tensor) -> str:
    """sha256 of integer codes (t, h, w) as contiguous int64: equal hashes, equal codes."""
    if isinstance(codes, torch.Tensor):
        codes = codes.cpu().numpy()
    array = np.ascontiguousarray(codes, dtype=np.int64)
    return hashlib.sha256(str(array.shape).encode() + array.tobytes()).hexdigest()


# ---------------------------------------------------------------------------- held-out codes


@dataclass
class HeldOutCodes:
    """Hashes of the held-out clips' codes at a given number of latent frames, made on demand."""

    held: HeldOutSet
    synthetic: SyntheticConfig | None
    data: str | None
    tokenizer: VideoTokenizer
    batch_size: int = 16
    device: str = "cpu"
    _cache: dict[int, dict[str, str]] = field(default_factory=dict)

    def at(self, latent_frames: int) -> dict[str, str]:
        """hash -> held-out clip label, for clips of ``1 + (latent_frames - 1) * stride`` frames."""
        if latent_frames not in self._cache:
            frames = 1 + (latent_frames - 1) * self.tokenizer.cfg.temporal_downsample
            hashes: dict[str, str] = {}
            for protocol in self.held.protocols:
                if frames > protocol.total_frames:
                    continue  # no held-out clip is this long
                same = protocol.replace(kind="reconstruction", context_frames=frames, total_frames=frames)
                clips = load_held_out(same, self.synthetic, self.data)
                codes = self._encode(clips.video)
                for i, clip_codes in enumerate(codes):
                    hashes[code_hash(clip_codes)] = f"{protocol.dataset} test #{i} ({clips.source})"
            self._cache[latent_frames] = hashes
        return self._cache[latent_frames]

    def counts(self) -> dict[str, int]:
        """Held-out clips hashed per latent frame count compared (as JSON keys)."""
        return {str(t): len(hashes) for t, hashes in self._cache.items()}

    @torch.no_grad()
    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        out = []
        for start in range(0, len(video), self.batch_size):
            out.append(self.tokenizer.encode(video[start : start + self.batch_size].to(self.device)).cpu())
        return torch.cat(out)


def generator_overlaps(
    name: str, model_dir: str | Path, held: HeldOutSet, codes: HeldOutCodes | None, record: dict
) -> list[str]:
    """Held-out clips among a generator's train shard entries: by clip seed, file and codes."""
    folder = training_shards(model_dir)
    if folder is None or not (folder / INDEX_NAME).is_file():
        where = "not recorded" if folder is None else f"{folder} has no {INDEX_NAME}"
        record["unverified"].append(
            f"generator {name}: training shards {where}; its training clips are unknown"
        )
        return []
    problems, rel_files = [], set(held.files.values())
    entries, compared = 0, 0
    for bin_path, key, meta, clip_codes in _shard_entries(folder):
        entries += 1
        seed = meta.get("seed")
        if isinstance(seed, int) and seed in held.seeds:
            problems.append(
                f"generator {name}: {bin_path} entry {key!r} is held-out clip {held.seeds[seed]} (clip seed {seed})"
            )
        if meta.get("path") in rel_files:
            problems.append(f"generator {name}: {bin_path} entry {key!r} is held-out file {meta['path']!r}")
        if codes is not None:
            compared += 1
            hit = codes.at(clip_codes.shape[0]).get(code_hash(clip_codes))
            if hit is not None:
                problems.append(
                    f"generator {name}: {bin_path} entry {key!r} holds the exact codes of held-out clip {hit}"
                )
    record["generators"][name] = {"train_shards": str(folder), "entries": entries, "codes_compared": compared}
    return problems


def check_leakage(
    protocols: dict[str, Protocol],
    synthetic: SyntheticConfig | None,
    data: str | None,
    tokenizer: VideoTokenizer,
    tokenizer_dir: str | Path,
    generators: dict[str, str],
    batch_size: int = 16,
    device: str = "cpu",
    split: str = "test",
) -> dict:
    """Check the held-out clips of ``protocols`` against the tokenizer's and every generator's
    training data (``generators``: name -> model directory); returns what was checked.

    Raises:
        LeakageError: any overlap, every one named (split, file or shard entry, held-out clip).
    """
    held = held_out_set(protocols, synthetic, data, split)
    record: dict = {"checked": True, "held_out": held.describe(), "generators": {}, "unverified": []}
    problems = tokenizer_overlaps(held, tokenizer_dir, record)
    codes = None
    if tokenizer.codebook_size is not None:
        codes = HeldOutCodes(held, synthetic, data, tokenizer, batch_size, device)
    else:
        record["unverified"].append("content check: the tokenizer's bottleneck is continuous (no codes)")
    for name, path in generators.items():
        problems += generator_overlaps(name, path, held, codes, record)
    if problems:
        listing = "\n".join(f"- {p}" for p in problems[:20])
        more = f"\n- ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise LeakageError(
            f"leakage: {len(problems)} overlap(s) of the held-out clips ({'; '.join(held.describe())}) "
            f"with training data; refusing to evaluate:\n{listing}{more}\n"
            "(EvalConfig.leakage_check turns this off; never for reported numbers)"
        )
    record["content_hashes"] = codes.counts() if codes else {}
    return record
