"""The GPT's one vocabulary and its sequences, laid out in one place.

Token ids::

    [0, text_size)                          SentencePiece pieces; ids 0..5 are the specials
                                            <pad> <unk> <bos> <eos> <bov> <eov> (vtlm.data.text)
    [text_size, text_size + codebook_size)  video codes: code c is id text_size + c
    [.., size)                              unused padding up to a multiple of 64

A sequence is ``BOS, caption (text_len ids, padded with <pad>), BOV, video codes (t-major
raster: frame by frame, row by row), EOV``. Every sequence of a model has the same text
budget, so conditional and unconditional sequences (caption all <pad>) line up position by
position, and classifier-free guidance runs both in one batch. An image is a 1-frame video.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vtlm.data.text import BOS_ID, BOV_ID, EOS_ID, EOV_ID, PAD_ID


@dataclass(frozen=True)
class Vocab:
    text_size: int
    codebook_size: int

    @property
    def code_offset(self) -> int:
        return self.text_size

    @property
    def size(self) -> int:
        """Embedding rows: text + codes, rounded up to a multiple of 64."""
        return 64 * ((self.text_size + self.codebook_size + 63) // 64)

    pad, bos, eos, bov, eov = PAD_ID, BOS_ID, EOS_ID, BOV_ID, EOV_ID

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        return codes + self.code_offset

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        codes = ids - self.code_offset
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"ids outside the video code range [{self.code_offset}, {self.code_offset + self.codebook_size})"
            )
        return codes


def prefix_ids(
    vocab: Vocab, captions: list[list[int]], text_len: int, drop: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, text_len + 2): BOS, caption ids cut or padded to text_len, BOV.

    ``drop`` (B,) bool: those captions become all <pad> (the unconditional prefix).
    """
    rows = []
    for b, ids in enumerate(captions):
        ids = [] if drop is not None and bool(drop[b]) else list(ids)[:text_len]
        rows.append([vocab.bos, *ids, *[vocab.pad] * (text_len - len(ids)), vocab.bov])
    return torch.tensor(rows, dtype=torch.long)


def video_positions(t: int, h: int, w: int, offset: int) -> torch.Tensor:
    """(t * h * w, 3) int positions (offset + t, offset + h, offset + w), t-major raster."""
    grid = torch.stack(
        torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"), dim=-1
    )
    return grid.reshape(-1, 3) + offset


def check_request(
    cfg, captions: list[list[int]], num_frames: int, prefix: torch.Tensor | None, needs_round_trip: bool
) -> int:
    """Refuse a sampling request a token model cannot serve, before any network call; returns
    the prefix's latent frames.

    ``cfg``: the model's config (``text_len``, ``max_frames``, ``grid_h``, ``grid_w``);
    ``captions``: caption ids per sample; ``prefix``: (B, t0, h, w) codes or None;
    ``needs_round_trip``: the sampling asks to re-encode its context and no round trip was given.
    """
    batch = len(captions)
    too_long = [len(ids) for ids in captions if len(ids) > cfg.text_len]
    if too_long:
        raise ValueError(
            f"captions: {max(too_long)} text ids, more than the model's text_len of {cfg.text_len} "
            "(training cut captions to it; shorten the caption)"
        )
    t0 = 0 if prefix is None else prefix.shape[1]
    grid = (cfg.grid_h, cfg.grid_w)
    if prefix is not None and (prefix.shape[0] != batch or tuple(prefix.shape[2:]) != grid):
        raise ValueError(
            f"prefix: expected ({batch}, t, {grid[0]}, {grid[1]}) codes, got {tuple(prefix.shape)}"
        )
    if num_frames <= t0:
        raise ValueError(f"num_frames: expected more than the {t0} prefix frames, got {num_frames}")
    if t0 > cfg.max_frames - 1:
        raise ValueError(
            f"prefix: {t0} latent frames do not fit the context of {cfg.max_frames} latent frames with room to "
            f"generate; give at most {cfg.max_frames - 1} (or train with a larger max_frames)"
        )
    if needs_round_trip:
        raise ValueError("reencode_context: needs the tokenizer's round trip (sample through the generator)")
    return t0


def sequence_positions(text_len: int, t: int, h: int, w: int, with_eov: bool = True) -> torch.Tensor:
    """(L, 3) positions of a whole sequence: prefix tokens on the diagonal, then the video grid,
    then EOV one latent frame after the last."""
    prefix = torch.arange(text_len + 2)[:, None].expand(-1, 3)
    parts = [prefix, video_positions(t, h, w, text_len + 2)]
    if with_eov:
        parts.append(torch.tensor([[text_len + 2 + t, text_len + 2, text_len + 2]]))
    return torch.cat(parts)
