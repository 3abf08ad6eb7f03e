"""Moving MNIST (Srivastava et al. 2015): the published ``mnist_test_seq.npy`` as clips.

SOURCE is the file (uint8, (20, N, 64, 64); N = 10,000 in the published one) or a folder
holding it. It is read with :class:`vtlm.data.moving_mnist.MovingMNISTDataset` and split by
index exactly as that reader and the ``mmnist-10-10`` protocol split it (the first 80% train,
the next 10% val, the last 10% test), so a model trained on the prepared folder never sees
the protocol's test sequences. Each sequence becomes one 20-frame clip (gray repeated to RGB,
H.264 at the writers' lossless setting), captioned "moving digits".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..moving_mnist import MovingMNISTConfig, MovingMNISTDataset
from ..writers import write_mp4
from .common import Outcome, PrepareConfig, find_file, run_jobs

CAPTION = "moving digits"
FILE_NAME = "mnist_test_seq.npy"


def _write_sequences(job: tuple[Path, list[int], list[str], float]) -> None:
    """Write sequences ``indices`` of the array at ``path`` to the files ``targets``."""
    path, indices, targets, fps = job
    array = np.load(path, mmap_mode="r")
    for index, target in zip(indices, targets):
        if Path(target).is_file():
            continue
        frames = np.repeat(np.asarray(array[:, index])[..., None], 3, axis=-1)  # (T, H, W, 3)
        write_mp4(target, frames, fps=fps, crf=0, pix_fmt="yuv444p")


def prepare(source: Path, out: Path, cfg: PrepareConfig) -> Outcome:
    path = source if source.is_file() else find_file(source, FILE_NAME, "the Moving MNIST array")
    outcome = Outcome(
        splits={
            "train": f"sequences [0, 80%) of {path.name}",
            "val": f"sequences [80%, 90%) of {path.name}",
            "test": f"sequences [90%, 100%) of {path.name} (the mmnist-10-10 protocol's test set)",
        }
    )
    jobs = []
    for split in ("train", "val", "test"):
        dataset = MovingMNISTDataset(MovingMNISTConfig(path=str(path), split=split))
        indices = list(range(dataset.start, dataset.stop))[: cfg.limit]
        rels = [f"{split}/seq_{index:05d}.mp4" for index in indices]
        frames = dataset.array.shape[0]
        for index, rel in zip(indices, rels):
            outcome.rows.append(
                {"path": rel, "caption": CAPTION, "split": split, "index": index, "frames": frames}
            )
        for start in range(0, len(indices), 64):
            chunk = slice(start, start + 64)
            jobs.append((path, indices[chunk], [str(out / rel) for rel in rels[chunk]], cfg.fps))
    for _ in run_jobs(_write_sequences, jobs, cfg.workers, "Moving MNIST"):
        pass
    return outcome
