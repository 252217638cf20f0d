"""The matching measures against their definitions: brute force over permutations,
scipy's Procrustes rotation, row-by-row cosines."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

import svcca
from conftest import tol

M = svcca.MEASURES


def pair(n=200, p=4, q=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) + rng.uniform(-2, 2, p)
    Y = np.tanh(X @ rng.standard_normal((p, q))) + 0.5 * rng.standard_normal((n, q))
    Y += rng.uniform(-1, 1, q)
    return X, Y


def corr(X, Y):
    return np.corrcoef(X, Y, rowvar=False)[: X.shape[1], X.shape[1] :]


def best_matching(S):
    """max over one-to-one matchings of min(p, q) pairs, by brute force."""
    p, q = S.shape
    if p <= q:
        return max(
            sum(S[i, j] for i, j in zip(range(p), c, strict=True))
            for c in itertools.permutations(range(q), p)
        )
    return best_matching(S.T)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (4, 4)])
def test_correlation_matches_equal_their_definitions(shape):
    X, Y = pair(p=shape[0], q=shape[1])
    C = corr(X, Y)
    hard = M["hard_correlation_match"](X, Y)
    assert abs(hard.score - best_matching(C) / min(shape)) <= tol(cond=10)
    assert hard.pairs.shape == (min(shape), 2)
    assert abs(C[hard.pairs[:, 0], hard.pairs[:, 1]].mean() - hard.score) <= tol(cond=10)
    soft = M["soft_correlation_match"](X, Y).score
    assert abs(soft - (C.max(1).mean() + C.max(0).mean()) / 2) <= tol(cond=10)


def test_a_dead_neuron_correlates_zero_as_in_resi():
    X, Y = pair(p=3, q=3)
    Xd = np.column_stack([X, np.full(len(X), 2.0)])  # a constant fifth unit
    C = np.zeros((4, 3))
    C[:3] = corr(X, Y)
    soft = M["soft_correlation_match"](Xd, Y).score
    assert abs(soft - (C.max(1).mean() + C.max(0).mean()) / 2) <= tol(cond=10)


def test_permutation_procrustes_equals_brute_force_on_raw_zero_padded_data():
    X, Y = pair(p=4, q=3)
    Yp = np.column_stack([Y, np.zeros(len(Y))])
    best = min(np.linalg.norm(X[:, list(c)] - Yp) for c in itertools.permutations(range(4)))
    got = M["permutation_procrustes"](X, Y)
    scale = np.linalg.norm(X) + np.linalg.norm(Y)
    assert abs(got.distance - best) <= tol(scale=scale**2, factor=100) / best
    assert got.squared_distance == pytest.approx(got.distance**2, rel=1e-14)


def test_size_and_shape_distance_equals_scipys_rotation_of_the_centred_data():
    X, Y = pair(p=4, q=3)
    Xc, Yc = X - X.mean(0), np.column_stack([Y - Y.mean(0), np.zeros(len(Y))])
    R, _ = orthogonal_procrustes(Xc, Yc)
    want = np.linalg.norm(Xc @ R - Yc)
    got = M["procrustes_size_shape"](X, Y).distance
    scale = np.linalg.norm(Xc) + np.linalg.norm(Yc)
    assert abs(got - want) <= tol(scale=scale**2, factor=100) / want
    # no normalisation: doubling both sides doubles it (svcca.procrustes would not move)
    assert M["procrustes_size_shape"](2 * X, 2 * Y).distance == pytest.approx(2 * got, rel=1e-12)


def test_moments_give_the_arrays_numbers():
    X, Y = pair()
    mom = svcca.Moments.from_arrays(X, Y)
    for name in (
        "hard_correlation_match",
        "soft_correlation_match",
        "permutation_procrustes",
        "procrustes_size_shape",
        "eigenspace_overlap",
        "gulp",
        "magnitude_difference",
    ):
        assert M[name].score(mom) == pytest.approx(M[name].score(X, Y), rel=1e-12), name


def test_aligned_cosine_equals_row_cosines_after_scipys_rotation():
    X, Y = pair(p=4, q=3)
    Yp = np.column_stack([Y, np.zeros(len(Y))])
    R, _ = orthogonal_procrustes(X, Yp)  # raw data, as ReSi
    A = X @ R
    want = np.mean(np.sum(A * Yp, 1) / np.linalg.norm(A, axis=1) / np.linalg.norm(Yp, axis=1))
    res = M["aligned_cosine"](X, Y)
    assert abs(res.score - want) <= tol(cond=1e3)
    assert res.n_used == len(X)


def test_aligned_cosine_leaves_out_zero_rows_with_a_warning():
    X, Y = pair(p=3, q=3)
    X[5] = 0.0
    Y[9] = 0.0
    keep = np.setdiff1d(np.arange(len(X)), [5, 9])
    R, _ = orthogonal_procrustes(X, Y)
    A = X @ R
    want = np.mean(
        np.sum(A * Y, 1)[keep] / np.linalg.norm(A, axis=1)[keep] / np.linalg.norm(Y, axis=1)[keep]
    )
    with pytest.warns(svcca.SVCCAWarning, match="2 of 200 datapoints have a zero row"):
        res = M["aligned_cosine"](X, Y)
    assert res.n_used == 198
    assert abs(res.score - want) <= tol(cond=1e3)
    X2, Y2 = X.copy(), Y.copy()
    X2[:100] = 0.0
    Y2[100:] = 0.0
    with pytest.raises(ValueError, match="Every one of the 200 datapoints has a zero row"):
        M["aligned_cosine"](X2, Y2)


def test_an_unknown_mode_is_refused():
    X, Y = pair()
    from svcca._measures._matching import correlation_match

    with pytest.raises(ValueError, match="mode must be one of 'hard', 'soft'"):
        correlation_match(X, Y, mode="fuzzy")


def test_size_and_shape_distance_is_procrustes_before_normalising():
    """d^2 = |X_c|^2 + |Y_c|^2 - 2 |X_c| |Y_c| s, with s svcca.procrustes's score (the
    nuclear norm over the norms): two code paths, one number."""
    X, Y = pair(p=5, q=3)
    nx, ny = np.sum((X - X.mean(0)) ** 2), np.sum((Y - Y.mean(0)) ** 2)
    s = svcca.procrustes(X, Y).score
    want = nx + ny - 2 * np.sqrt(nx * ny) * s
    got = M["procrustes_size_shape"](X, Y).squared_distance
    assert abs(got - want) <= tol(scale=nx + ny, factor=100)


def test_a_tiny_but_varying_neuron_keeps_its_correlation():
    """Correlations are scale-free per neuron: one whose variance is 1e-14 of another's
    is matched by its correlation, not counted as dead (a constant stored at an offset,
    spread at its mean's round-off, is dead)."""
    X, Y = pair(p=3, q=3)
    Xs = X.copy()
    Xs[:, 1] *= 1e-7
    C = corr(Xs, Y)
    soft = M["soft_correlation_match"](Xs, Y).score
    assert abs(soft - (C.max(1).mean() + C.max(0).mean()) / 2) <= tol(cond=10)
    assert abs(soft - M["soft_correlation_match"](X, Y).score) <= tol(cond=10)
    Xc = X.copy()
    Xc[:, 1] = 0.1 + 1e-17 * (np.arange(len(X)) % 2)  # 0.1, give or take one ulp
    C = corr(Xc[:, [0, 2]], Y)
    C = np.insert(C, 1, 0.0, axis=0)
    soft = M["soft_correlation_match"](Xc, Y).score
    assert abs(soft - (C.max(1).mean() + C.max(0).mean()) / 2) <= tol(cond=10)


def test_a_side_constant_to_its_round_off_is_refused():
    X, Y = pair(p=2, q=3)
    flat = np.column_stack([0.1 + 1e-17 * (np.arange(len(X)) % 2)] * 2)  # varies by 1 ulp
    with pytest.raises(svcca.DegenerateError, match=r"Representation X \(2 features\) has "):
        M["hard_correlation_match"](flat, Y)
