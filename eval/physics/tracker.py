"""Track the colored objects of a `shapes` video: segmentation by palette color, blobs, shapes.

A generated continuation can look right frame by frame and still break the scene's rules. Here
every object is found by its palette color, followed frame to frame, and compared with the true
continuation: where it is, whether it keeps its color and shape, whether it turns at the walls and
at other objects where the true clip does.

Coordinates are those of `vtlm.data.synthetic.clip`: pixels, x right, y down, pixel centers at
+0.5. Frames are uint8 (T, H, W, 3) RGB. One track per palette color: the built-in clips never
repeat a color, so a color is an object's identity.

Color model. A pixel at the edge of an object is a mix ``a * color + (1 - a) * gray`` (the
background is black or a dark gray texture). Removing each pixel's gray component leaves its
chroma, ``a`` times the chroma of the object's color whatever the gray: the hue (nearest palette
hue) says which color, the length relative to that color's chroma says the coverage ``a``. White
has no chroma; its coverage is read from the smallest channel above a mid-dark gray. A pixel
belongs to a color when its coverage reaches half the color's peak in that frame (at least
`min_alpha`), which tolerates the desaturation and blur of decoded video. An object is its
color's heaviest connected blob; its shape is the circle, square or triangle of equal area that
fits it best.

Scoring a generated continuation against the truth with these tracks is in `track_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vtlm.data.synthetic.render import circle_sdf, coverage, square_sdf, triangle_sdf
from vtlm.data.synthetic.shapes import COLOR_NAMES, PALETTE, SHAPES

# Area of each shape per squared bounding-disc radius (shapes are drawn inscribed in that disc).
AREA_PER_R2 = {"circle": math.pi, "square": 2.0, "triangle": 3.0 * math.sqrt(3.0) / 4.0}
EDGE_RAMPS = (1.0, 2.0)  # edge widths (px) tried per template: sharp as rendered, blurred as decoded
GRAY_LEVEL = 0.25  # white coverage is measured above this gray (textures span about 0.08 to 0.35)
# Orthonormal basis of the plane orthogonal to gray (1, 1, 1): RGB @ _CHROMA drops a pixel's gray part.
_CHROMA = np.array([[2.0, -1.0, -1.0], [0.0, 1.0, -1.0]]).T / np.array([math.sqrt(6.0), math.sqrt(2.0)])


def _check_frames(frames: np.ndarray) -> None:
    if not (
        isinstance(frames, np.ndarray)
        and frames.dtype == np.uint8
        and frames.ndim == 4
        and frames.shape[-1] == 3
    ):
        got = (getattr(frames, "dtype", type(frames)), getattr(frames, "shape", None))
        raise ValueError(f"frames: expected uint8 (T, H, W, 3), got {got}")


def _check_colors(colors: Sequence[str], palette: Sequence[str]) -> None:
    ok = set(palette) <= set(PALETTE) and set(colors) <= set(palette) and len(set(colors)) == len(colors)
    if not ok:
        raise ValueError(
            f"colors: expected distinct names from the palette {list(palette)}, got {list(colors)}"
        )


def color_coverage(
    frames: np.ndarray, colors: Sequence[str], palette: Sequence[str] = COLOR_NAMES
) -> np.ndarray:
    """Per-pixel coverage of each color: float32 (T, len(colors), H, W) in [0, 1].

    Each pixel goes to its nearest color in `palette` (by hue, or white) and counts only there:
    a color left out of `palette` gives its pixels to its neighbors in hue.
    """
    _check_frames(frames)
    palette = list(palette)
    _check_colors(colors, palette)
    rgb = frames.astype(np.float32) / 255.0
    chroma = rgb @ _CHROMA.astype(np.float32)  # (T, H, W, 2): the pixel with its gray part removed
    hues = [c for c in palette if c != "white"]
    ref = (np.array([PALETTE[c] for c in hues], dtype=np.float32) / 255.0) @ _CHROMA.astype(
        np.float32
    )  # (K, 2)
    proj = chroma @ ref.T  # (T, H, W, K)
    nearest = np.argmax(proj / np.linalg.norm(ref, axis=1), axis=-1)  # smallest hue angle
    alpha = np.take_along_axis(proj, nearest[..., None], -1)[..., 0] / (ref**2).sum(1)[nearest]
    index = np.array([palette.index(c) for c in hues])[nearest]
    if "white" in palette:
        white = (rgb.min(-1) - GRAY_LEVEL) / (1.0 - GRAY_LEVEL)
        index = np.where(white > alpha, palette.index("white"), index)
        alpha = np.maximum(alpha, white)
    alpha = np.clip(alpha, 0.0, 1.0)
    return np.stack([np.where(index == palette.index(c), alpha, 0.0) for c in colors], 1)


def _masks(alpha: np.ndarray, min_alpha: float) -> np.ndarray:
    """Coverage at least half the peak of its (frame, color), and at least min_alpha."""
    peak = alpha.max(axis=(-2, -1), keepdims=True)
    return alpha >= np.maximum(min_alpha, 0.5 * peak)


def segment_colors(
    frames: np.ndarray, colors: Sequence[str], palette: Sequence[str] = COLOR_NAMES, min_alpha: float = 0.3
) -> np.ndarray:
    """Pixels of each color: bool (T, len(colors), H, W) from uint8 (T, H, W, 3) RGB frames.

    A pixel is in a color's mask when that color is its nearest palette color and it is at least
    half covered (see the module docstring). Where two objects overlap (clips without collisions)
    the hidden one loses the covered pixels; its mask can even split in two.
    """
    return _masks(color_coverage(frames, colors, palette), min_alpha)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 binary dilation of a bool (..., H, W) stack."""
    h, w = mask.shape[-2:]
    pad = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)])
    out = np.zeros_like(mask)
    for dy in range(3):
        for dx in range(3):
            out |= pad[..., dy : dy + h, dx : dx + w]
    return out


def _main_blob(mask: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The heaviest 8-connected component of each mask in a bool (M, H, W) stack."""
    m, h, w = mask.shape
    none = h * w  # label of the background; a blob's label is the smallest pixel index in it
    label = np.where(mask, np.arange(none).reshape(1, h, w), none)
    rows = np.arange(m)[:, None]
    while True:
        pad = np.pad(label, ((0, 0), (1, 1), (1, 1)), constant_values=none)
        low = label.copy()
        for dy in range(3):
            for dx in range(3):
                np.minimum(low, pad[:, dy : dy + h, dx : dx + w], out=low)
        low = np.where(mask, low, none).reshape(m, none)
        lookup = np.concatenate([low, np.full((m, 1), none)], 1)
        low = lookup[rows, lookup[rows, low]].reshape(m, h, w)  # pointer jumping: follow labels twice
        if np.array_equal(low, label):
            break
        label = low
    flat = (np.arange(m)[:, None, None] * (none + 1) + label).ravel()
    mass = np.bincount(flat, weights=weight.ravel(), minlength=m * (none + 1)).reshape(m, none + 1)
    mass[:, none] = -1.0
    return mask & (label == mass.argmax(1)[:, None, None])


@dataclass
class Tracks:
    """One track per color over T frames of one clip (N = len(colors)).

    colors: palette names. size: (H, W) of the frames.
    present: bool (T, N), the color is visible with at least `min_area` px.
    centroid: float64 (T, N, 2), coverage-weighted center (x, y) in px; NaN where absent.
    area: float64 (T, N), covered area in px (sum of coverage over the object's blob); 0 where absent.
    shape_fit: float64 (T, N, 3), soft IoU of the blob with a circle, square and triangle of the
        same area at the centroid (order of SHAPES); NaN where absent.
    shape_guess: str (T, N), the best fitting shape, "" where absent.
    stray: float64 (T, N), share of the color's covered area outside its main blob (a split or
        smeared object); NaN where absent.
    radius: float64 (N,), bounding-disc radius (what the physics uses), estimated from area and
        shape; NaN for a color never seen.
    """

    colors: list[str]
    size: tuple[int, int]
    present: np.ndarray
    centroid: np.ndarray
    area: np.ndarray
    shape_fit: np.ndarray
    shape_guess: np.ndarray
    stray: np.ndarray
    radius: np.ndarray

    def overlap(self, radii: np.ndarray | None = None) -> np.ndarray:
        """bool (T, N): the object's bounding disc overlaps another's by more than half a pixel.

        Without collisions objects pass over each other and the lower one is partly hidden.
        """
        r = self.radius if radii is None else np.asarray(radii, dtype=np.float64)
        gap = np.linalg.norm(self.centroid[:, :, None] - self.centroid[:, None, :], axis=-1) - (
            r[:, None] + r
        )
        gap[:, np.arange(len(r)), np.arange(len(r))] = np.inf
        with np.errstate(invalid="ignore"):
            return (gap < -0.5).any(-1)


def _shape_fit(weight: np.ndarray, centroid: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Soft IoU (M, 3) of coverage maps (M, H, W) with equal-area shapes at the centroids (M, 2)."""
    h, w = weight.shape[-2:]
    dx = (np.arange(w) + 0.5)[None, None, :] - centroid[:, 0, None, None]  # (M, 1, W)
    dy = (np.arange(h) + 0.5)[None, :, None] - centroid[:, 1, None, None]  # (M, H, 1)
    size = np.sqrt(area)[:, None, None]
    templates = (
        circle_sdf(dx, dy, size / math.sqrt(AREA_PER_R2["circle"])),
        square_sdf(dx, dy, size / 2.0),
        triangle_sdf(dx, dy, size / math.sqrt(AREA_PER_R2["triangle"])),
    )
    fits = np.zeros((len(weight), 3))
    for k, sdf in enumerate(templates):
        for ramp in EDGE_RAMPS:
            tau = coverage(sdf / ramp)
            iou = np.minimum(weight, tau).sum((1, 2)) / np.maximum(weight, tau).sum((1, 2))
            fits[:, k] = np.maximum(fits[:, k], iou)
    return fits


def track(
    frames: np.ndarray,
    colors: Sequence[str],
    palette: Sequence[str] = COLOR_NAMES,
    min_alpha: float = 0.3,
    min_area: float = 2.0,
) -> Tracks:
    """Find each color's object in every frame of uint8 (T, H, W, 3) RGB frames.

    An object is the heaviest connected blob of its color's mask; its centroid and area weigh
    the coverage of that blob and the ring of pixels around it (the anti-aliased edge).
    """
    colors = list(colors)
    alpha = color_coverage(frames, colors, palette)  # (T, N, H, W)
    t, n, h, w = alpha.shape
    masks = _masks(alpha, min_alpha).reshape(t * n, h, w)
    flat = alpha.reshape(t * n, h, w)
    blob = _main_blob(masks, flat)
    weight = np.where(_dilate(blob), flat, 0.0)  # (M, H, W)
    area = weight.sum((1, 2))
    present = area >= min_area
    safe = np.where(present, area, 1.0)
    cx = weight.sum(1) @ (np.arange(w) + 0.5) / safe
    cy = weight.sum(2) @ (np.arange(h) + 0.5) / safe
    centroid = np.where(present[:, None], np.stack([cx, cy], 1), np.nan)
    fit = np.full((t * n, 3), np.nan)
    fit[present] = _shape_fit(weight[present], centroid[present], area[present])
    guess = np.where(present, np.array(SHAPES)[np.argmax(np.nan_to_num(fit, nan=-1.0), 1)], "")
    total = np.where(masks, flat, 0.0).sum((1, 2))
    stray = np.where(present, 1.0 - np.where(blob, flat, 0.0).sum((1, 2)) / np.maximum(total, 1e-9), np.nan)
    per_r2 = np.array([AREA_PER_R2.get(s, np.nan) for s in guess])
    with np.errstate(invalid="ignore"):
        radius = np.sqrt(np.where(present, area, np.nan) / per_r2).reshape(t, n)
    seen = present.reshape(t, n).any(0)
    radius[:, ~seen] = 0.0
    radius = np.where(seen, np.nanmedian(radius, 0), np.nan)
    return Tracks(
        colors=colors,
        size=(h, w),
        present=present.reshape(t, n),
        centroid=centroid.reshape(t, n, 2),
        area=np.where(present, area, 0.0).reshape(t, n),
        shape_fit=fit.reshape(t, n, 3),
        shape_guess=guess.reshape(t, n),
        stray=stray.reshape(t, n),
        radius=radius,
    )


def reference_from_labels(labels: dict) -> Tracks:
    """Exact tracks of a `shapes` clip from its labels (positions, radii, shapes: no pixels read)."""
    if labels.get("dataset") != "shapes":
        raise ValueError(
            f"labels: expected the labels of a 'shapes' clip, got dataset {labels.get('dataset')!r}"
        )
    objects = labels["objects"]
    t, n, res = labels["num_frames"], len(objects), labels["resolution"]
    radius = np.array([o["radius"] for o in objects], dtype=np.float64)
    shapes = [o["shape"] for o in objects]
    centroid = (
        np.array([o["positions"] for o in objects], dtype=np.float64).reshape(n, t, 2).transpose(1, 0, 2)
    )
    area = np.array([AREA_PER_R2[s] for s in shapes]) * radius**2
    return Tracks(
        colors=[o["color"] for o in objects],
        size=(res, res),
        present=np.ones((t, n), dtype=bool),
        centroid=centroid,
        area=np.broadcast_to(area, (t, n)).copy(),
        shape_fit=np.broadcast_to(np.eye(3)[[SHAPES.index(s) for s in shapes]], (t, n, 3)).copy(),
        shape_guess=np.broadcast_to(np.array(shapes), (t, n)).copy(),
        stray=np.zeros((t, n)),
        radius=radius,
    )
