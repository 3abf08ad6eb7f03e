"""Causal 3-D building blocks of the tokenizer's encoder and decoder.

Layout everywhere: (B, C, T, H, W). "Causal" means output frame t depends on input frames <= t
only: convolutions pad the past in time (never the future), normalization never mixes frames,
and temporal resampling keeps the first frame on its own, so a clip of 1 + k * r frames maps to
1 + k latent frames and an image (T = 1) to one latent frame in the same code space.

Streaming: inside ``with streaming(module):`` every causal convolution keeps the tail of its
input between calls, so a long video fed in consecutive chunks gives exactly the output of one
pass while memory stays flat (the first chunk must hold 1 + k * r frames, later chunks multiples
of r, where r is the total temporal stride).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class CausalConv3d(nn.Module):
    """Conv3d padded in time on the past only (first frame replicated), zero-padded 'same' in space.

    Args:
        kernel: (kt, kh, kw).
        stride: (st, sh, sw); a temporal stride st maps 1 + k * st frames to 1 + k.
        space_padding: zeros on each side of H and W (default kh // 2: 'same' for odd kernels).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel=(3, 3, 3),
        stride=(1, 1, 1),
        bias: bool = True,
        space_padding: int | None = None,
    ):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        kt, kh, kw = self.kernel
        self.time_pad = kt - 1
        pad_h, pad_w = (kh // 2, kw // 2) if space_padding is None else (space_padding, space_padding)
        self.conv = nn.Conv3d(
            c_in, c_out, self.kernel, stride=self.stride, padding=(0, pad_h, pad_w), bias=bias
        )
        self.stream: dict | None = None  # {"tail": Tensor | None} while streaming

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stream is not None and self.stream.get("tail") is not None:
            x = torch.cat([self.stream["tail"], x], dim=2)
        elif self.time_pad:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x], dim=2)
        out = self.conv(x)
        if self.stream is not None:
            consumed = out.shape[2] * self.stride[0]
            self.stream["tail"] = x[:, :, consumed:].detach()
        return out


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over (channels in group, H, W) of each frame: statistics never mix time steps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        g = self.num_groups
        y = x.reshape(b, g, c // g, t, h * w)
        var, mean = torch.var_mean(y, dim=(2, 4), keepdim=True, unbiased=False)
        y = ((y - mean) * torch.rsqrt(var + self.eps)).reshape(b, c, t, h, w)
        return y * self.weight.view(1, c, 1, 1, 1) + self.bias.view(1, c, 1, 1, 1)


def norm(channels: int, groups: int = 32) -> FrameGroupNorm:
    """Per-frame GroupNorm with gcd(groups, channels) groups (groups == channels: each channel
    normalized alone)."""
    return FrameGroupNorm(num_groups=math.gcd(groups, channels), num_channels=channels, eps=1e-6)


class ResBlock(nn.Module):
    """norm -> SiLU -> causal (time_kernel)x3x3 conv, twice, plus a (projected) skip.

    time_kernel 1 makes both convolutions per-frame spatial ones (a third of the cost); time is
    then mixed by the resampling and input / output convolutions around the blocks.
    """

    def __init__(self, c_in: int, c_out: int, time_kernel: int = 3, groups: int = 32):
        super().__init__()
        kernel = (time_kernel, 3, 3)
        self.norm1, self.conv1 = norm(c_in, groups), CausalConv3d(c_in, c_out, kernel)
        self.norm2, self.conv2 = norm(c_out, groups), CausalConv3d(c_out, c_out, kernel)
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.conv.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided causal conv: space by 2 when ``space``, time by 2 (1 + 2k -> 1 + k) when ``time``."""

    def __init__(self, c_in: int, c_out: int, space: bool, time: bool):
        super().__init__()
        self.conv = CausalConv3d(
            c_in, c_out, kernel=(3, 3, 3), stride=(2 if time else 1, 2 if space else 1, 2 if space else 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Causal conv to r_t * r_s^2 times the channels, then depth-to-space/time.

    In time, latent frame 0 gives output frame 0 alone (the first r_t - 1 frames of the
    shuffled output are dropped), so 1 + k frames become 1 + k * r_t.
    """

    def __init__(self, c_in: int, c_out: int, space: bool, time: bool):
        super().__init__()
        self.rs, self.rt = (2 if space else 1), (2 if time else 1)
        factor = self.rt * self.rs * self.rs
        self.conv = CausalConv3d(c_in, c_out * factor)
        # Same weights for every sub-position at init: starts as nearest-neighbour upsampling
        # (no checkerboard artefacts).
        with torch.no_grad():
            weight = self.conv.conv.weight.view(c_out, factor, *self.conv.conv.weight.shape[1:])
            weight.copy_(weight[:, :1].expand_as(weight))
            self.conv.conv.bias.view(c_out, factor).copy_(self.conv.conv.bias.view(c_out, factor)[:, :1])
        self.stream: dict | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = rearrange(
            self.conv(x),
            "b (c rt rh rw) t h w -> b c (t rt) (h rh) (w rw)",
            rt=self.rt,
            rh=self.rs,
            rw=self.rs,
        )
        first_chunk = self.stream is None or not self.stream.get("started")
        if self.stream is not None:
            self.stream["started"] = True
        return y[:, :, self.rt - 1 :] if first_chunk else y


class SpatialAttention(nn.Module):
    """Self-attention over the H * W positions of each frame separately (causal in time)."""

    def __init__(self, channels: int, heads: int = 1, groups: int = 32):
        super().__init__()
        self.heads = heads
        self.norm = norm(channels, groups)
        self.qkv = nn.Conv3d(channels, 3 * channels, 1)
        self.out = nn.Conv3d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        q, k, v = rearrange(self.qkv(self.norm(x)), "b (n g d) t h w -> n (b t) g (h w) d", n=3, g=self.heads)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(rearrange(y, "(b t) g (h w) d -> b (g d) t h w", b=b, t=t, h=h))


@contextlib.contextmanager
def streaming(module: nn.Module):
    """Within the block, causal layers of ``module`` carry their state from one call to the next."""
    layers = [m for m in module.modules() if isinstance(m, (CausalConv3d, Upsample))]
    for layer in layers:
        layer.stream = {}
    try:
        yield module
    finally:
        for layer in layers:
            layer.stream = None
