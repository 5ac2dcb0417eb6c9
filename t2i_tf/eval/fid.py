"""Fréchet Inception Distance (Heusel et al. 2017) on feature vectors, in numpy float64.

FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2}).

The trace of the matrix square root is computed in the symmetric form, from the
eigenvalues of S1^{1/2} S2 S1^{1/2} (a symmetric PSD matrix), which has the same
eigenvalues as S1 S2 but is real and well conditioned for `eigh`; this is why no
scipy `sqrtm` (and its complex round-off) is needed.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from t2i_tf.errors import UserError

__all__ = [
    "GaussianAccumulator",
    "fid_from_features",
    "frechet_distance",
    "gaussian_stats",
    "load_stats",
    "save_stats",
]

# Eigenvalues below -_PSD_TOL * max|eigenvalue| mean the matrix is not a covariance.
_PSD_TOL = 1e-6


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
    """Checks a [N, D] feature matrix and returns it as float64."""
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise UserError(f"{name}: expected features of shape [N, D], got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise UserError(f"{name}: need at least 2 feature vectors to estimate a covariance, got {arr.shape[0]}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{name}: features contain NaN or Inf")
    return arr


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] (ddof=1, as TTUR's np.cov) of [N, D] features, float64."""
    arr = _as_features(features, "gaussian_stats")
    mu = arr.mean(axis=0)
    centered = arr - mu
    sigma = centered.T @ centered / (arr.shape[0] - 1)
    return mu, sigma


def _check_stats(mu: np.ndarray, sigma: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validates a (mean, covariance) pair and returns float64 copies."""
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise UserError(
            f"{name}: expected mean [D] and covariance [D, D], got shapes {mu.shape} and {sigma.shape}"
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise UserError(f"{name}: statistics contain NaN or Inf")
    return mu, sigma


def _check_psd_eigenvalues(evals: np.ndarray, name: str) -> None:
    """Raises if eigenvalues show a matrix that is not positive semi-definite beyond round-off."""
    scale = max(float(np.max(np.abs(evals))), np.finfo(np.float64).tiny)
    if evals.min() < -_PSD_TOL * scale:
        raise UserError(
            f"{name} is not a covariance matrix: smallest eigenvalue {evals.min():.3g} "
            f"(largest {scale:.3g}); expected a symmetric positive semi-definite matrix"
        )


def _psd_sqrt(sigma: np.ndarray, name: str) -> np.ndarray:
    """Symmetric PSD square root of a covariance matrix via eigh (negative round-off clipped to 0)."""
    evals, evecs = np.linalg.eigh(0.5 * (sigma + sigma.T))
    _check_psd_eigenvalues(evals, name)
    root = np.sqrt(np.clip(evals, 0.0, None))
    return (evecs * root) @ evecs.T


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1^{1/2} S2 S1^{1/2})^{1/2}) = Tr(sqrtm(S1 S2)) for PSD S1, S2."""
    root1 = _psd_sqrt(sigma1, "sigma1")
    _check_psd_eigenvalues(np.linalg.eigvalsh(0.5 * (sigma2 + sigma2.T)), "sigma2")
    inner = root1 @ sigma2 @ root1
    inner = 0.5 * (inner + inner.T)
    evals = np.linalg.eigvalsh(inner)
    scale = max(float(np.max(np.abs(evals))), np.finfo(np.float64).tiny)
    if evals.min() < -_PSD_TOL * scale:
        raise ArithmeticError(f"S1^1/2 S2 S1^1/2 has a negative eigenvalue {evals.min():.3g}")
    return float(np.sum(np.sqrt(np.clip(evals, 0.0, None))))


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    If the eigendecomposition fails or is not finite, eps*I is added to both
    covariances and the computation is repeated, with a warning (as TTUR does).
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "frechet_distance(mu1, sigma1)")
    mu2, sigma2 = _check_stats(mu2, sigma2, "frechet_distance(mu2, sigma2)")
    if mu1.shape != mu2.shape:
        raise UserError(f"frechet_distance: feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]}")
    diff = mu1 - mu2
    try:
        tr_covmean = _trace_sqrt_product(sigma1, sigma2)
        ok = np.isfinite(tr_covmean)
    except (np.linalg.LinAlgError, ArithmeticError):
        ok = False
    if not ok:
        warnings.warn(
            f"frechet_distance: matrix square root failed on near-singular covariances; "
            f"adding {eps:g} * I to both covariances",
            RuntimeWarning,
            stacklevel=2,
        )
        offset = eps * np.eye(sigma1.shape[0])
        try:
            tr_covmean = _trace_sqrt_product(sigma1 + offset, sigma2 + offset)
        except (np.linalg.LinAlgError, ArithmeticError) as exc:
            raise UserError(f"frechet_distance: covariances are numerically unusable ({exc})") from exc
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid_from_features(features1: np.ndarray, features2: np.ndarray, eps: float = 1e-6) -> float:
    """FID between two [N, D] feature sets (e.g. Inception pool_3 activations)."""
    mu1, sigma1 = gaussian_stats(features1)
    mu2, sigma2 = gaussian_stats(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)


class GaussianAccumulator:
    """Streaming mean/covariance of feature batches in O(D^2) memory, independent of the sample count.

    Each batch contributes its sum and its centred outer-product sum; batches are
    merged with Chan et al.'s pairwise update, which avoids the cancellation of
    the naive sum-of-squares formula when features have a large mean.
    """

    def __init__(self, dim: int | None = None) -> None:
        """Creates an empty accumulator; `dim` is fixed by the first batch if not given."""
        self.dim = dim
        self.count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None

    def update(self, features: np.ndarray) -> None:
        """Adds a [B, D] batch of feature vectors."""
        arr = np.asarray(features)
        if arr.ndim != 2:
            raise UserError(f"GaussianAccumulator.update: expected a [B, D] batch, got shape {arr.shape}")
        if self.dim is None:
            self.dim = int(arr.shape[1])
        if arr.shape[1] != self.dim:
            raise UserError(f"GaussianAccumulator.update: expected feature dimension {self.dim}, got {arr.shape[1]}")
        n_b = arr.shape[0]
        if n_b == 0:
            return
        arr = arr.astype(np.float64, copy=False)
        if not np.all(np.isfinite(arr)):
            raise UserError("GaussianAccumulator.update: features contain NaN or Inf")
        mean_b = arr.mean(axis=0)
        centered = arr - mean_b
        m2_b = centered.T @ centered
        self._merge(n_b, mean_b, m2_b)

    def _merge(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        """Merges another partial (count, mean, centred outer-product sum) into this one."""
        if self.count == 0:
            self.count, self._mean, self._m2 = n_b, mean_b.copy(), m2_b.copy()
            return
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    def merge(self, other: "GaussianAccumulator") -> None:
        """Adds the samples seen by another accumulator (e.g. from another worker)."""
        if other.count == 0:
            return
        if self.dim is not None and other.dim != self.dim:
            raise UserError(f"GaussianAccumulator.merge: feature dimensions differ: {self.dim} vs {other.dim}")
        self.dim = other.dim
        self._merge(other.count, other._mean, other._m2)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean [D] and unbiased covariance [D, D] (ddof=1) of everything seen so far."""
        if self.count < 2:
            raise UserError(
                f"GaussianAccumulator.stats: need at least 2 feature vectors, got {self.count}"
            )
        return self._mean.copy(), self._m2 / (self.count - 1)


def save_stats(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> None:
    """Writes reference statistics as an .npz with keys 'mu' and 'sigma' (TTUR's format)."""
    mu, sigma = _check_stats(mu, sigma, "save_stats")
    np.savez(path, mu=mu, sigma=sigma)


def load_stats(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads reference statistics from an .npz with keys 'mu' and 'sigma' (no pickles are loaded)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "mu" not in data or "sigma" not in data:
                raise UserError(
                    f"FID statistics file {os.fspath(path)!r} lacks 'mu'/'sigma'; found keys {sorted(data.keys())}"
                )
            mu, sigma = data["mu"], data["sigma"]
    except FileNotFoundError as exc:
        raise UserError(
            f"FID statistics file not found: {os.fspath(path)!r} (expected an .npz with 'mu' and 'sigma')"
        ) from exc
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot read FID statistics {os.fspath(path)!r}: expected an .npz with arrays 'mu' and 'sigma' ({exc})"
        ) from exc
    return _check_stats(mu, sigma, f"FID statistics {os.fspath(path)!r}")
