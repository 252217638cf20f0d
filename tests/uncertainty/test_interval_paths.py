"""svcca.stats.interval: the one-pass path agrees with recomputing on the rows, the
jackknife formulas with the textbook ones, and every boundary answers or refuses."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca.stats import BlockMoments, block_of, interval

# private: the unequal-block jackknife formula, checked on analytic replicates
from svcca.stats._intervals import jackknife_summary

MOMENTS = [name for name, m in svcca.MEASURES.items() if m.kind == "moments"]


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    Y = X[:, :3] @ rng.standard_normal((3, 3)) + rng.standard_normal((n, 3))
    return X, Y


def _on_rows(name: str) -> svcca.Measure:
    """The same measure declared as a samples measure: interval() then recomputes it on
    the rows of each leave-one-block-out set, an independent path."""
    return dataclasses.replace(svcca.MEASURES[name], name=f"{name}_rows", kind="samples")


@pytest.mark.parametrize("name", MOMENTS)
def test_one_pass_blocks_give_the_interval_of_recomputing_on_the_rows(name):
    X, Y = _data()
    fast = interval(X, Y, measure=name, blocks=8, seed=4)
    slow = interval(X, Y, measure=_on_rows(name), blocks=8, seed=4)
    # scores of subtracted vs directly accumulated statistics: the statistics agree to
    # ~n eps of their scale; every measure here is well conditioned on this data
    # (cond of the whitened blocks < 10), so the scores agree to 10 n eps.
    t = tol(factor=10 * X.shape[0], cond=10)
    np.testing.assert_allclose(fast.replicates, slow.replicates, rtol=0, atol=t)
    for f in ("estimate", "corrected", "standard_error", "low", "high"):
        assert getattr(fast, f) == pytest.approx(getattr(slow, f), abs=20 * t), f
    assert np.array_equal(fast.block_sizes, slow.block_sizes)
    assert fast.blocks == 8 and fast.seed == 4 and fast.n_samples == 400


def test_an_engines_block_statistics_give_the_same_interval():
    X, Y = _data()
    bm = BlockMoments(4, 3, blocks=10, seed=2)
    for s in range(0, 400, 64):
        bm.update(X[s : s + 64], Y[s : s + 64])
    a = interval(bm, measure="cca")
    b = interval(X, Y, measure="cca", blocks=10, seed=2)
    np.testing.assert_allclose(a.replicates, b.replicates, rtol=0, atol=tol(factor=4000, cond=10))
    assert (a.method, a.blocks, a.seed) == ("jackknife", 10, 2)


def test_equal_blocks_reduce_to_quenouille_and_tukey():
    rng = np.random.default_rng(1)
    theta, reps = 0.7, 0.7 + 0.01 * rng.standard_normal(10)
    corrected, se, lo, hi = jackknife_summary(theta, reps, np.full(10, 30), level=0.9)
    g = 10
    assert corrected == pytest.approx(g * theta - (g - 1) * reps.mean(), abs=1e-14)
    assert se == pytest.approx(np.sqrt((g - 1) / g * np.sum((reps - reps.mean()) ** 2)), rel=1e-12)
    from scipy.stats import t

    assert hi - corrected == pytest.approx(t.ppf(0.95, g - 1) * se, rel=1e-12)
    assert corrected - lo == pytest.approx(hi - corrected, rel=1e-12)


def test_a_sample_measure_gets_a_block_jackknife_on_its_rows():
    X, Y = _data(n=150)
    r = interval(X, Y, measure="cka_rbf", blocks=5, seed=0)
    b = block_of(np.arange(150), 5, seed=0)
    want = [svcca.MEASURES["cka_rbf"].score(X[b != j], Y[b != j]) for j in range(5)]
    np.testing.assert_array_equal(r.replicates, want)
    assert r.low < r.corrected < r.high and r.measure == "cka_rbf"


def test_the_bootstrap_is_refused_where_duplicated_rows_bias_the_measure():
    X, Y = _data(n=60)
    with pytest.raises(ValueError, match="duplicated row is its own nearest neighbour"):
        interval(X, Y, measure="rsa", method="bootstrap")


def test_bootstrap_interval_of_a_moments_measure():
    X, Y = _data()
    r = interval(
        X, Y, measure="cka_linear", method="bootstrap", replicates=50, seed=3, transform="none"
    )
    assert r.method == "bootstrap" and r.blocks == 50 and r.replicates.shape == (50,)
    assert r.corrected == pytest.approx(2 * r.estimate - r.replicates.mean(), abs=1e-14)
    assert r.standard_error == pytest.approx(r.replicates.std(ddof=1), rel=1e-12)
    jk = interval(X, Y, measure="cka_linear")
    # two estimates of one standard error: within a factor of two of each other
    assert 0.5 < r.standard_error / jk.standard_error < 2


def test_bounded_scores_are_combined_on_the_logit_scale_and_mapped_back():
    X, Y = _data()
    r = interval(X, Y, measure="cka_linear", blocks=10, seed=1, level=0.9)
    assert r.transform == "logit"
    logit = lambda v: np.log(v / (1 - v))  # noqa: E731
    c, se, lo, hi = jackknife_summary(
        logit(r.estimate), logit(r.replicates), r.block_sizes, level=0.9
    )
    expit = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert (r.corrected, r.low, r.high) == pytest.approx(
        (expit(c), expit(lo), expit(hi)), rel=1e-12
    )
    assert r.standard_error == pytest.approx(se * expit(c) * (1 - expit(c)), rel=1e-12)
    assert interval(X, Y, measure="rsa", blocks=4).transform == "fisher"  # range [-1, 1]
    assert interval(X, Y, measure="cka_linear", transform="none").transform == "none"


def test_a_score_on_its_bound_is_combined_on_its_own_scale():
    X, _ = _data()
    assert interval(X, X, measure="cka_linear").transform == "none"  # every replicate is 1
    with pytest.warns(svcca.SVCCAWarning, match="on the measure's own scale"):
        r = interval(X, X, measure="cka_linear", transform="logit")
    assert r.low == r.high == 1.0
    with pytest.raises(ValueError, match="transform must be 'auto', 'logit'"):
        interval(X, X, transform="log")  # type: ignore[arg-type]


def test_few_rows_warn_where_coverage_breaks_down():
    X, Y = _data(n=100)  # 100 < 20 (4 + 3)
    with pytest.warns(svcca.SVCCAWarning, match=r"Jackknife .* coverage of these intervals"):
        interval(X, Y, measure="cca")
    X, Y = _data(n=200)  # 20 (p + q) <= 200 < 40 (p + q): enough for the jackknife only
    with pytest.warns(svcca.SVCCAWarning, match=r"Bootstrap intervals .* n = 40 \(p \+ q\)"):
        interval(X, Y, measure="cca", method="bootstrap", replicates=20)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", svcca.SVCCAWarning)
        interval(X, Y, measure="cca")
    assert not [w for w in rec if "coverage of these intervals" in str(w.message)]


def test_interval_refuses_what_it_cannot_resample():
    X, Y = _data(n=60)
    m = svcca.Moments.from_arrays(X, Y)
    with pytest.raises(TypeError, match="single Moments holds no blocks"):
        interval(m, measure="cca")
    with pytest.raises(ValueError, match="Unknown measure 'nope'"):
        interval(X, Y, measure="nope")
    with pytest.raises(ValueError, match="level must be a number in"):
        interval(X, Y, level=95)
    with pytest.raises(ValueError, match="method must be 'jackknife' or 'bootstrap'"):
        interval(X, Y, method="percentile")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes no parameter 'keep'"):
        interval(X, Y, measure="cca", params={"keep": 3})
    with pytest.raises(ValueError, match="Only 1 of 4 blocks hold rows"):
        interval(X[:3], Y[:3], measure="rsa", blocks=4, seed=22)  # all 3 rows in one block
    bm = BlockMoments.from_arrays(X, Y, blocks=3)
    with pytest.raises(ValueError, match="needs the rows, not their block statistics"):
        interval(bm, measure="rsa")
    with pytest.raises(ValueError, match="Y must be None"):
        interval(bm, Y, measure="cca")
    with pytest.raises(ValueError, match="at least 3 rows"):
        interval(X[:2], Y[:2], measure="cka_rbf")


def test_the_result_is_frozen_and_owns_its_arrays():
    X, Y = _data()
    r = interval(X, Y, measure="cka_linear")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.low = 0.0  # type: ignore[misc]
    assert not r.replicates.flags.writeable and r.interval == (r.low, r.high)
