"""Frechet Video Distance (FVD) and Kernel Video Distance (KVD), computed the standard way.

"Standard" means the protocol of the original TensorFlow FVD code (google-research
``frechet_video_distance``) with the Kinetics-400 I3D network, here as the widely used TorchScript
port ``i3d_torchscript.pt`` (the file StyleGAN-V's FVD loads). vtlm ships no weights and downloads
nothing: the user passes the file's path (``--i3d PATH``); without it FVD is reported as
:data:`FVD_MISSING`.

Protocol, step by step:

1. Videos are uint8 (B, T, H, W, 3) RGB. The first ``num_frames`` frames of each are used
   (16 by default, the usual FVD clip length; at least 10).
2. Each frame is resized to 224x224 with TF1's ``tf.image.resize_bilinear`` rule
   (align_corners=False, no half-pixel centers): source coordinate = dst * in / out, no offset,
   no crop, no aspect-ratio preservation. :func:`tf_resize_bilinear` implements it; torch's
   ``interpolate`` uses half-pixel centers and gives different pixels.
3. Values are scaled to [-1, 1] as ``2 * x / 255 - 1``.
4. The I3D is called as ``model(videos, rescale=False, resize=False, return_features=True)``
   on float (B, 3, T, 224, 224) and returns the 400 Kinetics logits averaged over time.
5. FVD is the Frechet distance between Gaussians fitted to the real and the fake features,
   KVD the unbiased cubic-polynomial-kernel MMD^2 between them (see :mod:`vtlm.eval.metrics.frechet`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .frechet import frechet_from_features, kernel_distance

I3D_RESOLUTION = 224
MIN_FRAMES = 10
I3D_MISSING = "FVD needs the Kinetics-400 I3D TorchScript file (i3d_torchscript.pt); pass --i3d PATH"
FVD_MISSING = "FVD: not computed (no I3D weights; pass --i3d PATH)"


@dataclass
class FVDConfig:
    """Every setting that changes an FVD/KVD number; all of them are copied into the result."""

    i3d: str | None = None  # path to i3d_torchscript.pt (Kinetics-400); nothing is downloaded
    num_frames: int = 16  # first frames of each video fed to I3D; >= 10 (see MIN_FRAMES)
    # Covariance divisor. tf-gan's frechet_classifier_distance_from_activations, which the original
    # FVD code calls, divides by n - 1 ("sigma = (1 / (n - 1)) * (X - mu) (X - mu)^T",
    # tensorflow_gan/python/eval/classifier_metrics.py), so ddof=1. StyleGAN-V's stats divide by n.
    ddof: int = 1
    batch_size: int = 16  # videos per I3D forward pass; does not change the numbers
    # The sample sets are shuffled (seed) and split into this many disjoint parts; FVD is reported
    # per part and as mean/std over parts. 1 = one FVD on all samples. FVD is biased upward at
    # small sample counts, so compare numbers only at equal samples per repeat.
    num_repeats: int = 1
    kvd_num_subsets: int = 100  # random subsets averaged for KVD
    kvd_subset_size: int = 1000  # capped at the smaller sample count
    seed: int = 0  # for the repeat shuffle and the KVD subsets
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.num_frames < MIN_FRAMES:
            # I3D downsamples time by 8 and ends in a 2-step temporal average pool: much shorter
            # clips leave it next to nothing to look at.
            raise ValueError(f"num_frames: I3D needs at least {MIN_FRAMES} frames, got {self.num_frames}")
        if self.ddof not in (0, 1):
            raise ValueError(f"ddof: expected 0 (divide by N) or 1 (divide by N - 1), got {self.ddof!r}")
        for name in ("batch_size", "num_repeats", "kvd_num_subsets"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive count, got {getattr(self, name)}")
        if self.kvd_subset_size < 2:
            raise ValueError(f"kvd_subset_size: expected at least 2, got {self.kvd_subset_size}")


def load_i3d(path: str | None, device: str = "cpu") -> torch.jit.ScriptModule:
    """Load the Kinetics-400 I3D TorchScript file (``torch.jit.load``, no pickle) in eval mode."""
    if path is None:
        raise FileNotFoundError(f"{I3D_MISSING} (no path was given)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{I3D_MISSING} (not found: {path})")
    try:
        model = torch.jit.load(path, map_location=device)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a TorchScript file; {I3D_MISSING}") from err
    return model.eval()


def _source_pixels(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TF1 legacy bilinear sampling along one axis: for each output index, the two source indices
    and the weight of the second. Source coordinate = dst * (in / out) in float32, as TF does."""
    scale = torch.tensor(float(in_size), dtype=torch.float32) / out_size
    src = torch.arange(out_size, dtype=torch.float32) * scale
    low = src.floor()
    weight = src - low
    low = low.long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    return low, high, weight


def tf_resize_bilinear(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, H, W, C) frames (any real dtype, e.g. uint8 0..255) to float32 (N, size, size, C).

    Reproduces TF1 ``tf.image.resize_bilinear(images, [size, size])`` with its defaults
    (align_corners=False, half_pixel_centers=False): output pixel (y, x) reads source position
    (y * H / size, x * W / size), blends its four neighbours (the last row/column repeats at the
    border), first along x then along y, in float32. Values keep the input's range.
    """
    if frames.ndim != 4:
        raise ValueError(f"frames: expected (N, H, W, C), got shape {tuple(frames.shape)}")
    if size < 1:
        raise ValueError(f"size: expected a positive output side, got {size}")
    x = frames.float()
    device = x.device
    y0, y1, wy = (t.to(device) for t in _source_pixels(x.shape[1], size))
    x0, x1, wx = (t.to(device) for t in _source_pixels(x.shape[2], size))
    # Blend along x for every source row first (TF blends the two rows it needs the same way).
    left, right = x.index_select(2, x0), x.index_select(2, x1)  # (N, H, size, C)
    rows = left + (right - left) * wx.view(1, 1, size, 1)
    top, bottom = rows.index_select(1, y0), rows.index_select(1, y1)  # (N, size, size, C)
    return bottom.sub_(top).mul_(wy.view(1, size, 1, 1)).add_(top)  # top + (bottom - top) * wy


def _check_videos(videos: torch.Tensor | np.ndarray, num_frames: int, name: str) -> torch.Tensor:
    if isinstance(videos, np.ndarray):
        videos = torch.from_numpy(videos)
    if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected uint8 videos of shape (B, T, H, W, 3), got {videos.dtype} {tuple(videos.shape)}"
        )
    if videos.shape[1] < num_frames:
        raise ValueError(
            f"{name}: FVD uses the first {num_frames} frames (FVDConfig.num_frames) but the videos have "
            f"{videos.shape[1]}; pass longer videos or lower num_frames (at least {MIN_FRAMES})"
        )
    return videos


def i3d_inputs(videos_uint8: torch.Tensor, num_frames: int) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) videos -> float32 (B, 3, num_frames, 224, 224) in [-1, 1].

    Keeps the first ``num_frames`` frames, resizes with :func:`tf_resize_bilinear`, scales as
    ``2 * x / 255 - 1`` (the original FVD preprocessing).
    """
    videos = _check_videos(videos_uint8, num_frames, "videos_uint8")[:, :num_frames]
    b, t, h, w, c = videos.shape
    resized = tf_resize_bilinear(videos.reshape(b * t, h, w, c), I3D_RESOLUTION)
    scaled = resized.mul_(2.0).div_(255.0).sub_(1.0)  # 2 * x / 255 - 1, in TF's order
    return scaled.view(b, t, I3D_RESOLUTION, I3D_RESOLUTION, c).permute(0, 4, 1, 2, 3).contiguous()


@torch.no_grad()
def i3d_features(model: torch.nn.Module, videos_uint8: torch.Tensor, cfg: FVDConfig) -> np.ndarray:
    """I3D features of uint8 (B, T, H, W, 3) videos: float32 (B, 400) Kinetics logits, time-averaged.

    Runs in batches of ``cfg.batch_size`` on ``cfg.device``; see :func:`i3d_inputs` for the
    preprocessing.
    """
    videos = _check_videos(videos_uint8, cfg.num_frames, "videos_uint8")
    chunks = []
    for start in range(0, videos.shape[0], cfg.batch_size):
        batch = i3d_inputs(videos[start : start + cfg.batch_size], cfg.num_frames).to(cfg.device)
        feats = model(batch, rescale=False, resize=False, return_features=True)
        if feats.ndim != 2 or feats.shape[0] != batch.shape[0]:
            raise ValueError(
                f"model: expected features of shape ({batch.shape[0]}, D) from the I3D, got {tuple(feats.shape)}"
            )
        chunks.append(feats.float().cpu().numpy())
    return np.concatenate(chunks, axis=0)


def fvd_from_features(real: np.ndarray, fake: np.ndarray, cfg: FVDConfig) -> dict:
    """FVD (mean/std over ``cfg.num_repeats`` disjoint splits) and KVD from (N, D) I3D features.

    Returns a JSON-serializable dict of every number and the settings that produced it.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    n_real, n_fake, repeats = len(real), len(fake), cfg.num_repeats
    if min(n_real, n_fake) < 2 * repeats:
        raise ValueError(
            f"num_repeats: {repeats} repeat(s) need at least {2 * repeats} real and fake videos "
            f"(2 per repeat), got {n_real} real and {n_fake} fake"
        )
    rng = np.random.default_rng(cfg.seed)
    real_parts = np.array_split(real[rng.permutation(n_real)], repeats)
    fake_parts = np.array_split(fake[rng.permutation(n_fake)], repeats)
    per_repeat = [frechet_from_features(r, f, cfg.ddof) for r, f in zip(real_parts, fake_parts)]
    kvd, kvd_std = kernel_distance(
        real, fake, num_subsets=cfg.kvd_num_subsets, subset_size=cfg.kvd_subset_size, seed=cfg.seed
    )
    return {
        "fvd": float(np.mean(per_repeat)),
        "fvd_std": float(np.std(per_repeat)),  # over repeats, ddof 0; 0.0 for one repeat
        "fvd_per_repeat": [float(v) for v in per_repeat],
        "kvd": kvd,
        "kvd_std": kvd_std,  # over KVD subsets, ddof 0
        "num_real": n_real,
        "num_fake": n_fake,
        "num_repeats": repeats,
        "repeat_mode": "shuffle then split into disjoint parts",
        "real_per_repeat": [len(p) for p in real_parts],
        "fake_per_repeat": [len(p) for p in fake_parts],
        "ddof": cfg.ddof,
        "num_frames": cfg.num_frames,
        "resolution": I3D_RESOLUTION,
        "preprocess": "first num_frames frames; TF1 resize_bilinear (no half-pixel centers); 2*x/255-1",
        "feature_dim": int(real.shape[1]),
        "kvd_kernel": "(x.y / D + 1) ** 3, unbiased MMD^2",
        "kvd_num_subsets": cfg.kvd_num_subsets,
        "kvd_subset_size": min(cfg.kvd_subset_size, n_real, n_fake),
        "seed": cfg.seed,
        "i3d": cfg.i3d,
    }


def compute_fvd(real_uint8: torch.Tensor, fake_uint8: torch.Tensor, cfg: FVDConfig) -> dict:
    """FVD and KVD between real and fake uint8 (B, T, H, W, 3) videos with the I3D at ``cfg.i3d``.

    Raises FileNotFoundError when the I3D file is missing (report :data:`FVD_MISSING` then).
    Returns the dict of :func:`fvd_from_features`.
    """
    model = load_i3d(cfg.i3d, cfg.device)
    real = i3d_features(model, real_uint8, cfg)
    fake = i3d_features(model, fake_uint8, cfg)
    return fvd_from_features(real, fake, cfg)
