"""Rotary position embeddings: 1-D for text, factorized 3-D (t, h, w) for video tokens.

A position is a vector of three integers per token, (t, h, w). Text tokens sit on the
diagonal (p, p, p), so with the 3-D split every head dimension pair rotates by the same
angle as in 1-D RoPE; video tokens use their latent frame, row and column offset by the text
length, so video positions start after the text. With ``kind="1d"`` every token uses its
index in the sequence (the ablation). The head dimension is split between t, h and w in
pairs: t gets the remainder.
"""

from __future__ import annotations

import functools

import torch


def rope_dims(head_dim: int, kind: str) -> tuple[int, int, int]:
    """How many rotary dimensions (even) go to (t, h, w)."""
    if head_dim % 2:
        raise ValueError(f"head_dim: expected an even number for RoPE, got {head_dim}")
    if kind == "1d":
        return head_dim, 0, 0
    pairs = head_dim // 2
    h = w = pairs // 3
    return 2 * (pairs - h - w), 2 * h, 2 * w


def rope_angles(
    positions: torch.Tensor, head_dim: int, kind: str, base: float = 10000.0, real: bool | None = None
) -> torch.Tensor:
    """Rotations e^(i theta) of ``positions`` (N, 3) int (t, h, w), angles computed in float64,
    in one of two forms that ``apply_rope`` takes:

    - complex: (N, head_dim // 2) complex64, one per pair of dimensions; eager code rotates a
      tensor with one complex multiply;
    - real (``real``, by default when ``torch.compile`` or ``torch.export`` traces): (N, 2,
      head_dim) float32, row 0 the cosines and row 1 the sines of each pair's angle, repeated
      over the pair's two dimensions, the sine negated on the first; inductor fuses this
      arithmetic into its kernels, while each complex operator would stay one library call.

    kind "1d": only the first coordinate is used, over all dimensions; "3d": t, h, w each
    rotate their own share of the dimensions.
    """
    table = torch.tensor(_frequency_table(head_dim, kind, base), dtype=torch.float64, device=positions.device)
    theta = positions.double() @ table  # (N, head_dim // 2)
    if real is None:
        real = torch.compiler.is_compiling() or torch.compiler.is_exporting()
    if not real:
        return torch.polar(torch.ones_like(theta), theta).to(torch.complex64)
    theta = theta.repeat_interleave(2, dim=-1)  # (N, head_dim)
    sign = torch.tensor([-1.0, 1.0], dtype=torch.float64, device=positions.device).repeat(head_dim // 2)
    return torch.stack([theta.cos(), theta.sin() * sign], dim=1).float()


@functools.lru_cache(maxsize=16)
def _frequency_table(head_dim: int, kind: str, base: float) -> tuple[tuple[float, ...], ...]:
    """3 rows of head_dim // 2 frequencies: row a holds axis a's in the columns of its pairs and
    zeros elsewhere, so positions (N, 3) @ the table are the angles, each a single exact
    product. Numbers, not a tensor: a tensor cached while ``torch.export`` traces would be fake."""
    rows, column = [[0.0] * (head_dim // 2) for _ in range(3)], 0
    for axis, dim in enumerate(rope_dims(head_dim, kind)):
        for pair in range(dim // 2):
            rows[axis][column + pair] = base ** (-2 * pair / dim)
        column += dim // 2
    return tuple(tuple(row) for row in rows)


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (a, b) = (x[2i], x[2i+1]) of x (..., N, D) (e.g. (B, H, N, D), or q and k
    stacked, (2, B, H, N, D)) by ``rotation`` from ``rope_angles``, in float32: a + ib times
    e^(i theta), that is (a cos - b sin, b cos + a sin). Complex rotations (N, D // 2) multiply
    the pairs as complex numbers; real ones (N, 2, D) compute x * cos + (b, a) * (-sin, sin)."""
    x32 = x if x.dtype == torch.float32 else x.float()
    if rotation.is_complex():
        pairs = x32.unflatten(-1, (-1, 2))
        if pairs.stride(-1) != 1 or any(s % 2 for s in pairs.stride()[:-1]):
            pairs = pairs.contiguous()  # view_as_complex needs (re, im) adjacent
        y = torch.view_as_real(torch.view_as_complex(pairs) * rotation).flatten(-2)
        return y if y.dtype == x.dtype else y.to(x.dtype)
    cos, sin = rotation.unbind(1)
    swapped = x32.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    y = torch.addcmul(x32 * cos, swapped, sin)
    return y if y.dtype == x.dtype else y.to(x.dtype)
