"""Block statistics of one pass: the hash assignment, the exact Moments subtraction, the
Poisson replicates, and the memory plan."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca.stats import (
    BlockMoments,
    PoissonMoments,
    block_of,
    poisson_weights,
    subtract_moments,
)


def _data(n=600, p=5, q=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * 3 + 10  # large means: the subtraction must not cancel
    Y = X[:, :q] @ rng.standard_normal((q, q)) + rng.standard_normal((n, q)) - 5
    return X, Y


def _close(a: svcca.Moments, b: svcca.Moments, n_terms: int) -> None:
    # Each entry is a sum of n_terms products (worst case n_terms * eps relative to the
    # sum of |terms|, here below (max |S|) per term) in both, plus the merges: factor 2n.
    assert a.n == b.n
    for key in ("sxx", "syy", "sxy"):
        s = max(np.abs(getattr(b, key)).max(initial=0.0), 1.0)
        np.testing.assert_allclose(
            getattr(a, key), getattr(b, key), rtol=0, atol=tol(scale=s, factor=2 * n_terms)
        )
    for key in ("mean_x", "mean_y"):
        s = np.abs(getattr(b, key)).max(initial=0.0)
        np.testing.assert_allclose(
            getattr(a, key), getattr(b, key), rtol=0, atol=tol(scale=s, factor=2 * n_terms)
        )


def test_blocks_follow_the_global_row_index_not_the_batching():
    b = block_of(np.arange(1000), 7, seed=3)
    assert set(np.unique(b)) == set(range(7))
    assert np.array_equal(block_of(np.arange(400, 1000), 7, seed=3), b[400:])
    assert not np.array_equal(block_of(np.arange(1000), 7, seed=4), b)
    # a loader sorted by class: every class reaches every block, in near-equal shares
    sizes = np.bincount(b, minlength=7)
    assert sizes.min() > 1000 / 7 - 4 * np.sqrt(1000 / 7)


def test_leave_one_block_out_is_the_statistic_of_the_other_rows():
    X, Y = _data()
    bm = BlockMoments.from_arrays(X, Y, blocks=6, seed=1)
    b = block_of(np.arange(X.shape[0]), 6, seed=1)
    total = bm.total
    _close(total, svcca.Moments.from_arrays(X, Y), X.shape[0])
    for j in range(6):
        _close(bm.leave_out(j, total), svcca.Moments.from_arrays(X[b != j], Y[b != j]), 600)
        _close(bm.block(j), svcca.Moments.from_arrays(X[b == j], Y[b == j]), 600)
    # X only (q = 0)
    bx = BlockMoments.from_arrays(X, blocks=3)
    _close(bx.leave_out(0), svcca.Moments.from_arrays(X[block_of(np.arange(600), 3) != 0]), 600)


def test_subtraction_undoes_the_merge_at_any_scale():
    X, Y = _data()
    a = svcca.Moments.from_arrays(X[:400] * 2.0**-200, Y[:400] * 2.0**300)
    c = svcca.Moments.from_arrays(X[400:] * 2.0**-200, Y[400:] * 2.0**300)
    rest = subtract_moments(a.merge(c), c)
    assert rest.n == 400
    for key in ("cov_xx", "cov_yy", "cov_xy"):
        want = getattr(a, key)
        np.testing.assert_allclose(
            getattr(rest, key), want, rtol=0, atol=tol(scale=np.abs(want).max(), factor=2 * 600)
        )
    assert subtract_moments(a, svcca.Moments.empty(5, 4)).n == 400


def test_subtraction_refuses_what_is_not_a_part():
    X, Y = _data()
    a = svcca.Moments.from_arrays(X, Y)
    with pytest.raises(ValueError, match="fewer rows than the total"):
        subtract_moments(a, a)
    with pytest.raises(ValueError, match="same representations"):
        subtract_moments(a, svcca.Moments.from_arrays(X[:10, :3], Y[:10]))
    with pytest.raises(TypeError, match="two Moments"):
        subtract_moments(a, X)


def test_batches_with_offsets_give_the_blocks_of_the_whole_array():
    X, Y = _data()
    whole = BlockMoments.from_arrays(X, Y, blocks=5, seed=2)
    # out of order, with offsets, in uneven batches
    cuts = [(350, 600), (0, 130), (130, 350)]
    streamed = BlockMoments.from_batches(((s, X[s:e], Y[s:e]) for s, e in cuts), blocks=5, seed=2)
    implicit = BlockMoments.from_batches(
        ((X[s : s + 97], Y[s : s + 97]) for s in range(0, 600, 97)), blocks=5, seed=2
    )
    assert np.array_equal(streamed.sizes, whole.sizes)
    for j in range(5):
        _close(streamed.block(j), whole.block(j), 600)
        _close(implicit.block(j), whole.block(j), 600)


def test_poisson_replicate_is_the_statistic_of_the_rows_repeated():
    X, Y = _data(n=200)
    pm = PoissonMoments.from_arrays(X, Y, replicates=4, seed=5)
    W = poisson_weights(np.arange(200), 4, seed=5)
    assert np.array_equal(poisson_weights(np.arange(100, 200), 4, seed=5), W[100:])
    assert abs(W.mean() - 1.0) < 4 * np.sqrt(1.0 / W.size)  # Poisson(1): mean 1, var 1
    assert abs(W.var() - 1.0) < 0.15
    for r in range(4):
        idx = np.repeat(np.arange(200), W[:, r])
        _close(pm.replicate(r), svcca.Moments.from_arrays(X[idx], Y[idx]), 2 * 200)
    # batched in two halves: the same replicates
    half = PoissonMoments(5, 4, replicates=4, seed=5).update(X[:100], Y[:100])
    half.update(X[100:], Y[100:])
    _close(half.replicate(2), pm.replicate(2), 400)


def test_replicates_that_do_not_fit_are_refused_with_the_size_and_the_fix(monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1M")
    with pytest.raises(svcca.DeviceMemoryError, match=r"21 statistics .* MiB.*fewer blocks"):
        BlockMoments(200, 200, blocks=20)
    with pytest.raises(svcca.DeviceMemoryError, match=r"201 statistics .*fewer replicates"):
        PoissonMoments(200, 200, replicates=200)


def test_block_statistics_refuse_bad_input_by_name():
    X, Y = _data(n=50)
    with pytest.raises(ValueError, match="blocks must be an int >= 2"):
        block_of(range(10), 1)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        block_of(range(10), 3, seed=-1)
    with pytest.raises(ValueError, match="non-negative integer row indices"):
        block_of([0.5, 1.5], 3)
    bm = BlockMoments(5, 4, blocks=3)
    with pytest.raises(ValueError, match="a batch must hold the same rows"):
        bm.update(X, Y[:10])
    with pytest.raises(ValueError, match="pass the matching Y batch"):
        bm.update(X)
    with pytest.raises(ValueError, match="received no batches"):
        BlockMoments.from_batches([])
    with pytest.raises(ValueError, match="must be 2-D"):
        BlockMoments.from_arrays(X[:, 0])


def test_an_engine_can_hand_over_its_own_per_block_statistics():
    X, Y = _data()
    b = block_of(np.arange(600), 4, seed=9)
    parts = [svcca.Moments.from_arrays(X[b == j], Y[b == j]) for j in range(4)]
    bm = BlockMoments.from_blocks(parts, seed=9)
    whole = BlockMoments.from_arrays(X, Y, blocks=4, seed=9)
    assert np.array_equal(bm.sizes, whole.sizes) and bm.seed == 9 and bm.rows_seen == 600
    _close(bm.leave_out(2), whole.leave_out(2), 600)
    with pytest.raises(ValueError, match="at least 2 Moments, one per block"):
        BlockMoments.from_blocks(parts[:1])
    with pytest.raises(ValueError, match="same representations"):
        BlockMoments.from_blocks([parts[0], svcca.Moments.from_arrays(X[:9])])
