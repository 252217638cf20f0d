"""The demo's comparisons: their intervals and tests agree with svcca.stats, and a
difference that the paired test does not establish is said not to hold.

The claim builders are private (``svcca._demo._claims``): ``svcca demo`` runs them on
trained networks, where no test could recompute the activations; here they run on
arrays whose answer is known, against the public ``svcca.stats`` functions.
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np
import pytest
from scipy import stats as sps

import svcca
from conftest import tol

# private: the demo's claim builders and their wording (see the module docstring)
from svcca._demo import _claims as cl
from svcca._demo import _uncertain as un

N, P = 800, 4


def chain_cells(seed: int, noise=(0.3, 0.8, 2.0)):
    """Three cells (X_i, Y_i) on the same rows; Y_i = X_i + noise_i * E_i: cell i's CKA
    falls with i when the noise grows."""
    rng = np.random.default_rng(seed)
    out = []
    for s in noise:
        X = rng.standard_normal((N, P))
        out.append((X, X + s * rng.standard_normal((N, P))))
    return out


def build_chain(runs, measure="cka_linear"):
    few = un.FewRows()
    cells = [[un.cell_statistics(X, Y) for X, Y in run] for run in runs]
    return cl.chain_claims(["a", "b", "c"], cells, measure=measure, few=few), few


def test_chain_claims_agree_with_interval_paired_difference_and_across_runs():
    runs = [chain_cells(s) for s in range(3)]
    claims, few = build_chain(runs)
    assert few.cells == []  # 800 rows of 4 + 4 features: no coverage warning
    eps = tol(factor=1e4)  # the same sums in another order; 21 evaluations each
    for i, c in enumerate(claims):
        for r, run in enumerate(runs):
            (X1, Y1), (X2, Y2) = run[i], run[i + 1]
            a = svcca.stats.interval(X1, Y1, measure="cka_linear", blocks=20, seed=0)
            b = svcca.stats.interval(X2, Y2, measure="cka_linear", blocks=20, seed=0)
            d = svcca.stats.paired_difference((X1, Y1), (X2, Y2), measure="cka_linear")
            np.testing.assert_allclose(c.values[r], [a.estimate, b.estimate], atol=eps)
            np.testing.assert_allclose(
                c.standard_errors[r], [a.standard_error, b.standard_error], atol=eps
            )
            assert c.differences[r] == pytest.approx(d.difference, abs=eps)
            assert c.pvalues[r] == pytest.approx(d.pvalue, rel=1e-6, abs=1e-300)
    # Holm over the 2 steps x 3 runs, as svcca.stats.adjust_pvalues gives it
    flat = np.concatenate([c.pvalues for c in claims])
    ref = svcca.stats.adjust_pvalues(flat, method="holm").adjusted
    np.testing.assert_allclose(np.concatenate([c.adjusted for c in claims]), ref)
    assert {c.family for c in claims} == {6}
    # The intervals across runs are svcca.stats.across_runs' for the same cells.
    layer = {
        "a": [r[0] for r in runs],
        "b": [r[1] for r in runs],
        "c": [r[2] for r in runs],
    }
    results = [
        svcca.pairwise(
            {k: layer[k][r][0] for k in "abc"},
            {k: layer[k][r][1] for k in "abc"},
            measure="cka_linear",
            uncertainty="jackknife",
        )
        for r in range(3)
    ]
    across = svcca.stats.across_runs(results)
    for i, c in enumerate(claims):
        for j, t in ((i, c.first_interval), (i + 1, c.second_interval)):
            mean, lo, hi = t
            assert mean == pytest.approx(across.mean[j, j], abs=eps)
            assert lo == pytest.approx(across.low[j, j], abs=1e-9)
            assert hi == pytest.approx(across.high[j, j], abs=1e-9)
            # and the within-run standard error beside it (RMS over runs)
        se = np.sqrt(np.mean(c.standard_errors[:, 0] ** 2))
        assert se == pytest.approx(across.within[i, i], rel=1e-9)


def test_a_chain_that_falls_holds_and_says_so():
    claims, _ = build_chain([chain_cells(s) for s in range(3)])
    assert all(c.holds for c in claims)
    for c in claims:
        text = un.say(c)
        assert ", holds in each of 3 seeds (largest adjusted p " in text
        assert "does not hold" not in text
        assert f"{c.first} {un.iv(c.first_interval)}" in text


def test_equal_cells_in_population_do_not_hold():
    """b and c are the same population cell (same noise level): the paired test must
    not reject, and the text must say the difference does not hold."""
    claims, _ = build_chain([chain_cells(s, noise=(0.3, 1.0, 1.0)) for s in (10, 11, 12)])
    first, second = claims
    assert first.holds
    assert not second.holds
    assert (second.adjusted > 0.05).any()
    text = un.say(second)
    assert "does not hold: significant in" in text and "holds in each" not in text
    finding = cl.dynamics_finding(
        ("a", "b", "c"), claims, cl.crossing_claims(["a", "b", "c"], np.zeros((3, 3)), 4), 0.9, 1
    )
    assert "b minus c" in finding and "does not hold" in finding
    assert "Bottom-up is not established at every step" in finding
    assert "falls with depth at 1 of 2 steps (b > c does not hold)" in finding


def test_a_reversed_difference_is_named():
    claims, _ = build_chain([chain_cells(s, noise=(2.0, 0.8, 0.3)) for s in range(3)])
    assert not any(c.holds for c in claims)
    assert all(c.why == f"reversed: {c.second} exceeds {c.first} in every seed" for c in claims)


def test_crossings_are_tested_across_runs_with_the_epoch_rounding():
    # Every run: b crosses one epoch after a. With k runs and no spread, the t-test's
    # spread is the rounding's, sd = 1 / sqrt(6) for a difference of two epochs.
    for k, holds in ((3, False), (5, True)):
        crossing = np.tile([0.0, 1.0], (k, 1))
        (c,) = cl.crossing_claims(["a", "b"], crossing, 4)
        t = 1.0 / (1 / np.sqrt(6) / np.sqrt(k))
        assert c.across_pvalue == pytest.approx(2 * sps.t.sf(t, k - 1), rel=1e-12)
        assert c.holds is holds
        half = sps.t.ppf(0.975, k - 1) / np.sqrt(6) / np.sqrt(k)
        np.testing.assert_allclose(c.difference_interval, (1.0, 1 - half, 1 + half))
        assert np.isnan(c.pvalues).all()
    # A spread larger than the rounding is used as it is.
    crossing = np.array([[0, 1], [0, 3], [0, 2], [0, 6.0]])
    (c,) = cl.crossing_claims(["a", "b"], crossing, 8)
    ref = sps.ttest_1samp(crossing[:, 1] - crossing[:, 0], 0.0)
    assert c.across_pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    # Ties in every run: no difference, said plainly.
    (c,) = cl.crossing_claims(["a", "b"], np.ones((5, 2)), 4)
    assert not c.holds and c.across_pvalue == 1.0
    assert "does not hold: not significant across seeds" in un.say(c)


def test_seed_jackknife_of_a_mean_over_pairs():
    """For pair values v_ij = a_i + a_j the mean over pairs is 2 mean(a), and dropping a
    seed drops it from that mean: the jackknife standard error is 2 sd(a) / sqrt(k)."""
    a = np.array([0.1, 0.5, 0.2, 0.9, 0.4])
    k = a.size
    pairs = list(combinations(range(k), 2))
    v = np.array([a[i] + a[j] for i, j in pairs])
    mean, lo, hi = un.seed_jackknife(v, pairs)
    half = sps.t.ppf(0.975, k - 1) * 2 * a.std(ddof=1) / np.sqrt(k)
    assert mean == pytest.approx(2 * a.mean())
    assert (lo, hi) == pytest.approx((mean - half, mean + half), abs=tol(factor=100))
    assert np.isnan(un.seed_jackknife(v[:1], pairs[:1])[1])  # two seeds: no interval
    # the t-interval over runs of one value per run is the same formula without pairs
    assert un.t_interval(a)[1] == pytest.approx(
        a.mean() - sps.t.ppf(0.975, k - 1) * a.std(ddof=1) / np.sqrt(k)
    )


def test_group_claims_pair_each_pair_of_seeds_with_its_twin():
    rng = np.random.default_rng(3)
    k, n = 3, 600
    Z = rng.standard_normal((n, P))
    close = [Z + 0.3 * rng.standard_normal((n, P)) for _ in range(k)]
    far = [Z + 1.5 * rng.standard_normal((n, P)) for _ in range(k)]
    pairs = list(combinations(range(k), 2))
    few = un.FewRows()
    first = [[un.cell_statistics(close[i], close[j])] for i, j in pairs]
    second = [[un.cell_statistics(far[i], far[j])] for i, j in pairs]
    (c,), g1, g2 = cl.group_claims(
        ["h"], first, second, pairs, measure="pwcca", few=few, names=("close", "far")
    )
    for m, (i, j) in enumerate(pairs):
        d = svcca.stats.paired_difference((close[i], close[j]), (far[i], far[j]), measure="pwcca")
        assert g1[m, 0] == pytest.approx(svcca.pwcca(close[i], close[j]).score, abs=1e-9)
        assert c.pvalues[m] == pytest.approx(d.pvalue, rel=1e-6)
        assert c.differences[m] == pytest.approx(d.difference, abs=1e-12)
    assert c.holds and c.unit == "pair of seeds"
    assert c.first_interval == pytest.approx(un.seed_jackknife(g1[:, 0], pairs))
    assert "holds in each of 3 pairs of seeds" in un.say(c)
    (back,), _, _ = cl.group_claims(
        ["h"], second, first, pairs, measure="pwcca", few=few, names=("far", "close")
    )
    assert not back.holds
    assert back.why == "reversed: close exceeds far in every pair of seeds"


def test_extreme_claims_correct_for_the_pick():
    rng = np.random.default_rng(4)
    n, C = 900, 4
    runs, means = [], []
    for _ in range(3):
        M = rng.standard_normal((n, 3))
        logits = np.stack(
            [M[:, 0] + s * rng.standard_normal(n) for s in (0.2, 0.5, 1.0, 3.0)], axis=1
        )
        runs.append([{c: un.cell_statistics(M, logits[:, c : c + 1]) for c in range(C)}])
        means.append([svcca.cca(M, logits[:, c : c + 1]).score for c in range(C)])
        last = (M, logits)
    means = np.mean(means, axis=0)[None]
    (c,) = cl.extreme_claims(["conv"], runs, means, measure="cca", few=un.FewRows())
    assert (c.first, c.second, c.selection) == ("digit 0", "digit 3", 6)
    M, logits = last
    d = svcca.stats.paired_difference((M, logits[:, :1]), (M, logits[:, 3:]), measure="cca")
    assert c.pvalues[-1] == pytest.approx(d.pvalue, rel=1e-6, abs=1e-300)
    ref = svcca.stats.adjust_pvalues(np.minimum(1, 6 * c.pvalues)).adjusted
    np.testing.assert_allclose(c.adjusted, ref)
    assert "Bonferroni over the 6 comparisons each was picked from" in un.method([c])


def test_few_rows_are_noted_and_other_warnings_pass_through():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 5))
    few = un.FewRows()
    few.run("wide", svcca.stats.interval, un.cell_statistics(X, X + rng.standard_normal((60, 5))))
    assert few.cells == ["wide"]
    assert "wide rest on fewer than 20 (p + q) rows" in few.note()

    def other():
        warnings.warn("something else", UserWarning, stacklevel=1)

    with pytest.warns(UserWarning, match="something else"):
        few.run("x", other)
    assert few.cells == ["wide"]


def test_fisher_interval_and_p_formatting():
    lo, hi = cl.fisher_interval(0.5, 10)
    z = sps.norm.ppf(0.975) / np.sqrt(7)
    assert (lo, hi) == pytest.approx((np.tanh(np.arctanh(0.5) - z), np.tanh(np.arctanh(0.5) + z)))
    assert np.isnan(cl.fisher_interval(1.0, 10)[0]) and np.isnan(cl.fisher_interval(0.3, 3)[0])
    assert [un.fmt_p(p) for p in (0.5, 0.0123, 2e-8, 0.0)] == ["0.5", "0.012", "2e-08", "< 1e-15"]
    assert un.iv((-0.0001, -0.0004, 0.02)) == "0.00 [0.00, 0.02]"
