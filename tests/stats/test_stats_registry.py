"""svcca.stats serves every registered measure: by name (or Measure) with its params,
reusing prepared sides across permutations, and refuses what it cannot serve."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import svcca
from svcca import stats

NAMES = sorted(svcca.MEASURES)


def _pair(n=60, signal=0.4):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4))
    Y = signal * X[:, :3] @ rng.standard_normal((3, 3)) + rng.standard_normal((n, 3))
    return X, Y


@pytest.mark.parametrize("name", NAMES)
def test_every_measure_by_name_equals_the_plain_loop(name):
    """By name, each registered measure's permutation null equals the full call on the
    permuted rows (vectorised where it can be), and the statistic is the single call."""
    m = svcca.MEASURES[name]
    X, Y = _pair()
    if m.kind == "minibatch":
        with pytest.raises(ValueError, match="cannot serve"):
            stats.permutation_test(name, X, Y, n_permutations=5)
        return
    fast = stats.permutation_test(name, X, Y, n_permutations=15, seed=1)
    slow = stats.permutation_test(name, X, Y, n_permutations=15, seed=1, vectorized=False)
    assert fast.statistic == m.score(X, Y)
    np.testing.assert_allclose(fast.null_distribution, slow.null_distribution, rtol=0, atol=1e-10)
    # vectorised: the moments measures with a fast permutation scorer (the library's
    # own linear ones), and every measure split into prepare/combine (the prepared side
    # is permuted); the rest call the measure on each permutation
    fast_paths = {"cca", "cka_linear", "procrustes", "shape_distance", "regression", "svcca", "pls"}
    assert fast.vectorized == (name in fast_paths or m.prepare is not None)
    boot = stats.bootstrap(name, X, Y, n_resamples=3, seed=0)
    assert boot.statistic == m.score(X, Y)
    base = stats.null_baseline(name, X, Y, n_repeats=2, seed=0)
    assert base.scores.shape == (2,)


def test_params_reach_the_measure_and_a_partial_reads_as_its_registered_measure():
    X, Y = _pair()
    by_name = stats.permutation_test(
        "cka_rbf", X, Y, n_permutations=10, seed=2, params={"bandwidth": 0.5}
    )
    by_partial = stats.permutation_test(
        functools.partial(svcca.cka, kernel="rbf", bandwidth=0.5),
        X,
        Y,
        n_permutations=10,
        seed=2,
    )
    assert by_name.statistic == svcca.cka(X, Y, kernel="rbf", bandwidth=0.5).score
    assert by_partial.vectorized and by_name.vectorized
    np.testing.assert_array_equal(by_name.null_distribution, by_partial.null_distribution)
    boot = stats.bootstrap("rsa", X, Y, n_resamples=3, seed=0, params={"metric": "correlation"})
    assert boot.statistic == svcca.rsa(X, Y, metric="correlation").score
    with pytest.raises(TypeError, match="Measure 'rsa' takes no parameter 'alpha'"):
        stats.permutation_test("rsa", X, Y, params={"alpha": 1.0})
    with pytest.raises(TypeError, match="params= is for registered measures"):
        stats.bootstrap(lambda A, B: svcca.cka(A, B), X, Y, params={"kernel": "rbf"})


def _gram(X, **_):
    Xc = np.asarray(X, dtype=float) - np.mean(X, axis=0)
    _gram.calls += 1  # type: ignore[attr-defined]
    return Xc @ Xc.T


def _align(K, L, **_):
    return float(np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L)))


def test_a_users_split_measure_is_prepared_once_and_its_side_permuted():
    """With permute declared, 30 permutations cost 2 preparations (P K P^T, nothing
    recomputed); without it, 2 + 30 (Y's permuted rows are prepared each time)."""
    base = svcca.Measure(
        "test_stats_gram",
        lambda X, Y: _align(_gram(X), _gram(Y)),
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=frozenset({"orthogonal"}),
        description="linear CKA from prepared Gram matrices",
        prepare=_gram,
        combine=_align,
        permute=lambda K, perm: K[np.ix_(perm, perm)],
    )
    X, Y = _pair()
    for m, preparations in ((base, 2), (dataclasses.replace(base, permute=None), 32)):
        _gram.calls = 0  # type: ignore[attr-defined]
        res = stats.permutation_test(m, X, Y, n_permutations=30, seed=3)
        assert _gram.calls == 2 + preparations  # the statistic's call prepares 2 more
        ref = stats.permutation_test("cka_linear", X, Y, n_permutations=30, seed=3)
        np.testing.assert_allclose(res.null_distribution, ref.null_distribution, atol=1e-12)


def test_a_minibatch_measure_is_refused_with_the_reason():
    mb = svcca.Measure(
        "test_stats_minibatch",
        lambda X, Y: 0.0,
        "minibatch",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=frozenset(),
        description="a minibatch estimator",
    )
    X, Y = _pair()
    for call in (
        lambda: stats.permutation_test(mb, X, Y),
        lambda: stats.bootstrap(mb, X, Y),
        lambda: stats.null_baseline(mb, X, Y),
        lambda: stats.datapoints_curve(mb, 3, 3),
    ):
        with pytest.raises(
            ValueError,
            match=r"cannot serve measure='test_stats_minibatch': "
            r"it accumulates over minibatches",
        ):
            call()
