"""The host passes of ``pairwise``: each representation's moments, then the blocked
cross-products of all of them, chunk by chunk (NumPy arrays, memmaps, files, Dask)."""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._engines._cell_tests import CellTests
from svcca._engines._combine import Rep, prepare_all, scores
from svcca._engines._plan import Plan
from svcca._measures import Variance
from svcca._moments import FLOAT32_CHUNK_ROWS, Accumulator, Moments
from svcca._progress import Progress as _Progress  # the one progress contract
from svcca._sources import Source, is_dask_array
from svcca._threads import dense_steps, products
from svcca._validation import Precision, check_chunk_size, precision_dtype

__all__ = ["centred_cross", "pass2_local", "pass_rows", "two_passes"]

# Rows per chunk of a pass: each float64 chunk of all representations side by side is
# about this large (at least 1024 rows, so the GEMMs stay efficient).
_PASS_BYTES = 64 * 2**20


def pass_rows(width: int, n: int, chunk_size: int | None, precision: Precision) -> int:
    """Rows per chunk of a pass over ``n`` rows: ``chunk_size`` or one chosen from the
    width, never more than ``n`` (a chunk buffer of ``chunk_size`` rows is allocated)."""
    chunk_size = check_chunk_size(chunk_size)
    if chunk_size is None:
        size = 4 if precision == "float32" else 8
        chunk_size = max(1024, _PASS_BYTES // (size * max(width, 1)))
    chunk_size = max(1, min(n, chunk_size))
    # float32 products stay short (their round-off grows with length); sums are float64.
    return min(chunk_size, FLOAT32_CHUNK_ROWS) if precision == "float32" else chunk_size


# ---------------------------------------------------------------------- the two passes
def _cross_block(
    blocks: list[np.ndarray],
    means: list[np.ndarray],
    transforms: list[np.ndarray | None],
    row_u: list[int],
    col_u: list[int] | None,
    work: dict[str, np.ndarray] | None = None,
    dtype: Any = None,
    inv_scales: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A^T B`` for one chunk: A (B) the centred, transformed row (column) reps side by side,
    and the column sums of A and B (float64).

    The blocks are centred on the means in their own dtype (float64 as read), divided by
    their representation's power-of-two scale (``Moments.scale_x``, as ``inv_scales``:
    exact) and only then cast to the product dtype ``dtype`` (default: the blocks'), so
    float32 products never see a rounded mean. The sums of the centred values are
    ``n (mean - fl(mean))`` summed over chunks: :func:`centred_cross` removes that
    rank-one term, so pass two centres exactly as pass one did, whatever the offset.

    The transposed panels ``A^T`` (and ``B^T``) are written in place, one C-contiguous
    row block per representation, so no concatenation copy is made; a representation
    in both rows and columns is projected once. ``work`` holds buffers reused from chunk
    to chunk (large fresh allocations are returned to the OS on free and page-fault
    again on every chunk); the returned array is then one of them.
    """
    m = blocks[0].shape[0]
    width = [
        b.shape[1] if t is None else t.shape[1] for b, t in zip(blocks, transforms, strict=True)
    ]

    dtype = np.dtype(blocks[0].dtype if dtype is None else dtype)

    def buffer(key: str, shape: tuple[int, int]) -> np.ndarray:
        if work is None:
            return np.empty(shape, dtype=dtype)
        buf = work.get(key)
        if buf is None or buf.shape[1] < shape[1] or buf.shape[0] != shape[0]:
            buf = work[key] = np.empty(shape, dtype=dtype)
        return buf[:, : shape[1]] if buf.shape[1] != shape[1] else buf

    def panel(key: str, us: list[int], done: dict[int, np.ndarray]) -> np.ndarray:
        out = buffer(key, (sum(width[u] for u in us), m))
        off = 0
        for u in us:
            dst = out[off : off + width[u]]
            if u in done:
                dst[:] = done[u]
            else:
                b = blocks[u]
                b -= means[u]
                if inv_scales is not None and inv_scales[u] != 1.0:
                    b *= inv_scales[u]
                T = transforms[u]
                if T is None:
                    dst[:] = b.T
                else:
                    if b.dtype != dtype:
                        b = b.astype(dtype)
                    np.matmul(T.T, b.T, out=dst)
                done[u] = dst
            off += width[u]
        return out

    done: dict[int, np.ndarray] = {}
    At = panel("At", row_u, done)
    Bt = At if col_u is None else panel("Bt", col_u, done)
    sa = At.sum(axis=1, dtype=np.float64)
    sb = sa if col_u is None else Bt.sum(axis=1, dtype=np.float64)
    if work is None:
        return At @ Bt.T, sa, sb
    return np.matmul(At, Bt.T, out=buffer("C", (At.shape[0], Bt.shape[0]))), sa, sb


def _cross_block_packed(blocks: list[np.ndarray], *args: Any) -> np.ndarray:
    """:func:`_cross_block` as one float64 array ``[[C, sa], [sb^T, 0]]`` (what a Dask
    tree-reduction can sum); :func:`centred_cross` unpacks it."""
    C, sa, sb = _cross_block(blocks, *args)
    out = np.zeros((C.shape[0] + 1, C.shape[1] + 1))
    out[:-1, :-1] = C
    out[:-1, -1] = sa
    out[-1, :-1] = sb
    return out


def centred_cross(packed: np.ndarray, n: int) -> np.ndarray:
    """The centred cross-products from summed ``[[C, sa], [sb^T, 0]]``:
    ``C - sa sb^T / n`` (the shifted-data correction of the means' rounding)."""
    C = packed[:-1, :-1]
    C -= np.outer(packed[:-1, -1], packed[-1, :-1] / n)
    return C


def _pass1_local(
    srcs: list[Source], n: int, rows: int, bar: _Progress, precision: Precision
) -> list[Moments]:
    """Pass one: each representation's Moments, by the one Accumulator.

    Rows are read as float64 and shifted before any cast, except float32 sources of a
    float32 pass, which are read as they are and shifted in float32 by a float32 shift.
    """
    accs = [Accumulator(s.p, 0, precision, (f"Representation {s.name!r}", "")) for s in srcs]
    f32 = precision == "float32"
    bufs = [
        np.empty((rows, s.p), dtype=np.float32 if f32 and _dtype(s) == np.float32 else float)
        for s in srcs
    ]
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        for acc, s, buf in zip(accs, srcs, bufs, strict=True):
            block = s.read(start, stop, buf)
            acc.add_rows(block, start=start, stop=stop, scratch=True)
        bar.update(1)
    return [acc.finish() for acc in accs]


def _dtype(s: Source) -> Any:
    """The dtype a source holds (None when it does not say)."""
    return getattr(s.obj, "dtype", None)


def pass2_local(
    srcs: list[Source],
    n: int,
    rows: int,
    args: tuple[Any, ...],
    bar: _Progress,
    dtype: Any = np.float64,
) -> np.ndarray:
    means, transforms, row_u, col_u, inv_scales = args
    total: np.ndarray | None = None
    work: dict[str, np.ndarray] = {}
    bufs = [np.empty((rows, s.p)) for s in srcs]  # float64: centred before any cast
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        blocks = [s.read(start, stop, buf) for s, buf in zip(srcs, bufs, strict=True)]
        part, sa, sb = _cross_block(
            blocks, means, transforms, row_u, col_u, work, dtype, inv_scales
        )
        if total is None:  # float64 sums, also of float32 chunk products
            total = np.zeros((part.shape[0] + 1, part.shape[1] + 1))
        total[:-1, :-1] += part
        total[:-1, -1] += sa
        total[-1, :-1] += sb
        bar.update(1)
    assert total is not None
    return centred_cross(total, n)


def two_passes(
    plan: Plan,
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
    chunk_size: int | None,
    progress: bool | None,
    precision: Precision = "float64",
    tests: CellTests | None = None,
) -> tuple[np.ndarray, list[Rep]]:
    """Pass one: each representation's moments; prepare each side; pass two: the blocked
    cross-products of the (transformed) representations; combine every pair (and, with
    ``tests``, test each for independence)."""
    srcs, n = plan.srcs, plan.n
    use_dask = any(is_dask_array(s.obj) for s in srcs)
    dtype = precision_dtype(precision)
    rows1 = pass_rows(sum(s.p for s in srcs), n, chunk_size, precision)
    n_chunks1 = 1 if use_dask else -(-n // rows1)
    n_pairs = len(plan.row_u) * len(plan.col_u)
    bar = _Progress(progress, total=2 * n_chunks1 + n_pairs, desc="pairs")
    try:
        if use_dask:
            from svcca._sources import per_rep_moments_dask

            moms = per_rep_moments_dask(
                [_dask_or_array(s, n) for s in srcs],
                [str(nm) for nm in plan.names],
                precision=precision,
            )
            bar.update(1)
        else:
            with products(rows1 * max(s.p for s in srcs) ** 2 / 2):
                moms = _pass1_local(srcs, n, rows1, bar, precision)
        reps = prepare_all(plan.names, moms, measure, keep, variance, epsilon)
        transforms = [None if r.transform is None else r.transform.astype(dtype) for r in reps]
        widths = [s.p if T is None else T.shape[1] for T, s in zip(transforms, srcs, strict=True)]
        means = [m.mean_x for m in moms]
        inv_scales = [1.0 / m.scale_x for m in moms]
        col_u = None if plan.square else plan.col_u
        if use_dask:
            from svcca._sources import cross_products_dask

            # Blocks reach the tasks as float64 copies; (work, dtype) ride along in args.
            packed = cross_products_dask(
                [_dask_or_array(s, n) for s in srcs],
                _cross_block_packed,
                (means, transforms, plan.row_u, col_u, None, dtype, inv_scales),
            )
            C = centred_cross(packed, n)
            bar.update(1)
        else:
            rows2 = pass_rows(sum(widths), n, chunk_size, precision)
            bar.retotal(2 * n_chunks1 + n_pairs + -(-n // rows2) - n_chunks1)
            rw = [widths[u] for u in plan.row_u]
            cw = rw if plan.square else [widths[u] for u in plan.col_u]
            with products(rows2 * sum(rw) * sum(cw)):
                args = (means, transforms, plan.row_u, col_u, inv_scales)
                C = pass2_local(srcs, n, rows2, args, bar, dtype)
        with dense_steps(max(widths)):
            values = scores(
                C, reps, widths, plan.row_u, plan.col_u, measure, plan.square, bar, tests
            )
    finally:
        bar.close()
    return values, reps


def _dask_or_array(s: Source, n: int) -> Any:
    return s.obj if s.kind == "dask" else s.read(0, n)
