"""One adapter over vector-quantize-pytorch's FSQ, LFQ and VQ, and two continuous bottlenecks.

Every bottleneck takes the encoder's output (B, in_dim, t, h, w) and returns one type,
:class:`Quantized`: the latents the decoder reads (B, latent_dim, t, h, w), the code indices
(B, t, h, w) int64 (None for continuous bottlenecks), an auxiliary loss (already weighted;
zero where there is none) and a few statistics. ``indices_to_latents`` inverts the indexing
exactly, so codes written to disk decode to the same video. Quantizer math runs in float32
even under autocast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from .config import TokenizerConfig


@dataclass
class Quantized:
    """What a bottleneck returns, in training and in evaluation alike."""

    latents: torch.Tensor  # (B, D, t, h, w), float
    indices: torch.Tensor | None  # (B, t, h, w), int64; None when continuous
    aux_loss: torch.Tensor  # scalar, weighted
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


def _flat(z: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    b, _, t, h, w = z.shape
    return rearrange(z, "b d t h w -> b (t h w) d").float(), (b, t, h, w)


def _unflat(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    b, t, h, w = shape
    return rearrange(x, "b (t h w) d -> b d t h w", t=t, h=h, w=w)


class Bottleneck(nn.Module):
    """Common interface: ``in_dim`` (encoder output channels), ``latent_dim``, ``codebook_size``."""

    in_dim: int
    latent_dim: int
    codebook_size: int | None = None

    def indices_to_latents(self, indices: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} is continuous: it has no code indices")


class FSQBottleneck(Bottleneck):
    """Finite scalar quantization: each channel rounded to a few levels; no codebook to collapse."""

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        from vector_quantize_pytorch import FSQ

        self.fsq = FSQ(levels=list(levels))
        self.in_dim = self.latent_dim = len(levels)
        self.codebook_size = self.fsq.codebook_size

    def forward(self, z: torch.Tensor) -> Quantized:
        x, shape = _flat(z)
        with torch.autocast(z.device.type, enabled=False):
            q, idx = self.fsq(x)
        return Quantized(_unflat(q, shape), idx.long().view(shape), z.new_zeros(()).float())

    def indices_to_latents(self, indices: torch.Tensor) -> torch.Tensor:
        b, t, h, w = indices.shape
        codes = self.fsq.indices_to_codes(indices.reshape(b, -1))
        return _unflat(codes.float(), (b, t, h, w))


class LFQBottleneck(Bottleneck):
    """Lookup-free quantization: the sign of each channel is one bit of the code.

    The entropy loss (per-sample entropy low, batch entropy high) is scaled by
    ``entropy_scale``, which the training objective anneals.
    """

    def __init__(self, bits: int, entropy_weight: float, commitment_weight: float):
        super().__init__()
        from vector_quantize_pytorch import LFQ

        self.lfq = LFQ(dim=bits, codebook_size=2**bits, entropy_loss_weight=1.0, commitment_loss_weight=1.0)
        self.in_dim = self.latent_dim = bits
        self.codebook_size = 2**bits
        self.entropy_weight, self.commitment_weight = entropy_weight, commitment_weight
        self.entropy_scale = 1.0

    def forward(self, z: torch.Tensor) -> Quantized:
        x, shape = _flat(z)
        with torch.autocast(z.device.type, enabled=False):
            (q, idx, _), parts = self.lfq(x, return_loss_breakdown=True)
        entropy = parts.per_sample_entropy - parts.batch_entropy
        aux = self.entropy_scale * self.entropy_weight * entropy + self.commitment_weight * parts.commitment
        stats = {
            "lfq_batch_entropy": parts.batch_entropy.detach(),
            "lfq_sample_entropy": parts.per_sample_entropy.detach(),
        }
        return Quantized(
            _unflat(q, shape), idx.long().view(shape), aux if self.training else aux.detach(), stats
        )

    def indices_to_latents(self, indices: torch.Tensor) -> torch.Tensor:
        b, t, h, w = indices.shape
        codes = self.lfq.indices_to_codes(indices.reshape(b, -1))
        return _unflat(codes.float(), (b, t, h, w))


class VQBottleneck(Bottleneck):
    """Nearest-code VQ with an EMA codebook, k-means init and dead-code replacement."""

    def __init__(
        self, codebook_size: int, dim: int, decay: float, dead_code_threshold: float, commitment_weight: float
    ):
        super().__init__()
        from vector_quantize_pytorch import VectorQuantize

        self.vq = VectorQuantize(
            dim=dim,
            codebook_size=codebook_size,
            decay=decay,
            kmeans_init=True,
            kmeans_iters=10,
            threshold_ema_dead_code=dead_code_threshold,
            commitment_weight=commitment_weight,
        )
        self.in_dim = self.latent_dim = dim
        self.codebook_size = codebook_size

    def forward(self, z: torch.Tensor) -> Quantized:
        x, shape = _flat(z)
        with torch.autocast(z.device.type, enabled=False):
            q, idx, commit = self.vq(x)
        return Quantized(_unflat(q, shape), idx.long().view(shape), commit.sum())

    def indices_to_latents(self, indices: torch.Tensor) -> torch.Tensor:
        b, t, h, w = indices.shape
        return _unflat(self.vq.get_output_from_indices(indices.reshape(b, -1)).float(), (b, t, h, w))


class IdentityBottleneck(Bottleneck):
    """A plain autoencoder: the latents are the encoder's output."""

    def __init__(self, channels: int):
        super().__init__()
        self.in_dim = self.latent_dim = channels

    def forward(self, z: torch.Tensor) -> Quantized:
        return Quantized(z, None, z.new_zeros(()).float())


class KLBottleneck(Bottleneck):
    """A KL autoencoder: the encoder gives a mean and a log-variance per channel; training samples
    from that Gaussian, evaluation takes the mean; the KL to N(0, I) is the auxiliary loss."""

    def __init__(self, channels: int, kl_weight: float):
        super().__init__()
        self.latent_dim, self.in_dim = channels, 2 * channels
        self.kl_weight = kl_weight

    def forward(self, z: torch.Tensor) -> Quantized:
        mean, logvar = z.float().chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        latents = mean + torch.randn_like(mean) * (0.5 * logvar).exp() if self.training else mean
        return Quantized(latents, None, self.kl_weight * kl, {"kl": kl.detach()})


def build_bottleneck(cfg: TokenizerConfig) -> Bottleneck:
    if cfg.quantizer == "fsq":
        return FSQBottleneck(cfg.fsq_levels)
    if cfg.quantizer == "lfq":
        return LFQBottleneck(cfg.lfq_bits, cfg.lfq_entropy_weight, cfg.lfq_commitment_weight)
    if cfg.quantizer == "vq":
        return VQBottleneck(
            cfg.vq_codebook_size,
            cfg.vq_dim,
            cfg.vq_decay,
            cfg.vq_dead_code_threshold,
            cfg.vq_commitment_weight,
        )
    if cfg.quantizer == "kl":
        return KLBottleneck(cfg.latent_channels, cfg.kl_weight)
    return IdentityBottleneck(cfg.latent_channels)
