"""Permutation scorers that reuse each side's work across permutations.

For a known measure, everything that depends on one side only (centring, whitening,
Gram matrices, RDMs and their ranks) is computed once; each permutation of Y's rows
then costs one ``p x n x q`` product (or one ``n x n`` gather), instead of a full call.
Each scorer returns exactly what ``measure(X, Y[perm]).score`` would (to round-off);
the tests check this against the plain loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

import svcca._dense as _dense
from svcca.measures import (
    EPS,
    CCASide,
    canonical_correlations,
    cca,
    center_gram,
    cka,
    clip_roundoff,
    debiased_linear_hsic,
    explained,
    gram_linear,
    gram_rbf,
    partial_whitening,
    prepare_side,
    procrustes,
    rdm_unchecked,
    regression_fit,
    roundoff_bound,
    rsa,
    shape_distance,
    svd_of_cross,
    unit_scaled,
)

__all__ = ["fast_scorer"]

Scorer = Callable[[np.ndarray], float]


def _unwrap(measure: Any) -> tuple[Any, dict[str, Any]] | None:
    """``(function, keyword arguments)`` for a function or a keyword-only partial."""
    kwargs: dict[str, Any] = {}
    while isinstance(measure, functools.partial):
        if measure.args:
            return None
        kwargs = {**measure.keywords, **kwargs}
        measure = measure.func
    return measure, kwargs


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


def _cka_scorer(
    X: np.ndarray, Y: np.ndarray, kw: dict[str, Any], n_evals: int, dt: Any
) -> Scorer | None:
    kernel = kw.get("kernel", "linear")
    debiased = bool(kw.get("debiased", False))
    method = kw.get("method", "auto")
    n, p, q = X.shape[0], X.shape[1], Y.shape[1]
    if kernel == "rbf":
        bw = float(kw.get("bandwidth", 1.0))
        Kc = center_gram(gram_rbf(X, bw)[0], unbiased=debiased)
        Lc = center_gram(gram_rbf(Y, bw)[0], unbiased=debiased)
        return _gram_scorer(Kc, Lc, dt)
    if kernel != "linear":
        return None
    if method == "sample" or (method == "auto" and sample_space_for_permutations(n, p, q, n_evals)):
        Kc = center_gram(gram_linear(X), unbiased=debiased)
        Lc = center_gram(gram_linear(Y), unbiased=debiased)
        return _gram_scorer(Kc, Lc, dt)
    Xc, Yc = _centred(X), _centred(Y)
    Sxx, Syy = Xc.T @ Xc, Yc.T @ Yc
    fx, fy = float(np.sum(Sxx * Sxx)), float(np.sum(Syy * Syy))
    Xt, Yl = Xc.T.astype(dt, copy=False), Yc.astype(dt, copy=False)
    if debiased:
        a = np.einsum("ij,ij->i", Xc, Xc)
        b = np.einsum("ij,ij->i", Yc, Yc)
        xx = debiased_linear_hsic(fx, a, a, n)
        yy = debiased_linear_hsic(fy, b, b, n)
        den = float(np.sqrt(xx * yy)) if xx * yy > 0 else 0.0

        def score(perm: np.ndarray) -> float:
            if den == 0.0:
                return 0.0
            C = Xt @ Yl[perm]
            return debiased_linear_hsic(_sq(C), a, b[perm], n) / den

        return score
    den = float(np.sqrt(fx * fy))

    def score_b(perm: np.ndarray) -> float:
        if not den > 0:
            return 0.0
        C = Xt @ Yl[perm]
        return _sq(C) / den

    return score_b


def _sq(C: np.ndarray) -> float:
    """Squared Frobenius norm, accumulated in float64 whatever the dtype of ``C``."""
    return float(np.einsum("ij,ij->", C, C, dtype=np.float64))


def _whitened(A: np.ndarray, epsilon: float, name: str) -> tuple[CCASide, np.ndarray]:
    """CCA's prepared side of ``A`` and the centred data in its whitened coordinates.

    ``A_w = A_c[:, kept] W`` has orthonormal columns, so ``A_w^T B_w[perm]`` is the
    whitened cross block of a permutation (:func:`svcca.measures._cca.whitened_cross`
    applied to the data once instead of to every permutation's moments).
    """
    Ac = _centred(A)
    side = prepare_side(Ac.T @ Ac, np.zeros(A.shape[1]), epsilon, name)
    return side, side.right(Ac)


def _product_bound(n: int, dt: Any) -> float:
    """Round-off of an inner product of unit vectors over ``n`` samples in dtype ``dt``."""
    return float(n * np.finfo(dt).eps)


def _cca_scorer(X: np.ndarray, Y: np.ndarray, kw: dict[str, Any], dt: Any) -> Scorer | None:
    eps = float(kw.get("epsilon", 0.0))
    (sx, Xw), (sy, Yw) = _whitened(X, eps, "X"), _whitened(Y, eps, "Y")
    Xw, Yw = Xw.astype(dt, copy=False), Yw.astype(dt, copy=False)
    extra = _product_bound(X.shape[0], dt)

    def score(perm: np.ndarray) -> float:
        M = (Xw.T @ Yw[perm]).astype(np.float64, copy=False)
        tol = roundoff_bound(M, sx, sy) + extra
        return float(canonical_correlations(M, tol).mean())

    return score


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


def _rsa_scorer(X: np.ndarray, Y: np.ndarray, kw: dict[str, Any]) -> Scorer:
    from scipy.stats import rankdata

    metric = kw.get("metric", "euclidean")
    compare = kw.get("compare", "spearman")
    n = X.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    Dx = rdm_unchecked(X, metric, data_units=False)
    Dy = rdm_unchecked(Y, metric, data_units=False)
    a, b = Dx[iu, ju], Dy[iu, ju]
    if compare == "spearman":
        a, b = rankdata(a), rankdata(b)
        B = np.zeros((n, n))
        B[iu, ju] = b
        B += B.T
    else:
        B = Dy
    a = a - a.mean()
    mb = b.mean()
    den = float(np.sqrt((a @ a) * np.sum((b - mb) ** 2)))

    def score(perm: np.ndarray) -> float:
        if not den > 0:
            return 0.0
        # Permuting datapoints permutes the pairs: the same multiset of entries, so the
        # mean and norm of the permuted vector are unchanged.
        return float(a @ B[perm[iu], perm[ju]]) / den

    return score


def fast_scorer(
    measure: Any, X: np.ndarray, Y: np.ndarray, n_evals: int = 1000, dtype: Any = np.float64
) -> Scorer | None:
    """A function ``perm -> measure(X, Y[perm]).score`` reusing per-side work, or None.

    ``n_evals`` (how many permutations will be scored) decides, for linear CKA, between
    feature-space and sample-space precomputation. ``dtype=np.float32`` runs the
    per-permutation products in single precision (sums still in float64); the RSA scorer
    ignores it. None means the measure is not one of
    the library's own (or uses options this module does not reproduce): the caller then
    loops over full calls.
    """
    un = _unwrap(measure)
    if un is None:
        return None
    func, kw = un
    # Every scorer here is of a scale-invariant measure: each side in units of a power of
    # two (exact) keeps its Gram matrices and cross-products inside float64's range.
    X, _ = unit_scaled(X)
    Y, _ = unit_scaled(Y)
    if func is cka and set(kw) <= {"kernel", "bandwidth", "debiased", "method"}:
        return _cka_scorer(X, Y, kw, n_evals, dtype)
    if func is cca and set(kw) <= {"epsilon", "threshold"}:
        return _cca_scorer(X, Y, kw, dtype)
    if func is procrustes and not kw:
        return _shape_scorer(X, Y, 1.0, dtype)
    if func is shape_distance and set(kw) <= {"alpha", "kind"}:
        return _shape_scorer(X, Y, float(kw.get("alpha", 1.0)), dtype)
    if func is regression_fit and not kw:
        return _regression_scorer(X, Y, dtype)
    if func is rsa and set(kw) <= {"metric", "compare"}:
        return _rsa_scorer(X, Y, kw)
    return None
