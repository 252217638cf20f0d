"""Moments of dask arrays: one task per block of samples, then a tree reduction.

Each block of rows (all features of a representation in one chunk) becomes a small
``(n_b, means, cross-products)`` tuple on the worker that holds it; the tuples are merged
pairwise up a tree of fan-in ``split_every`` (Chan et al.'s update), so only ``O(p^2)``
numbers per representation ever reach the client. Whatever scheduler is active is used:
a ``distributed.Client`` created before the call (``Client("tcp://scheduler:8786")``
for an existing cluster) runs the tasks on its workers.

dask is imported only inside these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from svcca._moments import Moments, register_dask_moments
from svcca._validation import Precision, check_unmasked

__all__ = [
    "block_moments_dask",
    "cross_products_dask",
    "moments_from_dask",
    "per_rep_moments_dask",
]

# (n, mean_x, mean_y, sxx, syy, sxy, scale_x, scale_y): what a task returns.
Stat = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]


def _stat(m: Moments) -> Stat:
    return (m.n, m.mean_x, m.mean_y, m.sxx, m.syy, m.sxy, m.scale_x, m.scale_y)


def _from_stat(s: Stat, precision: Precision = "float64") -> Moments:
    return Moments(*s[:6], precision=precision, scale_x=s[6], scale_y=s[7])


def _block_stat(
    x: np.ndarray,
    y: np.ndarray | None,
    name: str,
    precision: Precision = "float64",
    first_row: int = 0,
    name_y: str = "Y",
) -> Stat:
    """The statistic of one row block (rows ``first_row`` onwards of the whole array),
    by the one Accumulator (both precisions), on the worker: shifted by its own mean,
    summed in units of its own power of two; messages number rows within the whole
    array."""
    from svcca._sources._sources import moments_from_sources

    x = check_unmasked(x, name, first_row)
    y = None if y is None else check_unmasked(y, name_y, first_row)
    if x.shape[0] == 0:  # an empty block adds nothing (never "NaN in rows []")
        q = 0 if y is None else y.shape[1]
        m = Moments.empty(x.shape[1], q, precision=precision)
    else:
        m = moments_from_sources(  # as_source refuses sparse or object blocks by name
            x,
            y,
            names=(name, name_y),
            precision=precision,
            first_row=first_row,
        )
    return _stat(m)


def _block_starts(a: Any) -> list[int]:
    """The first row of each row block of ``a``."""
    return np.concatenate([[0], np.cumsum(a.chunks[0])[:-1]]).astype(int).tolist()


def _merge_stats(*stats: Stat) -> Stat:
    out = _from_stat(stats[0])
    for s in stats[1:]:
        out.merge_in_place(_from_stat(s))
    return _stat(out)


def _sum(*arrays: np.ndarray) -> np.ndarray:
    out = np.array(arrays[0], dtype=np.float64, copy=True)
    for a in arrays[1:]:
        out += a
    return out


def _tree(parts: list[Any], combine: Callable[..., Any], split_every: int) -> Any:
    from dask import delayed

    while len(parts) > 1:
        parts = [
            delayed(combine, pure=True)(*parts[i : i + split_every])
            for i in range(0, len(parts), split_every)
        ]
    return parts[0]


def _aligned(arrays: Sequence[Any], row_chunks: tuple[int, ...] | None = None) -> list[Any]:
    """Rechunk so all features sit in one chunk and row blocks agree across arrays."""
    import dask.array as da

    out = []
    for a in arrays:
        if not isinstance(a, da.Array):
            a = da.from_array(np.asarray(a), chunks=(row_chunks or "auto", -1))
        a = a.rechunk({1: -1})
        if row_chunks is None:
            row_chunks = a.chunks[0]
        elif a.chunks[0] != row_chunks:
            a = a.rechunk({0: row_chunks})
        out.append(a)
    return out


def moments_from_dask(
    X: Any, Y: Any = None, *, split_every: int = 8, precision: Precision = "float64"
) -> Moments:
    """The :class:`Moments` of dask arrays, computed blockwise and tree-reduced.

    Parameters
    ----------
    X : dask.array.Array, shape (n, p)
    Y : dask.array.Array, shape (n, q), optional
    split_every : int, default 8
        Fan-in of the reduction tree.
    precision : {"float64", "float32"}, default "float64"
        How each block's products are taken (see :class:`~svcca.Moments`).
    """
    import dask
    from dask import delayed

    from svcca._sources._sources import as_source, check_same_n

    sx = as_source(X, "X")
    arrays = [X]
    if Y is not None:
        check_same_n([sx, as_source(Y, "Y")])
        arrays.append(Y)
    arrays = _aligned(arrays)
    xs = arrays[0].to_delayed().ravel()
    ys = arrays[1].to_delayed().ravel() if Y is not None else [None] * len(xs)
    parts = [
        delayed(_block_stat, pure=True)(x, y, "X", precision, start)
        for x, y, start, rows in zip(
            xs, ys, _block_starts(arrays[0]), arrays[0].chunks[0], strict=True
        )
        if rows  # empty blocks hold nothing to add (as_source saw n >= 1)
    ]
    (stat,) = dask.compute(_tree(parts, _merge_stats, split_every))
    return _from_stat(stat, precision)


def per_rep_moments_dask(
    arrays: Sequence[Any],
    names: Sequence[str],
    *,
    split_every: int = 8,
    precision: Precision = "float64",
) -> list[Moments]:
    """Moments (X side only) of each representation, all in one dask computation."""
    import dask
    from dask import delayed

    arrays = _aligned(arrays)
    roots = []
    for a, name in zip(arrays, names, strict=True):
        parts = [
            delayed(_block_stat, pure=True)(b, None, f"Representation {name!r}", precision, start)
            for b, start, rows in zip(
                a.to_delayed().ravel(), _block_starts(a), a.chunks[0], strict=True
            )
            if rows
        ]
        roots.append(_tree(parts, _merge_stats, split_every))
    stats = dask.compute(*roots)
    return [_from_stat(s, precision) for s in stats]


def cross_products_dask(
    arrays: Sequence[Any],
    block_fn: Callable[..., np.ndarray],
    fn_args: tuple[Any, ...],
    *,
    split_every: int = 8,
) -> np.ndarray:
    """Sum over row blocks of ``block_fn(list_of_blocks, *fn_args)``, tree-reduced.

    ``fn_args`` (means and projections, small) enter the graph once and are shared by
    every block task. Blocks reach ``block_fn`` as float64 copies; the sum is float64.
    """
    import dask
    from dask import delayed

    arrays = _aligned(arrays)
    blocks = [a.to_delayed().ravel() for a in arrays]
    shared = delayed(fn_args, pure=True)
    parts = [
        delayed(_apply, pure=True)(block_fn, list(row), shared, start)
        for row, start, rows in zip(
            zip(*blocks, strict=True),
            _block_starts(arrays[0]),
            arrays[0].chunks[0],
            strict=True,
        )
        if rows
    ]
    (total,) = dask.compute(_tree(parts, _sum, split_every))
    return total


def block_moments_dask(
    arrays: Sequence[Any],
    leaf: Callable[..., Sequence[Moments]],
    fn_args: tuple[Any, ...],
    count: int,
    *,
    names: Sequence[str] | None = None,
    split_every: int = 8,
) -> list[Moments]:
    """``count`` statistics, each merged over the row blocks of ``arrays`` by its own tree.

    ``leaf(blocks, first_row, *fn_args)`` runs on the worker that holds a row block:
    ``blocks`` are one float64 NumPy block per array (all its features), rows
    ``first_row`` onwards of the whole arrays; it returns ``count`` :class:`Moments`.
    Statistic ``k`` of every row block is merged (Chan et al.) up its own tree of fan-in
    ``split_every``, so a leaf task holds its ``count`` statistics and a merge task
    ``split_every + 1`` of them; only the ``count`` totals reach the client. ``fn_args``
    enter the graph once. ``names`` name the arrays in messages (masked values).
    """
    import dask
    from dask import delayed

    arrays = _aligned(arrays)
    names = list(names) if names is not None else [f"array {i}" for i in range(len(arrays))]
    blocks = [a.to_delayed().ravel() for a in arrays]
    shared = delayed(fn_args, pure=True)
    leaves = [
        delayed(_leaf_stats, pure=True, nout=count)(leaf, list(row), shared, names, start)
        for row, start, rows in zip(
            zip(*blocks, strict=True),
            _block_starts(arrays[0]),
            arrays[0].chunks[0],
            strict=True,
        )
        if rows
    ]
    roots = [_tree([lf[k] for lf in leaves], _merge_stats, split_every) for k in range(count)]
    return [_from_stat(s) for s in dask.compute(*roots)]


def _leaf_stats(
    leaf: Callable[..., Sequence[Moments]],
    blocks: list[np.ndarray],
    args: tuple[Any, ...],
    names: list[str],
    first_row: int,
) -> tuple[Stat, ...]:
    blocks = [
        np.array(check_unmasked(b, nm, first_row), dtype=np.float64, copy=True)
        for b, nm in zip(blocks, names, strict=True)
    ]
    return tuple(_stat(m) for m in leaf(blocks, first_row, *args))


def _apply(
    fn: Callable[..., np.ndarray],
    blocks: list[np.ndarray],
    args: tuple[Any, ...],
    first_row: int = 0,
) -> np.ndarray:
    blocks = [check_unmasked(b, "A representation", first_row) for b in blocks]
    return fn([np.array(b, dtype=np.float64, copy=True) for b in blocks], *args)


# Moments.from_arrays of dask arrays takes this path (the statistic layer cannot import
# this one; it is registered here, as the tensor paths are).
register_dask_moments(moments_from_dask)
