"""Distances between two sets of feature vectors: the Frechet distance and the kernel (MMD) distance.

These are the statistics behind FID/FVD and KID/KVD. Features are (N, D) arrays, one row per
sample (e.g. the 400 Kinetics logits of a video). Everything is computed in float64 with numpy
only: scipy is a dev dependency, used by the tests as an independent reference.

The Frechet distance between N(mu1, S1) and N(mu2, S2) is

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2)).

``tr(sqrt(S1 S2))`` equals the trace of ``scipy.linalg.sqrtm(S1 @ S2)`` (the formulation used by
most FID/FVD code), but we compute it without the general, non-symmetric matrix square root:
with R = sqrt(S1) (symmetric, from an eigendecomposition), S1 S2 = R (R S2) is similar to
R S2 R, which is symmetric positive semi-definite, so

    tr(sqrt(S1 S2)) = sum_i sqrt(lambda_i(R S2 R)),

with tiny negative eigenvalues (round-off) clipped at 0. This stays real and stable for the
rank-deficient covariances one gets with fewer samples than feature dimensions.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_features(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """A float64 (N, D) numpy copy of ``x``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected features of shape (N, D), got shape {x.shape}")
    return x


def gaussian_stats(features: np.ndarray | torch.Tensor, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, in float64.

    ``ddof`` is the covariance's degrees-of-freedom correction: 0 divides by N (population
    covariance), 1 divides by N - 1 (sample covariance, what tf-gan and ``np.cov`` use).
    Implementations disagree, so the caller chooses and records it.
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof: expected 0 (divide by N) or 1 (divide by N - 1), got {ddof!r}")
    x = _as_features(features, "features")
    n = x.shape[0]
    if n <= ddof:
        raise ValueError(f"features: need more than {ddof} samples for ddof={ddof}, got {n}")
    mu = x.mean(axis=0)
    centered = x - mu
    sigma = centered.T @ centered / (n - ddof)
    return mu, sigma


def _psd_sqrt(mat: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; negative round-off eigenvalues become 0."""
    eigvals, eigvecs = np.linalg.eigh(0.5 * (mat + mat.T))
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    mu: (D,), sigma: (D, D) symmetric PSD. Same value as the ``scipy.linalg.sqrtm(sigma1 @ sigma2)``
    formulation (see the module docstring), without scipy and without complex round-off.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.ndim != 1 or mu1.shape[0] < 1:
        raise ValueError(f"mu1: expected a mean vector of shape (D,), got shape {mu1.shape}")
    d = mu1.shape[0]
    for name, arr, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape} to match mu1 of shape ({d},), got {arr.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # similar to sigma1 @ sigma2, but symmetric PSD
    eigvals = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    trace_sqrt = np.sqrt(np.clip(eigvals, 0.0, None)).sum()
    mean_term = np.square(mu1 - mu2).sum()
    return float(mean_term + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_from_features(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, ddof: int) -> float:
    """Frechet distance between Gaussians fitted to features a (N, D) and b (M, D)."""
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"b: expected {a.shape[1]} feature dimensions like a, got {b.shape[1]}")
    return frechet_distance(*gaussian_stats(a, ddof), *gaussian_stats(b, ddof))


def _unbiased_mmd2(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """Unbiased MMD^2 from kernel matrices of two equal-size samples (m, m): the diagonals of kxx
    and kyy (a point with itself) are left out."""
    m = kxx.shape[0]
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.mean())


def kernel_distance(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Polynomial-kernel MMD^2 between features a (N, D) and b (M, D), as in KID/KVD.

    The kernel is k(x, y) = (gamma * x.y + coef) ** degree, gamma = 1 / D by default (the KID
    paper's cubic kernel). Each of ``num_subsets`` rounds draws ``min(subset_size, N, M)`` rows of
    a and of b without replacement and computes the unbiased MMD^2 estimator on them. Returns the
    mean and the (population, ddof 0) standard deviation over rounds. Deterministic in ``seed``.
    The estimate can be slightly negative when the two sets come from one distribution.
    """
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"b: expected {a.shape[1]} feature dimensions like a, got {b.shape[1]}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets: expected a positive count, got {num_subsets}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError(
            f"kernel_distance needs at least 2 samples per set and subset_size >= 2, got N={a.shape[0]}, "
            f"M={b.shape[0]}, subset_size={subset_size}"
        )
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        kxx = (gamma * (x @ x.T) + coef) ** degree
        kyy = (gamma * (y @ y.T) + coef) ** degree
        kxy = (gamma * (x @ y.T) + coef) ** degree
        values[i] = _unbiased_mmd2(kxx, kyy, kxy)
    return float(values.mean()), float(values.std())
