"""Sampling video codes from the GPT: cached decoding, CFG in one batch, sliding window.

Generation runs latent frame by latent frame. While the video fits in the context
(``max_frames`` latent frames), every new token is one cached forward step. Beyond it, the
window slides: the caption and the last ``max_frames - 1`` latent frames are re-encoded as a
new prefix (positions restart, as in training), and the next frame is decoded from there, so a
rollout can go far beyond the training length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .model import GPT
from .vocab import check_request, prefix_ids, sequence_positions


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    # Keep the k most likely codes (0: all) and the smallest set with probability >= top_p (1: all).
    top_k: int = 0
    top_p: float = 1.0
    # Classifier-free guidance: logits = uncond + scale * (cond - uncond); 1 is plain conditional.
    cfg_scale: float = 1.0
    # Anti-drift: when the window slides, continue from the context decoded to pixels and
    # encoded again by the tokenizer (the codes a real clip of those frames would have), not
    # from the sampled codes themselves. Costs a decode and an encode of the video per new frame.
    reencode_context: bool = False

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature: expected >= 0 (0 is greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p: expected a value in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k: expected >= 0, got {self.top_k}")


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """logits (B, V) with everything outside top-k / top-p set to -inf."""
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        drop = probs.cumsum(dim=-1) - probs > top_p  # keep the first token past the threshold
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def choose(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> torch.Tensor:
    """One code per row from logits (B, codebook).

    With top-k on, the draw is made among the k best codes only (their softmax, then top-p on
    them): the same distribution as masking the rest to -inf, without a softmax and a
    multinomial over the whole codebook at every step.
    """
    if cfg.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / cfg.temperature
    if not cfg.top_k or cfg.top_k >= logits.shape[-1]:
        logits = filter_logits(logits, 0, cfg.top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)
    values, codes = torch.topk(logits, cfg.top_k, dim=-1)  # sorted, best first
    if cfg.top_p < 1.0:
        probs = values.softmax(dim=-1)
        values = values.masked_fill(probs.cumsum(dim=-1) - probs > cfg.top_p, float("-inf"))
    pick = torch.multinomial(values.softmax(dim=-1), 1, generator=generator)
    return codes.gather(-1, pick).squeeze(-1)


class _Decoder:
    """Cached decoding of one window: prefix ids, then one latent frame after another."""

    def __init__(self, model: GPT, captions: list[list[int]], cfg: SamplingConfig):
        self.model, self.cfg, self.vocab = model, cfg, model.vocab
        self.guided = cfg.cfg_scale != 1.0
        batch = len(captions)
        prefix = prefix_ids(self.vocab, captions, model.cfg.text_len)
        if self.guided:  # the unconditional half: the same sequences with the caption dropped
            prefix = torch.cat(
                [
                    prefix,
                    prefix_ids(self.vocab, captions, model.cfg.text_len, torch.ones(batch, dtype=torch.bool)),
                ]
            )
        self.prefix = prefix.to(model.embed.weight.device)
        self.batch = batch

    def _logits(self, ids: torch.Tensor, positions: torch.Tensor, start: int) -> torch.Tensor:
        """Logits over video codes (B, codebook) for the last position, guidance applied."""
        logits = self.model(ids, positions, start=start)[:, -1]
        offset = self.vocab.code_offset
        logits = logits[:, offset : offset + self.vocab.codebook_size].float()
        if self.guided:
            cond, uncond = logits.chunk(2)
            logits = uncond + self.cfg.cfg_scale * (cond - uncond)
        return logits

    def frames(self, context: torch.Tensor, new_frames: int, generator) -> torch.Tensor:
        """Decode ``new_frames`` latent frames after ``context`` (B, t0, h, w) -> (B, new, h, w)."""
        m, vocab = self.model.cfg, self.vocab
        t0, h, w = context.shape[1], m.grid_h, m.grid_w
        positions = sequence_positions(m.text_len, t0 + new_frames, h, w, with_eov=False).to(
            self.prefix.device
        )
        context_ids = vocab.codes_to_ids(context.reshape(context.shape[0], -1)).to(self.prefix.device)
        if self.guided:
            context_ids = torch.cat([context_ids, context_ids])
        ids = torch.cat([self.prefix, context_ids], dim=1)
        logits = self._logits(ids, positions[: ids.shape[1]], start=0)
        out = []
        for _ in range(new_frames * h * w):
            code = choose(logits, self.cfg, generator)
            out.append(code)
            token = vocab.codes_to_ids(code)[:, None]
            if self.guided:
                token = torch.cat([token, token])
            pos = ids.shape[1] + len(out) - 1
            if len(out) < new_frames * h * w:
                logits = self._logits(token, positions[pos : pos + 1], start=pos)
        return torch.stack(out, dim=1).view(self.batch, new_frames, h, w)


@torch.no_grad()
def sample_codes(
    model: GPT,
    captions: list[list[int]],
    num_frames: int,
    cfg: SamplingConfig,
    prefix: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    reencode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Latent codes (B, num_frames, h, w): the prefix (B, t0, h, w) kept as given, the rest sampled.

    ``reencode``: codes (B, t, h, w) -> the codes of their decode / encode round trip through
    the tokenizer, used for the context of every slid window when ``cfg.reencode_context``.

    ``captions``: one list of at most ``text_len`` text ids per sample (empty: unconditional).
    The window slides once the video outgrows ``model.cfg.max_frames`` latent frames. Captions
    and prefix that do not fit the model are refused before any network call.
    """
    m = model.cfg
    batch = len(captions)
    t0 = check_request(m, captions, num_frames, prefix, cfg.reencode_context and reencode is None)
    model.eval()
    decoder = _Decoder(model, captions, cfg)
    model.setup_caches(batch * (2 if decoder.guided else 1), m.max_len)
    device = model.embed.weight.device
    video = (
        prefix if prefix is not None else torch.zeros(batch, 0, m.grid_h, m.grid_w, dtype=torch.long)
    ).to(device)
    if video.shape[1] > m.max_frames - 1:
        video_context = video[:, -(m.max_frames - 1) :] if m.max_frames > 1 else video[:, :0]
    else:
        video_context = video
    # First window: everything that fits after the context in one cached pass.
    first = min(num_frames - t0, m.max_frames - video_context.shape[1])
    video = torch.cat([video, decoder.frames(video_context, first, generator)], dim=1)
    while video.shape[1] < num_frames:  # slide: keep max_frames - 1 frames of context
        source = reencode(video) if cfg.reencode_context else video
        context = source[:, video.shape[1] - (m.max_frames - 1) :] if m.max_frames > 1 else video[:, :0]
        video = torch.cat([video, decoder.frames(context, 1, generator)], dim=1)
    return video
