"""Error decomposition: each generator's caption adherence against the tokenizer's ceiling.

A generator emits codes that the tokenizer decodes, so its video can be no better than the
tokenizer's own reconstruction of the true clip. The harness scores that reconstruction of
the same held-out clips on every generation protocol (row generator ``tokenizer``, variant
``ceiling``). Here each generator row gets, per caption adherence metric, its mean next to
the ceiling's mean, their ratio (1: as faithful to the caption as the tokenizer allows) and
their difference (the part of the error the generator adds). Ratios of means carry no
interval; the rows hold each mean's own interval.
"""

from __future__ import annotations

import math

CEILING = ("tokenizer", "ceiling")  # (generator, variant) of a ceiling row
ADHERENCE_METRICS = ("caption_adherence", "adherence_colors", "adherence_colors_shapes")


def is_ceiling(row: dict) -> bool:
    return (row.get("generator"), row.get("variant")) == CEILING


def _mean(figure: dict | None) -> float | None:
    value = (figure or {}).get("mean")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def relative_to_ceiling(row: dict, ceiling: dict) -> dict:
    """Per adherence metric both rows report: ``{"generator", "ceiling", "ratio", "difference"}``
    (means; ``ratio`` is None where the ceiling's mean is 0)."""
    out = {}
    for name in ADHERENCE_METRICS:
        mine, best = _mean(row["metrics"].get(name)), _mean(ceiling["metrics"].get(name))
        if mine is None or best is None:
            continue
        out[name] = {
            "generator": mine,
            "ceiling": best,
            "ratio": mine / best if best else None,
            "difference": mine - best,
        }
    return out


def add_relative_to_ceiling(rows: list[dict]) -> None:
    """Give every generator row of a protocol with a ceiling row its ``relative_to_ceiling``."""
    ceilings = {row["protocol"]: row for row in rows if is_ceiling(row)}
    for row in rows:
        ceiling = ceilings.get(row["protocol"])
        if ceiling is None or is_ceiling(row) or row["generator"] == "tokenizer":
            continue
        relative = relative_to_ceiling(row, ceiling)
        if relative:
            row["relative_to_ceiling"] = relative
