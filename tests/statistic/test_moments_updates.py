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
