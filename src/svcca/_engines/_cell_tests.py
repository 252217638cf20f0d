"""A p-value against independence for every cell of ``pairwise`` and ``torch.compare``.

Two tests, chosen by the caller (``test=``):

- ``"permutation"``, where the rows are at hand (``pairwise``): the rows of the column
  representation are shuffled, breaking the pairing of datapoints. One sequence of
  permutations serves every cell (drawn as :func:`svcca.stats.permutation_test` draws
  them, so each cell's p-value equals that call's with the same seed). A measure split
  into prepare and combine has each column side permuted once per permutation (a
  declared ``permute`` gathers ``P K P^T``; else the permuted rows are prepared) and
  combined with every row side; the library's moments measures use their per-pair
  permutation scorers (each side centred and whitened once); any other measure is
  called in full.
- ``"asymptotic"``, where the rows are gone (streamed by ``torch.compare``, or too many
  to shuffle): Bartlett's chi-square for the CCA family and the HSIC null of linear CKA,
  from the moments the scores come from (:mod:`svcca._measures._independence`).

The family of a matrix is its distinct tests: a cell comparing a representation with
itself has no test (NaN), and a square matrix tests each pair once (the lower triangle
mirrors the upper: "``a`` and ``b`` are independent" is one hypothesis). The default
number of permutations lets the smallest attainable p-value, ``1 / (B + 1)``, pass
Holm's first threshold ``0.05 / m`` over that family: ``B = max(999, ceil(m / 0.05) - 1)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from svcca._engines._per_pair import read_sides
from svcca._engines._plan import Plan
from svcca._measures import (
    ASYMPTOTIC_TESTS,
    FEW_ROWS_TEST,
    Measure,
    PowerTraces,
    bartlett_pvalue,
    fast_scorer,
    hsic_linear_pvalue,
    permutation_batches,
)
from svcca._moments import check_count, check_seed
from svcca._progress import Progress as _Progress
from svcca._validation import SVCCAWarning

__all__ = [
    "CellTests",
    "asymptotic_fields",
    "check_test",
    "family_mask",
    "permutation_cells",
    "permutations_for",
    "test_record",
    "warn_few_rows_test",
]

TESTS = ("permutation", "asymptotic")
# The level the default number of permutations is planned for.
PLANNED_ALPHA = 0.05


def check_test(test: Any, permutations: Any, measure: str, streamed: bool = False) -> str | None:
    """Validate ``test=`` and ``permutations=`` for ``measure``; the test's name or None."""
    if test is None:
        if permutations is not None:
            raise ValueError(
                "permutations= is for test='permutation'; pass test='permutation' too, or "
                "leave permutations out."
            )
        return None
    if test not in TESTS:
        raise ValueError(
            f"test must be None, 'permutation' (rows shuffled, where the rows are at hand) "
            f"or 'asymptotic' (from the moments: Bartlett for the CCA family, the HSIC null "
            f"for linear CKA); got {test!r}."
        )
    if test == "asymptotic":
        if measure not in ASYMPTOTIC_TESTS:
            raise ValueError(
                f"No asymptotic test of independence is declared for measure={measure!r} "
                f"(those with one: {', '.join(ASYMPTOTIC_TESTS)}). "
                + (
                    "Its rows are gone once streamed: capture the activations "
                    "(svcca.torch.capture) and run svcca.pairwise(..., test='permutation')."
                    if streamed
                    else "Use test='permutation', which shuffles the rows."
                )
            )
        if permutations is not None:
            raise ValueError(
                "permutations= is for test='permutation'; the asymptotic test draws none. "
                "Leave permutations out."
            )
    elif streamed:
        raise ValueError(
            "test='permutation' shuffles rows, and compare streams them (each batch is "
            "gone once its moments are added). Use test='asymptotic' (measures "
            f"{', '.join(ASYMPTOTIC_TESTS)}), or capture the activations "
            "(svcca.torch.capture) and run svcca.pairwise(..., test='permutation')."
        )
    elif permutations is not None:
        check_count(permutations, "permutations", 1)
    return str(test)


def family_mask(row_u: Sequence[int], col_u: Sequence[int], square: bool) -> np.ndarray:
    """The cells that are distinct tests: not a representation with itself, and in a
    square matrix (rows = cols) the upper triangle only: "``a`` and ``b`` are
    independent" is one hypothesis, whichever side a measure weighs (PWCCA)."""
    mask = np.array([[ui != uj for uj in col_u] for ui in row_u], dtype=bool).reshape(
        len(row_u), len(col_u)
    )
    if square:
        mask &= np.triu(np.ones(mask.shape, dtype=bool), 1)
    return mask


def permutations_for(family_size: int, alpha: float = PLANNED_ALPHA) -> int:
    """Permutations whose smallest p-value, ``1 / (B + 1)``, reaches Holm's first
    threshold ``alpha / m`` over ``m`` cells (at least 999)."""
    return max(999, math.ceil(family_size / alpha) - 1)


def test_record(
    test: str, measure: str, family_size: int, permutations: int | None, seed: int
) -> dict[str, Any]:
    """What a result records of its tests."""
    if test == "asymptotic":
        return {
            "method": "asymptotic",
            "statistic": ASYMPTOTIC_TESTS[measure],
            "family_size": family_size,
        }
    return {
        "method": "permutation",
        "permutations": int(permutations or permutations_for(family_size)),
        "seed": int(seed),
        "family_size": family_size,
    }


class CellTests:
    """Each cell's asymptotic ``(statistic, p-value)``, filled as a finish visits it.

    ``n`` rows; ``grams[u]``, for linear CKA, is representation ``u``'s centred Gram
    matrix in the units of the cross blocks (its :class:`PowerTraces` are computed once).
    """

    def __init__(self, shape: tuple[int, int], n: int) -> None:
        self.n = n
        self.statistics = np.full(shape, np.nan)
        self.pvalues = np.full(shape, np.nan)
        self._traces: dict[int, Any] = {}

    def cca(self, i: int, j: int, rho: np.ndarray, p: int, q: int) -> None:
        """Bartlett's test of "every canonical correlation is zero" for cell ``(i, j)``."""
        self.statistics[i, j], self.pvalues[i, j] = bartlett_pvalue(rho, self.n, p, q)

    def cka(
        self, i: int, j: int, sxy: np.ndarray, ui: int, uj: int, grams: Mapping[int, Any]
    ) -> None:
        """The HSIC null test of linear CKA for cell ``(i, j)`` (cross block ``sxy``)."""
        for u in (ui, uj):
            if u not in self._traces:
                g = grams[u]
                self._traces[u] = PowerTraces(g.cpu().numpy() if hasattr(g, "cpu") else g)
        self.statistics[i, j], self.pvalues[i, j] = hsic_linear_pvalue(
            sxy, self.n, self._traces[ui], self._traces[uj]
        )

    def mirror(self, i: int, j: int) -> None:
        self.statistics[i, j], self.pvalues[i, j] = self.statistics[j, i], self.pvalues[j, i]

    def frozen(self, mask: np.ndarray, square: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(statistics, pvalues)``, NaN outside the family (``mask``) and, in a square
        matrix, its mirror image: no test of a representation with itself. Read-only."""
        tested = mask | mask.T if square else mask
        for a in (self.statistics, self.pvalues):
            if square:  # one test per pair: the lower triangle is the upper's
                a.T[mask] = a[mask]
            a[~tested] = np.nan
            a.flags.writeable = False
        return self.statistics, self.pvalues


def asymptotic_fields(
    tests: CellTests,
    row_u: Sequence[int],
    col_u: Sequence[int],
    square: bool,
    names: Sequence[Hashable],
    dims: Sequence[int],
    measure: str,
    stacklevel: int = 3,
) -> dict[str, Any]:
    """The finish of the asymptotic tests: the ``pvalues`` and ``test`` fields of a
    :class:`svcca.PairwiseResult`, with one warning where rows are few (``dims``: each
    representation's dimensions in the test)."""
    mask = family_mask(row_u, col_u, square)
    warn_few_rows_test(tests.n, names, dims, row_u, col_u, mask, stacklevel + 1)
    return {
        "pvalues": tests.frozen(mask, square)[1],
        "test": test_record("asymptotic", measure, int(mask.sum()), None, 0),
    }


def warn_few_rows_test(
    n: int,
    names: Sequence[Hashable],
    widths: Sequence[int],
    row_u: Sequence[int],
    col_u: Sequence[int],
    mask: np.ndarray,
    stacklevel: int = 2,
) -> None:
    """One warning where a tested cell (``mask``) has too few rows for its asymptotic
    p-value (``stacklevel`` as :func:`warnings.warn` counts it from here)."""
    bad = [
        (names[row_u[i]], names[col_u[j]])
        for i, j in zip(*np.nonzero(mask), strict=True)
        if n < FEW_ROWS_TEST * (widths[row_u[i]] + widths[col_u[j]])
    ]
    if bad:
        shown = ", ".join(f"({x!r}, {y!r})" for x, y in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        warnings.warn(
            f"Asymptotic p-values from {n} rows: {len(bad)} cells have fewer than "
            f"{FEW_ROWS_TEST:g} (p + q) rows, below which these tests' p-values were "
            f"measured to drift from uniform (docs/uncertainty.md): {shown}{more}. Use "
            "more rows, fewer features (keep= or PCA first), or test='permutation' on "
            "the rows.",
            SVCCAWarning,
            stacklevel=stacklevel,
        )


def permutation_cells(
    plan: Plan,
    measure: Measure,
    params: Mapping[str, Any],
    permutations: int | None,
    seed: int,
    progress: bool | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Every cell's permutation p-value, and the record of the test.

    Cell ``(i, j)``'s p-value is ``(1 + #{null >= statistic}) / (1 + B)`` (``<=`` for a
    measure where smaller is more similar), null values within ``1e-12`` relative of the
    statistic counting as ties, as :func:`svcca.stats.permutation_test` counts them.
    """
    seed = check_seed(seed)
    mask = family_mask(plan.row_u, plan.col_u, plan.square)
    m = int(mask.sum())
    B = int(permutations) if permutations is not None else permutations_for(max(m, 1))
    record = test_record("permutation", measure.name, m, B, seed)
    shape = mask.shape
    pvalues = np.full(shape, np.nan)
    if m == 0:
        pvalues.flags.writeable = False
        return pvalues, record
    n = plan.n
    if n < 3:
        raise ValueError(f"A permutation test needs at least 3 rows; got {n}.")
    used = sorted(
        {plan.row_u[i] for i, _ in zip(*np.nonzero(mask), strict=True)}
        | {plan.col_u[j] for _, j in zip(*np.nonzero(mask), strict=True)}
    )
    cells = list(zip(*np.nonzero(mask), strict=True))
    greater = measure.larger_is_more_similar
    counts = np.zeros(shape, dtype=np.int64)
    stat = np.zeros(shape)
    rng = np.random.default_rng(seed)
    bar = _Progress(progress, total=B, desc="permutations")
    try:
        with warnings.catch_warnings():  # the call without the test warned once already
            warnings.simplefilter("ignore", SVCCAWarning)
            if measure.prepare is not None:
                _shared_sides(
                    plan, measure, params, B, rng, cells, used, stat, counts, greater, bar
                )
            else:
                _per_cell(plan, measure, params, B, rng, cells, used, stat, counts, greater, bar)
    finally:
        bar.close()
    pvalues[mask] = (1 + counts[mask]) / (1 + B)
    if plan.square:  # the lower triangle mirrors the upper: one hypothesis per pair
        pvalues.T[mask] = pvalues[mask]
    pvalues.flags.writeable = False
    return pvalues, record


def _count(null: float, s: float, greater: bool) -> int:
    tol = 1e-12 * max(1.0, abs(s))
    return int(null >= s - tol) if greater else int(null <= s + tol)


def _shared_sides(
    plan: Plan,
    measure: Measure,
    params: Mapping[str, Any],
    B: int,
    rng: np.random.Generator,
    cells: list[tuple[int, int]],
    used: list[int],
    stat: np.ndarray,
    counts: np.ndarray,
    greater: bool,
    bar: Any,
) -> None:
    """A split measure: every side prepared once; per permutation, each column side
    permuted once and combined with its row sides."""
    n = plan.n
    sides = read_sides(plan.srcs, n, used, measure, params)
    rows = {} if measure.permute is not None else {u: plan.srcs[u].read(0, n) for u in used}
    by_col: dict[int, list[tuple[int, int]]] = {}
    for i, j in cells:
        by_col.setdefault(plan.col_u[j], []).append((i, j))
        stat[i, j] = measure.combine_sides(sides[plan.row_u[i]], sides[plan.col_u[j]], **params)
    for perms in permutation_batches(rng, n, B):
        for perm in perms:
            for uj, its in by_col.items():
                side = (
                    measure.permute_side(sides[uj], perm, **params)
                    if measure.permute is not None
                    else measure.prepare_side(rows[uj][perm], **params)
                )
                for i, j in its:
                    null = measure.combine_sides(sides[plan.row_u[i]], side, **params)
                    counts[i, j] += _count(null, stat[i, j], greater)
        bar.update(perms.shape[0])


def _per_cell(
    plan: Plan,
    measure: Measure,
    params: Mapping[str, Any],
    B: int,
    rng: np.random.Generator,
    cells: list[tuple[int, int]],
    used: list[int],
    stat: np.ndarray,
    counts: np.ndarray,
    greater: bool,
    bar: Any,
) -> None:
    """A measure not split: each cell's permutation scorer (the library's moments
    measures reuse each side's centring and whitening), else full calls."""
    n = plan.n
    data = read_sides(plan.srcs, n, used, measure, params)
    data = {u: np.asarray(x, dtype=np.float64) for u, x in data.items()}
    scorers: dict[tuple[int, int], Callable[[np.ndarray], float]] = {}
    for i, j in cells:
        X, Y = data[plan.row_u[i]], data[plan.col_u[j]]
        stat[i, j] = measure.score(X, Y, **params)
        scorers[i, j] = fast_scorer(measure, params, X, Y, B) or _full_calls(measure, params, X, Y)
    for perms in permutation_batches(rng, n, B):
        for perm in perms:
            for (i, j), score in scorers.items():
                counts[i, j] += _count(score(perm), stat[i, j], greater)
        bar.update(perms.shape[0])


def _full_calls(
    measure: Measure, params: Mapping[str, Any], X: np.ndarray, Y: np.ndarray
) -> Callable[[np.ndarray], float]:
    """``perm -> measure(X, Y[perm]).score``, the measure called in full."""
    return lambda perm: measure.score(X, Y[perm], **params)
