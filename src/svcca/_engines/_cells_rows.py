"""An interval for every cell of ``pairwise`` for the measures served per pair.

A sample measure (RBF CKA, RSA, the neighbour measures, Procrustes, ...) is not a sum
over rows, so no per-block statistic rides along with a pass: its delete-a-block
jackknife recomputes it on the rows. Here each representation is prepared once per
left-out block (not once per cell and block, as calling :func:`svcca.stats.interval` on
each cell would) and every pair combined, so the cost is ``G + 1`` times that of the
call without intervals, in the same memory. The blocks are those of
:func:`svcca.stats.block_of` of the global row index, so each cell's interval equals
``svcca.stats.interval(rows[i], cols[j], measure=..., blocks=G, seed=s)`` to
round-off. No row is duplicated, so the neighbour measures stay valid (the bootstrap
would make each duplicated row its own nearest neighbour).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from svcca._engines._per_pair import combine_pairs, per_pair_values
from svcca._engines._plan import Plan
from svcca._measures import Measure, measure_summary
from svcca._moments import block_of, jackknife_blocks
from svcca._progress import Progress as _Progress
from svcca._validation import SVCCAWarning

__all__ = ["per_pair_intervals"]


def per_pair_intervals(
    plan: Plan,
    measure: Measure,
    params: dict[str, Any],
    unc: Mapping[str, Any],
    progress: bool | None,
) -> Any:
    """``pairwise`` of a measure served per pair, with a block-jackknife interval per
    cell (the estimate is the call without intervals; memory is planned by it)."""
    from svcca._engines._pairwise_result import PairwiseResult

    measure.check_params(params)
    n, G = plan.n, int(unc["blocks"])
    if n < 3:
        raise ValueError(f"An interval needs at least 3 rows; got {n}.")
    b = block_of(np.arange(n), G, int(unc["seed"]))
    sizes = np.bincount(b, minlength=G)
    used = jackknife_blocks(sizes)
    values = per_pair_values(
        plan.srcs, n, plan.row_u, plan.col_u, plan.square, measure, params, progress
    )
    reps = np.empty((used.size, *values.shape))
    us = sorted(set(plan.row_u) | set(plan.col_u))
    bar = _Progress(progress, total=int(used.size), desc="blocks")
    try:
        with warnings.catch_warnings():  # the full call warned once already
            warnings.simplefilter("ignore", SVCCAWarning)
            for k, j in enumerate(used):
                keep = b != j
                sides = {
                    u: measure.prepare_side(plan.srcs[u].read(0, n)[keep], **params) for u in us
                }
                reps[k] = combine_pairs(
                    sides, plan.row_u, plan.col_u, plan.square, measure, params, False
                )
                del sides
                bar.update(1)
    finally:
        bar.close()
    out = {k: np.zeros(values.shape) for k in ("corrected", "se", "low", "high")}
    level = float(unc["level"])
    for i in range(values.shape[0]):
        for jj in range(values.shape[1]):
            est, r = float(values[i, jj]), reps[:, i, jj]
            cells = measure_summary(measure, est, r, sizes[used], level)[:4]
            for key, v in zip(out, cells, strict=True):
                out[key][i, jj] = v
    return PairwiseResult(
        values=values,
        rows=plan.row_labels,
        cols=plan.col_labels,
        measure=measure.name,
        settings=dict(params),
        n_samples=n,
        dims_rows=tuple(plan.srcs[u].p for u in plan.row_u),
        dims_cols=tuple(plan.srcs[u].p for u in plan.col_u),
        corrected=out["corrected"],
        standard_errors=out["se"],
        low=out["low"],
        high=out["high"],
        uncertainty={
            **unc,
            "blocks_used": int(used.size),
            "block_sizes": tuple(int(k) for k in sizes[used]),
        },
        replicates=reps,
    )
