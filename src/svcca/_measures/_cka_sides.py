"""The sample CKA measures split into a side and a pair (netrep's partial_fit/finalize_fit).

RBF CKA (biased or debiased) and debiased linear CKA compare ``n x n`` Gram matrices,
and everything that depends on one representation only is its centred Gram matrix and
that matrix's HSIC with itself. :func:`prepare_cka` computes it once per
representation, :func:`combine_cka` takes one inner product per pair, so ``L`` layers
cost ``L`` Gram matrices, not ``L^2``. Debiased linear CKA keeps the centred data and its
row norms instead where that is smaller (``p < n``): its pair is then a ``p x q``
cross-product. ``combine_cka(prepare_cka(X), prepare_cka(Y))`` is the same
:class:`~svcca.CKAResult` as ``cka(X, Y)`` with the same options, to round-off.

Permuting the datapoints of a side permutes its centred Gram matrix, ``P K_c P^T``
(both centrings commute with it) and leaves its self-HSIC unchanged:
:func:`permute_cka` is what a permutation test needs, with no recomputation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from svcca._measures._cka import (
    CKAResult,
    check_bandwidth,
    check_debiased_n,
    check_sigma,
    cka_ratio,
    debiased_linear_hsic,
    feature_space_is_cheaper,
    row_sq_norms,
)
from svcca._measures._gram import (
    center_gram_inplace,
    check_finite,
    check_not_constant,
    gram_linear,
    gram_rbf,
    hsic_from_centered,
    in_data_units,
    unit_scaled,
)
from svcca._validation import as_representation, check_bool, check_option

__all__ = ["CKASide", "cka_side_bytes", "combine_cka", "permute_cka", "prepare_cka"]


@dataclasses.dataclass(frozen=True, eq=False)
class CKASide:
    """What one representation contributes to a sample CKA.

    Attributes
    ----------
    gram : ndarray, shape (n, n), or None
        The centred Gram matrix (``H K H``, or the U-statistic centring when
        ``debiased``), of the side divided by ``scale`` (read-only).
    data, norms : ndarray, shape (n, p) and (n,), or None
        Debiased linear CKA in feature space: the centred data divided by ``scale`` and
        its squared row norms (``gram`` is then None).
    self_hsic : float
        ``HSIC(K, K)``, in the same units as ``gram``.
    kernel : {"linear", "rbf"}
    debiased : bool
    bandwidth, sigma : float or None
        The RBF width asked for (relative) and used (absolute, in the data's units).
    scale : float
        The power of two the side was divided by (1 for RBF: kernels are unitless).
    n, p : int
    """

    gram: np.ndarray | None
    data: np.ndarray | None
    norms: np.ndarray | None
    self_hsic: float
    kernel: str
    debiased: bool
    bandwidth: float | None
    sigma: float | None
    scale: float
    n: int
    p: int


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.setflags(write=False)  # ours alone: no copy of an n x n matrix
    return a


def prepare_cka(
    X: Any,
    *,
    kernel: str = "linear",
    debiased: bool = False,
    bandwidth: float = 1.0,
    sigma: float | None = None,
    method: str = "auto",
) -> CKASide:
    """One side of a sample CKA (RBF, or debiased linear), refused as :func:`~svcca.cka`
    refuses it.

    Parameters
    ----------
    X : array_like, shape (n_samples, p)
    kernel, debiased, bandwidth, method
        As for :func:`~svcca.cka`.
    sigma : float, optional
        One absolute RBF width (a ``(sigma_x, sigma_y)`` pair belongs to a pair: call
        :func:`~svcca.cka` for it).

    Returns
    -------
    CKASide
    """
    kernel = check_option(kernel, "kernel", ("linear", "rbf"))
    method = check_option(method, "method", ("auto", "feature", "sample"))
    debiased = check_bool(debiased, "debiased")
    if kernel == "linear" and not debiased:
        raise ValueError(
            "Linear, biased CKA is a moments measure ('cka_linear'): its engines combine "
            "cross-products, not prepared Gram matrices. Prepare RBF or debiased CKA."
        )
    if isinstance(sigma, tuple):
        raise ValueError(
            f"A prepared side takes one absolute RBF width; got the pair sigma={sigma!r}. "
            "Pass one float, or call svcca.cka(X, Y, sigma=(sx, sy)) for the pair."
        )
    bw = check_bandwidth(bandwidth) if kernel == "rbf" else None
    widths = check_sigma(sigma, kernel, bandwidth)
    if widths is not None:
        bw = None
    if kernel == "rbf" and method == "feature":
        raise ValueError(
            "method='feature' exists only for the linear kernel; RBF CKA is computed "
            "from n x n Gram matrices (leave method='auto')."
        )
    A = as_representation(X, "X")
    n, p = A.shape
    if n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {n}.")
    if debiased:
        check_debiased_n(n)
    check_not_constant(A, "X")
    check_finite(A, "X")
    if kernel == "rbf":
        A, sa = unit_scaled(A)
        K, sig = gram_rbf(A, bw or 1.0, None if widths is None else widths[0] / sa, sa)
        Kc = center_gram_inplace(K, debiased)
        xx = hsic_from_centered(Kc, Kc, unbiased=debiased)
        return CKASide(_frozen(Kc), None, None, xx, "rbf", debiased, bw, sig * sa, 1.0, n, p)
    A, sa = unit_scaled(A)
    if method == "feature" or (method == "auto" and feature_space_is_cheaper(n, p, p)):
        Ac = np.asarray(A, dtype=np.float64)
        Ac = Ac - Ac.mean(axis=0)
        a = row_sq_norms(Ac, np.zeros(p))
        S = Ac.T @ Ac
        xx = debiased_linear_hsic(float(np.sum(S * S)), a, a, n)
        return CKASide(None, _frozen(Ac), _frozen(a), xx, "linear", True, None, None, sa, n, p)
    Kc = center_gram_inplace(gram_linear(A), True)
    xx = hsic_from_centered(Kc, Kc, unbiased=True)
    return CKASide(_frozen(Kc), None, None, xx, "linear", True, None, None, sa, n, p)


def _gram_of(side: CKASide) -> np.ndarray:
    if side.gram is not None:
        return side.gram
    assert side.data is not None
    return center_gram_inplace(side.data @ side.data.T, side.debiased)


def combine_cka(sx: CKASide, sy: CKASide, **_: Any) -> CKAResult:
    """The CKA of two prepared sides (:func:`prepare_cka` with the same options).

    ``HSIC(K, L)`` is one ``n x n`` inner product of the centred Gram matrices (or, for
    two feature-space sides of debiased linear CKA, ``||X_c^T Y_c||_F^2`` corrected by
    the row norms); the self-HSICs come with the sides.
    """
    if sx.n != sy.n:
        raise ValueError(
            f"The two prepared sides must describe the same datapoints: X has {sx.n} "
            f"samples and Y has {sy.n}."
        )
    if (sx.kernel, sx.debiased) != (sy.kernel, sy.debiased):
        raise ValueError(
            f"The two sides were prepared for different CKAs: kernel={sx.kernel!r}, "
            f"debiased={sx.debiased} and kernel={sy.kernel!r}, debiased={sy.debiased}. "
            "Prepare both with the same measure."
        )
    n = sx.n
    if sx.data is not None and sy.data is not None:
        assert sx.norms is not None and sy.norms is not None
        C = sx.data.T @ sy.data
        xy = debiased_linear_hsic(float(np.sum(C * C)), sx.norms, sy.norms, n)
        where = "feature"
    else:
        xy = hsic_from_centered(_gram_of(sx), _gram_of(sy), unbiased=sx.debiased)
        where = "sample"
    score = cka_ratio(xy, sx.self_hsic, sy.self_hsic, sx.p, sy.p, ("X", "Y"))
    xy, xx, yy = in_data_units(xy, sx.self_hsic, sy.self_hsic, sx.scale, sy.scale)
    return CKAResult(
        score,
        xy,
        xx,
        yy,
        sx.kernel,
        sx.debiased,
        sx.bandwidth,
        sx.sigma,
        sy.sigma,
        where,
        n,
        (sx.p, sy.p),
    )


def permute_cka(side: CKASide, perm: np.ndarray) -> CKASide:
    """The side of the representation with its datapoints reordered by ``perm``:
    ``P K_c P^T`` (or the permuted rows), the self-HSIC unchanged, nothing recomputed."""
    gram = None if side.gram is None else side.gram[np.ix_(perm, perm)]
    data = None if side.data is None else side.data[perm]
    norms = None if side.norms is None else side.norms[perm]
    return dataclasses.replace(side, gram=gram, data=data, norms=norms)


def cka_side_bytes(
    n: int, p: int, *, kernel: str = "linear", method: str = "auto", **_: Any
) -> int:
    """Bytes a prepared side keeps: an ``n x n`` float64 Gram matrix, or for debiased
    linear CKA in feature space (``p < n``) the centred ``n x p`` data and ``n`` norms."""
    feature = method == "feature" or (method == "auto" and feature_space_is_cheaper(n, p, p))
    if kernel == "linear" and feature:
        return 8 * n * (p + 1)
    return 8 * n * n
