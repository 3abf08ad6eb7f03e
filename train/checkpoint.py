"""Model directories: weights in safetensors plus a readable YAML config, written atomically.

A model directory holds ``config.yaml`` (``kind``, the model's config as plain values, and any
extra plain values such as the training step) and ``weights.safetensors``. Loading never
unpickles anything. ``save_model_dir`` writes into a temporary sibling folder and renames it
into place, so a killed save leaves the previous directory intact.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import TypeVar

import torch
import yaml
from safetensors.torch import load_file, save_file

CONFIG_NAME, WEIGHTS_NAME = "config.yaml", "weights.safetensors"
T = TypeVar("T")


def config_from_dict(cls: type[T], values: dict) -> T:
    """A config dataclass from the plain values of a config.yaml; unknown keys are named."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
    return cls(**values)


class ConfigDict:
    """``to_dict`` / ``from_dict`` of a config dataclass: its plain values, as config.yaml holds
    them, and back (unknown keys named)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        return config_from_dict(cls, values)


def check_positive(cfg, names: tuple[str, ...]) -> None:
    """Refuse a config whose fields ``names`` are not >= 1, naming the first such field."""
    for name in names:
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name}: expected >= 1, got {getattr(cfg, name)}")


def save_model_dir(
    path: str | os.PathLike,
    kind: str,
    config: dict,
    state: dict[str, torch.Tensor],
    extra: dict | None = None,
) -> Path:
    """Write ``state`` and ``{"kind", "config", **extra}`` to the directory ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(tmp / WEIGHTS_NAME))
    (tmp / CONFIG_NAME).write_text(
        yaml.safe_dump({"kind": kind, "config": config, **(extra or {})}, sort_keys=False)
    )
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def load_model_dir(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(the YAML contents, the weights) of a model directory of the given ``kind``."""
    path = Path(path)
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(
            f"{path}: not a vtlm model directory (expected {CONFIG_NAME} and {WEIGHTS_NAME})"
        )
    try:
        meta = yaml.safe_load((path / CONFIG_NAME).read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path / CONFIG_NAME}: not valid YAML ({err})") from err
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        raise ValueError(f"{path}: expected a {kind!r} model directory, found kind {found!r}")
    try:
        state = load_file(str(path / WEIGHTS_NAME))
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise ValueError(f"{path / WEIGHTS_NAME}: unreadable weights ({err})") from err
    return meta, state
