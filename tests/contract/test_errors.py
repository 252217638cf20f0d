"""Every bad-input path says what was expected, what came and how to fix it.

Errors of one object live with it: svcca_two_pass, Moments (tests/statistic/), a result's
transform (tests/measures/test_cca.py), svcca.compat (tests/compat/).
"""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import independent_pair

X, Y = independent_pair(50, 4, 3)


@pytest.mark.parametrize("f", [svcca.cca, svcca.svcca, svcca.pwcca, svcca.pls])
def test_mismatched_samples(f):
    with pytest.raises(ValueError, match="same datapoints: X has 50 samples .* Y has 49"):
        f(X, Y[:49])


@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (np.zeros(50), ValueError, r"2-D .* got a 1-D .* x.reshape\(-1, 1\)"),
        (np.zeros((50, 2, 2, 3)), ValueError, "svcca.conv"),
        (np.zeros((50, 2, 2)), ValueError, "Reshape it to"),
        (np.zeros((0, 3)), ValueError, "is empty"),
        (np.zeros((50, 0)), ValueError, "is empty"),
        (np.array([["a"] * 3] * 50), TypeError, "real numbers; got dtype <U1"),
        (np.zeros((50, 3), dtype=complex), TypeError, "svcca.conv"),
        ("data.npy", TypeError, "must be an array"),
        (None, TypeError, "compares two representations"),
        ([[1, 2], [3]], TypeError, "could not be converted"),
    ],
)
def test_bad_arrays(bad, exc, match):
    with pytest.raises(exc, match=match):
        svcca.cca(X, bad) if bad is not None else svcca.cca(X)


def test_nan_and_inf_report_rows():
    Z = X.copy()
    Z[[3, 17], 1] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains NaN or inf in 2 of its 50 rows \(first: \[3, 17\]\)"
    ):
        svcca.cca(Z, Y)
    W = Y.copy()
    W[0, 0] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN or inf in 1 of its 50 rows"):
        svcca.svcca(X, W)


def test_too_few_samples():
    with pytest.raises(ValueError, match="At least 2 samples"):
        svcca.cca(X[:1], Y[:1])


def test_bad_knobs():
    match = "variance must be one of 'explained', 'singular_values'; got"
    with pytest.raises(ValueError, match=match):
        svcca.svcca(X, Y, variance="energy")
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\)"):
        svcca.cca(X, Y, epsilon=-1.0)
    with pytest.raises(TypeError, match=r"epsilon must be a number in \[0, 1\); got 'small'"):
        svcca.pwcca(X, Y, epsilon="small")
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        svcca.cca(X, Y, threshold=2.0)
    with pytest.raises(TypeError, match=r"threshold must be a number in \[0, 1\]"):
        svcca.cca(X, Y, threshold=None)


def test_measures_given_moments_errors():
    m1 = svcca.Moments.from_arrays(X)
    with pytest.raises(ValueError, match="has no Y side"):
        svcca.cca(m1)
    with pytest.raises(TypeError, match="either a Moments object alone or two arrays"):
        svcca.cca(svcca.Moments.from_arrays(X, Y), Y)
    with pytest.raises(ValueError, match="holds 1 samples"):
        svcca.cca(svcca.Moments.from_arrays(X[:1], Y[:1]))


