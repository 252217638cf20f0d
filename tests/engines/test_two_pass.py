"""svcca_two_pass: two streamed passes (a Frequent Directions sketch, then CCA of the kept
directions) match the exact SVCCA; batch factories and memmaps; its errors and warnings."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from svcca import svcca_two_pass

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def wide_pair(n=2000, p=200, q=150, k=6, seed=1):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, k)) * np.linspace(3, 1, k)
    X = Z @ rng.standard_normal((k, p)) + 0.05 * rng.standard_normal((n, p)) + 2.0
    Y = np.tanh(Z @ rng.standard_normal((k, q))) + 0.05 * rng.standard_normal((n, q))
    return X, Y


def test_two_pass_svcca_matches_exact_svcca():
    X, Y = wide_pair()
    exact = svcca.svcca(X, Y, keep=6)
    got = svcca_two_pass(X, Y, keep=6, chunk_size=700)
    assert (got.kept_x, got.kept_y) == (6, 6)
    # Frequent Directions is approximate: the subspace, hence the correlations, to ~1e-5
    np.testing.assert_allclose(got.correlations, exact.correlations, atol=2e-5)
    assert got.variance_kept_x == pytest.approx(exact.variance_kept_x, abs=1e-6)
    # by fraction: the same count of directions, the same score
    exact = svcca.svcca(X, Y, keep=0.9)
    got = svcca_two_pass(X, Y, keep=0.9, sketch_size=64)
    assert got.kept_x == exact.kept_x and got.kept_y == exact.kept_y
    assert got.score == pytest.approx(exact.score, abs=2e-5)


def test_two_pass_from_a_batch_factory_and_memmaps(tmp_path):
    X, Y = wide_pair(n=1500, p=120, q=100)
    ref = svcca_two_pass(X, Y, keep=6, chunk_size=400).score

    def batches():
        for s in range(0, 1500, 400):
            yield X[s : s + 400], Y[s : s + 400]

    assert svcca_two_pass(batches, keep=6).score == pytest.approx(ref, abs=1e-9)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    mx, my = (np.load(tmp_path / f, mmap_mode="r") for f in ("x.npy", "y.npy"))
    assert svcca_two_pass(mx, my, keep=6, chunk_size=400).score == pytest.approx(ref, abs=1e-9)


def test_two_pass_errors_and_warnings():
    X, Y = wide_pair(n=500, p=60, q=50)
    with pytest.raises(ValueError, match="sketch_size must be an int >= 10"):
        svcca_two_pass(X, Y, keep=10, sketch_size=5)
    with pytest.raises(TypeError, match="sketch_size must be an int >= "):
        svcca_two_pass(X, Y, sketch_size=2.0)
    with pytest.raises(TypeError, match="pass X and Y"):
        svcca_two_pass(X)
    with pytest.raises(TypeError, match="fresh iterable of"):
        svcca_two_pass(lambda: iter([X]))
    with pytest.raises(ValueError, match=r"Batch 1 has shapes"):
        svcca_two_pass(lambda: iter([(X[:100], Y[:100]), (X[100:, :3], Y[100:])]))
    with pytest.raises(ValueError, match="variance must be"):
        svcca_two_pass(X, Y, variance="total")
    noise = np.random.default_rng(0).standard_normal((500, 60))
    with pytest.warns(svcca.SVCCAWarning, match="less than keep=0.99"):
        r = svcca_two_pass(noise, Y, keep=0.99, sketch_size=8)
    assert r.kept_x == 8
