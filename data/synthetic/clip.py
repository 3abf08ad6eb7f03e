"""The record every built-in dataset returns, and the small pieces they all share.

Coordinates used throughout `vtlm.data.synthetic` are continuous pixel coordinates: a frame of
side R spans [0, R] on both axes, x grows to the right and y grows down, and the pixel in row i,
column j covers [j, j + 1) x [i, i + 1), so its center is (j + 0.5, i + 0.5).
"""

from dataclasses import dataclass

import numpy as np

WALLS = (("left", "right"), ("top", "bottom"))  # WALLS[axis][0 for the low wall, 1 for the high wall]


@dataclass
class SyntheticClip:
    """One procedurally generated clip with its captions and ground truth.

    frames: uint8 array of shape (T, H, W, 3), RGB, values 0..255.
    caption_terse: the objects only, e.g. "red circle, blue square".
    caption_descriptive: objects, motion and events, e.g. "a small red circle moves left and bounces
        off the left wall while a large blue square stays still" (lower case, no trailing period).
    labels: JSON-serializable ground truth (dicts, lists, str, int, float, bool); each dataset's
        module docstring gives its schema.
    """

    frames: np.ndarray
    caption_terse: str
    caption_descriptive: str
    labels: dict


def check_field(config: object, field: str, ok: bool, expected: str) -> None:
    """Raise ValueError naming `field`, what it should be and what it is, unless `ok`."""
    if not ok:
        value = getattr(config, field)
        raise ValueError(f"{type(config).__name__}.{field} must be {expected}, got {value!r}")


def bounce_in_box(
    start: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray, num_frames: int
) -> tuple[np.ndarray, list[dict]]:
    """Closed-form straight-line motion with elastic reflection off the walls of a box.

    Each object's unfolded path p0 + v * t is folded back into [low, high] per axis (a triangle
    wave), which is exactly what reflecting the velocity at every wall contact gives.

    start, velocity, low, high: float arrays (N, 2), (x, y) in pixels and pixels per frame; low and
        high bound the object's center (e.g. radius and R - radius), with high > low.
    Returns positions, float64 (T, N, 2), and wall events sorted by frame, each
    {"frame": t, "type": "wall", "objects": [n], "wall": "left" | "right" | "top" | "bottom"},
    where frame t means the contact happened between frames t - 1 and t (or exactly at t).
    """
    t = np.arange(num_frames, dtype=np.float64)[:, None, None]  # (T, 1, 1)
    span = high - low  # (N, 2)
    unfolded = start - low + velocity * t  # (T, N, 2), distance from the low wall before folding
    positions = low + span - np.abs(np.mod(unfolded, 2 * span) - span)
    fold = np.floor(unfolded / span).astype(np.int64)  # boundary m * span is crossed when fold changes
    events = []
    for step, obj, axis in zip(*np.nonzero(np.diff(fold, axis=0))):
        before, after = fold[step, obj, axis], fold[step + 1, obj, axis]
        for m in range(min(before, after) + 1, max(before, after) + 1):
            wall = WALLS[axis][m % 2]  # even multiples of span are the low wall, odd the high wall
            events.append({"frame": int(step) + 1, "type": "wall", "objects": [int(obj)], "wall": wall})
    events.sort(key=lambda e: (e["frame"], e["objects"]))
    return positions, events
