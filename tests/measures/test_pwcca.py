"""PWCCA: the invariances it has, the one it lacks (rotations of the weighting side)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import svcca
from conftest import latent_pair

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pair(seed: int, n: int, p: int, q: int):
    """Two related layers: shared latents, linear in X, through tanh in Y."""
    return latent_pair(n, p, q, seed=seed, y_tanh=True)


@SETTINGS
@given(seed=st.integers(0, 2**31), n=st.integers(80, 300), p=st.integers(2, 8), q=st.integers(2, 8))
def test_pwcca_invariances(seed, n, p, q):
    X, Y = pair(seed, n, p, q)
    rng = np.random.default_rng(seed)
    base = svcca.pwcca(X, Y)
    perm, signs = rng.permutation(p), rng.choice([-1.0, 1.0], size=p)
    moved = svcca.pwcca(3.0 * X[:, perm] * signs, Y[:, rng.permutation(q)] * 0.5)
    assert moved.score == pytest.approx(base.score, abs=1e-8)
    assert 0.0 <= base.score <= 1.0 + 1e-12


def test_pwcca_not_invariant_to_rotations_of_the_weighting_side():
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((2000, 3))
    X = np.hstack([Z, rng.standard_normal((2000, 3))]) * [5, 4, 3, 1, 1, 1]
    Y = np.hstack([Z[:, :1], rng.standard_normal((2000, 7))])
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a, b = svcca.pwcca(X, Y).score, svcca.pwcca(X @ Q, Y).score
    assert abs(a - b) > 1e-3


def test_pwcca_weights_by_the_side_of_smaller_rank():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((500, 3))
    A = np.hstack([base, base @ rng.standard_normal((3, 3))])  # 6 neurons spanning 3 dims
    B = base @ rng.standard_normal((3, 4)) + 0.1 * rng.standard_normal((500, 4))
    r = svcca.pwcca(A, B)
    assert (r.cca.rank_x, r.cca.rank_y) == (3, 4)
    assert r.weighted_by == "x"  # fewer dimensions, though more neurons
    assert r.weights.size == 3 and r.weights.sum() == pytest.approx(1.0)
    assert svcca.pwcca(B, A).weighted_by == "y"
