"""A 3-D PatchGAN discriminator for videos and images (an image is a 1-frame video).

Layout of the network (``num_layers = L``)::

    conv(3 -> c, stride (2, 2, 2))                          LeakyReLU(0.2)
    conv(c -> 2c, stride (2, 2, 2))      per-frame norm     LeakyReLU(0.2)   } L - 1 times,
    ...                                                                      } widths capped
    conv(-> 2^L c, stride (1, 1, 1))     per-frame norm     LeakyReLU(0.2)     at max_channels
    conv(-> 1, stride (1, 1, 1))                            logits

Every conv has kernel ``(temporal_kernel, 4, 4)``. Space is zero-padded by 1 pixel on each
side. Time is padded *causally*: ``temporal_kernel - 1`` copies of the first frame are put in
front of the clip (replicate padding of the past only), and nothing after it. This choice

* lets any clip length work, including ``T = 1``: a single image is seen as a still video,
  so images and videos share one set of weights;
* keeps the discriminator causal, like the tokenizer: output time step ``j`` depends only on
  input frames ``<= 2^L * j``;
* maps the tokenizer's ``T = 1 + 2^L k`` clips to ``1 + k`` output steps (``T = 17, L = 3``
  gives 3 steps; a stride-2 causal layer turns ``T`` frames into ``(T - 1) // 2 + 1``).

The normalization is a GroupNorm applied to each frame separately (time folded into the
batch), so statistics never mix time steps nor batch elements; that is what keeps the
causality above true, and it behaves the same for T = 1 and T = 17.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import CausalConv3d, norm


@dataclass
class DiscriminatorConfig:
    """Knobs of :class:`PatchDiscriminator3D`.

    channels: width of the first conv; each stride-2 layer after it doubles the width.
    num_layers: number of stride-2 (time and space) conv layers. Inputs need
        ``H, W >= 3 * 2**num_layers`` pixels (24 px for the default 3).
    max_channels: cap on the width of any layer.
    temporal_kernel: kernel size in time of every conv (1 makes it a per-frame 2-D PatchGAN).
    """

    channels: int = 64
    num_layers: int = 3
    max_channels: int = 512
    temporal_kernel: int = 3

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {self.channels}")
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        if self.max_channels < self.channels:
            raise ValueError(f"max_channels must be >= channels ({self.channels}), got {self.max_channels}")
        if self.temporal_kernel < 1:
            raise ValueError(f"temporal_kernel must be >= 1, got {self.temporal_kernel}")

    @classmethod
    def debug(cls) -> DiscriminatorConfig:
        """A tiny discriminator for tests: 8 -> 16 channels, 2 stride-2 layers."""
        return cls(channels=8, num_layers=2, max_channels=32, temporal_kernel=3)


def _conv(c_in: int, c_out: int, temporal_kernel: int, stride: int, bias: bool) -> CausalConv3d:
    """Kernel (kt, 4, 4), 1 px of zeros in space: (T, H, W) -> ((T - 1) // s + 1, (H - 2) // s + 1, ...)."""
    return CausalConv3d(
        c_in, c_out, kernel=(temporal_kernel, 4, 4), stride=(stride,) * 3, bias=bias, space_padding=1
    )


class PatchDiscriminator3D(nn.Module):
    """Causal 3-D PatchGAN: a grid of real/fake logits, one per spacetime patch."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        kt = config.temporal_kernel
        width = [min(config.channels * 2**i, config.max_channels) for i in range(config.num_layers + 1)]

        layers: list[nn.Module] = [_conv(3, width[0], kt, stride=2, bias=True), nn.LeakyReLU(0.2)]
        for i in range(1, config.num_layers):
            layers += [
                _conv(width[i - 1], width[i], kt, stride=2, bias=False),
                norm(width[i]),
                nn.LeakyReLU(0.2),
            ]
        c_last = width[config.num_layers - 1]
        layers += [
            _conv(c_last, width[config.num_layers], kt, stride=1, bias=False),
            norm(width[config.num_layers]),
            nn.LeakyReLU(0.2),
            _conv(width[config.num_layers], 1, kt, stride=1, bias=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PatchGAN init: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.GroupNorm):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    @property
    def min_size(self) -> int:
        """Smallest H and W (pixels) the network accepts."""
        return 3 * 2**self.config.num_layers

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Score patches of a clip.

        video: float (B, 3, T, H, W) in [-1, 1], any T >= 1, H and W >= ``min_size``.
        Returns float logits (B, 1, t', h', w'), unbounded (high = real), with
        ``t' = T`` after ``(T - 1) // 2 + 1`` applied ``num_layers`` times and
        ``h' = H // 2**num_layers - 2`` (same for w'). For the default config, (T, 32, 32)
        gives (t', 2, 2) and (T, 64, 64) gives (t', 6, 6); T = 1, 9, 17 give t' = 1, 2, 3.
        """
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"video must be (B, 3, T, H, W), got {tuple(video.shape)}")
        h, w = video.shape[-2:]
        if min(h, w) < self.min_size:
            raise ValueError(
                f"frames of {h}x{w} px are too small for num_layers={self.config.num_layers}: "
                f"need at least {self.min_size} px"
            )
        return self.layers(video)
