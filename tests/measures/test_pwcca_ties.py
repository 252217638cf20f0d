"""PWCCA is unique when canonical correlations tie.

One side holding columns of the other (a DenseNet block's concatenated output) ties
those correlations at 1; the paper's weight of the tied group depends on which basis of
its subspace LAPACK returns. The trial saw 0.88114 / 0.88149 / 0.88226 / 0.87532 for
one pair of layers from the two argument orders and ``pairwise``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import svcca
from conftest import tol


def concatenated(seed: int = 0, n: int = 500):
    """``X`` (8 features) and ``B`` = four of X's columns next to 6 others."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8))
    Y = 0.5 * X @ rng.standard_normal((8, 6)) + rng.standard_normal((n, 6))
    return X, np.hstack([X[:, :4], Y])


def test_tied_correlations_give_one_score_in_every_order_and_engine():
    X, B = concatenated()
    rng = np.random.default_rng(1)
    scores = [
        svcca.pwcca(X, B).score,
        svcca.pwcca(B, X).score,  # both weigh by X, the side of smaller rank
        svcca.pwcca(X[:, rng.permutation(8)], B).score,
        svcca.pwcca(X, B[:, rng.permutation(10)]).score,
    ]
    pw = svcca.pairwise({"x": X, "b": B}, measure="pwcca")
    scores += [pw["x", "b"], pw["b", "x"]]
    # Each is a weighted mean of correlations accurate to ~ p eps cond (cond of the
    # whitened blocks: tens here).
    assert max(scores) - min(scores) <= tol(cond=1e3, factor=100), scores
    r = svcca.pwcca(X, B)
    assert np.all(r.correlations[:4] == pytest.approx(1.0, abs=1e-12))
    assert r.correlations[4] < 0.95  # the tie is the shared columns only


def test_tied_group_weighs_the_mean_over_its_bases():
    """Independent reference: CCA by QR of the centred data, the paper's weight for the
    untied variates, and ``m_g sum_j ||P_j||_2`` per member of the tied group."""
    X, B = concatenated(seed=2)
    Xc, Bc = X - X.mean(0), B - B.mean(0)
    Qx, _ = np.linalg.qr(Xc)
    Qb, _ = np.linalg.qr(Bc)
    Us, s, _ = np.linalg.svd(Qx.T @ Qb)
    C = Xc.T @ (Qx @ Us)  # neurons x unit variates
    g = int(np.sum(s > 1 - 1e-10))
    assert g == 4
    m_g = math.gamma(g / 2) / (math.sqrt(math.pi) * math.gamma((g + 1) / 2))
    w = np.abs(C).sum(axis=0)
    w[:g] = m_g * np.linalg.norm(C[:, :g], axis=1).sum()
    w /= w.sum()
    r = svcca.pwcca(X, B)
    np.testing.assert_allclose(r.weights, w, atol=tol(cond=1e3, factor=100))
    assert r.score == pytest.approx(float(w @ s[: w.size]), abs=tol(cond=1e3, factor=100))


def test_untied_weights_are_the_papers():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 5))
    Y = X @ rng.standard_normal((5, 7)) + rng.standard_normal((400, 7))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Qx, _ = np.linalg.qr(Xc)
    Qy, _ = np.linalg.qr(Yc)
    Us, s, _ = np.linalg.svd(Qx.T @ Qy)
    w = np.abs(Xc.T @ (Qx @ Us)).sum(axis=0)
    r = svcca.pwcca(X, Y)
    assert np.min(np.diff(-r.correlations)) > 1e-3  # no ties
    np.testing.assert_allclose(r.weights, w / w.sum(), atol=tol(cond=1e3, factor=100))


def test_ties_from_float32_sums_are_found_too():
    """Float32 sums leave the tied correlations about 4e-7 apart (not 1e-15): the tie
    gap follows the statistic's round-off, and every path still agrees."""
    X, B = concatenated(seed=3)
    X, B = X.astype(np.float32), B.astype(np.float32)
    scores = [
        svcca.pwcca(X, B, precision="float32").score,
        svcca.pwcca(B, X, precision="float32").score,
    ]
    pw = svcca.pairwise({"x": X, "b": B}, measure="pwcca", precision="float32")
    scores += [pw["x", "b"], pw["b", "x"]]
    # float32 products: each path's statistic rounds differently, by ~ n eps32 relative
    assert max(scores) - min(scores) <= tol(np.float32, cond=10, factor=100), scores
    exact = svcca.pwcca(X.astype(float), B.astype(float)).score
    assert scores[0] == pytest.approx(exact, abs=tol(np.float32, cond=10, factor=100))
