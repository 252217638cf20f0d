"""Prepare each side once, combine every pair: the finish of the one-pass measures.

:class:`Rep` is one representation's *prepare a side* step (from its :class:`Moments`);
:func:`scores` combines every pair from the blocked cross-products. ``svcca.pairwise``
and ``svcca.torch.compare`` both end here, so each measure has one implementation.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

import svcca._dense as _dense
from svcca._engines._cell_tests import CellTests
from svcca._measures import (
    CCASide,
    Variance,
    canonical_correlations,
    cka_ratio,
    cross_label,
    prepare_side,
    pwcca_weights,
    reduce_side,
    roundoff_bound,
    svd_of_cross,
    with_offset,
)
from svcca._moments import Moments
from svcca._progress import Progress as _Progress  # the one progress contract
from svcca._threads import dense_steps
from svcca._validation import SVCCAWarning, few_samples_message, raise_degenerate

__all__ = [
    "ONE_PASS_MEASURES",
    "Rep",
    "one_pass_settings",
    "prepare_all",
    "scores",
    "warn_inflated",
]

# The measures the blocked passes compute from moments (every other is served per pair).
ONE_PASS_MEASURES = ("cca", "svcca", "pwcca", "pls", "cka_linear")
_SYMMETRIC = {"cca", "svcca", "pls", "cka_linear"}


def one_pass_settings(
    measure: str, keep: float | int, variance: Variance, epsilon: float
) -> dict[str, Any]:
    """The settings a one-pass measure's result records (and the registry takes):
    ``keep`` and ``variance`` for SVCCA, ``epsilon`` for CCA and PWCCA, none for CKA."""
    if measure == "svcca":
        return {"keep": keep, "variance": variance}
    return {"epsilon": epsilon} if measure in ("cca", "pwcca") else {}


class Rep:
    """One representation's *prepare a side* step, done once for all its pairs.

    ``transform`` (SVCCA's kept directions) projects every chunk in pass two; ``side``
    is the measure's prepared side (:func:`svcca._measures._cca.prepare_side`, or the
    reduced side of :func:`svcca._measures._svcca.reduce_side`); CKA and PLS need only
    ``||S_xx||_F^2``. Each is the same call a single comparison makes.
    """

    __slots__ = ("side", "transform", "dim", "gram_sq", "gram")

    def __init__(
        self,
        name: str,
        m: Moments,
        measure: str,
        keep: float | int,
        variance: Variance,
        epsilon: float,
    ) -> None:
        self.side: CCASide | None = None
        self.transform: np.ndarray | None = None
        self.gram_sq = 0.0
        self.gram: np.ndarray | None = None  # linear CKA's Gram matrix, for its test
        if measure == "svcca":
            red = reduce_side(m.sxx, m.mean_x, keep, variance, name, eps=m.eps, scale=m.scale_x)
            self.transform, self.side, self.dim = red.directions, red.cca_side(), red.k
            with_offset(self.side, np.diag(red.eigvals), m.n)
        elif measure in ("cca", "pwcca"):
            self.side = prepare_side(
                m.sxx, m.mean_x, epsilon, name, eps=m.eps, scale=m.scale_x, n=m.n
            )
            with_offset(self.side, m.sxx, m.n)
            self.dim = self.side.rank
        else:
            self.gram_sq = float(np.sum(m.sxx * m.sxx))
            self.gram = m.sxx
            if not self.gram_sq > 0:
                raise_degenerate(name, m.p, "it is constant (its centred Gram matrix is zero)")
            self.dim = m.p

    @classmethod
    def of_side(cls, side: CCASide, dim: int) -> Rep:
        rep = cls.__new__(cls)
        rep.side, rep.transform, rep.dim, rep.gram_sq, rep.gram = side, None, dim, 0.0, None
        return rep


def prepare_all(
    names: Sequence[Hashable],
    moms: list[Moments],
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
) -> list[Rep]:
    """Every representation's prepare step, its kernels where its moments were made."""
    with dense_steps(max(m.p for m in moms), moms[0].device):
        return [
            Rep(repr(nm), m, measure, keep, variance, epsilon)
            for nm, m in zip(names, moms, strict=True)
        ]


def _pair_score(measure: str, M: np.ndarray, si: CCASide, sj: CCASide) -> tuple[float, np.ndarray]:
    """The combine step of one pair from its whitened cross block ``M``: the score and
    the canonical correlations."""
    tol = roundoff_bound(M, si, sj)
    with _dense.factorising(cross_label(si, sj)):
        if measure == "pwcca":
            U, rho, V = svd_of_cross(M, tol)
            weights, _ = pwcca_weights(si, sj, U, V, rho)
            return float(weights @ rho), rho
        rho = canonical_correlations(M, tol)
        return float(rho.mean()), rho


def scores(
    C: np.ndarray,
    reps: list[Rep],
    widths: list[int],
    row_u: list[int],
    col_u: list[int],
    measure: str,
    square: bool,
    bar: _Progress,
    tests: CellTests | None = None,
) -> np.ndarray:
    """Every pair's score from the blocked cross-products ``C`` (rows x cols stripes);
    with ``tests``, each cell's asymptotic test of independence from the same block."""
    roff = np.concatenate([[0], np.cumsum([widths[u] for u in row_u])])
    coff = np.concatenate([[0], np.cumsum([widths[u] for u in col_u])])
    out = np.zeros((len(row_u), len(col_u)))
    whitened = measure in ("cca", "svcca", "pwcca")
    if whitened:
        # Whiten every row stripe from the left once (CCASide.left), then each pair's
        # block from the right (CCASide.right): the two halves of whitened_cross.
        left = [reps[u].side.left(C[roff[i] : roff[i + 1]]) for i, u in enumerate(row_u)]  # type: ignore[union-attr]
    grams = {u: r.gram for u, r in enumerate(reps)}
    for i, ui in enumerate(row_u):
        for j, uj in enumerate(col_u):
            if square and measure in _SYMMETRIC and j < i:
                out[i, j] = out[j, i]
                if tests is not None:
                    tests.mirror(i, j)
            elif whitened:
                si, sj = reps[ui].side, reps[uj].side
                assert si is not None and sj is not None
                M = sj.right(left[i][:, coff[j] : coff[j + 1]])
                out[i, j], rho = _pair_score(measure, M, si, sj)
                if tests is not None and ui != uj:
                    tests.cca(i, j, rho, reps[ui].dim, reps[uj].dim)
            else:
                S = C[roff[i] : roff[i + 1], coff[j] : coff[j + 1]]
                xy = float(np.sum(S * S))
                out[i, j] = cka_ratio(xy, reps[ui].gram_sq, reps[uj].gram_sq, 1, 1, ("", ""))
                if tests is not None and ui != uj:
                    tests.cka(i, j, S, ui, uj, grams)
            bar.update(1)
    return out


def warn_inflated(
    n: int,
    names: list[Hashable],
    reps: list[Rep],
    row_u: list[int],
    col_u: list[int],
    measure: str,
) -> None:
    """One warning naming every pair whose kept dimensions leave too few samples."""
    if measure not in ("cca", "svcca", "pwcca"):
        return
    bad = [
        (names[a], names[b], reps[a].dim, reps[b].dim)
        for a in row_u
        for b in col_u
        if few_samples_message(n, reps[a].dim, reps[b].dim) is not None
    ]
    if not bad:
        return
    a, b, p, q = bad[0]
    shown = ", ".join(f"({x!r}, {y!r})" for x, y, _, _ in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    warnings.warn(
        f"{len(bad)} pairs have too few samples for their dimensions: {shown}{more}. For "
        f"({a!r}, {b!r}): {few_samples_message(n, p, q)}",
        SVCCAWarning,
        stacklevel=3,
    )
