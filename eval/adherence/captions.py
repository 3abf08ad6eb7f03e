"""Caption adherence: do the objects a classifier sees in a clip match the clip's labels?

Directions are judged as the dominant direction of travel over the frames shown (each frame
step votes with its length for the compass words either side of its angle), because at 32 px
objects bounce every few frames and the label's initial-velocity word often is not where an
object mostly goes. A predicted direction is right when its share of the votes is within
``DIRECTION_TOLERANCE`` of the top word's; objects still in the window are not judged on it.
"""

from __future__ import annotations

import numpy as np

from vtlm.data.synthetic.captions import DIRECTIONS
from vtlm.data.synthetic.shapes import COLOR_NAMES

MOTIONS = ("still",) + DIRECTIONS
MIN_STEP = 0.25  # px per frame: an object moving less than this on average counts as still
DIRECTION_TOLERANCE = 0.1  # a direction is right if its votes are this close to the dominant word's


def direction_votes(positions, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Share of travel per MOTIONS class, float64 (9,) summing to 1, over frames [start, stop).

    positions: (T, 2) object centers in pixels (y down; "up" is -y, as in captions). Each step
    splits its length between the two compass words flanking its angle, linearly in angle.
    One-hot "still" if the mean step is under MIN_STEP px or the window has under 2 frames.
    """
    steps = np.diff(np.asarray(positions, dtype=np.float64)[start:stop], axis=0)  # (T' - 1, 2)
    votes = np.zeros(len(MOTIONS))
    length = np.hypot(steps[:, 0], steps[:, 1])
    if len(steps) == 0 or length.mean() < MIN_STEP:
        votes[0] = 1.0
        return votes
    sector = np.degrees(np.arctan2(-steps[:, 1], steps[:, 0])) / 45.0  # 0 = right, 2 = up
    low = np.floor(sector)
    upper = sector - low  # share of the step that goes to the next word counter-clockwise
    votes[1:] += np.bincount(low.astype(int) % 8, weights=length * (1 - upper), minlength=8)
    votes[1:] += np.bincount((low.astype(int) + 1) % 8, weights=length * upper, minlength=8)
    return votes / votes.sum()


def motion_direction(positions, start: int = 0, stop: int | None = None) -> str:
    """Dominant direction over frames [start, stop): a MOTIONS word (see direction_votes)."""
    return MOTIONS[int(np.argmax(direction_votes(positions, start, stop)))]


def caption_adherence(
    predictions: list[dict], labels_list: list[dict], window: tuple[int, int] | None = None
) -> dict:
    """How well predicted objects match the true objects of each clip's labels.

    predictions: from :func:`predict`; labels_list: the shapes labels behind each clip's caption.
    window: frames [start, stop) of the true clip that the judged videos show, stop - start being
    the classifier's frame count (default: all frames of the labels); directions are judged by
    votes over it (module docstring), for objects moving in it only. The labels' size is not
    part of the three match levels (captions name it; the classifier predicts it too).
    Returns rates in [0, 1]:
      "colors": the predicted set of colors equals the true set;
      "colors_shapes": and every true object's shape is right;
      "colors_shapes_directions": and every moving true object's direction is right;
      "presence": accuracy of present/absent over all (clip, palette color) pairs;
      "shape", "size", "direction": accuracy over the true objects that were detected (direction:
      moving ones only; None if there are none); "direction_exact": the dominant word exactly;
    plus "per_clip": {"colors", "colors_shapes", "colors_shapes_directions"}: lists of bools.
    """
    if len(predictions) != len(labels_list):
        raise ValueError(
            f"labels_list: expected {len(predictions)} labels (one per prediction), got {len(labels_list)}"
        )
    start, stop = window if window is not None else (0, None)
    per_clip = {"colors": [], "colors_shapes": [], "colors_shapes_directions": []}
    hits = {"presence": [], "shape": [], "size": [], "direction": [], "direction_exact": []}
    for pred, labels in zip(predictions, labels_list):
        found = {o["color"]: o for o in pred["objects"]}
        truth = {o["color"]: o for o in labels["objects"]}
        hits["presence"] += [(c in found) == (c in truth) for c in COLOR_NAMES]
        shapes_ok = directions_ok = True
        for color, obj in truth.items():
            guess = found.get(color)
            shapes_ok &= guess is not None and guess["shape"] == obj["shape"]
            votes = direction_votes(obj["positions"], start, stop)
            if votes[0] == 1.0:  # still in the window: its direction is not judged
                right = True
            else:
                right = (
                    guess is not None
                    and votes[MOTIONS.index(guess["direction"])] >= votes.max() - DIRECTION_TOLERANCE
                )
                if guess is not None:
                    hits["direction"].append(right)
                    hits["direction_exact"].append(MOTIONS.index(guess["direction"]) == int(votes.argmax()))
            directions_ok &= right
            if guess is not None:
                hits["shape"].append(guess["shape"] == obj["shape"])
                hits["size"].append(guess["size"] == obj["size"])
        colors_ok = set(found) == set(truth)
        per_clip["colors"].append(colors_ok)
        per_clip["colors_shapes"].append(colors_ok and shapes_ok)
        per_clip["colors_shapes_directions"].append(colors_ok and shapes_ok and directions_ok)
    report = {name: float(np.mean(v)) for name, v in per_clip.items()}
    report.update({name: float(np.mean(v)) if v else None for name, v in hits.items()})
    report["per_clip"] = per_clip
    return report
