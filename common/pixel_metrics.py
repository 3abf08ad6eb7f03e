"""Frame-level reconstruction metrics: MSE, PSNR and SSIM per frame, with an explicit data range.

Videos are (B, C, T, H, W) floats in [-1, 1] (data range 2). Every function returns per-frame
values (B, T), so a caller can average over frames then clips, or plot a per-time-step curve.
SSIM uses the original paper's settings: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
K2 = 0.03, population (not sample) covariances, averaged over the window positions that fit in
the frame and over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DATA_RANGE = 2.0  # [-1, 1]


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 5:
        raise ValueError(
            f"expected two (B, C, T, H, W) videos of one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def mse_per_frame(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each frame: (B, T)."""
    _check(x, y)
    return (x.double() - y.double()).pow(2).mean(dim=(1, 3, 4)).float()


def psnr_per_frame(x: torch.Tensor, y: torch.Tensor, data_range: float = DATA_RANGE) -> torch.Tensor:
    """PSNR in dB of each frame: (B, T); identical frames give +inf."""
    mse = mse_per_frame(x, y).double()
    return (10.0 * torch.log10(data_range**2 / mse)).float()


def _gaussian_1d(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    """The normalized 1-D Gaussian (size,) float64; the 2-D window is its outer product."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _window_mean(frames: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1, H - k + 1, W - k + 1): the Gaussian-weighted mean over every
    window that fits, as two 1-D passes (the window is separable: 2k multiply-adds, not k^2)."""
    return F.conv2d(F.conv2d(frames, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))


def ssim_per_frame(
    x: torch.Tensor, y: torch.Tensor, data_range: float = DATA_RANGE, window: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """SSIM of each frame: (B, T), in [-1, 1]. Frames must be at least ``window`` pixels."""
    _check(x, y)
    b, c, t, h, w = x.shape
    if min(h, w) < window:
        raise ValueError(f"ssim: frames of {h}x{w} are smaller than the {window}x{window} window")
    frames_x = x.double().permute(0, 2, 1, 3, 4).reshape(b * t * c, 1, h, w)
    frames_y = y.double().permute(0, 2, 1, 3, 4).reshape(b * t * c, 1, h, w)
    g = _gaussian_1d(window, sigma, x.device)
    moments = _window_mean(
        torch.cat([frames_x, frames_y, frames_x * frames_x, frames_y * frames_y, frames_x * frames_y]), g
    )
    mu_x, mu_y, xx, yy, xy = moments.chunk(5)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3)).view(b, t, c).mean(dim=2).float()
