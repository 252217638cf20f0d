"""Agreement with the outputs of the original google/svcca code on fixed inputs.

Where the tolerances come from
------------------------------
The reference numbers were computed by the original code with BLAS on one machine, on
inputs that differ from ours (built without BLAS, :mod:`reference_inputs`) by the
round-off of one product. Both sides then carry round-off of their own, and the
original regularises where we do not. So each comparison allows, with
``eps = 2.2e-16``:

* round-off, :func:`roundoff`: ``(2 p + k) eps cond``. Each of the two computations
  (the reference's and ours) is backward stable with a backward error of about
  ``p eps`` relative (``p = p_x + p_y`` features: LAPACK's ``O(p) eps`` bounds for the
  factorisations, ``pinv`` and the eigendecomposition square root); the reference's
  input was a BLAS product of inner length ``k``, ours an exact one, which differ by
  ``k eps`` relative. The original whitens the covariance blocks with ``pinv`` and a
  matrix square root, which amplifies a relative perturbation by their condition
  number ``cond`` (the larger side's, computed from the inputs below). Case 2
  (``A`` against ``M @ A``) has ``cond = 3.6e4``: round-off up to ``7.9e-12 p``; the
  reference's own coefficients are ``2.1e-10`` away from their exact value 1;
* the original's regularisation, :func:`regularisation`: with ``epsilon > 0`` it adds
  ``epsilon * max|S|`` to the diagonal of each rescaled covariance block, a relative
  perturbation of at most ``epsilon * cond`` of ``S^-1``; a squared correlation moves by
  at most that (both sides), a correlation by half of it. Our exact CCA does not
  regularise (its ``epsilon`` only prunes), so ours and the reference differ by up to
  ``epsilon (cond_x + cond_y) / 2`` (5.5e-8 in case 3; 2.4e-9 seen). The compat
  functions regularise as the original does: round-off only.

A sum of ``n`` coefficients is allowed ``n`` times the coefficient tolerance; a mean of
some of them the coefficient tolerance, when the cut-off index is certain: when
``threshold_margin`` exceeds the sum's relative tolerance. Singular values (PCA, PLS)
have round-off ``(2 p + k) eps s_max``: a backward-stable SVD gets every singular value,
the smallest included, to ``p eps`` times the *largest*, not relatively. PWCCA's paper
weights are a function of the canonical directions, which rotate by up to
``delta / gap`` (Wedin) under a perturbation ``delta`` of the whitened cross block,
``gap`` the smallest distance between two correlations: weights are allowed
``2 delta / gap`` and the weighted mean ``2 delta`` (a rotation between two directions
moves the mean by the angle times their correlations' difference, at most the gap).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import svcca
from conftest import tol
from reference_inputs import matmul_exact, reference_inputs, sha256
from svcca import compat

REF = json.loads((Path(__file__).parents[1] / "data" / "reference_core.json").read_text())

# Inner length of the BLAS product each reference input was built with (0: none).
PRODUCT_LENGTH = {"case1": 0, "case2": 100, "case3": 10, "case6c": 10}


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    data = reference_inputs()
    assert set(data) == set(REF["input_sha256"])
    for key, arr in data.items():
        assert sha256(arr) == REF["input_sha256"][key], f"generated input {key} changed"
    return data


def cov_cond(a: np.ndarray) -> float:
    """Condition number of the covariance of ``(neurons, datapoints)`` acts."""
    w = np.linalg.eigvalsh(np.cov(a))
    return float(w[-1] / w[0])


def roundoff(a: np.ndarray, b: np.ndarray, family: str) -> float:
    """Round-off difference between the reference's CCA output and a recomputation."""
    p = a.shape[0] + b.shape[0]
    k = PRODUCT_LENGTH[family]
    return tol(np.float64, cond=max(cov_cond(a), cov_cond(b)), factor=2 * p + k)


def regularisation(a: np.ndarray, b: np.ndarray, epsilon: float) -> float:
    """How far the original's ``epsilon`` regularisation moves a correlation."""
    return 0.5 * epsilon * (cov_cond(a) + cov_cond(b))


def min_gap(values) -> float:
    return float(np.min(np.diff(np.sort(values))))


# (case, acts a, acts b, epsilon, family, acts left after pruning: their conditioning)
CCA_CASES = [
    ("case1", "case1_A", "case1_B", 0.0, "case1", ("case1_A", "case1_B")),
    ("case2", "case1_A", "case2_MA", 0.0, "case2", ("case1_A", "case2_MA")),
    ("case3", "case3_A", "case3_B", 0.0, "case3", ("case3_A", "case3_B")),
    ("case3_eps", "case3_A", "case3_B", 1e-10, "case3", ("case3_A", "case3_B")),
    ("case4", "case4_A", "case3_B", 1e-10, "case3", ("case3_A", "case3_B")),
]
CASE_IDS = [c[0] for c in CCA_CASES]


def _check_coefficients(ref, coefs, mean, total, coef_tol):
    np.testing.assert_allclose(coefs, ref["cca_coef1"], rtol=0, atol=coef_tol)
    n = len(ref["cca_coef1"])
    assert total == pytest.approx(ref["sum_field"], abs=n * coef_tol)
    # The thresholded mean depends on a discrete cut-off: certain when the margin of the
    # cumulative fraction exceeds its error.
    if ref["threshold_margin"] > n * coef_tol / ref["sum_field"]:
        assert mean == pytest.approx(ref["mean_field"], abs=coef_tol)


@pytest.mark.parametrize(("case", "a", "b", "eps", "family", "kept"), CCA_CASES, ids=CASE_IDS)
def test_cca_matches_original_coefficients(arrays, case, a, b, eps, family, kept):
    ref = REF[case]
    ka, kb = arrays[kept[0]], arrays[kept[1]]
    coef_tol = regularisation(ka, kb, eps) + roundoff(ka, kb, family)
    r = svcca.cca(arrays[a].T, arrays[b].T, epsilon=eps)
    _check_coefficients(ref, r.correlations, r.thresholded_mean, r.correlations.sum(), coef_tol)
    assert r.pruned_x.indices.tolist() == ref["x_removed"]
    assert r.pruned_y.indices.tolist() == ref["y_removed"]


@pytest.mark.parametrize(("case", "a", "b", "eps", "family", "kept"), CCA_CASES, ids=CASE_IDS)
def test_compat_reproduces_original_dict(arrays, case, a, b, eps, family, kept):
    ref = REF[case]
    coef_tol = roundoff(arrays[kept[0]], arrays[kept[1]], family)  # same regularisation
    r = compat.get_cca_similarity(arrays[a], arrays[b], epsilon=eps, verbose=False)
    _check_coefficients(ref, r["cca_coef1"], r["mean"][0], r["sum"][0], coef_tol)
    np.testing.assert_array_equal(r["cca_coef2"], r["cca_coef1"])
    assert np.flatnonzero(~r["x_idxs"]).tolist() == ref["x_removed"]


def test_case4_pruning_reasons(arrays):
    r = svcca.cca(arrays["case4_A"].T, arrays["case3_B"].T, epsilon=1e-10)
    reasons = dict(zip(r.pruned_x.indices.tolist(), r.pruned_x.reasons, strict=True))
    assert {reasons[i] for i in (0, 10, 33, 50, 71)} == {"constant"}
    assert {reasons[i] for i in (5, 40, 65)} == {"numerically constant"}
    assert r.rank_x == 64


def test_case4_epsilon_zero_does_not_fail(arrays):
    """The original's SVD failed to converge here; we prune the numerically constant rows."""
    coef_tol = roundoff(arrays["case3_A"], arrays["case3_B"], "case3")  # case 3, pruned
    r = svcca.cca(arrays["case4_A"].T, arrays["case3_B"].T, epsilon=0.0)
    np.testing.assert_allclose(r.correlations, REF["case3"]["cca_coef1"], atol=coef_tol)
    d = compat.get_cca_similarity(arrays["case4_A"], arrays["case3_B"], verbose=False)
    np.testing.assert_allclose(d["cca_coef1"], REF["case3"]["cca_coef1"], atol=coef_tol)


def _top_directions(acts: np.ndarray, k: int) -> np.ndarray:
    """Tutorial 001's reduction: the top-``k`` singular directions of the centred acts."""
    c = acts - acts.mean(axis=1, keepdims=True)
    U, s, Vt = np.linalg.svd(c, full_matrices=False)
    return s[:k, None] * Vt[:k]


@pytest.mark.parametrize(
    ("case", "a", "b", "family"),
    [
        ("case5_case3", "case3_A", "case3_B", "case3"),
        ("case5_case1", "case1_A", "case1_B", "case1"),
    ],
)
def test_svcca_top20_matches_tutorial(arrays, case, a, b, family):
    """The tutorial ran the original CCA (epsilon 1e-10) on the top 20 directions."""
    ref = REF[case]
    ra, rb = _top_directions(arrays[a], 20), _top_directions(arrays[b], 20)
    coef_tol = regularisation(ra, rb, 1e-10) + roundoff(ra, rb, family)
    r = svcca.svcca(arrays[a].T, arrays[b].T, keep=20)
    assert (r.kept_x, r.kept_y) == (20, 20)
    np.testing.assert_allclose(r.correlations, ref["cca_coef1"], atol=coef_tol)
    assert r.thresholded_mean == pytest.approx(ref["mean_field"], abs=coef_tol)


@pytest.mark.parametrize("eps", ["epsilon_1e-10", "epsilon_0"])
def test_pwcca_paper_definition(arrays, eps):
    epsilon = 1e-10 if eps == "epsilon_1e-10" else 0.0
    a, b = arrays["case3_A"], arrays["case3_B"]
    A, B = a.T, b.T
    delta = roundoff(a, b, "case3")
    ab = svcca.pwcca(A, B, epsilon=epsilon)
    ba = svcca.pwcca(B, A, epsilon=epsilon)
    assert ab.weighted_by == "y" and ba.weighted_by == "x"
    assert ab.weights.sum() == pytest.approx(1.0, abs=tol(np.float64, factor=len(ab.weights)))
    # Our epsilon only prunes (nothing here): the exact values, the reference's
    # epsilon = 0 run, to round-off ...
    exact = REF["case6"]["epsilon_0"]
    assert ab.score == pytest.approx(exact["paper(A,B)"]["pwcca_mean"], abs=2 * delta)
    assert ba.score == pytest.approx(exact["paper(B,A)"]["pwcca_mean"], abs=2 * delta)
    gap = min_gap(REF["case3"]["cca_coef1"])
    np.testing.assert_allclose(ab.weights, exact["paper(A,B)"]["weights"], atol=2 * delta / gap)
    # ... and the reference's own run at this epsilon, which regularised.
    ref = REF["case6"][eps]
    score_tol = 2 * (regularisation(a, b, epsilon) + delta)
    assert ab.score == pytest.approx(ref["paper(A,B)"]["pwcca_mean"], abs=score_tol)
    assert ba.score == pytest.approx(ref["paper(B,A)"]["pwcca_mean"], abs=score_tol)


def test_pwcca_case6c_silent_bug_is_gone(arrays):
    ref = REF["case6c"]
    A, B = arrays["case6c_A"], arrays["case6c_B"]
    live_b = np.delete(B, [3, 20, 47], axis=0)  # the dead neurons are pruned
    delta = roundoff(A, live_b, "case6c")
    r = svcca.pwcca(A.T, B.T, epsilon=1e-10)
    score_tol = 2 * (regularisation(A, live_b, 1e-10) + delta)
    assert r.score == pytest.approx(ref["paper(A,B)"]["pwcca_mean"], abs=score_tol)
    assert r.score != pytest.approx(ref["original(A,B)"]["pwcca_mean"], abs=0.05)
    m, w, _ = compat.compute_pwcca(A, B, epsilon=1e-10)  # same regularisation: round-off
    assert m == pytest.approx(ref["fixed(A,B)"]["pwcca_mean"], abs=2 * delta)
    gap = min_gap(svcca.cca(A.T, B.T).correlations)
    np.testing.assert_allclose(w, ref["fixed(A,B)"]["weights"], atol=2 * delta / gap)


@pytest.mark.parametrize("eps", ["epsilon_1e-10", "epsilon_0"])
def test_compat_pwcca_reproduces_original_and_fixes_crash(arrays, eps):
    epsilon = 1e-10 if eps == "epsilon_1e-10" else 0.0
    A, B = arrays["case3_A"], arrays["case3_B"]
    ref = REF["case6"][eps]
    delta = roundoff(A, B, "case3")  # compat regularises as the original: round-off only
    gap = min_gap(ref["original(B,A)"]["coefs"])
    m, w, c = compat.compute_pwcca(B, A, epsilon=epsilon)  # where the original ran
    assert m == pytest.approx(ref["original(B,A)"]["pwcca_mean"], abs=2 * delta)
    np.testing.assert_allclose(w, ref["original(B,A)"]["weights"], atol=2 * delta / gap)
    np.testing.assert_allclose(c, ref["original(B,A)"]["coefs"], atol=delta)
    m, w, _ = compat.compute_pwcca(A, B, epsilon=epsilon)  # the original raised IndexError
    assert m == pytest.approx(ref["fixed(A,B)"]["pwcca_mean"], abs=2 * delta)


def test_pca_and_pls(arrays):
    A, B = arrays["case3_A"], arrays["case3_B"]
    k, n = PRODUCT_LENGTH["case3"], A.shape[1]
    pca_a, pca_b = np.array(REF["case8"]["pca_A"]), np.array(REF["case8"]["pca_B"])

    def sv_tol(s_max, p):  # every singular value to (2 p + k) eps of the largest one
        return tol(np.float64, scale=s_max, factor=2 * p + k)

    a_tol, b_tol = sv_tol(pca_a[0], A.shape[0]), sv_tol(pca_b[0], B.shape[0])
    np.testing.assert_allclose(compat.get_pca(A)["eigenvals"], pca_a, rtol=0, atol=a_tol)
    np.testing.assert_allclose(compat.get_pca(B)["eigenvals"], pca_b, rtol=0, atol=b_tol)
    np.testing.assert_allclose(svcca.pca(A.T).singular_values, pca_a, rtol=0, atol=a_tol)
    # eigenvalues s^2 / (n - 1): twice the relative error of s, in units of the largest
    np.testing.assert_allclose(
        svcca.pca(A.T).eigenvalues, pca_a**2 / (n - 1), rtol=0, atol=2 * a_tol * pca_a[0] / (n - 1)
    )
    pls_fixed, pls_equal = np.array(REF["case8"]["pls_fixed"]), np.array(REF["case8"]["pls_equal"])
    p = A.shape[0] + B.shape[0]
    pls = compat.get_pls_similarity(A, B)  # the original crashed: widths differ
    fixed_tol = sv_tol(pls_fixed[0], p)
    np.testing.assert_allclose(pls["eigenvals"], pls_fixed, rtol=0, atol=fixed_tol)
    assert pls["pls_dirns1"].shape == (48, A.shape[1])
    np.testing.assert_allclose(
        svcca.pls(A.T, B.T).singular_values, pls_fixed, rtol=0, atol=fixed_tol
    )
    eq = compat.get_pls_similarity(A[:48], B)
    np.testing.assert_allclose(
        eq["eigenvals"], pls_equal, rtol=0, atol=sv_tol(pls_equal[0], 48 + B.shape[0])
    )


def test_inputs_are_built_without_blas():
    """``matmul_exact`` is a product (to the worst-case bound of a sum of ``k`` terms)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 30)), rng.standard_normal((30, 5))
    bound = tol(np.float64, scale=1.0, factor=2 * 30) * (np.abs(a) @ np.abs(b))
    assert np.all(np.abs(matmul_exact(a, b) - a @ b) <= bound)
    with pytest.raises(ValueError, match=r"expected \(m, k\) and \(k, n\) arrays"):
        matmul_exact(a, a)
