"""``vtlm data ...``: write built-in datasets, inspect folders of videos, train caption text models."""

from __future__ import annotations

import json
from pathlib import Path

from vtlm.data.inspect import format_summary, inspect_folder
from vtlm.data.manifest import read_manifest
from vtlm.data.synthetic import SyntheticConfig, render_clip, write_synthetic
from vtlm.data.text import TextTokenizer, train_text_tokenizer


def make_synthetic(
    out: str,
    data: SyntheticConfig = SyntheticConfig(),
    num_train: int = 1000,
    num_val: int = 64,
    num_test: int = 64,
    fps: float = 8.0,
    workers: int = 1,
    preview: bool = True,
) -> str:
    """Write a built-in dataset to disk: mp4 files per split and manifest.jsonl.

    Args:
        out: output folder (created); re-running skips clips already written.
        data: which built-in dataset and its options (the split field is ignored here).
        num_train: clips in the train split.
        num_val: clips in the validation split.
        num_test: clips in the test split.
        fps: frame rate written into the files.
        workers: processes encoding in parallel.
        preview: also write OUT_preview.png beside the folder (inspect the result).
    """
    counts = {"train": num_train, "val": num_val, "test": num_test}
    manifest = write_synthetic(
        data, out, {k: v for k, v in counts.items() if v > 0}, fps=fps, workers=workers
    )
    print(f"wrote {sum(counts.values())} {data.kind} clips and {manifest}")
    if preview:
        out_path = Path(out).resolve()
        summary = inspect_folder(out_path, preview=out_path.with_name(out_path.name + "_preview.png"))
        print(format_summary(summary))
    return str(manifest)


def inspect(
    path: str, backend: str = "auto", preview: str | None = None, json_out: str | None = None
) -> dict:
    """Count, measure and preview the videos and images in a folder (nothing is written into it).

    Args:
        path: folder to inspect (searched recursively).
        backend: video reader: auto, decord or pyav.
        preview: PNG to write with a row of frames per clip (default: runs/inspect/NAME.png).
        json_out: also write the summary as JSON here.
    """
    preview = preview or str(Path("runs/inspect") / f"{Path(path).resolve().name}.png")
    summary = inspect_folder(path, backend=backend, preview=preview)
    print(format_summary(summary))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(summary, indent=2))
    return summary


def train_text(
    out: str,
    manifest: str | None = None,
    data: SyntheticConfig = SyntheticConfig(),
    num_captions: int = 4000,
    vocab_size: int = 1024,
    model_type: str = "bpe",
) -> str:
    """Train a SentencePiece model on captions, with vtlm's special tokens reserved.

    Args:
        out: the model file to write (e.g. runs/text/shapes.model).
        manifest: a JSONL or CSV manifest whose captions to use; every caption_* field counts.
        data: without a manifest, captions of this built-in dataset's train split.
        num_captions: clips whose captions (terse and descriptive) are used, for built-in data.
        vocab_size: upper bound on pieces (a small corpus yields fewer).
        model_type: SentencePiece algorithm: bpe or unigram.
    """
    if manifest:
        rows = read_manifest(manifest).values()
        captions = [
            v for row in rows for k, v in row.items() if k.startswith("caption") and isinstance(v, str)
        ]
    else:
        clips = (render_clip(data, i, "train") for i in range(num_captions))
        captions = [text for clip in clips for text in (clip.caption_terse, clip.caption_descriptive)]
    path = train_text_tokenizer(captions, out, vocab_size=vocab_size, model_type=model_type)
    tokenizer = TextTokenizer(path)
    example = captions[-1]
    print(f"wrote {path}: {tokenizer.vocab_size} pieces from {len(captions)} captions")
    print(f"  {example!r} -> {len(tokenizer.encode(example))} pieces")
    return str(path)


COMMANDS = {"make-synthetic": make_synthetic, "inspect": inspect, "train-text": train_text}
