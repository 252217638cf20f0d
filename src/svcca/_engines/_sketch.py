"""SVCCA for layers too wide for a Gram matrix: Frequent Directions in pass one,
Rayleigh-Ritz in the sketched subspaces after pass two."""

from __future__ import annotations

import numpy as np

from svcca._engines._cell_tests import CellTests
from svcca._engines._combine import Rep, scores
from svcca._engines._passes import pass2_local, pass_rows
from svcca._measures import FrequentDirections, Variance, ritz_side
from svcca._progress import Progress as _Progress  # the one progress contract
from svcca._sources import Source
from svcca._validation import raise_nonfinite

__all__ = ["sketched_svcca"]


def sketched_svcca(
    srcs: list[Source],
    n: int,
    row_u: list[int],
    col_u: list[int],
    keep: float | int,
    variance: Variance,
    ell: int,
    chunk_size: int | None,
    progress: bool | None,
    tests: CellTests | None = None,
) -> tuple[np.ndarray, list[Rep]]:
    """SVCCA for wide layers: Frequent Directions, then Rayleigh-Ritz in the sketches."""
    rows1 = pass_rows(sum(s.p for s in srcs), n, chunk_size, "float64")
    fds = [FrequentDirections(s.p, min(ell, s.p)) for s in srcs]
    n_chunks = -(-n // rows1)
    bar = _Progress(progress, total=2 * n_chunks + len(row_u) * len(col_u), desc="pairs")
    try:
        for start in range(0, n, rows1):  # pass one: sketches, means, total variances
            stop = min(start + rows1, n)
            for fd, s in zip(fds, srcs, strict=True):
                block = s.read(start, stop)
                if not np.isfinite(block).all():
                    raise_nonfinite(block, f"Representation {s.name!r}", first_row=start)
                fd.update(block)
            bar.update(1)
        bases = [fd.directions()[1] for fd in fds]
        uniq = list(range(len(srcs)))
        # Pass two: every sketched subspace against every other (all blocks are needed:
        # the diagonal ones give the exact variances inside each subspace).
        units = [fd.unit or 1.0 for fd in fds]  # the sketches' units (exact powers of two)
        args = ([fd.mean for fd in fds], bases, uniq, None, [1.0 / u for u in units])
        rows2 = pass_rows(sum(b.shape[1] for b in bases), n, chunk_size, "float64")
        bar.retotal(n_chunks + -(-n // rows2) + len(row_u) * len(col_u))
        C = pass2_local(srcs, n, rows2, args, bar)
        off = np.concatenate([[0], np.cumsum([b.shape[1] for b in bases])])
        sides = [
            ritz_side(C[a:b, a:b], basis, fd.mean, fd.total, keep, variance, repr(s.name), u)
            for a, b, basis, fd, s, u in zip(
                off[:-1], off[1:], bases, fds, srcs, units, strict=True
            )
        ]
        # The reduced cross blocks U_i^T C_ij U_j, laid out as scores expects.
        R = _reduced_blocks(C, off, [U for _, U in sides], row_u, col_u)
        reps = [Rep.of_side(red.cca_side(), red.k) for red, _ in sides]
        widths = [rep.dim for rep in reps]
        out = scores(R, reps, widths, row_u, col_u, "svcca", row_u is col_u, bar, tests)
    finally:
        bar.close()
    return out, reps


def _reduced_blocks(
    C: np.ndarray, off: np.ndarray, Us: list[np.ndarray], row_u: list[int], col_u: list[int]
) -> np.ndarray:
    """``U_a^T C_ab U_b`` for every (row, col) pair of representations, as one matrix."""
    return np.block(
        [
            [Us[a].T @ C[off[a] : off[a + 1], off[b] : off[b + 1]] @ Us[b] for b in col_u]
            for a in row_u
        ]
    )
