"""Bouncing colored shapes: 1 to 3 circles, squares and triangles in a box, with ground truth.

Every object is a disc of its bounding `radius` for physics: it bounces off a wall when that disc
touches it and (with collisions on) off other discs. It is drawn inscribed in the disc: a circle of
that radius, an axis-aligned square of half-side radius / sqrt(2), or an equilateral triangle
pointing up with that circumradius, all centered on the position (also their area centroid).

labels schema (coordinates as in `clip.py`: pixels, x right, y down, pixel centers at +0.5):
    {"dataset": "shapes", "resolution": R, "num_frames": T,
     "objects": [{"shape": "circle" | "square" | "triangle", "color": palette name,
                  "size": "small" | "medium" | "large", "radius": float px, "static": bool,
                  "direction": 8 compass words or "still", "positions": [[x, y]] * T (centers),
                  "velocity0": [vx, vy] px per frame}],
     "events": [{"frame": t, "type": "wall", "objects": [i], "wall": "left" | "right" | "top" | "bottom"}
                | {"frame": t, "type": "collision", "objects": [i, j]}]  (sorted by frame),
     "camera": [[ox, oy]] * T}
An event at frame t happened between frames t - 1 and t. camera[t] is how far the view has moved
over the background texture since frame 0, in pixels (background content moves by -camera[t]);
all zeros without camera_pan. Objects live in the camera's frame: the arena moves with the view.
"""

import math
from dataclasses import dataclass

import numpy as np

from .captions import direction_word, shapes_captions
from .clip import WALLS, SyntheticClip, bounce_in_box, check_field
from .render import (
    circle_sdf,
    composite,
    coverage,
    pan_crop,
    pixel_offsets,
    smooth_texture,
    square_sdf,
    to_uint8,
    triangle_sdf,
)

SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "medium", "large")
PALETTE = {  # saturated and far apart in RGB, so a color identifies an object's pixels
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "orange": (255, 128, 0),
    "white": (255, 255, 255),
}
COLOR_NAMES = tuple(PALETTE)


@dataclass
class ShapesConfig:
    """Knobs of the bouncing-shapes generator. Speeds and sizes are fractions of `resolution`."""

    resolution: int = 32  # frame side in pixels; 32 keeps CPU tokenizer training fast
    num_frames: int = 17  # 1 + 16: a causal tokenizer with 4x temporal compression keeps frame 0 alone
    min_objects: int = 1  # fewest objects per clip
    max_objects: int = 3  # most objects per clip (at most 3, so large ones still fit apart)
    static_prob: float = 0.2  # chance that an object stays still (one always moves when T > 1)
    min_speed: float = 0.03  # slowest moving object, per frame: visible motion even at 32 px
    max_speed: float = 0.08  # fastest moving object, per frame: still trackable frame to frame
    size_fractions: tuple[float, float, float] = (0.09, 0.13, 0.18)  # radius of small, medium, large
    collisions: bool = False  # elastic disc collisions; static objects are then fixed obstacles
    textured_background: bool = False  # dark smooth gray texture instead of black
    camera_pan: bool = False  # the view slides over a larger texture (implies textured_background)
    min_pan_speed: float = 0.005  # slowest camera drift per frame
    max_pan_speed: float = 0.015  # fastest camera drift per frame: slow next to the objects

    def __post_init__(self):
        check_field(self, "resolution", self.resolution >= 16, "an int >= 16")
        check_field(self, "num_frames", self.num_frames >= 1, "an int >= 1")
        check_field(self, "min_objects", 1 <= self.min_objects <= 3, "in [1, 3]")
        check_field(self, "max_objects", self.min_objects <= self.max_objects <= 3, "in [min_objects, 3]")
        check_field(self, "static_prob", 0.0 <= self.static_prob <= 1.0, "in [0, 1]")
        check_field(self, "min_speed", 0.0 < self.min_speed <= 0.25, "in (0, 0.25]")
        check_field(self, "max_speed", self.min_speed <= self.max_speed <= 0.25, "in [min_speed, 0.25]")
        sizes = tuple(self.size_fractions)
        ok = len(sizes) == 3 and all(0.0 < s <= 0.2 for s in sizes) and sorted(sizes) == list(sizes)
        check_field(self, "size_fractions", ok, "3 increasing fractions in (0, 0.2]")
        check_field(self, "min_pan_speed", 0.0 <= self.min_pan_speed <= 0.1, "in [0, 0.1]")
        ok = self.min_pan_speed <= self.max_pan_speed <= 0.1
        check_field(self, "max_pan_speed", ok, "in [min_pan_speed, 0.1]")


def _place(rng: np.random.Generator, radii: np.ndarray, resolution: int) -> np.ndarray:
    """Non-overlapping starting centers, float64 (N, 2), with every disc inside the frame."""
    centers = []
    for r in radii:
        for _ in range(64):
            candidates = rng.uniform(r, resolution - r, size=(16, 2))
            ok = np.ones(16, dtype=bool)
            for c, rc in zip(centers, radii):
                ok &= np.hypot(*(candidates - c).T) >= r + rc
            if ok.any():
                centers.append(candidates[np.argmax(ok)])
                break
        else:
            raise RuntimeError("could not place non-overlapping objects; use smaller size_fractions")
    return np.array(centers)


def _simulate_collisions(
    start: np.ndarray,
    velocity: np.ndarray,
    radii: np.ndarray,
    static: np.ndarray,
    resolution: int,
    num_frames: int,
) -> tuple[np.ndarray, list[dict]]:
    """Step discs with wall reflections and elastic pairwise collisions (masses ~ radius^2).

    Static discs have infinite mass: they never move and moving discs reflect off them. Each frame
    is split into sub-steps short enough that no disc can pass through another; on contact the pair
    is rewound to the touching instant, given the elastic impulse, and advanced again. A disc
    pinned between a wall and another disc is then nudged out of any residual overlap (positions
    only), so discs do not interpenetrate and kinetic energy is conserved exactly.
    Returns positions, float64 (T, N, 2), and events (see module docstring).
    """
    n = len(radii)
    p, v, r = start.tolist(), velocity.tolist(), radii.tolist()
    inv_mass = [0.0 if s else 1.0 / (ri * ri) for ri, s in zip(r, static)]
    fastest = float(np.abs(velocity).max()) if n else 0.0
    substeps = max(1, math.ceil(4.0 * fastest / min(r)))
    dt = 1.0 / substeps
    positions = np.empty((num_frames, n, 2))
    positions[0] = start
    seen: set[tuple] = set()
    events: list[dict] = []

    def reflect(i: int, frame: int) -> None:  # fold disc i back inside the walls, flipping velocity
        for axis in (0, 1):
            low, high = r[i], resolution - r[i]
            side = 0 if p[i][axis] < low else 1 if p[i][axis] > high else -1
            if side < 0:
                continue
            p[i][axis] = 2.0 * (low if side == 0 else high) - p[i][axis]
            v[i][axis] = -v[i][axis]
            if (frame, i, axis, side) not in seen:
                seen.add((frame, i, axis, side))
                events.append({"frame": frame, "type": "wall", "objects": [i], "wall": WALLS[axis][side]})

    def collide(i: int, j: int, frame: int) -> None:  # resolve an approaching overlap of i and j
        dx, dy = p[j][0] - p[i][0], p[j][1] - p[i][1]
        wx, wy = v[j][0] - v[i][0], v[j][1] - v[i][1]
        reach = r[i] + r[j]
        closing = dx * wx + dy * wy
        if dx * dx + dy * dy >= reach * reach or closing >= 0.0:
            return
        ww = wx * wx + wy * wy  # rewind by s so that |d - w s| = reach: the moment of contact
        s = min(dt, (closing + math.sqrt(closing * closing + ww * (reach * reach - dx * dx - dy * dy))) / ww)
        for k in (i, j):
            p[k][0] -= s * v[k][0]
            p[k][1] -= s * v[k][1]
        dx, dy = p[j][0] - p[i][0], p[j][1] - p[i][1]
        dist = math.hypot(dx, dy) or 1.0
        nx, ny = dx / dist, dy / dist
        u = wx * nx + wy * ny  # normal relative velocity, negative while closing
        impulse = -2.0 * u / (inv_mass[i] + inv_mass[j])
        for k, sign in ((i, -inv_mass[i]), (j, inv_mass[j])):
            v[k][0] += sign * impulse * nx
            v[k][1] += sign * impulse * ny
            p[k][0] += s * v[k][0]
            p[k][1] += s * v[k][1]
            reflect(k, frame)
        if (frame, i, j) not in seen:
            seen.add((frame, i, j))
            events.append({"frame": frame, "type": "collision", "objects": [i, j]})

    def separate(i: int, j: int) -> None:  # push a residual overlap apart (a disc squeezed on a wall)
        dx, dy = p[j][0] - p[i][0], p[j][1] - p[i][1]
        dist = math.hypot(dx, dy)
        overlap = r[i] + r[j] - dist
        if overlap <= 0.0 or dist == 0.0:
            return
        total = inv_mass[i] + inv_mass[j]
        for k, share in ((i, -inv_mass[i] / total), (j, inv_mass[j] / total)):
            for axis, d in ((0, dx), (1, dy)):
                moved = p[k][axis] + share * overlap * d / dist
                p[k][axis] = min(max(moved, r[k]), resolution - r[k])

    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if inv_mass[i] + inv_mass[j] > 0.0]
    for frame in range(1, num_frames):
        for _ in range(substeps):
            for i in range(n):
                p[i][0] += v[i][0] * dt
                p[i][1] += v[i][1] * dt
                reflect(i, frame)
            for i, j in pairs:
                collide(i, j, frame)
            for _ in range(3):  # a few passes settle a disc pinned between a wall and another disc
                for i, j in pairs:
                    separate(i, j)
        positions[frame] = p
    return positions, events


def _shape_alpha(shape: str, radius: float, centers: np.ndarray, resolution: int) -> np.ndarray:
    """Anti-aliased coverage, float32 (T, R, R) in [0, 1], of one shape at per-frame centers (T, 2)."""
    dx, dy = pixel_offsets(centers, resolution)
    if shape == "circle":
        return coverage(circle_sdf(dx, dy, radius))
    if shape == "square":
        return coverage(square_sdf(dx, dy, radius / math.sqrt(2.0)))
    return coverage(triangle_sdf(dx, dy, radius))


def _background(cfg: ShapesConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background frames, float32 (T, R, R, 3) in [0, 1], and camera offsets, float64 (T, 2)."""
    res, t = cfg.resolution, cfg.num_frames
    frames = np.zeros((t, res, res, 3), dtype=np.float32)
    camera = np.zeros((t, 2))
    if cfg.camera_pan:
        speed = rng.uniform(cfg.min_pan_speed, cfg.max_pan_speed) * res
        angle = rng.uniform(0.0, 2.0 * np.pi)
        pan = speed * np.array([np.cos(angle), np.sin(angle)])
        travel = math.ceil(cfg.max_pan_speed * res * (t - 1)) + 2
        texture = smooth_texture(rng, res + travel, float(res))
        camera = pan[None, :] * np.arange(t)[:, None]
        first = 1.0 + np.maximum(-pan, 0.0) * (t - 1)  # top-left of view 0, so every view fits
        frames[:] = pan_crop(texture, first + camera, res)[..., None]
    elif cfg.textured_background:
        frames[:] = smooth_texture(rng, res, float(res))[None, :, :, None]
    return frames, camera


def render_shapes(cfg: ShapesConfig, seed: int) -> SyntheticClip:
    """Render one bouncing-shapes clip, deterministic in `seed`.

    Returns a SyntheticClip with frames uint8 (T, R, R, 3) RGB; objects are painted in label
    order over the background (later on top) and, without collisions, pass over each other.
    """
    rng = np.random.default_rng(seed)
    res, t = cfg.resolution, cfg.num_frames
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    shapes = [SHAPES[k] for k in rng.integers(0, len(SHAPES), n)]
    colors = [COLOR_NAMES[k] for k in rng.choice(len(COLOR_NAMES), n, replace=False)]
    size_ids = rng.integers(0, len(SIZES), n)
    radii = np.array([cfg.size_fractions[k] * res for k in size_ids])
    static = rng.random(n) < cfg.static_prob
    if t > 1 and static.all():
        static[0] = False
    speeds = rng.uniform(cfg.min_speed, cfg.max_speed, n) * res
    angles = rng.uniform(0.0, 2.0 * np.pi, n)
    velocity = np.where(static[:, None], 0.0, speeds[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1))
    start = _place(rng, radii, res)
    frames, camera = _background(cfg, rng)

    if cfg.collisions:
        positions, events = _simulate_collisions(start, velocity, radii, static, res, t)
    else:
        positions, events = bounce_in_box(start, velocity, radii[:, None], res - radii[:, None], t)
    events.sort(key=lambda e: (e["frame"], e["type"], e["objects"], e.get("wall", "")))

    for i in range(n):
        alpha = _shape_alpha(shapes[i], float(radii[i]), positions[:, i], res)
        composite(frames, alpha, np.array(PALETTE[colors[i]], dtype=np.float32) / 255.0)

    objects = [
        {
            "shape": shapes[i],
            "color": colors[i],
            "size": SIZES[size_ids[i]],
            "radius": round(float(radii[i]), 4),
            "static": bool(static[i]),
            "direction": direction_word(float(velocity[i, 0]), float(velocity[i, 1])),
            "positions": np.round(positions[:, i], 4).tolist(),
            "velocity0": np.round(velocity[i], 4).tolist(),
        }
        for i in range(n)
    ]
    labels = {
        "dataset": "shapes",
        "resolution": res,
        "num_frames": t,
        "objects": objects,
        "events": events,
        "camera": np.round(camera, 4).tolist(),
    }
    terse, descriptive = shapes_captions(objects, events)
    return SyntheticClip(to_uint8(frames), terse, descriptive, labels)
