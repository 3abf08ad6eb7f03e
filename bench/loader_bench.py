"""Token loader: tokens per second out of token shards through the GPT's training loader,
beside the tokens per second the GPT trains on in the same run.

The loader must never be the bottleneck: the target is a loader at least 10x faster than the
GPT's training consumption. Shards hold random codes of the GPT workload's shape (clips of
5 latent frames of 16x16 codes, codebook 8192), written by ``ShardWriter``; they are read by
``TokenDataModule.train_dataloader()`` (window sampling, caption ids, the training collate),
in the main process (``num_workers=0``, the default and the slowest setting). Counted: the
video codes served; caption ids come along but are not counted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from vtlm.data.shards import ShardWriter, write_index
from vtlm.data.token_datamodule import TokenDataConfig, TokenDataModule

from .assets import bench_captions, text_model
from .timing import measure

FRAMES, GRID, CODEBOOK, BATCH = 5, 16, 8192, 16


def write_random_shards(out_dir: Path, clips: int, captions: list[str], seed: int = 0) -> Path:
    """``clips`` clips of uniform random codes (FRAMES, GRID, GRID) in [0, CODEBOOK) as shards."""
    shutil.rmtree(out_dir, ignore_errors=True)  # a fresh folder: the writer refuses repeated keys
    rng = np.random.default_rng(seed)
    with ShardWriter(out_dir, "rank00", CODEBOOK, clips_per_shard=256) as writer:
        for i in range(clips):
            codes = rng.integers(0, CODEBOOK, (FRAMES, GRID, GRID), dtype=np.int64)
            writer.add(f"clip{i:06d}", codes, caption=captions[i % len(captions)])
    write_index(out_dir, {"source": "vtlm bench: random codes"})
    return out_dir


def run_loader_bench(
    work_dir: Path, gpt_tokens_per_second: float | None, quick: bool = False
) -> tuple[list[dict], list[str]]:
    """One row: loader tokens/s, and its ratio to ``gpt_tokens_per_second`` (None: not measured)."""
    clips, repeats = (64, 2) if quick else (1024, 5)
    captions = bench_captions(32)
    shards = write_random_shards(work_dir / "bench_tokens", clips, captions)
    cfg = TokenDataConfig(
        train=str(shards),
        val=None,
        text_model=str(text_model(work_dir / "text.model")),
        window=FRAMES,
        batch_size=BATCH,
        num_workers=0,
    )
    loader = TokenDataModule(cfg).train_dataloader()
    served = sum(batch["codes"].numel() for batch in loader)  # one epoch, also the warm-up
    if served == 0:
        raise RuntimeError(f"token loader: an epoch of {clips} clips served no codes")

    def epoch() -> None:
        for _ in loader:
            pass

    rate = measure("token loader", epoch, served, "tokens/s", warmup=0, repeats=repeats)
    ratio = rate.median_rate / gpt_tokens_per_second if gpt_tokens_per_second else None
    notes = []
    if ratio is None:
        notes.append("token loader: GPT training not measured in this run (add gpt to --workloads)")
    row = {
        "id": "token_loader",
        "workload": f"token loader, {FRAMES}x{GRID}x{GRID} windows, batch {BATCH}",
        "unit": "tokens/s",
        "vtlm": rate.median_rate,
        "vtlm_spread": rate.spread,
        "peers": {},
        "gpt_train_tokens_per_s": gpt_tokens_per_second,
        "loader_to_gpt": ratio,
        "shape": {
            "clips": clips,
            "frames": FRAMES,
            "grid": GRID,
            "codebook": CODEBOOK,
            "batch": BATCH,
            "tokens_per_epoch": served,
            "num_workers": 0,
        },
    }
    return [row], notes
