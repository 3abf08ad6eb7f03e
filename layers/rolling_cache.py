"""Keys and values for frame-by-frame decoding, with a rolling window of frames.

A sequence is ``[prefix | frame 0 | frame 1 | ...]`` as in ``masks.py``: ``prefix_len``
conditioning tokens (the caption) and frames of ``frame_tokens`` tokens. The prefix is stored
once. Frames are *committed* (stored) once each, after which a new chunk of frames attends to
the prefix, every held frame and itself (frame-causal inside the chunk), so earlier frames are
never encoded again. When more than ``capacity`` frames are held, the oldest leave; with
``anchor`` the first frame stays and the oldest after it leaves.

RoPE is relative, so frame keys are kept *unrotated* and rotated by their current window
positions (0 .. held - 1) whenever the window changes: sliding costs elementwise work, never a
network pass, and new frames always sit at the positions training saw. (Keys of deeper layers
still carry what a frame saw when it was committed, including frames that have since left the
window: the cache equals re-encoding the window exactly only for one-block networks; see
``vtlm.diffusion.forcing``.)

Layout: keys and values (B, H, N, D), preallocated once for ``capacity + max_chunk`` frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import Attention
from .basic import linear
from .masks import frame_causal_mask
from .rope import apply_rope


class FrameKV:
    """One attention layer's cache of [prefix | held frames | the chunk being decoded].

    Args:
        batch, heads, head_dim: the rows and heads it serves.
        prefix_len, frame_tokens: the layout.
        capacity: frames held at most between chunks (>= 1; >= 2 with ``anchor``).
        max_chunk: frames decoded together at most.
        anchor: keep the first frame when the window rolls.
        frame_rope: rotations (frames * frame_tokens, head_dim // 2) complex of the frame tokens
            at window positions 0 .. capacity + max_chunk - 1, in order.
    """

    def __init__(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        prefix_len: int,
        frame_tokens: int,
        capacity: int,
        max_chunk: int,
        anchor: bool,
        frame_rope: torch.Tensor,
        dtype: torch.dtype,
        device,
    ):
        if capacity < (2 if anchor else 1) or max_chunk < 1:
            raise ValueError(
                f"capacity, max_chunk: expected >= {2 if anchor else 1} held frames and a chunk >= 1, got {capacity}, {max_chunk}"
            )
        if frame_rope.shape[0] < (capacity + max_chunk) * frame_tokens:
            raise ValueError(f"frame_rope: {frame_rope.shape[0]} rows, fewer than the window's frame tokens")
        self.prefix_len, self.frame_tokens = prefix_len, frame_tokens
        self.capacity, self.max_chunk, self.anchor = capacity, max_chunk, anchor
        self.frame_rope = frame_rope
        length = prefix_len + (capacity + max_chunk) * frame_tokens
        shape = (batch, heads, length, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)  # rotated, ready for attention
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        # unrotated keys of the frames (the prefix never moves, so it is kept rotated only)
        self.raw = torch.zeros(
            batch, heads, (capacity + max_chunk) * frame_tokens, head_dim, dtype=dtype, device=device
        )
        self.frames = 0  # frames held
        self.has_prefix = False

    def reset(self) -> None:
        """Forget the prefix and every frame (the buffers stay allocated)."""
        self.frames, self.has_prefix = 0, False

    def attend(self, attn: Attention, x: torch.Tensor, rope: torch.Tensor, write: bool) -> torch.Tensor:
        """Attention of ``attn`` for x (B, N, C) -> (B, N, C), through the cache.

        The first call after a reset takes the prefix (N = prefix_len; it sees only itself) and
        stores it. Later calls take a chunk of c whole frames at window positions after the held
        frames (``rope``: their rotations (N, D // 2)); the chunk sees the prefix, every held frame,
        and itself frame-causally. ``write``: commit the chunk (store it, then roll the window).
        """
        b, n, _ = x.shape
        q, k, v = linear(x, attn.qkv).view(b, n, 3, attn.heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        if not self.has_prefix:
            if n != self.prefix_len:
                raise ValueError(f"x: the first call stores the prefix of {self.prefix_len} tokens, got {n}")
            self.keys[:b, :, :n] = apply_rope(k, rope)
            self.values[:b, :, :n] = v
            self.has_prefix = True
            y = F.scaled_dot_product_attention(apply_rope(q, rope), self.keys[:b, :, :n], v)
            return linear(y.transpose(1, 2).reshape(b, n, -1), attn.proj)
        chunk, rest = divmod(n, self.frame_tokens)
        if rest or not 1 <= chunk <= self.max_chunk:
            raise ValueError(
                f"x: expected 1..{self.max_chunk} frames of {self.frame_tokens} tokens, got {n} tokens"
            )
        start = self.prefix_len + self.frames * self.frame_tokens
        end = start + n
        self.keys[:b, :, start:end] = apply_rope(k, rope)
        self.values[:b, :, start:end] = v
        mask = None
        if chunk > 1:  # frame-causal inside the chunk, everything before it visible
            seen = torch.ones(n, start, dtype=torch.bool, device=x.device)
            mask = torch.cat([seen, frame_causal_mask(0, self.frame_tokens, chunk, x.device)], dim=1)
        y = F.scaled_dot_product_attention(
            apply_rope(q, rope), self.keys[:b, :, :end], self.values[:b, :, :end], attn_mask=mask
        )
        if write:
            self._commit(k, chunk)
        return linear(y.transpose(1, 2).reshape(b, n, -1), attn.proj)

    def _commit(self, k: torch.Tensor, chunk: int) -> None:
        """Hold the chunk just attended (its unrotated keys ``k``; values already in place), drop
        the oldest frames past the capacity, and rotate the held keys by their new positions."""
        f, p = self.frame_tokens, self.prefix_len
        b = k.shape[0]
        self.raw[:b, :, self.frames * f : (self.frames + chunk) * f] = k
        self.frames += chunk
        drop = self.frames - self.capacity
        if drop > 0:  # frames [first, first + drop) leave; later ones move down
            first, held = (1 if self.anchor else 0) * f, self.frames * f
            gap = drop * f
            self.raw[:, :, first : held - gap] = self.raw[:, :, first + gap : held].clone()
            self.values[:, :, p + first : p + held - gap] = self.values[
                :, :, p + first + gap : p + held
            ].clone()
            self.frames -= drop
        held = self.frames * f
        self.keys[:b, :, p : p + held] = apply_rope(self.raw[:b, :, :held], self.frame_rope[:held])
