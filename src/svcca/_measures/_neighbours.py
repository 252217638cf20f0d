"""Neighbourhood measures of platonic-rep (Huh et al., ICML 2024): mutual k-NN, cycle
k-NN and CKNNA, each a *prepare* (one side's exact k-nearest-neighbour lists,
:mod:`svcca._measures._neighbours_side`, whose docstring states the conventions) and a
*combine* (a pair of lists).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from svcca._measures._neighbours_side import (
    Distance,
    NeighbourResult,
    NeighbourSide,
    check_sides,
    make_result,
    match,
    pair_sides,
    prepare_side,
)
from svcca._measures._topk import DEFAULT_BLOCK_BYTES
from svcca._validation import check_option, check_real, raise_degenerate

__all__ = [
    "cknna",
    "cknna_combine",
    "cknna_prepare",
    "cycle_knn",
    "cycle_knn_combine",
    "mutual_knn",
    "mutual_knn_combine",
]


def cknna_prepare(
    X: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    eps: float = 0.0,
) -> NeighbourSide:
    """The prepared side of CKNNA: the lists and the kernel values at them."""
    check_cknna_distance(distance)
    check_eps(eps)
    return prepare_side(
        X, k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )


# ---------------------------------------------------------------------- mutual k-NN
def mutual_knn_combine(
    sx: NeighbourSide,
    sy: NeighbourSide,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    """Mutual k-NN of two prepared sides (see :func:`mutual_knn`)."""
    check_sides(sx, sy, k, distance)
    shared = int((match(sx, sy) >= 0).sum())
    return make_result("mutual_knn", shared / (sx.n * sx.k), sx, sy)


def mutual_knn(
    X: Any,
    Y: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    r"""Mutual k-nearest-neighbour alignment (platonic-rep's ``mutual_knn``).

    .. math:: m_k(X, Y) = \frac{1}{n} \sum_i \frac{|N^X_k(i) \cap N^Y_k(i)|}{k}

    the mean fraction of a point's ``k`` nearest neighbours (itself excluded) shared by
    the two representations.

    Parameters
    ----------
    X, Y : array_like or torch.Tensor, shape (n_samples, p) and (n_samples, q)
    k : int, default 10
        Neighbours per point, ``1 <= k <= n - 1`` (platonic-rep's ``topk=10``).
    distance : {"cosine", "euclidean", "inner_product"}, default "cosine"
        ``"cosine"``: rows L2-normalised, then largest inner product, as platonic-rep's
        pipeline (``normalize=True``); see the module for the others.
    clip_quantile : float in (0, 1), optional
        Clamp every entry to ``[-t, t]``, ``t`` the ``clip_quantile`` quantile of the
        absolute values (platonic-rep's ``remove_outliers(q=0.95, exact=True)``, before
        normalising; off by default, as in its reference values). platonic-rep takes one
        threshold over all layers of a model; this takes one per representation.
    block_bytes : int, default 64 MiB
        Bound on the working memory of one block of the neighbour search.

    Returns
    -------
    NeighbourResult
        ``score`` in [0, 1], 1 when every neighbourhood is the same.

    Notes
    -----
    Neighbours exclude the point itself by index and break ties by the smaller index
    (a :class:`svcca.SVCCAWarning` names the points whose neighbourhood depends on
    that). The search is exact and blocked: memory ``O(block_bytes + n k)`` beyond the
    data, never ``n x n`` (platonic-rep builds two ``n x n`` masks and the ``n x n``
    similarity matrix: 40 GB at ``n = 100,000`` in float32). Symmetric; ignores rotations,
    isotropic scaling and feature permutations (and, with ``"cosine"``, each row's
    scale), not translation (``"euclidean"``: translation too).

    The platonic protocol (the best alignment over all layer pairs of two models) is
    ``svcca.pairwise(layers_a, layers_b, measure="mutual_knn").values.max()``, which
    searches each layer's neighbours once.

    References
    ----------
    Huh, Cheung, Wang, Isola (2024). The Platonic Representation Hypothesis. ICML.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((200, 8))
    >>> svcca.mutual_knn(X, 3.0 * X).score
    1.0
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    sx, sy = pair_sides(X, Y, **params)
    return mutual_knn_combine(sx, sy, **params)


# ---------------------------------------------------------------------- cycle k-NN
def cycle_knn_combine(
    sx: NeighbourSide,
    sy: NeighbourSide,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    """Cycle k-NN of two prepared sides (see :func:`cycle_knn`)."""
    check_sides(sx, sy, k, distance)
    n = sx.n
    base = np.arange(n, dtype=np.int64)[:, None]
    keys_x = np.sort(base * n + sx.indices, axis=1).ravel()  # edges i -> j of X, sorted
    back = (sy.indices * n + base).ravel()  # j -> i for every j in N^Y(i)
    pos = np.minimum(np.searchsorted(keys_x, back), keys_x.size - 1)
    found = (keys_x[pos] == back).reshape(n, sx.k).any(axis=1)
    return make_result("cycle_knn", int(found.sum()) / n, sx, sy)


def cycle_knn(
    X: Any,
    Y: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    r"""Cycle k-NN (platonic-rep's ``cycle_knn``): the fraction of points that one of
    their ``Y``-neighbours has among its ``X``-neighbours.

    .. math:: c_k(X, Y) = \frac{1}{n} \left|\{ i : \exists j \in N^Y_k(i),\;
              i \in N^X_k(j) \}\right|

    Parameters are those of :func:`mutual_knn` (``k=10``, ``distance="cosine"``).

    Returns
    -------
    NeighbourResult
        ``score`` in [0, 1]. Not symmetric, and not 1 for ``X`` against itself (a point
        need not be a neighbour of its neighbours).

    Warnings
    --------
    platonic-rep averages in float32 (``.float().mean()``): its values are this exact
    fraction rounded to float32 (``0.9800000190734863`` for ``392 / 400``). This returns
    the exact fraction in float64.

    References
    ----------
    Huh, Cheung, Wang, Isola (2024). The Platonic Representation Hypothesis. ICML.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((200, 8))
    >>> r = svcca.cycle_knn(X, np.tanh(X))
    >>> 0.0 <= r.score <= 1.0, r.score * 200 == round(r.score * 200)
    (True, True)
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    sx, sy = pair_sides(X, Y, **params)
    return cycle_knn_combine(sx, sy, **params)


# ---------------------------------------------------------------------- CKNNA
def _hsic_on_edges(
    n: int, rows: np.ndarray, cols: np.ndarray, a: np.ndarray, b: np.ndarray
) -> float:
    """Unbiased HSIC (Song et al. 2012, eq. 5, as platonic-rep writes it) of the ``n x n``
    matrices ``A`` and ``B`` that hold ``a`` and ``b`` at the edges ``(rows, cols)``
    (distinct, off the diagonal) and 0 elsewhere; ``O(e log e)`` for ``e`` edges.

    ``[sum(A * B^T) + sum(A) sum(B) / ((n-1)(n-2)) - 2 sum(A B) / (n-2)] / (n (n-3))``.
    """
    key = rows * n + cols
    order = np.argsort(key, kind="stable")
    skey = key[order]
    rev = cols * n + rows
    pos = np.minimum(np.searchsorted(skey, rev), max(skey.size - 1, 0))
    hit = skey[pos] == rev if skey.size else np.zeros(0, dtype=bool)
    s1 = float(np.dot(a[hit], b[order[pos[hit]]]))
    s3 = float(np.dot(np.bincount(cols, a, minlength=n), np.bincount(rows, b, minlength=n)))
    total = s1 + float(a.sum()) * float(b.sum()) / ((n - 1) * (n - 2)) - 2.0 * s3 / (n - 2)
    return total / (n * (n - 3))


def cknna_combine(
    sx: NeighbourSide,
    sy: NeighbourSide,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    eps: float = 0.0,
) -> NeighbourResult:
    """CKNNA of two prepared sides (see :func:`cknna`)."""
    check_sides(sx, sy, k, distance)
    check_cknna_distance(distance)
    eps = check_eps(eps)
    n = sx.n
    if n < 4:
        raise ValueError(
            f"CKNNA's unbiased HSIC needs at least 4 datapoints; got {n}. Compare more datapoints."
        )
    rows = np.repeat(np.arange(n, dtype=np.int64), sx.k)
    K, L = -sx.scores.ravel(), -sy.scores.ravel()  # the kernels at each side's neighbours
    kk = _hsic_on_edges(n, rows, sx.indices.ravel(), K, K)
    ll = _hsic_on_edges(n, rows, sy.indices.ravel(), L, L)
    at = match(sx, sy).ravel()
    both = at >= 0
    L_at = sy.scores.ravel()[(rows * sx.k + np.maximum(at, 0))[both]]
    kl = _hsic_on_edges(n, rows[both], sx.indices.ravel()[both], K[both], -L_at)
    for v, side in ((kk, "X"), (ll, "Y")):
        if not v > 0:
            raise_degenerate(
                side,
                (sx if side == "X" else sy).n_features,
                f"the unbiased HSIC of its kernel restricted to its {k} nearest neighbours "
                f"with itself is {v:.3g}, not positive",
                "choose a larger k",
            )
    return make_result("cknna", kl / (math.sqrt(kk * ll) + eps), sx, sy)


def check_eps(eps: Any) -> float:
    return check_real(
        eps,
        "eps",
        low=0.0,
        fix="It is added to CKNNA's denominator: 0 (the default) is the exact ratio, 1e-6 "
        "reproduces platonic-rep.",
    )


def cknna(
    X: Any,
    Y: Any,
    *,
    k: int = 10,
    distance: Literal["cosine", "inner_product"] = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    eps: float = 0.0,
) -> NeighbourResult:
    r"""CKNNA: CKA restricted to mutual nearest neighbours (platonic-rep's ``cknna``).

    With ``K`` and ``L`` the linear kernels of the two sides (inner products of the
    rows; of the normalised rows for ``"cosine"``), ``M^X`` the ``n x n`` 0/1 matrix of
    ``X``'s k-nearest-neighbour relation (``M_ij = 1`` for ``j`` in ``N^X_k(i)``; not
    symmetric) and ``M^Y`` ``Y``'s:

    .. math:: \mathrm{CKNNA} = \frac{\mathrm{HSIC}_u(M \circ K, M \circ L)}
              {\sqrt{\mathrm{HSIC}_u(M^X \circ K, M^X \circ K)\,
              \mathrm{HSIC}_u(M^Y \circ L, M^Y \circ L)} + \epsilon},
              \quad M = M^X \circ M^Y

    with ``HSIC_u(A, B) = [sum(A o B^T) + sum(A) sum(B) / ((n-1)(n-2)) - 2 sum(A B) /
    (n-2)] / (n (n-3))`` (Song et al. 2012, as platonic-rep evaluates it on these
    non-symmetric matrices).

    Parameters
    ----------
    X, Y : array_like or torch.Tensor, shape (n_samples, p) and (n_samples, q)
        ``n_samples >= 4``.
    k : int, default 10
        Neighbours per point (platonic-rep's ``topk=10``).
    distance : {"cosine", "inner_product"}, default "cosine"
        The kernel and its neighbours (the largest kernel values). ``"euclidean"`` is
        refused: CKNNA restricts a kernel to its own top-k.
    clip_quantile, block_bytes
        As in :func:`mutual_knn`.
    eps : float, default 0.0
        Added to the denominator. platonic-rep adds ``1e-6``: ``eps=1e-6`` reproduces
        its values, which lie 3.6e-5 to 1.2e-4 (relative) below the exact ratio on the
        reference inputs (the denominator is small: unbiased HSICs of sparse matrices);
        the default is the exact ratio.

    Returns
    -------
    NeighbourResult
        ``score``: 1 for ``X`` against itself (with ``eps=0``). Not bounded: the three
        unbiased HSICs are taken on different masks, and values above 1 occur on small
        samples (1.45 for 6 points, ``k=4``); the registry declares the range
        unbounded. Not symmetric in general (``sum(A B) != sum(B A)`` for these
        non-symmetric matrices).

    Notes
    -----
    Computed from the two neighbour lists and the kernel values at them, ``O(n k log
    (n k))`` (no ``n x n`` matrix; platonic-rep builds five). Raises
    :class:`svcca.DegenerateError` where a side's own restricted HSIC is not positive.

    References
    ----------
    Huh, Cheung, Wang, Isola (2024). The Platonic Representation Hypothesis. ICML.
    Song, Smola, Gretton, Bedo, Borgwardt (2012). Feature selection via dependence
    maximization. JMLR 13.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((200, 8))
    >>> svcca.cknna(X, 2.0 * X).score
    1.0
    >>> svcca.cknna(X, 2.0 * X, eps=1e-6).score < 1.0  # platonic-rep's denominator
    True
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    check_cknna_distance(distance)
    sx, sy = pair_sides(X, Y, **params)
    return cknna_combine(sx, sy, eps=eps, **params)


def check_cknna_distance(distance: Any) -> str:
    return check_option(
        distance,
        "distance",
        ("cosine", "inner_product"),
        fix="CKNNA restricts a kernel (inner products) to its own nearest neighbours; "
        "use 'cosine' (platonic-rep's normalised rows) or 'inner_product'.",
    )
