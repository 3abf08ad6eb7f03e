"""The masked-decoding transformer's configuration: architecture presets and the sizes that
come from the data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from vtlm.layers.attention import check_heads
from vtlm.train.checkpoint import ConfigDict, check_positive


@dataclass
class MaskGITConfig(ConfigDict):
    """A bidirectional transformer over [caption prefix | video codes, some replaced by MASK]."""

    dim: int = 384
    depth: int = 8
    heads: int = 6
    # SwiGLU hidden width as a multiple of dim.
    mlp_ratio: float = 8 / 3
    # Caption budget in text pieces (captions are cut or padded to it).
    text_len: int = 64
    # Latent frames in the context window, and the latent grid (from the tokenizer).
    max_frames: int = 3
    grid_h: int = 8
    grid_w: int = 8
    # Vocabulary sizes (from the text model and the tokenizer's codebook).
    text_size: int = 512
    codebook_size: int = 4375
    # Frame-causal: latent frames in order, attention block-causal across frames (bidirectional
    # inside a frame); the tokens of one frame are decoded together, frame after frame, and a
    # rollout slides its window like the GPT's. False: every new frame of a window jointly.
    frame_causal: bool = False
    # RoPE: factorized 3-D (t, h, w) for video tokens, or 1-D over the whole sequence.
    rope: Literal["3d", "1d"] = "3d"
    rope_base: float = 10000.0
    # Attention backend: auto (flash-attn on CUDA fp16/bf16 when installed, else SDPA), flash, sdpa.
    # Frame-causal training passes a mask, which always runs on SDPA.
    attention: Literal["auto", "flash", "sdpa"] = "auto"

    def __post_init__(self):
        check_heads(self.dim, self.heads)
        check_positive(self, ("depth", "text_len", "max_frames", "grid_h", "grid_w", "codebook_size"))
        if self.rope not in ("3d", "1d"):
            raise ValueError(f"rope: expected '3d' or '1d', got {self.rope!r}")

    @property
    def frame_tokens(self) -> int:
        return self.grid_h * self.grid_w

    @property
    def prefix_len(self) -> int:
        """BOS + caption + BOV."""
        return self.text_len + 2

    @property
    def max_len(self) -> int:
        """The prefix and max_frames latent frames (no EOV: nothing is predicted after the video)."""
        return self.prefix_len + self.max_frames * self.frame_tokens


# Matched within 5% to the GPT preset of the same name (tests/test_maskgit.py). The output layer
# covers the codebook only (the GPT's covers text pieces too), so the MLPs are a little wider.
PRESETS: dict[str, MaskGITConfig] = {
    "debug": MaskGITConfig(dim=64, depth=2, heads=4, mlp_ratio=4.0),
    "micro": MaskGITConfig(dim=64, depth=3, heads=4, mlp_ratio=3.5),  # matched on 1000 codes
    "mini": MaskGITConfig(dim=128, depth=4, heads=4, mlp_ratio=3.5),  # matched on 1000 codes
    "tiny": MaskGITConfig(dim=192, depth=6, heads=6),
    "small": MaskGITConfig(dim=384, depth=10, heads=6),
    "base": MaskGITConfig(dim=768, depth=16, heads=12),
    "large": MaskGITConfig(dim=1024, depth=26, heads=16),
}


def preset(name: str) -> MaskGITConfig:
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return replace(PRESETS[name])
