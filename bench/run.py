"""``vtlm bench``: every workload, vtlm beside its peers, one table of ratios and a JSON file.

Ratios are what to read: absolute times on a shared machine are noise, ratios within one run
are not. A peer that is not installed is noted in the output, and the bench still completes.
"""

from __future__ import annotations

import json
from pathlib import Path

from .data_bench import run_data_bench
from .timing import machine


def format_table(rows: list[dict]) -> str:
    """Workload | unit | vtlm | each peer | ratio (vtlm / peer; above 1 means vtlm is faster)."""
    lines = [f"{'workload':<52} {'unit':<9} {'vtlm':>10}  peers (rate, vtlm/peer)"]
    for row in rows:
        peers = ", ".join(
            f"{name} {rate:.1f} ({row['vtlm'] / rate:.2f}x)" for name, rate in row["peers"].items()
        )
        lines.append(f"{row['workload']:<52} {row['unit']:<9} {row['vtlm']:>10.1f}  {peers or '-'}")
    return "\n".join(lines)


def bench(out: str = "runs/bench", quick: bool = False) -> dict:
    """Run the benchmark workloads and write OUT/bench.json.

    Args:
        out: output folder for bench.json and the files the workloads read.
        quick: fewer repeats and smaller inputs (for tests).
    """
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = run_data_bench(out_dir, quick=quick)
    report = {"machine": machine(), "quick": quick, "rows": rows, "missing_peers": []}
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
    print(format_table(rows))
    print(f"wrote {out_dir / 'bench.json'}")
    return report
