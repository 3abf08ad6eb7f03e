"""Next-token training of the GPT on [BOS caption BOV video EOV] sequences.

The loss is on video tokens by default (text loss optional, weighted). Captions are dropped
(replaced by the all-<pad> prefix) with probability ``caption_dropout``, which trains the
unconditional model that classifier-free guidance needs. Context corruption, when on, replaces
a scheduled share of the *input* video tokens by random codes while the targets stay the true
next tokens: the model learns to continue from imperfect context, the simplest guard against
the error accumulation of long rollouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vtlm.layers.cross_entropy import linear_cross_entropy

from .vocab import Vocab, prefix_ids, sequence_positions


@dataclass
class GPTLossConfig:
    """What the GPT is trained to predict, and with which augmentations."""

    # Probability that a training caption is dropped (the unconditional model for CFG).
    caption_dropout: float = 0.1
    # Weight of the loss on caption tokens (0: video tokens only).
    text_loss_weight: float = 0.0
    # Share of earlier video tokens replaced by random codes: 0 at step 0, rising linearly to
    # corruption_max at corruption_ramp_steps (0 turns the augmentation off).
    corruption_max: float = 0.0
    corruption_ramp_steps: int = 1000

    def __post_init__(self):
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout: expected a value in [0, 1], got {self.caption_dropout}")
        if not 0.0 <= self.corruption_max < 1.0:
            raise ValueError(f"corruption_max: expected a value in [0, 1), got {self.corruption_max}")

    def corruption(self, step: int) -> float:
        return self.corruption_max * min(1.0, step / max(1, self.corruption_ramp_steps))


@dataclass
class Batch:
    """Training sequences: ids (B, L), positions (L, 3), and which targets count."""

    ids: torch.Tensor
    positions: torch.Tensor
    video_targets: torch.Tensor  # (L - 1,) bool: target j is a video code
    text_targets: torch.Tensor  # (B, L - 1) bool: target j is a caption piece


def build_sequences(
    vocab: Vocab, codes: torch.Tensor, captions: list[list[int]], text_len: int, drop: torch.Tensor | None
) -> Batch:
    """codes (B, t, h, w) in [0, codebook) -> sequences with EOV, their positions and loss masks."""
    b, t, h, w = codes.shape
    prefix = prefix_ids(vocab, captions, text_len, drop).to(codes.device)
    eov = torch.full((b, 1), vocab.eov, dtype=torch.long, device=codes.device)
    ids = torch.cat([prefix, vocab.codes_to_ids(codes.reshape(b, -1)), eov], dim=1)
    positions = sequence_positions(text_len, t, h, w).to(codes.device)
    video = torch.zeros(ids.shape[1] - 1, dtype=torch.bool, device=codes.device)
    video[text_len + 1 : text_len + 1 + t * h * w] = True  # targets are ids shifted by one
    text = (ids[:, 1 : text_len + 1] != vocab.pad) & (ids[:, 1 : text_len + 1] != vocab.bov)
    text = F.pad(text, (0, ids.shape[1] - 1 - text_len))
    return Batch(ids, positions, video, text)


def corrupt_video_inputs(
    ids: torch.Tensor, video_targets: torch.Tensor, vocab: Vocab, share: float, generator=None
) -> torch.Tensor:
    """Inputs (B, L - 1) with ``share`` of their video codes replaced by uniformly random codes.

    ``video_targets`` (L - 1,) marks targets that are video codes; input i holds the token
    that target i - 1 predicts, so input i is a video code where target i - 1 is one.
    """
    if share <= 0:
        return ids
    inputs = ids.clone()
    video_inputs = torch.zeros(ids.shape[1], dtype=torch.bool, device=ids.device)
    video_inputs[1:] = video_targets[:-1]
    hit = (torch.rand(ids.shape, generator=generator, device=ids.device) < share) & video_inputs
    random_codes = torch.randint(0, vocab.codebook_size, ids.shape, generator=generator, device=ids.device)
    inputs[hit] = vocab.codes_to_ids(random_codes)[hit]
    return inputs


def next_token_loss(
    model, batch: Batch, cfg: GPTLossConfig, step: int, hidden=None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss (scalar) and logs: video loss in nats and bits per video token, text loss.

    The loss is the mean over video targets, plus ``text_loss_weight`` times the mean over
    caption targets; logits are computed only for the targets with a weight, chunk by chunk
    (``vtlm.layers.cross_entropy``). ``hidden``: the function giving the GPT's last hidden
    states (a compiled one, say); ``model.hidden`` by default.
    """
    inputs = corrupt_video_inputs(batch.ids[:, :-1], batch.video_targets, model.vocab, cfg.corruption(step))
    states = (hidden or model.hidden)(inputs, batch.positions[:-1])  # (B, L - 1, C)
    targets = batch.ids[:, 1:]
    video = batch.video_targets[None].expand_as(targets)
    weights = video.float() / video.sum().clamp(min=1)
    use_text = cfg.text_loss_weight > 0 and bool(batch.text_targets.any())
    if use_text:
        weights = weights + cfg.text_loss_weight * batch.text_targets.float() / batch.text_targets.sum()
    keep = weights.flatten() > 0
    loss, rows = linear_cross_entropy(
        states.flatten(0, 1)[keep], model.head.weight, targets.flatten()[keep], weights.flatten()[keep]
    )
    video_loss = rows[video.flatten()[keep]].mean()
    logs = {"video_loss": video_loss, "bits_per_video_token": video_loss / math.log(2)}
    if use_text:
        logs["text_loss"] = rows[batch.text_targets.flatten()[keep]].mean()
    return loss, logs
