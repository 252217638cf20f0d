"""A p-value against independence for every cell (issue 21, "Tests per cell").

Permutation p-values of ``pairwise`` equal ``svcca.stats.permutation_test``'s for the
same seed (the same permutations, each side's work reused); asymptotic p-values equal
the single-pair tests (Bartlett; the HSIC null, checked against an independent
computation of its Liu-Tang-Zhang approximation here) and are uniform under
independence (Kolmogorov-Smirnov at a fixed seed); ``torch.compare`` equals ``pairwise``
of the captured activations; the family, the adjustment over it and the paired test
between cells read the result alone.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

import svcca
import svcca.torch as st
from conftest import tol

LEVEL = 1e-3


def _reps(n=400, seed=0):
    """Three representations: a and b share a latent, c is independent of both."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    return {
        "a": Z @ rng.standard_normal((3, 6)) + rng.standard_normal((n, 6)),
        "b": Z @ rng.standard_normal((3, 5)) + 2 * rng.standard_normal((n, 5)),
        "c": rng.standard_normal((n, 4)) @ rng.standard_normal((4, 4)),
    }


# ---------------------------------------------------------------- permutations
@pytest.mark.parametrize(
    ("measure", "params"),
    [
        ("cka_rbf", {}),  # split, declares permute (P K P^T)
        ("rsa", {}),  # split, declares permute (gathered RDM)
        ("mutual_knn", {"k": 5}),  # split, no permute: the permuted rows are prepared
        ("cca", {}),  # one-pass measure with a permutation scorer
        ("procrustes", {}),  # moments measure served per pair, permutation scorer
        ("pwcca", {}),  # one-pass measure without a scorer: full calls
        ("rsm_norm_difference", {}),  # smaller is more similar: counts null <= statistic
    ],
)
def test_permutation_cells_equal_the_single_pair_test(measure, params):
    reps = _reps(n=120)
    r = svcca.pairwise(
        reps, measure=measure, params=params, test="permutation", permutations=39, seed=5
    )
    assert r.test == {"method": "permutation", "permutations": 39, "seed": 5, "family_size": 3}
    m = svcca.MEASURES[measure]
    alternative = "greater" if m.larger_is_more_similar else "less"
    for a, b in [("a", "b"), ("a", "c"), ("b", "c")]:
        single = svcca.stats.permutation_test(
            measure, reps[a], reps[b], n_permutations=39, seed=5, alternative=alternative,
            params=params,
        )  # fmt: skip
        assert r.pvalues[r.position(a, b)] == single.pvalue, (a, b)
        assert r.pvalues[r.position(b, a)] == single.pvalue  # one test per pair, mirrored
    assert np.isnan(np.diag(r.pvalues)).all()
    assert r.pvalues[r.position("a", "b")] == 1 / 40  # the shared latent is found


def test_permutation_pvalues_of_the_matrix_are_uniform_under_independence():
    """The pairwise path, not only the single test: 300 matrices of three independent
    representations, each of their 3 cells' p-values against the uniform grid."""
    B = 19
    rng = np.random.default_rng(2026)
    ps = []
    for _ in range(100):
        reps = [rng.standard_normal((24, 3)) for _ in range(3)]
        r = svcca.pairwise(reps, measure="cka_linear", test="permutation", permutations=B,
                           seed=int(rng.integers(2**32)))  # fmt: skip
        ps.extend(r.pvalues[np.triu_indices(3, 1)])
    k = np.rint(np.array(ps) * (B + 1)).astype(int)
    counts = np.bincount(k - 1, minlength=B + 1)
    assert sps.chisquare(counts).pvalue > LEVEL  # 15 expected per grid value


def test_rectangular_family_skips_a_shared_representation_and_counts_every_cell():
    reps = _reps(n=80)
    r = svcca.pairwise(
        {"a": reps["a"], "b": reps["b"]}, {"a2": reps["a"], "c": reps["c"]},
        measure="cka_linear", test="permutation", permutations=9,
    )  # fmt: skip
    assert np.isnan(r.pvalues[0, 0]) and not np.isnan(r.pvalues).sum() > 1
    assert r.test["family_size"] == 3


def test_default_permutations_reach_holms_first_threshold():
    reps = {f"l{i}": np.random.default_rng(i).standard_normal((30, 2)) for i in range(3)}
    r = svcca.pairwise(reps, measure="cka_linear", test="permutation")
    assert r.test["permutations"] == 999  # 3 cells: the floor of 999
    # 66 cells (a 12 x 12 square): ceil(66 / 0.05) - 1 = 1319, so 1 / (B + 1) = 0.05 / 66
    reps12 = {f"l{i}": np.random.default_rng(i).standard_normal((8, 1)) for i in range(12)}
    r12 = svcca.pairwise(reps12, measure="cka_linear", test="permutation")
    assert r12.test["permutations"] == 1319 and r12.test["family_size"] == 66
    assert 1 / (r12.test["permutations"] + 1) <= 0.05 / 66


# ---------------------------------------------------------------- asymptotic tests
def _hsic_ltz(X, Y):
    """Linear CKA's asymptotic p-value computed here from its definition: T = n ||C_xy||^2
    against sum_ab lam_a mu_b chi2_1, Liu-Tang-Zhang (2009, central case)."""
    n = X.shape[0]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Cx, Cy, Cxy = Xc.T @ Xc / n, Yc.T @ Yc / n, Xc.T @ Yc / n
    w = np.outer(np.linalg.eigvalsh(Cx), np.linalg.eigvalsh(Cy)).ravel()
    c1, c2, c3 = w.sum(), (w**2).sum(), (w**3).sum()
    T = n * np.sum(Cxy**2)
    ell = c2**3 / c3**2
    return sps.chi2.sf(ell + (T - c1) / np.sqrt(2 * c2) * np.sqrt(2 * ell), ell)


@pytest.mark.parametrize("measure", ["cca", "pwcca", "svcca", "cka_linear", "pls"])
@pytest.mark.parametrize("uncertainty", [None, "jackknife"])
def test_asymptotic_cells_equal_the_single_pair_tests(measure, uncertainty):
    reps = _reps(n=500)
    kw = {"keep": 3} if measure == "svcca" else {}
    r = svcca.pairwise(reps, measure=measure, test="asymptotic", uncertainty=uncertainty, **kw)
    stat = "hsic" if measure in ("cka_linear", "pls") else "bartlett"
    assert r.test == {"method": "asymptotic", "statistic": stat, "family_size": 3}
    for a, b in [("a", "b"), ("a", "c"), ("b", "c")]:
        X, Y = reps[a], reps[b]
        if stat == "hsic":
            want = _hsic_ltz(X, Y)
        elif measure == "svcca":  # Bartlett on the kept directions of each side
            res = svcca.svcca(X, Y, keep=3)
            k = res.correlations.size
            chi = -(500 - 1 - (3 + 3 + 1) / 2) * np.log(1 - res.correlations**2).sum()
            want = sps.chi2.sf(chi, 3 * 3) if k == 3 else np.nan
        else:
            want = svcca.stats.bartlett(X, Y).pvalues[0]
        got = r.pvalues[r.position(a, b)]
        # p-values near 0 underflow alike; elsewhere round-off of the statistic, times
        # the chi-square density (<= 1), is far below 1e-9
        assert got == pytest.approx(want, rel=1e-8, abs=1e-12), (a, b)
        assert r.pvalues[r.position(b, a)] == got
    assert r.pvalues[r.position("a", "b")] < 1e-10 and r.pvalues[r.position("a", "c")] > 1e-3


def _asymptotic_pvalues(measure, reps, n, p, q, seed, heavy=False):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(reps):
        if heavy:  # independent, non-Gaussian, correlated features within each side
            X = rng.standard_t(5, (n, p)) @ rng.standard_normal((p, p))
            Y = rng.exponential(size=(n, q)) @ np.diag(np.linspace(1, 5, q))
        else:
            X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p))
            Y = rng.standard_normal((n, q))
        r = svcca.pairwise([X, Y], measure=measure, test="asymptotic")
        out.append(r.pvalues[0, 1])
    return np.array(out)


@pytest.mark.parametrize("measure", ["cca", "cka_linear"])
def test_asymptotic_pvalues_are_uniform_under_independence(measure):
    p = _asymptotic_pvalues(measure, 300, n=20 * 9, p=5, q=4, seed=2026)
    assert sps.kstest(p, "uniform").pvalue > LEVEL


@pytest.mark.slow
@pytest.mark.parametrize("measure", ["cca", "svcca", "cka_linear"])
@pytest.mark.parametrize("heavy", [False, True])
@pytest.mark.parametrize("ratio", [10, 20])
def test_asymptotic_pvalues_are_uniform_at_scale(measure, heavy, ratio):
    p = _asymptotic_pvalues(measure, 2000, n=ratio * 14, p=8, q=6, seed=2027, heavy=heavy)
    assert sps.kstest(p, "uniform").pvalue > LEVEL, measure


@pytest.mark.slow
def test_below_the_warning_threshold_the_hsic_pvalues_drift():
    """Where the warning starts: at n = 2 (p + q) the HSIC p-values are not uniform."""
    p = _asymptotic_pvalues("cka_linear", 2000, n=2 * 14, p=8, q=6, seed=2028)
    assert sps.kstest(p, "uniform").pvalue < LEVEL


def test_asymptotic_warns_below_ten_rows_per_feature():
    reps = _reps(n=100)  # 100 < 10 (6 + 5)
    with pytest.warns(svcca.SVCCAWarning, match="measured to drift from uniform") as rec:
        svcca.pairwise(reps, measure="cca", test="asymptotic")
    assert rec[0].filename == __file__  # the user's call is named


# ---------------------------------------------------------------- compare
class _Half(torch.nn.Module):
    """A net that sees only half of the input's features: two of them, on disjoint
    halves of independent features, have independent layers."""

    def __init__(self, part: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.part = part
        self.f1 = torch.nn.Linear(4, 6)
        self.f2 = torch.nn.Linear(6, 5)

    def forward(self, x):
        h = torch.tanh(self.f1(x[:, 4 * self.part : 4 * self.part + 4]))
        return self.f2(h)


@pytest.mark.parametrize("measure", ["cca", "cka_linear", "svcca"])
@pytest.mark.parametrize("uncertainty", [None, "jackknife"])
def test_compare_asymptotic_equals_pairwise_of_the_captured_activations(measure, uncertainty):
    a, b = _Half(0, 0), _Half(1, 1)
    x = torch.randn(700, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = a.double(), b.double()
    batches = [x[i : i + 96] for i in range(0, 700, 96)]
    kw = {"keep": 3} if measure == "svcca" else {}
    r = st.compare(a, b, batches, ["f1", "f2"], measure=measure, test="asymptotic",
                   uncertainty=uncertainty, **kw)  # fmt: skip
    ca = st.capture(a, batches, ["f1", "f2"], dtype=np.float64)
    cb = st.capture(b, batches, ["f1", "f2"], dtype=np.float64)
    p = svcca.pairwise(dict(ca), {f"b.{k}": v for k, v in cb.items()}, measure=measure,
                       test="asymptotic", **kw)  # fmt: skip
    assert r.test == p.test and r.test["family_size"] == 4
    # chi-square tails of statistics equal to round-off (cond ~ 1e3 of these layers)
    np.testing.assert_allclose(r.pvalues, p.pvalues, rtol=1e-8, atol=tol(cond=1e3))
    assert (r.pvalues > 1e-4).any()  # independent layers: not every cell is tiny


def test_compare_permutation_for_a_measure_kept_per_pair():
    a, b = _Half(0, 0), _Half(1, 1)
    x = torch.randn(90, 8, generator=torch.Generator().manual_seed(1))
    batches = [x[:50], x[50:]]
    r = st.compare(a, b, batches, ["f2"], measure="cka_rbf", test="permutation",
                   permutations=19, seed=3)  # fmt: skip
    ca, cb = st.capture(a, batches, ["f2"]), st.capture(b, batches, ["f2"])
    single = svcca.stats.permutation_test("cka_rbf", ca["f2"], cb["f2"], n_permutations=19, seed=3)
    assert r.pvalues[0, 0] == single.pvalue


def test_compare_refuses_what_it_cannot_test():
    a, b = _Half(0, 0), _Half(1, 1)
    batches = [torch.randn(40, 8)]
    with pytest.raises(ValueError, match="compare streams them"):
        st.compare(a, b, batches, ["f2"], measure="cca", test="permutation")
    with pytest.raises(ValueError, match="No asymptotic test of independence.*capture the"):
        st.compare(a, b, batches, ["f2"], measure="cka_minibatch", test="asymptotic")


# ---------------------------------------------------------------- refusals
def test_bad_test_keywords_are_refused():
    reps = _reps(n=100)
    with pytest.raises(ValueError, match="test must be None, 'permutation'"):
        svcca.pairwise(reps, measure="cca", test="bartlett")
    with pytest.raises(ValueError, match="permutations= is for test='permutation'; pass"):
        svcca.pairwise(reps, measure="cca", permutations=99)
    with pytest.raises(ValueError, match="the asymptotic test draws none"):
        svcca.pairwise(reps, measure="cca", test="asymptotic", permutations=99)
    with pytest.raises(ValueError, match="No asymptotic test .* Use test='permutation'"):
        svcca.pairwise(reps, measure="cka_rbf", test="asymptotic")
    with pytest.raises(ValueError, match="permutations must be"):
        svcca.pairwise(reps, measure="cca", test="permutation", permutations=0)


# ---------------------------------------------------------------- on the result
def test_adjust_pvalues_of_a_result_counts_each_pair_once_and_mirrors():
    reps = _reps(n=300)
    r = svcca.pairwise(reps, measure="cka_linear", test="asymptotic")
    adj = svcca.stats.adjust_pvalues(r, method="holm")
    upper = np.triu_indices(3, 1)
    by_hand = svcca.stats.adjust_pvalues(r.pvalues[upper], method="holm")
    assert adj.family_size == 3
    np.testing.assert_array_equal(adj.adjusted[upper], by_hand.adjusted)
    np.testing.assert_array_equal(adj.adjusted, adj.adjusted.T)  # mirrored; NaN diagonal
    assert adj.rejected[r.position("b", "a")] and not adj.rejected[0, 0]
    named = svcca.stats.adjust_pvalues(r, cells=[("b", "a"), ("a", "c")], method="bh")
    assert named.family_size == 2
    assert np.isnan(named.adjusted[r.position("b", "c")])


def test_adjust_pvalues_of_a_result_warns_when_permutations_are_too_few():
    reps = {f"l{i}": np.random.default_rng(i).standard_normal((20, 2)) for i in range(5)}
    r = svcca.pairwise(reps, measure="cka_linear", test="permutation", permutations=19)
    with pytest.warns(svcca.SVCCAWarning, match="no cell can be significant") as rec:
        svcca.stats.adjust_pvalues(r)
    assert rec[0].filename == __file__


def test_adjust_pvalues_refusals():
    reps = _reps(n=100)
    bare = svcca.pairwise(reps, measure="cca")
    with pytest.raises(ValueError, match="This result has no p-values; make it with test="):
        svcca.stats.adjust_pvalues(bare)
    r = svcca.pairwise(reps, measure="cca", test="asymptotic")
    with pytest.raises(ValueError, match="has no test .* leave it out of cells="):
        svcca.stats.adjust_pvalues(r, cells=[("a", "a")])
    with pytest.raises(TypeError, match=r"cells= holds \(row, col\) label pairs"):
        svcca.stats.adjust_pvalues(r, cells=["a"])
    with pytest.raises(TypeError, match="only a PairwiseResult has"):
        svcca.stats.adjust_pvalues([0.1, 0.2], cells=[("a", "b")])
    with pytest.raises(KeyError, match="No row labelled 'z'"):
        svcca.stats.adjust_pvalues(r, cells=[("z", "a")])


@pytest.mark.parametrize(
    ("measure", "params"),
    [("cka_linear", {}), ("cca", {}), ("svcca", {"keep": 3}), ("cka_rbf", {})],
)
def test_cell_difference_equals_the_paired_test_on_the_arrays(measure, params):
    reps = _reps(n=400)
    if measure == "svcca":
        r = svcca.pairwise(
            reps, measure=measure, uncertainty="jackknife", blocks=10, seed=2, **params
        )
    else:
        r = svcca.pairwise(reps, measure=measure, params=params, uncertainty="jackknife",
                           blocks=10, seed=2)  # fmt: skip
    d = svcca.stats.cell_difference(r, ("a", "b"), ("a", "c"))
    want = svcca.stats.paired_difference(
        (reps["a"], reps["b"]), (reps["a"], reps["c"]), measure=measure, blocks=10, seed=2,
        params=params,
    )  # fmt: skip
    # replicates from slices of the side-by-side statistic vs each pair's own: round-off
    # of one subtraction (docs/uncertainty.md), amplified by the jackknife's factor G
    atol = tol(cond=1e3, factor=100.0)
    for f in ("first", "second", "difference", "corrected", "standard_error", "low", "high"):
        assert getattr(d, f) == pytest.approx(getattr(want, f), abs=atol), f
    assert d.pvalue == pytest.approx(want.pvalue, abs=1e-9)
    assert d.pvalue < 0.01 and d.blocks == 10 and d.n_samples == 400


def test_cell_difference_refusals():
    reps = _reps(n=100)
    with pytest.raises(ValueError, match="needs each cell's jackknife replicates"):
        svcca.stats.cell_difference(svcca.pairwise(reps, measure="cca"), ("a", "b"), ("a", "c"))
    with pytest.raises(TypeError, match="result must be a svcca.PairwiseResult"):
        svcca.stats.cell_difference(np.eye(3), ("a", "b"), ("a", "c"))


def test_pvalues_travel_to_pandas_and_json():
    reps = _reps(n=300)
    r = svcca.pairwise(reps, measure="cca", test="asymptotic", uncertainty="jackknife", blocks=5)
    with pytest.raises(ValueError, match="read-only"):
        r.pvalues[0, 1] = 0.5
    long = r.cells_to_pandas()
    assert list(long.columns) == ["row", "col", "value", "corrected", "se", "low", "high", "pvalue"]
    assert math.isnan(long.loc[0, "pvalue"]) and long.loc[1, "pvalue"] == r.pvalues[0, 1]
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))  # NaN written as null
    assert d["pvalues"][0][0] is None and d["pvalues"][0][1] == r.pvalues[0, 1]
    assert d["test"]["statistic"] == "bartlett"
    assert r.to_pandas().attrs["test"]["method"] == "asymptotic"


def test_asymptotic_warning_names_the_call_on_the_block_statistics_path():
    reps = _reps(n=100)
    with pytest.warns(svcca.SVCCAWarning, match="measured to drift from uniform") as rec:
        svcca.pairwise(reps, measure="cca", test="asymptotic", uncertainty="jackknife", blocks=5)
    assert __file__ in [w.filename for w in rec if "drift" in str(w.message)]
