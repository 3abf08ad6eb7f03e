"""The causal 3-D autoencoder: video (B, 3, T, H, W) in [-1, 1] <-> codes (B, t, h, w).

t = 1 + (T - 1) / temporal_downsample, h = H / spatial_downsample, w = W / spatial_downsample.
An image is a 1-frame video and gets one latent frame in the same code space. The network
knows nothing of its training objective (see ``objective.py``).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from .blocks import CausalConv3d, Downsample, ResBlock, SpatialAttention, Upsample, norm, streaming
from .config import TokenizerConfig
from .quantizers import Quantized, build_bottleneck


def _block(cfg: TokenizerConfig, c_in: int, c_out: int) -> ResBlock:
    return ResBlock(c_in, c_out, cfg.res_time_kernel, cfg.norm_groups)


def _mid(cfg: TokenizerConfig, channels: int) -> nn.Sequential:
    layers = [_block(cfg, channels, channels)]
    if cfg.attention:
        layers += [SpatialAttention(channels, groups=cfg.norm_groups), _block(cfg, channels, channels)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """(B, 3, T, H, W) -> (B, out_dim, t, h, w)."""

    def __init__(self, cfg: TokenizerConfig, out_dim: int):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mult]
        self.patch = cfg.patch_size
        self.conv_in = CausalConv3d(3 * self.patch**2, widths[0])
        stages = []
        for k, (space, time) in enumerate(cfg.stage_strides()):
            blocks = [_block(cfg, widths[k], widths[k]) for _ in range(cfg.num_res_blocks)]
            stages.append(nn.Sequential(*blocks, Downsample(widths[k], widths[k + 1], space, time)))
        self.stages = nn.Sequential(*stages)
        self.mid = _mid(cfg, widths[-1])
        self.norm_out = norm(widths[-1], cfg.norm_groups)
        self.conv_out = CausalConv3d(widths[-1], out_dim, kernel=(1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.patch > 1:
            x = rearrange(x, "b c t (h p) (w q) -> b (c p q) t h w", p=self.patch, q=self.patch)
        h = self.mid(self.stages(self.conv_in(x)))
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """(B, latent_dim, t, h, w) -> (B, 3, T, H, W), unbounded (the loss sees it as is)."""

    def __init__(self, cfg: TokenizerConfig, in_dim: int):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = CausalConv3d(in_dim, widths[-1])
        self.mid = _mid(cfg, widths[-1])
        stages = []
        for k, (space, time) in reversed(list(enumerate(cfg.stage_strides()))):
            blocks = [_block(cfg, widths[k + 1], widths[k + 1]) for _ in range(cfg.num_res_blocks + 1)]
            stages.append(nn.Sequential(*blocks, Upsample(widths[k + 1], widths[k], space, time)))
        self.stages = nn.Sequential(*stages)
        self.out_blocks = nn.Sequential(
            *[_block(cfg, widths[0], widths[0]) for _ in range(cfg.decoder_out_blocks)]
        )
        self.norm_out = norm(widths[0], cfg.norm_groups)
        self.patch = cfg.patch_size
        self.conv_out = CausalConv3d(widths[0], 3 * self.patch**2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.out_blocks(self.stages(self.mid(self.conv_in(z))))
        y = self.conv_out(torch.nn.functional.silu(self.norm_out(h)))
        if self.patch > 1:
            y = rearrange(y, "b (c p q) t h w -> b c t (h p) (w q)", p=self.patch, q=self.patch)
        return y

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the output convolution (the adversarial loss balances gradients here)."""
        return self.conv_out.conv.weight


class VideoTokenizer(nn.Module):
    """Causal video autoencoder with a discrete (FSQ / LFQ / VQ) or continuous bottleneck."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.bottleneck = build_bottleneck(cfg)
        self.encoder = Encoder(cfg, self.bottleneck.in_dim)
        self.decoder = Decoder(cfg, self.bottleneck.latent_dim)

    @property
    def codebook_size(self) -> int | None:
        return self.bottleneck.codebook_size

    def check_video(self, video: torch.Tensor) -> None:
        """Raise a ValueError saying what was expected for a badly shaped or scaled input."""
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"video: expected (B, 3, T, H, W), got shape {tuple(video.shape)}")
        if not video.is_floating_point():
            raise ValueError(
                f"video: expected a float tensor in [-1, 1], got {video.dtype} (uint8 frames? use vtlm.data.clips.to_clip_tensor)"
            )
        self.cfg.latent_shape(*video.shape[2:])
        lo, hi = float(video.min()), float(video.max())
        if lo < -1.001 or hi > 1.001:
            raise ValueError(
                f"video: expected values in [-1, 1], got [{lo:.3g}, {hi:.3g}] (a [0, 255] tensor? scale it with x / 127.5 - 1)"
            )

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        """Reconstruction (B, 3, T, H, W) and the bottleneck's output, for training."""
        quantized = self.bottleneck(self.encoder(video))
        return self.decoder(quantized.latents), quantized

    def _encode(self, video: torch.Tensor, chunk_frames: int | None) -> Quantized:
        self.check_video(video)
        if chunk_frames is None or video.shape[2] <= 1 + chunk_frames:
            return self.bottleneck(self.encoder(video))
        r = self.cfg.temporal_downsample
        if chunk_frames % r:
            raise ValueError(
                f"chunk_frames: expected a multiple of temporal_downsample {r}, got {chunk_frames}"
            )
        bounds = [0, 1 + chunk_frames] + list(range(1 + 2 * chunk_frames, video.shape[2], chunk_frames))
        bounds.append(video.shape[2])
        with streaming(self.encoder):
            parts = [
                self.bottleneck(self.encoder(video[:, :, a:b])) for a, b in zip(bounds, bounds[1:]) if b > a
            ]
        indices = None if parts[0].indices is None else torch.cat([p.indices for p in parts], dim=1)
        aux = torch.stack([p.aux_loss for p in parts]).mean()
        return Quantized(torch.cat([p.latents for p in parts], dim=2), indices, aux)

    @torch.no_grad()
    def encode(self, video: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Video (B, 3, T, H, W) in [-1, 1] -> code indices (B, t, h, w) int64.

        ``chunk_frames`` (a multiple of the temporal stride) encodes a long video in causal
        chunks, carrying each convolution's past across chunks: the same codes as one pass,
        with memory bounded by the chunk length.
        """
        indices = self._encode(video, chunk_frames).indices
        if indices is None:
            raise TypeError(
                f"encode: the '{self.cfg.quantizer}' bottleneck is continuous; use encode_latents"
            )
        return indices

    @torch.no_grad()
    def encode_latents(self, video: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Video -> the decoder's input latents (B, latent_dim, t, h, w): quantized values for
        a discrete bottleneck (exactly what the codes stand for), the mean for a KL one."""
        return self._encode(video, chunk_frames).latents

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Latents (B, latent_dim, t, h, w) -> video (B, 3, T, H, W) clamped to [-1, 1].

        ``chunk_frames`` decodes that many latent frames at a time (after the first), causally.
        """
        if latents.ndim != 5 or latents.shape[1] != self.bottleneck.latent_dim:
            raise ValueError(
                f"latents: expected (B, {self.bottleneck.latent_dim}, t, h, w), got {tuple(latents.shape)}"
            )
        if chunk_frames is None or latents.shape[2] <= 1 + chunk_frames:
            return self.decoder(latents).clamp(-1, 1)
        bounds = [0, 1 + chunk_frames] + list(range(1 + 2 * chunk_frames, latents.shape[2], chunk_frames))
        bounds.append(latents.shape[2])
        with streaming(self.decoder):
            parts = [self.decoder(latents[:, :, a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]
        return torch.cat(parts, dim=2).clamp(-1, 1)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Code indices (B, t, h, w) -> video (B, 3, 1 + (t - 1) * r, h * s, w * s) in [-1, 1]."""
        if indices.ndim != 4:
            raise ValueError(f"indices: expected (B, t, h, w), got shape {tuple(indices.shape)}")
        size = self.codebook_size
        if size is not None and (int(indices.min()) < 0 or int(indices.max()) >= size):
            raise ValueError(
                f"indices: expected codes in [0, {size}), got [{int(indices.min())}, {int(indices.max())}]"
            )
        return self.decode_latents(self.bottleneck.indices_to_latents(indices), chunk_frames)
