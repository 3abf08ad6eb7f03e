"""Sampling video codes from the MaskGIT network: iterative confidence-based unmasking.

A window holds [caption prefix | context frames (known) | new frames (all MASK)]. Each step runs
the network on the window, draws a code for every masked position (softmax at ``temperature``;
0: argmax), scores each draw by its log-probability plus Gumbel noise scaled by
``choice_temperature * (1 - (s + 1) / S)`` (MaskGIT's annealed noise: early choices explore,
late ones follow confidence), keeps the most confident draws and re-masks the rest, so that
after step s the schedule's share ``mask_ratio((s + 1) / S)`` is still masked
(``schedule.masked_counts``). Known positions never change. Classifier-free guidance runs the
conditional and unconditional sequences in one batch: logits = u + scale * (c - u).

Joint model: the new frames of a window are decoded together (S steps per window). Frame-causal
model: frame after frame, S steps each, with KV caches: the caption's keys are computed once,
each context frame's once per window, and a decided frame is run once more to store its keys
before the next (attention inside a frame is bidirectional, across frames causal).

Videos longer than ``max_frames`` latent frames slide the window like the GPT: the caption and
the last ``max_frames - 1`` latent frames become the next window's context (positions restart,
as in training) and one new frame is decoded. With ``reencode_context`` the context is first
decoded to pixels and encoded again by the tokenizer (``reencode``), so the model continues from
codes the tokenizer would give, not from its own drifting ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from vtlm.gpt.vocab import check_request, prefix_ids, sequence_positions

from .config import MaskGITConfig
from .model import MaskGIT
from .schedule import Schedule, masked_counts


@dataclass
class MaskGITSamplingConfig:
    # Unmasking steps per window (joint) or per latent frame (frame-causal); at most one per token.
    steps: int = 8
    # Temperature of the code draws (0: greedy argmax).
    temperature: float = 1.0
    # Scale of the Gumbel noise on the confidences, annealed linearly to 0 over the steps.
    choice_temperature: float = 4.5
    # Classifier-free guidance: logits = uncond + scale * (cond - uncond); 1 is plain conditional.
    cfg_scale: float = 1.0
    # How many tokens stay masked after each step (the training schedule).
    schedule: Schedule = "cosine"
    # Which draws are kept: the most confident, or the earliest in raster order (a test hook:
    # with greedy draws and one token per step it is sequential decoding).
    order: Literal["confidence", "raster"] = "confidence"
    # Before each later window, decode the context to pixels and encode it again (anti-drift).
    reencode_context: bool = False

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps: expected >= 1, got {self.steps}")
        if self.temperature < 0 or self.choice_temperature < 0:
            raise ValueError(
                f"temperature, choice_temperature: expected >= 0, got {self.temperature}, {self.choice_temperature}"
            )
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"schedule: expected 'cosine' or 'linear', got {self.schedule!r}")
        if self.order not in ("confidence", "raster"):
            raise ValueError(f"order: expected 'confidence' or 'raster', got {self.order!r}")


def window_plan(num_frames: int, given: int, max_frames: int) -> list[tuple[int, int]]:
    """(context frames, new frames) of each window: the first takes everything that fits after
    the ``given`` frames, each later one keeps ``max_frames - 1`` frames and adds one."""
    first = min(num_frames - given, max_frames - given)
    plan, made = [(given, first)], given + first
    while made < num_frames:
        plan.append((max_frames - 1, 1))
        made += 1
    return plan


def network_calls(cfg: MaskGITConfig, sampling: MaskGITSamplingConfig, num_frames: int, given: int) -> int:
    """Network calls to sample ``num_frames`` latent frames after ``given`` ones (guidance
    doubles the batch of a call, not the number of calls)."""
    tokens = cfg.frame_tokens
    plan = window_plan(num_frames, given, cfg.max_frames)
    if not cfg.frame_causal:
        return sum(min(sampling.steps, new * tokens) for _, new in plan)
    per_frame = min(sampling.steps, tokens)
    # the caption once; per window its context frames, each new frame's steps, and a call that
    # stores a decided frame's keys before the next frame of the same window
    return 1 + sum(context + new * per_frame + new - 1 for context, new in plan)


def _gumbel(shape, generator, device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, device=device).clamp(1e-20, 1 - 1e-7)
    return -torch.log(-torch.log(u))


def unmask(
    logits_of: Callable[[torch.Tensor], torch.Tensor],
    mask_id: int,
    code_offset: int,
    count: int,
    batch: int,
    cfg: MaskGITSamplingConfig,
    generator: torch.Generator | None,
    device,
) -> torch.Tensor:
    """Decode ``count`` all-masked positions of ``batch`` rows -> codes (batch, count) int64.

    ``logits_of``: ids (batch, count) (codes as ids, MASK where undecided) -> logits over the
    codebook (batch, count, codebook), guidance applied.
    """
    codes = torch.zeros(batch, count, dtype=torch.long, device=device)
    unknown = torch.ones(batch, count, dtype=torch.bool, device=device)
    counts = masked_counts(count, cfg.steps, cfg.schedule)
    index = torch.arange(count, device=device)[None].expand(batch, -1)
    for step, remain in enumerate(counts):
        logits = logits_of(torch.where(unknown, mask_id, codes + code_offset))[unknown].float()  # (M, V)
        if cfg.temperature == 0:
            logp = logits.log_softmax(dim=-1)
            drawn = logp.argmax(dim=-1)
        else:
            logp = (logits / cfg.temperature).log_softmax(dim=-1)
            drawn = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(-1)
        if cfg.order == "raster":
            score = -index[unknown].float()  # the earliest positions are the "most confident"
        else:
            score = logp.gather(-1, drawn[:, None]).squeeze(-1)
            noise = cfg.choice_temperature * (1 - (step + 1) / len(counts))
            if noise > 0:
                score = score + noise * _gumbel(score.shape, generator, device)
        codes = codes.masked_scatter(unknown, drawn)
        confidence = torch.full((batch, count), float("inf"), device=device)
        confidence = confidence.masked_scatter(unknown, score)
        still = torch.zeros_like(unknown)
        if remain:  # the least confident draws go back under the mask
            still.scatter_(1, confidence.argsort(dim=1)[:, :remain], True)
        unknown = still
    return codes


class _Decoder:
    """Decodes windows of one batch: the (conditional | unconditional) prefix, guidance."""

    def __init__(self, model: MaskGIT, captions: list[list[int]], cfg: MaskGITSamplingConfig, generator):
        self.model, self.cfg, self.generator = model, cfg, generator
        self.vocab, self.m = model.vocab, model.cfg
        self.guided = cfg.cfg_scale != 1.0
        self.batch = len(captions)
        prefix = prefix_ids(self.vocab, captions, self.m.text_len)
        if self.guided:  # the unconditional half: the same sequences with the caption dropped
            drop = torch.ones(self.batch, dtype=torch.bool)
            prefix = torch.cat([prefix, prefix_ids(self.vocab, captions, self.m.text_len, drop)])
        self.device = model.embed.weight.device
        self.prefix = prefix.to(self.device)
        if self.m.frame_causal:  # the caption's keys, once: it sees only itself
            model.setup_caches(len(prefix), self.m.max_len)
            model.hidden(self.prefix, self._positions(0)[: self.m.prefix_len], start=0)

    def _positions(self, frames: int) -> torch.Tensor:
        m = self.m
        return sequence_positions(m.text_len, frames, m.grid_h, m.grid_w, with_eov=False).to(self.device)

    def _twice(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([ids, ids]) if self.guided else ids

    def _guide(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if not self.guided:
            return logits
        cond, uncond = logits.chunk(2)
        return uncond + self.cfg.cfg_scale * (cond - uncond)

    def _unmask(self, logits_of, count: int) -> torch.Tensor:
        mask_id, offset = self.model.mask_id, self.vocab.code_offset
        return unmask(logits_of, mask_id, offset, count, self.batch, self.cfg, self.generator, self.device)

    def window(self, context: torch.Tensor, new: int) -> torch.Tensor:
        """context (B, c, h, w) codes -> the ``new`` latent frames after it (B, new, h, w)."""
        if self.m.frame_causal:
            return self._frame_by_frame(context, new)
        b, c, h, w = context.shape
        positions = self._positions(c + new)
        known = self._twice(self.vocab.codes_to_ids(context.reshape(b, -1)))
        start = self.m.prefix_len + c * h * w

        def logits_of(ids: torch.Tensor) -> torch.Tensor:
            sequence = torch.cat([self.prefix, known, self._twice(ids)], dim=1)
            return self._guide(self.model.logits(self.model.hidden(sequence, positions)[:, start:]))

        return self._unmask(logits_of, new * h * w).view(b, new, h, w)

    def _frame_by_frame(self, context: torch.Tensor, new: int) -> torch.Tensor:
        b, c, h, w = context.shape
        tokens, model = h * w, self.model
        positions = self._positions(c + new)
        offset = self.m.prefix_len
        for f in range(c):  # the context frames' keys, each seeing the caption and earlier frames
            ids = self._twice(self.vocab.codes_to_ids(context[:, f].reshape(b, -1)))
            model.hidden(ids, positions[offset : offset + tokens], start=offset)
            offset += tokens
        out = []
        for f in range(new):
            where = positions[offset : offset + tokens]

            def logits_of(ids: torch.Tensor, where=where, at=offset) -> torch.Tensor:
                return self._guide(model(self._twice(ids), where, start=at))

            codes = self._unmask(logits_of, tokens)
            out.append(codes)
            if f < new - 1:  # store the decided frame's keys for the next frame
                model.hidden(self._twice(self.vocab.codes_to_ids(codes)), where, start=offset)
            offset += tokens
        return torch.stack(out, dim=1).view(b, new, h, w)


@torch.no_grad()
def sample_codes(
    model: MaskGIT,
    captions: list[list[int]],
    num_frames: int,
    cfg: MaskGITSamplingConfig,
    prefix: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reencode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Latent codes (B, num_frames, h, w): the prefix (B, t0, h, w) kept as given, the rest sampled.

    ``captions``: one list of at most ``text_len`` text ids per sample (empty: unconditional).
    ``reencode``: codes (B, t, h, w) -> codes of the same shape after a decode / encode round trip
    through the tokenizer; needed when ``cfg.reencode_context``. The window slides once the video
    outgrows ``max_frames`` latent frames. Inputs that do not fit are refused before any call.
    """
    m = model.cfg
    batch = len(captions)
    t0 = check_request(m, captions, num_frames, prefix, cfg.reencode_context and reencode is None)
    model.eval()
    decoder = _Decoder(model, captions, cfg, generator)
    video = prefix if prefix is not None else torch.zeros(batch, 0, m.grid_h, m.grid_w, dtype=torch.long)
    video = video.to(decoder.device)
    for i, (context, new) in enumerate(window_plan(num_frames, t0, m.max_frames)):
        source = reencode(video) if i > 0 and cfg.reencode_context and context else video
        frames = source[:, source.shape[1] - context :]
        video = torch.cat([video, decoder.window(frames, new)], dim=1)
    return video
