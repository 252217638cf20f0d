"""CKA: analytic cases, agreement between independent computations, error paths."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import svcca
from conftest import correlated_linear_pair
from svcca import CKAResult, Moments, cka
from svcca._measures._cka import center_gram  # private: no public name (a step of cka)


def _related(seed=0, n=300, p=12, q=9, noise=1.0):
    return correlated_linear_pair(n, p, q, seed=seed, noise=noise)


# ---------------------------------------------------------------- independent references
def _hsic_song(K, L):
    """Song et al. 2012, eq. (5), written out term by term."""
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    one = np.ones(n)
    t1 = np.trace(Kt @ Lt)
    t2 = (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
    t3 = 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    return (t1 + t2 - t3) / (n * (n - 3))


def _cka_reference(K, L, debiased):
    n = K.shape[0]
    if debiased:
        f = _hsic_song
    else:
        H = np.eye(n) - np.ones((n, n)) / n

        def f(A, B):
            return np.trace(H @ A @ H @ B) / (n - 1) ** 2

    return f(K, L) / np.sqrt(f(K, K) * f(L, L))


def _rbf_reference(A, bandwidth):
    D2 = cdist(A, A, "sqeuclidean")
    sigma2 = bandwidth**2 * np.median(D2)  # full matrix, zeros included
    return np.exp(-D2 / (2 * sigma2)), np.sqrt(sigma2)


# ---------------------------------------------------------------- analytic cases
@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_orthogonal_transform_and_scaling_give_one(kernel, debiased):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 15))
    Q, _ = np.linalg.qr(rng.standard_normal((15, 15)))
    res = cka(X, 2.5 * X @ Q + 4.0, kernel=kernel, debiased=debiased)
    assert isinstance(res, CKAResult)
    assert res.score == pytest.approx(1.0, abs=1e-10)


def test_biased_linear_cka_of_independent_gaussians_shrinks_like_one_over_n():
    # For n >> p, q and isotropic independent Gaussians, CKA ~ sqrt(p q) / n.
    p = q = 10
    for n in (500, 2000):
        vals = [
            cka(*(np.random.default_rng(s).standard_normal((2, n, p)))).score for s in range(20)
        ]
        assert n * np.mean(vals) == pytest.approx(np.sqrt(p * q), rel=0.15)


def test_debiased_cka_of_independent_data_is_near_zero():
    vals = []
    for s in range(20):
        rng = np.random.default_rng(s)
        X, Y = rng.standard_normal((400, 10)), rng.standard_normal((400, 10))
        vals.append(cka(X, Y, debiased=True).score)
        assert cka(X, Y).score > 0.015  # the biased estimator is clearly positive
    assert abs(np.mean(vals)) < 0.002
    assert np.std(vals) < 0.01


def test_identical_representations_and_pls_equivalence():
    import svcca

    X, Y = _related()
    assert cka(X, X).score == pytest.approx(1.0, abs=1e-12)
    assert cka(X, Y).score == pytest.approx(svcca.pls(X, Y).score, abs=1e-12)


def test_large_rbf_bandwidth_tends_to_linear_cka():
    X, Y = _related(n=150)
    assert cka(X, Y, kernel="rbf", bandwidth=300.0).score == pytest.approx(
        cka(X, Y).score, abs=1e-4
    )


def test_constant_representation_is_refused():
    X, _ = _related(n=50)
    for kw in ({}, {"kernel": "rbf"}, {"debiased": True}, {"method": "sample"}):
        with pytest.raises(svcca.DegenerateError, match=r"Representation Y \(3 features\)"):
            cka(X, np.ones((50, 3)), **kw)


# ---------------------------------------------------------------- agreement between paths
@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("shape", [(300, 12, 9), (40, 60, 80), (5, 3, 2)])
def test_feature_and_sample_space_agree(debiased, shape):
    n, p, q = shape
    X, Y = _related(n=n, p=p, q=q)
    f = cka(X, Y, debiased=debiased, method="feature")
    s = cka(X, Y, debiased=debiased, method="sample")
    assert (f.method, s.method) == ("feature", "sample")
    assert f.score == pytest.approx(s.score, rel=1e-10, abs=1e-12)
    for a in ("hsic_xy", "hsic_xx", "hsic_yy"):
        assert getattr(f, a) == pytest.approx(getattr(s, a), rel=1e-9)


def test_auto_picks_the_cheaper_space():
    X, Y = _related(n=300, p=12, q=9)
    assert cka(X, Y).method == "feature"
    X, Y = _related(n=30, p=200, q=150)
    assert cka(X, Y).method == "sample"


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_matches_written_out_formulas(debiased):
    X, Y = _related(n=60, p=7, q=5)
    ref = _cka_reference(X @ X.T, Y @ Y.T, debiased)  # uncentred Gram: HSIC ignores it
    assert cka(X, Y, debiased=debiased).score == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("bandwidth", [0.5, 1.0, 2.0])
def test_rbf_matches_independent_implementation(debiased, bandwidth):
    X, Y = _related(n=70, p=6, q=4)
    K, sx = _rbf_reference(X, bandwidth)
    L, sy = _rbf_reference(Y, bandwidth)
    res = cka(X, Y, kernel="rbf", bandwidth=bandwidth, debiased=debiased)
    assert res.score == pytest.approx(_cka_reference(K, L, debiased), rel=1e-9)
    assert res.sigma_x == pytest.approx(sx, rel=1e-10)
    assert res.sigma_y == pytest.approx(sy, rel=1e-10)
    assert res.bandwidth == bandwidth and res.kernel == "rbf" and res.method == "sample"


def test_unbiased_centering_is_a_projection():
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal((2, 30, 4))
    K, L = A @ A.T, B @ B.T
    Kc, Lc = center_gram(K, unbiased=True), center_gram(L, unbiased=True)
    Lt = L - np.diag(np.diag(L))
    assert np.vdot(Kc, Lc) / (30 * 27) == pytest.approx(_hsic_song(K, L), rel=1e-10)
    assert np.vdot(Kc, Lt) == pytest.approx(np.vdot(Kc, Lc), rel=1e-10)


def test_from_moments_equals_from_arrays():
    X, Y = _related()
    m = Moments.from_arrays(X, Y)
    a, b = cka(m), cka(X, Y)
    assert a.method == "moments"
    assert a.score == pytest.approx(b.score, rel=1e-12)
    assert a.n_samples == 300 and a.n_features == (12, 9)


def test_streamed_batches_equal_arrays():
    X, Y = _related()
    batches = iter([(X[:100], Y[:100]), (X[100:], Y[100:])])
    assert cka(batches).score == pytest.approx(cka(X, Y).score, rel=1e-12)


def test_debiased_works_at_four_samples_and_float32_input():
    X, Y = _related(n=4, p=3, q=2)
    assert np.isfinite(cka(X, Y, debiased=True).score)
    X, Y = _related()
    assert cka(X.astype(np.float32), Y.astype(np.float32)).score == pytest.approx(
        cka(X.astype(np.float32).astype(float), Y.astype(np.float32).astype(float)).score,
        rel=1e-12,
    )


# ---------------------------------------------------------------- errors
def test_errors():
    X, Y = _related(n=20)
    with pytest.raises(ValueError, match="kernel must be one of"):
        cka(X, Y, kernel="poly")
    with pytest.raises(ValueError, match="method must be one of"):
        cka(X, Y, method="gram")
    with pytest.raises(TypeError, match="debiased must be True or False"):
        cka(X, Y, debiased="yes")
    with pytest.raises(TypeError, match="bandwidth must be a number > 0"):
        cka(X, Y, kernel="rbf", bandwidth="median")
    with pytest.raises(ValueError, match="bandwidth must be a number > 0"):
        cka(X, Y, kernel="rbf", bandwidth=0.0)
    with pytest.raises(ValueError, match="bandwidth must be a number > 0; got -1.0"):
        cka(X, Y, kernel="rbf", bandwidth=-1.0)
    m = Moments.from_arrays(X, Y)
    with pytest.raises(ValueError, match="only linear, biased CKA"):
        cka(m, kernel="rbf")
    with pytest.raises(ValueError, match="only linear, biased CKA"):
        cka(m, debiased=True)
    with pytest.raises(ValueError, match="only supports the feature-space"):
        cka(m, method="sample")
    with pytest.raises(TypeError, match="cka compares two representations"):
        cka(X)
    with pytest.raises(ValueError, match="At least 2 samples"):
        cka(X[:1], Y[:1])
    with pytest.raises(ValueError, match="at least 4 samples"):
        cka(X[:3], Y[:3], debiased=True)
    with pytest.raises(ValueError, match="only for the linear kernel"):
        cka(X, Y, kernel="rbf", method="feature")
    with pytest.raises(ValueError, match="same datapoints"):
        cka(X, Y[:10])
    Z = np.zeros((20, 3))
    Z[:2] = 1.0
    with pytest.raises(ValueError, match="more than half the pairs"):
        cka(X, Z, kernel="rbf")
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        cka(bad, Y, kernel="rbf")
    with pytest.raises(ValueError, match="NaN or inf"):
        cka(bad, Y, method="sample")
    with pytest.raises(ValueError, match="NaN or inf"):
        cka(bad, Y)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"method": "sample"},
        {"debiased": True},
        {"debiased": True, "method": "sample"},
        {"kernel": "rbf"},
    ],
)
def test_large_offsets_do_not_cost_accuracy(kw):
    X, Y = _related(n=80, p=5, q=4)
    assert cka(X + 1e6, Y - 3e5, **kw).score == pytest.approx(cka(X, Y, **kw).score, rel=1e-8)


def test_rbf_sigma_is_an_absolute_width_and_its_errors():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 5))
    Y = X @ rng.standard_normal((5, 4)) + rng.standard_normal((80, 4))
    r = svcca.cka(X, Y, kernel="rbf", bandwidth=0.7)
    same = svcca.cka(X, Y, kernel="rbf", sigma=(r.sigma_x, r.sigma_y))
    assert same.score == pytest.approx(r.score, rel=1e-12)
    assert same.bandwidth is None and same.sigma_x == pytest.approx(r.sigma_x)
    # An absolute width makes the score depend on the data's scale; the median rule not.
    assert svcca.cka(2 * X, Y, kernel="rbf", sigma=1.0).score != pytest.approx(
        svcca.cka(X, Y, kernel="rbf", sigma=1.0).score
    )
    with pytest.raises(ValueError, match="does not apply to kernel='linear'"):
        svcca.cka(X, Y, sigma=1.0)
    with pytest.raises(ValueError, match="not both"):
        svcca.cka(X, Y, kernel="rbf", sigma=1.0, bandwidth=0.5)
    with pytest.raises(ValueError, match=r"a \(sigma_x, sigma_y\) pair"):
        svcca.cka(X, Y, kernel="rbf", sigma=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="sigma must be a number > 0"):
        svcca.cka(X, Y, kernel="rbf", sigma=0.0)
