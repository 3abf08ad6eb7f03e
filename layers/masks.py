"""Attention masks shared by the frame-causal families (frame-causal diffusion, masked decoding).

A sequence is ``[prefix | frame 0 | frame 1 | ...]``: ``prefix_len`` conditioning tokens (the
caption, with its specials) and ``frames`` latent frames of ``frame_tokens`` tokens each. In a
*frame-causal* layout a token sees the whole prefix and every token of its own and earlier
frames: bidirectional inside a frame, causal across frames. The prefix sees only itself, so a
frame's output never depends on a later frame.

Masks are boolean, True where a query may attend to a key (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import torch


def token_frames(prefix_len: int, frame_tokens: int, frames: int, device=None) -> torch.Tensor:
    """(prefix_len + frames * frame_tokens,) int: -1 for prefix tokens, else the token's frame."""
    prefix = torch.full((prefix_len,), -1, dtype=torch.long, device=device)
    video = torch.arange(frames, device=device).repeat_interleave(frame_tokens)
    return torch.cat([prefix, video])


def frame_causal_mask(prefix_len: int, frame_tokens: int, frames: int, device=None) -> torch.Tensor:
    """(N, N) bool with N = prefix_len + frames * frame_tokens: query i may see key j when j is
    in the prefix or in a frame at or before i's frame (prefix queries see the prefix only).
    Decoding with a KV cache needs no mask: a new frame sees every cached key and itself.
    """
    frame = token_frames(prefix_len, frame_tokens, frames, device)
    query, key = frame[:, None], frame[None, :]
    return (key < 0) | ((query >= 0) & (key <= query))
