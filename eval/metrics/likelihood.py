"""Bits per video token of a GPT on held-out clips: how well it predicts real video codes.

The held-out clips are encoded by the GPT's own tokenizer and cut into windows of the
model's context (``max_frames`` latent frames, every start position), each with its caption;
the figure is the mean next-token cross-entropy over the video tokens of a clip's windows,
in bits. It is the validation loss of training, measured on the harness's clips.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vtlm.generate.gpt import GPTGenerator
from vtlm.generate.pairing import caption_ids
from vtlm.gpt.objective import build_sequences


@torch.no_grad()
def bits_per_video_token(
    generator: GPTGenerator, videos: torch.Tensor, captions: list[str], batch_size: int = 16
) -> np.ndarray:
    """Per clip, mean bits per video token over its windows: float64 (N,).

    ``videos``: (N, 3, T, R, R) in [-1, 1] with T = 1 + k * the tokenizer's temporal stride.
    """
    model, cfg = generator.model, generator.cfg
    device = model.embed.weight.device
    ids = caption_ids(generator.text, generator.fit_captions(captions), cfg.text_len)
    out = []
    for start in range(0, len(videos), batch_size):
        codes = generator.tokenizer.encode(videos[start : start + batch_size].to(device))  # (B, t, h, w)
        text = ids[start : start + batch_size]
        window = min(cfg.max_frames, codes.shape[1])
        per_window = []
        for s in range(codes.shape[1] - window + 1):
            batch = build_sequences(model.vocab, codes[:, s : s + window], text, cfg.text_len, None)
            logits = model(batch.ids[:, :-1], batch.positions[:-1])
            nats = F.cross_entropy(logits.float().transpose(1, 2), batch.ids[:, 1:], reduction="none")
            per_window.append(nats[:, batch.video_targets].mean(dim=1) / math.log(2))
        out.append(torch.stack(per_window, dim=1).mean(dim=1).double().cpu())
    return torch.cat(out).numpy()
