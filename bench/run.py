"""``vtlm bench``: every workload, vtlm beside its peers, one table of ratios and a JSON file.

Ratios are what to read: absolute times on a shared machine are noise, ratios within one run
are not. A peer that is not installed is noted in the output, and the bench still completes.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data_bench import run_data_bench
from .gpt_bench import run_gpt_bench
from .timing import machine
from .tokenizer_bench import run_tokenizer_bench


def _compare(row: dict, rate: float) -> str:
    if row["unit"] == "dB":  # quality: a difference, not a ratio
        return f"{rate:.2f} ({row['vtlm'] - rate:+.2f} dB)"
    return f"{rate:.1f} ({row['vtlm'] / rate:.2f}x)"


def format_table(rows: list[dict]) -> str:
    """Workload | unit | vtlm | each peer with vtlm / peer (above 1: vtlm is faster)."""
    lines = [f"{'workload':<52} {'unit':<9} {'vtlm':>10}  peers: value (vtlm/peer)"]
    for row in rows:
        peers = ", ".join(f"{name} {_compare(row, rate)}" for name, rate in row["peers"].items())
        lines.append(f"{row['workload']:<52} {row['unit']:<9} {row['vtlm']:>10.2f}  {peers or '-'}")
        if "params" in row and "train" in row["workload"]:
            lines.append(
                f"{'':<52} {'params':<9} "
                + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in row["params"].items())
            )
        if "mfu" in row:
            lines.append(
                f"{'':<52} {'MFU':<9} {row['mfu']:.1%} of a {row['matmul_peak_gflops']:.1f} GFLOP/s fp32 matmul peak"
            )
        if "fraction_of_bound" in row:
            lines.append(
                f"{'':<52} {'bound':<9} {row['fraction_of_bound']:.1%} of the memory-bandwidth bound ({row['bandwidth_bound']:.0f} tokens/s)"
            )
    return "\n".join(lines)


def bench(
    out: str = "runs/bench",
    quick: bool = False,
    workloads: list[str] | None = None,
    tokenizer_seconds: float = 120.0,
) -> dict:
    """Run the benchmark workloads and write OUT/bench.json.

    Args:
        out: output folder for bench.json and the files the workloads read.
        quick: fewer repeats and smaller inputs (for tests).
        workloads: which to run (data, tokenizer, gpt); all by default.
        tokenizer_seconds: training budget of each tokenizer before its PSNR is measured.
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = workloads or ["data", "tokenizer", "gpt"]
    rows, notes = [], []
    if "data" in chosen:
        rows += run_data_bench(out_dir, quick=quick)
    if "tokenizer" in chosen:
        tokenizer_rows, tokenizer_notes = run_tokenizer_bench(quick=quick, train_seconds=tokenizer_seconds)
        rows += tokenizer_rows
        notes += tokenizer_notes
    if "gpt" in chosen:
        gpt_rows, gpt_notes = run_gpt_bench(quick=quick)
        rows += gpt_rows
        notes += gpt_notes
    report = {"machine": machine(), "quick": quick, "rows": rows, "notes": notes}
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
    print(format_table(rows))
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out_dir / 'bench.json'}")
    return report
