"""CCA: closed-form cases, the properties the mathematics promises, edge sizes and dtypes."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import svcca
from conftest import independent_pair, latent_pair, tol

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def known_correlations(n: int, rhos: np.ndarray, extra_x: int, extra_y: int, seed: int):
    """X, Y whose *sample* canonical correlations are exactly ``rhos`` (plus zeros)."""
    rng = np.random.default_rng(seed)
    k = rhos.size
    width = 2 * k + extra_x + extra_y
    Z = rng.standard_normal((n, width))
    Z -= Z.mean(axis=0)
    Q, _ = np.linalg.qr(Z)  # orthonormal, centred columns
    X = np.hstack([Q[:, :k], Q[:, 2 * k : 2 * k + extra_x]])
    Y = np.hstack(
        [rhos * Q[:, :k] + np.sqrt(1 - rhos**2) * Q[:, k : 2 * k], Q[:, 2 * k + extra_x :]]
    )
    return X, Y


def mixed(A: np.ndarray, seed: int, shift: float = 3.0) -> np.ndarray:
    """An invertible affine map of A's features."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((A.shape[1], A.shape[1])) + 3 * np.eye(A.shape[1])
    return A @ M + shift


def pair(seed: int, n: int, p: int, q: int):
    """Two related layers: shared latents, linear in X, through tanh in Y."""
    return latent_pair(n, p, q, seed=seed, y_tanh=True)


def corr_cond(A: np.ndarray) -> float:
    """Condition number of the correlation matrix of A's features (1 for one feature)."""
    if A.shape[1] == 1:
        return 1.0
    w = np.linalg.eigvalsh(np.corrcoef(A.T))
    return float(w[-1] / w[0])


def cca_roundoff(*sides: np.ndarray) -> float:
    """Round-off difference of two CCAs of (transformed) copies of these sides.

    Each CCA has a backward error of about ``(p + q) eps`` relative in its correlation-
    scaled covariance blocks (the products that form them and the Cholesky or
    eigenvalue factorisations: LAPACK's O(dimension) eps bounds, constant 8), amplified
    by the condition number of the correlation matrix it whitens; 2 for the two results.
    """
    p_plus_q = sides[0].shape[1] + sides[1].shape[1]
    cond = max(corr_cond(S) for S in sides)
    return tol(np.float64, cond=cond, factor=2 * 8 * p_plus_q)


def zero_correlation_bound(p: int, q: int) -> float:
    """How far from 0 an exactly zero canonical correlation can come out.

    The correlations are square roots of the eigenvalues of ``G = M M^T`` (``M`` the
    whitened cross block, ``||M|| <= 1``): forming ``G`` (sums of ``max(p, q)`` terms)
    and its eigendecomposition (backward error ``min(p, q) eps ||G||``) move an eigenvalue
    0 by up to ``(p + q) eps``, twice that for the constants; its square root is then
    ``sqrt(2 (p + q) eps)`` (8.4e-8 for p + q = 16), much more than ``M``'s own error.
    """
    return float(np.sqrt(tol(np.float64, factor=2 * (p + q))))


def test_closed_form_canonical_correlations():
    rhos = np.array([0.95, 0.7, 0.4, 0.1])
    X, Y = known_correlations(500, rhos, extra_x=3, extra_y=5, seed=0)
    X, Y = mixed(X, 1), mixed(Y, 2)
    r = svcca.cca(X, Y)
    # non-zero correlations to 1e-10 (eps / (2 rho) from the square root, times the
    # whitening's conditioning); exact zeros within sqrt(2 (p + q) eps)
    np.testing.assert_allclose(r.correlations[:4], rhos, atol=1e-10)
    zero = zero_correlation_bound(X.shape[1], Y.shape[1])
    np.testing.assert_allclose(r.correlations[4:], 0.0, atol=zero)
    score_tol = 3 / 7 * zero + 1e-10  # three zeros among seven correlations
    assert r.score == pytest.approx(np.r_[rhos, np.zeros(3)].mean(), abs=score_tol)
    assert r.mean_squared == pytest.approx(np.mean(np.r_[rhos, np.zeros(3)] ** 2), abs=1e-10)


def test_canonical_variates_have_the_correlations():
    X, Y = pair(0, 800, 6, 4)
    r = svcca.cca(X, Y)
    U, V = r.transform(X, Y)
    assert U.shape == (800, 4) and V.shape == (800, 4)
    C = np.corrcoef(U.T, V.T)
    np.testing.assert_allclose(np.diag(C[:4, 4:]), r.correlations, atol=1e-10)
    np.testing.assert_allclose(C[:4, :4], np.eye(4), atol=1e-10)  # variates uncorrelated
    np.testing.assert_allclose(U.var(axis=0, ddof=1), 1.0, atol=1e-10)
    U2, _ = r.transform(X[:10])  # new datapoints
    np.testing.assert_allclose(U2, U[:10], atol=1e-12)


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(60, 300),
    p=st.integers(1, 8),
    q=st.integers(1, 8),
)
def test_cca_invariant_to_invertible_maps_and_symmetric(seed, n, p, q):
    X, Y = pair(seed, n, p, q)
    Xm, Ym = mixed(X, seed + 1), mixed(Y, seed + 2)
    base = svcca.cca(X, Y)
    moved = svcca.cca(Xm, Ym)
    # a random map can be ill-conditioned (cond 1e7 happens): the bound follows it
    np.testing.assert_allclose(
        moved.correlations, base.correlations, atol=cca_roundoff(X, Y, Xm, Ym)
    )
    swapped = svcca.cca(Y, X)
    np.testing.assert_allclose(swapped.correlations, base.correlations, atol=cca_roundoff(X, Y))
    assert 0.0 <= base.score <= 1.0
    assert base.correlations.size == min(p, q)
    assert np.all(np.diff(base.correlations) <= 1e-12)


@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(60, 300), p=st.integers(1, 10))
def test_self_similarity_is_one(seed, n, p):
    X, _ = pair(seed, n, p, 1)
    for r in (svcca.cca(X, X), svcca.svcca(X, X), svcca.pwcca(X, X)):
        assert r.score == pytest.approx(1.0, abs=1e-9)


def test_weights_and_pruned_rows():
    X, Y = pair(1, 500, 5, 4)
    X = np.hstack([X, np.zeros((500, 1)), np.full((500, 1), 3.0)])
    r = svcca.cca(X, Y)
    assert r.pruned_x.indices.tolist() == [5, 6]
    assert r.weights_x.shape == (7, 4)
    np.testing.assert_array_equal(r.weights_x[5:], 0.0)
    assert r.weights_y.shape == (4, 4)


def test_duplicated_and_collinear_features():
    X, Y = pair(2, 600, 5, 4)
    Xd = np.hstack([X, X[:, :2], X[:, :1] + 2 * X[:, 1:2]])  # duplicates and a combination
    r = svcca.cca(Xd, Y)
    assert r.rank_x == 5
    np.testing.assert_allclose(r.correlations, svcca.cca(X, Y).correlations, atol=1e-9)
    assert np.isfinite(r.weights_x).all()
    U, V = r.transform(Xd, Y)
    np.testing.assert_allclose(
        [np.corrcoef(U[:, i], V[:, i])[0, 1] for i in range(4)], r.correlations, atol=1e-8
    )


def test_single_feature_and_constant_layers():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 1))
    y = 2 * x + 0.1 * rng.standard_normal((300, 1))
    r = svcca.cca(x, y)
    assert r.correlations.size == 1
    assert r.correlations[0] == pytest.approx(abs(np.corrcoef(x[:, 0], y[:, 0])[0, 1]), abs=1e-12)
    # A constant layer is refused, not scored 0 (tests/contract/test_edges.py covers every measure).
    for measure in (svcca.cca, svcca.pwcca, svcca.svcca):
        with pytest.raises(svcca.DegenerateError, match=r"Representation X \(3 features\)"):
            measure(np.ones((300, 3)), y)


def test_dtypes_accepted():
    X, Y = pair(4, 400, 4, 3)
    ref = svcca.cca(X, Y).correlations
    np.testing.assert_allclose(svcca.cca(X.astype(np.float32), Y).correlations, ref, atol=1e-5)
    np.testing.assert_allclose(svcca.cca(X.astype(np.float16), Y).correlations, ref, atol=1e-2)
    Xi = np.round(X * 100).astype(np.int64)
    np.testing.assert_allclose(svcca.cca(Xi, Y).correlations, ref, atol=1e-3)


def test_more_features_than_samples_warns():
    rng = np.random.default_rng(0)
    with pytest.warns(svcca.SVCCAWarning, match="inflated by the shape alone"):
        r = svcca.cca(rng.standard_normal((20, 30)), rng.standard_normal((20, 25)))
    assert np.isfinite(r.correlations).all()


def test_thresholded_mean_semantics():
    # private: the tie at exactly 60% needs exact correlations, which no CCA returns
    from svcca._measures._cca import thresholded_mean

    c = np.array([0.9, 0.5, 0.1, 0.0])
    assert thresholded_mean(c, 0.98) == pytest.approx(np.mean(c[:3]))
    assert thresholded_mean(c, 0.6) == pytest.approx(0.9)  # 0.9 is exactly 60% of 1.5
    assert thresholded_mean(c, 0.7) == pytest.approx(np.mean(c[:2]))
    assert thresholded_mean(c, 0.0) == pytest.approx(0.9)
    assert thresholded_mean(c, 1.0) == pytest.approx(np.mean(c[:3]))
    assert thresholded_mean(np.zeros(3), 0.98) == 0.0


def test_transform_width_mismatch():
    X, Y = independent_pair(50, 4, 3)
    r = svcca.cca(X, Y)
    with pytest.raises(ValueError, match="X has 3 features but the fitted representation had 4"):
        r.transform(Y)


def test_self_similarity_is_exactly_one_on_ill_conditioned_layers():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((500, 8)) * np.logspace(0, -5, 8)  # variances over 10 decades
    for fn in (svcca.cca, svcca.pwcca, functools.partial(svcca.svcca, keep=8)):
        r = fn(A, A @ rng.standard_normal((8, 8)))
        assert r.score == pytest.approx(1.0, abs=1e-6)
