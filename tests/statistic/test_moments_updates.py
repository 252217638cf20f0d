"""Moments, the sufficient statistic: batches, merges, shifts, files equal the whole."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import latent_pair, tol


def pair(seed: int, n: int, p: int, q: int):
    """Two related layers: shared latents, linear in X, through tanh in Y."""
    return latent_pair(n, p, q, seed=seed, y_tanh=True)


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


def test_moments_errors(tmp_path):
    m = svcca.Moments.empty(4, 3)
    with pytest.raises(ValueError, match="X has 5 features but these Moments were built for 4"):
        m.update(np.zeros((3, 5)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Y has 2 features but these Moments were built for 3"):
        m.update(np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="pass the matching Y batch"):
        m.update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="X has 3 rows and Y has 2"):
        m.update(np.zeros((3, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="without a Y representation"):
        svcca.Moments.empty(4).update(np.zeros((3, 4)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Cannot merge Moments of widths"):
        m.merge(svcca.Moments.empty(4, 2))
    with pytest.raises(TypeError, match="merge expects a Moments"):
        m.merge(np.zeros((3, 4)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p must be at least 1"):
        svcca.Moments.empty(0, 3)
    with pytest.raises(ValueError, match="q must be a non-negative int"):
        svcca.Moments.empty(3, -1)
    with pytest.raises(ValueError, match=r"Moments.sxx must have shape \(2, 2\)"):
        svcca.Moments(
            3, np.zeros(2), np.zeros(1), np.zeros((3, 3)), np.zeros((1, 1)), np.zeros((2, 1))
        )
    with pytest.raises(ValueError, match="from_batches received no batches"):
        svcca.Moments.from_batches([])
    with pytest.raises(ValueError, match=r"X \(batch 1\) has 5 features"):
        svcca.Moments.from_batches(
            [(np.ones((3, 4)), np.ones((3, 2))), (np.ones((3, 5)), np.ones((3, 2)))]
        )
    with pytest.raises(ValueError, match="Covariances need at least 2 samples"):
        _ = m.cov_xx
    with pytest.raises(ValueError, match="swap.. needs Moments with a Y"):
        svcca.Moments.empty(3).swap()
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved Moments file"):
        svcca.Moments.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Could not read Moments"):
        svcca.Moments.load(tmp_path / "junk.npz")
