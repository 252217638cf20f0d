"""Blocked exact k-nearest-neighbour search: never an ``n x n`` matrix.

The ``n x n`` matrix of scores is visited in blocks of ``rows x cols`` entries whose
size is bounded by ``block_bytes``; each block is reduced to its ``m`` best entries per
row by partial selection (``np.partition`` / ``torch.topk``) and merged into the running
best ``m`` of each row. Once a row has ``m`` candidates, only the entries of a block
below its current ``m``-th score can enter (few, on any data not sorted adversarially),
so the search skips the selection there and merges those alone. Memory: ``O(block_bytes + n
m)`` beyond the data, whatever ``n``.

Ties are broken by index, exactly: of equal scores the smaller column index ranks
first, and each row's list is sorted by ``(score, index)``. The point itself is
excluded by its index (its score is set to ``+inf``), never by its position in a
sorted list, so a duplicated row is found as the other's neighbour.

Torch tensors are searched on their device with the same algorithm (``torch.topk`` on
the blocks); only the ``n x m`` result comes to the host.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

__all__ = ["DEFAULT_BLOCK_BYTES", "knn_search"]

Kind = Literal["ip", "sqeuclidean"]

#: Default bound on the working memory of one block (scores and their temporaries).
DEFAULT_BLOCK_BYTES = 64 * 2**20
_COLS = 8192  # columns per block (rows then follow from the byte budget)


def _block_shape(n: int, itemsize: int, block_bytes: int) -> tuple[int, int]:
    """Rows and columns of one block: ``rows * cols * (2 itemsize + 8) <= block_bytes``
    (the scores, a partitioned copy or the ranks of tied rows, boolean masks), at least
    one row and one column."""
    per = 2 * itemsize + 8
    cols = max(1, min(n, _COLS, block_bytes // per))
    rows = max(1, min(n, block_bytes // (per * cols)))
    return rows, cols


def knn_search(
    A: Any, m: int, kind: Kind, *, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` nearest other rows of every row of ``A``, exactly.

    Parameters
    ----------
    A : ndarray or torch.Tensor, shape (n, p)
        Floating point, finite (checked by the caller). A tensor is searched on its
        device, in its dtype.
    m : int
        ``1 <= m <= n - 1``.
    kind : {"ip", "sqeuclidean"}
        The score, smaller is nearer: ``-<a_i, a_j>`` or ``|a_i|^2 + |a_j|^2 -
        2 <a_i, a_j>``.
    block_bytes : int
        Bound on one block's working memory.

    Returns
    -------
    indices : ndarray of int64, shape (n, m)
        Row ``i``: the indices ``j != i`` of the ``m`` smallest scores, sorted by
        ``(score, j)``.
    scores : ndarray of float64, shape (n, m)
        Their scores (computed in ``A``'s dtype).
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(A, torch.Tensor):
        return _search_torch(A, m, kind, block_bytes)
    return _search_numpy(np.asarray(A), m, kind, block_bytes)


# ---------------------------------------------------------------------------- NumPy
def _select_numpy(D: np.ndarray, m: int) -> np.ndarray:
    """Positions (per row) of the ``m`` smallest entries, sorted by (value, position)."""
    c = D.shape[1]
    if m >= c:
        return np.argsort(D, axis=1, kind="stable")
    kth = np.partition(D, m - 1, axis=1)[:, m - 1 : m].copy()  # frees the partitioned copy
    less = D < kth
    eq = D == kth
    need = m - less.sum(axis=1)
    tied = np.flatnonzero(eq.sum(axis=1) > need)
    sel = less | eq
    if tied.size:  # more entries equal the m-th than fit: the first ones by position
        sub = eq[tied]
        rank = np.cumsum(sub, axis=1)
        sel[tied] = less[tied] | (sub & (rank <= need[tied, None]))
    pos = np.nonzero(sel)[1].reshape(-1, m)  # row-major: positions ascending per row
    vals = np.take_along_axis(D, pos, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    return np.take_along_axis(pos, order, axis=1)


def _merge_numpy(
    bs: np.ndarray, bi: np.ndarray, s: np.ndarray, i: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``m`` of two candidate lists per row, by (score, index)."""
    cs = np.concatenate([bs, s], axis=1)
    ci = np.concatenate([bi, i], axis=1)
    order = np.lexsort((ci, cs), axis=-1)[:, :m]
    return np.take_along_axis(cs, order, axis=1), np.take_along_axis(ci, order, axis=1)


def _merge_candidates(
    bs: np.ndarray, bi: np.ndarray, r: np.ndarray, c: np.ndarray, s: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``m`` per row of the lists ``(bs, bi)`` and the scattered candidates
    ``(row r, index c, score s)``, by (score, index)."""
    rows = bs.shape[0]
    fr = np.concatenate([np.repeat(np.arange(rows), m), r])
    fs = np.concatenate([bs.ravel(), s])
    fi = np.concatenate([bi.ravel(), c])
    order = np.lexsort((fi, fs, fr))
    starts = np.concatenate([[0], np.cumsum(np.bincount(fr, minlength=rows))[:-1]])
    take = order[(starts[:, None] + np.arange(m)).ravel()]
    return fs[take].reshape(rows, m), fi[take].reshape(rows, m)


def _search_numpy(
    A: np.ndarray, m: int, kind: Kind, block_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    n = A.shape[0]
    rows, cols = _block_shape(n, A.dtype.itemsize, block_bytes)
    sq = np.einsum("ij,ij->i", A, A) if kind == "sqeuclidean" else None
    out_i = np.empty((n, m), dtype=np.int64)
    out_s = np.empty((n, m), dtype=np.float64)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        best_s = np.empty((r1 - r0, 0), dtype=A.dtype)
        best_i = np.empty((r1 - r0, 0), dtype=np.int64)
        for c0 in range(0, n, cols):
            c1 = min(n, c0 + cols)
            D = A[r0:r1] @ A[c0:c1].T
            if sq is None:
                np.negative(D, out=D)
            else:
                D *= -2.0
                D += sq[r0:r1, None]
                D += sq[None, c0:c1]
            lo, hi = max(r0, c0), min(r1, c1)
            if lo < hi:  # the points themselves, by index
                d = np.arange(lo, hi)
                D[d - r0, d - c0] = np.inf
            if best_s.shape[1] == m:
                # Only entries below a row's current m-th score can enter its list (an
                # equal one loses the tie: its index is larger), and after the first
                # block they are few: no selection over the block.
                below = D < best_s[:, m - 1 : m]
                if np.count_nonzero(below) <= 4 * m * below.shape[0]:
                    r, c = np.nonzero(below)
                    if r.size:
                        best_s, best_i = _merge_candidates(best_s, best_i, r, c + c0, D[r, c], m)
                    continue
                del below
            pos = _select_numpy(D, m)
            s = np.take_along_axis(D, pos, axis=1)
            del D
            best_s, best_i = _merge_numpy(best_s, best_i, s, pos + c0, m)
        out_i[r0:r1] = best_i
        out_s[r0:r1] = best_s
    return out_i, out_s


# ---------------------------------------------------------------------------- torch
def _select_torch(torch: Any, D: Any, m: int) -> Any:
    c = D.shape[1]
    if m >= c:
        return torch.sort(D, dim=1, stable=True).indices
    kth = torch.topk(D, m, dim=1, largest=False, sorted=True).values[:, m - 1 : m]
    less = D < kth
    eq = D == kth
    need = m - less.sum(dim=1)
    tied = torch.nonzero(eq.sum(dim=1) > need).flatten()
    sel = less | eq
    if tied.numel():
        sub = eq[tied]
        rank = torch.cumsum(sub, dim=1)
        sel[tied] = less[tied] | (sub & (rank <= need[tied, None]))
    pos = torch.nonzero(sel)[:, 1].reshape(-1, m)
    vals = torch.gather(D, 1, pos)
    order = torch.sort(vals, dim=1, stable=True).indices
    return torch.gather(pos, 1, order)


def _merge_torch(torch: Any, bs: Any, bi: Any, s: Any, i: Any, m: int) -> tuple[Any, Any]:
    cs = torch.cat([bs, s], dim=1)
    ci = torch.cat([bi, i], dim=1)
    o1 = torch.sort(ci, dim=1, stable=True).indices  # by index, then stably by score
    cs, ci = torch.gather(cs, 1, o1), torch.gather(ci, 1, o1)
    o2 = torch.sort(cs, dim=1, stable=True).indices[:, :m]
    return torch.gather(cs, 1, o2), torch.gather(ci, 1, o2)


def _merge_candidates_torch(
    torch: Any, bs: Any, bi: Any, r: Any, c: Any, s: Any, m: int
) -> tuple[Any, Any]:
    """:func:`_merge_candidates` on tensors: three stable sorts make the lexicographic
    order (row, score, index)."""
    rows = bs.shape[0]
    dev = bs.device
    fr = torch.cat([torch.arange(rows, device=dev).repeat_interleave(m), r])
    fs = torch.cat([bs.reshape(-1), s])
    fi = torch.cat([bi.reshape(-1), c])
    order = torch.sort(fi, stable=True).indices
    order = order[torch.sort(fs[order], stable=True).indices]
    order = order[torch.sort(fr[order], stable=True).indices]
    counts = torch.bincount(fr, minlength=rows)
    starts = torch.cumsum(counts, 0) - counts
    take = order[(starts[:, None] + torch.arange(m, device=dev)).reshape(-1)]
    return fs[take].reshape(rows, m), fi[take].reshape(rows, m)


def _search_torch(A: Any, m: int, kind: Kind, block_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    torch = sys.modules["torch"]
    n = A.shape[0]
    dev = A.device
    rows, cols = _block_shape(n, A.element_size(), block_bytes)
    sq = (A * A).sum(dim=1) if kind == "sqeuclidean" else None
    out_i = np.empty((n, m), dtype=np.int64)
    out_s = np.empty((n, m), dtype=np.float64)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        best_s = torch.empty((r1 - r0, 0), dtype=A.dtype, device=dev)
        best_i = torch.empty((r1 - r0, 0), dtype=torch.int64, device=dev)
        for c0 in range(0, n, cols):
            c1 = min(n, c0 + cols)
            D = A[r0:r1] @ A[c0:c1].T
            if sq is None:
                D.neg_()
            else:
                D.mul_(-2.0).add_(sq[r0:r1, None]).add_(sq[None, c0:c1])
            lo, hi = max(r0, c0), min(r1, c1)
            if lo < hi:
                d = torch.arange(lo, hi, device=dev)
                D[d - r0, d - c0] = float("inf")
            if best_s.shape[1] == m:  # as in the NumPy search: the few entries below
                below = D < best_s[:, m - 1 : m]
                if int(below.sum()) <= 4 * m * below.shape[0]:
                    r, c = torch.nonzero(below, as_tuple=True)
                    if r.numel():
                        best_s, best_i = _merge_candidates_torch(
                            torch, best_s, best_i, r, c + c0, D[r, c], m
                        )
                    continue
                del below
            pos = _select_torch(torch, D, m)
            s = torch.gather(D, 1, pos)
            del D
            best_s, best_i = _merge_torch(torch, best_s, best_i, s, pos + c0, m)
        out_i[r0:r1] = best_i.cpu().numpy()
        out_s[r0:r1] = best_s.double().cpu().numpy()
    return out_i, out_s
