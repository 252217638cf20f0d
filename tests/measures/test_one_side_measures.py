"""Magnitude, concentricity and uniformity differences against their definitions,
including uniformity on L2-normalised rows (where it depends on the data)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist

import svcca
from conftest import tol

M = svcca.MEASURES


def unit_rows(A):
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def uniformity_direct(A, t=2.0):
    n = len(A)
    return np.log((n + 2 * np.exp(-t * pdist(A, "sqeuclidean")).sum()) / n**2)


def test_uniformity_on_the_unit_sphere_depends_on_the_data():
    """On raw layers ReSi's uniformity is -log n on both sides (every off-diagonal term
    underflows); on normalised rows (Wang & Isola's setting) it measures the spread:
    a clustered layer is far less uniform than an isotropic one."""
    rng = np.random.default_rng(0)
    spread = unit_rows(rng.standard_normal((300, 6)))
    clustered = unit_rows(rng.standard_normal((300, 6)) * 0.3 + [2, 0, 0, 0, 0, 0])
    res = M["uniformity_difference"](spread, clustered)
    want = (uniformity_direct(spread), uniformity_direct(clustered))
    assert np.allclose(res.values, want, rtol=0, atol=tol(scale=np.log(300), factor=100))
    assert abs(res.distance - abs(want[0] - want[1])) <= tol(scale=np.log(300), factor=100)
    assert res.distance > 0.5
    for b in (1, 17):
        assert abs(
            M["uniformity_difference"](spread, clustered, block_size=b).distance - res.distance
        ) <= tol(scale=np.log(300), factor=100)
    t1 = M["uniformity_difference"](spread, clustered, t=1.0)
    want1 = abs(uniformity_direct(spread, 1.0) - uniformity_direct(clustered, 1.0))
    assert abs(t1.distance - want1) <= tol(scale=np.log(300), factor=100)
    with pytest.raises(ValueError, match="t must be a number > 0"):
        M["uniformity_difference"](spread, clustered, t=0.0)


def test_magnitude_difference_is_the_difference_of_the_mean_norms():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3)) + [3.0, 0.0, 4.0]
    Y = rng.standard_normal((200, 5)) + 1.0
    res = M["magnitude_difference"](X, Y)
    want = np.linalg.norm(X.mean(0)), np.linalg.norm(Y.mean(0))
    assert np.allclose(res.values, want, rtol=1e-14)
    assert res.distance == pytest.approx(abs(want[0] - want[1]), rel=1e-13)


def test_concentricity_difference_is_the_difference_of_mean_cosines_to_the_mean():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 3)) + 1.0
    Y = rng.standard_normal((200, 4)) * 0.2 + 3.0

    def conc(A):
        m = A.mean(0)
        return np.mean(A @ m / np.linalg.norm(A, axis=1) / np.linalg.norm(m))

    res = M["concentricity_difference"](X, Y)
    assert np.allclose(res.values, (conc(X), conc(Y)), rtol=0, atol=tol(factor=100))
    assert res.distance == pytest.approx(abs(conc(X) - conc(Y)), abs=tol(factor=100))


def test_concentricity_counts_a_zero_row_as_zero_and_refuses_a_zero_mean():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 3)) + 2.0
    Y = rng.standard_normal((100, 3)) + 1.0
    X[4] = 0.0
    m = X.mean(0)
    cos = X @ m / np.maximum(np.linalg.norm(X, axis=1), 1e-300) / np.linalg.norm(m)
    with pytest.warns(svcca.SVCCAWarning, match="1 datapoints of X are zero vectors"):
        res = M["concentricity_difference"](X, Y)
    assert res.values[0] == pytest.approx(cos.mean(), abs=tol(factor=100))
    Z = np.vstack([Y, -Y])  # mean exactly 0
    with pytest.raises(ValueError, match="Representation Y's mean vector is zero"):
        M["concentricity_difference"](np.vstack([Y, Y]), Z)


def test_prepared_sides_are_one_number_each_and_must_share_the_datapoints():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((50, 3)) + 1, rng.standard_normal((50, 2)) + 2
    for name in ("concentricity_difference", "uniformity_difference"):
        m = M[name]
        sx, sy = m.prepare_side(X), m.prepare_side(Y)
        assert m.combine_sides(sx, sy) == m.score(X, Y)
        with pytest.raises(ValueError, match="X has 50 samples .* and Y has 40"):
            m.combine_sides(sx, m.prepare_side(Y[:40]))
