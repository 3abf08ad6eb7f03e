"""Spatially parallel decoding (ZipAR / diagonal decoding): the next row starts before this one ends.

Video is local in space and redundant in time: a token depends most on its neighbours above
and to the left, little on the far end of the row above it. So the rows of latent tokens (all
rows of the new frames, frame after frame) run staggered: row R starts ``lag`` network calls
after row R - 1 (the first row of a frame after the last row of the previous frame), and each
call decides one token of every running row. Token (R, c) is decided at step R * lag + c:
a clip of ``rows`` rows of ``w`` tokens takes (rows - 1) * lag + w calls instead of rows * w.
``lag = w`` is raster order, one token per call: exactly the plain sampler. ``lag = 1`` decodes
along diagonals that also cross into the next frame (diagonal decoding). No retraining: the
network is the causal GPT, and what it misses is the end of the rows above, not yet decided.

How a token sees: the cache holds tokens in the order they were decided, each with its (t, h,
w) position; a token attends to the caption, the context and every decided token before it in
raster order (as in training), never to one after it. A row's first token is predicted, as in
training, by the output at the end of the row above, which is not decided yet when the row
starts early: a stand-in is fed there (the token at that place one latent frame earlier, else
the latest decided token of that row) that no other token attends to.
"""

from __future__ import annotations

import torch

from .choice import choose
from .stream import Stream

HIDDEN = 1 << 40  # the raster index of a stand-in's slot: after every query, so never attended to


def parallel_calls(frames: int, grid_h: int, grid_w: int, lag: int) -> int:
    """Network calls to decode ``frames`` latent frames in one window at ``lag`` (the prefill
    included): (rows - 1) * lag + w."""
    return (frames * grid_h - 1) * min(lag, grid_w) + grid_w


def decode_parallel(stream: Stream, context: torch.Tensor, new_frames: int, cfg, generator) -> torch.Tensor:
    """Decode ``new_frames`` latent frames after ``context`` (B, t0, h, w) -> (B, new_frames, h, w),
    the rows staggered by ``cfg.row_lag`` calls (``cfg``: a ``SamplingConfig``; a lag above the
    row width is the row width). ``stream`` needs a spare cache slot per row of the window."""
    b, t0, h, w = context.shape
    f, lag, rows = h * w, min(cfg.row_lag, w), new_frames * h
    first = t0 * f  # token indices: raster order over context and new frames, from 0
    seq = torch.zeros(b, first + rows * w, dtype=torch.long, device=stream.prefix.device)
    seq[:, :first] = context.reshape(b, -1)
    prefix_len = stream.prefix.shape[1]
    start = prefix_len + first  # the next free cache slot
    # the token index each cache slot holds; -1 (caption, context): seen by all; HIDDEN: none
    held = torch.full((start + 2 * rows * w,), HIDDEN, dtype=torch.long, device=seq.device)
    held[:start] = -1
    seq[:, first] = choose(stream.start(context, new_frames), cfg, generator)

    def step_of(index: int) -> int:
        """The step a new token is decided at."""
        row, column = divmod(index - first, w)
        return row * lag + column

    for step in range(1, (rows - 1) * lag + w):
        fed, targets, stand_ins = [], [], []  # token indices fed; what their outputs decide
        for row in range(rows):  # the token each running row decided at the step before
            column = step - 1 - row * lag
            if 0 <= column < w:
                fed.append(first + row * w + column)
                after = fed[-1] + 1  # its output predicts the next token in raster order
                targets.append(after if after < seq.shape[1] and step_of(after) == step else None)
        row = step // lag
        if lag < w and step % lag == 0 and row < rows:  # the row starts before the one above ends
            index = first + row * w - 1  # the end of the row above, not decided yet
            fed.append(index)
            targets.append(index + 1)
            stand_ins.append(index)
        order = sorted(range(len(fed)), key=fed.__getitem__)
        fed, targets = [fed[i] for i in order], [targets[i] for i in order]
        n, end = len(fed), start + len(fed)
        index = torch.tensor(fed, device=seq.device)
        codes = seq[:, index]
        for stand_in in stand_ins:
            codes[:, fed.index(stand_in)] = seq[
                :, _stand_in_source(stand_in, first, f, w, lag, step, step_of)
            ]
        held[start:end] = index
        for stand_in in stand_ins:
            held[start + fed.index(stand_in)] = HIDDEN
        mask = held[None, :end] < index[:, None]  # decided tokens before each in raster order
        mask[torch.arange(n), start + torch.arange(n)] = True  # and itself
        positions = stream.positions[prefix_len + index]
        logits = stream.feed_at(codes, start, positions, None if n == 1 and bool(mask.all()) else mask)
        start = end
        wanted = [j for j, target in enumerate(targets) if target is not None]
        chosen = choose(logits[:, wanted].reshape(-1, logits.shape[-1]), cfg, generator).view(b, -1)
        seq[:, [targets[j] for j in wanted]] = chosen
    return seq[:, first:].view(b, new_frames, h, w)


def _stand_in_source(index: int, first: int, f: int, w: int, lag: int, step: int, step_of) -> int:
    """The decided token that stands in for ``index`` (the end of a row, undecided at ``step``):
    the one at its place a latent frame earlier, else the latest decided token of its row."""
    earlier = index - f
    if 0 <= earlier < first or (earlier >= first and step_of(earlier) < step):
        return earlier
    row = (index - first) // w
    return first + row * w + min(step - 1 - row * lag, w - 1)
