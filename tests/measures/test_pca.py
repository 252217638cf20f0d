"""PCA: eigenvalues against an independent eigensolver, the explained variance, scores."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import covariance_roundoff, latent_pair


def test_pca_properties():
    X, _ = latent_pair(700, 6, 3, seed=6, y_tanh=True)
    p = svcca.pca(X)
    e_tol = covariance_roundoff(X, X)  # eigenvalues of cov(X): to eps times the largest
    np.testing.assert_allclose(
        p.eigenvalues, np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1], rtol=0, atol=e_tol
    )
    assert p.explained_variance_ratio.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        p.transform(X).var(axis=0, ddof=1), p.eigenvalues, rtol=0, atol=2 * e_tol
    )
