"""``svcca.torch.compare(..., uncertainty="jackknife")``: an interval for every cell.

The streamed measures (linear CKA, CCA, SVCCA, PWCCA, PLS) are functions of each pair's
:class:`svcca.Moments`, sums over rows. :class:`BlockCells` keeps, per block of rows,
the moments of all captured layers side by side (one statistic of width
``P = sum p_i``), as ``svcca.pairwise(..., uncertainty=...)`` does over arrays: a batch's
rows get their global index from the batch order (the rows seen so far), go to blocks
by :func:`svcca.stats.block_of` of that index, and each block's statistic is updated
with its rows. The finish is pairwise's own (:func:`svcca._engines.intervals_from_blocks`:
each cell's statistic sliced out, its jackknife from
:func:`svcca._measures.jackknife_of_blocks`), so each cell equals pairwise's on the
captured activations with the same blocks and seed, whatever the batch size.

The measures compare calls per pair on kept activations go through pairwise's per-pair
interval path and permutation tests on the kept rows
(:func:`svcca._engines.served_per_pair` of :func:`kept_plan`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from svcca._engines import (
    BlockRows,
    DeviceBlocks,
    KeptLayers,
    Plan,
    intervals_from_blocks,
    plan_of,
)
from svcca._moments import Moments, plan_statistics

__all__ = ["BlockCells", "kept_plan"]


class BlockCells:
    """Per block of rows, the moments of every captured layer side by side.

    Parameters
    ----------
    row_keys, col_keys : list of str
        The captured layers of the rows and of the columns (the same list object: a
        square matrix).
    labels : mapping
        How messages name each layer.
    widths : mapping
        Each layer's features ``p_i``.
    unc : dict
        :func:`svcca._engines.check_uncertainty`'s record (``blocks`` ``G``, ``seed``).
    check : callable
        ``check(array, label, batch)``: refuses a non-finite batch.
    first : array or tensor
        A captured array of the first batch: torch tensors (on a GPU, or any inside
        ``svcca.on_device``) keep the block statistics on their device, as
        ``pairwise`` does for tensors (:class:`svcca._engines.DeviceBlocks`); NumPy
        arrays on the host.

    Notes
    -----
    Memory: ``G + 1`` statistics of ``P^2`` float64 entries (``P = sum p_i`` over the
    distinct layers), planned against half the free host memory before the first batch
    is added (:class:`svcca.DeviceMemoryError` naming the size and the fix otherwise),
    plus one batch of ``rows x P``; on a device also the ``G`` sums there, planned
    against its free memory. Time: ``P^2`` products per row.
    """

    def __init__(
        self,
        row_keys: list[str],
        col_keys: list[str],
        labels: Mapping[str, str],
        widths: Mapping[str, int],
        unc: Mapping[str, Any],
        check: Callable[[Any, str, int], None],
        first: Any = None,
    ) -> None:
        self.row_keys, self.col_keys, self.labels = row_keys, col_keys, labels
        self.keys = list(dict.fromkeys([*row_keys, *col_keys]))
        self.widths = [int(widths[k]) for k in self.keys]
        self.unc, self.check = dict(unc), check
        P = int(sum(self.widths))
        G = int(unc["blocks"])
        plan_statistics(
            G + 1,
            P,
            0,
            f"compare(..., uncertainty='jackknife') over {len(self.keys)} layers of {P} "
            f"features in all, with {G} blocks,",
            "Use fewer blocks (blocks=10 still gives a jackknife interval), fewer or "
            "narrower layers per call (select= a subset of units, conv='mean'), or split "
            "the matrix into calls over fewer layers.",
        )
        self.device = None if first is None or isinstance(first, np.ndarray) else first.device
        self.on_device: DeviceBlocks | None = None
        if self.device is not None:
            from svcca._device import plan_rows

            plan_rows(
                fixed=G * 8 * (P * P + 2 * P),
                per_row=4 * 8 * P,
                device=self.device,
                what=f"compare(..., uncertainty='jackknife') over {len(self.keys)} layers of "
                f"{P} features in all, with {G} blocks (their sums on the device)",
                lower="Use fewer blocks, fewer or narrower layers per call, or run on the "
                "host (device=None, outside svcca.on_device).",
            )
            self.on_device = DeviceBlocks(P, G, int(unc["seed"]), self.device)
        self.on_host = None if self.on_device is not None else BlockRows(P, G, int(unc["seed"]))
        self.parts: list[Moments] = []
        self.n = 0

    def add(self, i: int, arrays: Mapping[str, Any]) -> None:
        """Add batch ``i``: its rows are global rows ``n .. n + m - 1``."""
        for k in self.keys:
            self.check(arrays[k], self.labels[k], i)
        if self.on_device is not None:
            import torch

            from svcca._device import exact_products

            with torch.no_grad(), exact_products(self.device):
                rows = torch.cat([arrays[k].to(torch.float64) for k in self.keys], dim=1)
                self.on_device.add(rows, self.n)
            self.n += int(rows.shape[0])
            return
        assert self.on_host is not None
        chunk = np.concatenate([np.asarray(arrays[k], dtype=np.float64) for k in self.keys], 1)
        self.on_host.add(chunk, self.n)
        self.n += chunk.shape[0]

    def result(
        self,
        row_names: tuple[str, ...],
        col_names: tuple[str, ...],
        measure: str,
        keep: float | int,
        variance: Any,
        epsilon: float,
        test: str | None = None,
    ) -> Any:
        """The :class:`svcca.PairwiseResult` with its intervals (pairwise's finish)."""
        if self.on_device is not None:
            self.parts, self.on_device = self.on_device.finish(), None
        elif self.on_host is not None:
            self.parts, self.on_host = self.on_host.finish(), None
        pos = {k: u for u, k in enumerate(self.keys)}
        row_u = [pos[k] for k in self.row_keys]
        col_u = row_u if self.col_keys == self.row_keys else [pos[k] for k in self.col_keys]
        offs = np.concatenate([[0], np.cumsum(self.widths)]).astype(int)
        cols = [slice(int(a), int(b)) for a, b in zip(offs[:-1], offs[1:], strict=True)]
        plan = Plan([], list(self.keys), row_u, col_u, row_names, col_names, self.n)
        return intervals_from_blocks(
            plan, self.parts, cols, measure, keep, variance, epsilon, self.unc, test
        )


def kept_plan(
    acc: KeptLayers, rows: list[tuple[str, str, str]], cols: list[tuple[str, str, str]]
) -> Plan:
    """The kept activations as pairwise's plan (``rows``/``cols``: ``(key, name,
    model)``); the kept batches are released as they are joined."""
    kept = {k: np.concatenate(acc.parts.pop(k)) for k in acc.keys}
    row_reps = {name: kept[k] for k, name, _ in rows}
    square = [k for k, _, _ in rows] == [k for k, _, _ in cols]
    col_reps = None if square else {name: kept[k] for k, name, _ in cols}
    return plan_of(row_reps, col_reps)
