"""One representation's exact k-nearest-neighbour lists, prepared once, and the helpers
every neighbourhood measure combines two of them with (:mod:`svcca._measures._neighbours`:
platonic-rep's; :mod:`svcca._measures._neighbours_resi`: ReSi's).

Conventions (every neighbourhood measure):

- ``distance="cosine"`` (default): rows L2-normalised, neighbours by largest inner
  product (platonic-rep's ``compute_score(normalize=True)`` and ReSi's ``"cosine"``);
  ``"inner_product"``: raw rows, largest inner product; ``"euclidean"``: smallest
  Euclidean distance.
- A point is not its own neighbour: it is excluded by its index, so a duplicated row
  has its copy as a neighbour (at distance 0).
- Ties: of equally near points the smaller index comes first; each list is sorted by
  ``(distance, index)``. When the ``k``-th neighbour of a point is as near as one left
  out (a copy of it, or equal to round-off), its neighbourhood is ambiguous: an
  :class:`svcca.SVCCAWarning` says how many are.
- The search is exact and blocked (:mod:`svcca._measures._topk`): memory
  ``O(block_bytes + n k)`` beyond the data and two transient ``n x p`` copies (the
  normalised rows, the duplicate check's sort); no ``n x n`` matrix is held. Float32 data
  (arrays or tensors) are searched in float32, everything else in float64; tensors on
  their device.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from typing import Any, Literal

import numpy as np

from svcca._measures._gram import check_finite, check_not_constant, unit_of
from svcca._measures._topk import DEFAULT_BLOCK_BYTES, knn_search
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

__all__ = [
    "DISTANCES",
    "Distance",
    "NeighbourResult",
    "NeighbourSide",
    "check_sides",
    "make_result",
    "match",
    "pair_sides",
    "prepare_neighbours",
    "prepare_side",
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


def make_result(name: str, score: float, sx: NeighbourSide, sy: NeighbourSide) -> NeighbourResult:
    return NeighbourResult(
        score=float(score),
        measure=name,
        k=sx.k,
        distance=sx.distance,
        n_samples=sx.n,
        n_features=(sx.n_features, sy.n_features),
        ambiguous=(sx.ambiguous, sy.ambiguous),
    )


def pair_sides(
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
