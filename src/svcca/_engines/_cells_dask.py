"""The block statistics of ``pairwise(..., uncertainty="jackknife")`` for dask inputs.

The host pass (:func:`svcca._engines._cells.block_statistics`) reads chunks on the
client. Here each row block of the arrays (all representations' features side by side,
row blocks aligned across arrays of different chunkings) becomes, on the worker that
holds it, the ``G`` per-block statistics of its rows: each row goes to block
:func:`svcca.stats.block_of` of its *global* index (the row block's first row, from the
chunk boundaries, plus its position), exactly as on the host. Statistic ``j`` of every
row block is merged up its own tree (fan-in ``split_every``, Chan et al.), so only the
``G`` statistics reach the client, which then forms every cell's jackknife as the host
path does. The result equals the NumPy path's to round-off, whatever the chunking.

Memory, planned before anything is computed: the client holds ``G + 1`` statistics of
``P^2`` float64 entries (``P = sum p_i``), as the host path does; a leaf task holds its
``G`` statistics and about three float64 copies of its row block, a merge task
``split_every + 1`` statistics. When a ``distributed`` client runs the work, these are
checked against half its smallest worker memory limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._engines._block_rows import BlockRows, check_finite_rows
from svcca._engines._plan import Plan
from svcca._moments import Moments, plan_statistics, statistic_bytes
from svcca._progress import Progress as _Progress
from svcca._sources import block_moments_dask

__all__ = ["block_statistics_dask"]

# Fan-in of each block's merge tree (the Moments merges of svcca._sources use 8 too).
_SPLIT_EVERY = 8


def block_statistics_dask(
    plan: Plan, blocks: int, seed: int, fix: str, progress: bool | None = False
) -> tuple[list[Moments], list[slice]]:
    """:func:`svcca._engines._cells.block_statistics` of dask inputs, on the cluster.

    Parameters
    ----------
    plan : Plan
        The call's representations (dask arrays, or NumPy-readable ones, which are read
        and shipped to the workers as the default dask pass does).
    blocks, seed : int
        ``G`` and the seed of :func:`svcca.stats.block_of`.
    fix : str
        The memory refusal's advice (the host path's).
    progress : bool or None
        The library's progress contract (one step: the graph).

    Returns
    -------
    parts : list of Moments, length ``G``
        Block ``j``'s statistic of width ``P = sum p_i`` (``q = 0``).
    cols : list of slice
        Each representation's columns in them.
    """
    import dask.array as da

    from svcca._engines._passes import _dask_or_array

    widths = [s.p for s in plan.srcs]
    P = int(sum(widths))
    arrays = [_dask_or_array(s, plan.n) for s in plan.srcs]
    # The row blocks of the first dask array, which every other array is rechunked to
    # (NumPy ones are wrapped with them), so the planned row block is the real one.
    row_chunks = next(a.chunks[0] for a in arrays if isinstance(a, da.Array))
    arrays = [
        a if isinstance(a, da.Array) else da.from_array(a, chunks=(row_chunks, -1)) for a in arrays
    ]
    most = max(row_chunks)
    what = (
        f"pairwise(..., uncertainty='jackknife') over {len(widths)} representations of "
        f"{P} features in all, with {blocks} blocks,"
    )
    plan_statistics(blocks + 1, P, 0, what, fix)  # the client's
    _plan_workers(blocks, P, int(most), what, fix)
    offs = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    cols = [slice(int(a), int(b)) for a, b in zip(offs[:-1], offs[1:], strict=True)]
    names = [f"Representation {s.name!r}" for s in plan.srcs]
    bar = _Progress(progress, total=1, desc="blocks")  # one graph: one step
    try:
        parts = block_moments_dask(
            arrays,
            _leaf,
            (blocks, seed, names),
            blocks,
            names=names,
            split_every=_SPLIT_EVERY,
        )
        bar.update(1)
    finally:
        bar.close()
    return parts, cols


def _leaf(
    blocks: list[np.ndarray], first_row: int, count: int, seed: int, names: list[str]
) -> list[Moments]:
    """The ``count`` block statistics of one row block (global rows ``first_row`` on)."""
    check_finite_rows(blocks, names, first_row)
    rows = np.hstack(blocks)
    acc = BlockRows(rows.shape[1], count, seed)
    acc.add(rows, first_row)
    return acc.finish()


def _plan_workers(blocks: int, P: int, rows: int, what: str, fix: str) -> None:
    """Refuse (:class:`svcca.DeviceMemoryError`) when a task's statistics and row block
    need more than half the smallest memory limit of the active distributed cluster's
    workers (nothing is checked without one: the threaded scheduler is the client)."""
    from svcca._device import DeviceMemoryError, format_bytes

    limit = _worker_memory_limit()
    if limit is None:
        return
    stat = statistic_bytes(P, 0)
    leaf = blocks * stat + 3 * 8 * rows * P
    merge = (_SPLIT_EVERY + 1) * stat
    need = max(leaf, merge)
    if need > limit // 2:
        raise DeviceMemoryError(
            f"{what} needs {format_bytes(need)} per task on a dask worker ({blocks} "
            f"statistics of {P}^2 float64 entries and a row block of {rows} x {P} in "
            f"float64), more than half the smallest worker memory limit "
            f"({format_bytes(limit)}). {fix} Smaller row chunks (X.rechunk({{0: ...}})) "
            "lower the row block's part; workers with more memory take it as it is."
        )


def _worker_memory_limit() -> int | None:
    """The smallest ``memory_limit`` of the workers of the distributed client that runs
    ``dask.compute`` now, or None (no such client, or no limit set)."""
    try:
        from dask.base import get_scheduler

        client = getattr(get_scheduler(), "__self__", None)
        info: Any = client.scheduler_info(n_workers=-1) if client is not None else None
    except Exception:  # no distributed, an older signature, a closed client
        return None
    if not isinstance(info, dict):
        return None
    limits = [int(w.get("memory_limit") or 0) for w in info.get("workers", {}).values()]
    limits = [v for v in limits if v > 0]
    return min(limits) if limits else None
