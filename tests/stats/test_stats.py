"""svcca.stats: permutation tests (vectorised = plain loop), bootstrap, Bartlett, baselines."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.stats import chi2, kstest

from svcca import Moments, cca, cka, pls, procrustes, regression_fit, rsa, shape_distance, stats
from svcca import svcca as svcca_fn


def _pair(seed=0, n=60, p=5, q=4, signal=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p))
    Y = signal * X[:, :q] + rng.standard_normal((n, q))
    return X, Y


MEASURES = {
    "cka": cka,
    "cka-debiased": functools.partial(cka, debiased=True),
    "cka-sample": functools.partial(cka, method="sample"),
    "cka-sample-debiased": functools.partial(cka, method="sample", debiased=True),
    "cka-rbf": functools.partial(cka, kernel="rbf", bandwidth=0.8),
    "cka-rbf-debiased": functools.partial(cka, kernel="rbf", debiased=True),
    "cca": cca,
    "cca-eps": functools.partial(cca, epsilon=0.05),
    "procrustes": procrustes,
    "shape-0": functools.partial(shape_distance, alpha=0.0),
    "shape-0.5": functools.partial(shape_distance, alpha=0.5, kind="euclidean"),
    "regression": regression_fit,
    "svcca": functools.partial(svcca_fn, keep=3),
    "svcca-fraction": functools.partial(svcca_fn, keep=0.9, variance="singular_values"),
    "pls": pls,
    "rsa": rsa,
    "rsa-pearson-corr": functools.partial(rsa, metric="correlation", compare="pearson"),
}


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_vectorised_permutations_equal_plain_loop(name):
    X, Y = _pair(signal=0.3)
    measure = MEASURES[name]
    fast = stats.permutation_test(measure, X, Y, n_permutations=40, seed=1)
    slow = stats.permutation_test(measure, X, Y, n_permutations=40, seed=1, vectorized=False)
    assert fast.vectorized and not slow.vectorized
    assert np.allclose(fast.null_distribution, slow.null_distribution, rtol=1e-9, atol=1e-12)
    assert fast.statistic == slow.statistic
    assert fast.pvalue == slow.pvalue


def test_pvalue_definition_and_power():
    X, Y = _pair(signal=1.0)
    res = stats.permutation_test(cka, X, Y, n_permutations=99, seed=0)
    assert res.pvalue == pytest.approx(0.01)
    assert res.null_distribution.shape == (99,) and res.n_permutations == 99
    count = np.sum(res.null_distribution >= res.statistic)
    assert res.pvalue == (1 + count) / 100
    less = stats.permutation_test(cka, X, Y, n_permutations=99, seed=0, alternative="less")
    assert less.pvalue == pytest.approx(1.0)


def test_same_seed_same_permutations_and_custom_measure():
    X, Y = _pair(signal=0.2)

    class R:
        def __init__(self, s):
            self.score = s

    def my_measure(A, B):
        return R(float(np.corrcoef(A[:, 0], B[:, 0])[0, 1]))

    a = stats.permutation_test(my_measure, X, Y, n_permutations=30, seed=5)
    b = stats.permutation_test(my_measure, X, Y, n_permutations=30, seed=5)
    assert not a.vectorized
    assert np.array_equal(a.null_distribution, b.null_distribution)


def test_progress_bar_writes_to_stderr(capsys):
    X, Y = _pair()
    stats.permutation_test(cka, X, Y, n_permutations=10, seed=0, progress=True)
    assert "permutations" in capsys.readouterr().err


def test_permutation_pvalues_are_roughly_uniform_on_independent_data():
    # A quick version of the slow KS check below.
    pvals = [
        stats.permutation_test(
            cka, *np.random.default_rng(s).standard_normal((2, 30, 3)), n_permutations=49, seed=s
        ).pvalue
        for s in range(60)
    ]
    assert 0.3 < np.mean(pvals) < 0.7


@pytest.mark.slow
@pytest.mark.parametrize(
    "measure", [cka, functools.partial(cka, kernel="rbf"), cca, procrustes, rsa]
)
def test_permutation_pvalues_are_calibrated_ks(measure):
    pvals = []
    for s in range(300):
        rng = np.random.default_rng(1000 + s)
        X, Y = rng.standard_normal((40, 4)), rng.standard_normal((40, 3))
        pvals.append(stats.permutation_test(measure, X, Y, n_permutations=199, seed=s).pvalue)
    # p-values live on the grid k/200; the KS distance to U(0, 1) then has a 1/200 floor.
    assert kstest(pvals, "uniform").pvalue > 0.001
    assert 0.01 < np.mean(np.array(pvals) <= 0.05) < 0.1


def test_bootstrap_interval():
    X, Y = _pair(n=150, signal=0.7)
    ci = stats.bootstrap(cka, X, Y, n_resamples=200, seed=0)
    assert ci.low < ci.statistic < ci.high
    assert ci.distribution.shape == (200,)
    assert ci.standard_error == pytest.approx(np.std(ci.distribution, ddof=1))
    assert ci.low == pytest.approx(np.quantile(ci.distribution, 0.025))
    narrow = stats.bootstrap(cka, X, Y, n_resamples=200, seed=0, confidence=0.5)
    assert narrow.high - narrow.low < ci.high - ci.low
    again = stats.bootstrap(cka, X, Y, n_resamples=200, seed=0)
    assert np.array_equal(again.distribution, ci.distribution)


def test_bartlett_counts_shared_dimensions():
    rng = np.random.default_rng(0)
    n = 1500
    z = rng.standard_normal((n, 3))
    X = np.hstack([z, rng.standard_normal((n, 5))]) @ rng.standard_normal((8, 8))
    Y = np.hstack([z + 0.7 * rng.standard_normal((n, 3)), rng.standard_normal((n, 4))])
    res = stats.bartlett(X, Y)
    assert res.n_significant == 3
    assert res.ranks == (8, 7) and res.dof.tolist() == [(8 - j) * (7 - j) for j in range(7)]
    rho = cca(X, Y).correlations
    j = 3
    lam = np.prod(1 - rho[j:] ** 2)
    stat = -(n - 1 - (8 + 7 + 1) / 2) * np.log(lam)
    assert res.statistics[j] == pytest.approx(stat, rel=1e-10)
    assert res.pvalues[j] == pytest.approx(chi2.sf(stat, (8 - j) * (7 - j)), rel=1e-10)
    assert np.all(res.pvalues[:3] < 1e-10)
    assert stats.bartlett(Moments.from_arrays(X, Y)).n_significant == 3
    # Identical sides: correlations of exactly 1 give p = 0, not NaN or a warning.
    assert stats.bartlett(X, X).n_significant == 8


def test_bartlett_is_calibrated_on_independent_data():
    p0 = []
    for s in range(120):
        rng = np.random.default_rng(s)
        p0.append(
            stats.bartlett(rng.standard_normal((200, 4)), rng.standard_normal((200, 3))).pvalues[0]
        )
    assert kstest(p0, "uniform").pvalue > 0.01


def test_null_baselines():
    X, Y = _pair(n=80, p=20, q=20)
    g = stats.null_baseline(cca, X, Y, n_repeats=5, seed=0)
    assert g.kind == "gaussian" and g.scores.shape == (5,) and g.shapes == ((80, 20), (80, 20))
    assert 0.3 < g.mean < 0.9  # 40 features on 80 datapoints: far from 0
    s = stats.null_baseline(cka, X, Y, kind="shuffle", n_repeats=50, seed=0)
    assert s.mean < cka(X, Y).score
    assert s.std == pytest.approx(np.std(s.scores, ddof=1))
    one = stats.null_baseline(cka, X, Y, n_repeats=1, seed=0)
    assert one.std == 0.0


def test_datapoints_curve_recommends_enough_datapoints():
    curve = stats.datapoints_curve(cka, 10, 10, n_repeats=3, seed=0)
    assert curve.sizes.tolist() == [10 * k for k in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert np.all(np.diff(curve.mean) < 0)
    assert curve.recommended_n is not None
    i = curve.sizes.tolist().index(curve.recommended_n)
    assert np.all(curve.mean[i:] <= 0.1) and curve.mean[i - 1] > 0.1
    small = stats.datapoints_curve(cca, 30, 30, sizes=[40, 80], n_repeats=1, seed=0)
    assert small.recommended_n is None
    assert small.scores.shape == (2, 1)


def test_errors():
    X, Y = _pair()
    with pytest.raises(ValueError, match=r"measure must be one of the registered .*'cka'"):
        stats.permutation_test("cka", X, Y)  # the registry's name is cka_linear
    with pytest.raises(TypeError, match="measure must be a registered measure's name"):
        stats.permutation_test(42, X, Y)
    with pytest.raises(TypeError, match="without a .score"):
        stats.permutation_test(lambda A, B: 0.5, X, Y, n_permutations=3)
    with pytest.raises(ValueError, match="n_permutations must be an int >= 1"):
        stats.permutation_test(cka, X, Y, n_permutations=0)
    with pytest.raises(TypeError, match="n_permutations must be an int"):
        stats.permutation_test(cka, X, Y, n_permutations=True)
    with pytest.raises(ValueError, match="alternative must be one of"):
        stats.permutation_test(cka, X, Y, alternative="two-sided")
    with pytest.raises(TypeError, match="not a Moments object"):
        stats.permutation_test(cka, Moments.from_arrays(X, Y), None)
    with pytest.raises(ValueError, match="at least 3 datapoints"):
        stats.permutation_test(cka, X[:2], Y[:2])
    with pytest.raises(TypeError, match="progress must be True or False"):
        stats.permutation_test(cka, X, Y, n_permutations=2, progress=1)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        stats.bootstrap(cka, X, Y, confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples must be an int >= 2"):
        stats.bootstrap(cka, X, Y, n_resamples=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        stats.null_baseline(cka, X, Y, kind="uniform")
    with pytest.raises(ValueError, match="n > \\(p \\+ q \\+ 3\\) / 2"):
        stats.bartlett(X[:5], Y[:5])
    with pytest.raises(TypeError, match="sizes must be a non-empty 1-D sequence"):
        stats.datapoints_curve(cka, 3, 3, sizes=[10.5])
    with pytest.raises(ValueError, match="at least 4 datapoints"):
        stats.datapoints_curve(cka, 3, 3, sizes=[2, 10])
    with pytest.raises(TypeError, match="tolerance must be a number > 0"):
        stats.datapoints_curve(cka, 3, 3, tolerance="low")
    with pytest.raises(ValueError, match="p must be an int >= 1"):
        stats.datapoints_curve(cka, 0, 3)


def test_linear_cka_permutations_pick_the_cheaper_space():
    # private: which space is cheaper is a speed decision; only the null values are public
    from svcca._measures._permuters import sample_space_for_permutations

    assert not sample_space_for_permutations(10000, 512, 512, 1000)
    assert sample_space_for_permutations(5000, 1000, 1000, 1000)
    assert sample_space_for_permutations(50, 400, 300, 10)
    # Either way, the same null values as the plain loop.
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((30, 200)), rng.standard_normal((30, 150))
    fast = stats.permutation_test(cka, X, Y, n_permutations=20, seed=0)
    slow = stats.permutation_test(cka, X, Y, n_permutations=20, seed=0, vectorized=False)
    assert np.allclose(fast.null_distribution, slow.null_distribution, rtol=1e-10)


@pytest.mark.parametrize(
    "name",
    [
        "cka",
        "cka-debiased",
        "cka-sample",
        "cca",
        "shape-0",
        "shape-0.5",
        "procrustes",
        "regression",
        "cka-rbf",
    ],
)
def test_float32_permutations_are_close_to_float64(name):
    X, Y = _pair(n=200, signal=0.3)
    measure = MEASURES[name]
    a = stats.permutation_test(measure, X, Y, n_permutations=20, seed=3)
    b = stats.permutation_test(measure, X, Y, n_permutations=20, seed=3, precision="float32")
    assert b.statistic == a.statistic
    assert np.allclose(a.null_distribution, b.null_distribution, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="precision must be one of"):
        stats.permutation_test(measure, X, Y, n_permutations=2, precision="float16")
    with pytest.raises(TypeError, match="dtype"):  # the pre-release alias is gone
        stats.permutation_test(measure, X, Y, n_permutations=20, seed=3, dtype="float32")
