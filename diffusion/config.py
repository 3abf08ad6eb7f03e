"""The diffusion transformer's configuration: architecture presets matched to the GPT's by
parameter count, plus the sizes that come from the data (latent grid, channels, text)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from vtlm.layers.attention import check_heads
from vtlm.train.checkpoint import ConfigDict, check_positive


@dataclass
class DiTConfig(ConfigDict):
    """A bidirectional transformer over patchified latents with an in-context caption prefix."""

    dim: int = 384
    depth: int = 8
    heads: int = 6
    mlp_ratio: float = 8 / 3
    # Latent patch (space only: every latent frame keeps its own tokens, so prefix frames and,
    # later, per-frame noise levels stay separable).
    patch: int = 1
    # Caption budget in text pieces, as in the GPT.
    text_len: int = 64
    # Latent frames in the window, the latent grid and channels (from the tokenizer).
    max_frames: int = 3
    grid_h: int = 8
    grid_w: int = 8
    latent_dim: int = 5
    text_size: int = 512
    rope: Literal["3d", "1d"] = "3d"
    rope_base: float = 10000.0
    attention: Literal["auto", "flash", "sdpa"] = "auto"
    # Frame-causal attention (the forcing family): a latent frame sees the caption, itself and
    # earlier frames; the caption sees only itself. False: bidirectional (the DiT baseline; older
    # checkpoints, which lack the field, load as such).
    frame_causal: bool = False

    def __post_init__(self):
        check_heads(self.dim, self.heads)
        if self.grid_h % self.patch or self.grid_w % self.patch:
            raise ValueError(
                f"patch: expected a divisor of the latent grid {self.grid_h}x{self.grid_w}, got {self.patch}"
            )
        check_positive(self, ("depth", "text_len", "max_frames", "latent_dim"))

    @property
    def frame_tokens(self) -> int:
        return (self.grid_h // self.patch) * (self.grid_w // self.patch)


# Matched to the GPT presets of the same name within 5% of parameters on a shapes vocabulary
# (4375 FSQ codes of 5 channels, 512 text pieces; `mini`: the demo's 1000 codes of 4 channels): a DiT block carries an extra adaLN modulation of 6 dim^2,
# the GPT an output head of vocab x dim, so the DiT is a little shallower.
PRESETS: dict[str, DiTConfig] = {
    "debug": DiTConfig(dim=64, depth=2, heads=4),
    "micro": DiTConfig(dim=64, depth=3, heads=4, mlp_ratio=5.0),  # matched on 1000 codes, 4 channels
    "mini": DiTConfig(dim=128, depth=4, heads=4, mlp_ratio=2.5),  # matched on 1000 codes, 4 channels
    "tiny": DiTConfig(dim=192, depth=6, heads=6, mlp_ratio=3.0),
    "small": DiTConfig(dim=384, depth=8, heads=6),
    "base": DiTConfig(dim=768, depth=11, heads=12),
    "large": DiTConfig(dim=1024, depth=18, heads=16),
}


# The frame-causal family: the DiT presets with the causal mask (the mask adds no parameters),
# except `debug`: the DiT's debug is 72% below the GPT debug on the debug tokenizer's 4375
# codes, so this one is wider (same depth, same op count: still seconds on a CPU) and matched.
FORCING_PRESETS: dict[str, DiTConfig] = {
    **{name: replace(cfg, frame_causal=True) for name, cfg in PRESETS.items()},
    "debug": DiTConfig(dim=128, depth=2, heads=4, frame_causal=True),
}


def preset(name: str, frame_causal: bool = False) -> DiTConfig:
    """The DiT preset ``name``; with ``frame_causal``, the forcing family's preset of that name."""
    presets = FORCING_PRESETS if frame_causal else PRESETS
    if name not in presets:
        raise ValueError(f"preset: expected one of {sorted(presets)}, got {name!r}")
    return replace(presets[name])
