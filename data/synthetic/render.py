"""Rasterization helpers for the procedural datasets, vectorized over frames.

Coordinates are continuous pixel coordinates (see `clip.py`): x right, y down, the center of the
pixel in row i, column j is (j + 0.5, i + 0.5). Signed distances are in pixels, negative inside.
Every function works on whole (T, H, W) stacks with numpy broadcasting; no per-pixel loops.
"""

import numpy as np

SQRT3_2 = float(np.sqrt(3.0) / 2.0)


def pixel_offsets(centers: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets from per-frame centers to the pixel centers of a size x size frame.

    centers: float (T, 2), (x, y) per frame.
    Returns dx, float32 (T, 1, W), and dy, float32 (T, H, 1); they broadcast to (T, H, W).
    """
    grid = np.arange(size, dtype=np.float32) + 0.5
    c = centers.astype(np.float32)
    return grid[None, None, :] - c[:, 0, None, None], grid[None, :, None] - c[:, 1, None, None]


def circle_sdf(dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance to a circle of `radius` pixels around the origin of (dx, dy)."""
    return np.sqrt(dx * dx + dy * dy) - radius


def square_sdf(dx: np.ndarray, dy: np.ndarray, half_side: float) -> np.ndarray:
    """Signed distance (exact inside, Chebyshev outside) to an axis-aligned square."""
    return np.maximum(np.abs(dx), np.abs(dy)) - half_side


def triangle_sdf(dx: np.ndarray, dy: np.ndarray, circumradius: float) -> np.ndarray:
    """Signed distance (max of edge planes) to an equilateral triangle pointing up (y down).

    The origin is the triangle's center: apex at (0, -r), base at y = r / 2, inradius r / 2.
    """
    inradius = 0.5 * circumradius
    base = dy - inradius
    right = SQRT3_2 * dx - 0.5 * dy - inradius
    left = -SQRT3_2 * dx - 0.5 * dy - inradius
    return np.maximum(base, np.maximum(right, left))


def coverage(sdf: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] from a signed distance: a one-pixel linear ramp at the edge.

    Pixels whose center is at least half a pixel inside get exactly 1, so their color is exact.
    """
    return np.clip(0.5 - sdf, 0.0, 1.0)


def sample_bilinear(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a 2-D image at continuous points, zero outside the image.

    image: float (h, w). ys, xs: float arrays that broadcast together, in the image's pixel
    coordinates (pixel centers at +0.5). Returns float32 of the broadcast shape.
    """
    h, w = image.shape
    u = np.asarray(xs, dtype=np.float64) - 0.5
    v = np.asarray(ys, dtype=np.float64) - 0.5
    j0, i0 = np.floor(u), np.floor(v)
    fu, fv = (u - j0).astype(np.float32), (v - i0).astype(np.float32)
    j0, i0 = j0.astype(np.int64), i0.astype(np.int64)
    out = 0.0
    for di, wv in ((0, 1.0 - fv), (1, fv)):
        rows = i0 + di
        wv = wv * ((rows >= 0) & (rows < h))
        rows = np.clip(rows, 0, h - 1)
        for dj, wu in ((0, 1.0 - fu), (1, fu)):
            cols = j0 + dj
            wu = wu * ((cols >= 0) & (cols < w))
            out = out + wv * wu * image[rows, np.clip(cols, 0, w - 1)]
    return np.asarray(out, dtype=np.float32)


def smooth_texture(rng: np.random.Generator, size: int, scale: float, num_waves: int = 6) -> np.ndarray:
    """A smooth, dark, low-contrast gray texture: a sum of random plane waves, rescaled.

    size: side of the square texture in pixels. scale: length in pixels that holds 1 to 4 periods
    of each wave (pass the frame resolution so the look does not depend on the texture's size).
    Returns float32 (size, size) with min drawn in [0.08, 0.14] and max in [0.26, 0.35], dark
    enough that saturated object colors stay separable by color.
    """
    coords = np.arange(size, dtype=np.float32) + 0.5
    angles = rng.uniform(0.0, 2.0 * np.pi, num_waves)
    freqs = rng.uniform(1.0, 4.0, num_waves) * 2.0 * np.pi / scale  # radians per pixel
    phases = rng.uniform(0.0, 2.0 * np.pi, num_waves)
    amps = rng.uniform(0.5, 1.0, num_waves)
    field = np.zeros((size, size), dtype=np.float32)
    for a, f, p, amp in zip(angles, freqs, phases, amps):
        wave_x = np.float32(f * np.cos(a)) * coords
        wave_y = np.float32(f * np.sin(a)) * coords
        field += np.float32(amp) * np.sin(wave_y[:, None] + wave_x[None, :] + np.float32(p))
    lo, hi = rng.uniform(0.08, 0.14), rng.uniform(0.26, 0.35)
    field -= field.min()
    field *= np.float32((hi - lo) / max(float(field.max()), 1e-6))
    return field + np.float32(lo)


def pan_crop(texture: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """Views of a larger texture through a moving size x size window, with sub-pixel shifts.

    texture: float (S, S). offsets: float (T, 2), (x, y) of each view's top-left corner in texture
    pixels; the window must stay inside the texture (S >= size + max offset).
    Returns float32 (T, size, size), bilinearly interpolated.
    """
    grid = np.arange(size, dtype=np.float64) + 0.5
    xs = offsets[:, 0, None, None] + grid[None, None, :]  # (T, 1, W)
    ys = offsets[:, 1, None, None] + grid[None, :, None]  # (T, H, 1)
    return sample_bilinear(texture, ys, xs)


def composite(frames: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> None:
    """Paint a flat color over frames in place: frames = frames * (1 - alpha) + color * alpha.

    frames: float32 (T, H, W, 3). alpha: float32 (T, H, W) in [0, 1]. color: float32 (3,) in [0, 1].
    """
    frames += alpha[..., None] * (color - frames)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] to uint8 0..255 (rounded, clipped)."""
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
