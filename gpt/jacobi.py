"""Speculative Jacobi decoding: several tokens per network call, the model's distribution kept.

Each call feeds the last decided token and ``jacobi_window - 1`` guesses of the tokens after it
in one cached forward (causal among themselves), which gives the model's distribution at every
guessed position given the guesses before it. The guesses are verified in order
(:func:`vtlm.gpt.choice.speculate`): the longest accepted run is kept, plus one code the model
draws itself, so a call decides between 1 and ``jacobi_window`` tokens. Greedy decoding gives
exactly the greedy tokens; sampling keeps the model's distribution.

Guesses: video is redundant in time, so a token is guessed as the one at the same place in the
latest decided latent frame (a context frame counts). Tokens with no earlier frame (the first
frame of a clip from text) take what the previous call predicted for them, or repeat the last
decided token before that.

The cache is positional: a call writes its tokens at their slots, the next starts at the first
undecided token and overwrites what was guessed there, and slots past a call are never seen.
"""

from __future__ import annotations

import torch

from .choice import choose, speculate
from .stream import Stream


def guesses(seq: torch.Tensor, drafts: torch.Tensor, n: int, k: int, frame_tokens: int) -> torch.Tensor:
    """Guesses (B, k - 1) of the tokens at n + 1 .. n + k - 1, when tokens 0 .. n of ``seq``
    (B, L) are decided; ``drafts`` (B, L): earlier predictions, -1 where none."""
    if k - 1 <= frame_tokens <= n + 1:  # every guess from the frame before it, all decided
        return seq[:, n + 1 - frame_tokens : n + k - frame_tokens]
    positions = range(n + 1, n + k)
    # the same place in the latest decided frame: i - q * f for the smallest q reaching <= n
    sources = [i - frame_tokens * -(-(i - n) // frame_tokens) for i in positions]
    out = seq[:, [max(s, 0) for s in sources]]
    if min(sources) < 0:
        earlier = drafts[:, list(positions)]
        earlier = torch.where(earlier >= 0, earlier, seq[:, n : n + 1])
        no_frame = torch.tensor([s < 0 for s in sources], device=seq.device)
        out = torch.where(no_frame, earlier, out)
    return out


def decode_jacobi(stream: Stream, context: torch.Tensor, new_frames: int, cfg, generator) -> torch.Tensor:
    """Decode ``new_frames`` latent frames after ``context`` (B, t0, h, w) -> (B, new_frames, h, w),
    up to ``cfg.jacobi_window`` tokens per network call (``cfg``: a ``SamplingConfig``)."""
    b, t0, h, w = context.shape
    f = h * w
    first, total = t0 * f, (t0 + new_frames) * f
    seq = torch.zeros(b, total, dtype=torch.long, device=stream.prefix.device)
    seq[:, :first] = context.reshape(b, -1)
    drafts = torch.full_like(seq, -1)
    seq[:, first] = choose(stream.start(context, new_frames), cfg, generator)
    n = first  # the last decided token; it is fed next
    while n < total - 1:
        k = min(cfg.jacobi_window, stream.room(n))
        block = seq[:, n : n + k].clone()
        if k > 1:
            block[:, 1:] = guesses(seq, drafts, n, k, f)
        logits = stream.feed(block, n)  # (B, k, codebook): row j is the token at n + 1 + j
        run, code = speculate(logits, block[:, 1:], cfg, generator)
        seq[:, n + 1 : n + 1 + run] = block[:, 1 : 1 + run]
        seq[:, n + 1 + run] = code
        if run + 1 < k and n + run + 2 < f:  # no earlier frame there: next call's drafts are
            # what the model now expects past the first rejection
            drafts[:, n + run + 2 : n + k + 1] = logits[:, run + 1 :].argmax(dim=-1)
        n += run + 1
    return seq[:, first:].view(b, new_frames, h, w)
