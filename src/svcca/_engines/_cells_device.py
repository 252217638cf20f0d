"""The block statistics of ``pairwise(..., uncertainty="jackknife")`` on a torch device.

Torch tensors whose work runs on a device (a GPU, or any inside ``svcca.on_device``)
keep their rows there, as the default passes do (:mod:`svcca._engines._passes_device`):
each chunk of all representations side by side is regrouped by
:func:`svcca.stats.block_of` of its rows' *global* indices (computed on the host: ``n``
integers) and each group is added to its block's
:class:`svcca._moments.TorchAccumulator`, the host :class:`Accumulator`'s algorithm in
torch (a shift by the block's first rows' mean, float64 sums, float64 products, never
TF32). Only the ``G`` finished statistics come to the host, once; every cell's jackknife
is then the host path's, its small kernels on the device (the statistics record it).

Why on the device rather than moving each chunk to the host: the products are the
``P^2`` per row of the default pass (``P = sum p_i``), which a GPU takes far faster
than the host, and the rows never leave the device, as for every other tensor input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._engines._block_rows import BLOCKS_FIX
from svcca._engines._plan import Plan
from svcca._moments import Moments, TorchAccumulator, block_of, plan_statistics
from svcca._progress import Progress as _Progress
from svcca._validation import check_chunk_size, nonfinite_error

__all__ = ["DeviceBlocks", "block_statistics_device", "check_finite_device"]


def block_statistics_device(
    plan: Plan,
    dev: Any,
    blocks: int,
    seed: int,
    chunk_size: int | None,
    progress: bool | None,
) -> tuple[list[Moments], list[slice]]:
    """:func:`svcca._engines._cells.block_statistics` of tensors on ``dev``.

    Memory, planned before anything is read: on ``dev`` the ``G`` float64 sums of
    ``P^2`` entries and, per row of a chunk, four float64 copies of its ``P`` features
    (the rows as read, regrouped, and shifted); on the host the ``G + 1`` finished
    statistics. Else :class:`svcca.DeviceMemoryError` with the size and the fix.
    """
    import torch

    from svcca._device import exact_products, format_bytes, plan_rows

    srcs, n = plan.srcs, plan.n
    widths = [s.p for s in srcs]
    P = int(sum(widths))
    what = (
        f"pairwise(..., uncertainty='jackknife') over {len(widths)} representations of "
        f"{P} features in all, with {blocks} blocks,"
    )
    plan_statistics(blocks + 1, P, 0, what, BLOCKS_FIX)  # the host copies
    sums = 8 * (P * P + 2 * P)  # one TorchAccumulator's (its sums_bytes)
    most = check_chunk_size(chunk_size)
    rows = plan_rows(
        fixed=blocks * sums,
        per_row=4 * 8 * P,
        device=dev,
        what=f"{what[:-1]} (their sums on the device)",
        lower=(
            f"The block sums take {format_bytes(blocks * sums)}. {BLOCKS_FIX} Or run on the "
            "host: with svcca.on_device(None): ..."
        ),
        most=most or 1 << 16,
        least=min(256, n),
    )
    acc = DeviceBlocks(P, blocks, seed, dev)
    offs = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    cols = [slice(int(a), int(b)) for a, b in zip(offs[:-1], offs[1:], strict=True)]
    bar = _Progress(progress, total=-(-n // rows), desc="blocks")
    try:
        with torch.no_grad(), exact_products(dev):
            for start in range(0, n, rows):
                stop = min(start + rows, n)
                chunk = torch.cat(
                    [s.obj[start:stop].detach().to(torch.float64) for s in srcs], dim=1
                )
                check_finite_device(
                    chunk, cols, [f"Representation {s.name!r}" for s in srcs], start
                )
                acc.add(chunk, start)
                del chunk
                bar.update(1)
        parts = acc.finish()
    finally:
        bar.close()
    return parts, cols


class DeviceBlocks:
    """``G`` :class:`~svcca._moments.TorchAccumulator` s on ``dev``, one per block of
    rows: :meth:`add` regroups a chunk ``(m, P)`` of float64 rows, global rows ``start ..
    start + m - 1``, by :func:`svcca.stats.block_of` and adds each group to its block
    (one synchronisation per chunk); :meth:`finish` gives the ``G`` host statistics.
    The caller plans the memory (``G`` sums of ``8 (P^2 + 2P)`` bytes)."""

    def __init__(self, P: int, blocks: int, seed: int, dev: Any) -> None:
        sums = 8 * (P * P + 2 * P)  # one TorchAccumulator's (its sums_bytes)
        self.accs = [
            TorchAccumulator(P, 0, dev, "float64", (f"Block {j} of the representations", ""),
                             held=j * sums)
            for j in range(blocks)
        ]  # fmt: skip
        self.blocks, self.seed, self.dev = blocks, seed, dev

    def add(self, chunk: Any, start: int) -> None:
        import torch

        b = block_of(np.arange(start, start + chunk.shape[0]), self.blocks, self.seed)
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(self.blocks + 1))
        grouped = chunk[torch.from_numpy(order).to(chunk.device)]
        queued = [
            (acc, acc.queue(grouped[bounds[j] : bounds[j + 1]]))
            for j, acc in enumerate(self.accs)
            if bounds[j + 1] > bounds[j]
        ]
        for acc, checks in queued:  # one synchronisation per chunk
            acc.verify(checks)

    def finish(self) -> list[Moments]:
        return [acc.finish() for acc in self.accs]


def check_finite_device(chunk: Any, cols: list[slice], names: list[str], start: int) -> None:
    """The one NaN/inf error, naming the representation and its rows by their global
    index, before the rows are regrouped (one synchronisation per chunk)."""
    import torch

    sums = chunk.sum(dim=0)
    if bool(torch.isfinite(sums).all()):
        return
    for c, name in zip(cols, names, strict=True):
        bad = torch.nonzero(~torch.isfinite(chunk[:, c]).all(dim=1)).flatten()
        if bad.numel():
            raise nonfinite_error(
                name,
                (bad[:5].cpu().numpy() + start).tolist(),
                within=(start, start + chunk.shape[0]),
            )
