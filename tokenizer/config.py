"""The tokenizer's configuration: one dataclass, named presets, validation that names the field."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

from vtlm.train.checkpoint import config_from_dict

QUANTIZERS = ("fsq", "lfq", "vq", "none", "kl")


@dataclass
class TokenizerConfig:
    """Shape and bottleneck of the causal 3-D autoencoder."""

    # Temporal compression: 1 + k * temporal_downsample frames -> 1 + k latent frames (1, 2, 4, 8).
    temporal_downsample: int = 4
    # Spatial compression per side: H x W -> H / s x W / s (4, 8, 16).
    spatial_downsample: int = 4
    # Pixels per side folded into channels before the first convolution (space-to-depth) and
    # unfolded after the last: part of spatial_downsample, and what makes CPU training fast.
    patch_size: int = 1
    # Width at the first level; stage k has base_channels * channel_mult[k].
    base_channels: int = 64
    # One multiplier per resolution level: max(log2 s, log2 t) + 1 entries.
    channel_mult: tuple[int, ...] = (1, 2, 4)
    # Residual blocks per level, in the encoder and (one more) in the decoder.
    num_res_blocks: int = 1
    # Residual blocks of the decoder at the output resolution, after its last upsampling (the
    # encoder's first level has num_res_blocks there): what draws sharp edges at full size.
    decoder_out_blocks: int = 0
    # Temporal kernel of the residual blocks' convolutions: 3 (full 3x3x3) or 1 (per-frame 3x3,
    # a third of the cost; time is mixed by the resampling and input / output convolutions).
    res_time_kernel: int = 3
    # Groups of the per-frame GroupNorm (gcd with the width): 32 at 32 channels normalizes each
    # channel alone; the demo's preset uses 8 (4 channels a group).
    norm_groups: int = 32
    # Spatial self-attention at the bottleneck (per frame, so still causal).
    attention: bool = False
    # Bottleneck: fsq (default), lfq, vq (discrete codes) or none / kl (continuous latents).
    quantizer: Literal["fsq", "lfq", "vq", "none", "kl"] = "fsq"
    # FSQ levels per latent channel: the codebook is their product (7*5*5*5*5 = 4375).
    fsq_levels: tuple[int, ...] = (7, 5, 5, 5, 5)
    # LFQ: codebook of 2**lfq_bits codes, one bit per latent channel.
    lfq_bits: int = 12
    # LFQ entropy loss weight (annealed by the training objective) and commitment weight.
    lfq_entropy_weight: float = 0.1
    lfq_commitment_weight: float = 0.25
    # VQ: codebook size, code dimension, EMA decay, dead-code threshold (EMA usage below it).
    vq_codebook_size: int = 4096
    vq_dim: int = 8
    vq_decay: float = 0.99
    vq_dead_code_threshold: float = 2.0
    vq_commitment_weight: float = 0.25
    # Continuous bottleneck channels (none / kl); kl_weight scales the KL term.
    latent_channels: int = 8
    kl_weight: float = 1e-6

    def __post_init__(self):
        self.channel_mult = tuple(self.channel_mult)
        self.fsq_levels = tuple(self.fsq_levels)
        if self.temporal_downsample not in (1, 2, 4, 8):
            raise ValueError(f"temporal_downsample: expected 1, 2, 4 or 8, got {self.temporal_downsample}")
        if self.spatial_downsample not in (2, 4, 8, 16):
            raise ValueError(
                f"spatial_downsample: expected 4, 8 or 16 (2 for tests), got {self.spatial_downsample}"
            )
        if self.patch_size not in (1, 2, 4) or self.patch_size > self.spatial_downsample:
            raise ValueError(
                f"patch_size: expected 1, 2 or 4 and at most spatial_downsample, got {self.patch_size}"
            )
        if len(self.channel_mult) != self.num_stages + 1:
            raise ValueError(
                f"channel_mult: expected {self.num_stages + 1} entries (one per level for spatial "
                f"{self.spatial_downsample}x with patch {self.patch_size}, temporal {self.temporal_downsample}x), "
                f"got {self.channel_mult}"
            )
        if self.base_channels < 8 or any(m < 1 for m in self.channel_mult):
            raise ValueError(
                f"base_channels, channel_mult: expected >= 8 and >= 1, got {self.base_channels}, {self.channel_mult}"
            )
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer: expected one of {QUANTIZERS}, got {self.quantizer!r}")
        if self.quantizer == "fsq" and (not self.fsq_levels or any(level < 2 for level in self.fsq_levels)):
            raise ValueError(f"fsq_levels: expected levels >= 2, got {self.fsq_levels}")
        if not 1 <= self.lfq_bits <= 18:
            raise ValueError(f"lfq_bits: expected 1..18, got {self.lfq_bits}")
        if self.res_time_kernel not in (1, 3):
            raise ValueError(f"res_time_kernel: expected 1 or 3, got {self.res_time_kernel}")
        if self.norm_groups < 1:
            raise ValueError(f"norm_groups: expected >= 1, got {self.norm_groups}")
        if self.num_res_blocks < 0 or self.decoder_out_blocks < 0:
            raise ValueError(
                f"num_res_blocks, decoder_out_blocks: expected >= 0, got {self.num_res_blocks}, {self.decoder_out_blocks}"
            )

    @property
    def num_stages(self) -> int:
        return max(
            int(math.log2(self.spatial_downsample // self.patch_size)),
            int(math.log2(self.temporal_downsample)),
        )

    def stage_strides(self) -> list[tuple[bool, bool]]:
        """(space, time) downsampling of each encoder stage: space first, time in the last stages."""
        ns = int(math.log2(self.spatial_downsample // self.patch_size))
        nt, n = int(math.log2(self.temporal_downsample)), self.num_stages
        return [(k < ns, k >= n - nt) for k in range(n)]

    @property
    def codebook_size(self) -> int | None:
        """Number of discrete codes, or None for a continuous bottleneck."""
        if self.quantizer == "fsq":
            return math.prod(self.fsq_levels)
        if self.quantizer == "lfq":
            return 2**self.lfq_bits
        if self.quantizer == "vq":
            return self.vq_codebook_size
        return None

    @property
    def latent_dim(self) -> int:
        """Channels of the quantized latents (what decode_latents takes)."""
        return {"fsq": len(self.fsq_levels), "lfq": self.lfq_bits, "vq": self.vq_dim}.get(
            self.quantizer, self.latent_channels
        )

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(t, h, w) of the codes of a (frames, height, width) clip; raises on impossible shapes."""
        r, s = self.temporal_downsample, self.spatial_downsample
        if frames < 1 or (frames - 1) % r:
            raise ValueError(f"frames: expected 1 + k * {r} (temporal_downsample {r}), got {frames}")
        if height % s or width % s:
            raise ValueError(
                f"resolution: expected height and width divisible by {s} (spatial_downsample), got {height}x{width}"
            )
        return 1 + (frames - 1) // r, height // s, width // s

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> TokenizerConfig:
        return config_from_dict(cls, values)


PRESETS: dict[str, TokenizerConfig] = {
    # Seconds on a CPU: tests and the quick demo (0.4M parameters).
    "debug": TokenizerConfig(patch_size=2, base_channels=16, channel_mult=(1, 2, 2)),
    # The demo's tokenizer: 9x32x32 -> 3x8x8 codes, trained in minutes on 2 CPU cores (1.4M).
    # Per-frame 3x3 convolutions in the residual blocks (time mixed by the strided and output
    # convolutions) and 4 channels per norm group, 0.39 s a step here: 1,000 steps (6.4 minutes)
    # gave 23.5 dB and 99.6% of colors kept on held-out 17-frame shapes clips, against 16.3 dB
    # and 14% for the full 3x3x3, 32-group, 5.5M network it replaces at 300 of its 0.89 s steps
    # (4.5 minutes); see issue 13's notes.
    "small": TokenizerConfig(
        patch_size=2,
        base_channels=32,
        channel_mult=(1, 2, 2),
        decoder_out_blocks=1,
        res_time_kernel=1,
        norm_groups=8,
    ),
    # What a GPU user trains at 128-256 px: 8x spatial, 4x temporal compression.
    "base": TokenizerConfig(
        spatial_downsample=8, base_channels=128, channel_mult=(1, 2, 2, 4), num_res_blocks=2, attention=True
    ),
}


def preset(name: str) -> TokenizerConfig:
    """A fresh copy of a named preset (change fields with dataclasses.replace)."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return replace(PRESETS[name])
