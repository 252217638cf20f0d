"""Replicate values to an interval: the numeric summaries every interval shares.

The delete-a-block jackknife (:func:`jackknife_summary`), the bias-corrected normal
bootstrap (:func:`bootstrap_summary`), the scale they are formed on (logit or Fisher's
z, :func:`choose_scale`) and the map back to the measure's range (:func:`on_scale`),
and :func:`jackknife_of_blocks`: a moments measure's jackknife from its per-block
:class:`svcca.Moments`. No measure is called here except through the registry, so
``svcca.stats.interval`` and the engines' intervals per cell (``pairwise(...,
uncertainty="jackknife")``) are one computation.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from svcca._measures._registry import Measure
from svcca._moments import Moments, jackknife_blocks, subtract_moments
from svcca._validation import SVCCAWarning

__all__ = [
    "FEW_ROWS_RATIO",
    "bootstrap_summary",
    "check_level",
    "choose_scale",
    "jackknife_of_blocks",
    "jackknife_summary",
    "measure_summary",
    "on_scale",
    "quiet_scores",
]


# n / (p + q) below which the measured coverage of nominal 95% intervals falls short of
# 95% (binomial test over 2,000 repetitions, docs/uncertainty.md "Coverage, measured"):
# the jackknife covers from 20 (p + q) (0.938 to 0.952), the bootstrap from 40 (p + q)
# (0.929 at 20 (p + q), 0.941 at 40 (p + q)).
FEW_ROWS_RATIO = {"jackknife": 20.0, "bootstrap": 40.0}


def check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (float, int)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95; got {level!r}.")
    return float(level)


def jackknife_summary(
    estimate: float,
    leave_out: Any,
    sizes: Any,
    *,
    level: float = 0.95,
    correct: bool = True,
) -> tuple[float, float, float, float]:
    """Delete-a-group jackknife for unequal groups: ``(corrected, se, low, high)``.

    Parameters
    ----------
    estimate : float
        :math:`\\hat\\theta` on all ``n`` rows.
    leave_out : array_like, shape (g,)
        :math:`\\hat\\theta_{(j)}`: the statistic without block ``j``.
    sizes : array_like, shape (g,)
        :math:`m_j`, rows of each (non-empty) block, summing to ``n``.
    level : float, default 0.95
    correct : bool, default True
        False: no bias correction (``corrected`` is the estimate and the interval is
        centred on it), for a measure whose value depends on ``n``
        (:attr:`svcca.Measure.depends_on_n`), where the correction would extrapolate
        that dependence instead of removing an estimator's bias. The variance is the
        same: a trend in ``n`` shifts every leave-one-block-out value alike.

    Notes
    -----
    With :math:`h_j = n / m_j` (Busing, Meijer & van der Leeden 1999):

    .. math::

        \\hat\\theta_J = g\\hat\\theta - \\sum_j (1 - m_j/n)\\,\\hat\\theta_{(j)},\\quad
        \\tilde\\theta_j = h_j\\hat\\theta - (h_j - 1)\\hat\\theta_{(j)},\\quad
        \\widehat{\\mathrm{var}} = \\frac1g\\sum_j
        \\frac{(\\tilde\\theta_j - \\hat\\theta_J)^2}{h_j - 1},

    and the interval :math:`\\hat\\theta_J \\pm t_{g-1,\\,(1+\\text{level})/2}\\,
    \\widehat{\\mathrm{se}}`. With equal blocks this is Quenouille's bias correction
    and Tukey's variance, :math:`\\frac{g-1}{g}\\sum_j(\\hat\\theta_{(j)} -
    \\bar\\theta_{(\\cdot)})^2`. The bias correction removes the :math:`O(1/n)` term of
    the estimator's bias (CCA's and biased CKA's upward bias at small ``n``).

    References
    ----------
    .. [1] F. M. T. A. Busing, E. Meijer, R. van der Leeden, "Delete-m jackknife for
       unequal m", Statistics and Computing 9, 3-8, 1999.
    .. [2] B. Efron, C. Stein, "The jackknife estimate of variance", Ann. Stat. 9, 1981.
    """
    theta = np.asarray(leave_out, dtype=np.float64)
    m = np.asarray(sizes, dtype=np.float64)
    g = theta.shape[0]
    n = m.sum()
    h = n / m
    corrected = g * estimate - float(np.sum((1.0 - m / n) * theta))
    pseudo = h * estimate - (h - 1.0) * theta
    var = float(np.sum((pseudo - corrected) ** 2 / (h - 1.0)) / g)
    if not correct:
        corrected = float(estimate)
    se = float(np.sqrt(max(var, 0.0)))
    from scipy.stats import t as student  # slow to import: only when used

    t = float(student.ppf(0.5 + level / 2.0, g - 1))
    return corrected, se, corrected - t * se, corrected + t * se


def bootstrap_summary(
    estimate: float, replicates: Any, *, level: float = 0.95, correct: bool = True
) -> tuple[float, float, float, float]:
    """Bias-corrected normal bootstrap interval: ``(corrected, se, low, high)``;
    ``correct=False`` centres it on the estimate (as :func:`jackknife_summary`).

    Notes
    -----
    :math:`\\hat\\theta_{BC} = 2\\hat\\theta - \\bar\\theta^*`, :math:`\\widehat{\\mathrm{se}}`
    the standard deviation of the replicates, interval :math:`\\hat\\theta_{BC} \\pm
    z_{(1+\\text{level})/2}\\,\\widehat{\\mathrm{se}}` (Efron & Tibshirani 1993, ch. 10
    and 13).

    References
    ----------
    .. [1] B. Efron, R. Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall,
       1993.
    """
    r = np.asarray(replicates, dtype=np.float64)
    corrected = 2.0 * estimate - float(r.mean()) if correct else float(estimate)
    se = float(r.std(ddof=1))
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2.0))
    return corrected, se, corrected - z * se, corrected + z * se


class _Scale:
    """A monotone map of the score to the line, its inverse and the inverse's slope."""

    def __init__(self, name: str) -> None:
        self.name = name

    def forward(self, x: Any) -> Any:
        x = np.asarray(x, dtype=np.float64)
        if self.name == "logit":
            return np.log(x) - np.log1p(-x)
        if self.name == "fisher":
            return np.arctanh(x)
        return x

    def back(self, y: float) -> float:
        if self.name == "logit":
            return float(0.5 * (1.0 + np.tanh(0.5 * y)))  # 1 / (1 + e^-y), no overflow
        if self.name == "fisher":
            return float(np.tanh(y))
        return float(y)

    def slope(self, y: float) -> float:
        if self.name == "logit":
            v = self.back(y)
            return v * (1.0 - v)
        if self.name == "fisher":
            return 1.0 - float(np.tanh(y)) ** 2
        return 1.0


def choose_scale(m: Measure, transform: str, values: np.ndarray) -> _Scale:
    """The scale for ``transform`` ("auto": logit for a range of (0, 1), Fisher's z for
    (-1, 1), else none); none where a value lies on the bounds (a score of exactly 1)."""
    if transform not in ("auto", "logit", "fisher", "none"):
        raise ValueError(
            f"transform must be 'auto', 'logit', 'fisher' or 'none'; got {transform!r}."
        )
    name = transform
    if name == "auto":
        lo_hi = (float(m.range[0]), float(m.range[1]))
        name = {(0.0, 1.0): "logit", (-1.0, 1.0): "fisher"}.get(lo_hi, "none")
    lo = 0.0 if name == "logit" else -1.0
    if name != "none" and not ((values > lo) & (values < 1.0)).all():
        if transform != "auto":
            warnings.warn(
                f"transform={transform!r} needs every replicate of {m.name!r} inside "
                f"({lo:g}, 1); some lie on or beyond a bound, so the interval is formed on "
                "the measure's own scale (transform='none').",
                SVCCAWarning,
                stacklevel=4,
            )
        return _Scale("none")
    return _Scale(name)


def on_scale(
    summary: Any,
    scale: _Scale,
    bounds: tuple[float, float],
    estimate: float,
    reps: np.ndarray,
    *args: Any,
    level: float,
    **options: Any,
) -> tuple[float, float, float, float]:
    """``summary`` (jackknife or bootstrap) on the transformed scale, mapped back and
    clipped to the measure's range ``bounds`` (the population value lies in it; a bias
    correction or round-off may step past it); ``options`` go to ``summary``."""
    c, se, lo, hi = summary(
        float(scale.forward(estimate)), scale.forward(reps), *args, level=level, **options
    )
    a, b = bounds

    def clip(v: float) -> float:
        return float(min(max(v, a), b))

    return clip(scale.back(c)), se * scale.slope(c), clip(scale.back(lo)), clip(scale.back(hi))


def measure_summary(
    m: Measure,
    estimate: float,
    reps: np.ndarray,
    sizes: np.ndarray | None,
    level: float,
    transform: str = "auto",
) -> tuple[float, float, float, float, str]:
    """The interval of measure ``m`` from its replicates: the jackknife's (``sizes``, the
    rows of each left-out block) or the bootstrap's (``sizes=None``), on the measure's
    scale (:func:`choose_scale`), bias-corrected unless the measure declares
    :attr:`~svcca.Measure.depends_on_n`. Returns ``(corrected, se, low, high, scale)``."""
    scale = choose_scale(m, transform, np.append(reps, estimate))
    summary, args = (bootstrap_summary, ()) if sizes is None else (jackknife_summary, (sizes,))
    corrected, se, lo, hi = on_scale(
        summary, scale, m.range, estimate, reps, *args, level=level, correct=not m.depends_on_n
    )
    return corrected, se, lo, hi, scale.name


def quiet_scores(fn: Any, items: Any) -> np.ndarray:
    """``fn`` on each item, the measure's own warnings silenced: replicates repeat the
    full-data call's warnings (few samples, conditioning), shown once by that call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SVCCAWarning)
        return np.array([fn(it) for it in items], dtype=np.float64)


def jackknife_of_blocks(
    m: Measure,
    parts: Sequence[Moments],
    params: Mapping[str, Any],
    level: float,
    transform: str = "auto",
    total: Moments | None = None,
) -> tuple[float, float, float, float, float, str, np.ndarray, np.ndarray, np.ndarray]:
    """A moments measure's delete-a-block jackknife from its per-block statistics.

    Parameters
    ----------
    m : Measure
        A moments measure (its function accepts a :class:`svcca.Moments`).
    parts : sequence of Moments, length G
        ``parts[j]``: the statistic of the rows of block ``j`` (empty blocks allowed).
    params : mapping
        The measure's parameters (SVCCA's ``keep``: the directions are refitted on each
        leave-one-block-out statistic, so the whole estimator is resampled).
    level : float
    transform : str, default "auto"
        As in :func:`svcca.stats.interval`.
    total : Moments, optional
        The statistic of all rows (default: the blocks merged).

    Returns
    -------
    estimate, corrected, se, low, high : float
    scale : str
    used : ndarray of int, shape (g,)
        The non-empty blocks.
    sizes : ndarray of int, shape (g,)
    replicates : ndarray, shape (g,)
        The measure without each used block, ``total`` minus the block
        (:func:`svcca.stats.subtract_moments`).
    """
    if total is None:
        total = Moments.empty(parts[0].p, parts[0].q)
        for part in parts:
            total.merge_in_place(part)
    sizes = np.array([part.n for part in parts], dtype=np.int64)
    used = jackknife_blocks(sizes)
    estimate = float(m.score(total, None, **params))
    reps = quiet_scores(
        lambda j: float(m.score(subtract_moments(total, parts[j]), None, **params)), used
    )
    corrected, se, lo, hi, scale = measure_summary(m, estimate, reps, sizes[used], level, transform)
    return estimate, corrected, se, lo, hi, scale, used, sizes[used], reps
