"""SVCCA: invariances, the keep conventions, the weights of the kept directions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import svcca
from conftest import independent_pair, latent_pair

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pair(seed: int, n: int, p: int, q: int):
    """Two related layers: shared latents, linear in X, through tanh in Y."""
    return latent_pair(n, p, q, seed=seed, y_tanh=True)


@SETTINGS
@given(
    seed=st.integers(0, 2**31), n=st.integers(80, 300), p=st.integers(2, 10), q=st.integers(2, 10)
)
def test_svcca_invariant_to_orthogonal_maps_and_scaling(seed, n, p, q):
    X, Y = pair(seed, n, p, q)
    rng = np.random.default_rng(seed)
    Qx, _ = np.linalg.qr(rng.standard_normal((p, p)))
    Qy, _ = np.linalg.qr(rng.standard_normal((q, q)))
    base = svcca.svcca(X, Y, keep=0.9)
    moved = svcca.svcca(7.5 * X @ Qx + 1.0, 0.2 * Y @ Qy - 4.0, keep=0.9)
    assert (moved.kept_x, moved.kept_y) == (base.kept_x, base.kept_y)
    np.testing.assert_allclose(moved.correlations, base.correlations, atol=1e-8)


def test_svcca_keep_conventions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 10)) * np.array([10, 5, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1])
    Y = X @ rng.standard_normal((10, 10))
    ex = svcca.svcca(X, X, keep=0.9)
    sv = svcca.svcca(X, X, keep=0.9, variance="singular_values")
    assert ex.kept_x < sv.kept_x  # summing singular values keeps more directions
    var = np.sort(np.linalg.eigvalsh(np.cov(X.T)))[::-1]
    share = np.cumsum(var) / var.sum()
    assert ex.kept_x == int(np.argmax(share >= 0.9)) + 1
    assert ex.variance_kept_x == pytest.approx(share[ex.kept_x - 1], rel=1e-9)
    assert svcca.svcca(X, Y, keep=3).kept_x == 3
    # One rule with keep=1.0's refusal: a count may not ask for more than the features.
    with pytest.raises(
        ValueError, match=r"keep=50 asks for more directions than representation X has features"
    ):
        svcca.svcca(X, Y, keep=50)
    assert svcca.svcca(X, Y, keep=10).kept_x == 10
    assert svcca.svcca(X, Y, keep=0.999999).kept_x == 10


def test_svcca_weights_map_original_features():
    X, Y = pair(3, 1000, 8, 6)
    r = svcca.svcca(X, Y, keep=4)
    U, V = r.transform(X, Y)
    c = [np.corrcoef(U[:, i], V[:, i])[0, 1] for i in range(r.correlations.size)]
    np.testing.assert_allclose(c, r.correlations, atol=1e-10)


@pytest.mark.parametrize(
    ("keep", "exc", "match"),
    [
        (0.0, ValueError, r"keep must be a number in \(0, 1\); got 0.0. Pass a fraction"),
        (1.0, ValueError, r"keep must be a number in \(0, 1\); got 1.0.*use svcca.cca"),
        (1.5, ValueError, r"keep must be a number in \(0, 1\)"),
        (-0.2, ValueError, r"keep must be a number in \(0, 1\)"),
        (0, ValueError, "keep must be an int >= 1; got 0"),
        (True, TypeError, r"keep must be a float in \(0, 1\) or an int >= 1; got True"),
        ("all", TypeError, r"keep must be a float in \(0, 1\) or an int >= 1; got 'all'"),
    ],
)
def test_keep_out_of_range(keep, exc, match):
    X, Y = independent_pair(50, 4, 3)
    with pytest.raises(exc, match=match):
        svcca.svcca(X, Y, keep=keep)


def test_keep_is_a_fraction_below_one_or_a_count():
    X, Y = latent_pair(400, 6, 5, x_noise=0.5, y_noise=0.5)
    assert svcca.svcca(X, Y, keep=1).kept_x == 1  # an int: one direction
    assert svcca.svcca(X, Y, keep=np.int64(2)).kept_x == 2
    assert svcca.svcca(X, Y, keep=np.float64(0.5)).kept_x >= 1
    for bad in (1.0, np.float64(1.0), 0.0):
        with pytest.raises(ValueError, match=r"keep must be a number in \(0, 1\); got"):
            svcca.svcca(X, Y, keep=bad)
    with pytest.raises(ValueError, match=r"keep must be an int >= 1; got 0"):
        svcca.pairwise({"x": X}, measure="svcca", keep=0)


def test_svcca_warns_on_the_kept_dimensions_not_the_raw_width():
    A, B = independent_pair(60, 80, 80)
    with pytest.warns(svcca.SVCCAWarning):
        svcca.svcca(A, B, keep=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        svcca.svcca(A, B, keep=5)  # 5 + 5 kept directions on 60 samples
