"""Score a generated `shapes` continuation against the truth, object by object.

A generated continuation can look right frame by frame and still break the scene's rules.
With the tracks of `vtlm.eval.physics.tracker`, each object is compared with the true continuation:
where it is, whether it keeps its color and shape, whether it turns at the walls and at other
objects where the true clip does.

Use: ``compare_tracks(track(generated, COLOR_NAMES), clip.labels, start_frame)`` gives per-step
curves (position error, presence, color and shape kept) and bounce recall; see `compare_tracks`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .tracker import Tracks, reference_from_labels

WALL_NORMALS = {"left": (0, 1.0), "right": (0, -1.0), "top": (1, 1.0), "bottom": (1, -1.0)}  # axis, inward


def _aligned(tracks: Tracks, colors: Sequence[str]) -> Tracks:
    """The tracks of `colors`, in that order; a color `tracks` lacks is absent throughout."""
    index = [tracks.colors.index(c) if c in tracks.colors else -1 for c in colors]

    def take(a: np.ndarray, fill) -> np.ndarray:
        out = np.concatenate([a, np.full((a.shape[0], 1, *a.shape[2:]), fill, dtype=a.dtype)], 1)
        return out[:, index]

    return Tracks(
        colors=list(colors),
        size=tracks.size,
        present=take(tracks.present, False),
        centroid=take(tracks.centroid, np.nan),
        area=take(tracks.area, 0.0),
        shape_fit=take(tracks.shape_fit, np.nan),
        shape_guess=take(tracks.shape_guess, ""),
        stray=take(tracks.stray, np.nan),
        radius=np.append(tracks.radius, np.nan)[index],
    )


def _turns(turn: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Where `hit` is set and `turn` (F, ...) peaks along axis 0 (ties go to the earlier frame)."""
    t = np.where(np.isnan(turn), -np.inf, turn)
    low = np.full(t[:1].shape, -np.inf)
    prev, nxt = np.concatenate([low, t[:-1]]), np.concatenate([t[1:], low])
    return hit & (t > prev) & (t >= nxt)


def detect_bounces(
    tracks: Tracks, radii: Sequence[float] | None = None, min_turn: float = 0.5, margin: float = 1.0
) -> list[dict]:
    """Velocity reversals at the walls and between objects, as events in the labels' schema.

    Objects are discs of `radii` (default: tracks.radius), as in the simulator, so a square or
    triangle turns short of visible contact. Event frame f (2 <= f <= T - 2) means the turn
    happened between frames f - 1 and f: the velocity before (frame f - 2 to f - 1) and after
    (frame f to f + 1) are compared, so the frame the bounce splits does not matter. A wall
    bounce: the velocity component toward the wall reverses by more than `min_turn` px per frame
    while the disc is within `margin` px plus half a step of it. A collision: the same for the
    relative velocity along the line between two centers, closing before and opening after.
    Each reversal is reported once, at the frame where the change peaks.
    """
    x = tracks.centroid
    t, n = x.shape[:2]
    if t < 4:
        return []
    r = tracks.radius if radii is None else np.asarray(radii, dtype=np.float64)
    v = np.diff(x, axis=0)  # (T-1, N, 2): v[k] = x[k + 1] - x[k]
    f = np.arange(2, t - 1)
    before, after = v[f - 2], v[f]  # (F, N, 2)
    events = []
    with np.errstate(invalid="ignore"):
        for wall, (axis, inward) in WALL_NORMALS.items():
            b, a = inward * before[..., axis], inward * after[..., axis]  # (F, N), > 0 away from the wall
            extent = tracks.size[1 - axis]
            dist = x[..., axis] if inward > 0 else extent - x[..., axis]  # (T, N) center to wall
            gap = np.minimum(dist[f - 1], dist[f]) - r
            hit = (b < 0) & (a > 0) & (a - b > min_turn) & (gap <= margin + np.maximum(-b, a) / 2)
            for k, i in zip(*np.nonzero(_turns(a - b, hit))):
                events.append({"frame": int(f[k]), "type": "wall", "objects": [int(i)], "wall": wall})
        for i in range(n):
            for j in range(i + 1, n):
                d = x[:, j] - x[:, i]  # (T, 2)
                normal = d[f - 1] + d[f]
                normal = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
                b = ((before[:, j] - before[:, i]) * normal).sum(-1)  # (F,) < 0 closing
                a = ((after[:, j] - after[:, i]) * normal).sum(-1)
                dist = np.linalg.norm(d, axis=-1)
                gap = np.minimum(dist[f - 1], dist[f]) - r[i] - r[j]
                hit = (b < 0) & (a > 0) & (a - b > min_turn) & (gap <= margin + np.maximum(-b, a) / 2)
                for k in np.nonzero(_turns(a - b, hit))[0]:
                    events.append({"frame": int(f[k]), "type": "collision", "objects": [i, j]})
    events.sort(key=lambda e: (e["frame"], e["type"], e["objects"], e.get("wall", "")))
    return events


def _key(event: dict) -> tuple:
    return event["type"], tuple(sorted(event["objects"])), event.get("wall", "")


def _match(wanted: list[dict], found: list[dict], tolerance: int = 1) -> list[bool]:
    """For each wanted event, whether a found event of the same kind is within `tolerance` frames
    (one-to-one, nearest first)."""
    used = [False] * len(found)
    out = []
    for w in wanted:
        best = None
        for k, e in enumerate(found):
            gap = abs(e["frame"] - w["frame"])
            if not used[k] and _key(e) == _key(w) and gap <= tolerance and (best is None or gap < best[1]):
                best = (k, gap)
        if best is not None:
            used[best[0]] = True
        out.append(best is not None)
    return out


def _found_recolored(
    gen: Tracks, ref: Tracks, lost: np.ndarray, radii: np.ndarray, margin: float
) -> np.ndarray:
    """bool (T, N): a lost object is there in another color, i.e. a blob of a color the reference
    does not use lies within 2 radii + margin of its true position (each blob serves one object)."""
    others = [k for k, c in enumerate(gen.colors) if c not in ref.colors]
    found = np.zeros_like(lost)
    for t in np.nonzero(lost.any(1))[0]:
        pairs = sorted(
            (np.linalg.norm(gen.centroid[t, k] - ref.centroid[t, i]), i, k)
            for i in np.nonzero(lost[t])[0]
            for k in others
            if gen.present[t, k]
        )
        used = set()
        for dist, i, k in pairs:
            if dist <= 2.0 * radii[i] + margin and i not in used and k not in used:
                found[t, i] = True
                used |= {i, k}
    return found


def _swap_onsets(gen: np.ndarray, ref: np.ndarray, start: int) -> int:
    """Times from `start` on that two objects' positions begin to fit better with their colors
    exchanged: |g_i - r_j| + |g_j - r_i| < |g_i - r_i| + |g_j - r_j|. gen, ref: (T, N, 2), NaN absent."""
    dist = np.linalg.norm(gen[:, :, None] - ref[:, None, :], axis=-1)  # (T, N, N): generated i to true j
    onsets = 0
    for i in range(dist.shape[1]):
        for j in range(i + 1, dist.shape[1]):
            with np.errstate(invalid="ignore"):
                swapped = dist[:, i, j] + dist[:, j, i] < dist[:, i, i] + dist[:, j, j]  # False if absent
            was = np.concatenate([[False], swapped[:-1]])
            onsets += int((swapped & ~was)[start:].sum())
    return onsets


def _mean(values: np.ndarray, axis: int | None = None):
    """Mean ignoring NaN; NaN (no warning) where nothing is left."""
    count = (~np.isnan(values)).sum(axis)
    total = np.nansum(values, axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _share(hits: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-frame share of `valid` objects with `hits`, NaN where none is valid: (T,)."""
    return _mean(np.where(valid, hits.astype(np.float64), np.nan), 1)


def compare_tracks(
    generated: Tracks,
    reference: Tracks | dict,
    start_frame: int,
    radii: Sequence[float] | None = None,
    min_turn: float = 0.5,
    margin: float = 1.0,
) -> dict:
    """Score a generated continuation against the true one, object by object (matched by color).

    generated: tracks of the whole generated video, context frames included (see `track`; track
        every palette color to let `presence` see recolored objects). reference: the true clip's
        labels (exact) or tracks of the true video, with the same number of frames T.
    start_frame: first generated frame; curves and events cover frames start_frame .. T - 1.
    radii: bounding-disc radius per reference object for the physics; default from the reference.

    Returns {"steps": frames scored, "curves": {name: list, one value per step}, "per_object":
    {"position_error": N lists}, "summary": {name: number}, "events": {"true": [...],
    "generated": [...]}} (events in the labels' schema). NaN marks an undefined value.
    Objects the reference shows overlapping another (partly hidden; clips without collisions)
    are left out of the curves.
        position_error: px between generated and true centers, mean over the objects found in
            their color; a vanished object is not a zero error: it is left out of this mean and
            counted in `presence` and `color_kept` instead.
        presence: share of the objects found, in their color or recolored (`_found_recolored`).
        color_kept: share of the objects found in their own color.
        shape_kept: share of the objects found in their color whose shape guess is the true shape.
    Summary: mean_<curve> (mean over steps), identity_swaps (see `_swap_onsets`), and physics
    from events (see `detect_bounces`) with frame >= start_frame. The true events are the
    reference's reversals (with labels: the labelled events whose reversal shows in the exact
    positions, the others counted in events_unobservable, 0 for tracks). wall_bounce_recall and
    collision_recall: share of them the generated tracks reproduce within +-1 frame (NaN if
    none); wall_bounces and collisions: how many; *_spurious: generated reversals that no true
    or labelled event explains.
    """
    labels = reference if isinstance(reference, dict) else None
    ref = reference_from_labels(labels) if labels is not None else reference
    t, n = ref.present.shape
    if generated.present.shape[0] != t:
        raise ValueError(
            f"generated: expected {t} frames like the reference, got {generated.present.shape[0]}"
        )
    if not 0 <= start_frame < t:
        raise ValueError(f"start_frame: expected an int in [0, {t - 1}], got {start_frame!r}")
    r = ref.radius if radii is None else np.asarray(radii, dtype=np.float64)
    if r.shape != (n,):
        raise ValueError(f"radii: expected {n} values (one per reference object), got {r.shape}")
    gen = _aligned(generated, ref.colors)
    valid = ref.present & ~ref.overlap(r)
    own = gen.present & valid
    error = np.where(own, np.linalg.norm(gen.centroid - ref.centroid, axis=-1), np.nan)  # (T, N)
    present = own | _found_recolored(generated, ref, valid & ~own, r, margin)
    curves = {
        "position_error": _mean(error, 1),
        "presence": _share(present, valid),
        "color_kept": _share(own, valid),
        "shape_kept": _share(gen.shape_guess == ref.shape_guess, own),
    }
    steps = slice(start_frame, None)
    summary = {f"mean_{name}": float(_mean(curve[steps])) for name, curve in curves.items()}
    curves = {name: curve[steps].tolist() for name, curve in curves.items()}
    own_centroid = np.where(own[..., None], gen.centroid, np.nan)
    summary["identity_swaps"] = _swap_onsets(own_centroid, ref.centroid, start_frame)

    def window(events: list[dict]) -> list[dict]:
        return [e for e in events if e["frame"] >= start_frame]

    truth = detect_bounces(ref, r, min_turn, margin)
    excused = truth + (labels["events"] if labels is not None else [])
    summary["events_unobservable"] = 0
    if labels is not None:
        labelled = window(labels["events"])
        seen = _match(labelled, truth)
        summary["events_unobservable"] = seen.count(False)
        truth = [e for e, ok in zip(labelled, seen) if ok]
    found = [e for e in detect_bounces(gen, r, min_turn, margin) if e["frame"] >= start_frame - 1]
    truth, explained = window(truth), _match(window(found), excused)
    hits = _match(truth, found)
    for kind, count, name in (
        ("wall", "wall_bounces", "wall_bounce"),
        ("collision", "collisions", "collision"),
    ):
        mine = [h for e, h in zip(truth, hits) if e["type"] == kind]
        summary[count] = len(mine)
        summary[f"{name}_recall"] = float(np.mean(mine)) if mine else float("nan")
        summary[f"{name}_spurious"] = sum(
            1 for e, ok in zip(window(found), explained) if e["type"] == kind and not ok
        )
    return {
        "steps": list(range(start_frame, t)),
        "curves": curves,
        "per_object": {"position_error": error[steps].T.tolist()},
        "summary": summary,
        "events": {"true": truth, "generated": window(found)},
    }
