"""ReSi's neighbourhood measures (Klabunde et al., ICLR 2025): Jaccard k-NN, rank
similarity and second-order cosine similarity, each a *prepare* (one side's exact
k-nearest-neighbour list, :func:`svcca._measures._neighbours.prepare_neighbours`) and a
*combine*. Conventions (distance, self-exclusion by index, ties by index, memory) are
those of :mod:`svcca._measures._neighbours`; ReSi's defaults are ``k=10`` and cosine
distance.
"""

from __future__ import annotations

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
    prepare_neighbours,
)
from svcca._measures._topk import DEFAULT_BLOCK_BYTES
from svcca._validation import check_option

__all__ = ["jaccard_knn", "rank_similarity", "second_order_cosine"]


# ---------------------------------------------------------------------- Jaccard
def jaccard_knn_combine(
    sx: NeighbourSide,
    sy: NeighbourSide,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    """Jaccard k-NN of two prepared sides (see :func:`jaccard_knn`)."""
    check_sides(sx, sy, k, distance)
    shared = (match(sx, sy) >= 0).sum(axis=1)
    return make_result("jaccard_knn", float(np.mean(shared / (2 * sx.k - shared))), sx, sy)


def jaccard_knn(
    X: Any,
    Y: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    r"""Jaccard similarity of the k-nearest-neighbour sets (ReSi's ``JaccardSimilarity``).

    .. math:: J_k(X, Y) = \frac{1}{n} \sum_i
              \frac{|N^X_k(i) \cap N^Y_k(i)|}{|N^X_k(i) \cup N^Y_k(i)|}

    Parameters
    ----------
    X, Y : array_like or torch.Tensor, shape (n_samples, p) and (n_samples, q)
    k : int, default 10
        Neighbours per point (ReSi's default).
    distance : {"cosine", "euclidean", "inner_product"}, default "cosine"
        ReSi's default ``inner="cosine"``.
    clip_quantile, block_bytes
        As in :func:`svcca.mutual_knn`.

    Returns
    -------
    NeighbourResult
        ``score`` in [0, 1]; symmetric; 1 when every neighbourhood is the same.

    Notes
    -----
    ReSi finds the neighbours with scikit-learn's ``NearestNeighbors(k + 1)`` and drops
    the first column, which is the point itself only when no other point is as near:
    with duplicated rows a point can stay in its own list. This excludes it by index and
    breaks ties by index. The search is blocked and exact, memory ``O(block_bytes + n
    k)``. Invariances as :func:`svcca.mutual_knn`.

    References
    ----------
    Klabunde, Wald, Schumacher, Strohmaier, Lemmerich (2025). ReSi: A Comprehensive
    Benchmark for Representational Similarity Measures. ICLR.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 8))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    >>> svcca.jaccard_knn(X, X @ Q).score  # rotations keep every neighbourhood
    1.0
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    sx, sy = pair_sides(X, Y, **params)
    return jaccard_knn_combine(sx, sy, **params)


# ---------------------------------------------------------------------- rank similarity
def rank_similarity_combine(
    sx: NeighbourSide,
    sy: NeighbourSide,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    """Rank similarity of two prepared sides (see :func:`rank_similarity`)."""
    check_sides(sx, sy, k, distance)
    at = match(sx, sy)
    hit = at >= 0
    rx = np.broadcast_to(np.arange(1, sx.k + 1, dtype=np.float64), at.shape)
    ry = at + 1.0
    term = np.where(hit, 2.0 / ((1.0 + np.abs(rx - ry)) * (rx + ry)), 0.0)
    shared = hit.sum(axis=1)
    harmonic = np.concatenate([[1.0], np.cumsum(1.0 / np.arange(1, sx.k + 1))])
    per_point = np.where(shared > 0, term.sum(axis=1) / harmonic[shared], 0.0)
    return make_result("rank_similarity", float(np.mean(per_point)), sx, sy)


def rank_similarity(
    X: Any,
    Y: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    r"""Rank similarity of the k-nearest-neighbour lists (ReSi's ``RankSimilarity``,
    after Wang et al. 2022).

    For point ``i`` with shared neighbours ``S_i = N^X_k(i) \cap N^Y_k(i)`` and ranks
    ``r^X_i(j), r^Y_i(j)`` in ``1..k`` (positions in the sorted lists):

    .. math:: \mathrm{rs}_k(X, Y) = \frac{1}{n} \sum_i \frac{1}{H_{|S_i|}}
              \sum_{j \in S_i} \frac{2}{(1 + |r^X_i(j) - r^Y_i(j)|)\,
              (r^X_i(j) + r^Y_i(j))}

    with ``H_m = sum_{r=1}^m 1/r`` (a point with no shared neighbour scores 0).

    Parameters
    ----------
    X, Y, k, distance, clip_quantile, block_bytes
        As in :func:`svcca.jaccard_knn` (ReSi: ``k=10``, cosine).

    Returns
    -------
    NeighbourResult
        ``score`` in [0, 1]; symmetric; 1 when every list is the same in the same order.
        Ranks follow the tie rule (by index).

    References
    ----------
    Klabunde et al. (2025). ReSi. ICLR. Wang, Chen, Li, et al. (2022). Rethinking the
    evaluation of unsupervised representation learning (rank similarity).

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((200, 8))
    >>> svcca.rank_similarity(X, 0.5 * X).score
    1.0
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    sx, sy = pair_sides(X, Y, **params)
    return rank_similarity_combine(sx, sy, **params)


# ---------------------------------------------------------------------- second-order
SecondOrderDistance = Literal["cosine", "euclidean"]


def check_second_order_distance(distance: Any) -> str:
    return check_option(
        distance,
        "distance",
        ("cosine", "euclidean"),
        fix="second-order cosine compares profiles of distances; an inner product is not "
        "one. Use 'cosine' (ReSi's) or 'euclidean'.",
    )


def second_order_prepare(
    X: Any,
    *,
    k: int = 10,
    distance: SecondOrderDistance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourSide:
    """The prepared side of second-order cosine: the lists, and the searched rows."""
    check_second_order_distance(distance)
    return prepare_neighbours(
        X,
        k=k,
        distance=distance,
        clip_quantile=clip_quantile,
        block_bytes=block_bytes,
        keep_data=True,
    )


def _distance_of(scores: np.ndarray, distance: str) -> np.ndarray:
    """Distances from the ranking scores: ``1 - cos`` in [0, 2] (scikit-learn's
    ``cosine_distances``: negated similarity plus one, clipped), or the square root of
    the squared Euclidean distance (clipped at 0)."""
    if distance == "cosine":
        return np.clip(scores + 1.0, 0.0, 2.0)
    return np.sqrt(np.maximum(scores, 0.0))


def _distances_at(side: NeighbourSide, cols: np.ndarray, block_bytes: int) -> np.ndarray:
    """``d(i, cols[i, a])`` in ``side``'s representation, in row blocks of bounded size."""
    A = side.data
    assert A is not None
    n, k = cols.shape
    rows = max(1, block_bytes // max(1, 8 * k * A.shape[1]))
    out = np.empty((n, k))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        a = np.asarray(A[r0:r1], dtype=np.float64)
        g = np.asarray(A[cols[r0:r1]], dtype=np.float64)
        dot = np.einsum("rkp,rp->rk", g, a)
        if side.distance == "cosine":
            s = -dot
        else:
            s = np.einsum("rp,rp->r", a, a)[:, None] + np.einsum("rkp,rkp->rk", g, g) - 2 * dot
        out[r0:r1] = _distance_of(s, side.distance)
    return out


def second_order_cosine_combine(
    sx: NeighbourSide,
    sy: NeighbourSide,
    *,
    k: int = 10,
    distance: SecondOrderDistance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    """Second-order cosine similarity of two prepared sides (see
    :func:`second_order_cosine`)."""
    check_sides(sx, sy, k, distance)
    check_second_order_distance(distance)
    at_y = match(sx, sy)  # X's neighbours in Y's lists
    at_x = match(sy, sx)  # Y's neighbours in X's lists
    dx_own = _distance_of(sx.scores, distance)
    dy_own = _distance_of(sy.scores, distance)
    # X's neighbours: their X distances; their Y distances from Y's list, else computed
    dy_at_x = np.where(
        at_y >= 0,
        np.take_along_axis(dy_own, np.maximum(at_y, 0), axis=1),
        _distances_at(sy, sx.indices, block_bytes),
    )
    # Y's neighbours not in X's list: their Y distances, and their X distances computed
    only_y = at_x < 0
    dx_at_y = np.where(only_y, _distances_at(sx, sy.indices, block_bytes), 0.0)
    dy_only = np.where(only_y, dy_own, 0.0)
    uv = np.einsum("ik,ik->i", dx_own, dy_at_x) + np.einsum("ik,ik->i", dx_at_y, dy_only)
    uu = np.einsum("ik,ik->i", dx_own, dx_own) + np.einsum("ik,ik->i", dx_at_y, dx_at_y)
    vv = np.einsum("ik,ik->i", dy_at_x, dy_at_x) + np.einsum("ik,ik->i", dy_only, dy_only)
    den = np.sqrt(uu * vv)
    both_zero = (uu == 0) & (vv == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_point = np.where(den > 0, uv / np.where(den > 0, den, 1.0), 0.0)
    per_point = np.where(both_zero, 1.0, per_point)
    return make_result("second_order_cosine", float(np.mean(per_point)), sx, sy)


def second_order_cosine(
    X: Any,
    Y: Any,
    *,
    k: int = 10,
    distance: SecondOrderDistance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourResult:
    r"""Second-order cosine similarity (ReSi's ``SecondOrderCosineSimilarity``, after
    Hamilton et al. 2016): do the two representations place each point's neighbours at
    proportional distances?

    With ``U_i = N^X_k(i) \cup N^Y_k(i)`` and the distance profiles ``u_i = (d_X(i,
    j))_{j \in U_i}``, ``v_i = (d_Y(i, j))_{j \in U_i}``:

    .. math:: \mathrm{so}_k(X, Y) = \frac{1}{n} \sum_i
              \frac{\langle u_i, v_i \rangle}{\|u_i\| \, \|v_i\|}

    Parameters
    ----------
    X, Y : array_like or torch.Tensor, shape (n_samples, p) and (n_samples, q)
    k : int, default 10
        Neighbours per point (ReSi's default).
    distance : {"cosine", "euclidean"}, default "cosine"
        ``d``: cosine distance ``1 - cos`` (ReSi's, fixed there) or Euclidean distance.
    clip_quantile, block_bytes
        As in :func:`svcca.mutual_knn`.

    Returns
    -------
    NeighbourResult
        ``score`` in [0, 1] (distances are non-negative); symmetric; 1 for ``X``
        against a rotated, rescaled copy of itself. A point whose profiles are both zero
        (all its neighbours duplicates of it on both sides) counts 1, one zero profile
        counts 0 (ReSi returns NaN there).

    Notes
    -----
    Distances to the other side's neighbours that are not in a point's own list are
    computed from the rows, ``O(n k p)`` in blocks of ``block_bytes``; the prepared side
    keeps the searched rows for that (``n x p``). Memory stays ``O(block_bytes + n k +
    n p)``; ReSi builds both ``n x n`` distance matrices.

    References
    ----------
    Klabunde et al. (2025). ReSi. ICLR. Hamilton, Leskovec, Jurafsky (2016). Cultural
    shift or linguistic drift? Comparing two computational measures of semantic change.
    EMNLP.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((200, 8))
    >>> round(svcca.second_order_cosine(X, 3.0 * X).score, 12)
    1.0
    """
    check_second_order_distance(distance)
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    sx, sy = pair_sides(X, Y, keep_data=True, **params)
    return second_order_cosine_combine(sx, sy, **params)
