"""``vtlm bench``: every workload, vtlm beside its peers, one table of ratios and a JSON file.

Ratios are what to read: absolute times on a shared machine are noise, ratios within one run
are not. A peer that is not installed is noted in the output, and the bench still completes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vtlm.common.machine import machine

from .data_bench import run_data_bench
from .generation_bench import run_generation_bench
from .gpt_bench import run_gpt_bench
from .gpu_bench import run_gpu_bench
from .loader_bench import run_loader_bench
from .op_profile import format_shares
from .targets import evaluate_targets, format_targets
from .throughput_bench import run_throughput_bench
from .tokenizer_bench import run_tokenizer_bench

WORKLOADS = ("data", "tokenizer", "gpt", "loader", "generation", "throughput", "gpu")


def _compare(row: dict, rate: float) -> str:
    if row["unit"] == "dB":  # quality: a difference, not a ratio
        return f"{rate:.2f} ({row['vtlm'] - rate:+.2f} dB)"
    return f"{rate:.1f} ({row['vtlm'] / rate:.2f}x)"


def _optional(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _detail_lines(row: dict) -> list[str]:
    """The figures beside a row's main number, one line each."""
    pad, lines = f"{'':<52}", []
    if "params" in row and "train" in row["workload"]:
        params = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in row["params"].items())
        lines.append(f"{pad} {'params':<9} {params}")
    if "mfu" in row:
        dtype = row.get("matmul_dtype", "fp32")
        lines.append(
            f"{pad} {'MFU':<9} {row['mfu']:.1%} of a {row['matmul_peak_gflops']:.1f} GFLOP/s {dtype} matmul peak"
        )
    for name, profile in row.get("op_profiles", {}).items():
        lines.append(f"{pad} {'ops':<9} {name}: {format_shares(profile)}")
    if "fraction_of_bound" in row:
        lines.append(
            f"{pad} {'bound':<9} {row['fraction_of_bound']:.1%} of the memory-bandwidth bound ({row['bandwidth_bound']:.0f} tokens/s)"
        )
    if "matmul_floor" in row:
        lines.append(
            f"{pad} {'floor':<9} {row['fraction_of_floor']:.1%} of the matmul floor: the batch-1 matrix-vector "
            f"products alone run at {row['matmul_floor']:.0f} tokens/s"
        )
    if "decode_floor" in row:
        lines.append(
            f"{pad} {'decode':<9} {row['fraction_of_decode_floor']:.1%} of the decode floor: those products with "
            f"attention over {row['decode_floor_context']} cached positions run at {row['decode_floor']:.0f} tokens/s"
        )
    if "vs_eager" in row:
        lines.append(f"{pad} {'ratio':<9} {row['vs_eager']:.2f}x the eager batch-1 rate of this run")
    if "loader_to_gpt" in row:
        ratio = row["loader_to_gpt"]
        text = "GPT training not measured" if ratio is None else f"{ratio:.1f}x the GPT's training tokens/s"
        lines.append(f"{pad} {'ratio':<9} {text}")
    if "cost" in row:
        c = row["cost"]
        params = None if c["params"] is None else c["params"] / 1e6
        lines.append(
            f"{pad} {'cost':<9} {c['seconds_per_video_second']:.2f} s per video second, "
            f"first frame {c['time_to_first_frame']:.2f} s, NFE {_optional(c['function_evaluations'], 'd')}, "
            f"peak +{_optional(c['peak_memory_mb'], '.0f')} MB, {_optional(params, '.2f')}M params"
        )
    return lines


def format_table(rows: list[dict]) -> str:
    """Workload | unit | vtlm | each peer with vtlm / peer (above 1: vtlm is faster)."""
    lines = [f"{'workload':<52} {'unit':<9} {'vtlm':>10}  peers: value (vtlm/peer)"]
    for row in rows:
        peers = ", ".join(f"{name} {_compare(row, rate)}" for name, rate in row["peers"].items())
        lines.append(f"{row['workload']:<52} {row['unit']:<9} {row['vtlm']:>10.2f}  {peers or '-'}")
        lines += _detail_lines(row)
    return "\n".join(lines)


def bench(
    out: str = "runs/bench",
    quick: bool = False,
    workloads: str | list[str] | None = None,
    tokenizer_seconds: float = 120.0,
) -> dict:
    """Run the benchmark workloads and write OUT/bench.json (rows, targets, notes, machine).

    Args:
        out: output folder for bench.json and the files the workloads read.
        quick: fewer repeats and smaller inputs (for tests).
        workloads: which to run, comma-separated or a list, of data, tokenizer, gpt, loader,
            generation, throughput, gpu; all by default. The loader's ratio to the GPT needs gpt in the same run; gpu runs only
            where CUDA is available and is noted as skipped elsewhere.
        tokenizer_seconds: training budget of each tokenizer before its PSNR is measured.
    """
    if isinstance(workloads, str):
        workloads = workloads.strip("[] ").split(",")
    chosen = [name.strip() for name in workloads] if workloads else list(WORKLOADS)
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        raise ValueError(f"workloads: unknown {unknown}; expected some of {list(WORKLOADS)}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, notes = [], []
    started = time.perf_counter()

    def run(name: str, what: str, fn) -> None:
        """Announce a workload as it starts (a full run is silent for minutes otherwise), run it."""
        if name not in chosen:
            return
        print(f"[bench {time.perf_counter() - started:6.1f} s] {name}: {what}", flush=True)
        found = fn()
        new_rows, new_notes = found if isinstance(found, tuple) else (found, [])
        rows.extend(new_rows)
        notes.extend(new_notes)

    run("data", "clip reading, decord / PyAV", lambda: run_data_bench(out_dir, quick=quick))
    run("tokenizer", "tokenizer training and encoding beside magvit2-pytorch",
        lambda: run_tokenizer_bench(quick=quick, train_seconds=tokenizer_seconds))  # fmt: skip
    run(
        "gpt",
        "GPT training and sampling beside x-transformers and HF GPT-2",
        lambda: run_gpt_bench(quick=quick),
    )
    gpt_train = lambda: next((row["vtlm"] for row in rows if row.get("id") == "gpt_train"), None)  # noqa: E731
    run("loader", "token loader against the GPT's consumption",
        lambda: run_loader_bench(out_dir, gpt_train(), quick=quick))  # fmt: skip
    run(
        "generation", "generation cost, GPT and diffusion", lambda: run_generation_bench(out_dir, quick=quick)
    )
    run("throughput", "video seconds per second by family and batch size",
        lambda: run_throughput_bench(out_dir, quick=quick))  # fmt: skip
    run("gpu", "the GPU section (CUDA only)", lambda: run_gpu_bench(quick=quick))
    targets = evaluate_targets(rows)
    report = {"machine": machine(), "quick": quick, "rows": rows, "targets": targets, "notes": notes}
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
    print(format_table(rows))
    print(format_targets(targets))
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out_dir / 'bench.json'}")
    return report
