"""``vtlm data ...``: write built-in datasets, prepare downloaded standard sets, inspect folders of
videos, train caption text models."""

from __future__ import annotations

import json
from pathlib import Path

from vtlm.data.inspect import format_summary, inspect_folder
from vtlm.data.manifest import read_manifest
from vtlm.data.prepare import PrepareConfig, SetName
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


def prepare(name: SetName, source: str, out: str, options: PrepareConfig = PrepareConfig()) -> str:
    """Put a standard data set you downloaded into vtlm's folder layout, with its official splits.

    Writes OUT/<split>/... (videos linked or copied from SOURCE; BAIR and Moving MNIST written
    as mp4), OUT/manifest.jsonl (path, caption, split) and OUT/prepared.json (source, counts per
    split, every failure with its reason). Missing or broken source files are counted, not fatal.

    Args:
        name: ucf101, ssv2, kinetics600, bair or mmnist.
        source: the extracted download: a folder (for mmnist, the .npy file or its folder).
        out: the prepared folder to write (a re-run keeps what is already there).
        options: file linking, video checks, held-out val share, limits, workers, set options.
    """
    from vtlm.data.prepare import prepare_set

    record = prepare_set(name, source, out, options)
    counts = ", ".join(f"{split} {n}" for split, n in record["counts"].items())
    print(f"prepared {name} in {record['out']}: {counts}")
    if record["failed"]:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(record["failures_by_kind"].items()))
        first = record["failures"][0]
        print(f"  {record['failed']} failures ({kinds}), e.g. {first['item']}: {first['reason']}")
    print(f"  details in {Path(record['out']) / 'prepared.json'}")
    return str(Path(record["out"]) / "manifest.jsonl")


COMMANDS = {
    "make-synthetic": make_synthetic,
    "prepare": prepare,
    "inspect": inspect,
    "train-text": train_text,
}
