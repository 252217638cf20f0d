"""Statistics for similarity measures: null baselines, permutation tests, bootstrap
confidence intervals, Bartlett's test, and how many datapoints a comparison needs; and
from one pass over the data (docs/uncertainty.md): block-jackknife and Poisson-bootstrap
intervals (:func:`interval`), paired tests between cells (:func:`paired_difference`, and
:func:`cell_difference` on a matrix's result), multiple-comparison control over a
family of cells (:func:`adjust_pvalues`) and held-out scores
(:func:`cross_validate`); the spread of a comparison across training runs beside its
spread across datapoints (:func:`across_runs`).

Every function takes a *measure*: a name of :data:`svcca.MEASURES` (``"cka_rbf"``, with
``params={"bandwidth": 0.5}``), a :class:`svcca.Measure`, or any callable ``measure(X,
Y)`` returning a result with ``.score`` (``svcca.cka``, ``functools.partial(svcca.cka,
debiased=True)``, or your own). A measure a statistic cannot serve (a minibatch
estimator) is refused with the reason.
"""

from svcca._moments import (
    BlockMoments,
    PoissonMoments,
    block_of,
    poisson_weights,
    subtract_moments,
)
from svcca.stats._bartlett import BartlettResult, bartlett
from svcca.stats._crossval import CrossValidated, cross_validate, held_out_score
from svcca.stats._intervals import IntervalResult, interval
from svcca.stats._multiple import (
    AdjustedPValues,
    PairedDifference,
    adjust_pvalues,
    cell_difference,
    paired_difference,
)
from svcca.stats._null import DatapointsCurve, NullBaseline, datapoints_curve, null_baseline
from svcca.stats._resampling import (
    BootstrapResult,
    PermutationResult,
    bootstrap,
    permutation_test,
)
from svcca.stats._runs import AcrossRuns, across_runs

__all__ = [
    "AcrossRuns",
    "across_runs",
    "AdjustedPValues",
    "PairedDifference",
    "adjust_pvalues",
    "cell_difference",
    "paired_difference",
    "BartlettResult",
    "CrossValidated",
    "cross_validate",
    "held_out_score",
    "BlockMoments",
    "IntervalResult",
    "PoissonMoments",
    "block_of",
    "interval",
    "poisson_weights",
    "subtract_moments",
    "BootstrapResult",
    "DatapointsCurve",
    "NullBaseline",
    "PermutationResult",
    "bartlett",
    "bootstrap",
    "datapoints_curve",
    "null_baseline",
    "permutation_test",
]
