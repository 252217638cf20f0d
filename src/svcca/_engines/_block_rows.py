"""Rows of a chunk into the per-block statistics of the jackknife, shared by every
block pass of ``pairwise(..., uncertainty="jackknife")`` (host, dask workers)."""

from __future__ import annotations

import numpy as np

from svcca._moments import Accumulator, Moments, block_of
from svcca._validation import nonfinite_error

__all__ = ["BLOCKS_FIX", "BlockRows", "check_finite_rows"]

# Rows waiting for their block's next product, all blocks together: about this many
# float64 bytes (a block's rows are added by one syrk per this many / (8 P G) rows).
BUFFER_BYTES = 128 * 2**20

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


class BlockRows:
    """The ``G`` per-block statistics of rows ``P`` wide, fed chunk by chunk.

    Each chunk's rows go to blocks by :func:`svcca.stats.block_of` of their global
    index and wait in their block's buffer; a full buffer is added to its block's
    :class:`svcca._moments.Accumulator` by one in-place ``syrk`` (shifted by the block's
    first rows' mean, one correction at :meth:`finish`). Adding each chunk's few rows
    per block directly (a merge of ``P x P`` statistics per block per chunk) made the
    pass memory-bound: 40 s against 0.9 s for the same comparison without intervals
    (12 x 12 layers of 64, n = 5000, batches of 500, 20 blocks).

    Memory: ``G`` sums of ``P^2`` float64 entries and at most :data:`BUFFER_BYTES` of
    waiting rows (the caller plans the sums).
    """

    def __init__(self, P: int, blocks: int, seed: int) -> None:
        self.P, self.blocks, self.seed = P, blocks, seed
        self.accs = [Accumulator(P, 0, names=(f"Block {j} of the rows", "")) for j in range(blocks)]
        self.waiting: list[list[np.ndarray]] = [[] for _ in range(blocks)]
        self.counts = [0] * blocks
        self.flush_rows = max(64, BUFFER_BYTES // (8 * max(P, 1) * blocks))

    def add(self, rows: np.ndarray, start: int) -> None:
        """Add ``rows`` ``(m, P)``, global rows ``start .. start + m - 1`` (copied)."""
        b = block_of(np.arange(start, start + rows.shape[0]), self.blocks, self.seed)
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(self.blocks + 1))
        for j in range(self.blocks):
            idx = order[bounds[j] : bounds[j + 1]]
            if idx.size:
                self.waiting[j].append(np.asarray(rows[idx], dtype=np.float64))
                self.counts[j] += int(idx.size)
                if self.counts[j] >= self.flush_rows:
                    self._flush(j)

    def _flush(self, j: int) -> None:
        if self.counts[j]:
            block = (
                np.concatenate(self.waiting[j]) if len(self.waiting[j]) > 1 else self.waiting[j][0]
            )
            self.waiting[j], self.counts[j] = [], 0
            self.accs[j].add_rows(block, scratch=True)

    def finish(self) -> list[Moments]:
        """The ``G`` statistics (an empty block's is empty)."""
        for j in range(self.blocks):
            self._flush(j)
        return [acc.finish() for acc in self.accs]
