"""Tests for t2i_tf.eval.fid: closed forms, self-distance, streaming statistics, errors."""

import warnings

import numpy as np
import pytest

from t2i_tf.errors import UserError
from t2i_tf.eval import fid


def _random_spd(rng: np.random.Generator, dim: int, rank: int | None = None) -> np.ndarray:
    """A random symmetric positive (semi-)definite matrix."""
    a = rng.normal(size=(dim, rank or dim))
    return a @ a.T / (rank or dim) + (0.0 if rank else 0.1) * np.eye(dim)


def _trace_sqrt_via_eigvals(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr(sqrtm(S1 S2)) from the (real, non-negative) eigenvalues of the non-symmetric product S1 S2."""
    evals = np.linalg.eigvals(s1 @ s2)
    assert np.max(np.abs(evals.imag)) < 1e-8 * np.max(np.abs(evals.real))
    return float(np.sum(np.sqrt(np.clip(evals.real, 0.0, None))))


def test_gaussian_stats_matches_numpy_cov_ddof1():
    x = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    mu, sigma = fid.gaussian_stats(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False, ddof=1), rtol=1e-10)


@pytest.mark.parametrize("n, dim", [(400, 16), (24, 64)])  # full-rank and singular (N < D) covariances
def test_fid_of_a_set_with_itself_is_zero(n, dim):
    x = np.random.default_rng(1).normal(loc=3.0, size=(n, dim))
    _, sigma = fid.gaussian_stats(x)
    value = fid.fid_from_features(x, x)
    assert abs(value) < 1e-6 * np.trace(sigma)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3.0, size=6), rng.uniform(0.1, 3.0, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = fid.frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_frechet_distance_commuting_closed_form():
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # shared eigenvectors: S1 S2 = S2 S1
    a, b = rng.uniform(0.2, 4.0, size=5), rng.uniform(0.2, 4.0, size=5)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    mu1, mu2 = np.zeros(5), np.full(5, 0.5)
    expected = 5 * 0.25 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dim, rank", [(8, None), (32, None), (16, 5)])
def test_frechet_distance_general_case_matches_independent_computation(dim, rank):
    rng = np.random.default_rng(4 + dim)
    s1, s2 = _random_spd(rng, dim, rank), _random_spd(rng, dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_via_eigvals(s1, s2)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_fid_of_gaussian_samples_matches_closed_form_on_true_parameters():
    rng = np.random.default_rng(5)
    dim = 4
    mu1, mu2 = np.zeros(dim), np.array([1.0, -0.5, 0.0, 2.0])
    s1, s2 = _random_spd(rng, dim), _random_spd(rng, dim)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_via_eigvals(s1, s2)
    x1 = rng.multivariate_normal(mu1, s1, size=200_000)
    x2 = rng.multivariate_normal(mu2, s2, size=200_000)
    assert fid.fid_from_features(x1, x2) == pytest.approx(expected, abs=0.03)


def test_frechet_distance_is_symmetric_and_positive():
    rng = np.random.default_rng(6)
    s1, s2 = _random_spd(rng, 10), _random_spd(rng, 10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    d12 = fid.frechet_distance(mu1, s1, mu2, s2)
    assert d12 > 0
    assert d12 == pytest.approx(fid.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)


def test_non_covariance_input_raises():
    s = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(UserError, match="not a covariance"):
        fid.frechet_distance(np.zeros(3), s, np.zeros(3), np.eye(3))
    with pytest.raises(UserError, match="dimensions differ"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(UserError, match="NaN"):
        fid.frechet_distance(np.array([np.nan, 0, 0]), np.eye(3), np.zeros(3), np.eye(3))


def test_failed_square_root_falls_back_to_eps_identity_with_warning(monkeypatch):
    calls = []
    real = fid._trace_sqrt_product

    def flaky(s1, s2):
        calls.append((s1.copy(), s2.copy()))
        if len(calls) == 1:
            raise np.linalg.LinAlgError("did not converge")
        return real(s1, s2)

    monkeypatch.setattr(fid, "_trace_sqrt_product", flaky)
    with pytest.warns(RuntimeWarning, match="adding 0.001"):
        value = fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), eps=1e-3)
    np.testing.assert_allclose(calls[1][0], np.eye(3) * 1.001)
    # Tr(S1 + S2) = 6 is not offset, the square root of (1.001 I)^2 is: 6 - 2 * 3 * 1.001.
    assert value == pytest.approx(6 - 6 * 1.001, abs=1e-12)


def test_no_warning_for_singular_covariances():
    x = np.random.default_rng(7).normal(size=(10, 30))  # rank 9 covariance
    y = np.random.default_rng(8).normal(size=(12, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = fid.fid_from_features(x, y)
    assert np.isfinite(value) and value > 0


def test_streaming_accumulator_equals_one_shot_stats():
    rng = np.random.default_rng(9)
    x = rng.normal(loc=1e4, scale=1.0, size=(203, 12))  # large offset: naive sum of squares would lose digits
    acc = fid.GaussianAccumulator()
    for start in range(0, 203, 17):
        acc.update(x[start : start + 17].astype(np.float64))
    acc.update(np.zeros((0, 12)))
    mu, sigma = acc.stats()
    mu_ref, sigma_ref = fid.gaussian_stats(x)
    assert acc.count == 203
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-12)
    np.testing.assert_allclose(sigma, sigma_ref, rtol=1e-8, atol=1e-10)


def test_accumulator_merge_and_memory_is_independent_of_count():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(100, 5))
    a, b = fid.GaussianAccumulator(5), fid.GaussianAccumulator(5)
    a.update(x[:30])
    b.update(x[30:])
    a.merge(b)
    np.testing.assert_allclose(a.stats()[1], fid.gaussian_stats(x)[1], rtol=1e-10)
    sizes = {k: getattr(v, "nbytes", 0) for k, v in vars(a).items()}
    assert sum(sizes.values()) == 5 * 8 + 5 * 5 * 8


def test_accumulator_errors():
    acc = fid.GaussianAccumulator()
    with pytest.raises(UserError, match="at least 2"):
        acc.stats()
    acc.update(np.ones((3, 4)))
    with pytest.raises(UserError, match="dimension 4"):
        acc.update(np.ones((3, 5)))


def test_stats_round_trip_and_bad_file(tmp_path):
    mu, sigma = fid.gaussian_stats(np.random.default_rng(11).normal(size=(20, 3)))
    path = tmp_path / "ref.npz"
    fid.save_stats(path, mu, sigma)
    mu2, sigma2 = fid.load_stats(path)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    np.savez(tmp_path / "bad.npz", m=mu)
    with pytest.raises(UserError, match="lacks 'mu'/'sigma'"):
        fid.load_stats(tmp_path / "bad.npz")
    with pytest.raises(UserError, match="not found"):
        fid.load_stats(tmp_path / "missing.npz")


def test_bad_feature_shapes_raise():
    with pytest.raises(UserError, match=r"\[N, D\]"):
        fid.gaussian_stats(np.zeros(5))
    with pytest.raises(UserError, match="at least 2"):
        fid.gaussian_stats(np.zeros((1, 5)))
