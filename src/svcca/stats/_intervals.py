"""Intervals for the population value of any registered measure, from one pass.

:func:`interval` is the single call; :func:`jackknife_summary` and
:func:`bootstrap_summary` turn replicate values into an :class:`IntervalResult`, so an
engine that accumulated :class:`~svcca.stats.BlockMoments` per pair in its own pass
gets the same interval per cell (``interval(block_moments, measure=...)``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from svcca._measures import (
    FEW_ROWS_RATIO,
    MEASURES,
    Measure,
    bootstrap_summary,
    check_level,
    choose_scale,
    jackknife_of_blocks,
    jackknife_summary,
    measure_summary,
    null_correlations,
    quiet_scores,
    warn_null_correlations,
)
from svcca._moments import (
    BlockMoments,
    Moments,
    PoissonMoments,
    block_of,
    check_count,
    check_seed,
    jackknife_blocks,
)
from svcca._result import result
from svcca._validation import SVCCAWarning

__all__ = ["IntervalResult", "bootstrap_summary", "interval", "jackknife_summary"]

Method = Literal["jackknife", "bootstrap"]
Transform = Literal["auto", "logit", "fisher", "none"]


@result
class IntervalResult:
    """An interval for a measure's population value.

    Attributes
    ----------
    measure : str
        The registry name (or the function's name).
    estimate : float
        The measure on all rows.
    corrected : float
        The bias-corrected estimate, clipped (as :attr:`low`, :attr:`high`) to the
        measure's range (jackknife: Quenouille's ``g theta - (g-1) mean``
        for unequal blocks; bootstrap: ``2 theta - mean(theta*)``).
    bias : float
        ``estimate - corrected``: the estimated bias of the plain estimate.
    standard_error : float
        On the measure's scale (the delta method through the transform).
    low, high : float
        The interval; symmetric about :attr:`corrected` on the transformed scale.
    level : float
        Nominal coverage (0.95).
    method : {"jackknife", "bootstrap"}
    transform : {"logit", "fisher", "none"}
        The scale the replicates were combined on (see :func:`interval`).
    blocks : int
        Number of non-empty blocks (jackknife) or of replicates (bootstrap).
    seed : int
    n_samples : int
    replicates : ndarray, shape (blocks,)
        The measure on each leave-one-block-out set (jackknife) or each replicate.
    block_sizes : ndarray, shape (blocks,)
        Rows in each block (jackknife) or in each replicate (bootstrap).
    """

    measure: str
    estimate: float
    corrected: float
    bias: float
    standard_error: float
    low: float
    high: float
    level: float
    method: str
    transform: str
    blocks: int
    seed: int
    n_samples: int
    replicates: np.ndarray
    block_sizes: np.ndarray

    @property
    def interval(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)


def resolve_measure(measure: Any) -> Measure:
    if isinstance(measure, Measure):
        return measure
    if isinstance(measure, str):
        if measure not in MEASURES:
            raise ValueError(
                f"Unknown measure {measure!r}; the registered ones are: "
                f"{', '.join(MEASURES)} (svcca.MEASURES)."
            )
        return MEASURES[measure]
    raise TypeError(
        f"measure must be a registered name (e.g. 'cka_linear') or a svcca.Measure; got "
        f"{type(measure).__name__}."
    )


def _score(m: Measure, X: Any, Y: Any, params: Mapping[str, Any]) -> float:
    return float(m.score(X, Y, **params))


def warn_few_rows(m: Measure, n: int, p: int, q: int, method: str = "jackknife") -> None:
    """Warn where the measured coverage of the intervals breaks down."""
    ratio = FEW_ROWS_RATIO[method]
    if m.kind == "moments" and n < ratio * (p + q):
        warnings.warn(
            f"{method.capitalize()} intervals for {m.name!r} from {n} rows of {p} + {q} "
            f"features: below n = {ratio:g} (p + q) = {ratio * (p + q):g} the measured "
            "coverage of these intervals falls short of their level (docs/uncertainty.md). "
            "Use more rows, or fewer features (svcca.svcca's keep=, or PCA first).",
            SVCCAWarning,
            stacklevel=3,
        )


def interval(
    X: Any,
    Y: Any = None,
    *,
    measure: str | Measure = "cka_linear",
    level: float = 0.95,
    method: Method = "jackknife",
    blocks: int = 20,
    replicates: int = 200,
    seed: int = 0,
    transform: Transform = "auto",
    params: Mapping[str, Any] | None = None,
) -> IntervalResult:
    """An interval for the population value of a similarity measure.

    Parameters
    ----------
    X : array_like, shape (n, p), or BlockMoments, or PoissonMoments
        First representation; or the block statistics a one-pass engine accumulated
        (then leave ``Y`` out: ``blocks``/``replicates`` and ``seed`` are theirs).
    Y : array_like, shape (n, q)
    measure : str or Measure, default "cka_linear"
        A name in :data:`svcca.MEASURES`.
    level : float, default 0.95
    method : {"jackknife", "bootstrap"}, default "jackknife"
        ``"jackknife"``: delete-a-block jackknife over ``blocks`` blocks of rows
        assigned by a seeded hash of the row index (:func:`~svcca.stats.block_of`);
        ``"bootstrap"``: Poisson bootstrap with ``replicates`` weighted replicates
        (moments measures only: a duplicated row is its own nearest neighbour, so the
        bootstrap is wrong for sample measures).
    blocks : int, default 20
    replicates : int, default 200
    seed : int, default 0
    transform : {"auto", "logit", "fisher", "none"}, default "auto"
        The scale on which the replicates are combined, the interval formed and mapped
        back: ``"auto"`` takes the logit for measures in ``[0, 1]`` and Fisher's z
        (``atanh``) for measures in ``[-1, 1]``, none otherwise; ``"none"`` wherever the
        estimate or a replicate lies on a bound (a score of exactly 1). On the raw scale
        the skewed sampling distribution of linear CKA near 0.3 gave 0.924 coverage for
        a nominal 0.95 at n = 20 (p + q) over 2,000 repetitions, against 0.938 on the
        logit scale (docs/uncertainty.md).
    params : mapping, optional
        The measure's parameters (``{"keep": 10}`` for SVCCA).

    Returns
    -------
    IntervalResult

    Notes
    -----
    Moments measures take the one-pass path: one :class:`svcca.Moments` per block
    (:class:`~svcca.stats.BlockMoments`), each leave-one-block-out statistic the total
    minus a block (:func:`~svcca.stats.subtract_moments`), the measure evaluated on
    each: ``G + 1`` evaluations of the measure on ``(p + q)^2`` numbers, no second look
    at the rows. Sample measures (Gram matrices, RDMs, neighbours) recompute the measure
    on the rows of each leave-one-block-out set: ``G`` evaluations on ``n (1 - 1/G)``
    rows. Both use :func:`jackknife_summary`. The jackknife is the default: it corrects
    the bias, its coverage was measured (docs/uncertainty.md) and it costs one pass,
    where the bootstrap costs ``B`` times the products.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 4)); Y = X + rng.standard_normal((500, 4))
    >>> r = svcca.stats.interval(X, Y, measure="cca", blocks=20, seed=0)
    >>> bool(r.low < r.corrected < r.high), r.method, r.blocks
    (True, 'jackknife', 20)
    """
    m = resolve_measure(measure)
    level = check_level(level)
    params = dict(params or {})
    m.check_params(params)
    if method not in ("jackknife", "bootstrap"):
        raise ValueError(f"method must be 'jackknife' or 'bootstrap'; got {method!r}.")
    choose_scale(m, transform, np.zeros(0))  # validates the name
    if isinstance(X, (BlockMoments, PoissonMoments)):
        if Y is not None:
            raise ValueError("Give block statistics alone (they hold both sides); Y must be None.")
        if m.kind != "moments":
            raise ValueError(
                f"Measure {m.name!r} is a {m.kind} measure: it needs the rows, not their "
                "block statistics. Pass the arrays X and Y instead."
            )
        return _from_statistics(m, X, level, params, transform)
    if isinstance(X, Moments):
        raise TypeError(
            "A single Moments holds no blocks to resample; accumulate a "
            "svcca.stats.BlockMoments (one Moments per block) in your pass, or pass the arrays."
        )
    blocks = check_count(blocks, "blocks", 2)
    seed = check_seed(seed)
    if m.kind == "moments":
        if method == "jackknife":
            stats: BlockMoments | PoissonMoments = BlockMoments.from_arrays(
                X, Y, blocks=blocks, seed=seed
            )
        else:
            stats = PoissonMoments.from_arrays(X, Y, replicates=replicates, seed=seed)
        return _from_statistics(m, stats, level, params, transform)
    if method == "bootstrap":
        raise ValueError(
            f"Measure {m.name!r} is a {m.kind} measure: the bootstrap duplicates rows, and a "
            "duplicated row is its own nearest neighbour (and its Gram/RDM entries are "
            "repeated), which biases the measure. Use method='jackknife' (a block "
            "jackknife on the rows)."
        )
    return _rows_jackknife(m, X, Y, level, blocks, seed, params, transform)


def _from_statistics(
    m: Measure,
    stats: BlockMoments | PoissonMoments,
    level: float,
    params: Mapping[str, Any],
    transform: str,
) -> IntervalResult:
    total = stats.total
    if total.n < 3:
        raise ValueError(f"An interval needs at least 3 rows; got {total.n}.")
    method = "jackknife" if isinstance(stats, BlockMoments) else "bootstrap"
    warn_few_rows(m, total.n, total.p, total.q, method)
    zero, k = null_correlations(m, total, params)
    warn_null_correlations(m.name, [("(X, Y)", zero, k)], stacklevel=4)
    if isinstance(stats, BlockMoments):
        parts = [stats.block(j) for j in range(stats.blocks)]
        estimate, corrected, se, lo, hi, scale_name, used, sizes, reps = jackknife_of_blocks(
            m, parts, params, level, transform, total
        )
        return IntervalResult(
            m.name, estimate, corrected, estimate - corrected, se, lo, hi, level,
            "jackknife", scale_name, int(used.size), stats.seed, total.n, reps, sizes,
        )  # fmt: skip
    estimate = _score(m, total, None, params)
    reps = quiet_scores(
        lambda r: _score(m, stats.replicate(r), None, params), range(stats.replicates)
    )
    corrected, se, lo, hi, scale = measure_summary(m, estimate, reps, None, level, transform)
    sizes = np.array([stats.replicate(r).n for r in range(stats.replicates)])
    return IntervalResult(
        m.name, estimate, corrected, estimate - corrected, se, lo, hi, level,
        "bootstrap", scale, stats.replicates, stats.seed, total.n, reps, sizes,
    )  # fmt: skip


def _rows_jackknife(
    m: Measure,
    X: Any,
    Y: Any,
    level: float,
    blocks: int,
    seed: int,
    params: Mapping[str, Any],
    transform: str,
) -> IntervalResult:
    X = np.asarray(X)
    Yv = None if Y is None else np.asarray(Y)
    n = X.shape[0]
    if Yv is not None and Yv.shape[0] != n:
        raise ValueError(f"X has {n} rows and Y has {Yv.shape[0]}; both must hold the same rows.")
    if n < 3:
        raise ValueError(f"An interval needs at least 3 rows; got {n}.")
    b = block_of(np.arange(n), blocks, seed)
    sizes = np.bincount(b, minlength=blocks)
    used = jackknife_blocks(sizes)
    estimate = _score(m, X, Yv, params)

    def drop(j: int) -> float:
        keep = b != j
        return _score(m, X[keep], None if Yv is None else Yv[keep], params)

    reps = quiet_scores(drop, used)
    corrected, se, lo, hi, scale = measure_summary(m, estimate, reps, sizes[used], level, transform)
    return IntervalResult(
        m.name, estimate, corrected, estimate - corrected, se, lo, hi, level,
        "jackknife", scale, int(used.size), seed, n, reps, sizes[used],
    )  # fmt: skip
