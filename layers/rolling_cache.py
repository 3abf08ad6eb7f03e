"""Keys and values for decoding [prefix | frame 0 | frame 1 | ...] with a rolling window of frames.

A sequence is ``[prefix | frame 0 | frame 1 | ...]`` as in ``masks.py``: ``prefix_len``
conditioning tokens (the caption) and frames of ``frame_tokens`` tokens. The prefix is stored
once. Frame tokens are stored once each; when the window is full the oldest frames leave (with
an anchor, the first stays and the oldest after it leaves) and the later ones move down, so
earlier frames are never encoded again.

RoPE is relative, so frame keys are kept *unrotated* and rotated by their current window
positions whenever the window changes: sliding costs elementwise work, never a network pass,
and new tokens always sit at the positions training saw. (Keys of deeper layers still carry
what a token saw when it was computed, including frames that have since left the window: the
cache equals re-encoding the window exactly only for one-block networks; see
``vtlm.diffusion.forcing`` and ``vtlm.gpt.stream``.)

Two views of one mechanism:

- :class:`RollingKV`, token by token and by position (as ``attention.KVCache``): a call writes
  its tokens at slots [start, start + n) and attends to every slot before them; ``roll`` drops
  frames. The GPT decodes through it (``vtlm.gpt.stream``).
- :class:`FrameKV`, chunk by chunk of whole frames, committed once each and rolled past a
  capacity (the frame-causal diffusion family, ``vtlm.diffusion.model``).

Layout: keys and values (B, H, N, D), preallocated once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .attention import Attention
from .basic import linear
from .masks import frame_causal_mask
from .rope import apply_rope


class RollingKV:
    """One attention layer's cache of [prefix | ``frames`` frame slots], written by position.

    Args:
        batch, heads, head_dim: the rows and heads it serves.
        prefix_len, frame_tokens: the layout.
        frames: frame slots (the window, including room for the frames being decoded).
        frame_rope: rotations (``rope_angles``) of the frame
            slots' positions, in slot order (t-major raster).
    """

    def __init__(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        prefix_len: int,
        frame_tokens: int,
        frames: int,
        frame_rope: torch.Tensor,
        dtype: torch.dtype,
        device,
    ):
        if frame_rope.shape[0] < frames * frame_tokens:
            raise ValueError(f"frame_rope: {frame_rope.shape[0]} rows, fewer than the window's frame tokens")
        self.prefix_len, self.frame_tokens, self.frame_rope = prefix_len, frame_tokens, frame_rope
        self.length = prefix_len + frames * frame_tokens
        shape = (batch, heads, self.length, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)  # rotated, ready for attention
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        # unrotated keys of the frame slots (the prefix never moves, so it is kept rotated only)
        self.raw = torch.zeros(batch, heads, frames * frame_tokens, head_dim, dtype=dtype, device=device)

    def attend(
        self,
        attn: Attention,
        x: torch.Tensor,
        rope: torch.Tensor,
        start: int,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention of ``attn`` for x (B, N, C) -> (B, N, C) at slots [start, start + N).

        ``rope``: the rotations (``rope_angles``) of those slots. The tokens are stored (unrotated
        keys kept for frame slots), then attend to every slot before ``start`` and among
        themselves causally (``attn.causal``) or fully; ``mask`` (N, start + N) bool replaces
        that rule. Slots past start + N, stale or empty, are never seen.
        """
        b, n, _ = x.shape
        end = start + n
        if end > self.length:
            raise ValueError(f"start: slots up to {end} beyond the cache's {self.length}")
        q, k, v = attn.project(x)
        self.keys[:b, :, start:end] = apply_rope(k, rope)
        self.values[:b, :, start:end] = v
        p = self.prefix_len
        if end > p:  # frame tokens: keep their unrotated keys for later rolls
            self.raw[:b, :, max(start, p) - p : end - p] = k[:, :, max(p - start, 0) :]
        causal = False
        if mask is None and attn.causal and n > 1:
            if start == 0:
                causal = True
            else:  # a block of new tokens: causal among themselves, after every stored slot
                rows = torch.arange(n, device=x.device)[:, None] + start
                mask = rows >= torch.arange(end, device=x.device)[None]
        y = F.scaled_dot_product_attention(
            apply_rope(q, rope),
            self.keys[:b, :, :end],
            self.values[:b, :, :end],
            attn_mask=mask,
            is_causal=causal,
        )
        return linear(y.transpose(1, 2).reshape(b, n, -1), attn.proj)

    def roll(self, first: int, drop: int, held: int) -> None:
        """Frames [first, first + drop) leave: the ``held`` frame tokens after them (a count of
        frame slots in use, a partial frame allowed) move down ``drop`` frames, and every held
        key is rotated by its new slot's position."""
        f, p = self.frame_tokens, self.prefix_len
        lo, gap = first * f, drop * f
        if drop < 1 or lo + gap > held:
            raise ValueError(f"drop: frames [{first}, {first + drop}) are not all held ({held} tokens)")
        self.raw[:, :, lo : held - gap] = self.raw[:, :, lo + gap : held].clone()
        self.values[:, :, p + lo : p + held - gap] = self.values[:, :, p + lo + gap : p + held].clone()
        held -= gap
        self.keys[:, :, p : p + held] = apply_rope(self.raw[:, :, :held], self.frame_rope[:held])


class FrameKV:
    """One attention layer's cache of [prefix | held frames | the chunk being decoded], chunk by
    chunk of whole frames (a :class:`RollingKV` underneath).

    Args:
        batch, heads, head_dim: the rows and heads it serves.
        prefix_len, frame_tokens: the layout.
        capacity: frames held at most between chunks (>= 1; >= 2 with ``anchor``).
        max_chunk: frames decoded together at most.
        anchor: keep the first frame when the window rolls.
        frame_rope: rotations (``rope_angles``) of the frame tokens
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
        self.prefix_len, self.frame_tokens = prefix_len, frame_tokens
        self.capacity, self.max_chunk, self.anchor = capacity, max_chunk, anchor
        self.kv = RollingKV(
            batch, heads, head_dim, prefix_len, frame_tokens, capacity + max_chunk, frame_rope, dtype, device
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
        frames (``rope``: their rotations); the chunk sees the prefix, every held frame,
        and itself frame-causally. ``write``: commit the chunk (hold it, then roll the window).
        """
        n = x.shape[1]
        if not self.has_prefix:
            if n != self.prefix_len:
                raise ValueError(f"x: the first call stores the prefix of {self.prefix_len} tokens, got {n}")
            self.has_prefix = True
            return self.kv.attend(attn, x, rope, 0)
        chunk, rest = divmod(n, self.frame_tokens)
        if rest or not 1 <= chunk <= self.max_chunk:
            raise ValueError(
                f"x: expected 1..{self.max_chunk} frames of {self.frame_tokens} tokens, got {n} tokens"
            )
        start = self.prefix_len + self.frames * self.frame_tokens
        mask = None
        if chunk > 1:  # frame-causal inside the chunk, everything before it visible
            seen = torch.ones(n, start, dtype=torch.bool, device=x.device)
            mask = torch.cat([seen, frame_causal_mask(0, self.frame_tokens, chunk, x.device)], dim=1)
        y = self.kv.attend(attn, x, rope, start, mask)
        if write:  # hold the chunk; past the capacity the oldest frames (after an anchor) leave
            self.frames += chunk
            drop = self.frames - self.capacity
            if drop > 0:
                self.kv.roll(1 if self.anchor else 0, drop, self.frames * self.frame_tokens)
                self.frames -= drop
        return y
