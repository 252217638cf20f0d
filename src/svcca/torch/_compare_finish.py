"""The finishes of :func:`svcca.torch.compare` once the batches are in: the streamed
measures' (each layer's side prepared once, every pair combined from the cross blocks,
as ``pairwise`` ends) and minibatch CKA's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

import svcca._dense as _dense
from svcca._engines import CellTests, PairwiseResult, Rep, scores
from svcca._measures import MinibatchCKA, Variance
from svcca._moments import CrossMoments
from svcca._progress import Progress
from svcca._validation import raise_degenerate

__all__ = ["Layers", "finish_moments", "minibatch_result"]


def finish_moments(
    acc: CrossMoments,
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
    tests: CellTests | None = None,
) -> tuple[np.ndarray, list[Rep], list[int], list[int]]:
    """Each layer's prepared side, the (transformed) cross blocks, every pair's score
    (and, with ``tests``, each pair's asymptotic test)."""
    assert acc.cross is not None
    uniq = acc.keys
    reps = [Rep(acc.labels[k], acc.moms[k], measure, keep, variance, epsilon) for k in uniq]
    pos = {k: u for u, k in enumerate(uniq)}
    row_u = [pos[k] for k in acc.row_keys]
    col_u = row_u if acc.col_keys == acc.row_keys else [pos[k] for k in acc.col_keys]
    widths = [
        acc.moms[k].p if r.transform is None else r.transform.shape[1]
        for k, r in zip(uniq, reps, strict=True)
    ]
    C = acc.cross
    if measure == "svcca":  # pass two of pairwise, from the moments: T_i^T S_ij T_j
        roff = np.concatenate([[0], np.cumsum([acc.moms[k].p for k in acc.row_keys])])
        coff = np.concatenate([[0], np.cumsum([acc.moms[k].p for k in acc.col_keys])])
        T: list[np.ndarray] = [r.transform for r in reps]  # type: ignore[misc]
        left = np.concatenate(
            [_dense.matmul(T[u].T, C[roff[i] : roff[i + 1]]) for i, u in enumerate(row_u)]
        )
        C = np.concatenate(
            [_dense.matmul(left[:, coff[j] : coff[j + 1]], T[u]) for j, u in enumerate(col_u)],
            axis=1,
        )
    bar = Progress(False, 0, "")
    values = scores(C, reps, widths, row_u, col_u, measure, col_u is row_u, bar, tests)
    return values, reps, row_u, col_u


@dataclass(frozen=True)
class Layers:
    """The captured layers of the rows and the columns, and how messages name them."""

    row_keys: list[str]
    col_keys: list[str]
    labels: Mapping[str, str]

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys([*self.row_keys, *self.col_keys]))


def minibatch_result(
    mb: MinibatchCKA, rows: tuple[str, ...], cols: tuple[str, ...], acc: Layers
) -> PairwiseResult:
    assert mb.sum_xx is not None and mb.sum_yy is not None and mb.widths is not None
    for sums, keys, widths in (
        (mb.sum_xx, acc.row_keys, mb.widths[0]),
        (mb.sum_yy, acc.col_keys, mb.widths[1]),
    ):
        for s, k, p in zip(sums, keys, widths, strict=True):
            if not s > 0:
                raise_degenerate(
                    acc.labels[k],
                    p,
                    "it is constant within every batch (its HSIC with itself is 0)",
                )
    return PairwiseResult(
        values=mb.scores(),
        rows=rows,
        cols=cols,
        measure="cka_minibatch",
        settings={},
        n_samples=mb.n_samples,
        dims_rows=tuple(mb.widths[0]),
        dims_cols=tuple(mb.widths[1]),
    )
