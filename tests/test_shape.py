"""Procrustes and shape distances: analytic cases, metric axioms, independent references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

from svcca.measures._cca import cca
from svcca.measures._shape import ProcrustesResult, ShapeResult, procrustes, shape_distance
from svcca.statistic._moments import Moments


def _rep(seed, n=150, p=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)) @ rng.standard_normal((p, p))


def _normed(A):
    A = A - A.mean(axis=0)
    return A / np.linalg.norm(A)


def test_procrustes_matches_explicit_rotation():
    rng = np.random.default_rng(0)
    X = _rep(0)
    Y = X @ rng.standard_normal((6, 6)) + rng.standard_normal((150, 6))
    A, B = _normed(X), _normed(Y)
    R, _ = orthogonal_procrustes(B, A)  # min ||B R - A||
    direct = np.linalg.norm(A - B @ R) ** 2
    res = procrustes(X, Y)
    assert isinstance(res, ProcrustesResult)
    assert res.squared_distance == pytest.approx(direct, rel=1e-10)
    assert res.distance == pytest.approx(np.sqrt(direct), rel=1e-10)
    assert res.score == pytest.approx(1 - direct / 2, rel=1e-12)


def test_procrustes_different_widths_equals_zero_padding():
    X, Y = _rep(1, p=7), _rep(2, p=4)
    padded = np.hstack([Y, np.zeros((150, 3))])
    assert procrustes(X, Y).distance == pytest.approx(procrustes(X, padded).distance, rel=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("kind", ["angular", "euclidean"])
def test_zero_on_rotated_scaled_translated_copies(alpha, kind):
    rng = np.random.default_rng(3)
    X = _rep(3)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    res = shape_distance(X, 0.3 * X @ Q - 2.0, alpha=alpha, kind=kind)
    assert isinstance(res, ShapeResult)
    assert res.distance == pytest.approx(0.0, abs=1e-6)
    assert procrustes(X, 0.3 * X @ Q - 2.0).distance == pytest.approx(0.0, abs=1e-6)


def test_alpha_zero_is_cca_and_invariant_to_invertible_maps():
    rng = np.random.default_rng(4)
    X = _rep(4)
    Y = np.tanh(X) @ rng.standard_normal((6, 6)) + rng.standard_normal((150, 6))
    res = shape_distance(X, Y, alpha=0.0)
    assert res.score == pytest.approx(cca(X, Y).score, rel=1e-10)
    assert res.angle == pytest.approx(np.arccos(cca(X, Y).score), rel=1e-10)
    assert shape_distance(X @ rng.standard_normal((6, 6)), Y, alpha=0.0).distance == (
        pytest.approx(res.distance, rel=1e-8)
    )
    # Different widths: the sum of canonical correlations over sqrt(p q).
    rho = cca(X, Y[:, :3]).correlations
    assert shape_distance(X, Y[:, :3], alpha=0.0).score == pytest.approx(
        rho.sum() / np.sqrt(18), rel=1e-10
    )


def test_alpha_one_euclidean_is_procrustes():
    X, Y = _rep(5), _rep(6)
    assert shape_distance(X, Y, alpha=1.0, kind="euclidean").distance == pytest.approx(
        procrustes(X, Y).distance, rel=1e-12
    )


def test_partial_whitening_matches_explicit_formula():
    X, Y = _rep(7), _rep(8, p=4)
    alpha = 0.4

    def transform(A):
        A = A - A.mean(axis=0)
        S = A.T @ A
        C = S * (S.shape[0] / np.trace(S))
        w, V = np.linalg.eigh(alpha * np.eye(S.shape[0]) + (1 - alpha) * C)
        return A @ (V @ np.diag(w**-0.5) @ V.T)

    Xt, Yt = transform(X), transform(Y)
    cos = np.linalg.svd(Xt.T @ Yt, compute_uv=False).sum() / (
        np.linalg.norm(Xt) * np.linalg.norm(Yt)
    )
    assert shape_distance(X, Y, alpha=alpha).score == pytest.approx(cos, rel=1e-10)


def test_rank_deficient_and_more_features_than_samples():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((20, 40))
    Y = X[:, :10] @ rng.standard_normal((10, 30))
    for alpha in (0.0, 0.5, 1.0):
        d = shape_distance(X, Y, alpha=alpha).distance
        assert 0.0 <= d <= np.pi / 2


@pytest.mark.parametrize(
    "metric",
    [
        lambda A, B: procrustes(A, B).distance,
        lambda A, B: shape_distance(A, B, alpha=0.0).distance,
        lambda A, B: shape_distance(A, B, alpha=0.5).distance,
        lambda A, B: shape_distance(A, B, alpha=1.0, kind="euclidean").distance,
        lambda A, B: shape_distance(A, B, alpha=0.5, kind="euclidean").distance,
    ],
)
def test_metric_axioms(metric):
    rng = np.random.default_rng(10)
    base = rng.standard_normal((80, 5))
    reps = [
        base @ rng.standard_normal((5, 5)) + s * rng.standard_normal((80, 5))
        for s in (0.1, 0.5, 1.0, 2.0, 4.0)
    ]
    for A, B in itertools.permutations(reps, 2):
        assert metric(A, B) == pytest.approx(metric(B, A), rel=1e-10)
        assert metric(A, B) > 0
    for A, B, C in itertools.permutations(reps, 3):
        assert metric(A, C) <= metric(A, B) + metric(B, C) + 1e-12


def test_from_moments():
    X, Y = _rep(11), _rep(12, p=3)
    m = Moments.from_arrays(X, Y)
    assert procrustes(m).distance == pytest.approx(procrustes(X, Y).distance, rel=1e-12)
    assert shape_distance(m, alpha=0.2).distance == pytest.approx(
        shape_distance(X, Y, alpha=0.2).distance, rel=1e-12
    )


def test_errors():
    X, Y = _rep(13), _rep(14)
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\]"):
        shape_distance(X, Y, alpha=1.5)
    with pytest.raises(TypeError, match=r"alpha must be a number in \[0, 1\]"):
        shape_distance(X, Y, alpha="cca")
    with pytest.raises(ValueError, match="kind must be one of"):
        shape_distance(X, Y, kind="chord")
    const = np.ones((150, 3))
    with pytest.raises(ValueError, match="Y has no variance"):
        procrustes(X, const)
    with pytest.raises(ValueError, match="X has no variance"):
        shape_distance(const, Y, alpha=0.5)
    with pytest.raises(ValueError, match="same datapoints"):
        procrustes(X, Y[:10])


def test_constant_side_with_full_whitening_is_an_error():
    with pytest.raises(ValueError, match="X has no variance"):
        shape_distance(np.full((150, 3), 2.0), _rep(15), alpha=0.0)
