"""RSA: RDMs against scipy, comparisons against scipy.stats, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist, squareform
from scipy.stats import pearsonr, spearmanr

import svcca
from conftest import tanh_pair
from svcca import RSAResult, compare_rdms, rdm, rsa


def _data(seed=0, n=40):
    return tanh_pair(n, 6, 4, seed=seed, noise=0.3)


@pytest.mark.parametrize("metric", ["euclidean", "correlation"])
def test_rdm_matches_scipy(metric):
    X, _ = _data()
    D = rdm(X, metric=metric)
    assert D.shape == (40, 40)
    assert np.allclose(D, cdist(X, X, metric=metric), atol=1e-10)
    assert np.all(np.diag(D) == 0) and np.allclose(D, D.T)


@pytest.mark.parametrize("metric", ["euclidean", "correlation"])
def test_rsa_matches_scipy_correlations(metric):
    X, Y = _data()
    a = squareform(cdist(X, X, metric=metric), checks=False)
    b = squareform(cdist(Y, Y, metric=metric), checks=False)
    res = rsa(X, Y, metric=metric)
    assert isinstance(res, RSAResult)
    assert res.score == pytest.approx(spearmanr(a, b).statistic, rel=1e-9)
    assert rsa(X, Y, metric=metric, compare="pearson").score == pytest.approx(
        pearsonr(a, b).statistic, rel=1e-9
    )


def test_spearman_ignores_monotone_changes_of_dissimilarity():
    X, Y = _data()
    Dx, Dy = rdm(X), rdm(Y)
    assert compare_rdms(Dx**2, Dy) == pytest.approx(compare_rdms(Dx, Dy), rel=1e-12)
    assert compare_rdms(Dx**2, Dy, compare="pearson") != pytest.approx(
        compare_rdms(Dx, Dy, compare="pearson"), rel=1e-3
    )
    match = r"Representation Dy has nothing to compare.*\(a constant RDM\)"
    with pytest.raises(svcca.DegenerateError, match=match):
        compare_rdms(Dx, np.zeros_like(Dx))


def test_errors():
    X, Y = _data()
    with pytest.raises(ValueError, match="metric must be one of"):
        rsa(X, Y, metric="cosine")
    with pytest.raises(ValueError, match="compare must be one of"):
        rsa(X, Y, compare="kendall")
    with pytest.raises(ValueError, match="metric must be one of"):
        rdm(X, metric="cityblock")
    with pytest.raises(ValueError, match="at least 3 datapoints"):
        rsa(X[:2], Y[:2])
    with pytest.raises(ValueError, match="needs at least 2 features; Y has 1"):
        rsa(X, Y[:, :1], metric="correlation")
    flat = X.copy()
    flat[5] = 1.0
    with pytest.raises(ValueError, match="same value in every feature"):
        rdm(flat, metric="correlation")
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        rsa(bad, Y)
    with pytest.raises(ValueError, match="two square RDMs of the same size"):
        compare_rdms(np.zeros((4, 4)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match="at least 3 datapoints"):
        compare_rdms(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="compare must be one of"):
        compare_rdms(np.zeros((4, 4)), np.zeros((4, 4)), compare="x")
