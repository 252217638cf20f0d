"""Properties the mathematics promises, closed-form cases, and the sufficient statistic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import svcca
from conftest import tol

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


def pair(seed: int, n: int, p: int, q: int, shared: int = 3):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, shared))
    X = Z @ rng.standard_normal((shared, p)) + rng.standard_normal((n, p))
    Y = np.tanh(Z @ rng.standard_normal((shared, q))) + rng.standard_normal((n, q))
    return X, Y


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


@SETTINGS
@given(
    seed=st.integers(0, 2**31), n=st.integers(80, 300), p=st.integers(2, 10), q=st.integers(2, 10)
)
def test_svcca_invariant_to_orthogonal_maps_and_scaling(seed, n, p, q):
    X, Y = pair(seed, n, p, q)
    rng = np.random.default_rng(seed)
    Qx, _ = np.linalg.qr(rng.standard_normal((p, p)))
    Qy, _ = np.linalg.qr(rng.standard_normal((q, q)))
    base = svcca.svcca(X, Y, keep=0.9)
    moved = svcca.svcca(7.5 * X @ Qx + 1.0, 0.2 * Y @ Qy - 4.0, keep=0.9)
    assert (moved.kept_x, moved.kept_y) == (base.kept_x, base.kept_y)
    np.testing.assert_allclose(moved.correlations, base.correlations, atol=1e-8)


@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(80, 300), p=st.integers(2, 8), q=st.integers(2, 8))
def test_pwcca_invariances(seed, n, p, q):
    X, Y = pair(seed, n, p, q)
    rng = np.random.default_rng(seed)
    base = svcca.pwcca(X, Y)
    perm, signs = rng.permutation(p), rng.choice([-1.0, 1.0], size=p)
    moved = svcca.pwcca(3.0 * X[:, perm] * signs, Y[:, rng.permutation(q)] * 0.5)
    assert moved.score == pytest.approx(base.score, abs=1e-8)
    assert 0.0 <= base.score <= 1.0 + 1e-12


def test_pwcca_not_invariant_to_rotations_of_the_weighting_side():
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((2000, 3))
    X = np.hstack([Z, rng.standard_normal((2000, 3))]) * [5, 4, 3, 1, 1, 1]
    Y = np.hstack([Z[:, :1], rng.standard_normal((2000, 7))])
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a, b = svcca.pwcca(X, Y).score, svcca.pwcca(X @ Q, Y).score
    assert abs(a - b) > 1e-3


def test_svcca_keep_conventions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 10)) * np.array([10, 5, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1])
    Y = X @ rng.standard_normal((10, 10))
    ex = svcca.svcca(X, X, keep=0.9)
    sv = svcca.svcca(X, X, keep=0.9, variance="singular_values")
    assert ex.kept_x < sv.kept_x  # summing singular values keeps more directions
    var = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1]
    share = np.cumsum(var) / var.sum()
    assert ex.kept_x == int(np.argmax(share >= 0.9)) + 1
    assert ex.variance_kept_x == pytest.approx(share[ex.kept_x - 1], rel=1e-9)
    assert svcca.svcca(X, Y, keep=3).kept_x == 3
    # One rule with keep=1.0's refusal: a count may not ask for more than the features.
    with pytest.raises(
        ValueError, match=r"keep=50 asks for more directions than representation X has features"
    ):
        svcca.svcca(X, Y, keep=50)
    assert svcca.svcca(X, Y, keep=10).kept_x == 10
    assert svcca.svcca(X, Y, keep=0.999999).kept_x == 10


def test_svcca_weights_map_original_features():
    X, Y = pair(3, 1000, 8, 6)
    r = svcca.svcca(X, Y, keep=4)
    U, V = r.transform(X, Y)
    c = [np.corrcoef(U[:, i], V[:, i])[0, 1] for i in range(r.correlations.size)]
    np.testing.assert_allclose(c, r.correlations, atol=1e-10)


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
    # A constant layer is refused, not scored 0 (tests/test_edges.py covers every measure).
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
    from svcca.measures._cca import thresholded_mean

    c = np.array([0.9, 0.5, 0.1, 0.0])
    assert thresholded_mean(c, 0.98) == pytest.approx(np.mean(c[:3]))
    assert thresholded_mean(c, 0.6) == pytest.approx(0.9)  # 0.9 is exactly 60% of 1.5
    assert thresholded_mean(c, 0.7) == pytest.approx(np.mean(c[:2]))
    assert thresholded_mean(c, 0.0) == pytest.approx(0.9)
    assert thresholded_mean(c, 1.0) == pytest.approx(np.mean(c[:3]))
    assert thresholded_mean(np.zeros(3), 0.98) == 0.0


def covariance_roundoff(X: np.ndarray, Y: np.ndarray) -> float:
    """Round-off difference of two computations of the singular values of ``cov(X, Y)``.

    Each entry is a sum of ``n`` products, accurate to ``n eps`` times the same sum of
    absolute values (``||.||_2 <= ||.||_F`` of that bound for the whole matrix); the SVD
    adds ``(p + q) eps`` of the largest singular value, which that norm exceeds; 2 for
    the two computations. Every singular value, the smallest included, gets this
    absolute error: it is not relative.
    """
    n = X.shape[0]
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    scale = np.linalg.norm(np.abs(Xc).T @ np.abs(Yc)) / (n - 1)
    return tol(np.float64, scale=scale, factor=2 * (n + X.shape[1] + Y.shape[1]))


def test_pls_and_pca_properties():
    X, Y = pair(6, 700, 6, 3)
    r = svcca.pls(X, Y)
    C = np.cov(X.T, Y.T)[:6, 6:]
    s_tol = covariance_roundoff(X, Y)
    np.testing.assert_allclose(
        r.singular_values, np.linalg.svd(C, compute_uv=False), rtol=0, atol=s_tol
    )
    np.testing.assert_allclose(r.eigenvalues, r.singular_values**2, rtol=1e-12)
    np.testing.assert_allclose(r.weights_x.T @ r.weights_x, np.eye(3), atol=1e-12)
    U, V = r.transform(X, Y)  # one more product and covariance of n terms
    np.testing.assert_allclose(
        np.cov(U.T, V.T)[:3, 3:].diagonal(), r.singular_values, rtol=0, atol=2 * s_tol
    )
    cka = np.linalg.norm(C) ** 2 / (np.linalg.norm(np.cov(X.T)) * np.linalg.norm(np.cov(Y.T)))
    assert r.score == pytest.approx(cka, rel=1e-12)
    p = svcca.pca(X)
    e_tol = covariance_roundoff(X, X)  # eigenvalues of cov(X): to eps times the largest
    np.testing.assert_allclose(
        p.eigenvalues, np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1], rtol=0, atol=e_tol
    )
    assert p.explained_variance_ratio.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        p.transform(X).var(axis=0, ddof=1), p.eigenvalues, rtol=0, atol=2 * e_tol
    )


# ----------------------------------------------------------------- the statistic
def test_moments_batches_equal_whole():
    X, Y = pair(7, 1003, 9, 5)
    X = X + 1e4  # large means: the pairwise update must not cancel
    whole = svcca.Moments.from_arrays(X, Y)
    m = svcca.Moments.empty(9, 5)
    for s in range(0, 1003, 97):
        m.update(X[s : s + 97], Y[s : s + 97])
    for key in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
        a, b = getattr(m, key), getattr(whole, key)
        assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(b))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    np.testing.assert_allclose(whole.sxy, Xc.T @ Yc, rtol=1e-10, atol=1e-9)
    a, b = svcca.Moments.from_arrays(X[:400], Y[:400]), svcca.Moments.from_arrays(X[400:], Y[400:])
    merged = a.merge(b)
    assert np.max(np.abs(merged.sxx - whole.sxx)) <= 1e-12 * np.max(np.abs(whole.sxx))
    assert merged.n == 1003 and a.n == 400  # merge leaves its inputs alone
    for f in (svcca.cca, svcca.svcca, svcca.pwcca, svcca.pls):
        assert f(m).score == pytest.approx(f(X, Y).score, abs=1e-10)
    batches = ((X[s : s + 200], Y[s : s + 200]) for s in range(0, 1003, 200))
    assert svcca.cca(svcca.Moments.from_batches(batches)).score == pytest.approx(
        svcca.cca(X, Y).score, abs=1e-10
    )


def test_moments_first_chunk_far_from_the_rest():
    """The one-pass shift is the first chunk's mean: an outlying first chunk stays exact."""
    rng = np.random.default_rng(9)
    X = rng.standard_normal((20000, 4))
    X[:100] += 1e4  # the first chunk is a cluster 10^4 standard deviations away
    Y = rng.standard_normal((20000, 2)) - 3e5
    m = svcca.Moments.from_arrays(X, Y, chunk_size=100)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    for got, want in ((m.sxx, Xc.T @ Xc), (m.syy, Yc.T @ Yc), (m.sxy, Xc.T @ Yc)):
        assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want))
    # The mean is the shift (the first chunk's mean, 1e4 away) plus a mean of shifted
    # rows, each up to max|x - shift| = 1e4: a sum of 100 terms per chunk, then of 200
    # chunk sums, accurate to (100 + 200) eps of that size (6.7e-10), NumPy's mean less.
    shift_scale = float(np.max(np.abs(X - X[:100].mean(axis=0))))
    mean_tol = tol(np.float64, scale=shift_scale, factor=100 + 20000 // 100)
    np.testing.assert_allclose(m.mean_x, X.mean(axis=0), rtol=0, atol=mean_tol)


def test_moments_small_chunks_and_files(tmp_path):
    X, Y = pair(8, 300, 4, 3)
    a = svcca.Moments.from_arrays(X, Y, chunk_size=7)
    b = svcca.Moments.from_arrays(X, Y)
    np.testing.assert_allclose(a.sxy, b.sxy, rtol=1e-12, atol=1e-12)
    path = tmp_path / "m.npz"
    b.save(path)
    c = svcca.Moments.load(path)
    assert c.n == b.n
    np.testing.assert_array_equal(c.syy, b.syy)
    np.testing.assert_allclose(b.cov_xy, np.cov(X.T, Y.T)[:4, 4:], rtol=1e-12)
    s = b.swap()
    assert (s.p, s.q) == (3, 4)
    np.testing.assert_array_equal(s.sxy, b.sxy.T)
    assert svcca.pca(svcca.Moments.from_arrays(X)).eigenvalues.size == 4
    assert "n=300" in repr(b)
