"""Rows of a chunk into the per-block statistics of the jackknife, shared by every
block pass of ``pairwise(..., uncertainty="jackknife")`` (host, dask workers)."""

from __future__ import annotations

import numpy as np

from svcca._moments import Moments, block_of
from svcca._validation import nonfinite_error

__all__ = ["BLOCKS_FIX", "add_rows", "check_finite_rows"]

# What lowers the memory of the block statistics (every path's refusal says it).
BLOCKS_FIX = (
    "Use fewer blocks (blocks=10 still gives a jackknife interval), fewer or narrower "
    "representations per call (split the matrix into row/column groups with cols=), "
    "or reduce the widths first (PCA or a random projection)."
)


def check_finite_rows(blocks: list[np.ndarray], names: list[str], start: int) -> None:
    """Raise the one NaN/inf error naming the representation and the offending rows by
    their global index (``blocks``: each representation's rows ``start`` onwards), before
    the rows are regrouped by block (where their positions would be lost)."""
    for b, name in zip(blocks, names, strict=True):
        if np.isfinite(b.sum(axis=0)).all():
            continue
        bad = np.flatnonzero(~np.isfinite(b).all(axis=1))
        if bad.size:  # else finite values whose sum overflowed: the statistic scales them
            raise nonfinite_error(name, bad + start, within=(start, start + b.shape[0]))


def add_rows(parts: list[Moments], rows: np.ndarray, start: int, seed: int) -> None:
    """Add ``rows`` (m, P), global rows ``start .. start + m - 1``, each to the statistic
    of its block (:func:`svcca.stats.block_of` with ``G = len(parts)`` and ``seed``)."""
    blocks = len(parts)
    b = block_of(np.arange(start, start + rows.shape[0]), blocks, seed)
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(blocks + 1))
    for j in range(blocks):
        idx = order[bounds[j] : bounds[j + 1]]
        if idx.size:
            parts[j].update(rows[idx])
