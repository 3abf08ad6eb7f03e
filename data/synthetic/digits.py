"""Moving digits in the style of Moving MNIST, drawn from hand-made 5x7 glyphs (no download).

Each clip draws 1 or 2 digits; each gets its own stroke thickness, slant and scale, is rendered
into a smooth white-on-black grayscale sprite, and moves in a straight line, bouncing off the
walls when its sprite's bounding box touches them. Overlapping digits combine with max.

labels schema (coordinates as in `clip.py`: pixels, x right, y down, pixel centers at +0.5):
    {"dataset": "digits", "resolution": R, "num_frames": T,
     "objects": [{"digit": 0..9, "size": [w, h] px of the sprite's bounding box,
                  "positions": [[x, y]] * T (center of the bounding box),
                  "velocity0": [vx, vy] px per frame, "direction": one of 8 compass words}],
     "events": [{"frame": t, "type": "wall", "objects": [i], "wall": "left" | "right" | "top" | "bottom"}]}
An event at frame t happened between frames t - 1 and t.
"""

from dataclasses import dataclass

import numpy as np

from .captions import digits_captions, direction_word
from .clip import SyntheticClip, bounce_in_box, check_field
from .render import sample_bilinear, to_uint8

GLYPHS = {  # 7 rows of 5 cells, "#" is ink
    0: (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    1: ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    2: (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    3: (".###.", "#...#", "....#", "..##.", "....#", "#...#", ".###."),
    4: ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    5: ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    6: ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    7: ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    8: (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    9: (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}
UPSAMPLE = 4  # glyph cells are upsampled this much before blurring, for smooth strokes
PAD = 2 * UPSAMPLE  # blank border around the upsampled glyph, room for the blur
BLUR = 0.5 * UPSAMPLE  # Gaussian sigma of the stroke blur, in upsampled cells
THICKNESS = (0.3, 0.5)  # threshold on the blurred glyph: lower is bolder
SLANT = (-0.3, 0.3)  # horizontal shear, pixels of x per pixel of y (positive leans right)
SCALE = (0.85, 1.15)  # jitter of the glyph height around digit_size


@dataclass
class DigitsConfig:
    """Knobs of the moving-digits generator. Sizes and speeds are fractions of `resolution`."""

    resolution: int = 64  # frame side in pixels, as in Moving MNIST
    num_frames: int = 20  # Moving MNIST's usual 10 context + 10 predicted frames
    min_digits: int = 1  # fewest digits per clip
    max_digits: int = 2  # most digits per clip (Moving MNIST uses 2)
    digit_size: float = 0.4  # glyph height before jitter; Moving MNIST's 28 px digits in 64 px
    min_speed: float = 0.03  # slowest digit, per frame
    max_speed: float = 0.08  # fastest digit, per frame

    def __post_init__(self):
        check_field(self, "resolution", self.resolution >= 16, "an int >= 16")
        check_field(self, "num_frames", self.num_frames >= 1, "an int >= 1")
        check_field(self, "min_digits", 1 <= self.min_digits <= 2, "in [1, 2]")
        check_field(self, "max_digits", self.min_digits <= self.max_digits <= 2, "in [min_digits, 2]")
        check_field(self, "digit_size", 0.15 <= self.digit_size <= 0.6, "in [0.15, 0.6]")
        check_field(self, "min_speed", 0.0 < self.min_speed <= 0.25, "in (0, 0.25]")
        check_field(self, "max_speed", self.min_speed <= self.max_speed <= 0.25, "in [min_speed, 0.25]")


def _blur_matrix(n: int) -> np.ndarray:
    """Row-normalized (n, n) Gaussian blur operator with sigma BLUR."""
    idx = np.arange(n, dtype=np.float32)
    k = np.exp(-((idx[:, None] - idx[None, :]) ** 2) / (2.0 * BLUR**2))
    return k / k.sum(axis=1, keepdims=True)


def digit_sprite(digit: int, height: float, thickness: float, slant: float) -> np.ndarray:
    """A smooth grayscale sprite of one digit, cropped to its ink.

    height: glyph height in pixels (the ink is a little taller). thickness: threshold on the
    blurred glyph, in THICKNESS (lower is bolder). slant: shear, pixels of x per pixel of y.
    Returns float32 (h, w) in [0, 1], white ink on black.
    """
    glyph = np.array([[c == "#" for c in row] for row in GLYPHS[digit]], dtype=np.float32)
    field = np.pad(np.kron(glyph, np.ones((UPSAMPLE, UPSAMPLE), dtype=np.float32)), PAD)
    fh, fw = field.shape
    field = _blur_matrix(fh) @ field @ _blur_matrix(fw).T
    cells_per_px = 7 * UPSAMPLE / height
    canvas_h = int(np.ceil(fh / cells_per_px)) + 2
    canvas_w = int(np.ceil(fw / cells_per_px + abs(slant) * canvas_h)) + 2
    yr = (np.arange(canvas_h) + 0.5 - canvas_h / 2)[:, None]  # (h, 1), relative to the canvas center
    xr = (np.arange(canvas_w) + 0.5 - canvas_w / 2)[None, :]  # (1, w)
    value = sample_bilinear(field, yr * cells_per_px + fh / 2, (xr + slant * yr) * cells_per_px + fw / 2)
    ramp = 0.18 * cells_per_px  # about one pixel of anti-aliasing at the stroke edge
    ink = np.clip((value - thickness) / ramp + 0.5, 0.0, 1.0)
    rows, cols = np.nonzero(ink > 0.0)
    return ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def render_digits(cfg: DigitsConfig, seed: int) -> SyntheticClip:
    """Render one moving-digits clip, deterministic in `seed`.

    Returns a SyntheticClip with frames uint8 (T, R, R, 3), three equal channels, white on black.
    """
    rng = np.random.default_rng(seed)
    res, t = cfg.resolution, cfg.num_frames
    n = int(rng.integers(cfg.min_digits, cfg.max_digits + 1))
    digits = [int(d) for d in rng.integers(0, 10, n)]
    sprites = [
        digit_sprite(
            d, cfg.digit_size * res * rng.uniform(*SCALE), rng.uniform(*THICKNESS), rng.uniform(*SLANT)
        )
        for d in digits
    ]
    half = np.array([[s.shape[1] / 2, s.shape[0] / 2] for s in sprites])  # (N, 2) half-extents (x, y)
    start = rng.uniform(half, res - half)
    speeds = rng.uniform(cfg.min_speed, cfg.max_speed, n) * res
    angles = rng.uniform(0.0, 2.0 * np.pi, n)
    velocity = speeds[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    positions, events = bounce_in_box(start, velocity, half, res - half, t)

    gray = np.zeros((t, res, res), dtype=np.float32)
    grid = np.arange(res, dtype=np.float64) + 0.5
    for i, sprite in enumerate(sprites):
        corner = positions[:, i] - half[i]  # (T, 2) top-left of the sprite in the frame
        xs = grid[None, None, :] - corner[:, 0, None, None]  # (T, 1, W) in sprite coordinates
        ys = grid[None, :, None] - corner[:, 1, None, None]  # (T, H, 1)
        np.maximum(gray, sample_bilinear(sprite, ys, xs), out=gray)

    objects = [
        {
            "digit": digits[i],
            "size": [int(sprites[i].shape[1]), int(sprites[i].shape[0])],
            "positions": np.round(positions[:, i], 4).tolist(),
            "velocity0": np.round(velocity[i], 4).tolist(),
            "direction": direction_word(float(velocity[i, 0]), float(velocity[i, 1])),
        }
        for i in range(n)
    ]
    labels = {"dataset": "digits", "resolution": res, "num_frames": t, "objects": objects, "events": events}
    terse, descriptive = digits_captions(objects, events)
    frames = np.repeat(to_uint8(gray)[..., None], 3, axis=-1)
    return SyntheticClip(frames, terse, descriptive, labels)
