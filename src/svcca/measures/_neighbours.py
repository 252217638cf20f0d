"""Neighbourhood measures of platonic-rep (Huh et al., ICML 2024): mutual k-NN, cycle
k-NN and CKNNA, each a *prepare* (one side's exact k-nearest-neighbour list) and a
*combine* (a pair of lists). The side and its checks are shared with the ReSi
neighbourhood measures (:mod:`svcca.measures._neighbours_resi`).

Conventions (every neighbourhood measure):

- ``distance="cosine"`` (default): rows L2-normalised, neighbours by largest inner
  product (platonic-rep's ``compute_score(normalize=True)`` and ReSi's ``"cosine"``);
  ``"inner_product"``: raw rows, largest inner product; ``"euclidean"``: smallest
  Euclidean distance.
- A point is not its own neighbour: it is excluded by its index, so a duplicated row
  has its copy as a neighbour (at distance 0).
- Ties: of equally near points the smaller index comes first; each list is sorted by
  ``(distance, index)``. When the ``k``-th and ``(k+1)``-th neighbours of a point are
  equally near (duplicated rows, or to round-off), its neighbourhood is ambiguous: an
  :class:`svcca.SVCCAWarning` says how many are.
- The search is exact and blocked (:mod:`svcca.measures._topk`): memory
  ``O(block_bytes + n k)`` beyond the data; no ``n x n`` matrix is held. Float32 data
  (arrays or tensors) are searched in float32, everything else in float64; tensors on
  their device.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from typing import Any, Literal

import numpy as np

from svcca._result import result
from svcca._validation import (
    SVCCAWarning,
    as_representation,
    check_int,
    check_option,
    check_real,
    is_torch_tensor,
    raise_degenerate,
    tensor_representation,
)
from svcca.measures._cka import check_finite, check_not_constant, unit_of
from svcca.measures._topk import DEFAULT_BLOCK_BYTES, knn_search

__all__ = [
    "NeighbourResult",
    "NeighbourSide",
    "cknna",
    "cycle_knn",
    "mutual_knn",
    "prepare_neighbours",
]

Distance = Literal["cosine", "euclidean", "inner_product"]
DISTANCES = ("cosine", "euclidean", "inner_product")


@result
class NeighbourResult:
    """A neighbourhood measure of two representations.

    Attributes
    ----------
    score : float
    measure : str
        Its registry name.
    k : int
        Neighbours per point.
    distance : {"cosine", "euclidean", "inner_product"}
    n_samples : int
    n_features : tuple of int
    ambiguous : tuple of int
        Points of each side whose ``k``-th and ``(k+1)``-th neighbours are equally near
        (duplicated rows, or ties to round-off): their lists depend on the tie rule.
    """

    score: float
    measure: str
    k: int
    distance: str
    n_samples: int
    n_features: tuple[int, int]
    ambiguous: tuple[int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class NeighbourSide:
    """One representation's exact k-nearest-neighbour lists (a prepared side).

    Attributes
    ----------
    indices : ndarray of int64, shape (n, k)
        Row ``i``: its ``k`` nearest other points, sorted by ``(distance, index)``.
    scores : ndarray of float64, shape (n, k)
        Their ranking scores, smaller is nearer: ``-<a_i, a_j>`` for ``"cosine"`` (on
        the normalised rows) and ``"inner_product"``, the squared distance for
        ``"euclidean"`` (rows divided by a power of two where their magnitude needs it).
    distance : str
    k : int
    n_features : int
    ambiguous : int
        Points whose neighbourhood depends on the tie rule.
    data : ndarray or None, shape (n, p)
        The searched rows (normalised or rescaled), kept where a measure needs
        distances to points outside the lists (second-order cosine).
    """

    indices: np.ndarray
    scores: np.ndarray
    distance: str
    k: int
    n_features: int
    ambiguous: int
    data: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])


def check_k(k: Any, n: int, name: str) -> int:
    """``1 <= k <= n - 1`` (a point's neighbours are the other ``n - 1``; ``n >= 2``, as a
    single row is constant and refused before)."""
    return check_int(
        k,
        "k",
        minimum=1,
        maximum=n - 1,
        fix=f"{name} has {n} datapoints, so each has {n - 1} others to be neighbours; "
        "choose a smaller k (the papers use k = 10).",
    )


def check_block_bytes(block_bytes: Any) -> int:
    return check_int(
        block_bytes,
        "block_bytes",
        minimum=1024,
        fix="It bounds the working memory of the blocked neighbour search (default 64 MiB).",
    )


def _clip(A: Any, q: float) -> Any:
    """platonic-rep's ``remove_outliers(exact=True)``: clamp to ``[-t, t]`` with ``t`` the
    element of rank ``floor(q * size)`` of the sorted absolute values."""
    r = int(q * A.shape[0] * A.shape[1])
    if is_torch_tensor(A):
        t = sys.modules["torch"].kthvalue(A.abs().flatten(), r + 1).values
        return A.clamp(-t, t)
    t = np.partition(np.abs(A).ravel(), r)[r]
    return np.clip(A, -t, t)


def prepare_neighbours(
    X: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    keep_data: bool = False,
    name: str = "X",
) -> NeighbourSide:
    """The exact k-nearest-neighbour lists of one representation (see the module's
    conventions); ``keep_data`` keeps the searched rows for the second-order measure."""
    distance = check_option(distance, "distance", DISTANCES)  # type: ignore[assignment]
    block_bytes = check_block_bytes(block_bytes)
    if clip_quantile is not None:
        clip_quantile = check_real(
            clip_quantile,
            "clip_quantile",
            low=0.0,
            high=1.0,
            low_open=True,
            high_open=True,
            fix="platonic-rep clips at the 0.95 quantile of the absolute values; None "
            "(the default) does not clip.",
        )
    torch = sys.modules.get("torch") if is_torch_tensor(X) else None
    if torch is not None:
        A = tensor_representation(X, name)
        if A.dtype not in (torch.float32, torch.float64):
            A = A.to(torch.float32 if A.is_floating_point() else torch.float64)
    else:
        A = as_representation(X, name)
        if A.dtype != np.float32:
            A = np.asarray(A, dtype=np.float64)
    check_finite(A, name)
    check_not_constant(A, name)
    n, p = int(A.shape[0]), int(A.shape[1])
    k = check_k(k, n, name)
    if clip_quantile is not None:
        A = _clip(A, clip_quantile)
    single = A.dtype == (torch.float32 if torch is not None else np.float32)
    precision: Literal["float32", "float64"] = "float32" if single else "float64"
    if distance == "cosine":
        norms = A.norm(dim=1) if torch is not None else np.sqrt(np.einsum("ij,ij->i", A, A))
        zero = np.flatnonzero(_host(norms) == 0)
        if zero.size:
            raise ValueError(
                f"distance='cosine' normalises every row of {name}, but {zero.size} rows are "
                f"zero (first: {zero[:5].tolist()}): their direction is undefined. Drop those "
                "datapoints from both sides, or use distance='euclidean'."
            )
        A = A / norms[:, None]
        if not _varies(A, 16 * float(np.finfo(np.float32 if single else np.float64).eps)):
            raise_degenerate(
                name, p, "its rows all point the same way (every cosine distance is 0)"
            )
    else:
        scale = unit_of(A, precision)
        if scale != 1.0:
            A = A * (1.0 / scale)
    m = min(k + 1, n - 1)  # one more, to see ties at the boundary
    kind: Literal["ip", "sqeuclidean"] = "sqeuclidean" if distance == "euclidean" else "ip"
    indices, scores = knn_search(A, m, kind, block_bytes=block_bytes)
    tied = _ambiguous(A, indices, scores, k, distance, single)
    ambiguous = int(tied.size)
    if ambiguous:
        warnings.warn(
            f"{name}: the {k} nearest neighbours of {ambiguous} of its {n} datapoints "
            f"(first: {tied[:5].tolist()}) are ambiguous: their k-th neighbour is as near as "
            f"a point left out ({distance} distance; duplicated rows, or equal to round-off). "
            "Ties are broken by the smaller index. Remove duplicated datapoints, or choose "
            "another k, if the measure should not depend on it.",
            SVCCAWarning,
            stacklevel=3,
        )
    data = None
    if keep_data:
        data = _host(A)
    return NeighbourSide(
        indices=np.ascontiguousarray(indices[:, :k]),
        scores=np.ascontiguousarray(scores[:, :k]),
        distance=distance,
        k=k,
        n_features=p,
        ambiguous=ambiguous,
        data=data,
    )


def _ambiguous(
    A: Any, indices: np.ndarray, scores: np.ndarray, k: int, distance: str, single: bool
) -> np.ndarray:
    """The points whose k-th neighbour ties with one left out of their list: a copy of it
    (identical rows, normalised for cosine) outside the list, or the ``(k+1)``-th
    neighbour's score within two units of round-off of the k-th's."""
    n = indices.shape[0]
    tied = np.zeros(n, dtype=bool)
    if indices.shape[1] > k:
        eps = float(np.finfo(np.float32 if single else np.float64).eps)
        sq = _host((A * A).sum(1) if is_torch_tensor(A) else np.einsum("ij,ij->i", A, A))
        if distance == "cosine":
            unit = np.ones(n)
        elif distance == "inner_product":
            unit = np.sqrt(sq * sq.max())
        else:
            unit = sq + sq.max()
        tied |= scores[:, k] - scores[:, k - 1] <= 2 * eps * unit
    if is_torch_tensor(A):
        _, inv, cnt = sys.modules["torch"].unique(A, dim=0, return_inverse=True, return_counts=True)
        g, c = _host(inv), _host(cnt)
    else:
        _, g, c = np.unique(A, axis=0, return_inverse=True, return_counts=True)
        g = g.ravel()
    if c.size < n:  # some rows are duplicated
        gk = g[indices[:, k - 1]]
        in_list = (g[indices[:, :k]] == gk[:, None]).sum(axis=1)
        copies = c[gk] - (g == gk)  # the k-th neighbour's group, the point itself left out
        tied |= in_list < copies
    return np.flatnonzero(tied)


def _host(a: Any) -> np.ndarray:
    if is_torch_tensor(a):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _varies(A: Any, tol: float) -> bool:
    """Whether some column of ``A`` spans more than ``tol`` (normalised rows: round-off)."""
    if is_torch_tensor(A):
        lo, hi = sys.modules["torch"].aminmax(A, dim=0)
        return bool(((hi - lo) > tol).any())
    return bool((np.ptp(A, axis=0) > tol).any())


# ---------------------------------------------------------------------- combining sides
def check_sides(sx: NeighbourSide, sy: NeighbourSide, k: int, distance: str) -> None:
    """Two prepared sides of the same datapoints, with the parameters given."""
    if sx.n != sy.n:
        raise ValueError(
            f"X and Y must describe the same datapoints: X has {sx.n} samples (rows) and Y "
            f"has {sy.n}. Arrays are (n_samples, n_features)."
        )
    for s in (sx, sy):
        if s.k != k or s.distance != distance:
            raise ValueError(
                f"A side prepared with k={s.k}, distance={s.distance!r} cannot be combined "
                f"with k={k}, distance={distance!r}; prepare both sides with the parameters "
                "of the comparison."
            )


def match(a: NeighbourSide, b: NeighbourSide) -> np.ndarray:
    """For every entry of ``a``'s lists, its position in ``b``'s list of the same point
    (0-based), or -1 where it is not there. ``O(n k log k)``, no ``n x n`` array."""
    n, k = a.indices.shape
    base = np.arange(n, dtype=np.int64)[:, None] * n
    order = np.argsort(b.indices, axis=1, kind="stable")
    keys_b = (base + np.take_along_axis(b.indices, order, axis=1)).ravel()  # sorted
    keys_a = (base + a.indices).ravel()
    pos = np.minimum(np.searchsorted(keys_b, keys_a), keys_b.size - 1)
    hit = keys_b[pos] == keys_a
    return np.where(hit, order.ravel()[pos], -1).reshape(n, k)


def _result(name: str, score: float, sx: NeighbourSide, sy: NeighbourSide) -> NeighbourResult:
    return NeighbourResult(
        score=float(score),
        measure=name,
        k=sx.k,
        distance=sx.distance,
        n_samples=sx.n,
        n_features=(sx.n_features, sy.n_features),
        ambiguous=(sx.ambiguous, sy.ambiguous),
    )


def _pair(
    X: Any, Y: Any, keep_data: bool = False, **params: Any
) -> tuple[NeighbourSide, NeighbourSide]:
    sx = prepare_neighbours(X, keep_data=keep_data, name="X", **params)
    sy = prepare_neighbours(Y, keep_data=keep_data, name="Y", **params)
    check_sides(sx, sy, sx.k, sx.distance)
    return sx, sy


def prepare_side(
    X: Any,
    *,
    k: int = 10,
    distance: Distance = "cosine",
    clip_quantile: float | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> NeighbourSide:
    """The prepared side of mutual k-NN, cycle k-NN, Jaccard k-NN and rank similarity."""
    return prepare_neighbours(
        X, k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )


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
    return _result("mutual_knn", shared / (sx.n * sx.k), sx, sy)


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
    sx, sy = _pair(X, Y, **params)
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
    return _result("cycle_knn", int(found.sum()) / n, sx, sy)


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
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    sx, sy = _pair(X, Y, **params)
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
    return _result("cknna", kl / (math.sqrt(kk * ll) + eps), sx, sy)


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
    """
    params: dict[str, Any] = dict(
        k=k, distance=distance, clip_quantile=clip_quantile, block_bytes=block_bytes
    )
    check_cknna_distance(distance)
    sx, sy = _pair(X, Y, **params)
    return cknna_combine(sx, sy, eps=eps, **params)


def check_cknna_distance(distance: Any) -> str:
    return check_option(
        distance,
        "distance",
        ("cosine", "inner_product"),
        fix="CKNNA restricts a kernel (inner products) to its own nearest neighbours; "
        "use 'cosine' (platonic-rep's normalised rows) or 'inner_product'.",
    )
