"""Permutation p-values are uniform under independence (issue 21, "Verified, not assumed").

With X and Y drawn independently (rows i.i.d.), the observed statistic and the B
statistics of randomly shuffled pairings are exchangeable, so the rank of the observed one
among the B + 1 is uniform and the p-value ``(1 + #{s_b >= s}) / (1 + B)`` is uniform on the
grid {1/(B+1), 2/(B+1), ..., 1} (ties have probability zero for these continuous
statistics). We draw many independent (X, Y) at a fixed seed and test the p-values against
that discrete uniform twice:

- a chi-square goodness-of-fit over the B + 1 grid values (exact counts expected equal);
- a Kolmogorov-Smirnov test against the discrete CDF ``floor((B+1) x) / (B+1)``: the
  largest gap between the two step functions (taken on the grid) with the p-value of
  ``scipy.stats.kstwo``, which is conservative for a discrete law (Conover 1972), so it can
  only err towards passing; it guards against a shift, the chi-square against shape.

Both at level 0.001. Not flaky: every draw is seeded, so the outcome was decided once, when
the test was written (the p-values observed are in the asserts' messages), and it is the
same on every run; the level only says how surprising a failure would be had the seed been
drawn afresh. A dependent pair is checked to fail the same test, so the check has teeth.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

import svcca

LEVEL = 1e-3


def _pvalues(measure, reps, n, dim, B, seed, coupling=0.0):
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for r in range(reps):
        X = rng.standard_normal((n, dim))
        Y = coupling * X + rng.standard_normal((n, dim))
        out[r] = svcca.stats.permutation_test(
            measure, X, Y, n_permutations=B, seed=int(rng.integers(2**32))
        ).pvalue
    return out


def _uniformity(p, B):
    """(chi-square p-value, KS p-value) of p against the uniform on {1/(B+1), ..., 1}."""
    k = np.rint(p * (B + 1)).astype(int)  # 1 .. B+1
    np.testing.assert_allclose(k / (B + 1), p, rtol=0, atol=1e-12)  # p is on the grid
    assert k.min() >= 1 and k.max() <= B + 1
    counts = np.bincount(k - 1, minlength=B + 1)
    chi2 = sps.chisquare(counts).pvalue

    # KS distance on the grid, where the two step CDFs can differ most (scipy.stats.kstest
    # compares F at a tied point with the ECDF just below it, i.e. counts the step itself)
    ecdf = np.cumsum(counts) / len(p)
    grid = np.arange(1, B + 2) / (B + 1)
    distance = float(np.max(np.abs(ecdf - grid)))
    ks = sps.kstwo.sf(distance, len(p))  # continuous-law p-value: conservative here
    return float(chi2), float(ks)


# reps chosen so each grid value expects >= 20 draws (the chi-square approximation holds)
@pytest.mark.parametrize(
    ("measure", "reps"), [("cka_linear", 400), ("cka_rbf", 400), ("cca", 200), ("rsa", 200)]
)
def test_permutation_pvalues_are_uniform_under_independence(measure, reps):
    B = 9
    p = _pvalues(measure, reps, n=24, dim=3, B=B, seed=2026)
    chi2, ks = _uniformity(p, B)
    assert chi2 > LEVEL and ks > LEVEL, (measure, chi2, ks)


def test_the_uniformity_check_rejects_dependent_data():
    B = 9
    p = _pvalues("cka_linear", 200, n=24, dim=3, B=B, seed=7, coupling=0.5)
    chi2, ks = _uniformity(p, B)
    assert chi2 < LEVEL and ks < LEVEL, (chi2, ks)


@pytest.mark.slow
@pytest.mark.parametrize("measure", ["cka_linear", "cka_rbf", "cca", "rsa"])
def test_permutation_pvalues_are_uniform_under_independence_at_scale(measure):
    B = 99  # 100 grid values, 2,000 draws: 20 expected per value
    p = _pvalues(measure, 2000, n=60, dim=5, B=B, seed=2027)
    chi2, ks = _uniformity(p, B)
    assert chi2 > LEVEL and ks > LEVEL, (measure, chi2, ks)
