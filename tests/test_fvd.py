"""Frechet distance, KVD and FVD: checked against scipy, closed forms, naive loops and the
original TF resize formula. The I3D itself is only used when VTLM_I3D points at the file; the
pipeline tests use a clearly labelled stand-in TorchScript module instead."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from vtlm.eval.metrics.frechet import frechet_distance, frechet_from_features, gaussian_stats, kernel_distance
from vtlm.eval.metrics.fvd import (
    FVD_MISSING,
    FVDConfig,
    compute_fvd,
    fvd_from_features,
    i3d_features,
    i3d_inputs,
    load_i3d,
    tf_resize_bilinear,
)

# ---------------------------------------------------------------- Frechet distance


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The usual FID/FVD formula with scipy's general matrix square root (ddof 1 via np.cov)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(s1 + s2 - 2 * root)))


@pytest.mark.parametrize("n, d", [(200, 1), (200, 8), (300, 64), (30, 50), (10, 64)])
def test_frechet_matches_scipy_sqrtm(n, d):
    """Full-rank (n > d) and rank-deficient (n <= d) covariances."""
    rng = np.random.default_rng(d)
    a = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    b = rng.normal(size=(n, d)) * 1.7 + 0.4
    assert frechet_from_features(a, b, ddof=1) == pytest.approx(scipy_frechet(a, b), rel=1e-6)


@pytest.mark.parametrize("rotate", [False, True])
def test_frechet_closed_form_commuting_covariances(rotate):
    """Covariances with shared eigenvectors: d = ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2."""
    rng = np.random.default_rng(1)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0, 3, size=d), rng.uniform(0, 3, size=d)
    a[:3] = 0.0  # rank-deficient too
    q = np.linalg.qr(rng.normal(size=(d, d)))[0] if rotate else np.eye(d)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.square(mu1 - mu2).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_frechet_of_identical_sets_is_zero():
    a = np.random.default_rng(2).normal(size=(100, 32)) * 5
    assert abs(frechet_from_features(a, a.copy(), ddof=1)) < 1e-8 * np.trace(np.cov(a, rowvar=False))
    assert frechet_from_features(torch.from_numpy(a).float(), a, ddof=0) == pytest.approx(0.0, abs=1e-3)


def test_gaussian_stats_ddof():
    x = np.random.default_rng(3).normal(size=(25, 6))
    for ddof, bias in ((0, True), (1, False)):
        mu, sigma = gaussian_stats(torch.from_numpy(x), ddof)
        assert sigma.dtype == np.float64
        np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(sigma, np.cov(x, rowvar=False, bias=bias), rtol=1e-12)
    # Equal set sizes: ddof only rescales both covariances by (n - 1) / n, so the covariance
    # part of the distance (everything but ||mu1 - mu2||^2) scales by the same factor.
    y = np.random.default_rng(4).normal(size=(25, 6)) * 2 + 1
    mean_term = np.square(x.mean(0) - y.mean(0)).sum()
    cov0 = frechet_from_features(x, y, ddof=0) - mean_term
    cov1 = frechet_from_features(x, y, ddof=1) - mean_term
    assert cov0 == pytest.approx(cov1 * 24 / 25, rel=1e-9)


def test_frechet_rejects_bad_arguments():
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match="ddof"):
        gaussian_stats(x, ddof=2)
    with pytest.raises(ValueError, match="features"):
        gaussian_stats(np.zeros(5), ddof=0)
    with pytest.raises(ValueError, match="feature dimensions"):
        frechet_from_features(x, np.zeros((5, 4)), ddof=1)
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))


# ---------------------------------------------------------------- kernel distance (KVD)


def naive_unbiased_mmd2(x, y, degree, gamma, coef):
    def k(u, v):
        return (gamma * sum(ui * vi for ui, vi in zip(u, v)) + coef) ** degree

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("degree, gamma, coef", [(3, None, 1.0), (2, 0.5, 0.3)])
def test_kernel_distance_matches_naive_loops(degree, gamma, coef):
    """A subset as large as the sets is the whole set (in some order): the estimate is exact."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.5
    mean, std = kernel_distance(x, y, degree=degree, gamma=gamma, coef=coef, num_subsets=3, subset_size=50)
    expected = naive_unbiased_mmd2(x.tolist(), y.tolist(), degree, 1 / 3 if gamma is None else gamma, coef)
    assert mean == pytest.approx(expected, rel=1e-10)
    assert std < 1e-10


def test_kernel_distance_linear_kernel_estimates_mean_gap():
    """With k(x, y) = x.y, MMD^2 = ||E x - E y||^2 exactly, and the estimator is unbiased."""
    rng = np.random.default_rng(6)
    d, shift = 8, 0.5
    x, y = rng.normal(size=(2000, d)), rng.normal(size=(2000, d)) + shift
    mean, _ = kernel_distance(x, y, degree=1, gamma=1.0, coef=0.0, num_subsets=20, subset_size=1000)
    assert mean == pytest.approx(d * shift**2, rel=0.1)


def test_kvd_same_distribution_near_zero_and_shifted_clearly_positive():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, same_std = kernel_distance(a, b, num_subsets=20, subset_size=200)
    shifted, shifted_std = kernel_distance(a, b + 0.5, num_subsets=20, subset_size=200)
    assert shifted > 10 * shifted_std and shifted > 0
    assert abs(same) < 0.05 * shifted and abs(same) < 3 * same_std


def test_kernel_distance_is_deterministic_in_seed():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))
    assert kernel_distance(a, b, num_subsets=5, subset_size=20, seed=3) == kernel_distance(
        a, b, num_subsets=5, subset_size=20, seed=3
    )
    assert kernel_distance(a, b, num_subsets=5, subset_size=20, seed=4) != kernel_distance(
        a, b, num_subsets=5, subset_size=20, seed=3
    )
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_distance(a[:1], b)


# ---------------------------------------------------------------- TF1 bilinear resize


def naive_tf1_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Per-pixel TF1 resize_bilinear (align_corners=False, no half-pixel centers), (H, W, C)."""
    h, w, _ = image.shape
    img = image.astype(np.float64)
    out = np.zeros((size, size, img.shape[2]))
    for oy in range(size):
        sy = oy * h / size
        y0 = int(np.floor(sy))
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for ox in range(size):
            sx = ox * w / size
            x0 = int(np.floor(sx))
            x1, fx = min(x0 + 1, w - 1), sx - x0
            top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
            bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
            out[oy, ox] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize("h, w, size, n", [(5, 7, 11, 2), (20, 13, 8, 2), (64, 48, 224, 1)])
def test_tf_resize_matches_original_formula(h, w, size, n):
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8)
    out = tf_resize_bilinear(frames, size)
    assert out.dtype == torch.float32 and out.shape == (n, size, size, 3)
    for i in range(n):
        np.testing.assert_allclose(out[i].numpy(), naive_tf1_resize(frames[i].numpy(), size), atol=2e-3)


def test_tf_resize_differs_from_half_pixel_interpolate():
    """Doubling: without the half-pixel offset, even output pixels copy source pixels exactly;
    torch's interpolate (half-pixel centers) blends them, so the two resizes really differ."""
    frames = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    ours = tf_resize_bilinear(frames, 64)
    torch_half_pixel = F.interpolate(
        frames.permute(0, 3, 1, 2).float(), size=(64, 64), mode="bilinear", align_corners=False
    ).permute(0, 2, 3, 1)
    assert torch.equal(ours[:, ::2, ::2], frames.float())
    assert not torch.allclose(torch_half_pixel[:, ::2, ::2], frames.float(), atol=1.0)
    assert (ours - torch_half_pixel).abs().max() > 20


def test_i3d_inputs_layout_range_and_first_frames():
    levels = torch.tensor([0, 51, 255], dtype=torch.uint8)
    videos = levels.view(1, 1, 1, 1, 3).expand(2, 12, 30, 40, 3).clone()
    videos[:, 10:] = 7  # frames past num_frames must not matter
    x = i3d_inputs(videos, num_frames=10)
    assert x.shape == (2, 3, 10, 224, 224) and x.dtype == torch.float32
    for c, v in enumerate(levels.tolist()):
        assert torch.allclose(x[:, c], torch.tensor(2 * v / 255 - 1), atol=1e-6)


def test_frame_count_and_dtype_checks():
    with pytest.raises(ValueError, match="at least 10 frames"):
        FVDConfig(num_frames=9)
    with pytest.raises(ValueError, match="first 16 frames"):
        i3d_inputs(torch.zeros(2, 15, 8, 8, 3, dtype=torch.uint8), num_frames=16)
    with pytest.raises(ValueError, match="uint8"):
        i3d_inputs(torch.zeros(2, 16, 8, 8, 3), num_frames=16)


def test_missing_i3d_file_says_what_is_needed(tmp_path):
    expected = "FVD needs the Kinetics-400 I3D TorchScript file (i3d_torchscript.pt); pass --i3d PATH"
    for path in (None, str(tmp_path / "i3d_torchscript.pt")):
        with pytest.raises(FileNotFoundError) as err:
            load_i3d(path)
        assert expected in str(err.value)
    with pytest.raises(FileNotFoundError, match="i3d_torchscript"):
        compute_fvd(
            torch.zeros(2, 16, 8, 8, 3, dtype=torch.uint8),
            torch.zeros(2, 16, 8, 8, 3, dtype=torch.uint8),
            FVDConfig(),
        )
    (tmp_path / "weights.pt").write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match="not a TorchScript file"):
        load_i3d(str(tmp_path / "weights.pt"))
    assert "--i3d PATH" in FVD_MISSING


# ---------------------------------------------------------------- pipeline with a STAND-IN network


class StandInI3D(torch.nn.Module):
    """STAND-IN, NOT the I3D: no Kinetics weights, only the same call signature and output layout
    (time-averaged features of a (B, 3, T, 224, 224) video in [-1, 1]). It refuses any other input,
    so the FVD plumbing (shape, dtype, range, keyword arguments) is checked."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.register_buffer("weight", torch.randn(400, 3, generator=g))
        self.register_buffer("bias", 0.1 * torch.randn(400, generator=g))

    def forward(
        self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        if rescale or resize or not return_features:
            raise RuntimeError("stand-in: expected rescale=False, resize=False, return_features=True")
        if x.dim() != 5 or x.shape[1] != 3 or x.shape[3] != 224 or x.shape[4] != 224:
            raise RuntimeError("stand-in: expected (B, 3, T, 224, 224)")
        if x.dtype != torch.float32 or bool(x.min() < -1.0) or bool(x.max() > 1.0):
            raise RuntimeError("stand-in: expected float32 in [-1, 1]")
        pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, 3)
        return torch.tanh(pooled @ self.weight.t() + self.bias).mean(dim=1)  # (B, 400)


@pytest.fixture
def stand_in_path(tmp_path):
    path = tmp_path / "stand_in_i3d.pt"
    torch.jit.script(StandInI3D()).save(str(path))
    return str(path)


def colour_videos(n: int, t: int, offset: int, seed: int) -> torch.Tensor:
    """uint8 (n, t, 20, 24, 3): a random flat colour per frame plus pixel noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(offset, offset + 150, (n, t, 1, 1, 3), generator=g)
    noise = torch.randint(-20, 21, (n, t, 20, 24, 3), generator=g)
    return (base + noise).clamp(0, 255).to(torch.uint8)


def test_stand_in_features_of_flat_videos(stand_in_path):
    """Flat colour c gives the stand-in input 2c/255 - 1 everywhere: features tanh(W x + b)."""
    model = load_i3d(stand_in_path)
    colours = torch.tensor([[10, 200, 90], [255, 0, 128]], dtype=torch.uint8)
    videos = colours.view(2, 1, 1, 1, 3).expand(2, 11, 17, 23, 3).clone()
    feats = i3d_features(model, videos, FVDConfig(i3d=stand_in_path, num_frames=10, batch_size=1))
    weight, bias = StandInI3D().weight.double().numpy(), StandInI3D().bias.double().numpy()
    expected = np.tanh((2 * colours.double().numpy() / 255 - 1) @ weight.T + bias)
    assert feats.shape == (2, 400) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, expected, atol=1e-5)


def test_compute_fvd_plumbing_with_stand_in(stand_in_path):
    real, fake = colour_videos(4, 12, 0, seed=1), colour_videos(3, 12, 100, seed=2)
    cfg = FVDConfig(i3d=stand_in_path, num_frames=10, batch_size=3, kvd_num_subsets=5)
    result = compute_fvd(real, fake, cfg)
    json.dumps(result)  # every number and setting is serializable
    model = load_i3d(stand_in_path)
    real_feats = i3d_features(model, real, FVDConfig(i3d=stand_in_path, num_frames=10, batch_size=1))
    fake_feats = i3d_features(model, fake, cfg)
    assert result["fvd"] == pytest.approx(frechet_from_features(real_feats, fake_feats, ddof=1), rel=1e-6)
    assert result["fvd"] > 0 and result["fvd_std"] == 0.0 and result["kvd"] > 0
    assert (result["num_real"], result["num_fake"], result["num_frames"], result["ddof"]) == (4, 3, 10, 1)
    assert result["feature_dim"] == 400 and result["kvd_subset_size"] == 3
    same = fvd_from_features(real_feats, real_feats.copy(), cfg)
    assert abs(same["fvd"]) < 1e-6 * result["fvd"]


def test_fvd_repeats_split_the_samples():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(10, 5)), rng.normal(size=(9, 5)) + 0.3
    result = fvd_from_features(real, fake, FVDConfig(num_repeats=3, kvd_num_subsets=5))
    assert result["real_per_repeat"] == [4, 3, 3] and result["fake_per_repeat"] == [3, 3, 3]
    assert len(result["fvd_per_repeat"]) == 3
    assert result["fvd"] == pytest.approx(np.mean(result["fvd_per_repeat"]))
    assert result["fvd_std"] == pytest.approx(np.std(result["fvd_per_repeat"]))
    assert result["fvd_std"] > 0
    with pytest.raises(ValueError, match="num_repeats"):
        fvd_from_features(real, fake, FVDConfig(num_repeats=5))


# ---------------------------------------------------------------- the real I3D, when available


def test_fvd_sanity_value_with_real_i3d():
    """The original TF FVD example: 16 all-zero vs 16 all-255 videos of 15x64x64 give FVD ~131."""
    path = os.environ.get("VTLM_I3D")
    if not path or not os.path.isfile(path):
        pytest.skip("set VTLM_I3D to the Kinetics-400 i3d_torchscript.pt to run the FVD sanity check")
    zeros = torch.zeros(16, 15, 64, 64, 3, dtype=torch.uint8)
    cfg = FVDConfig(i3d=path, num_frames=15, kvd_num_subsets=10)
    result = compute_fvd(zeros, torch.full_like(zeros, 255), cfg)
    assert result["fvd"] == pytest.approx(131.0, abs=4.0)
