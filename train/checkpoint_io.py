"""Training checkpoints (Lightning ``.ckpt`` files) that survive kills and refuse untrusted code.

- :class:`AtomicCheckpointIO` writes a checkpoint to a hidden temporary name in the same
  folder, fsyncs it and renames it over the target, so a process killed mid-save leaves the
  previous file whole. It reads with ``torch.load(weights_only=True)`` whatever Lightning asks,
  so resuming never unpickles arbitrary objects (our checkpoints hold tensors and plain values).
- :func:`read_checkpoint` loads one file the same way and turns every failure (truncated,
  corrupt, pickled code, not a training checkpoint) into a :class:`CheckpointError` naming it.
- :func:`newest_valid_checkpoint` picks what ``resume: auto`` continues from: ``last.ckpt``,
  else the newest interval checkpoint that loads, with the reason each skipped one was skipped.
- :class:`RunCheckpoint` is Lightning's ``ModelCheckpoint`` plus a ``last.ckpt`` written when
  the run receives SIGTERM (what a preempting scheduler sends, Lightning's own handler notes
  it), and it never writes weights that went non-finite, so the last checkpoint on disk is
  always a good one.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vtlm.data.shards import atomic_write

log = logging.getLogger(__name__)

LAST_NAME = "last.ckpt"
_TEMP = re.compile(r"^\..+\.ckpt\.tmp\d+$")
_STEP = re.compile(r"step(\d+)")


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file and the reason."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O: atomic writes (temporary name, fsync, rename) and
    ``weights_only=True`` reads."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError(
                f"storage_options: not supported by {type(self).__name__}, got {storage_options!r}"
            )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: torch.save(checkpoint, handle))
        _fsync_dir(path.parent)

    def load_checkpoint(self, path, map_location=None, weights_only: bool | None = None) -> dict:
        """The checkpoint at ``path``; ``weights_only`` is always True, whatever the caller passes."""
        return read_checkpoint(path, map_location=map_location or "cpu")


def read_checkpoint(path: str | os.PathLike, map_location="cpu", mmap: bool = False) -> dict:
    """A Lightning training checkpoint, loaded with ``torch.load(weights_only=True)``.

    Args:
        path: the ``.ckpt`` file.
        map_location: where tensors go (``torch.load``'s argument).
        mmap: memory-map the tensors instead of reading them (a cheap validity check).

    Raises:
        CheckpointError: naming ``path``: missing, truncated or corrupt, holding pickled objects
            other than tensors and plain values (refused, never run), or not a training
            checkpoint (no ``state_dict`` or ``global_step``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive, its index at the end
        size = path.stat().st_size
        raise CheckpointError(
            f"{path}: unreadable checkpoint, truncated or corrupt ({size} bytes, no archive index)"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()
        detail = next(
            (line for line in reason if "GLOBAL" in line or "Unsupported" in line),
            reason[0] if reason else "",
        )
        raise CheckpointError(
            f"{path}: refused: it holds pickled Python objects, not only tensors and plain values "
            f"(vtlm never writes such checkpoints; loading one could run code). {detail.strip()}"
        ) from err
    except Exception as err:  # torch raises RuntimeError, EOFError, ... for damaged archives
        raise CheckpointError(
            f"{path}: unreadable checkpoint, truncated or corrupt ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "global_step" not in checkpoint:
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"{path}: not a training checkpoint (expected state_dict and global_step, found {found})"
        )
    return checkpoint


def _newest_first(folder: Path) -> list[Path]:
    """``last.ckpt``, then the other checkpoints by step (from the name), then by time, newest first."""
    others = [p for p in folder.glob("*.ckpt") if p.name != LAST_NAME]

    def key(path: Path) -> tuple[int, float]:
        match = _STEP.search(path.stem)
        return (int(match[1]) if match else -1, path.stat().st_mtime)

    ordered = sorted(others, key=key, reverse=True)
    last = folder / LAST_NAME
    return ([last] if last.is_file() else []) + ordered


def newest_valid_checkpoint(folder: str | os.PathLike) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(the checkpoint to resume from or None, [(skipped checkpoint, why), ...]).

    Tries ``last.ckpt`` and then the interval checkpoints from the newest step down; the first
    that :func:`read_checkpoint` accepts wins. A missing folder has none.
    """
    folder = Path(folder)
    skipped: list[tuple[Path, str]] = []
    if not folder.is_dir():
        return None, skipped
    for path in _newest_first(folder):
        try:
            read_checkpoint(path, mmap=True)
        except CheckpointError as err:
            skipped.append((path, str(err)))
            continue
        return path, skipped
    return None, skipped


def remove_stale_temporaries(folder: str | os.PathLike) -> list[str]:
    """Delete temporary files that a save killed midway left in ``folder``; returns their names."""
    folder = Path(folder)
    removed = [p.name for p in folder.glob(".*") if _TEMP.match(p.name)] if folder.is_dir() else []
    for name in removed:
        (folder / name).unlink(missing_ok=True)
    return removed


def _finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point())


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (interval checkpoints and ``last.ckpt``), which also

    - writes ``last.ckpt`` at the end of the batch during which the run received SIGTERM, the
      point interval checkpoints are written at, so the run resumes exactly from it (Lightning
      then raises ``SIGTERMException``); a SIGTERM that lands during validation is saved when
      the exception passes. Other exceptions (a non-finite loss) save nothing;
    - skips a save, with an error in the log, when the model's weights are non-finite, so the
      last checkpoint on disk is always one to resume from.
    """

    def _sigterm(self, trainer) -> bool:
        received = bool(trainer.received_sigterm)
        if trainer.world_size > 1:  # every rank must take part in the save
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        return received

    def _save_last_now(self, trainer) -> None:
        path = Path(self.dirpath) / LAST_NAME
        self._save_checkpoint(trainer, str(path))
        if trainer.is_global_zero:
            log.warning(
                "SIGTERM: saved %s at step %d; run the same command to resume", path, trainer.global_step
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._sigterm(trainer) and trainer.global_step != self._last_global_step_saved:
            self._save_last_now(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.global_step != self._last_global_step_saved:
            self._save_last_now(trainer)

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        if not _finite(trainer.lightning_module):
            log.error(
                "not saving %s: weights are non-finite at step %d; the previous checkpoint is kept",
                filepath,
                trainer.global_step,
            )
            return
        super()._save_checkpoint(trainer, filepath)
