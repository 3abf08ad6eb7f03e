"""Masked-token training of the MaskGIT network on [BOS caption BOV video] sequences.

Some video codes are replaced by the MASK id and the network predicts them: cross-entropy on
the masked positions only, mean over them. The masked share follows the schedule
(``schedule.mask_ratio(u)``, u ~ U(0, 1)); at least one token is masked. Captions are dropped
(the all-<pad> prefix) with probability ``caption_dropout``, which trains the unconditional
model that classifier-free guidance needs. The caption is never masked.

Two layouts, as the model's ``frame_causal`` says:

* joint (``frame_causal`` False): one mask ratio per example over its video codes; a share
  ``prefix_share`` of the examples keep their first 1..``max_prefix_frames`` latent frames clean
  (never masked, no loss), as continuation from given frames asks.
* frame-causal: the sampler decodes one frame at a time from fully masked to clean, with
  every earlier frame clean. Training asks exactly that of every frame at once (teacher forcing):
  the sequence is [prefix | the clean frames | a masked copy of the frames], the copy at the same
  positions, each of its frames with its own mask ratio. A clean frame sees the prefix and clean
  frames up to its own (``frame_causal_mask``); a masked frame f sees the prefix, the clean frames
  before f and its own masked copy. So frame 0 learns text-to-video and frame f > 0 continuation
  from f clean frames; no separate video-prefix draw is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vtlm.gpt.vocab import Vocab, prefix_ids, sequence_positions, video_positions
from vtlm.layers.cross_entropy import linear_cross_entropy
from vtlm.layers.masks import frame_causal_mask, token_frames

from .config import MaskGITConfig
from .schedule import Schedule, mask_ratio


@dataclass
class MaskGITLossConfig:
    """How codes are masked for training, and the augmentations."""

    # Probability that a training caption is dropped (the unconditional model for CFG).
    caption_dropout: float = 0.1
    # Masked share as a function of u ~ U(0, 1): cosine cos(pi/2 u) or linear 1 - u.
    schedule: Schedule = "cosine"
    # Joint layout: share of examples that keep a clean prefix of 1..max_prefix_frames latent
    # frames (continuation). The frame-causal layout conditions every frame on its past anyway.
    prefix_share: float = 0.5
    max_prefix_frames: int = 2

    def __post_init__(self):
        if not 0.0 <= self.caption_dropout <= 1.0 or not 0.0 <= self.prefix_share <= 1.0:
            raise ValueError(
                f"caption_dropout, prefix_share: expected values in [0, 1], got {self.caption_dropout}, {self.prefix_share}"
            )
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"schedule: expected 'cosine' or 'linear', got {self.schedule!r}")
        if self.max_prefix_frames < 0:
            raise ValueError(f"max_prefix_frames: expected >= 0, got {self.max_prefix_frames}")


@dataclass
class Batch:
    """Training sequences and what is predicted.

    ids (B, N) with MASK where masked; positions (N, 3); attention (N, N) bool or None (full);
    the video positions scored start at ``video_start``: targets (B, n) codes in [0, codebook)
    and masked (B, n) bool (True: masked, in the loss), n = t * h * w.
    """

    ids: torch.Tensor
    positions: torch.Tensor
    attention: torch.Tensor | None
    video_start: int
    targets: torch.Tensor
    masked: torch.Tensor


def choose_masked(maskable: torch.Tensor, ratio: torch.Tensor, generator=None) -> torch.Tensor:
    """(..., n) bool: ceil(ratio * maskable count) tokens (at least one) drawn uniformly among the
    ``maskable`` (..., n) bool ones, per row; ``ratio`` (...,) in [0, 1]."""
    count = maskable.sum(-1)
    want = torch.ceil(ratio * count).long().clamp(min=1)
    want = torch.minimum(want, count)
    scores = torch.rand(maskable.shape, generator=generator, device=maskable.device)
    scores = scores.masked_fill(~maskable, 2.0)  # never chosen before a maskable token
    rank = scores.argsort(dim=-1).argsort(dim=-1)
    return rank < want[..., None]


def teacher_forcing_mask(prefix_len: int, frame_tokens: int, frames: int, device=None) -> torch.Tensor:
    """(N, N) bool, N = prefix_len + 2 * frames * frame_tokens, True where a query may attend, for
    [prefix | clean frames | masked copy]: prefix and clean frames as ``frame_causal_mask``;
    masked frame f sees the prefix, clean frames < f and its own masked copy."""
    n_clean = prefix_len + frames * frame_tokens
    frame = torch.cat([token_frames(prefix_len, frame_tokens, frames, device),
                       torch.arange(frames, device=device).repeat_interleave(frame_tokens)])  # fmt: skip
    copy = torch.arange(len(frame), device=device) >= n_clean  # the masked copy
    mask = torch.zeros(len(frame), len(frame), dtype=torch.bool, device=device)
    mask[:n_clean, :n_clean] = frame_causal_mask(prefix_len, frame_tokens, frames, device)
    query, key = frame[n_clean:, None], frame[None, :]
    mask[n_clean:] = (key < 0) | ((~copy[None]) & (key >= 0) & (key < query)) | (copy[None] & (key == query))
    return mask


def build_batch(
    cfg: MaskGITConfig,
    loss: MaskGITLossConfig,
    mask_id: int,
    codes: torch.Tensor,
    captions: list[list[int]],
    drop: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Batch:
    """codes (B, t, h, w) in [0, codebook) -> masked training sequences in ``cfg``'s layout.

    ``drop`` (B,) bool: those captions become all <pad>. ``generator``: the mask draws (a
    seeded one makes validation repeatable).
    """
    b, t, h, w = codes.shape
    device, frame_tokens = codes.device, h * w
    vocab = Vocab(cfg.text_size, cfg.codebook_size)
    prefix = prefix_ids(vocab, captions, cfg.text_len, drop).to(device)
    video = vocab.codes_to_ids(codes.reshape(b, -1))
    targets = codes.reshape(b, -1)
    if cfg.frame_causal:
        u = torch.rand(b, t, generator=generator, device=device)
        maskable = torch.ones(b, t, frame_tokens, dtype=torch.bool, device=device)
        masked = choose_masked(maskable, mask_ratio(u, loss.schedule), generator).reshape(b, -1)
        ids = torch.cat([prefix, video, video.masked_fill(masked, mask_id)], dim=1)
        grid = video_positions(t, h, w, cfg.prefix_len).to(device)
        positions = torch.cat([sequence_positions(cfg.text_len, t, h, w, with_eov=False).to(device), grid])
        attention = teacher_forcing_mask(cfg.prefix_len, frame_tokens, t, device)
        return Batch(ids, positions, attention, cfg.prefix_len + t * frame_tokens, targets, masked)
    clean = torch.zeros(b, dtype=torch.long, device=device)  # clean prefix frames per example
    if t > 1 and loss.max_prefix_frames > 0 and loss.prefix_share > 0:
        has = torch.rand(b, generator=generator, device=device) < loss.prefix_share
        count = torch.randint(
            1, min(loss.max_prefix_frames, t - 1) + 1, (b,), generator=generator, device=device
        )
        clean = torch.where(has, count, clean)
    frame_of = torch.arange(t, device=device).repeat_interleave(frame_tokens)
    maskable = frame_of[None] >= clean[:, None]  # (B, n)
    u = torch.rand(b, generator=generator, device=device)
    masked = choose_masked(maskable, mask_ratio(u, loss.schedule), generator)
    ids = torch.cat([prefix, video.masked_fill(masked, mask_id)], dim=1)
    positions = sequence_positions(cfg.text_len, t, h, w, with_eov=False).to(device)
    return Batch(ids, positions, None, cfg.prefix_len, targets, masked)


def masked_token_loss(net, batch: Batch, hidden=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss (scalar): mean cross-entropy over the masked video positions; logs: the loss in
    nats and bits per masked token, and the masked share.

    ``net``: anything with ``hidden(ids, positions, mask) -> (B, N, C)`` and an output layer
    ``head`` (C -> codebook); ``hidden``: a replacement for ``net.hidden`` (a compiled one, say).
    Logits are computed for the masked positions only (``vtlm.layers.cross_entropy``).
    """
    states = (hidden or net.hidden)(batch.ids, batch.positions, batch.attention)  # (B, N, C)
    video = states[:, batch.video_start : batch.video_start + batch.targets.shape[1]]
    rows, targets = video[batch.masked], batch.targets[batch.masked]
    weights = torch.full(targets.shape, 1.0 / max(1, len(targets)), device=targets.device)
    loss, per_row = linear_cross_entropy(rows, net.head.weight, targets, weights)
    mean = per_row.mean()
    logs = {
        "masked_loss": mean,
        "bits_per_masked_token": mean / math.log(2),
        "mask_share": batch.masked.float().mean(),
    }
    return loss, logs
