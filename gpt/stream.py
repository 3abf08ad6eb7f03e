"""The GPT as a function of video tokens, for decoding: feed codes by index, get the next logits.

A decoding run starts from the caption prefix and a context of latent frames
(:meth:`Stream.start`), then feeds codes at their *index* (video tokens counted from the first
context token, t-major raster) and gets, for each, the logits over codes of the token after it
(:meth:`Stream.feed`). Guidance runs the unconditional copy in the same batch; ``calls``
counts network calls (:func:`network_calls` counts them from outside a sampler).

The context window holds ``max_frames`` latent frames at the positions training used. Without
``rolling`` a run stays inside one window (the sampler re-encodes a new window to slide).
With ``rolling`` the run goes on past the window: per-layer :class:`RollingKV` caches keep the
caption, and before the last token of a frame is fed into a full window the oldest frame
leaves and every held key is rotated to its new position, so that token (whose output predicts
the next frame's first) and the next frame sit where a re-encoded window would put them.
Layer 1 keys depend on their token alone, so a one-block network decodes exactly as with
re-encoding; deeper layers' keys remember frames that have left the window. Measured in
``tests/test_gpt_decoding.py`` (random weights, teacher-forced, 12 frames through a window of
3): before the first slide the logits are bitwise equal; after it a 2-block network's next-token
distributions differ from re-encoding's by a mean KL of 0.016 nats (total variation 0.07).
What it saves is the window's prefill at every new frame: on a CPU at batch 1 that prefill
costs about as much as a fifth of a frame's token steps, so rolling is ~1.2x faster there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from vtlm.layers.rolling_cache import RollingKV

from .model import GPT
from .vocab import prefix_ids, sequence_positions


class Stream:
    """Decoding runs of ``model`` for ``captions`` (one list of text ids per sample).

    ``guidance``: the classifier-free guidance scale (1: none); ``rolling``: slide the window
    with rolling caches (needs ``max_frames`` >= 2); ``spare``: cache slots past the window's
    (for tokens fed out of raster order, :meth:`feed_at`); ``compiled``: one-token steps run
    through the compiled step (``GPT.forward``'s ``compiled``).
    """

    def __init__(
        self,
        model: GPT,
        captions: list[list[int]],
        guidance: float,
        rolling: bool,
        spare: int = 0,
        compiled: bool = False,
    ):
        m = model.cfg
        if rolling and m.max_frames < 2:
            raise ValueError("rolling: a window of one latent frame holds no context to roll")
        self.model, self.vocab, self.guidance, self.rolling = model, model.vocab, guidance, rolling
        self.compiled = compiled
        self.batch, self.frame_tokens = len(captions), m.frame_tokens
        self.window = m.max_frames * m.frame_tokens  # video slots of the window
        weight = model.embed.weight
        prefix = prefix_ids(self.vocab, captions, m.text_len)
        if guidance != 1.0:  # the unconditional half: the same sequences with the caption dropped
            dropped = torch.ones(self.batch, dtype=torch.bool)
            prefix = torch.cat([prefix, prefix_ids(self.vocab, captions, m.text_len, dropped)])
        self.prefix = prefix.to(weight.device)
        self.positions = sequence_positions(m.text_len, m.max_frames, m.grid_h, m.grid_w, with_eov=False)
        self.positions = self.positions.to(weight.device)
        rows, prefix_len = self.prefix.shape
        model.setup_caches(rows, m.max_len + spare)  # also the single-row weight copies
        self.caches = None
        if rolling:
            frame_rope = model.rotations(self.positions[prefix_len:])
            layout = (rows, m.heads, m.dim // m.heads, prefix_len, m.frame_tokens, m.max_frames)
            self.caches = [RollingKV(*layout, frame_rope, weight.dtype, weight.device) for _ in model.blocks]
        self.calls = 0
        self.dropped = self.total = 0

    def start(self, context: torch.Tensor, new_frames: int) -> torch.Tensor:
        """Encode the prefix and ``context`` codes (B, t0, h, w); ``new_frames`` follow it.
        Returns the logits (B, codebook) of the first new token (index t0 * h * w)."""
        t0 = context.shape[1]
        if not self.rolling and t0 + new_frames > self.window // self.frame_tokens:
            raise ValueError(f"new_frames: {t0} + {new_frames} latent frames exceed the window")
        self.dropped, self.total = 0, (t0 + new_frames) * self.frame_tokens
        ids = torch.cat([self.prefix, self._ids(context.reshape(self.batch, -1))], dim=1)
        return self._logits(ids, 0, last=1)[:, 0]

    def feed(self, codes: torch.Tensor, index: int) -> torch.Tensor:
        """Codes (B, n) at indices [index, index + n) -> logits (B, n, codebook) of the tokens at
        index + 1 .. index + n. At most :meth:`room` codes; later slots are overwritten freely
        (a fed guess that was not accepted is simply fed over)."""
        n = codes.shape[1]
        if not 1 <= n <= self.room(index):
            raise ValueError(f"codes: {n} codes at index {index}, room for {self.room(index)}")
        slot = index - self.dropped
        if self.rolling and slot == self.window - 1:  # the oldest frame leaves first
            for cache in self.caches:
                cache.roll(0, 1, slot)
            self.dropped += self.frame_tokens
            slot -= self.frame_tokens
        return self._logits(self._ids(codes), self.prefix.shape[1] + slot, last=n)

    def room(self, index: int) -> int:
        """How many codes one :meth:`feed` at ``index`` may take: never the run's last token
        (nothing follows it), and with ``rolling`` never past the window's last slot, which
        starts a call of its own (the window rolls before it)."""
        slot = index - self.dropped
        if self.rolling:
            if slot == self.window - 1:
                slot -= self.frame_tokens
            limit = self.window - 1 - slot
        else:
            limit = self.window - slot
        return max(min(self.total - 1 - index, limit), 0)

    def feed_at(
        self, codes: torch.Tensor, start: int, positions: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Codes (B, n) at cache slots [start, start + n) (the prefix's slots included), at
        ``positions`` (n, 3), attending where ``mask`` (n, start + n) bool says (None: to every
        slot before them, causally among themselves) -> logits (B, n, codebook) of their outputs.
        For schedules that decode out of raster order; not with ``rolling``."""
        if self.rolling:
            raise ValueError("feed_at: a rolling window keeps its slots in raster order")
        return self._logits(self._ids(codes), start, last=codes.shape[1], positions=positions, mask=mask)

    def _ids(self, codes: torch.Tensor) -> torch.Tensor:
        ids = self.vocab.codes_to_ids(codes.to(self.prefix.device))
        return torch.cat([ids, ids]) if self.guidance != 1.0 else ids

    def _logits(
        self,
        ids: torch.Tensor,
        start: int,
        last: int,
        positions: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits over codes (B, last, codebook) of the last positions, guidance applied.
        ``positions``: of the ids (default: those of their slots)."""
        self.calls += 1
        if positions is None:
            positions = self.positions[start : start + ids.shape[1]]
        logits = self.model(
            ids, positions, start=start, caches=self.caches, last=last, mask=mask, compiled=self.compiled
        )
        offset = self.vocab.code_offset
        logits = logits[..., offset : offset + self.vocab.codebook_size].float()
        if self.guidance != 1.0:
            cond, uncond = logits.chunk(2)
            logits = uncond + self.guidance * (cond - uncond)
        return logits


@contextmanager
def network_calls(model: nn.Module) -> Iterator[list[int]]:
    """Count the forward calls of ``model`` inside the block: yields a one-element list whose
    value grows with each call (one sequential network evaluation each)."""
    count = [0]

    def seen(module, args):
        count[0] += 1

    handle = model.register_forward_pre_hook(seen)
    try:
        yield count
    finally:
        handle.remove()
