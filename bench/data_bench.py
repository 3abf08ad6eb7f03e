"""Data workloads: clip reading from mp4 files, and built-in clip generation.

Clip reading: random 17-frame windows from 64x64 mp4 files, read by vtlm's reader (decord,
with PyAV for the files decord cannot read) beside a plain PyAV decode of the same windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, render_clip, write_synthetic
from vtlm.data.video_io import PyAVBackend, get_backend

from .timing import measure


def run_data_bench(work_dir: Path, quick: bool = False) -> list[dict]:
    """Rows of ``{"workload", "unit", "vtlm", "peers": {name: rate}, ...}``."""
    files, clip_frames, windows = (4, 17, 8) if quick else (16, 17, 32)
    source = SyntheticConfig(
        kind="shapes", shapes=ShapesConfig(resolution=64, num_frames=64, camera_pan=True)
    )
    data_dir = work_dir / "bench_videos"
    write_synthetic(source, data_dir, {"train": files}, progress=False)
    paths = sorted((data_dir / "train").glob("*.mp4"))
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 64 - clip_frames + 1, size=windows)
    jobs = [(paths[k % len(paths)], list(range(s, s + clip_frames))) for k, s in enumerate(starts)]
    vtlm_reader, pyav = get_backend("auto"), PyAVBackend()

    def read_all(reader):
        return [reader.read(path, idx) for path, idx in jobs]

    assert all(np.array_equal(a, b) for a, b in zip(read_all(vtlm_reader), read_all(pyav))), (
        "readers disagree"
    )
    repeats = 3 if quick else 5
    ours = measure("clip reading", lambda: read_all(vtlm_reader), len(jobs), "clips/s", repeats=repeats)
    theirs = measure("clip reading (pyav)", lambda: read_all(pyav), len(jobs), "clips/s", repeats=repeats)

    gen_cfg = SyntheticConfig(
        kind="shapes", shapes=ShapesConfig(resolution=32, num_frames=17, collisions=True, camera_pan=True)
    )
    count = 32 if quick else 256
    gen = measure(
        "shapes generation",
        lambda: [render_clip(gen_cfg, i) for i in range(count)],
        count,
        "clips/s",
        repeats=repeats,
    )
    return [
        {
            "id": "data_read",
            "workload": f"read {clip_frames}-frame windows, 64x64 mp4",
            "unit": "clips/s",
            "vtlm": ours.median_rate,
            "vtlm_spread": ours.spread,
            "peers": {"pyav": theirs.median_rate},
            "peer_spread": {"pyav": theirs.spread},
            "shape": {"files": len(paths), "windows": len(jobs), "frames": clip_frames, "resolution": 64},
        },
        {
            "id": "data_generate",
            "workload": "generate shapes clips 17x32x32 (collisions, pan)",
            "unit": "clips/s",
            "vtlm": gen.median_rate,
            "vtlm_spread": gen.spread,
            "peers": {},
            "shape": {"clips": count, "frames": 17, "resolution": 32},
        },
    ]
