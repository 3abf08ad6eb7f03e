"""The report's error decomposition tables: each generator against the tokenizer's ceiling,
and the feature distances' real-vs-real floor.

``decomposition_tables(results, protocol)`` returns ``(title, header, cells, note)`` blocks
for one protocol section; the Markdown and HTML writers render them like their other tables.
Both read only results.json: a row's ``relative_to_ceiling`` (see
:mod:`vtlm.eval.stats.ceiling`) and ``results["floors"][protocol]`` (see
:mod:`vtlm.eval.floors`).
"""

from __future__ import annotations

from vtlm.eval.report.formats import format_number

CEILING_NOTE = (
    "ceiling: the tokenizer's own reconstruction (encode + decode) of the same held-out clips, "
    "scored the same way (row tokenizer / ceiling above). generator / ceiling = 1: as faithful "
    "to the caption as the tokenizer allows; the difference is the error the generator adds."
)
FLOOR_NOTE = (
    "Two disjoint sets of real held-out clips: what sampling noise alone gives. Read a "
    "generator's distance against the line of its set sizes (held-out clips vs clips generated per seed)."
)


def ceiling_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: one line per generator row and adherence metric."""
    header = ["generator", "variant", "metric", "generator", "ceiling", "generator / ceiling", "difference"]
    cells = []
    for row in rows:
        for name, rel in (row.get("relative_to_ceiling") or {}).items():
            cells.append(
                [row["generator"], row["variant"], name, format_number(rel["generator"], 3),
                 format_number(rel["ceiling"], 3), format_number(rel["ratio"], 3), format_number(rel["difference"], 3)]
            )  # fmt: skip
    return header, cells


def floor_table(floor: dict) -> tuple[list[str], list[list[str]]]:
    """Header and cells: set sizes -> real-vs-real distance, per metric; the matched line first."""
    metrics = floor.get("metrics") or []
    header = ["real clips per set", *(f"{m} real vs real" for m in metrics)]
    matched = floor.get("matched") or {}
    sizes = f"{matched.get('n_held_out')} held-out vs {matched.get('n_other')} (this protocol's sets)"
    cells = [[sizes, *(format_number(matched.get(m)) for m in metrics)]]
    for point in floor.get("by_n") or []:
        cells.append([f"{point['n']} vs {point['n']}", *(format_number(point.get(m)) for m in metrics)])
    return header, cells


def decomposition_tables(results: dict, protocol: str) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The protocol's "vs the tokenizer's ceiling" and "real-vs-real floor" blocks (those it has)."""
    rows = [row for row in results.get("results") or [] if row.get("protocol") == protocol]
    out = []
    header, cells = ceiling_table(rows)
    if cells:
        out.append(("vs the tokenizer's ceiling", header, cells, CEILING_NOTE))
    floor = (results.get("floors") or {}).get(protocol)
    if floor:
        header, cells = floor_table(floor)
        out.append(("Real-vs-real floor of the feature distances", header, cells, FLOOR_NOTE))
    return out
