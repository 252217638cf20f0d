"""Procrustes and shape distances: analytic cases, metric axioms, independent references."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

from conftest import tol
from svcca import (
    DegenerateError,
    Moments,
    ProcrustesResult,
    ShapeResult,
    cca,
    procrustes,
    shape_distance,
)

# private: the factor the permutation scorer applies to the data has no public name
from svcca._measures._shape import partial_whitening


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
    bound = zero_distance_tol(X)
    assert res.distance == pytest.approx(0.0, abs=bound)
    assert procrustes(X, 0.3 * X @ Q - 2.0).distance == pytest.approx(0.0, abs=bound)


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


# ---------------------------------------------------------------------- the paper's formula
# Written here from Williams et al. 2021 (arXiv:2110.14739), independently of the
# library: centre, C = X^T X / n, phi(X) = X (alpha I + (1 - alpha) C^{-1/2}), then the
# angle arccos(||phi(X)^T phi(Y)||_* / (||phi(X)||_F ||phi(Y)||_F)). ``norm=1`` is
# netrep's convention, C = X^T X (its ``whiten``), instead of the paper's 1/n.
def _phi(A, alpha, norm=None):
    A = A - A.mean(axis=0)
    C = A.T @ A / (A.shape[0] if norm is None else norm)
    w, V = np.linalg.eigh(C)
    inv_sqrt = V @ np.diag(w**-0.5) @ V.T
    return A @ (alpha * np.eye(A.shape[1]) + (1 - alpha) * inv_sqrt)


def _paper_angle(X, Y, alpha, norm=None):
    A, B = _phi(X, alpha, norm), _phi(Y, alpha, norm)
    nuc = np.linalg.svd(A.T @ B, compute_uv=False).sum()
    return np.arccos(nuc / (np.linalg.norm(A) * np.linalg.norm(B)))


def _unit_mean_variance(A):
    """Centred and scaled so that C = A^T A / n has mean eigenvalue 1."""
    A = A - A.mean(axis=0)
    return A * np.sqrt(A.size / np.sum(A * A))


def _related_pair():
    X = _rep(7)
    Y = _rep(8, p=4) + 0.5 * X[:, :4] @ np.random.default_rng(8).standard_normal((4, 4))
    return X, Y


@pytest.mark.parametrize("alpha", [0.1, 0.4, 0.5, 0.8, 0.95])
def test_partial_whitening_is_the_papers_formula(alpha):
    X, Y = _related_pair()
    res = shape_distance(X, Y, alpha=alpha)
    # The paper's formula on data with mean feature variance 1: the same angle.
    ref = _paper_angle(_unit_mean_variance(X), _unit_mean_variance(Y), alpha)
    assert res.angle == pytest.approx(ref, rel=1e-11)
    assert res.score == pytest.approx(np.cos(ref), rel=1e-11)
    # ... and netrep's C = X^T X on each side scaled to ||X - mean||_F^2 = p.
    Xs = _unit_mean_variance(X) / np.sqrt(X.shape[0])
    Ys = _unit_mean_variance(Y) / np.sqrt(Y.shape[0])
    assert res.angle == pytest.approx(_paper_angle(Xs, Ys, alpha, norm=1), rel=1e-11)
    # Both of theirs depend on the data's scale for 0 < alpha < 1; this one does not.
    assert shape_distance(3.0 * X, Y / 7.0, alpha=alpha).angle == pytest.approx(
        res.angle, rel=1e-12
    )
    assert abs(_paper_angle(X, Y, alpha) - _paper_angle(10 * X, Y, alpha)) > 1e-3


def test_partial_whitening_values():
    """Pinned angles (the independent formula above, on unit-mean-variance data). On the
    raw data the paper's 1/n convention gives 0.8936, 0.8370, 0.8166 and netrep's
    0.8186, 0.8124, 0.8110: those depend on the scale of X and Y."""
    X, Y = _related_pair()
    pinned = {0.2: 0.9356118729389, 0.5: 0.8648803290104, 0.8: 0.8210367532454}
    for alpha, angle in pinned.items():
        assert shape_distance(X, Y, alpha=alpha).angle == pytest.approx(angle, abs=1e-11)

    # The regularised whitener (alpha I + (1 - alpha) C)^{-1/2} is another measure.
    def regularised(A):
        A = _unit_mean_variance(A)
        C = A.T @ A / A.shape[0]
        w, V = np.linalg.eigh(0.5 * np.eye(C.shape[0]) + 0.5 * C)
        return A @ V @ np.diag(w**-0.5) @ V.T

    A, B = regularised(X), regularised(Y)
    other = np.arccos(
        np.linalg.svd(A.T @ B, compute_uv=False).sum() / np.linalg.norm(A) / np.linalg.norm(B)
    )
    assert abs(other - pinned[0.5]) > 1e-3


def test_endpoints_are_continuous():
    X, Y = _related_pair()
    assert shape_distance(X, Y, alpha=1e-9).angle == pytest.approx(
        shape_distance(X, Y, alpha=0.0).angle, abs=1e-8
    )
    assert shape_distance(X, Y, alpha=1 - 1e-9).angle == pytest.approx(
        shape_distance(X, Y, alpha=1.0).angle, abs=1e-8
    )


def test_partial_whitening_factor_gives_phi_up_to_rotation():
    """The factor the permutation scorer applies to the data: ``X V diag(d)`` has the
    Gram matrix of the paper's phi(X) on data of mean variance 1."""
    X = _rep(20, p=5)
    Xc = X - X.mean(axis=0)
    for alpha in (0.0, 0.3, 0.9):
        V, d = partial_whitening(Xc.T @ Xc, alpha, "X")
        T = (Xc @ V) * d
        P = _phi(_unit_mean_variance(X), alpha)
        scale = np.linalg.norm(P) / np.linalg.norm(T)
        assert np.allclose(
            scale**2 * (T @ T.T), P @ P.T, rtol=0, atol=1e-10 * np.abs(P @ P.T).max()
        )


def _pinv_angle(X, Y, alpha):
    """The paper's formula with C^{-1/2} a pseudo-inverse (rank-deficient sides)."""

    def phi(A):
        A = _unit_mean_variance(A)
        w, V = np.linalg.eigh(A.T @ A / A.shape[0])
        keep = w > 1e-9 * w.max()
        inv = (V[:, keep] / np.sqrt(w[keep])) @ V[:, keep].T
        return A @ (alpha * np.eye(A.shape[1]) + (1 - alpha) * inv)

    A, B = phi(X), phi(Y)
    nuc = np.linalg.svd(A.T @ B, compute_uv=False).sum()
    return np.arccos(min(nuc / (np.linalg.norm(A) * np.linalg.norm(B)), 1.0))


def test_rank_deficient_side_uses_the_pseudo_inverse():
    rng = np.random.default_rng(21)
    base = rng.standard_normal((200, 4))
    X = np.hstack([base, base[:, :2] @ rng.standard_normal((2, 3))])  # rank 4 of 7
    Y = base[:, :3] + 0.7 * rng.standard_normal((200, 3))
    for alpha in (0.0, 0.3, 0.7):
        assert shape_distance(X, Y, alpha=alpha).angle == pytest.approx(
            _pinv_angle(X, Y, alpha), rel=1e-9
        )
    # More features than samples: C has rank n - 1.
    X, Y = rng.standard_normal((20, 40)), rng.standard_normal((20, 30))
    assert shape_distance(X, Y, alpha=0.5).angle == pytest.approx(_pinv_angle(X, Y, 0.5), rel=1e-9)


def test_rank_deficient_and_more_features_than_samples():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((20, 40))
    Y = X[:, :10] @ rng.standard_normal((10, 30))
    for alpha in (0.0, 0.5, 1.0):
        d = shape_distance(X, Y, alpha=alpha).distance
        assert 0.0 <= d <= np.pi / 2


def _axiom_reps():
    """Generic representations of different widths, plus points on the path between two
    of them (near-degenerate triangles, where the inequality is tight)."""
    rng = np.random.default_rng(10)
    base = rng.standard_normal((80, 6))
    reps = [
        base[:, :w] @ rng.standard_normal((w, w)) + s * rng.standard_normal((80, w))
        for w, s in ((5, 0.1), (3, 0.5), (5, 1.0), (4, 2.0), (6, 4.0))
    ]
    A, C = reps[0], reps[2]
    reps += [(1 - t) * A + t * C for t in (0.25, 0.5, 0.75)]
    return reps


METRICS = {
    "procrustes": lambda A, B: procrustes(A, B).distance,
    **{
        f"{kind}-{alpha}": functools.partial(
            lambda A, B, alpha, kind: shape_distance(A, B, alpha=alpha, kind=kind).distance,
            alpha=alpha,
            kind=kind,
        )
        for alpha in (0.0, 0.25, 0.5, 0.75, 1.0)
        for kind in ("angular", "euclidean")
    },
}


def zero_distance_tol(A: np.ndarray) -> float:
    """Distance of a copy: arccos(1 - delta) ~ sqrt(2 delta), with the score's round-off
    delta ~ 2 (p + q) eps cond (cond of A's correlation matrix, whitened at alpha < 1)."""
    cond = float(np.linalg.cond(np.corrcoef(A, rowvar=False)))
    return float(np.sqrt(2 * tol(np.float64, cond=cond, factor=2 * 2 * A.shape[1])))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_axioms(name):
    metric = METRICS[name]
    reps = _axiom_reps()
    k = len(reps)
    D = np.array(
        [[metric(reps[i], reps[j]) if i != j else 0.0 for j in range(k)] for i in range(k)]
    )
    # Symmetry and positivity on distinct representations.
    off = ~np.eye(k, dtype=bool)
    assert np.allclose(D, D.T, rtol=1e-10, atol=0)
    assert np.all(D[off] > 1e-3)
    # Triangle inequality on every triple (336 ordered triples of 8 representations).
    for i, j, m in itertools.permutations(range(k), 3):
        assert D[i, m] <= D[i, j] + D[j, m] + 1e-12, (i, j, m)
    # Identity of indiscernibles up to the group: rotation, scale, translation.
    rng = np.random.default_rng(11)
    for A in reps[:3]:
        Q, _ = np.linalg.qr(rng.standard_normal((A.shape[1], A.shape[1])))
        bound = zero_distance_tol(A)
        assert metric(A, A @ Q) == pytest.approx(0.0, abs=bound)
        assert metric(2.5 * A @ Q + 1.0, A) == pytest.approx(0.0, abs=bound)


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
    with pytest.raises(DegenerateError, match=r"Representation Y \(3 features\).*no variance"):
        procrustes(X, const)
    for alpha in (0.0, 0.5, 1.0):
        with pytest.raises(DegenerateError, match=r"Representation X .*no variance"):
            shape_distance(const, Y, alpha=alpha)
        with pytest.raises(DegenerateError, match=r"Representation Y .*no variance"):
            shape_distance(X, np.full((150, 2), 2.0), alpha=alpha)
    with pytest.raises(ValueError, match="same datapoints"):
        procrustes(X, Y[:10])
