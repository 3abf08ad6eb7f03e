"""Exact resumption: a run resumed from a checkpoint draws the same batches and the same random
numbers as the run that was never stopped.

Four pieces, wired in by ``vtlm.cli.runs.fit_and_export``:

- :class:`SeededBatches` wraps a batch sampler with ``set_epoch`` (the order is a function of
  the seed and the epoch): it starts an epoch ``skip`` batches in (the ones a checkpoint already
  trained on) and pairs every index with a seed of its own, drawn from (seed, epoch, batch).
- :class:`SeededItems` wraps the dataset: item ``(index, seed)`` is read with torch's, numpy's
  and Python's global generators seeded from ``seed`` and restored afterwards. A random window,
  crop or frame choice is therefore a function of the item's place in the epoch: the same with
  0 or 8 DataLoader workers, before and after a resume, and it never shifts the main process's
  random numbers.
- :class:`ResumableData` wraps a Lightning data module: its train loader is rebuilt on those
  two, starting at the epoch and batch that the trainer's restored ``global_step`` implies.
- :class:`RandomState` is a callback that stores the global generators' states in every
  checkpoint and puts them back when training resumes, and runs validation on a fork of them,
  so caption dropout, corruption and noise draws continue exactly.

All ranks of a data-parallel run are seeded alike (``seed_everything``) and draw alike, so the
states of rank 0, the ones saved, are every rank's (for CUDA: each rank's current device's).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader, Dataset, Sampler


def capture_rng() -> dict:
    """The global generators' states as tensors and plain values (loadable with weights_only)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state()] if torch.cuda.is_initialized() else [],  # this rank's device
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": list(state), "gauss_next": gauss_next},
    }


def restore_rng(state: dict) -> None:
    """Put back states from :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"][0])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


@contextmanager
def seeded(seed: int):
    """Run the block with torch's (CPU), numpy's and Python's global generators seeded from
    ``seed``, and restore their previous states afterwards."""
    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    torch.default_generator.manual_seed(seed)  # CPU only: no CUDA work per item
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


class SeededBatches(Sampler[list[tuple[int, int]]]):
    """Batches of ``(index, seed)`` pairs from a batch sampler whose order is fixed by its epoch.

    Args:
        batches: a batch sampler with ``set_epoch`` (e.g. ``ImageVideoBatchSampler``).
        seed: the run's seed, mixed into every item seed.
        epoch: the epoch of the first pass.
        skip: batches of the first pass to leave out (already trained on).

    Each pass (``iter``) is the next epoch: Lightning starts one pass per epoch and calls
    ``set_epoch`` only on a loader's sampler, never on its batch sampler. ``len`` is a whole
    epoch's: Lightning counts the skipped batches as done.
    """

    def __init__(self, batches: Sampler, seed: int, epoch: int = 0, skip: int = 0):
        if not callable(getattr(batches, "set_epoch", None)):
            raise ValueError(
                f"batches: expected a batch sampler with set_epoch, got {type(batches).__name__}"
            )
        if skip < 0:
            raise ValueError(f"skip: expected >= 0, got {skip}")
        self.batches, self.seed, self.epoch, self.skip = batches, seed, epoch, skip

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (from its start, unless it is already the next)."""
        if epoch != self.epoch:
            self.epoch, self.skip = epoch, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip = epoch + 1, 0
        self.batches.set_epoch(epoch)
        for number, batch in enumerate(self.batches):
            if number < skip:
                continue
            seeds = np.random.SeedSequence([self.seed, epoch, number]).generate_state(len(batch), np.uint64)
            yield [(int(i), int(s)) for i, s in zip(batch, seeds)]


class SeededItems(Dataset):
    """``dataset[index]`` for a key ``(index, seed)``, read under :func:`seeded` (seed)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with seeded(seed):
            return self.dataset[index]


def resume_position(global_step: int, batches_per_epoch: int, accumulate: int) -> tuple[int, int]:
    """(epoch, batches of it already trained) after ``global_step`` optimizer steps, when every
    epoch has ``batches_per_epoch`` batches and a step takes ``accumulate`` of them (the last step
    of an epoch takes what is left)."""
    if batches_per_epoch < 1 or accumulate < 1:
        raise ValueError(
            f"batches_per_epoch, accumulate: expected >= 1, got {batches_per_epoch}, {accumulate}"
        )
    epoch, step = divmod(global_step, math.ceil(batches_per_epoch / accumulate))
    return epoch, min(batches_per_epoch, step * accumulate)


class _ResumingLoader(DataLoader):
    """A DataLoader Lightning treats as resumable (it checks for state_dict / load_state_dict):
    its position comes from the trainer's restored global step, so its own state is empty."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


class ResumableData(L.LightningDataModule):
    """``data`` with a train loader that resumes mid-epoch exactly (see the module docstring).

    ``data.train_dataloader()`` must return a DataLoader with a ``batch_sampler`` that has
    ``set_epoch``; the loader is rebuilt with the same dataset, collate function and worker
    settings. Validation and setup are ``data``'s own.
    """

    def __init__(self, data: L.LightningDataModule, seed: int):
        super().__init__()
        self.data, self.seed = data, seed

    def prepare_data(self) -> None:
        self.data.prepare_data()

    def setup(self, stage: str) -> None:
        self.data.setup(stage)

    def teardown(self, stage: str) -> None:
        self.data.teardown(stage)

    def train_dataloader(self) -> DataLoader:
        loader = self.data.train_dataloader()
        trainer = self.trainer
        step, accumulate = (trainer.global_step, trainer.accumulate_grad_batches) if trainer else (0, 1)
        epoch, skip = resume_position(step, len(loader.batch_sampler), accumulate)
        return _ResumingLoader(
            SeededItems(loader.dataset),
            batch_sampler=SeededBatches(loader.batch_sampler, self.seed, epoch, skip),
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
            worker_init_fn=loader.worker_init_fn,
            multiprocessing_context=loader.multiprocessing_context,
            persistent_workers=loader.persistent_workers,
            prefetch_factor=loader.prefetch_factor,
            # Worker seeds come from this generator, not the global one, which stays untouched.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self):
        return self.data.val_dataloader()


class RandomState(Callback):
    """Keeps the global generators' states in every checkpoint and restores them when training
    resumes (at ``on_train_start``, after everything that set up the run). Validation runs on a
    fork: the states at the end of each training batch are put back when a validation ends, so
    validating (or not, after a resume) never shifts training's draws."""

    def __init__(self):
        self._resumed: dict | None = None
        self._fork: tuple | None = None

    def state_dict(self) -> dict:
        return capture_rng()

    def load_state_dict(self, state_dict: dict) -> None:
        self._resumed = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._resumed is not None:
            restore_rng(self._resumed)
            self._resumed = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Validation, when due, comes next; its loader draws a seed before on_validation_start.
        self._fork = (torch.get_rng_state(), np.random.get_state(), random.getstate())

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._fork is not None:
            torch.set_rng_state(self._fork[0])
            np.random.set_state(self._fork[1])
            random.setstate(self._fork[2])
        self._fork = None

    def on_train_end(self, trainer, pl_module) -> None:
        self._fork = None
