"""``vtlm demo``: the researcher workflow end to end on built-in data, on CPU.

The stages that exist run in order and print where their output is:

1. write the built-in ``shapes`` dataset (with collisions and a camera pan) as mp4 files;
2. inspect it and write a preview of every split;
3. read it back through the real-file path (decord, PyAV fallback) in batches that mix
   images (1-frame clips) and videos;
4. train a SentencePiece caption model;
5. write a sample sheet (GIF and PNG) of held-out clips with their captions.

Tokenizer, GPT, diffusion and evaluation stages join here as they land.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from torch.utils.data import ConcatDataset, DataLoader

from vtlm.data.batching import ImageVideoBatchSampler, collate_clips
from vtlm.data.clips import ClipSpec
from vtlm.data.folder import FolderConfig, VideoFolderDataset
from vtlm.data.inspect import format_summary, inspect_folder
from vtlm.data.synthetic import ShapesConfig, SyntheticConfig, write_synthetic
from vtlm.data.text import TextTokenizer, train_text_tokenizer
from vtlm.data.writers import frame_strip, grid_video, to_uint8, upscale, write_gif, write_png


def _stage(name: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:6.1f} s] {name}", flush=True)


def demo(out: str = "runs/demo", quick: bool = False, seed: int = 0, workers: int = 2) -> dict:
    """Run the workflow on built-in data and print where every output is.

    Args:
        out: output folder.
        quick: a smaller run (for tests and a first look).
        seed: dataset seed.
        workers: processes writing video files.
    """
    start = time.perf_counter()
    out_dir = Path(out)
    shapes = ShapesConfig(resolution=32, num_frames=17, collisions=True, camera_pan=True)
    data = SyntheticConfig(kind="shapes", shapes=shapes, seed=seed)
    counts = {"train": 48, "val": 8, "test": 8} if quick else {"train": 512, "val": 64, "test": 64}
    data_dir = out_dir / "data" / "shapes"

    _stage(f"1. writing {sum(counts.values())} shapes clips to {data_dir}", start)
    manifest = write_synthetic(data, data_dir, counts, workers=workers, progress=not quick)

    _stage("2. inspecting the written files", start)
    summary = inspect_folder(data_dir, preview=out_dir / "preview.png", preview_clips=6)
    print(format_summary(summary))
    if summary["unreadable"]:
        raise RuntimeError(f"{len(summary['unreadable'])} files written by the demo are unreadable")

    _stage("3. reading batches back: 9-frame clips (stride 2) mixed with 1-frame images", start)
    videos = VideoFolderDataset(
        FolderConfig(
            root=str(data_dir), split="train", clip=ClipSpec(num_frames=9, resolution=32, frame_stride=2)
        )
    )
    images = VideoFolderDataset(
        FolderConfig(root=str(data_dir), split="train", clip=ClipSpec(num_frames=1, resolution=32))
    )
    mixed = ConcatDataset([videos, images])
    sampler = ImageVideoBatchSampler(
        videos.frame_counts() + images.frame_counts(),
        video_batch_size=8,
        image_batch_size=32,
        image_share=0.25,
        seed=seed,
    )
    shapes_seen: dict[str, int] = {}
    for batch in DataLoader(mixed, batch_sampler=sampler, collate_fn=collate_clips):
        key = "x".join(map(str, batch["video"].shape))
        shapes_seen[key] = shapes_seen.get(key, 0) + 1
    print(f"   batches (B x C x T x H x W: count): {shapes_seen}")

    _stage("4. training the caption text model", start)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    captions = [r[k] for r in rows if r["split"] == "train" for k in ("caption_terse", "caption_descriptive")]
    text_model = train_text_tokenizer(captions, out_dir / "text" / "shapes.model", vocab_size=512)
    text = TextTokenizer(text_model)
    example = rows[0]["caption_descriptive"]
    print(f"   {text_model}: {text.vocab_size} pieces; {example!r} -> {len(text.encode(example))} pieces")

    _stage("5. writing a sheet of held-out clips", start)
    held_out = VideoFolderDataset(
        FolderConfig(
            root=str(data_dir), split="test", clip=ClipSpec(num_frames=17, resolution=32, window="start")
        )
    )
    picks = [held_out[i] for i in range(min(4, len(held_out)))]
    clips = np.stack([to_uint8(item["video"]) for item in picks])
    sheet = upscale(grid_video([clips]), 3)
    gif = write_gif(out_dir / "test_clips.gif", sheet, fps=6)
    png = write_png(out_dir / "test_clips.png", frame_strip(sheet, max_frames=9))
    for k, item in enumerate(picks):
        print(f"   row {k}: {item['caption']}")
    print(f"   {gif}\n   {png}")

    _stage(f"done: everything is under {out_dir}", start)
    return {
        "data": str(data_dir),
        "preview": summary.get("preview"),
        "gif": str(gif),
        "png": str(png),
        "batches": shapes_seen,
    }
