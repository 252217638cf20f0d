"""An interval for every cell of ``pairwise``, from one pass over the data.

The one-pass measures (SVCCA, CCA, PWCCA, PLS, linear CKA) are functions of the
:class:`svcca.Moments` of a pair, and those are sums over rows. One pass that keeps, per
block of rows, the moments of *all* representations side by side (one statistic of
width ``P = sum p_i``: every representation's Gram matrix and every cross block)
therefore holds every pair's per-block statistics: pair ``(i, j)``'s is a slice of it.
Each cell's delete-a-block jackknife is then the one :func:`svcca.stats.interval` forms
(:func:`svcca._measures.jackknife_of_blocks`): the measure, through the registry, on the
total and on the total minus each block.

Rows go to blocks by :func:`svcca.stats.block_of` of their *global* index, so the blocks
are those of ``svcca.stats.interval(X_i, X_j, blocks=G, seed=s)``, and the cell's
interval equals that call's to round-off.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from svcca._engines._block_rows import BLOCKS_FIX, BlockRows, check_finite_rows
from svcca._engines._cell_tests import CellTests, asymptotic_fields, family_mask
from svcca._engines._plan import Plan
from svcca._measures import (
    ASYMPTOTIC_TESTS,
    BOUNDARY_MEASURES,
    FEW_ROWS_RATIO,
    MEASURES,
    Measure,
    cca_of,
    check_level,
    jackknife_of_blocks,
    null_correlations,
    warn_null_correlations,
)
from svcca._moments import Moments, check_count, check_seed, jackknife_blocks, plan_statistics
from svcca._progress import Progress as _Progress
from svcca._validation import SVCCAWarning, check_chunk_size

__all__ = [
    "CellIntervals",
    "BlockRows",
    "BLOCKS_FIX",
    "block_statistics",
    "cell_intervals",
    "check_finite_rows",
    "check_uncertainty",
    "intervals_from_blocks",
    "refuse_uncertainty",
    "with_intervals",
]

# Rows per chunk of the block pass: about this many float64 bytes of all representations.
_PASS_BYTES = 64 * 2**20


def check_uncertainty(uncertainty: Any, blocks: Any, seed: Any, level: Any) -> dict[str, Any]:
    """Validate ``pairwise``'s uncertainty keywords; the mapping the result records."""
    if uncertainty != "jackknife":
        raise ValueError(
            f"uncertainty must be None or 'jackknife' (a delete-a-block jackknife per cell); "
            f"got {uncertainty!r}. For a Poisson bootstrap of one pair, call "
            "svcca.stats.interval(X, Y, method='bootstrap')."
        )
    return {
        "method": "jackknife",
        "level": check_level(level),
        "blocks": check_count(blocks, "blocks", 2),
        "seed": check_seed(seed),
    }


def block_statistics(
    plan: Plan, blocks: int, seed: int, chunk_size: int | None, progress: bool | None
) -> tuple[list[Moments], list[slice]]:
    """One :class:`svcca.Moments` per block of the representations side by side.

    Returns the ``G`` statistics (width ``P = sum p_i``, ``q = 0``) and each
    representation's columns in them. Memory: ``G + 1`` statistics of ``P^2`` float64
    entries, planned against half the free host memory before anything is read
    (:class:`svcca.DeviceMemoryError` naming the size and the fix otherwise), plus one
    chunk of ``rows x P``. Time: ``P^2`` products per row, once.
    """
    widths = [s.p for s in plan.srcs]
    P = int(sum(widths))
    plan_statistics(
        blocks + 1,
        P,
        0,
        f"pairwise(..., uncertainty='jackknife') over {len(widths)} representations of "
        f"{P} features in all, with {blocks} blocks,",
        BLOCKS_FIX,
    )
    offs = np.concatenate([[0], np.cumsum(widths)]).astype(int)
    cols = [slice(int(a), int(b)) for a, b in zip(offs[:-1], offs[1:], strict=True)]
    n = plan.n
    chunk_size = check_chunk_size(chunk_size)
    rows = chunk_size or max(1024, _PASS_BYTES // (8 * max(P, 1)))
    rows = max(1, min(n, rows))
    acc = BlockRows(P, blocks, seed)
    chunk = np.empty((rows, P))
    bufs = [np.empty((rows, s.p)) for s in plan.srcs]
    names = [f"Representation {s.name!r}" for s in plan.srcs]
    bar = _Progress(progress, total=-(-n // rows), desc="blocks")
    try:
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            m = stop - start
            for s, c, buf in zip(plan.srcs, cols, bufs, strict=True):
                chunk[:m, c] = s.read(start, stop, buf)
            check_finite_rows([chunk[:m, c] for c in cols], names, start)
            acc.add(chunk[:m], start)
            bar.update(1)
        parts = acc.finish()
    finally:
        bar.close()
    return parts, cols


def _pair(m: Moments, a: slice, b: slice) -> Moments:
    """Pair ``(a, b)``'s statistic, sliced out of the side-by-side one."""
    return Moments(
        m.n,
        m.mean_x[a].copy(),
        m.mean_x[b].copy(),
        m.sxx[a, a].copy(),
        m.sxx[b, b].copy(),
        m.sxx[a, b].copy(),
        scale_x=m.scale_x,
        scale_y=m.scale_x,
        device=m.device,  # a cell's kernels run where the block pass did
    )


@dataclass(frozen=True)
class CellIntervals:
    """Per-cell jackknife summaries, each shaped like the matrix."""

    estimate: np.ndarray
    corrected: np.ndarray
    standard_errors: np.ndarray
    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray  # (blocks used, rows, cols): each cell without each block
    block_sizes: tuple[int, ...]  # rows in each block used


def cell_intervals(
    plan: Plan,
    parts: list[Moments],
    total: Moments,
    cols: list[slice],
    measure: str,
    params: Mapping[str, Any],
    level: float,
) -> CellIntervals:
    """Every cell's delete-a-block jackknife from the side-by-side block statistics
    (``total``: the blocks merged)."""
    m = MEASURES[measure]
    if total.n < 3:
        raise ValueError(f"An interval needs at least 3 rows; got {total.n}.")
    shape = (len(plan.row_u), len(plan.col_u))
    out = {k: np.zeros(shape) for k in ("estimate", "corrected", "se", "low", "high")}
    mirror = plan.square and measure != "pwcca"  # PWCCA weighs by the row side
    sizes = np.array([p.n for p in parts], dtype=np.int64)
    used = jackknife_blocks(sizes)
    reps = np.zeros((used.size, *shape))
    with warnings.catch_warnings():
        # The matrix's own warnings (few samples per pair) are raised once, by pairwise.
        warnings.simplefilter("ignore", SVCCAWarning)
        _fill(plan, parts, cols, m, params, level, total, out, reps, mirror)
    for arr in (*out.values(), reps):
        arr.flags.writeable = False
    return CellIntervals(
        out["estimate"],
        out["corrected"],
        out["se"],
        out["low"],
        out["high"],
        reps,
        tuple(int(k) for k in sizes[used]),
    )


def _fill(
    plan: Plan,
    parts: list[Moments],
    cols: list[slice],
    m: Measure,
    params: Mapping[str, Any],
    level: float,
    total: Moments,
    out: dict[str, np.ndarray],
    reps: np.ndarray,
    mirror: bool,
) -> None:
    for i, ui in enumerate(plan.row_u):
        for j, uj in enumerate(plan.col_u):
            if mirror and j < i:
                for arr in out.values():
                    arr[i, j] = arr[j, i]
                reps[:, i, j] = reps[:, j, i]
                continue
            a, b = cols[ui], cols[uj]
            cell = [_pair(p, a, b) for p in parts]
            est, corrected, se, lo, hi, _, _, _, r = jackknife_of_blocks(
                m, cell, params, level, "auto", _pair(total, a, b)
            )
            for key, v in zip(out, (est, corrected, se, lo, hi), strict=True):
                out[key][i, j] = v
            reps[:, i, j] = r


def refuse_uncertainty(sketch_size: int | None, precision: str) -> None:
    """Refuse, with the reason, the paths whose cells get no interval.

    Dask inputs (blocks on the cluster, :mod:`svcca._engines._cells_dask`) and torch
    tensors on a device (blocks on the device, :mod:`svcca._engines._cells_device`) are
    served by :func:`with_intervals`.
    """
    if sketch_size is not None:
        raise ValueError(
            "uncertainty= needs every representation's full Gram matrix per block (SVCCA's "
            "directions are refitted on each leave-one-block-out statistic), which "
            "sketch_size exists to avoid. Leave one of them out."
        )
    if precision != "float64":
        raise ValueError(
            "uncertainty= keeps float64 block statistics; precision='float32' is for the "
            "exact two passes without intervals. Leave one of them out."
        )


def with_intervals(
    plan: Plan,
    measure: str,
    keep: float | int,
    variance: Any,
    epsilon: float,
    chunk_size: int | None,
    progress: bool | None,
    unc: dict[str, Any],
    test: str | None = None,
) -> Any:
    """``pairwise`` with an interval per cell: one pass of block statistics, then each
    cell's jackknife; the values are the measure on the total statistic.

    The pass runs where the default passes would: on the tensors' device
    (:func:`svcca._engines._cells_device.block_statistics_device`), on the dask cluster
    (:func:`svcca._engines._cells_dask.block_statistics_dask`), else on the host."""
    from svcca._engines._passes_device import tensor_device
    from svcca._sources import is_dask_array

    G, seed = unc["blocks"], unc["seed"]
    dev = tensor_device(plan.srcs)  # refuses arrays mixed with tensors on a device
    if dev is not None:
        from svcca._engines._cells_device import block_statistics_device

        parts, cols = block_statistics_device(plan, dev, G, seed, chunk_size, progress)
    elif any(is_dask_array(s.obj) for s in plan.srcs):
        from svcca._engines._cells_dask import block_statistics_dask

        parts, cols = block_statistics_dask(plan, G, seed, BLOCKS_FIX, progress)
    else:
        parts, cols = block_statistics(plan, G, seed, chunk_size, progress)
    return intervals_from_blocks(plan, parts, cols, measure, keep, variance, epsilon, unc, test)


def intervals_from_blocks(
    plan: Plan,
    parts: list[Moments],
    cols: list[slice],
    measure: str,
    keep: float | int,
    variance: Any,
    epsilon: float,
    unc: dict[str, Any],
    test: str | None = None,
) -> Any:
    """The result of a pass of side-by-side block statistics (``parts``, each
    representation's columns ``cols``): the values are the measure on the total, each
    cell's interval its jackknife. Of ``plan`` only the names, labels, ``n`` and the
    row/column indices are read (``svcca.torch.compare`` passes ``srcs=[]``)."""
    from svcca._engines._combine import one_pass_settings, prepare_all, warn_inflated
    from svcca._engines._pairwise_result import PairwiseResult

    settings: dict[str, Any] = one_pass_settings(measure, keep, variance, epsilon)
    total = Moments.empty(parts[0].p)
    for part in parts:
        total.merge_in_place(part)
    singles = [  # each representation's own statistic (X only), as pass one gives it
        Moments(
            total.n,
            total.mean_x[c].copy(),
            np.zeros(0),
            total.sxx[c, c].copy(),
            np.zeros((0, 0)),
            np.zeros((c.stop - c.start, 0)),
            scale_x=total.scale_x,
        )
        for c in cols
    ]
    reps = prepare_all(plan.names, singles, measure, keep, variance, epsilon)
    warn_inflated(plan.n, plan.names, reps, plan.row_u, plan.col_u, measure)
    _warn_coverage(plan, [c.stop - c.start for c in cols], measure)
    _warn_null(plan, total, cols, measure, settings)
    cells = cell_intervals(plan, parts, total, cols, measure, settings, unc["level"])
    tested: dict[str, Any] = {}
    if test is not None:
        tested = asymptotic_from_total(plan, total, cols, measure, settings, reps)
    return PairwiseResult(
        values=np.array(cells.estimate),
        rows=plan.row_labels,
        cols=plan.col_labels,
        measure=measure,
        settings=settings,
        n_samples=plan.n,
        dims_rows=tuple(reps[u].dim for u in plan.row_u),
        dims_cols=tuple(reps[u].dim for u in plan.col_u),
        corrected=cells.corrected,
        standard_errors=cells.standard_errors,
        low=cells.low,
        high=cells.high,
        uncertainty={
            **unc,
            "blocks_used": len(cells.block_sizes),
            "block_sizes": cells.block_sizes,
        },
        replicates=cells.replicates,
        **tested,
    )


def asymptotic_from_total(
    plan: Plan,
    total: Moments,
    cols: list[slice],
    measure: str,
    settings: Mapping[str, Any],
    reps: list[Any],
) -> dict[str, Any]:
    """Every cell's asymptotic test of independence from the side-by-side total
    statistic (``pvalues`` and ``test``, as :class:`svcca.PairwiseResult` takes them)."""
    m = MEASURES[measure]
    mask = family_mask(plan.row_u, plan.col_u, plan.square)
    tests = CellTests(mask.shape, total.n)
    grams = {u: total.sxx[c, c] for u, c in enumerate(cols)}
    for i, ui in enumerate(plan.row_u):
        for j, uj in enumerate(plan.col_u):
            if not mask[i, j]:
                continue
            if ASYMPTOTIC_TESTS[measure] == "hsic":
                tests.cka(i, j, total.sxx[cols[ui], cols[uj]], ui, uj, grams)
            else:
                res = cca_of(m, _pair(total, cols[ui], cols[uj]), settings)
                tests.cca(i, j, res.correlations, int(res.rank_x), int(res.rank_y))
            if plan.square:
                tests.mirror(j, i)
    dims = [r.dim for r in reps]
    return asymptotic_fields(
        tests, plan.row_u, plan.col_u, plan.square, plan.names, dims, measure, stacklevel=6
    )


def _warn_null(
    plan: Plan, total: Moments, cols: list[slice], measure: str, settings: Mapping[str, Any]
) -> None:
    """One warning naming the CCA-family cells with canonical correlations Bartlett's
    test does not tell from 0, where the intervals undercover (docs/uncertainty.md)."""
    m = MEASURES[measure]
    if m.name not in BOUNDARY_MEASURES:
        return
    found = []
    for i, ui in enumerate(plan.row_u):
        for j, uj in enumerate(plan.col_u):
            if ui == uj or (plan.square and j < i):
                continue
            zero, k = null_correlations(m, _pair(total, cols[ui], cols[uj]), settings)
            found.append((f"({plan.names[ui]!r}, {plan.names[uj]!r})", zero, k))
    warn_null_correlations(measure, found, stacklevel=6)


def _warn_coverage(plan: Plan, widths: list[int], measure: str) -> None:
    """One warning where a cell has too few rows for its interval's measured coverage."""
    ratio = FEW_ROWS_RATIO["jackknife"]
    bad = [
        (plan.names[a], plan.names[b])
        for a in plan.row_u
        for b in plan.col_u
        if plan.n < ratio * (widths[a] + widths[b])
    ]
    if bad:
        shown = ", ".join(f"({x!r}, {y!r})" for x, y in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        warnings.warn(
            f"Jackknife intervals for {measure!r} from {plan.n} rows: {len(bad)} cells have "
            f"fewer than {ratio:g} (p + q) rows, below which the measured coverage of these "
            f"intervals falls short of their level (docs/uncertainty.md): {shown}{more}. "
            "Use more rows, or fewer features (svcca's keep=, or PCA first).",
            SVCCAWarning,
            stacklevel=5,  # the user's call of pairwise or torch.compare
        )
