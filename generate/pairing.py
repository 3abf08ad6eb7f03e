"""The tokenizer and text model a trained generator pairs with, found and checked, and what
every generator does with them (captions to ids, prefix checks, the context round trip)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from vtlm.data.text import TextTokenizer
from vtlm.tokenizer.encode import weights_sha256
from vtlm.tokenizer.io import load_tokenizer
from vtlm.tokenizer.model import VideoTokenizer


def load_pairing(
    path: str | os.PathLike,
    meta: dict,
    device: str,
    tokenizer_dir: str | None,
    text_model: str | None,
    text_size: int,
) -> tuple[VideoTokenizer, TextTokenizer]:
    """The tokenizer (checked against the weights hash recorded at training time) and the text
    model (checked against the vocabulary size) of the model directory ``path``."""
    recorded = meta.get("tokenizer") or {}
    tokenizer_dir = tokenizer_dir or recorded.get("dir")
    if not tokenizer_dir or not Path(tokenizer_dir).is_dir():
        raise FileNotFoundError(
            f"{path}: the tokenizer it was trained with is not at {tokenizer_dir!r}; pass tokenizer_dir"
        )
    if recorded.get("sha256") and weights_sha256(tokenizer_dir) != recorded["sha256"]:
        raise ValueError(f"{tokenizer_dir}: not the tokenizer {path} was trained on (weights hash differs)")
    tokenizer = load_tokenizer(tokenizer_dir, device=device)
    text = TextTokenizer(text_model or recorded.get("text_model"))
    if text.vocab_size != text_size:
        raise ValueError(f"text model: {text.vocab_size} pieces, {path} expects {text_size}")
    return tokenizer, text


def round_trip(tokenizer: VideoTokenizer) -> Callable[[torch.Tensor], torch.Tensor]:
    """codes (B, t, h, w) -> the codes of their decoded pixels, encoded again: the anti-drift
    context of a token generator. The whole video goes through, so the causal tokenizer sees
    each frame after the frames before it, as when it encoded real clips."""

    def reencode(codes: torch.Tensor) -> torch.Tensor:
        return tokenizer.encode(tokenizer.decode(codes))

    return reencode


def caption_ids(text: TextTokenizer, captions: list[str], budget: int) -> list[list[int]]:
    """Caption ids, with a clear error for a caption longer than the model's text budget."""
    ids = text.encode_batch(captions)
    for caption, row in zip(captions, ids):
        if len(row) > budget:
            raise ValueError(
                f"caption: {len(row)} text pieces, longer than the text budget of {budget}: {caption!r}"
            )
    return ids


def fit_captions(text: TextTokenizer, captions: list[str], budget: int) -> list[str]:
    """Captions cut to at most ``budget`` text pieces, as training cut them."""
    out = []
    for caption, ids in zip(captions, text.encode_batch(captions)):
        keep = budget
        while len(ids) > budget:  # decoding and re-encoding can merge pieces differently
            caption = text.decode(ids[:keep])
            ids, keep = text.encode(caption), keep - 1
        out.append(caption)
    return out


def check_prefix(prefix, batch: int, resolution: int) -> None:
    """Prefix frames must be (batch, 3, k, resolution, resolution)."""
    if prefix.shape[0] != batch or tuple(prefix.shape[-2:]) != (resolution, resolution):
        raise ValueError(
            f"prefix: expected ({batch}, 3, k, {resolution}, {resolution}), got {tuple(prefix.shape)}"
        )
