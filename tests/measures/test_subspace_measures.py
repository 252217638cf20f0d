"""Eigenspace overlap and GULP against their definitions on the data: orthonormal bases
from an SVD, ridge predictors from explicit inverses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import svcca
from conftest import tol

M = svcca.MEASURES


def pair(n=300, p=5, q=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) + rng.uniform(-2, 2, p)
    Y = np.tanh(X @ rng.standard_normal((p, q))) + 0.4 * rng.standard_normal((n, q)) + 1.0
    return X, Y


def basis(A):
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    return U[:, s > s[0] * 1e-10]


@pytest.mark.parametrize("n", [300, 6])  # n = 6 < p + q: rank-deficient raw spans
def test_eigenspace_overlap_equals_the_svd_formula(n):
    X, Y = pair(n=n)
    Ux, Uy = basis(X), basis(Y)
    want = np.linalg.norm(Ux.T @ Uy) ** 2 / max(X.shape[1], Y.shape[1])
    res = M["eigenspace_overlap"](X, Y)
    assert abs(res.score - want) <= tol(cond=1e4)
    assert res.ranks == (Ux.shape[1], Uy.shape[1])


def gulp_direct(X, Y, lam):
    """Boix-Adsera et al.'s d_lambda^2 with explicit (pseudo-)inverses of the data's
    covariances, each side centred and scaled to unit total variance."""
    n = len(X)
    A = X - X.mean(0)
    B = Y - Y.mean(0)
    A = A / np.linalg.norm(A) * np.sqrt(n)
    B = B / np.linalg.norm(B) * np.sqrt(n)
    Sa, Sb, Sab = A.T @ A / n, B.T @ B / n, A.T @ B / n
    if lam == 0:
        Ia, Ib = np.linalg.pinv(Sa, rcond=1e-12), np.linalg.pinv(Sb, rcond=1e-12)
    else:
        Ia = np.linalg.inv(Sa + lam * np.eye(len(Sa)))
        Ib = np.linalg.inv(Sb + lam * np.eye(len(Sb)))
    t1 = np.trace(Sa @ Ia @ Sa @ Ia)
    t2 = np.trace(Sb @ Ib @ Sb @ Ib)
    t3 = np.trace(Ia @ Sab @ Ib @ Sab.T)
    return t1 + t2 - 2 * t3


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.1, 10.0])
def test_gulp_equals_the_explicit_formula(lam):
    X, Y = pair()
    res = M["gulp"](X, Y, ridge=lam)
    assert abs(res.squared_distance - gulp_direct(X, Y, lam)) <= tol(cond=1e4, scale=9)
    assert res.distance == pytest.approx(np.sqrt(res.squared_distance), rel=1e-15)
    assert res.ridge == lam


def test_gulp_at_zero_ridge_is_ranks_minus_twice_the_squared_canonical_correlations():
    X, Y = pair()
    rho = svcca.cca(X, Y).correlations
    want = X.shape[1] + Y.shape[1] - 2 * np.sum(rho**2)
    assert abs(M["gulp"](X, Y).squared_distance - want) <= tol(cond=1e4, scale=9)


def test_gulp_with_ridge_is_regularised_for_more_features_than_datapoints():
    X, Y = pair(n=8, p=12, q=10)
    res = M["gulp"](X, Y, ridge=0.05)
    assert abs(res.squared_distance - gulp_direct(X, Y, 0.05)) <= tol(cond=1e6, scale=22)
    with pytest.warns(svcca.SVCCAWarning, match="GULP with ridge=0 on 8 samples"):
        M["gulp"](X, Y)


def test_gulp_declares_by_ridge_and_the_declaration_holds_both_ways():
    """The contract suite checks the default (ridge = 0, CCA's invariances); here ridge
    > 0 loses invertible maps and per-feature scaling, and keeps the rest."""
    g = M["gulp"]
    assert "invertible_linear" in g.invariances_for()
    inv = g.invariances_for(ridge=0.1)
    assert inv == {"orthogonal", "isotropic_scaling", "translation", "permutation"}
    X, Y = pair()
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    moves = {
        "orthogonal": X @ Q,
        "isotropic_scaling": 4.0 * X,
        "translation": X + 7.0,
        "permutation": X[:, ::-1],
        "per_feature_scaling": X * rng.uniform(0.1, 10, 5),
        "invertible_linear": X @ (rng.standard_normal((5, 5)) + 2 * np.eye(5)),
    }
    base = g.score(X, Y, ridge=0.1)
    for name, Xt in moves.items():
        moved = abs(g.score(Xt, Y, ridge=0.1) - base)
        if name in inv:
            assert moved <= tol(cond=1e4, scale=base), name
        else:
            assert moved > 1e-6, name


def test_a_negative_ridge_is_refused():
    X, Y = pair()
    with pytest.raises(ValueError, match="ridge must be a number >= 0"):
        M["gulp"](X, Y, ridge=-1.0)


def test_a_ridge_below_the_round_off_of_the_eigenvalues_warns_with_the_bound():
    """On a layer whose variances span 1e-12, ridge = 1e-10 leaves (Sigma + ridge I)
    with condition number 1e10: the squared distance is round-off of that size, said so,
    and never a refusal or a negative number (was: FloatingPointError from a bound that
    ignored the conditioning)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)) @ np.diag(np.logspace(0, -6, 20))
    Q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    with pytest.warns(svcca.SVCCAWarning, match="condition number 9.9e\\+09: the squared"):
        res = M["gulp"](X, 3 * X @ Q + 1, ridge=1e-10)
    assert 0.0 <= res.squared_distance <= 1e-2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ridge above the round-off: quiet
        assert M["gulp"](X, 3 * X @ Q + 1, ridge=1e-3).squared_distance <= tol(cond=1e4)


def test_eigenspace_overlap_keeps_small_directions_under_a_large_mean():
    """Means 1e3 above spreads down to 1e-5: the raw Gram X^T X has condition number
    ~1e17 and would lose a third of the directions (was: 0.633 for X against itself);
    the centred whitening plus the mean direction keeps X's own conditioning (~1e9)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 30)) @ np.diag(np.logspace(0, -5, 30)) + 1e3
    U = basis(X)
    assert U.shape[1] == 30  # numerically full rank as data
    res = M["eigenspace_overlap"](X, X)
    assert res.ranks == (30, 30)
    assert abs(res.score - 1.0) <= tol(cond=1e4)
    A = rng.standard_normal((30, 30)) + 3 * np.eye(30)
    assert abs(M["eigenspace_overlap"](X, X @ A).score - 1.0) <= 1e-6  # cond(X A) ~ 1e9


def test_a_varying_feature_below_the_whitening_floor_is_warned_about():
    """GULP and the eigenspace overlap whiten as CCA does: a feature whose variance is
    below 1e-12 of the largest is pruned, and that is said (the fix: standardise)."""
    X, Y = pair()
    X[:, 2] *= 1e-7
    for name in ("gulp", "eigenspace_overlap"):
        with pytest.warns(svcca.SVCCAWarning, match="X: 1 features that vary .* standardise"):
            M[name](X, Y)
