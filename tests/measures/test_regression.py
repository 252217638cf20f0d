"""Linear regression fit: R^2 against least squares, invariances, edge cases, errors."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import correlated_linear_pair
from svcca import Moments, RegressionResult, SVCCAWarning, regression_fit


def _lstsq_r2(P, T):
    """R^2 of regressing each column of T on P (with intercept), by np.linalg.lstsq."""
    D = np.hstack([P, np.ones((P.shape[0], 1))])
    coef, *_ = np.linalg.lstsq(D, T, rcond=None)
    resid = T - D @ coef
    ss_res = (resid**2).sum(axis=0)
    ss_tot = ((T - T.mean(axis=0)) ** 2).sum(axis=0)
    return 1 - ss_res / ss_tot, 1 - ss_res.sum() / ss_tot.sum()


def _data(seed=0, n=200, p=6, q=4):
    return correlated_linear_pair(n, p, q, seed=seed, noise=2.0)


def test_matches_least_squares_both_ways():
    X, Y = _data()
    res = regression_fit(X, Y)
    assert isinstance(res, RegressionResult)
    per_y, tot_y = _lstsq_r2(X, Y)
    per_x, tot_x = _lstsq_r2(Y, X)
    assert res.r2_y_given_x == pytest.approx(tot_y, rel=1e-10)
    assert res.r2_x_given_y == pytest.approx(tot_x, rel=1e-10)
    assert np.allclose(res.r2_per_feature_y, per_y, rtol=1e-10)
    assert np.allclose(res.r2_per_feature_x, per_x, rtol=1e-10)
    assert res.score == pytest.approx((tot_x + tot_y) / 2, rel=1e-10)


def test_exact_linear_function_gives_one():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((100, 5))
    Y = X[:, :2] @ rng.standard_normal((2, 3)) + 7.0
    res = regression_fit(X, Y)
    assert res.r2_y_given_x == pytest.approx(1.0, abs=1e-12)
    assert res.r2_x_given_y < 0.9


def test_duplicated_and_constant_features():
    X, Y = _data(n=150)
    Xd = np.hstack([X, X[:, :2], np.full((150, 1), 3.0)])
    Yc = np.hstack([Y, np.full((150, 1), -1.0)])
    res = regression_fit(Xd, Yc)
    assert res.r2_y_given_x == pytest.approx(regression_fit(X, Y).r2_y_given_x, rel=1e-9)
    assert res.r2_per_feature_y[-1] == 0.0
    assert res.r2_per_feature_x[-1] == 0.0


def test_from_moments_and_warning():
    X, Y = _data()
    assert regression_fit(Moments.from_arrays(X, Y)).score == pytest.approx(
        regression_fit(X, Y).score, rel=1e-12
    )
    with pytest.warns(SVCCAWarning, match="least squares fits anything"):
        regression_fit(X[:6], Y[:6])


def test_errors():
    X, Y = _data()
    with pytest.raises(ValueError, match="same datapoints"):
        regression_fit(X, Y[:3])
    with pytest.raises(TypeError, match="compares two representations"):
        regression_fit(X)
