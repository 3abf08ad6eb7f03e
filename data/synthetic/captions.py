"""Caption text for the procedural datasets, computed from their labels alone.

Two registers per clip: terse (what is in the clip) and descriptive (what it does). Wording is
deterministic, lower case, without a trailing period, so captions can be compared as strings.
"""

import math

# Counter-clockwise from the +x axis in steps of 45 degrees, with "up" meaning negative image y.
DIRECTIONS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")


def direction_word(vx: float, vy: float) -> str:
    """One of the 8 compass words for an image-space velocity (y down), or "still" if zero."""
    if vx == 0.0 and vy == 0.0:
        return "still"
    angle = math.degrees(math.atan2(-vy, vx))
    return DIRECTIONS[round(angle / 45.0) % 8]


def join_clauses(clauses: list[str], pair_word: str) -> str:
    """Join clauses as a, "a {pair_word} b", or "a, b, and c" for three or more."""
    if len(clauses) <= 2:
        return f" {pair_word} ".join(clauses)
    return ", ".join(clauses[:-1]) + ", and " + clauses[-1]


def _first(events: list[dict], index: int, kind: str) -> dict | None:
    """The earliest event of type `kind` that involves object `index` (events are frame-sorted)."""
    return next((e for e in events if e["type"] == kind and index in e["objects"]), None)


def shapes_captions(objects: list[dict], events: list[dict]) -> tuple[str, str]:
    """Terse and descriptive captions for a shapes clip from its labels' objects and events.

    terse: "red circle, blue square". descriptive: one clause per object, e.g. "a small red circle
    moves left and bounces off the left wall while a large blue square stays still"; a moving
    object's clause names its first wall bounce and its first collision, in the order they happen.
    """
    terse = ", ".join(f"{o['color']} {o['shape']}" for o in objects)
    clauses = []
    for i, o in enumerate(objects):
        subject = f"a {o['size']} {o['color']} {o['shape']}"
        if o["static"]:
            clauses.append(f"{subject} stays still")
            continue
        happenings = []  # (frame, text)
        wall = _first(events, i, "wall")
        if wall is not None:
            happenings.append((wall["frame"], f"bounces off the {wall['wall']} wall"))
        hit = _first(events, i, "collision")
        if hit is not None:
            other = objects[next(j for j in hit["objects"] if j != i)]
            happenings.append((hit["frame"], f"collides with the {other['color']} {other['shape']}"))
        verbs = [f"moves {o['direction']}"] + [text for _, text in sorted(happenings)]
        if len(verbs) == 3:
            clauses.append(f"{subject} {verbs[0]}, {verbs[1]} and {verbs[2]}")
        else:
            clauses.append(f"{subject} " + " and ".join(verbs))
    return terse, join_clauses(clauses, "while")


def digits_captions(objects: list[dict], events: list[dict]) -> tuple[str, str]:
    """Terse and descriptive captions for a moving-digits clip from its labels.

    terse: "digit 5" or "digits 3 and 7". descriptive: "digit 3 moves up-left and digit 7 moves
    right, both bouncing off the walls"; bounces are mentioned only for digits that bounce (a lone
    digit that hits a single wall names it: "digit 5 moves left and bounces off the left wall").
    """
    names = [f"digit {o['digit']}" for o in objects]
    if len(names) == 1:
        terse = names[0]
    else:
        terse = "digits " + join_clauses([str(o["digit"]) for o in objects], "and")
    walls = [sorted({e["wall"] for e in events if i in e["objects"]}) for i in range(len(objects))]
    moves = [f"{name} moves {o['direction']}" for name, o in zip(names, objects)]
    bounced = [bool(w) for w in walls]
    if len(objects) == 1:
        if not bounced[0]:
            return terse, moves[0]
        target = f"the {walls[0][0]} wall" if len(walls[0]) == 1 else "the walls"
        return terse, f"{moves[0]} and bounces off {target}"
    if all(bounced):
        suffix = ", both bouncing off the walls" if len(objects) == 2 else ", all bouncing off the walls"
        return terse, join_clauses(moves, "and") + suffix
    clauses = [m + (" and bounces off the walls" if b else "") for m, b in zip(moves, bounced)]
    return terse, join_clauses(clauses, "while" if any(bounced) else "and")
