"""Intervals and tests for the demo's findings that compare numbers.

A finding such as "conv1 is closer to its final self than conv2 after epoch 1" compares
two numbers measured on the same images in each of several training runs. This module
turns one such comparison into a :class:`Claim`: the two numbers and their difference in
every run, each with an interval, and whether the difference *holds*:

- **across datapoints**, within each run, by the paired block jackknife of
  :func:`svcca.stats.paired_difference` (both cells recomputed without the same block of
  images), its p-values adjusted by Holm's method (:func:`svcca.stats.adjust_pvalues`)
  over every test the finding makes, in every run;
- **across runs**: the stated numbers are means over runs with a Student-t interval over
  runs (the formula of :func:`svcca.stats.across_runs`), or, where the runs are pairs of
  networks sharing seeds, a leave-one-seed-out jackknife (:func:`seed_jackknife`).

A difference holds when every run's test rejects in the claimed direction at level
``ALPHA`` after the adjustment *and* its interval across runs excludes 0: a finding that
holds for one seed only is not a finding. Otherwise the text says that it does not hold,
and why. A statistic the jackknife cannot serve (a crossing epoch, discrete) is tested
across runs only (:func:`claim` without p-values). docs/demo.md states the rules.

References
----------
- S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J.
  Statist. 6, 1979.
- J. N. Arvesen, "Jackknifing U-statistics", Ann. Math. Statist. 40, 1969.
- F. M. T. A. Busing, E. Meijer, R. van der Leeden, "Delete-m jackknife for unequal m",
  Statistics and Computing 9, 1999 (the block jackknife of :mod:`svcca.stats`).
- W. F. Sheppard, "On the calculation of the most probable values of frequency
  constants ...", Proc. London Math. Soc. 29, 1898 (the variance of rounding, 1/12).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import svcca

__all__ = [
    "ALPHA",
    "BLOCKS",
    "LEVEL",
    "Claim",
    "FewRows",
    "cell_statistics",
    "claim",
    "fmt_p",
    "iv",
    "method",
    "say",
    "seed_jackknife",
    "settle",
    "t_interval",
]

LEVEL = 0.95  # intervals
ALPHA = 0.05  # tests, after the adjustment
BLOCKS = 20  # blocks of images for the jackknife (svcca.stats' default)
SEED = 0  # the seed of the rows' hash into blocks


def t_interval(
    values: Any,
    *,
    level: float = LEVEL,
    bounds: tuple[float, float] = (-np.inf, np.inf),
    sd_floor: float = 0.0,
) -> tuple[float, float, float]:
    """Mean over runs with its Student-t interval, cut to ``bounds``.

    ``mean -+ t_{k-1, (1 + level) / 2} sd / sqrt(k)`` for ``k`` values (``sd`` with
    ``ddof=1``), as :func:`svcca.stats.across_runs` forms it per cell; ``sd`` is taken
    at least ``sd_floor`` (the rounding of a value known to whole epochs only). NaN ends
    for one value.
    """
    from scipy.stats import t as student

    v = np.asarray(values, dtype=np.float64).ravel()
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    sd = max(float(v.std(ddof=1)), sd_floor)
    half = float(student.ppf((1 + level) / 2, v.size - 1) * sd / np.sqrt(v.size))
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


def seed_jackknife(
    values: Any,
    pairs: Sequence[tuple[int, int]],
    *,
    level: float = LEVEL,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[float, float, float]:
    """Mean over pairs of seeds with a leave-one-seed-out jackknife interval.

    ``values[m]`` belongs to the pair of seeds ``pairs[m]`` (every pair of ``k`` seeds
    once). Pairs share seeds, so a t-interval over pairs would be too narrow; the mean
    over pairs is a U-statistic of the seeds, and its jackknife drops one seed (every
    pair holding it) at a time: with ``theta_(s)`` the mean over the pairs without seed
    ``s``, ``se^2 = (k - 1) / k sum_s (theta_(s) - mean_s theta_(s))^2``, and the
    interval is ``mean -+ t_{k-1, (1 + level) / 2} se`` (Arvesen 1969). NaN ends below
    three seeds (dropping a seed must leave a pair).
    """
    from scipy.stats import t as student

    v = np.asarray(values, dtype=np.float64).ravel()
    mean = float(v.mean())
    seeds = sorted({s for p in pairs for s in p})
    k = len(seeds)
    if k < 3:
        return mean, float("nan"), float("nan")
    loo = np.array([v[[s not in p for p in pairs]].mean() for s in seeds])
    se = float(np.sqrt((k - 1) / k * np.sum((loo - loo.mean()) ** 2)))
    half = float(student.ppf((1 + level) / 2, k - 1) * se)
    return mean, max(mean - half, bounds[0]), min(mean + half, bounds[1])


@dataclass(frozen=True)
class Claim:
    """ "``first`` exceeds ``second``", measured in each of several runs.

    Attributes
    ----------
    first, second : str
        What is compared ("conv1", "digit 7").
    unit : str
        What a run is ("seed", "pair of seeds").
    values : ndarray, shape (runs, 2)
        The two numbers in each run.
    standard_errors : ndarray, shape (runs, 2)
        Their jackknife standard errors over datapoints (NaN where not computed).
    differences : ndarray, shape (runs,)
        ``first - second`` in each run.
    pvalues : ndarray, shape (runs,)
        Each run's paired test (NaN: no test per run; ``across_pvalue`` decides).
    selection : int
        A Bonferroni factor for a comparison picked out of ``selection`` possible ones
        (the extreme digits among 45 pairs); 1 otherwise.
    first_interval, second_interval, difference_interval : tuple of 3 floats
        ``(mean, low, high)`` over runs.
    across_pvalue : float
        The test across runs (a t-test of ``differences``), for claims without a test per
        run; NaN otherwise.
    adjusted : ndarray, shape (runs,) or (1,)
        P-values after Holm over the finding's family (set by :func:`settle`).
    family : int
        The size of that family.
    holds : bool
    why : str
        Why it does not hold ("" when it holds).
    """

    first: str
    second: str
    unit: str
    values: np.ndarray
    standard_errors: np.ndarray
    differences: np.ndarray
    pvalues: np.ndarray
    selection: int
    first_interval: tuple[float, float, float]
    second_interval: tuple[float, float, float]
    difference_interval: tuple[float, float, float]
    across_pvalue: float = float("nan")
    adjusted: np.ndarray | None = None
    family: int = 0
    holds: bool = False
    why: str = ""

    @property
    def runs(self) -> int:
        return int(self.values.shape[0])

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for ``findings.json`` (NaN, where nothing was measured, as None:
        strict JSON has no NaN)."""
        return {
            "first": self.first,
            "second": self.second,
            "unit": self.unit,
            "values": _plain(self.values),
            "standard_errors": _plain(self.standard_errors),
            "differences": _plain(self.differences),
            "pvalues": _plain(self.pvalues),
            "selection": self.selection,
            "first_interval": _plain(self.first_interval),
            "second_interval": _plain(self.second_interval),
            "difference_interval": _plain(self.difference_interval),
            "across_pvalue": _plain(self.across_pvalue),
            "adjusted": None if self.adjusted is None else _plain(self.adjusted),
            "family": self.family,
            "holds": self.holds,
            "why": self.why,
        }


def _plain(x: Any) -> Any:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return None if np.isnan(a) else float(a)
    return [_plain(v) for v in a]


def claim(
    first: str,
    second: str,
    values: Any,
    *,
    unit: str = "seed",
    standard_errors: Any = None,
    pvalues: Any = None,
    selection: int = 1,
    pairs: Sequence[tuple[int, int]] | None = None,
    bounds: tuple[float, float] = (-np.inf, np.inf),
    resolution: float = 0.0,
) -> Claim:
    """A :class:`Claim` from each run's two numbers (and paired p-values, if tested).

    Without ``pvalues`` the claim is tested across runs (a one-sample t-test of the
    differences, ``k - 1`` degrees of freedom; no spread with a non-zero mean gives
    p = 0, none at all p = 1). With ``pairs`` the runs are pairs of seeds and the
    intervals come from :func:`seed_jackknife`, else from :func:`t_interval`. A
    ``resolution`` (1 for values known to whole epochs) floors the spread across runs at
    the rounding's: ``resolution / sqrt(12)`` for a value, ``resolution / sqrt(6)`` for
    a difference of two (Sheppard), in the intervals and the t-test, so that runs agreeing
    to the epoch are not taken for an exact measurement.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    d = v[:, 0] - v[:, 1]
    span = bounds[1] - bounds[0]

    def iv(x: np.ndarray, b: tuple[float, float], floor: float) -> tuple[float, float, float]:
        if pairs is not None:
            return seed_jackknife(x, pairs, bounds=b)
        return t_interval(x, bounds=b, sd_floor=floor)

    se = np.full_like(v, np.nan) if standard_errors is None else np.asarray(standard_errors, float)
    p = np.full(len(v), np.nan) if pvalues is None else np.asarray(pvalues, dtype=np.float64)
    across = float("nan")
    if pvalues is None:
        across = _t_test(d, resolution / np.sqrt(6))
    return Claim(
        first,
        second,
        unit,
        v,
        se.reshape(v.shape),
        d,
        p,
        selection,
        iv(v[:, 0], bounds, resolution / np.sqrt(12)),
        iv(v[:, 1], bounds, resolution / np.sqrt(12)),
        iv(d, (-span, span), resolution / np.sqrt(6)),
        across,
    )


def _t_test(d: np.ndarray, sd_floor: float = 0.0) -> float:
    from scipy.stats import t as student

    k = d.size
    sd = max(float(d.std(ddof=1)), sd_floor) if k > 1 else 0.0
    mean = float(d.mean())
    if sd == 0.0 or k < 2:
        return 1.0 if mean == 0.0 or k < 2 else 0.0
    return float(2 * student.sf(abs(mean) / (sd / np.sqrt(k)), k - 1))


def settle(claims: Sequence[Claim], *, alpha: float = ALPHA) -> list[Claim]:
    """Holm over every test the claims make together; each claim's verdict.

    Claims tested per run contribute one p-value per run (times their ``selection``
    factor, capped at 1); claims tested across runs one each. A claim holds when every
    one of its adjusted p-values is at most ``alpha``, its differences all have the
    claimed sign (positive) and its interval across runs excludes 0.
    """
    if not claims:
        return []
    chunks = [
        np.minimum(1.0, c.pvalues * c.selection)
        if not np.isnan(c.pvalues).all()
        else np.array([c.across_pvalue])
        for c in claims
    ]
    flat = np.concatenate(chunks)
    adjusted = svcca.stats.adjust_pvalues(flat, method="holm", alpha=alpha).adjusted
    out, at = [], 0
    for c, chunk in zip(claims, chunks, strict=True):
        adj = adjusted[at : at + chunk.size]
        at += chunk.size
        out.append(_verdict(c, adj, flat.size, alpha))
    return out


def _verdict(c: Claim, adj: np.ndarray, family: int, alpha: float) -> Claim:
    per_run = not np.isnan(c.pvalues).all()
    sig = adj <= alpha
    _, lo, hi = c.difference_interval
    positive = c.differences > 0
    if per_run:
        n_ok = int(np.sum(sig & positive))
        n_back = int(np.sum(sig & ~positive))
        if n_ok == c.runs and lo > 0:
            why = ""
        elif n_back == c.runs and hi < 0:
            why = f"reversed: {c.second} exceeds {c.first} in every {c.unit}"
        elif n_ok < c.runs:
            why = f"significant in {n_ok} of {c.runs} {_plural(c.unit)}"
            if n_back:
                why += f", reversed in {n_back}"
        elif np.isnan(lo):
            why = f"no interval across {_plural(c.unit)} (too few of them)"
        else:
            why = f"its interval across {_plural(c.unit)} includes 0"
    else:
        mean = float(c.differences.mean())
        if sig[0] and mean > 0:
            why = ""
        elif sig[0]:
            why = f"reversed: {c.second} exceeds {c.first} across {_plural(c.unit)}"
        else:
            why = f"not significant across {_plural(c.unit)}"
    return replace(c, adjusted=adj, family=family, holds=why == "", why=why)


def _plural(unit: str) -> str:
    return unit.replace("pair of", "pairs of") if unit.startswith("pair") else unit + "s"


def fmt_p(p: float) -> str:
    """A p-value in two significant digits ("0.003", "2e-08", "< 1e-15" below that)."""
    if p < 1e-15:
        return "< 1e-15"
    if p >= 0.001:
        return f"{p:.2g}"
    return f"{p:.0e}"


def _num(v: float, digits: int) -> str:
    out = f"{v:.{digits}f}"
    return out[1:] if out.startswith("-") and float(out) == 0 else out  # no "-0.00"


def iv(t: tuple[float, float, float], digits: int = 2) -> str:
    """``"0.93 [0.91, 0.95]"`` from ``(mean, low, high)``; the mean alone without ends."""
    mean, lo, hi = t
    if np.isnan(lo):
        return _num(mean, digits)
    return f"{_num(mean, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def method(claims: Sequence[Claim]) -> str:
    """How a family of claims was tested, said once: ``"paired block jackknife in each
    seed, Holm over 15 tests"``."""
    c = claims[0]
    if np.isnan(c.pvalues).all():
        return f"t-test across {c.runs} {_plural(c.unit)}, Holm over {c.family} tests"
    picked = (
        f"Bonferroni over the {c.selection} comparisons each was picked from, then "
        if c.selection > 1
        else ""
    )
    return f"paired block jackknife in each {c.unit}, {picked}Holm over {c.family} tests"


def say(c: Claim, *, digits: int = 2, lead: str | None = None, noun: str = "") -> str:
    """The claim in words: the numbers with their intervals, then the verdict.

    ``"conv1 0.97 [0.96, 0.98] vs conv2 0.92 [0.90, 0.94]: difference 0.05 [0.04,
    0.06], holds in each of 5 seeds (largest adjusted p 1e-06)"``; ``lead`` replaces
    everything before the difference (``"conv2 after conv1 by"``), ``noun`` follows it
    (``"epochs"``). :func:`method` says how the p-values were adjusted.
    """
    if lead is None:
        lead = (
            f"{c.first} {iv(c.first_interval, digits)} vs {c.second} "
            f"{iv(c.second_interval, digits)}: difference"
        )
    head = f"{lead} {iv(c.difference_interval, digits)}" + (f" {noun}" if noun else "")
    if c.adjusted is None:
        return head
    per_run = not np.isnan(c.pvalues).all()
    worst = fmt_p(float(np.max(c.adjusted)))
    p = f"largest adjusted p {worst}" if per_run and c.runs > 1 else f"adjusted p {worst}"
    if c.holds:
        where = f" in each of {c.runs} {_plural(c.unit)}" if per_run else ""
        return f"{head}, holds{where} ({p})"
    return f"{head}, does not hold: {c.why} ({p})"


def cell_statistics(X: Any, Y: Any, *, blocks: int = BLOCKS, seed: int = SEED) -> Any:
    """The block statistics of one cell (:class:`svcca.stats.BlockMoments`), one pass."""
    return svcca.stats.BlockMoments.from_arrays(
        np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64), blocks=blocks, seed=seed
    )


class FewRows:
    """Collects the cells whose intervals :mod:`svcca.stats` warns rest on few rows."""

    def __init__(self) -> None:
        self.cells: list[str] = []

    def run(self, label: str, fn: Any, *args: Any, **kw: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", svcca.SVCCAWarning)
            out = fn(*args, **kw)
        for w in caught:
            if issubclass(w.category, svcca.SVCCAWarning) and "20 (p + q)" in str(w.message):
                if label not in self.cells:
                    self.cells.append(label)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return out

    def note(self) -> str:
        if not self.cells:
            return ""
        return (
            f" The datapoint intervals of {', '.join(self.cells)} rest on fewer than 20 (p + q) "
            "rows, where svcca.stats has not verified their coverage (docs/uncertainty.md)."
        )
