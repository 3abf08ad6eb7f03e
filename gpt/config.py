"""The GPT's configuration: architecture presets, plus the sizes that come from the data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from vtlm.layers.attention import check_heads
from vtlm.train.checkpoint import ConfigDict, check_positive


@dataclass
class GPTConfig(ConfigDict):
    """A decoder-only transformer over [text | video codes]."""

    dim: int = 384
    depth: int = 8
    heads: int = 6
    # SwiGLU hidden width as a multiple of dim (8/3 keeps the parameters of a 4x GELU MLP).
    mlp_ratio: float = 8 / 3
    # Caption budget in text pieces (captions are cut or padded to it).
    text_len: int = 64
    # Latent frames of video in the context window, and the latent grid (from the tokenizer).
    max_frames: int = 3
    grid_h: int = 8
    grid_w: int = 8
    # Vocabulary sizes (from the text model and the tokenizer's codebook).
    text_size: int = 512
    codebook_size: int = 4375
    # RoPE: factorized 3-D (t, h, w) for video tokens, or 1-D over the whole sequence (ablation).
    rope: Literal["3d", "1d"] = "3d"
    rope_base: float = 10000.0
    tie_embeddings: bool = False
    # Attention backend: auto (flash-attn on CUDA fp16/bf16 when installed, else SDPA), flash, sdpa.
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
    def max_len(self) -> int:
        """BOS + caption + BOV + max_frames latent frames + EOV."""
        return self.text_len + 2 + self.max_frames * self.frame_tokens + 1


PRESETS: dict[str, GPTConfig] = {
    "debug": GPTConfig(dim=64, depth=2, heads=4),
    # ~0.36M on the demo's 1000-code vocabulary: the smallest size of the CPU sweeps
    "micro": GPTConfig(dim=64, depth=3, heads=4),
    # ~1.25M on the demo's 1000-code vocabulary: what a few CPU minutes train best (the demo)
    "mini": GPTConfig(dim=128, depth=4, heads=4),
    "tiny": GPTConfig(dim=192, depth=6, heads=6),  # ~4.6M
    "small": GPTConfig(dim=384, depth=10, heads=6),  # ~20M parameters
    "base": GPTConfig(dim=768, depth=16, heads=12),  # ~120M
    "large": GPTConfig(dim=1024, depth=26, heads=16),  # ~350M
}


def preset(name: str) -> GPTConfig:
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return replace(PRESETS[name])
