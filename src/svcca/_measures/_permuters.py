"""Permutation scorers that reuse each side's work across permutations.

They read the registry (:data:`svcca.MEASURES`): a moments measure of the library
(linear CKA and PLS, CCA, SVCCA, Procrustes, shape metrics, regression) has a fast path
here keyed by its registered name: centring and whitening once (SVCCA: reducing each
side to its kept directions once, which permuting rows does not change), then one
``p x n x q`` product per permutation. Any measure split into prepare and combine (RBF
and debiased CKA, RSA, a user's own) prepares each side once; where it declares
``permute`` (a Gram matrix or RDM of permuted rows is ``P K P^T``), a permutation
gathers the prepared side instead of preparing it again. Each scorer returns what
``measure(X, Y[perm]).score`` would (to round-off); the tests check this against the
plain loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

import svcca._dense as _dense
from svcca._measures._cca import (
    CCASide,
    canonical_correlations,
    cca,
    prepare_side,
    roundoff_bound,
    svd_of_cross,
)
from svcca._measures._cka import cka
from svcca._measures._gram import center_gram, gram_linear, unit_scaled
from svcca._measures._linalg import EPS, clip_roundoff
from svcca._measures._pls import pls
from svcca._measures._registry import Measure
from svcca._measures._regression import explained, regression_fit
from svcca._measures._shape import partial_whitening, procrustes, shape_distance
from svcca._measures._svcca import reduce_side, svcca
from svcca._moments import Moments

__all__ = ["fast_scorer", "permutation_batches"]

Scorer = Callable[[np.ndarray], float]

# Permutations drawn per call to the generator (bounds memory at this many x n ints).
_PERM_BATCH = 64


def permutation_batches(rng: np.random.Generator, n: int, total: int) -> Iterator[np.ndarray]:
    """Batches ``(k, n)`` of permutations of ``range(n)``, ``total`` in all, reproducibly:
    the same generator state gives the same permutations in every statistic that draws
    them (``svcca.stats.permutation_test``, ``pairwise(..., test="permutation")``)."""
    done = 0
    while done < total:
        k = min(_PERM_BATCH, total - done)
        yield rng.permuted(np.tile(np.arange(n), (k, 1)), axis=1)
        done += k


def _centred(A: np.ndarray) -> np.ndarray:
    A = np.asarray(A, dtype=np.float64)
    return A - A.mean(axis=0)


def _gram_scorer(Kc: np.ndarray, Lc: np.ndarray, dt: Any) -> Scorer:
    """CKA from centred Gram matrices (either centring): it commutes with permuting samples,
    ``center(P L P^T) = P center(L) P^T``, so each side is centred once."""
    den = float(np.sqrt(np.vdot(Kc, Kc) * np.vdot(Lc, Lc)))
    Kc, Lc = Kc.astype(dt, copy=False), Lc.astype(dt, copy=False)

    def score(perm: np.ndarray) -> float:
        if not den > 0:
            return 0.0
        G = Lc[np.ix_(perm, perm)]
        return float(np.einsum("ij,ij->", Kc, G, dtype=np.float64)) / den

    return score


# Cost of gathering one entry of a permuted n x n Gram matrix, in multiply-adds of a
# GEMM: the gather is memory-bound (about 20 ns an entry against 0.25 ns a multiply-add
# on the 2-core benchmark machine).
_GATHER_COST = 80.0


def sample_space_for_permutations(n: int, p: int, q: int, n_evals: int) -> bool:
    """Whether ``n x n`` Gram matrices beat ``p x q`` cross-products over ``n_evals`` calls.

    Feature space: ``n (p^2 + q^2)`` once, then ``n p q`` per permutation. Sample space:
    ``n^2 (p + q)`` once, then one gather of ``n^2`` entries per permutation.
    """
    feature = n * (p * p + q * q) + n_evals * n * p * q
    sample = n * n * (p + q) + n_evals * _GATHER_COST * n * n
    return sample < feature


def _cka_scorer(X: np.ndarray, Y: np.ndarray, kw: dict[str, Any], n_evals: int, dt: Any) -> Scorer:
    """Linear, biased CKA: centred Gram matrices or centred data, whichever is cheaper
    over ``n_evals`` permutations."""
    method = kw.get("method", "auto")
    n, p, q = X.shape[0], X.shape[1], Y.shape[1]
    if method == "sample" or (method == "auto" and sample_space_for_permutations(n, p, q, n_evals)):
        return _gram_scorer(center_gram(gram_linear(X)), center_gram(gram_linear(Y)), dt)
    Xc, Yc = _centred(X), _centred(Y)
    Sxx, Syy = Xc.T @ Xc, Yc.T @ Yc
    den = float(np.sqrt(np.sum(Sxx * Sxx) * np.sum(Syy * Syy)))
    Xt, Yl = Xc.T.astype(dt, copy=False), Yc.astype(dt, copy=False)

    def score(perm: np.ndarray) -> float:
        if not den > 0:
            return 0.0
        C = Xt @ Yl[perm]
        return _sq(C) / den

    return score


def _sq(C: np.ndarray) -> float:
    """Squared Frobenius norm, accumulated in float64 whatever the dtype of ``C``."""
    return float(np.einsum("ij,ij->", C, C, dtype=np.float64))


def _whitened(A: np.ndarray, epsilon: float, name: str) -> tuple[CCASide, np.ndarray]:
    """CCA's prepared side of ``A`` and the centred data in its whitened coordinates.

    ``A_w = A_c[:, kept] W`` has orthonormal columns, so ``A_w^T B_w[perm]`` is the
    whitened cross block of a permutation (:func:`svcca._measures._cca.whitened_cross`
    applied to the data once instead of to every permutation's moments).
    """
    Ac = _centred(A)
    side = prepare_side(Ac.T @ Ac, np.zeros(A.shape[1]), epsilon, name)
    return side, side.right(Ac)


def _product_bound(n: int, dt: Any) -> float:
    """Round-off of an inner product of unit vectors over ``n`` samples in dtype ``dt``."""
    return float(n * np.finfo(dt).eps)


def _cca_scorer(X: np.ndarray, Y: np.ndarray, kw: dict[str, Any], dt: Any) -> Scorer:
    eps = float(kw.get("epsilon", 0.0))
    (sx, Xw), (sy, Yw) = _whitened(X, eps, "X"), _whitened(Y, eps, "Y")
    Xw, Yw = Xw.astype(dt, copy=False), Yw.astype(dt, copy=False)
    extra = _product_bound(X.shape[0], dt)

    def score(perm: np.ndarray) -> float:
        M = (Xw.T @ Yw[perm]).astype(np.float64, copy=False)
        tol = roundoff_bound(M, sx, sy) + extra
        return float(canonical_correlations(M, tol).mean())

    return score


def _svcca_scorer(X: np.ndarray, Y: np.ndarray, kw: dict[str, Any], dt: Any) -> Scorer:
    """SVCCA: each side's kept singular directions are a function of that side alone,
    and permuting rows leaves them unchanged, so each side is reduced once (centred data
    onto its kept directions) and every permutation is CCA of the reduced sides."""
    keep, variance = kw.get("keep", 0.99), kw.get("variance", "explained")
    reduced = []
    for A, name in ((X, "X"), (Y, "Y")):
        m = Moments.from_arrays(A)
        red = reduce_side(m.sxx, m.mean_x, keep, variance, name, eps=m.eps, scale=m.scale_x)
        reduced.append(_centred(A) @ red.directions)
    return _cca_scorer(reduced[0], reduced[1], {"epsilon": 0.0}, dt)


def _shape_scorer(X: np.ndarray, Y: np.ndarray, alpha: float, dt: Any) -> Scorer:
    extra = _product_bound(X.shape[0], dt)
    if alpha == 0.0:
        (sx, Xw), (sy, Yw) = _whitened(X, 0.0, "X"), _whitened(Y, 0.0, "Y")
        Xw, Yw = Xw.astype(dt, copy=False), Yw.astype(dt, copy=False)
        rr = float(np.sqrt(Xw.shape[1] * Yw.shape[1]))

        def score0(perm: np.ndarray) -> float:
            M = (Xw.T @ Yw[perm]).astype(np.float64, copy=False)
            _, s, _ = svd_of_cross(M, roundoff_bound(M, sx, sy) + extra)
            return float(s.sum() / rr)

        return score0
    Xc, Yc = _centred(X), _centred(Y)
    if alpha != 1.0:
        Vx, dx = partial_whitening(Xc.T @ Xc, alpha, "X")
        Vy, dy = partial_whitening(Yc.T @ Yc, alpha, "Y")
        Xc = (Xc @ Vx) * dx
        Yc = (Yc @ Vy) * dy
    den = float(np.sqrt(np.sum(Xc * Xc) * np.sum(Yc * Yc)))
    Xt, Yl = Xc.T.astype(dt, copy=False), Yc.astype(dt, copy=False)

    def score(perm: np.ndarray) -> float:
        M = (Xt @ Yl[perm]).astype(np.float64, copy=False)
        s = _dense.svdvals(M)
        # The nuclear norm of X^T Y is at most ||X||_F ||Y||_F (Cauchy-Schwarz).
        tol = 64 * max(M.shape) * EPS + extra
        return float(clip_roundoff(np.array([s.sum() / den]), 0.0, 1.0, tol, "A shape score")[0])

    return score


def _regression_scorer(X: np.ndarray, Y: np.ndarray, dt: Any) -> Scorer:
    Xc, Yc = _centred(X), _centred(Y)
    Sxx, Syy = Xc.T @ Xc, Yc.T @ Yc
    sx = prepare_side(Sxx, np.zeros(X.shape[1]), 0.0, "X")
    sy = prepare_side(Syy, np.zeros(Y.shape[1]), 0.0, "Y")
    var_x, var_y = np.diag(Sxx).copy(), np.diag(Syy).copy()
    Xt, Yl = Xc.T.astype(dt, copy=False), Yc.astype(dt, copy=False)
    extra = _product_bound(X.shape[0], dt) * float(np.sqrt(sx.cond * sy.cond))

    def score(perm: np.ndarray) -> float:
        # One p x q cross-product per permutation, then regression's own combine step
        # in both directions.
        Sxy = (Xt @ Yl[perm]).astype(np.float64, copy=False)
        r2y, _ = explained(sx, sy, Sxy, var_y, extra)
        r2x, _ = explained(sy, sx, Sxy.T, var_x, extra)
        return 0.5 * (r2y + r2x)

    return score


def _prepared_scorer(m: Measure, params: Mapping[str, Any], X: Any, Y: Any) -> Scorer:
    """A split measure: each side prepared once; a permutation permutes Y's prepared
    side where the measure declares how (else prepares Y's permuted rows)."""
    sx, sy = m.prepare_side(X, **params), m.prepare_side(Y, **params)
    if m.permute is None:
        return lambda perm: m.combine_sides(sx, m.prepare_side(Y[perm], **params), **params)
    return lambda perm: m.combine_sides(sx, m.permute_side(sy, perm), **params)


def _options(kw: Mapping[str, Any], allowed: set[str]) -> dict[str, Any] | None:
    return dict(kw) if set(kw) <= allowed else None


# The library's moments measures, by registered name: (function, fixed options, the
# parameters this module reproduces, the scorer). A measure of that name whose function
# or fixed options differ (a user's replacement) takes the general path.
_FAST: dict[str, tuple[Any, dict[str, Any], set[str], Callable[..., Scorer]]] = {
    "cka_linear": (
        cka,
        {"kernel": "linear"},
        {"method"},
        lambda X, Y, kw, n, dt: _cka_scorer(X, Y, kw, n, dt),
    ),
    "cca": (
        cca,
        {},
        {"epsilon", "threshold"},
        lambda X, Y, kw, n, dt: _cca_scorer(X, Y, kw, dt),
    ),
    "svcca": (
        svcca,
        {},
        {"keep", "variance", "threshold"},
        lambda X, Y, kw, n, dt: _svcca_scorer(X, Y, kw, dt),
    ),
    "pls": (pls, {}, set(), lambda X, Y, kw, n, dt: _cka_scorer(X, Y, {}, n, dt)),
    "procrustes": (procrustes, {}, set(), lambda X, Y, kw, n, dt: _shape_scorer(X, Y, 1.0, dt)),
    "shape_distance": (
        shape_distance,
        {},
        {"alpha", "kind"},
        lambda X, Y, kw, n, dt: _shape_scorer(X, Y, float(kw.get("alpha", 1.0)), dt),
    ),
    "regression": (regression_fit, {}, set(), lambda X, Y, kw, n, dt: _regression_scorer(X, Y, dt)),
}


def fast_scorer(
    measure: Measure,
    params: Mapping[str, Any],
    X: np.ndarray,
    Y: np.ndarray,
    n_evals: int = 1000,
    dtype: Any = np.float64,
) -> Scorer | None:
    """A function ``perm -> measure.score(X, Y[perm], **params)`` reusing per-side work,
    or None (the caller then loops over full calls).

    ``n_evals`` (how many permutations will be scored) decides, for linear CKA, between
    feature-space and sample-space precomputation. ``dtype=np.float32`` runs the
    moments paths' per-permutation products in single precision (sums still in
    float64); prepared sides are float64.
    """
    fast = _FAST.get(measure.name)
    if fast is not None:
        func, fixed, allowed, build = fast
        if measure.function is func and dict(measure.fixed) == fixed and set(params) <= allowed:
            # Every scorer here is of a scale-invariant measure: each side in units of a
            # power of two (exact) keeps its Gram matrices and products inside float64.
            (A, _), (B, _) = unit_scaled(X), unit_scaled(Y)
            return build(A, B, dict(params), n_evals, dtype)
    if measure.prepare is not None:
        return _prepared_scorer(measure, params, X, Y)
    return None
