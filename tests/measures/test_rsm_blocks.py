"""The distance-matrix measures in row blocks: equal to the whole-matrix formulas, and
never holding an n x n matrix (tracemalloc)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import svcca
from conftest import tol

RSM = svcca.MEASURES["rsm_norm_difference"]
DCOR = svcca.MEASURES["distance_correlation"]


def pair(n=300, p=5, q=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + 3.0
    Y = np.tanh(X[:, :q] @ rng.standard_normal((q, q))) + 0.2 * rng.standard_normal((n, q))
    return X, Y


def full_difference(X, Y):
    return cdist(X, X) - cdist(Y, Y)


def test_norms_equal_the_whole_matrix_formulas_for_any_block_size():
    X, Y = pair()
    M = full_difference(X, Y)
    spectral = np.linalg.norm(M, 2)
    frob = np.linalg.norm(M)
    tri = np.linalg.norm(M[np.triu_indices(len(M), 1)])
    scale = np.abs(M).max() * len(M)  # n-term sums of entries of this size
    for b in (None, 1, 7, 64, 299, 300, 10_000):
        assert abs(RSM(X, Y, block_size=b).distance - spectral) <= tol(scale=scale, factor=100)
        got = RSM(X, Y, norm="frobenius", block_size=b).distance
        assert abs(got - frob) <= tol(scale=scale, factor=100)
        got = RSM(X, Y, norm="triangle", block_size=b).distance
        assert abs(got - tri) <= tol(scale=scale, factor=100)


def test_lanczos_tolerance_bounds_the_relative_error():
    X, Y = pair(seed=3)
    exact = np.linalg.norm(full_difference(X, Y), 2)
    for t in (1e-4, 1e-8):
        got = RSM(X, Y, block_size=50, tol=t).distance
        assert abs(got - exact) <= t * exact
    # the same input gives the same number (a fixed start vector)
    assert RSM(X, Y, block_size=50).distance == RSM(X, Y, block_size=50).distance


def test_distance_correlation_equals_the_whole_matrix_formula():
    X, Y = pair(n=200)

    def centred(D):
        return D - D.mean(axis=0) - D.mean(axis=1)[:, None] + D.mean()

    A, B = centred(cdist(X, X)), centred(cdist(Y, Y))
    want = np.sqrt((A * B).mean() / np.sqrt((A * A).mean() * (B * B).mean()))
    for b in (None, 1, 13, 200):
        res = DCOR(X, Y, block_size=b)
        assert abs(res.score - want) <= tol(cond=1e3)
        assert res.dcov2 == pytest.approx((A * B).mean(), rel=1e-12)
        assert res.dvar2[0] == pytest.approx((A * A).mean(), rel=1e-12)


def test_distance_correlation_at_extreme_magnitudes():
    """Each side is divided by a power of two before its distances are taken: a layer
    at 1e-200 or 1e200 scores as at 1 (dCor ignores scale)."""
    X, Y = pair(n=100)
    ref = DCOR(X, Y).score
    for c in (1e-200, 1e200):
        assert abs(DCOR(c * X, Y).score - ref) <= tol(cond=1e3)


def peak_bytes(f):
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_within_a_few_blocks_never_n_by_n():
    n, b = 2000, 50
    X, Y = pair(n=n, p=8, q=6)
    whole = 8 * n * n  # one n x n float64 matrix: 32 MB
    # inputs' centred copies (n (p + q)) plus a few blocks of b x n, nothing n x n
    bound = 8 * n * (X.shape[1] + Y.shape[1]) * 2 + 6 * 8 * b * n
    for f in (
        lambda: RSM(X, Y, norm="frobenius", block_size=b),
        lambda: DCOR(X, Y, block_size=b),
        lambda: svcca.MEASURES["uniformity_difference"](X, Y, block_size=b),
    ):
        peak = peak_bytes(f)
        assert peak <= bound < whole / 3, (peak, bound)


def test_spectral_norm_memory_stays_within_a_few_blocks():
    n, b = 1200, 40
    X, Y = pair(n=n)
    bound = 8 * n * 9 * 2 + 6 * 8 * b * n + 8 * n * 60  # + Lanczos' basis vectors
    peak = peak_bytes(lambda: RSM(X, Y, block_size=b, tol=1e-10))
    assert peak <= bound < 8 * n * n / 3, (peak, bound)


def test_prepared_sides_combine_to_the_single_call():
    X, Y = pair()
    for m in (RSM, DCOR):
        sx, sy = m.prepare_side(X), m.prepare_side(Y)
        assert m.combine_sides(sx, sy) == m.score(X, Y)


def test_bad_knobs_and_shapes_are_refused():
    X, Y = pair(n=50)
    with pytest.raises(ValueError, match="norm must be one of 'spectral', 'frobenius'"):
        RSM(X, Y, norm="nuclear")
    with pytest.raises(ValueError, match=r"tol must be a number in \[0, 1\)"):
        RSM(X, Y, tol=-1e-3)
    with pytest.raises(ValueError, match="block_size must be an int >= 1"):
        RSM(X, Y, block_size=0)
    with pytest.raises(TypeError, match="block_size must be an int >= 1"):
        DCOR(X, Y, block_size=2.5)
    with pytest.raises(ValueError, match="must describe the same datapoints"):
        RSM(X, Y[:40])
    with pytest.raises(ValueError, match="must describe the same datapoints"):
        RSM.combine_sides(RSM.prepare_side(X), RSM.prepare_side(Y[:40]))
    with pytest.raises(ValueError, match="X has 1 datapoint; the distance matrices need"):
        DCOR(X[:1], Y[:1])
