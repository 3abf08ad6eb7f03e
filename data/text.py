"""Caption text as SentencePiece pieces, with the special tokens the GPT needs reserved.

The text model's ids 0..5 are fixed specials (see :data:`SPECIALS`): padding, unknown,
begin / end of sequence and begin / end of video. The GPT lays out its vocabulary as
``[text pieces (these ids) | video codes | ...]``, so these ids mean the same thing in every
text model vtlm trains.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

# Reserved ids, in order; a trained model is checked against this table when loaded.
SPECIALS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>", "<eos>", "<bov>", "<eov>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID, BOV_ID, EOV_ID = range(len(SPECIALS))


def train_text_tokenizer(
    captions: Iterable[str],
    out_path: str | os.PathLike,
    vocab_size: int = 1024,
    model_type: str = "bpe",
    character_coverage: float = 1.0,
    byte_fallback: bool = True,
) -> Path:
    """Train a SentencePiece model on captions and write it to ``out_path`` (``.model``).

    ``vocab_size`` is an upper bound: a small caption corpus yields fewer pieces, and the model
    records how many it has. ``byte_fallback`` spells characters never seen in training as
    UTF-8 bytes (256 extra pieces) instead of mapping them to ``<unk>``, so any caption
    round-trips exactly. Returns the written path.
    """
    captions = [c.strip() for c in captions if c and c.strip()]
    if not captions:
        raise ValueError("captions: no non-empty caption to train the text tokenizer on")
    floor = len(SPECIALS) + (256 if byte_fallback else 0) + 8
    if vocab_size < floor:
        raise ValueError(
            f"vocab_size: expected at least {floor} (byte_fallback={byte_fallback}), got {vocab_size}"
        )
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(captions),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        hard_vocab_limit=False,
        byte_fallback=byte_fallback,
        pad_id=PAD_ID,
        pad_piece=SPECIALS[PAD_ID],
        unk_id=UNK_ID,
        unk_piece=SPECIALS[UNK_ID],
        bos_id=BOS_ID,
        bos_piece=SPECIALS[BOS_ID],
        eos_id=EOS_ID,
        eos_piece=SPECIALS[EOS_ID],
        control_symbols=list(SPECIALS[4:]),
        minloglevel=2,
        num_threads=1,
    )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp{os.getpid()}")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, out_path)
    return out_path


class TextTokenizer:
    """A trained SentencePiece model: captions <-> lists of ids in [0, vocab_size)."""

    def __init__(self, model_path: str | os.PathLike):
        self.path = Path(model_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"text tokenizer: no model file at {self.path}")
        self.sp = spm.SentencePieceProcessor(model_file=str(self.path))
        found = tuple(self.sp.id_to_piece(i) for i in range(len(SPECIALS)))
        if found != SPECIALS:
            raise ValueError(
                f"{self.path}: special ids {found} differ from vtlm's {SPECIALS}; retrain it with vtlm"
            )

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Caption -> piece ids (no specials added)."""
        return list(self.sp.encode(text, out_type=int))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self.sp.encode(list(texts), out_type=int)]

    def decode(self, ids: Sequence[int]) -> str:
        """Piece ids -> caption; special ids are dropped."""
        return self.sp.decode([int(i) for i in ids if int(i) >= len(SPECIALS)])
