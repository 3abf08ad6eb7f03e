"""Paired comparisons of two generators on the same clips and seeds: which is better, and by how much.

Two generators evaluated on one protocol see the same held-out clips under the same seeds, so
their scores pair up by (seed, clip). Per headline metric this module takes the per-clip values
of both, (S seeds, N clips) each, averaged over samples and frames by the harness
(:func:`per_clip_block`), and reports for A against B:

- ``mean_diff``: mean over clips of the per-clip difference A - B, each clip's difference first
  averaged over its seeds (pairs where either value is NaN are left out; a clip with no pair
  left is dropped);
- ``interval``: percentile-bootstrap interval of that mean, resampling clips with replacement;
  a resampled clip brings all of its seeds along (the seeds are fixed, the clips are what
  another study would draw anew);
- ``p``: two-sided p-value of a paired sign-flip permutation test over clips: under "no
  difference" each clip's difference is as likely to have either sign, so the observed
  |mean| is ranked among the |means| with the clips' signs flipped; exact (all 2^n sign
  patterns) when 2^n <= ``num_permutations``, else ``num_permutations`` random patterns with
  p = (1 + hits) / (1 + patterns);
- ``p_holm``: Holm's step-down correction over the headline metrics compared within one
  (protocol, strategy, pair); ``verdict``: "better" or "worse" (A against B, by each metric's
  higher-is-better direction) when p_holm < alpha = 1 - confidence, else "no difference at
  this n";
- ``mdd``: the minimum detectable difference at this n: (z_{1 - a/2} + z_{power}) * sd / sqrt(n)
  with sd the standard deviation (ddof 1) of the per-clip differences, power 0.8 and
  a = alpha / m, Holm's level for the smallest of the m p-values (the strictest it applies).

Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from statistics import NormalDist

import numpy as np

from vtlm.eval.scoring import METRICS

from .bootstrap import bootstrap_ci

#: per-clip metrics compared between generators (those a protocol reports); the classifier's
#: Frechet distance is one number per seed (a set-level figure), so it has no pairs to compare
HEADLINE = (
    "psnr",
    "ssim",
    "caption_adherence",
    "adherence_colors",
    "adherence_colors_shapes",
    "position_error",
    "shape_kept",
)
NO_DIFFERENCE = "no difference at this n"
POWER = 0.8
P_METHOD = "paired sign-flip permutation test over clips"
CORRECTION = "Holm"
_CHUNK_ELEMENTS = 1 << 20  # sign patterns x clips held at once


def _nanmean(values: np.ndarray, axis) -> np.ndarray:
    with warnings.catch_warnings():  # an all-NaN slice gives NaN, which is what it means
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def per_clip_block(arrays: dict[str, np.ndarray]) -> dict[str, list[list[float | None]]]:
    """The headline metrics of a result row, per seed and clip, for results.json.

    arrays: name -> (S, J, N) or (S, J, N, F) values (seeds, samples, clips[, frames]).
    Returns name -> nested lists (S, N): the mean over samples and frames to 6 significant
    digits (what results.json keeps, so the comparisons can be recomputed from it), NaN as None.
    """
    out = {}
    for key in HEADLINE:
        if key not in arrays:
            continue
        values = np.asarray(arrays[key], dtype=np.float64)
        per_clip = _nanmean(values.reshape(*values.shape[:3], -1), axis=(1, 3))  # (S, N)
        out[key] = [[float(f"{v:.6g}") if np.isfinite(v) else None for v in seed] for seed in per_clip]
    return out


def clip_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a, b: (S, N) per seed and clip -> (n,) per-clip mean over seeds of a - b, for the n
    clips with at least one seed where both are finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"a, b: expected two (seeds, clips) arrays of one shape, got {a.shape} and {b.shape}"
        )
    per_clip = _nanmean(a - b, axis=0)
    return per_clip[np.isfinite(per_clip)]


def sign_flip_p(diffs: np.ndarray, num_permutations: int = 10_000, seed: int = 0) -> tuple[float, bool]:
    """Two-sided p-value of mean(diffs) = 0 by flipping the signs of the (n,) differences.

    Returns (p, exact): all 2^n sign patterns when 2^n <= num_permutations (the observed one
    included, so p >= 2 / 2^n), else (1 + hits) / (1 + num_permutations) over random patterns.
    No differences give p = nan.
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    n = len(diffs)
    if n == 0:
        return float("nan"), True
    observed = abs(diffs.mean())
    bar = observed - 1e-9 * (observed + np.abs(diffs).mean())  # ties by rounding count as hits
    if 2**n <= num_permutations:
        patterns = np.arange(2**n)[:, None] >> np.arange(n) & 1  # (2^n, n) every sign pattern
        means = ((1 - 2 * patterns) @ diffs) / n
        return float((np.abs(means) >= bar).mean()), True
    rng = np.random.default_rng(seed)
    hits, step = 0, max(1, _CHUNK_ELEMENTS // n)
    for begin in range(0, num_permutations, step):
        signs = rng.choice((-1.0, 1.0), size=(min(step, num_permutations - begin), n))
        hits += int((np.abs(signs @ diffs / n) >= bar).sum())
    return (1 + hits) / (1 + num_permutations), False


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: the i-th smallest of m becomes
    max over j <= i of min(1, (m - j + 1) p_(j)). NaN entries stay NaN and do not count in m."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(len(p), np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out.tolist()


def min_detectable_difference(sd: float, n: int, alpha: float, power: float = POWER) -> float:
    """(z_{1 - alpha/2} + z_{power}) * sd / sqrt(n): the true mean difference a two-sided
    level-alpha test of n paired clips detects with probability ``power`` (normal approximation)."""
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    z = NormalDist().inv_cdf
    return (z(1.0 - alpha / 2.0) + z(power)) * sd / math.sqrt(n)


def verdict(mean_diff: float, p_holm: float, higher_is_better: bool, alpha: float) -> str:
    """A's verdict against B: "better" / "worse" when p_holm < alpha, else "no difference at this n"."""
    if not p_holm < alpha or mean_diff == 0:
        return NO_DIFFERENCE
    return "better" if (mean_diff > 0) == higher_is_better else "worse"


def compare_pair(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
    num_permutations: int = 10_000,
) -> dict:
    """One metric, A against B. a, b: (S, N) per seed and clip (NaN: undefined).

    Returns {mean_diff, interval: [low, high], p, exact, sd, n_clips, n_seeds} (see the module
    docstring); no correction, verdict or MDD yet: those depend on the other metrics compared.
    """
    diffs = clip_differences(a, b)
    n = len(diffs)
    p, exact = sign_flip_p(diffs, num_permutations, seed)
    return {
        "mean_diff": float(diffs.mean()) if n else float("nan"),
        "interval": list(bootstrap_ci(diffs, confidence, num_resamples, seed)),
        "p": p,
        "exact": exact,
        "sd": float(diffs.std(ddof=1)) if n > 1 else float("nan"),
        "n_clips": n,
        "n_seeds": int(np.shape(a)[0]),
    }


def compare_family(
    pairs: dict[str, tuple[np.ndarray, np.ndarray]],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
    num_permutations: int = 10_000,
) -> dict[str, dict]:
    """The metrics of one (protocol, strategy, pair): metric -> (a, b) arrays (S, N) ->
    metric -> ``compare_pair``'s dict plus p_holm, verdict, mdd, mdd_alpha, higher_is_better.
    A metric with no paired clip is left out (and out of the correction)."""
    alpha = 1.0 - confidence
    out = {}
    for name, (a, b) in pairs.items():
        result = compare_pair(a, b, confidence, num_resamples, seed, num_permutations)
        if result["n_clips"]:
            out[name] = result
    adjusted = holm([r["p"] for r in out.values()])
    level = alpha / max(1, len(out))
    for (name, result), p_holm in zip(out.items(), adjusted):
        higher = bool(METRICS[name][1])
        result.update(
            p_holm=p_holm,
            verdict=verdict(result["mean_diff"], p_holm, higher, alpha),
            mdd=min_detectable_difference(result["sd"], result["n_clips"], level),
            mdd_alpha=level,
            higher_is_better=higher,
        )
    return out


def _array(nested: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in seed] for seed in nested], dtype=np.float64)


def _json_number(x):
    return x if not isinstance(x, float) or math.isfinite(x) else None


def compare_results(
    rows: list[dict],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
    num_permutations: int = 10_000,
) -> list[dict]:
    """Every pair of generators on every protocol, from result rows carrying ``per_clip``.

    Default variants are paired; on rollouts each strategy ("sliding", "chaining") separately.
    Returns one entry per (protocol, strategy, a, b, metric), JSON-ready (NaN as None): protocol,
    strategy (None off rollouts), a, b, metric, mean_diff (a - b), interval, p, p_holm, verdict
    (of a against b), mdd, n_clips, n_seeds, higher_is_better, and how: p_method, correction,
    alpha, mdd_alpha, power.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        if row.get("per_clip") and row["variant"] in ("default", "sliding", "chaining"):
            groups.setdefault((row["protocol"], row["variant"]), []).append(row)
    out = []
    for (protocol, variant), members in groups.items():
        for row_a, row_b in itertools.combinations(members, 2):
            names = [n for n in HEADLINE if n in row_a["per_clip"] and n in row_b["per_clip"]]
            pairs = {n: (_array(row_a["per_clip"][n]), _array(row_b["per_clip"][n])) for n in names}
            if any(a.shape != b.shape for a, b in pairs.values()):
                warnings.warn(
                    f"{protocol}: {row_a['generator']} and {row_b['generator']} were scored on different "
                    "seeds or clips; not compared",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            family = compare_family(pairs, confidence, num_resamples, seed, num_permutations)
            for name, r in family.items():
                method = "exact" if r["exact"] else f"{num_permutations} random sign patterns"
                entry = {
                    "protocol": protocol,
                    "strategy": None if variant == "default" else variant,
                    "a": row_a["generator"],
                    "b": row_b["generator"],
                    "metric": name,
                    **{k: r[k] for k in ("mean_diff", "interval", "p", "p_holm", "verdict", "mdd")},
                    **{k: r[k] for k in ("n_clips", "n_seeds", "higher_is_better", "mdd_alpha")},
                    "p_method": f"{P_METHOD} ({method})",
                    "correction": CORRECTION,
                    "alpha": 1.0 - confidence,
                    "power": POWER,
                }
                entry["interval"] = [_json_number(v) for v in entry["interval"]]
                out.append({k: _json_number(v) for k, v in entry.items()})
    return out


def _strategy_and_setting(variant: str) -> tuple[str, str]:
    """A sweep variant's label -> (the default row's variant it is paired with, its setting):
    "temperature=0.7" -> ("default", ...); "sliding, row_lag=1" -> ("sliding", "row_lag=1")."""
    for strategy in ("sliding", "chaining"):
        if variant.startswith(f"{strategy}, "):
            return strategy, variant[len(strategy) + 2 :]
    return "default", variant


def compare_variants(
    rows: list[dict],
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
    num_permutations: int = 10_000,
) -> list[dict]:
    """Every sampling-sweep variant against its own generator's default on the same protocol
    (and rollout strategy), on the same clips and seeds: does a faster or different setting
    change what the harness measures? Entries as :func:`compare_results`'s, with A named
    ``generator [setting]`` and B the generator."""
    defaults = {(r["protocol"], r["generator"], r["variant"]): r for r in rows}
    out = []
    for row in rows:
        if row["generator"] == "tokenizer" or row["variant"] in ("default", "sliding", "chaining", "ceiling"):
            continue
        base_variant, setting = _strategy_and_setting(row["variant"])
        base = defaults.get((row["protocol"], row["generator"], base_variant))
        if base is None or not row.get("per_clip") or not base.get("per_clip"):
            continue
        renamed = {**row, "generator": f"{row['generator']} [{setting}]", "variant": base_variant}
        out += compare_results([renamed, base], confidence, num_resamples, seed, num_permutations)
    return out
