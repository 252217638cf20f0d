"""Tests between cells: the paired jackknife difference and multiple-comparison control."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca.stats import BlockMoments, adjust_pvalues, block_of, paired_difference


def _triple(n, rng, scale_c=1.0):
    """A and two noisy copies B, C of a map of A: equal population scores when
    scale_c == 1 (B and C are exchangeable given A)."""
    A = rng.standard_normal((n, 3))
    M = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 1.0]])
    B = A @ M + rng.standard_normal((n, 3))
    C = A @ M + scale_c * rng.standard_normal((n, 3))
    return A, B, C


def test_a_real_difference_is_found_and_a_null_one_is_not():
    rng = np.random.default_rng(0)
    A, B, C = _triple(600, rng, scale_c=2.0)
    r = paired_difference((A, B), (A, C), measure="cca", blocks=20, seed=0)
    assert r.difference == pytest.approx(r.first - r.second)
    # merged block statistics vs one accumulation: round-off of n = 600 terms, cond < 10
    assert r.first == pytest.approx(svcca.MEASURES["cca"].score(A, B), abs=tol(factor=6000))
    assert r.pvalue < 1e-3 and r.low > 0
    same = paired_difference((A, B), (A, B), measure="cca")
    assert same.pvalue == 1.0 and same.standard_error == 0.0


def test_pairing_shrinks_the_standard_error_below_the_unpaired_one():
    rng = np.random.default_rng(1)
    A, B, C = _triple(400, rng)
    r = paired_difference((A, B), (A, C), measure="cka_linear")
    se1 = svcca.stats.interval(A, B, measure="cka_linear").standard_error
    se2 = svcca.stats.interval(A, C, measure="cka_linear").standard_error
    assert r.standard_error < np.hypot(se1, se2)


def test_block_statistics_and_rows_give_the_same_paired_test():
    rng = np.random.default_rng(2)
    A, B, C = _triple(300, rng)
    a = paired_difference((A, B), (A, C), measure="cka_linear", blocks=6, seed=1)
    bm1 = BlockMoments.from_arrays(A, B, blocks=6, seed=1)
    bm2 = BlockMoments.from_arrays(A, C, blocks=6, seed=1)
    b = paired_difference(bm1, bm2, measure="cka_linear")
    rows = dataclasses.replace(svcca.MEASURES["cka_linear"], kind="samples")
    c = paired_difference((A, B), (A, C), measure=rows, blocks=6, seed=1)
    np.testing.assert_allclose(a.replicates, b.replicates, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.replicates, c.replicates, rtol=0, atol=1e-12)
    assert a.pvalue == pytest.approx(c.pvalue, abs=1e-9)


def _type_one_rate(reps: int, n: int, blocks: int) -> float:
    rng = np.random.default_rng(123)
    hits = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        for i in range(reps):
            A, B, C = _triple(n, rng)
            r = paired_difference((A, B), (A, C), measure="cka_linear", blocks=blocks, seed=i)
            hits += r.pvalue < 0.05
    return hits / reps


def test_paired_test_holds_its_level_quick():
    # 100 null repetitions: Binomial(100, 0.05) exceeds 12 with probability 0.002
    assert _type_one_rate(100, 120, 10) <= 0.12


@pytest.mark.slow
def test_paired_test_holds_its_level():
    from scipy.stats import binomtest

    rate = _type_one_rate(2000, 120, 20)
    assert binomtest(round(rate * 2000), 2000, 0.05).pvalue > 0.01, rate


def test_paired_difference_refuses_cells_that_do_not_share_rows():
    rng = np.random.default_rng(3)
    A, B, C = _triple(100, rng)
    with pytest.raises(ValueError, match="must hold the same datapoints"):
        paired_difference((A, B), (A[:50], C[:50]))
    with pytest.raises(TypeError, match=r"first must be a pair \(X, Y\)"):
        paired_difference(A, (A, C))
    with pytest.raises(TypeError, match="both cells as BlockMoments"):
        paired_difference(BlockMoments.from_arrays(A, B, blocks=4), (A, C))
    with pytest.raises(ValueError, match="same rows in the same blocks"):
        paired_difference(
            BlockMoments.from_arrays(A, B, blocks=4, seed=0),
            BlockMoments.from_arrays(A, C, blocks=4, seed=1),
        )
    rows = dataclasses.replace(svcca.MEASURES["cka_linear"], kind="samples")
    with pytest.raises(ValueError, match="Only 1 of 4 blocks hold rows"):
        # seed 22 puts the 3 rows in one block
        paired_difference((A[:3], B[:3]), (A[:3], C[:3]), measure=rows, blocks=4, seed=22)
    assert np.unique(block_of(np.arange(3), 4, seed=22)).size == 1


def test_holm_and_bh_match_their_definitions():
    p = np.array([0.01, 0.02, 0.03, 0.04, 0.5])
    holm = adjust_pvalues(p, method="holm")
    # (m - i + 1) p_(i), made monotone: 0.05, 0.08, 0.09, 0.09, 0.5
    np.testing.assert_allclose(holm.adjusted, [0.05, 0.08, 0.09, 0.09, 0.5], atol=1e-15)
    assert holm.rejected.tolist() == [True, False, False, False, False]
    bh = adjust_pvalues(p, method="bh")
    # m p_(i) / i, made monotone from the top: 0.05 for the first four, 0.5
    np.testing.assert_allclose(bh.adjusted, [0.05, 0.05, 0.05, 0.05, 0.5], atol=1e-15)
    assert bh.rejected.sum() == 4 and bh.family_size == 5


def test_a_matrix_of_cells_keeps_its_shape_and_its_nan_diagonal():
    P = np.array([[np.nan, 0.001, 0.2], [0.001, np.nan, 0.03], [0.2, 0.03, np.nan]])
    r = adjust_pvalues(P, method="holm", alpha=0.05)
    assert r.adjusted.shape == (3, 3) and np.isnan(np.diag(r.adjusted)).all()
    assert r.family_size == 6 and r.adjusted[0, 1] == pytest.approx(0.006)
    assert not r.rejected[0, 0]


def test_too_few_permutations_for_the_correction_warn_with_the_count_needed():
    with pytest.warns(svcca.SVCCAWarning, match=r"Use at least B = m / alpha - 1 = 399"):
        adjust_pvalues(np.full(20, 1 / 100), permutations=99, alpha=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adjust_pvalues(np.full(20, 1 / 1000), permutations=999, alpha=0.05)


def test_adjust_pvalues_refuses_what_is_not_a_family_of_pvalues():
    with pytest.raises(ValueError, match="method must be 'holm' or 'bh'"):
        adjust_pvalues([0.1], method="bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        adjust_pvalues([0.1, 1.5])
    with pytest.raises(ValueError, match="holds no p-value"):
        adjust_pvalues([np.nan])
    with pytest.raises(ValueError, match="alpha must be a number in"):
        adjust_pvalues([0.1], alpha=5)
