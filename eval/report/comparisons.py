"""The paired comparisons of results.json in the report: their table, how they were made, and
each headline line's verdicts against the other generators.

``results["comparisons"]`` holds one entry per (protocol, strategy, pair A/B, metric), made by
:func:`vtlm.eval.stats.paired.compare_results`: mean_diff (A - B over the same clips and
seeds), interval, p, p_holm, verdict (of A against B), mdd, n_clips, n_seeds, higher_is_better,
p_method, correction, alpha, mdd_alpha, power.
"""

from __future__ import annotations

from vtlm.eval.report.formats import MISSING, figure_decimals, format_figure, format_number

OPPOSITE = {"better": "worse", "worse": "better"}
VERDICT_HEADER = "verdict vs other generators (paired, Holm)"


# results.json's lists of paired comparisons -> their section title: between generators, and
# each generator's sampling-sweep variants against its default (same clips and seeds).
SECTIONS = {
    "comparisons": "Paired comparisons",
    "variant_comparisons": "Sampling settings against the default (paired)",
}


def _entries(results: dict, key: str = "comparisons") -> list[dict]:
    return list(results.get(key) or [])


def _unit(results: dict, entry: dict) -> str:
    for row in results.get("results") or []:
        figure = (row.get("metrics") or {}).get(entry["metric"])
        if row.get("protocol") == entry["protocol"] and figure:
            return figure.get("unit") or ""
    return ""


def format_p(p) -> str:
    if p is None:
        return MISSING
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def comparison_table(results: dict, key: str = "comparisons") -> tuple[list[str], list[list[str]]]:
    """Header and cells: one line per comparison of ``results[key]``; the difference and the MDD
    with the decimals the interval resolves."""
    header = ["protocol", "strategy", "A", "B", "metric", "A − B [interval]", "p", "p (Holm)",
              "verdict (A vs B)", "MDD", "clips × seeds"]  # fmt: skip
    cells = []
    for entry in _entries(results, key):
        low, high = entry.get("interval") or (None, None)
        figure = {
            "mean": entry.get("mean_diff"),
            "ci_low": low,
            "ci_high": high,
            "unit": _unit(results, entry),
        }
        arrow = "↑" if entry.get("higher_is_better") else "↓"
        cells.append(
            [entry["protocol"], entry.get("strategy") or MISSING, entry["a"], entry["b"], f"{entry['metric']} {arrow}",
             format_figure(figure), format_p(entry.get("p")), format_p(entry.get("p_holm")), entry["verdict"],
             format_number(entry.get("mdd"), figure_decimals(figure)), f"{entry['n_clips']} × {entry['n_seeds']}"]
        )  # fmt: skip
    return header, cells


def _methods(names) -> str:
    """Distinct test names, one test's variants merged: "t (a); t (b)" -> "t (a; b)"."""
    variants: dict[str, list[str]] = {}
    for name in names:
        test, _, how = name.partition(" (")
        variants.setdefault(test, [])
        if how and how.rstrip(")") not in variants[test]:
            variants[test].append(how.rstrip(")"))
    return "; ".join(f"{t} ({'; '.join(v)})" if v else t for t, v in variants.items())


def comparison_sentence(results: dict, key: str = "comparisons") -> str:
    """How the comparisons were made, in one paragraph (empty without comparisons)."""
    entries = _entries(results, key)
    if not entries:
        return ""
    first = entries[0]
    alpha, power, confidence = first["alpha"], first["power"], 1.0 - first["alpha"]
    methods = _methods(e["p_method"] for e in entries)
    return (
        "A − B: mean over clips of A's minus B's value on the same clip and seed, each clip's difference "
        f"averaged over its seeds. Interval: {confidence * 100:g}% bootstrap over clips, a clip's seeds "
        f"resampled together. p: {methods}. p (Holm): {first['correction']}'s correction over the metrics "
        f"compared within one protocol, strategy and pair; the verdict is A's (better / worse, by the metric's "
        f"arrow) when it is below {alpha:g}, else no difference at this n. MDD: the smallest true difference "
        f"found with power {power:g} at level {alpha:g} / m (Holm's strictest, m metrics compared), "
        "(z(1 − level/2) + z(power)) · sd / √n from the SD of the per-clip differences."
    )


def headline_verdicts(results: dict, row: dict) -> str:
    """One headline line's verdicts, from its generator's side, grouped by verdict, against each
    generator it was compared with: "vs diffusion: better: psnr, ssim; no difference at this n:
    position_error" (opponents apart by " · "); "—" if none."""
    strategy = None if row["variant"] == "default" else row["variant"]
    by_other: dict[str, dict[str, list[str]]] = {}
    for entry in _entries(results):
        if entry["protocol"] != row["protocol"] or entry.get("strategy") != strategy:
            continue
        if entry["a"] == row["generator"]:
            other, said = entry["b"], entry["verdict"]
        elif entry["b"] == row["generator"]:
            other, said = entry["a"], OPPOSITE.get(entry["verdict"], entry["verdict"])
        else:
            continue
        by_other.setdefault(other, {}).setdefault(said, []).append(entry["metric"])
    order = {"better": 0, "worse": 1}
    return (
        " · ".join(
            f"vs {other}: "
            + "; ".join(
                f"{said}: {', '.join(metrics)}"
                for said, metrics in sorted(groups.items(), key=lambda g: order.get(g[0], 2))
            )
            for other, groups in by_other.items()
        )
        or MISSING
    )
