"""Across training runs: the spread over seeds beside the spread over datapoints.

A similarity matrix from one training run answers "how similar are these layers of this
network?". A claim about the architecture or the training recipe needs the same matrix
from several runs (seeds): :func:`across_runs` takes them, each made with
``svcca.pairwise(..., uncertainty="jackknife")``, and reports per cell the mean over runs,
the spread across runs and the within-run standard error (the spread across datapoints),
and flags the cells where the runs disagree by more than the datapoints explain. A finding
that holds for one seed only is not a finding.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from svcca._engines import PairwiseResult
from svcca._measures import MEASURES
from svcca._result import result

__all__ = ["AcrossRuns", "across_runs"]


@result
class AcrossRuns:
    """One comparison over several training runs, cell by cell.

    Every array is shaped ``(n_rows, n_cols)`` like the runs' ``.values``, except
    ``values`` (``(n_runs, n_rows, n_cols)``).

    Attributes
    ----------
    mean : ndarray
        Mean of ``.values`` over the runs.
    std : ndarray
        Standard deviation across runs (``ddof=1``): how much the cell moves with the
        seed.
    min, max : ndarray
        Smallest and largest value over the runs.
    within : ndarray
        Within-run standard error: the root mean square over runs of each run's
        jackknife standard error (the spread across datapoints of one run's value).
    ratio : ndarray
        ``std / within``; NaN where both are round-off (below ``sqrt(eps)`` times the
        value's size: a representation with itself), inf where only ``within`` is.
    flagged : ndarray of bool
        ``ratio > threshold``: the runs disagree by more than one run's datapoints
        explain, so a statement about this cell made from one run may not hold for
        another.
    low, high : ndarray
        Student-t interval at ``level`` for the mean over runs (the population of
        runs): ``mean -+ t_{k-1} std / sqrt(k)`` with ``k`` runs, cut to the measure's
        range (``svcca.MEASURES[measure].range``: a population value lies in it, so the
        cut keeps the coverage). It treats the runs as a sample of seeds; with few runs
        it is wide, as it should be.
    values : ndarray, shape (n_runs, n_rows, n_cols)
        Each run's ``.values``, in the order given.
    rows, cols : tuple
        Labels shared by every run.
    runs : tuple
        Run labels: the mapping's keys, or ``0, 1, ...`` for a sequence.
    measure : str
    level : float
        The runs' interval level (each run's ``uncertainty["level"]``).
    threshold : float
    """

    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    within: np.ndarray
    ratio: np.ndarray
    flagged: np.ndarray
    low: np.ndarray
    high: np.ndarray
    values: np.ndarray
    rows: tuple[Hashable, ...]
    cols: tuple[Hashable, ...]
    runs: tuple[Hashable, ...]
    measure: str
    level: float
    threshold: float

    @property
    def score(self) -> float:
        """The fraction of off-self cells flagged (0 when the runs agree everywhere)."""
        finite = ~np.isnan(self.ratio)
        return float(self.flagged[finite].mean()) if finite.any() else 0.0

    def to_pandas(self) -> Any:
        """One line per cell: ``row, col, mean, std, min, max, within, ratio, flagged,
        low, high``, in row-major order (a long ``pandas.DataFrame``)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_pandas() needs pandas: pip install 'svcca[pandas]'. The matrices are "
                "the attributes .mean, .std, .within, ... with labels .rows and .cols."
            ) from exc
        r, c = self.mean.shape
        table: dict[str, Any] = {
            "row": [self.rows[i] for i in range(r) for _ in range(c)],
            "col": [self.cols[j] for _ in range(r) for j in range(c)],
        }
        for key in ("mean", "std", "min", "max", "within", "ratio", "flagged", "low", "high"):
            table[key] = getattr(self, key).ravel()
        df = pd.DataFrame(table)
        df.attrs.update(measure=self.measure, level=self.level, runs=list(self.runs))
        return df


def across_runs(
    results: Sequence[PairwiseResult] | Mapping[Hashable, PairwiseResult],
    *,
    threshold: float = 1.0,
) -> AcrossRuns:
    """The spread of a comparison across training runs beside its spread across datapoints.

    Parameters
    ----------
    results : sequence or mapping of PairwiseResult
        The same comparison from each of ``k >= 2`` runs (seeds): the same measure,
        settings and row/column labels, each made with
        ``svcca.pairwise(..., uncertainty="jackknife")`` at one level. Name the
        representations by what they are in every run (``{"fc1": X, "fc2": ...}``), not
        by run. A mapping's keys label the runs.
    threshold : float, default 1.0
        A cell is flagged when the across-run standard deviation exceeds ``threshold``
        times the within-run standard error.

    Returns
    -------
    AcrossRuns
        Per cell: ``mean``, ``std`` (across runs), ``min``, ``max``, ``within`` (RMS of
        the runs' standard errors), ``ratio = std / within``, ``flagged``, and a
        Student-t interval ``low``, ``high`` for the mean over runs.

    Notes
    -----
    With :math:`v_r` the cell's value in run :math:`r` and :math:`s_r` its jackknife
    standard error, ``std`` is :math:`\\sqrt{\\sum_r (v_r - \\bar v)^2 / (k-1)}` and
    ``within`` :math:`\\sqrt{\\sum_r s_r^2 / k}`. If the runs differed only by which
    datapoints they were measured on, ``std`` would estimate ``within`` (ratio near 1);
    runs measured on the *same* datapoints share that noise, so any spread there is the
    seed's. A ratio well above 1 says the seed matters more than the sample: report the
    across-run interval (``low``, ``high``), not one run's. The flag is a description,
    not a test; with few runs ``std`` is itself noisy (its relative standard error is
    about :math:`1/\\sqrt{2(k-1)}`).

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((300, 4))
    >>> runs = []
    >>> for seed in range(3):
    ...     r = np.random.default_rng(seed)
    ...     reps = {"a": Z @ r.standard_normal((4, 3)), "b": Z @ r.standard_normal((4, 3))}
    ...     runs.append(svcca.pairwise(reps, measure="cca", uncertainty="jackknife"))
    >>> out = svcca.stats.across_runs(runs)
    >>> out.mean.shape, out.values.shape
    ((2, 2), (3, 2, 2))
    """
    from scipy import stats as sps

    if isinstance(results, Mapping):
        runs = tuple(results)
        items = [results[k] for k in runs]
    elif isinstance(results, Sequence) and not isinstance(results, (str, bytes)):
        items = list(results)
        runs = tuple(range(len(items)))
    else:
        raise TypeError(
            "across_runs takes a sequence (or a mapping run -> result) of PairwiseResult; "
            f"got {type(results).__name__}. Pass [svcca.pairwise(run_0, ...), "
            "svcca.pairwise(run_1, ...), ...]."
        )
    if len(items) < 2:
        raise ValueError(
            f"across_runs needs at least 2 runs to measure a spread across runs; got "
            f"{len(items)}. Compare the same layers in each of several training runs (seeds)."
        )
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive finite number; got {threshold!r}.")
    first = items[0]
    for k, res in zip(runs, items, strict=True):
        if not isinstance(res, PairwiseResult):
            raise TypeError(
                f"Run {k!r} is a {type(res).__name__}, not a PairwiseResult. Make each run's "
                "matrix with svcca.pairwise(..., uncertainty='jackknife')."
            )
        if res.uncertainty is None or res.standard_errors is None:
            raise ValueError(
                f"Run {k!r} has no within-run uncertainty. Make every run's matrix with "
                "svcca.pairwise(..., uncertainty='jackknife'), so the spread across runs "
                "can be set beside the spread across datapoints."
            )
        _same(k, runs[0], "measure", res.measure, first.measure, "the same measure")
        _same(k, runs[0], "rows", res.rows, first.rows, "the same representations, named alike")
        _same(k, runs[0], "cols", res.cols, first.cols, "the same representations, named alike")
        _same(k, runs[0], "settings", dict(res.settings), dict(first.settings), "the same settings")
        _same(
            k,
            runs[0],
            "level",
            res.uncertainty.get("level"),
            first.uncertainty["level"],  # type: ignore[index]
            "the same level=",
        )
    values = np.stack([np.asarray(r.values, dtype=np.float64) for r in items])
    ses = np.stack([np.asarray(r.standard_errors, dtype=np.float64) for r in items])
    k = len(items)
    mean = values.mean(axis=0)
    std = values.std(axis=0, ddof=1)
    within = np.sqrt(np.mean(ses**2, axis=0))
    # spreads below sqrt(eps) of the value's size are round-off (a representation with
    # itself: 1 in every run, standard errors of 1e-16): no spread, ratio NaN
    floor = np.sqrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(mean))
    spread, noise = std > floor, within > floor
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(noise, std / np.where(noise, within, 1.0), np.nan)
    ratio = np.where(~noise & spread, np.inf, ratio)
    flagged = np.nan_to_num(ratio, nan=0.0, posinf=np.inf) > threshold
    level = float(first.uncertainty["level"])  # type: ignore[index]
    half = float(sps.t.ppf(0.5 + level / 2, k - 1)) * std / np.sqrt(k)
    lo, hi = _range(first.measure)
    return AcrossRuns(
        mean=mean,
        std=std,
        min=values.min(axis=0),
        max=values.max(axis=0),
        within=within,
        ratio=ratio,
        flagged=flagged,
        low=np.clip(mean - half, lo, hi),
        high=np.clip(mean + half, lo, hi),
        values=values,
        rows=tuple(first.rows),
        cols=tuple(first.cols),
        runs=runs,
        measure=first.measure,
        level=level,
        threshold=float(threshold),
    )


def _same(run: Hashable, ref: Hashable, what: str, got: Any, want: Any, fix: str) -> None:
    if got != want:
        raise ValueError(
            f"Run {run!r} has {what} {got!r} but run {ref!r} has {want!r}: across_runs compares "
            f"one comparison over runs. Make every run's matrix with {fix}."
        )


def _range(measure: str) -> tuple[float, float]:
    """The registered measure's range, or the whole line for a name not registered."""
    m = MEASURES.get(measure)
    if m is None:
        return (-np.inf, np.inf)
    return (float(m.range[0]), float(m.range[1]))
