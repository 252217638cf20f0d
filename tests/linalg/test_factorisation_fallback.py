"""Every SVD and symmetric eigendecomposition falls back to LAPACK's robust driver.

LAPACK's divide-and-conquer drivers (gesdd, syevd: what ``np.linalg.svd`` / ``eigh`` /
``eigvalsh`` call) can fail to converge on nearly degenerate blocks: the issue's
``run_sanity(width=24)`` died with "SVD did not converge" on a whitened cross block whose
1,287 singular values all lay within 1e-3 of 1, on one BLAS thread only. That failure is
not reproducible on demand (it depends on the LAPACK build and the thread count), so the
guarantee is carried by injecting it: the fast driver raises, and every measure must
still give the true score through the robust driver (gesvd, syev); when both fail, the
error names what was factorised and what to try.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import svcca
from conftest import tol


def _with_correlations(rho: np.ndarray, n: int = 400, seed: int = 0):
    """``X`` (n x k) and ``Y`` (n x k) whose canonical correlations are exactly ``rho``,
    behind random invertible maps (CCA ignores them)."""
    rng = np.random.default_rng(seed)
    k = rho.size
    Z = rng.standard_normal((n, 2 * k))
    Z -= Z.mean(axis=0)
    Q, _ = np.linalg.qr(Z)
    Qx, Qy = Q[:, :k], Q[:, k:]
    Yb = Qx * rho + Qy * np.sqrt(1.0 - rho**2)
    Ax = rng.standard_normal((k, k)) + 3 * np.eye(k)
    Ay = rng.standard_normal((k, k)) + 3 * np.eye(k)
    return Qx @ Ax, Yb @ Ay


def _no_convergence(name: str):
    calls = []

    def fail(*args, **kwargs):
        calls.append(name)
        raise np.linalg.LinAlgError(f"{name}: SVD did not converge (injected)")

    return fail, calls


@pytest.fixture
def fast_drivers_fail(monkeypatch):
    """NumPy's SVD and symmetric eigensolvers (LAPACK gesdd, syevd) never converge."""
    calls = []
    for name in ("svd", "eigh", "eigvalsh"):
        fail, seen = _no_convergence(f"np.linalg.{name}")
        monkeypatch.setattr(np.linalg, name, fail)
        calls.append(seen)
    return calls


RHO = np.array([0.99, 0.9, 0.7, 0.5, 0.3, 0.1])


@pytest.mark.faults
def test_cca_family_scores_are_right_when_the_fast_drivers_fail(fast_drivers_fail):
    X, Y = _with_correlations(RHO)
    # The whitening's cond is that of the random maps (tens): the bound of measures/test_cca.py.
    bound = tol(cond=1e4, factor=100)
    r = svcca.cca(X, Y)
    np.testing.assert_allclose(r.correlations, RHO, atol=bound)
    # pwcca goes through the SVD of the cross block, svcca through eigh of each side.
    p = svcca.pwcca(X, Y)
    np.testing.assert_allclose(p.correlations, RHO, atol=bound)
    assert p.score == pytest.approx(p.weights @ RHO, abs=bound)
    s = svcca.svcca(X, Y, keep=6)
    np.testing.assert_allclose(s.correlations, RHO, atol=bound)
    pw = svcca.pairwise({"a": X, "b": Y}, measure="cca")
    assert pw.values[0, 1] == pytest.approx(RHO.mean(), abs=bound)
    assert all(len(c) > 0 for c in fast_drivers_fail), "the fast drivers were not used"


@pytest.mark.faults
def test_fallback_scores_equal_the_fast_drivers(monkeypatch):
    """The robust drivers give the scores the fast ones give, to backward-stable round-off,
    for the measures without a closed-form truth (PWCCA, shape, PLS, the Fourier path)."""
    X, Y = _with_correlations(RHO, seed=1)
    rng = np.random.default_rng(2)
    A = rng.standard_normal((60, 6, 6, 3))
    B = A[..., :2] + 0.3 * rng.standard_normal((60, 6, 6, 2))

    def run():
        return (
            svcca.pwcca(X, Y).score,
            svcca.shape_distance(X, Y, alpha=0.5).score,
            svcca.pls(X, Y).singular_values,
            svcca.conv.fourier_cca(A, B, layout="nhwc").correlations,
            svcca.conv.fourier_cca(A, B, layout="nhwc", keep=0.9).correlations,
        )

    want = run()
    for name in ("svd", "eigh", "eigvalsh"):
        monkeypatch.setattr(np.linalg, name, _no_convergence(name)[0])
    got = run()
    for w, g in zip(want, got, strict=True):
        w, g = np.nan_to_num(np.asarray(w)), np.nan_to_num(np.asarray(g))
        np.testing.assert_allclose(g, w, atol=tol(cond=1e4, factor=100, scale=max(1, abs(w).max())))


@pytest.mark.faults
def test_both_drivers_failing_names_the_block_and_what_to_try(monkeypatch):
    X, Y = _with_correlations(RHO)
    monkeypatch.setattr(np.linalg, "svd", _no_convergence("gesdd")[0])
    monkeypatch.setattr(scipy.linalg, "svd", _no_convergence("gesvd")[0])
    with pytest.raises(
        np.linalg.LinAlgError,
        match=r"The SVD of the whitened cross block of X and Y \(a 6 x 6 float64 block\) did "
        r"not converge, neither with LAPACK's gesdd .* nor with its robust driver gesvd .*"
        r"Its entries are finite.*Try another LAPACK.*svcca.on_device",
    ):
        svcca.pwcca(X, Y)


@pytest.mark.faults
def test_both_eigensolvers_failing_names_the_layer(monkeypatch):
    X, Y = _with_correlations(RHO)
    monkeypatch.setattr(np.linalg, "eigh", _no_convergence("syevd")[0])
    monkeypatch.setattr(scipy.linalg, "eigh", _no_convergence("syev")[0])
    with pytest.raises(
        np.linalg.LinAlgError,
        match=r"The eigendecomposition of representation 'a' \(a 6 x 6 float64 block\) did "
        r"not converge, neither with LAPACK's syevd .* nor with its robust driver syev",
    ):
        svcca.pairwise({"a": X, "b": Y}, measure="svcca")


@pytest.mark.faults
def test_a_non_finite_block_is_not_handed_to_the_robust_driver(monkeypatch):
    """gesvd may return NaN for a NaN block instead of failing: a block that is not
    finite raises at once, saying so. A statistic built by hand with an inf is refused
    when it is made (the public boundary), so the guard of the factorisation itself can
    only be shown on the kernel."""
    from svcca import _dense

    X, Y = _with_correlations(RHO)
    m = svcca.Moments.from_arrays(X, Y)
    sxy = m.sxy.copy()
    sxy[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"Moments.sxy holds NaN or inf: expected the finite"):
        svcca.Moments(m.n, m.mean_x, m.mean_y, m.sxx, m.syy, sxy)
    monkeypatch.setattr(np.linalg, "svd", _no_convergence("gesdd")[0])
    robust, tried = _no_convergence("gesvd")
    monkeypatch.setattr(scipy.linalg, "svd", robust)
    with pytest.raises(
        np.linalg.LinAlgError,
        match=r"The SVD of the cross-covariance of X and Y \(a 6 x 6 float64 block\) did not "
        r"converge with LAPACK's gesdd .* The block holds 1 NaN or inf entries: the statistic "
        r"it came from is not finite .* Rescale the activations",
    ):
        with _dense.factorising("the cross-covariance of X and Y"):
            _dense.svd(sxy)
    assert not tried
