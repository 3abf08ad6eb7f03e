"""Train-time augmentation of the attribute classifier: flips, decoded-video artefacts and
tokenizer-like degradations.

A causal 3-D autoencoder with 4x spatial and 4x temporal compression returns clips with soft
edges (spatial blur, the bilinear look of a 4x down/up-sampling), moving objects smeared over
the frames a latent step covers, colors slightly shifted or washed out, and sometimes blocky
4 x 4 artefacts. :class:`Degradation` holds such a degradation per clip and
:meth:`Degradation.apply` renders it; :meth:`Degradation.draw` draws one per clip from a seeded
generator (the training augmentation) and :meth:`Degradation.fixed` gives every clip the same
one (held-out checks). :func:`augment_batch` is the whole training augmentation of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

BLOCK = 4  # side of the blocky artefacts, px (a 4x spatial tokenizer's latent cell)
GROUP = 4  # frames per latent step of a 4x temporal tokenizer (frame 0 alone)
LUMA = (0.299, 0.587, 0.114)  # weights of the gray that desaturation blends towards


@dataclass
class Degradation:
    """One degradation per clip: every field is a float tensor (B,) except ``mix`` (B, 3, 3).

    Applied in this order (:meth:`apply`): temporal smear, blend towards the mean of the
    4-frame group, down/up-sampling, Gaussian blur, blockiness, color mixing, desaturation.
    """

    smear: torch.Tensor  # [0, 1]: weight of the mean of the two neighbouring frames
    group: torch.Tensor  # [0, 1]: blend towards the mean of the frame's 4-frame group
    down: torch.Tensor  # 1, 2 or 4: area down-sampling by that factor, then bilinear up-sampling
    sigma: torch.Tensor  # >= 0 px: spatial Gaussian blur (none below 0.05)
    block: torch.Tensor  # [0, 1]: blend towards the means of 4 x 4 pixel blocks
    mix: torch.Tensor  # (B, 3, 3) color matrix: out_rgb = mix @ rgb (identity: no shift)
    desaturate: torch.Tensor  # [0, 1]: blend towards the pixel's gray (LUMA)

    @classmethod
    def fixed(
        cls,
        b: int,
        smear: float = 0.0,
        group: float = 0.0,
        down: int = 1,
        sigma: float = 0.0,
        block: float = 0.0,
        hue: float = 0.0,
        desaturate: float = 0.0,
    ) -> Degradation:
        """The same degradation for all ``b`` clips; ``hue`` moves that share of each channel
        into the next one (red -> green -> blue -> red), a small hue rotation."""
        full = lambda v: torch.full((b,), float(v))  # noqa: E731
        mix = (1 - hue) * torch.eye(3) + hue * torch.eye(3).roll(1, dims=0)
        return cls(
            full(smear),
            full(group),
            full(down),
            full(sigma),
            full(block),
            mix.expand(b, 3, 3),
            full(desaturate),
        )

    @classmethod
    def draw(cls, b: int, strength: float, gen: torch.Generator) -> Degradation:
        """A random degradation per clip, scaled by ``strength`` (1: as strong as a weak tokenizer).

        At strength 1: smear U(0, 0.6); group blend U(0, 0.6) for 30% of clips; down-sampling
        by 1, 2 or 4 (40 / 30 / 30%); blur sigma U(0, 1.5) px (U(0, 0.75) after down-sampling);
        blockiness U(0, 0.4) for 30% of clips; color mixing off-diagonals U(-0.1, 0.1);
        desaturation U(0, 0.25). Draws come from ``gen`` only (deterministic in its seed).
        """
        u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
        s = float(strength)
        smear = 0.6 * s * u(b)
        group = torch.where(u(b) < 0.3, 0.6 * s * u(b), 0.0)
        pick = u(b)
        down = torch.where(pick < 0.4, 1.0, torch.where(pick < 0.7, 2.0, 4.0)) if s > 0 else torch.ones(b)
        sigma = 1.5 * s * u(b) * torch.where(down > 1, 0.5, 1.0)
        block = torch.where(u(b) < 0.3, 0.4 * s * u(b), 0.0)
        off = 0.1 * s * (2 * u(b, 3, 3) - 1) * (1 - torch.eye(3))
        mix = torch.eye(3) + off
        mix = mix / mix.sum(2, keepdim=True)  # rows sum to 1: grays stay gray
        desaturate = 0.25 * s * u(b)
        return cls(smear, group, down, sigma, block, mix, desaturate)

    def take(self, index: torch.Tensor) -> Degradation:
        """The degradations of the clips at ``index`` (long (N,)), in that order."""
        return Degradation(*[getattr(self, f.name)[index] for f in fields(self)])

    def apply(self, videos: torch.Tensor) -> torch.Tensor:
        """Degraded ``videos``: (B, 3, T, H, W) float in [-1, 1] -> the same shape, in [-1, 1]."""
        b, c, t, h, w = videos.shape
        y = (videos.float() + 1) / 2  # [0, 1]
        per = lambda a: a.to(y).view(b, 1, 1, 1, 1)  # noqa: E731
        y = torch.lerp(y, _neighbour_mean(y), per(self.smear))
        y = torch.lerp(y, _group_mean(y), per(self.group))
        for factor in (2, 4):
            pick = (self.down == factor).nonzero().squeeze(1)
            if len(pick) and h % factor == 0 and w % factor == 0:
                y[pick] = _down_up(y[pick], factor)
        pick = (self.sigma >= 0.05).nonzero().squeeze(1)
        if len(pick):
            y[pick] = _gaussian_blur(y[pick], self.sigma[pick].to(y))
        pick = (self.block > 0).nonzero().squeeze(1)
        if len(pick) and h % BLOCK == 0 and w % BLOCK == 0:
            blocks = F.avg_pool3d(y[pick], (1, BLOCK, BLOCK))
            blocks = blocks.repeat_interleave(BLOCK, 3).repeat_interleave(BLOCK, 4)
            y[pick] = torch.lerp(y[pick], blocks, self.block[pick].to(y).view(-1, 1, 1, 1, 1))
        y = torch.einsum("bij,bjthw->bithw", self.mix.to(y), y)
        gray = torch.einsum("c,bcthw->bthw", torch.tensor(LUMA).to(y), y)[:, None]
        y = torch.lerp(y, gray.expand_as(y), per(self.desaturate))
        return y.clamp(0, 1) * 2 - 1


# Where each direction class goes (an involution) when a clip is mirrored left-right / reversed in time.
MIRRORED = [0] + [1 + (4 - k) % 8 for k in range(8)]
REVERSED = [0] + [1 + (k + 4) % 8 for k in range(8)]


def augment_batch(
    x: torch.Tensor,
    targets: torch.Tensor,
    strength: float,
    gen: torch.Generator,
    degrade: float = 0.0,
    share: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label-preserving augmentation of videos (B, 3, T, R, R) in [-1, 1] and their targets
    (B, NUM_COLORS, 12) (see classifier._targets). Returns (videos, targets), the same shapes.

    1. Mirror left-right and reverse time (each with p = 0.5; direction votes permuted).
    2. A ``share`` of the clips (each with that probability) get a tokenizer-like
       :class:`Degradation` drawn at strength ``degrade``.
    3. Scaled by ``strength``, per clip: a blend towards a 3x3 box blur, per-channel gain and
       offset, per-frame flicker, Gaussian noise and quantization to 24..256 levels.
    Every draw comes from ``gen``; with degrade == 0 or share == 0 the draws are those of the
    augmentation before degradations existed.
    """
    b = len(x)
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    mirror, reverse = u(b) < 0.5, u(b) < 0.5
    x = torch.where(mirror.view(b, 1, 1, 1, 1), x.flip(4), x)
    x = torch.where(reverse.view(b, 1, 1, 1, 1), x.flip(2), x)
    votes = targets[..., 3:]
    votes = torch.where(mirror.view(b, 1, 1), votes[..., MIRRORED], votes)
    votes = torch.where(reverse.view(b, 1, 1), votes[..., REVERSED], votes)
    targets = torch.cat([targets[..., :3], votes], dim=2)
    if degrade > 0 and share > 0:
        chosen = (u(b) < share).nonzero().squeeze(1)
        drawn = Degradation.draw(b, degrade, gen)  # for every clip, so later draws do not depend on the share
        x[chosen] = drawn.take(chosen).apply(x[chosen])
    if strength == 0:
        return x, targets
    _, c, t, r, _ = x.shape
    y = (x + 1) / 2  # [0, 1]
    soft = F.avg_pool3d(y, (1, 3, 3), stride=1, padding=(0, 1, 1), count_include_pad=False)
    y = torch.lerp(y, soft, strength * u(b, 1, 1, 1, 1).clamp(max=1.0))
    gain = 1 + 0.25 * strength * (2 * u(b, c, 1, 1, 1) - 1)
    offset = 0.08 * strength * (2 * u(b, c, 1, 1, 1) - 1) + 0.03 * strength * (2 * u(b, 1, t, 1, 1) - 1)
    y = y * gain + offset
    y = y + 0.04 * strength * u(b, 1, 1, 1, 1) * torch.randn(y.shape, generator=gen)
    levels = (24 + (256 - 24) * u(b, 1, 1, 1, 1)).floor() - 1
    y = (y.clamp(0, 1) * levels).round() / levels
    return y * 2 - 1, targets


def _neighbour_mean(y: torch.Tensor) -> torch.Tensor:
    """Mean of frames t - 1 and t + 1 (edges repeated): (B, C, T, H, W) -> same shape."""
    if y.shape[2] < 2:
        return y
    padded = torch.cat([y[:, :, :1], y, y[:, :, -1:]], dim=2)
    return (padded[:, :, :-2] + padded[:, :, 2:]) / 2


def _group_mean(y: torch.Tensor) -> torch.Tensor:
    """Each frame replaced by the mean of its latent step: frame 0 alone, then groups of GROUP."""
    parts = [y[:, :, :1]] + [y[:, :, s : s + GROUP] for s in range(1, y.shape[2], GROUP)]
    return torch.cat([p.mean(dim=2, keepdim=True).expand_as(p) for p in parts], dim=2)


def _down_up(y: torch.Tensor, factor: int) -> torch.Tensor:
    """Area down-sampling by ``factor`` then bilinear up-sampling back, frame by frame."""
    b, c, t, h, w = y.shape
    frames = y.transpose(1, 2).reshape(b * t, c, h, w)
    small = F.avg_pool2d(frames, factor)
    back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return back.view(b, t, c, h, w).transpose(1, 2)


def _gaussian_blur(y: torch.Tensor, sigma: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Separable Gaussian blur of each clip with its own ``sigma`` (B,) px (reflect padding).

    A sigma under 0.05 leaves the clip as it is (its kernel is a unit impulse).
    """
    b, c, t, h, w = y.shape
    offsets = torch.arange(-radius, radius + 1, dtype=y.dtype, device=y.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma.clamp_min(0.05)[:, None] ** 2))  # (B, K)
    kernel = kernel / kernel.sum(1, keepdim=True)
    weight = kernel[:, None, :]  # (B, 1, K): one depthwise kernel per clip
    out = y
    for axis in (4, 3):  # along W, then H: clips as channels of a grouped conv1d
        moved = out.movedim(axis, -1)  # (B, ..., L)
        shape = moved.shape
        rows = moved.reshape(b, -1, shape[-1]).transpose(0, 1)  # (N, B, L)
        rows = F.pad(rows, (radius, radius), mode="reflect")
        rows = F.conv1d(rows, weight, groups=b)
        out = rows.transpose(0, 1).reshape(shape).movedim(-1, axis)
    return out
