"""PLS: singular values against an independent SVD, variates, the score as linear CKA."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import covariance_roundoff, latent_pair


def test_pls_properties():
    X, Y = latent_pair(700, 6, 3, seed=6, y_tanh=True)
    r = svcca.pls(X, Y)
    C = np.cov(X.T, Y.T)[:6, 6:]
    s_tol = covariance_roundoff(X, Y)
    np.testing.assert_allclose(
        r.singular_values, np.linalg.svd(C, compute_uv=False), rtol=0, atol=s_tol
    )
    np.testing.assert_allclose(r.eigenvalues, r.singular_values**2, rtol=1e-12)
    np.testing.assert_allclose(r.weights_x.T @ r.weights_x, np.eye(3), atol=1e-12)
    U, V = r.transform(X, Y)  # one more product and covariance of n terms
    np.testing.assert_allclose(
        np.cov(U.T, V.T)[:3, 3:].diagonal(), r.singular_values, rtol=0, atol=2 * s_tol
    )
    cka = np.linalg.norm(C) ** 2 / (np.linalg.norm(np.cov(X.T)) * np.linalg.norm(np.cov(Y.T)))
    assert r.score == pytest.approx(cka, rel=1e-12)
