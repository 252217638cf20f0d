"""Tests between cells and over families of cells: a paired jackknife test for the
difference of two scores on the same datapoints, and Holm / Benjamini-Hochberg
adjusted p-values."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from svcca._engines import PairwiseResult
from svcca._measures import MEASURES
from svcca._moments import (
    BlockMoments,
    block_of,
    check_count,
    check_seed,
    jackknife_blocks,
    subtract_moments,
)
from svcca._result import result
from svcca._validation import SVCCAWarning
from svcca.stats._intervals import (
    check_level,
    jackknife_summary,
    quiet_scores,
    resolve_measure,
    warn_few_rows,
)

__all__ = [
    "AdjustedPValues",
    "PairedDifference",
    "adjust_pvalues",
    "cell_difference",
    "paired_difference",
]


@result
class PairedDifference:
    """The difference of two scores on the same datapoints, with its jackknife test.

    Attributes
    ----------
    measure : str
    first, second : float
        The two scores on all rows.
    difference : float
        ``first - second``.
    corrected : float
        The jackknife bias-corrected difference.
    standard_error : float
    low, high : float
        Interval for the population difference at :attr:`level`.
    statistic : float
        ``corrected / standard_error``, Student's t with ``blocks - 1`` degrees of freedom.
    pvalue : float
        Two-sided, against "the two population scores are equal".
    level : float
    blocks : int
    seed : int
    n_samples : int
    replicates : ndarray, shape (blocks,)
        The difference on each leave-one-block-out set.
    """

    measure: str
    first: float
    second: float
    difference: float
    corrected: float
    standard_error: float
    low: float
    high: float
    statistic: float
    pvalue: float
    level: float
    blocks: int
    seed: int
    n_samples: int
    replicates: np.ndarray

    @property
    def interval(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)


def _pair(obj: Any, name: str) -> tuple[Any, Any]:
    if isinstance(obj, BlockMoments):
        return obj, None
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise TypeError(
            f"{name} must be a pair (X, Y) of arrays over the same rows, or a "
            f"svcca.stats.BlockMoments; got {type(obj).__name__}."
        )
    return obj[0], obj[1]


def paired_difference(
    first: Any,
    second: Any,
    *,
    measure: Any = "cka_linear",
    level: float = 0.95,
    blocks: int = 20,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> PairedDifference:
    """Is the score of ``first`` larger than that of ``second``? A paired block jackknife.

    Parameters
    ----------
    first, second : (X, Y) pairs of arrays, or BlockMoments
        Two cells whose rows are the same datapoints (``(A, B)`` and ``(A, C)`` for "is
        ``a`` closer to ``b`` than to ``c``?"). Block statistics must share ``blocks``
        and ``seed`` (they then hold the same rows in each block).
    measure : str or Measure, default "cka_linear"
    level : float, default 0.95
    blocks : int, default 20
    seed : int, default 0
    params : mapping, optional
        The measure's parameters.

    Returns
    -------
    PairedDifference

    Notes
    -----
    Both scores are recomputed without the same block ``j`` (one-pass block statistics
    for moments measures; the rows for sample measures), so the replicates of
    :math:`d = \\theta_1 - \\theta_2` carry the covariance of the two scores, which
    sharing datapoints makes large: an unpaired comparison of two intervals would be
    far too conservative. :func:`~svcca.stats.interval`'s jackknife gives the corrected
    difference and its standard error; :math:`t = \\hat d_J / \\widehat{\\mathrm{se}}`
    is referred to Student's t with ``g - 1`` degrees of freedom. The measured type I
    error is in docs/uncertainty.md.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((600, 4))
    >>> B, C = A + rng.standard_normal((600, 4)), A + 3 * rng.standard_normal((600, 4))
    >>> r = svcca.stats.paired_difference((A, B), (A, C), measure="cka_linear")
    >>> bool(r.difference > 0 and r.pvalue < 0.01)
    True
    """
    m = resolve_measure(measure)
    level = check_level(level)
    params = dict(params or {})
    m.check_params(params)
    x1, y1 = _pair(first, "first")
    x2, y2 = _pair(second, "second")
    if isinstance(x1, BlockMoments) or isinstance(x2, BlockMoments):
        if not (isinstance(x1, BlockMoments) and isinstance(x2, BlockMoments)):
            raise TypeError("Give both cells as BlockMoments, or both as (X, Y) pairs.")
        if (x1.blocks, x1.seed) != (x2.blocks, x2.seed) or not np.array_equal(x1.sizes, x2.sizes):
            raise ValueError(
                f"The two cells' block statistics differ (blocks {x1.blocks} and {x2.blocks}, "
                f"seeds {x1.seed} and {x2.seed}, rows {x1.rows_seen} and {x2.rows_seen}): a "
                "paired test needs the same rows in the same blocks. Accumulate both with "
                "the same blocks= and seed= over the same rows."
            )
        b1, b2 = x1, x2
        return _paired_moments(m, b1, b2, level, params)
    n = np.asarray(x1).shape[0]
    for name, a in (("Y of first", y1), ("X of second", x2), ("Y of second", y2)):
        if np.asarray(a).shape[0] != n:
            raise ValueError(
                f"{name} has {np.asarray(a).shape[0]} rows and X of first has {n}: the two "
                "cells must hold the same datapoints, one row each, in the same order."
            )
    blocks = check_count(blocks, "blocks", 2)
    seed = check_seed(seed)
    if m.kind == "moments":
        return _paired_moments(
            m,
            BlockMoments.from_arrays(x1, y1, blocks=blocks, seed=seed),
            BlockMoments.from_arrays(x2, y2, blocks=blocks, seed=seed),
            level,
            params,
        )
    arrays = [np.asarray(a) for a in (x1, y1, x2, y2)]
    b = block_of(np.arange(n), blocks, seed)
    sizes = np.bincount(b, minlength=blocks)
    used = jackknife_blocks(sizes)
    s1 = float(m.score(arrays[0], arrays[1], **params))
    s2 = float(m.score(arrays[2], arrays[3], **params))

    def drop(j: int) -> float:
        k = b != j
        a = [v[k] for v in arrays]
        return float(m.score(a[0], a[1], **params)) - float(m.score(a[2], a[3], **params))

    reps = quiet_scores(drop, used)
    return _summary(m.name, s1, s2, reps, sizes[used], level, seed, n, not m.depends_on_n)


def _paired_moments(
    m: Any, b1: BlockMoments, b2: BlockMoments, level: float, params: Mapping[str, Any]
) -> PairedDifference:
    t1, t2 = b1.total, b2.total
    warn_few_rows(m, t1.n, t1.p, t1.q)
    warn_few_rows(m, t2.n, t2.p, t2.q)
    s1 = float(m.score(t1, None, **params))
    s2 = float(m.score(t2, None, **params))
    sizes = b1.sizes
    used = jackknife_blocks(sizes)

    def drop(j: int) -> float:
        return float(m.score(subtract_moments(t1, b1.block(j)), None, **params)) - float(
            m.score(subtract_moments(t2, b2.block(j)), None, **params)
        )

    reps = quiet_scores(drop, used)
    return _summary(m.name, s1, s2, reps, sizes[used], level, b1.seed, t1.n, not m.depends_on_n)


def _summary(
    name: str,
    s1: float,
    s2: float,
    reps: np.ndarray,
    sizes: np.ndarray,
    level: float,
    seed: int,
    n: int,
    correct: bool = True,
) -> PairedDifference:
    from scipy.stats import t as student

    d = s1 - s2
    corrected, se, lo, hi = jackknife_summary(d, reps, sizes, level=level, correct=correct)
    g = int(sizes.shape[0])
    if se > 0:
        stat = corrected / se
        p = float(2.0 * student.sf(abs(stat), g - 1))
    else:  # identical cells: no difference on any replicate
        stat, p = (0.0, 1.0) if corrected == 0 else (float(np.sign(corrected)) * np.inf, 0.0)
    return PairedDifference(
        name, s1, s2, d, corrected, se, lo, hi, float(stat), p, level, g, seed, n, reps
    )


Adjust = Literal["holm", "bh"]


@result
class AdjustedPValues:
    """P-values adjusted for a family of tests.

    Attributes
    ----------
    pvalues : ndarray
        The p-values given (NaN entries are outside the family).
    adjusted : ndarray, same shape
        Adjusted p-values (NaN where the input was NaN): reject where
        ``adjusted <= alpha``.
    rejected : ndarray of bool, same shape
    method : {"holm", "bh"}
    alpha : float
    family_size : int
        ``m``: the number of non-NaN p-values.
    """

    pvalues: np.ndarray
    adjusted: np.ndarray
    rejected: np.ndarray
    method: str
    alpha: float
    family_size: int


def adjust_pvalues(
    pvalues: Any,
    *,
    method: Adjust = "holm",
    alpha: float = 0.05,
    permutations: int | None = None,
    cells: Sequence[tuple[Hashable, Hashable]] | None = None,
) -> AdjustedPValues:
    """Holm (family-wise error) or Benjamini-Hochberg (false discovery rate) adjustment.

    Parameters
    ----------
    pvalues : PairwiseResult, or array_like of any shape
        A result of ``svcca.pairwise(..., test=...)`` or ``svcca.torch.compare(...,
        test=...)``: its ``.pvalues`` over the family of its distinct tests (a square
        matrix tests each pair once: its upper triangle; the adjusted matrix mirrors
        it), and for permutation p-values its number of permutations. Or one p-value
        per cell (a matrix of cells is fine); NaN marks a cell outside the family.
    method : {"holm", "bh"}, default "holm"
    alpha : float, default 0.05
    permutations : int, optional
        The number of permutations ``B`` behind the p-values, if they are permutation
        p-values: their smallest attainable value is ``1 / (B + 1)``, and a warning
        (:class:`svcca.SVCCAWarning`) says when it exceeds the smallest threshold of the
        correction, ``alpha / m``: then no cell can be declared significant alone.
        Read from a result's ``.test`` when not given.
    cells : sequence of (row, col) label pairs, optional
        With a result: the family, named by labels (``[("fc1", "fc1"), ("fc2",
        "fc2")]`` for the diagonal of two runs' layers); default all its tests. In a
        square matrix ``(a, b)`` and ``(b, a)`` are the same test, counted once.

    Returns
    -------
    AdjustedPValues

    Notes
    -----
    With the ``m`` p-values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`:

    - Holm (1979): :math:`\\tilde p_{(i)} = \\max_{j \\le i} \\min(1, (m - j + 1)
      p_{(j)})`; controls the family-wise error rate under any dependence.
    - Benjamini & Hochberg (1995): :math:`\\tilde p_{(i)} = \\min_{j \\ge i} \\min(1,
      m p_{(j)} / j)`; controls the false discovery rate for independent or positively
      dependent tests (cells of one similarity matrix share representations, so their
      tests are positively dependent in the usual case; Benjamini & Yekutieli 2001).

    References
    ----------
    .. [1] S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J.
       Statist. 6, 65-70, 1979.
    .. [2] Y. Benjamini, Y. Hochberg, "Controlling the false discovery rate", J. R.
       Statist. Soc. B 57, 289-300, 1995.

    Examples
    --------
    >>> from svcca.stats import adjust_pvalues
    >>> adjust_pvalues([0.01, 0.04, 0.03], method="holm").adjusted.round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_pvalues([0.01, 0.04, 0.03], method="bh").adjusted.round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    if isinstance(pvalues, PairwiseResult):
        return _adjust_result(pvalues, method, alpha, permutations, cells)
    if cells is not None:
        raise TypeError(
            "cells= names cells by their labels, which only a PairwiseResult has; for an "
            "array, mark the cells outside the family with NaN."
        )
    return _adjust(pvalues, method, alpha, permutations)


def _adjust(
    pvalues: Any, method: Adjust, alpha: float, permutations: int | None, stacklevel: int = 3
) -> AdjustedPValues:
    if method not in ("holm", "bh"):
        raise ValueError(f"method must be 'holm' or 'bh'; got {method!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}.")
    p = np.array(pvalues, dtype=np.float64)
    inside = ~np.isnan(p)
    vals = p[inside]
    if vals.size == 0:
        raise ValueError("pvalues holds no p-value (all NaN or empty); give at least one.")
    if ((vals < 0) | (vals > 1)).any():
        bad = vals[(vals < 0) | (vals > 1)][0]
        raise ValueError(f"p-values must lie in [0, 1]; got {bad!r}.")
    mm = vals.size
    if permutations is not None:
        permutations = check_count(permutations, "permutations", 1)
        floor = 1.0 / (permutations + 1)
        if floor > alpha / mm:
            need = int(np.ceil(mm / alpha)) - 1
            warnings.warn(
                f"With {permutations} permutations the smallest p-value is 1/(B + 1) = "
                f"{floor:.3g}, above the smallest threshold of the correction over {mm} "
                f"cells, alpha / m = {alpha / mm:.3g}: no cell can be significant on its "
                f"own. Use at least B = m / alpha - 1 = {need} permutations.",
                SVCCAWarning,
                stacklevel=stacklevel,
            )
    order = np.argsort(vals, kind="stable")
    s = vals[order]
    rank = np.arange(1, mm + 1)
    if method == "holm":
        adj_sorted = np.maximum.accumulate(np.minimum(1.0, (mm - rank + 1) * s))
    else:
        adj_sorted = np.minimum.accumulate(np.minimum(1.0, mm * s / rank)[::-1])[::-1]
    adj = np.empty(mm)
    adj[order] = adj_sorted
    out = np.full(p.shape, np.nan)
    out[inside] = adj
    rejected = np.zeros(p.shape, dtype=bool)
    rejected[inside] = adj <= alpha
    return AdjustedPValues(p, out, rejected, method, float(alpha), int(mm))


def _adjust_result(
    result: PairwiseResult,
    method: Adjust,
    alpha: float,
    permutations: int | None,
    cells: Sequence[tuple[Hashable, Hashable]] | None,
) -> AdjustedPValues:
    """:func:`adjust_pvalues` over a family of a result's cells, mirrored where square."""
    if result.pvalues is None or result.test is None:
        raise ValueError(
            "This result has no p-values; make it with test=: svcca.pairwise(..., "
            "test='permutation') or test='asymptotic' (svcca.torch.compare: "
            "test='asymptotic')."
        )
    square = result.rows == result.cols
    p = np.array(result.pvalues, dtype=np.float64)
    family = ~np.isnan(p)
    if square:
        family &= np.triu(np.ones(p.shape, dtype=bool), 1)
    if cells is not None:
        named = np.zeros(p.shape, dtype=bool)
        for cell in cells:
            if not (isinstance(cell, tuple) and len(cell) == 2):
                raise TypeError(f"cells= holds (row, col) label pairs; got {cell!r}.")
            i, j = result.position(*cell)
            if square and j < i:
                i, j = j, i
            if not family[i, j]:
                raise ValueError(
                    f"Cell {cell!r} has no test (a representation with itself has none); "
                    "leave it out of cells=."
                )
            named[i, j] = True
        family = named
    if permutations is None and result.test.get("method") == "permutation":
        permutations = int(result.test["permutations"])
    out = _adjust(np.where(family, p, np.nan), method, alpha, permutations, stacklevel=4)
    if not square:
        return out
    adjusted, rejected = np.array(out.adjusted), np.array(out.rejected)
    lower = np.tril_indices(p.shape[0], -1)
    adjusted[lower] = adjusted.T[lower]
    rejected[lower] = rejected.T[lower]
    return AdjustedPValues(
        np.where(family | family.T, p, np.nan), adjusted, rejected, method, alpha, out.family_size
    )


def cell_difference(
    result: PairwiseResult,
    first: tuple[Hashable, Hashable],
    second: tuple[Hashable, Hashable],
) -> PairedDifference:
    """Is cell ``first`` of a matrix larger than cell ``second``? The paired jackknife of
    :func:`paired_difference`, from the result alone.

    Parameters
    ----------
    result : PairwiseResult
        Made with ``uncertainty="jackknife"`` (``svcca.pairwise`` or
        ``svcca.torch.compare``): it keeps each cell's value without each block
        (``.replicates``), on the same rows for every cell.
    first, second : (row, col) labels
        The two cells, e.g. ``("fc1", "final.fc1")`` and ``("fc2", "final.fc2")``.

    Returns
    -------
    PairedDifference
        As :func:`paired_difference` gives it for the two cells' representations with
        the same ``blocks`` and ``seed`` (equal to round-off), at the result's level.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((600, 4))
    >>> reps = {"a": A, "b": A + rng.standard_normal((600, 4)),
    ...         "c": A + 3 * rng.standard_normal((600, 4))}
    >>> r = svcca.pairwise(reps, measure="cka_linear", uncertainty="jackknife")
    >>> d = svcca.stats.cell_difference(r, ("a", "b"), ("a", "c"))
    >>> bool(d.difference > 0 and d.pvalue < 0.01)
    True
    """
    if not isinstance(result, PairwiseResult):
        raise TypeError(
            f"result must be a svcca.PairwiseResult; got {type(result).__name__}. For "
            "two pairs of arrays, call svcca.stats.paired_difference((A, B), (A, C))."
        )
    if result.replicates is None or result.uncertainty is None:
        raise ValueError(
            "cell_difference needs each cell's jackknife replicates; this result has "
            "none. Make it with uncertainty='jackknife' (svcca.pairwise or "
            "svcca.torch.compare)."
        )
    i1, j1 = result.position(*first)
    i2, j2 = result.position(*second)
    u = result.uncertainty
    reps = result.replicates[:, i1, j1] - result.replicates[:, i2, j2]
    sizes = np.asarray(u["block_sizes"], dtype=np.int64)
    s1, s2 = float(result.values[i1, j1]), float(result.values[i2, j2])
    m = MEASURES.get(result.measure)
    return _summary(
        result.measure,
        s1,
        s2,
        reps,
        sizes,
        float(u["level"]),
        int(u["seed"]),
        result.n_samples,
        m is None or not m.depends_on_n,
    )
