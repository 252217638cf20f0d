"""Coverage by simulation: nominal 95% intervals cover the population value of
populations whose similarity is known in closed form (unc_populations.py).

The slow versions (``-m slow``) run 2,000 repetitions per method and measure and test
the coverage against 0.95 with a binomial test; the quick ones run a few dozen with a
loose binomial bound. Measured numbers: docs/uncertainty.md.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pytest
from unc_populations import RHO, draw, population_cca, population_cka

import svcca

TRUTH = {"cca": population_cca(), "cka_linear": population_cka()}
DIMS = 2 * RHO.shape[0]  # p + q


def _coverage(
    measure: str, method: Literal["jackknife", "bootstrap"], n: int, reps: int, seed: int = 21
) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        for i in range(reps):
            X, Y = draw(n, rng)
            r = svcca.stats.interval(
                X, Y, measure=measure, method=method, blocks=20, replicates=100, seed=i
            )
            hits += r.low <= TRUTH[measure] <= r.high
    return hits / reps


def test_population_values_in_closed_form_match_a_large_sample():
    X, Y = draw(200_000, np.random.default_rng(0))
    assert svcca.cca(X, Y).score == pytest.approx(TRUTH["cca"], abs=0.005)
    assert svcca.cka(X, Y).score == pytest.approx(TRUTH["cka_linear"], abs=0.01)


@pytest.mark.parametrize(("measure", "reps"), [("cka_linear", 60), ("cca", 30)])
def test_jackknife_intervals_cover_quick(measure, reps):
    # Binomial(60, 0.95) falls to 49 or below with probability 3e-4; Binomial(30, 0.95)
    # to 24 or below with 2e-3.
    floor = {60: 49 / 60, 30: 24 / 30}[reps]
    assert _coverage(measure, "jackknife", 20 * DIMS, reps) >= floor


# Measured (docs/uncertainty.md): the jackknife covers from n = 20 (p + q), the
# bootstrap from 40 (p + q) (0.929 / 0.930 at 20 (p + q): interval() warns there).
@pytest.mark.slow
@pytest.mark.parametrize("measure", ["cca", "cka_linear"])
@pytest.mark.parametrize(
    ("method", "ratio"), [("jackknife", 20), ("jackknife", 40), ("bootstrap", 40)]
)
def test_intervals_cover_at_their_level(measure, method, ratio):
    from scipy.stats import binomtest

    reps = 2000
    cov = _coverage(measure, method, ratio * DIMS, reps)
    assert binomtest(round(cov * reps), reps, 0.95).pvalue > 0.01, cov
