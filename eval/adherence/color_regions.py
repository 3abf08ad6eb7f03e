"""Where each palette color is in a shapes video: soft color assignment, centroids, crops.

The attribute classifier's front end (``vtlm.eval.adherence.classifier``): every pixel is
softly assigned to a palette color or the background; each color's centroid per frame is found
from that assignment; and a window around each centroid is cut out for the shape and size heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtlm.data.synthetic.shapes import COLOR_NAMES, PALETTE

PALETTE_RGB = torch.tensor([PALETTE[c] for c in COLOR_NAMES], dtype=torch.float32) / 255.0  # (8, 3)
# Backgrounds are black or gray textures in [0.08, 0.35] (see render.smooth_texture): grays 0 to 0.4.
BACKGROUND_GRAYS = (0.0, 0.1, 0.2, 0.3, 0.4)
HALO_GRAY = 0.2  # a typical background gray, for the partly covered edge prototypes
# Coverages of the edge prototypes. 0.75 catches the soft edges of blurred objects (a tokenizer's
# reconstructions), which otherwise can fall nearer another color's half-covered edge: the soft
# edge (0.78, 0.48, 0.12) of a slightly shifted orange is nearer half of yellow than half of
# orange or orange itself. Lower coverages would take in the gray background texture.
HALOS = (0.75, 0.5)
SHARPNESS = 50.0  # softmax of -SHARPNESS * squared RGB distance: 0.5 in a tie, ~1 a bit off it


def palette_affinity(videos: torch.Tensor) -> torch.Tensor:
    """Soft assignment of every pixel to the palette colors or the background.

    videos: (B, 3, T, H, W) float in [-1, 1]. Returns (B, NUM_COLORS + 1, T, H, W) in [0, 1],
    summing to 1 over dim 1: a softmax of -SHARPNESS * squared RGB distance to prototypes. A
    color's channel sums three: the color, and the color blended into HALO_GRAY at the HALOS
    coverages (anti-aliased or blurred edges, which would otherwise look like another color: a
    yellow edge like dark orange); the last channel, the background, sums the BACKGROUND_GRAYS.
    Colors slightly shifted or blurred still get most of their pixels' affinity, but spill some
    into near palette colors (orange into yellow): the classifier tells the two apart by each
    channel's purity, not by whether it has any mass.
    """
    b, _, t, h, w = videos.shape
    rgb = ((videos.float() + 1) / 2).clamp(0, 1).reshape(b, 3, t * h * w)  # (B, 3, N)
    k, grays = len(COLOR_NAMES), len(BACKGROUND_GRAYS)
    palette = PALETTE_RGB.to(rgb.device)
    background = torch.tensor(BACKGROUND_GRAYS, device=rgb.device)[:, None].expand(grays, 3)
    edges = [h * palette + (1 - h) * HALO_GRAY for h in HALOS]
    prototypes = torch.cat([palette, *edges, background])  # (P, 3)
    # -SHARPNESS |rgb - p|^2 = SHARPNESS (2 p.rgb - |p|^2 - |rgb|^2) <= 0, so exp never overflows
    offset = (prototypes**2).sum(1)[:, None] + (rgb * rgb).sum(1, keepdim=True)  # (B, P, N) by broadcasting
    soft = torch.baddbmm(
        offset, prototypes.expand(b, -1, -1), rgb, beta=-SHARPNESS, alpha=2 * SHARPNESS
    ).exp_()
    merge = torch.zeros(k + 1, len(prototypes), device=rgb.device)  # a color and its edges; all grays
    for j in range(1 + len(HALOS)):
        merge[torch.arange(k), torch.arange(j * k, (j + 1) * k)] = 1
    merge[k, (1 + len(HALOS)) * k :] = 1
    out = merge @ soft  # (B, k + 1, N)
    out /= out.sum(1, keepdim=True)
    return out.view(b, k + 1, t, h, w)


def color_centroids(affinity: torch.Tensor, reach: float, rounds: int = 1) -> torch.Tensor:
    """Centroid (x, y) in pixels of each palette color in each frame: (B, NUM_COLORS, T, 2).

    affinity: (B, NUM_COLORS, T, R, R) from palette_affinity (background channel dropped). The
    affinity-weighted mean position is refined ``rounds`` times using only the pixels within
    ``reach`` px (per axis) of the previous estimate, so stray pixels of the color elsewhere
    (the edges of another object) do not pull it far. A frame holding under half a pixel of a
    color gives the frame's center for it.
    """
    r = affinity.shape[-1]
    coords = torch.arange(r, dtype=affinity.dtype, device=affinity.device) + 0.5
    near_x = near_y = torch.ones(affinity.shape[:-1], dtype=affinity.dtype, device=affinity.device)
    for i in range(rounds + 1):
        cols = torch.einsum("bktyx,bkty->bktx", affinity, near_y) * near_x  # (B, k, T, R): mass per column
        rows = torch.einsum("bktyx,bktx->bkty", affinity, near_x) * near_y  # mass per row
        mass = cols.sum(-1, keepdim=True)  # (B, k, T, 1)
        center = torch.stack([(cols * coords).sum(-1), (rows * coords).sum(-1)], -1) / mass.clamp_min(1e-6)
        center = torch.where(mass > 0.5, center, r / 2)  # (B, k, T, 2)
        if i < rounds:  # keep the pixels within reach of this estimate, per axis
            near_x = ((coords - center[..., :1]).abs() <= reach).to(affinity.dtype)
            near_y = ((coords - center[..., 1:]).abs() <= reach).to(affinity.dtype)
    return center


def color_crops(videos: torch.Tensor, centers: torch.Tensor, side: int) -> torch.Tensor:
    """Per palette color and frame, the side x side pixels around that color's centroid.

    videos: (B, C, T, R, R) float; centers: (B, NUM_COLORS, T, 2) from color_centroids. The
    window's corner is the centroid minus side / 2, rounded to whole pixels (no resampling);
    pixels outside the frame are 0. Returns (B, NUM_COLORS, C, T, side, side).
    """
    b, c, t, r, _ = videos.shape
    k = centers.shape[1]
    corner = torch.round(centers - side / 2).long().clamp(-side, r) + side  # in the padded frame
    span = torch.arange(side, device=videos.device)
    rows, cols = corner[..., 1:] + span, corner[..., :1] + span  # (B, k, T, side) each
    width = r + 2 * side
    index = (rows[..., :, None] * width + cols[..., None, :]).flatten(3)  # (B, k, T, side^2)
    flat = F.pad(videos, (side, side, side, side)).flatten(3)  # (B, C, T, width^2)
    crops = torch.gather(
        flat[:, None].expand(b, k, c, t, width * width), 4, index[:, :, None].expand(b, k, c, t, side * side)
    )
    return crops.view(b, k, c, t, side, side)
