"""Agreement with the outputs of the original google/svcca code on fixed inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import svcca
from reference_inputs import reference_inputs, sha256
from svcca import compat

REF = json.loads((Path(__file__).parent / "data" / "reference_core.json").read_text())
COEF_TOL = 1e-8  # the original adds epsilon to rescaled covariances: up to 2.4e-9 apart


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    data = reference_inputs()
    for key, arr in data.items():
        assert sha256(arr) == REF["input_sha256"][key], f"generated input {key} changed"
    return data


CCA_CASES = [
    ("case1", "case1_A", "case1_B", 0.0),
    ("case2", "case1_A", "case2_MA", 0.0),
    ("case3", "case3_A", "case3_B", 0.0),
    ("case3_eps", "case3_A", "case3_B", 1e-10),
    ("case4", "case4_A", "case3_B", 1e-10),
]


@pytest.mark.parametrize(("case", "a", "b", "eps"), CCA_CASES)
def test_cca_matches_original_coefficients(arrays, case, a, b, eps):
    ref = REF[case]
    r = svcca.cca(arrays[a].T, arrays[b].T, epsilon=eps)
    np.testing.assert_allclose(r.correlations, ref["cca_coef1"], rtol=0, atol=COEF_TOL)
    assert r.correlations.sum() == pytest.approx(
        ref["sum_field"], abs=len(r.correlations) * COEF_TOL
    )
    # The thresholded mean depends on a discrete cut-off: safe when the margin is wide.
    if ref["threshold_margin"] > 1e-6:
        assert r.thresholded_mean == pytest.approx(ref["mean_field"], abs=COEF_TOL)
    assert r.pruned_x.indices.tolist() == ref["x_removed"]
    assert r.pruned_y.indices.tolist() == ref["y_removed"]


@pytest.mark.parametrize(("case", "a", "b", "eps"), CCA_CASES)
def test_compat_reproduces_original_dict(arrays, case, a, b, eps):
    ref = REF[case]
    r = compat.get_cca_similarity(arrays[a], arrays[b], epsilon=eps, verbose=False)
    np.testing.assert_allclose(r["cca_coef1"], ref["cca_coef1"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r["cca_coef2"], r["cca_coef1"])
    assert r["mean"][0] == pytest.approx(ref["mean_field"], abs=1e-12)
    assert r["sum"][0] == pytest.approx(ref["sum_field"], abs=1e-10)
    assert np.flatnonzero(~r["x_idxs"]).tolist() == ref["x_removed"]


def test_case4_pruning_reasons(arrays):
    r = svcca.cca(arrays["case4_A"].T, arrays["case3_B"].T, epsilon=1e-10)
    reasons = dict(zip(r.pruned_x.indices.tolist(), r.pruned_x.reasons, strict=True))
    assert {reasons[i] for i in (0, 10, 33, 50, 71)} == {"constant"}
    assert {reasons[i] for i in (5, 40, 65)} == {"numerically constant"}
    assert r.rank_x == 64


def test_case4_epsilon_zero_does_not_fail(arrays):
    """The original's SVD failed to converge here; we prune the numerically constant rows."""
    r = svcca.cca(arrays["case4_A"].T, arrays["case3_B"].T, epsilon=0.0)
    np.testing.assert_allclose(r.correlations, REF["case3"]["cca_coef1"], atol=COEF_TOL)
    d = compat.get_cca_similarity(arrays["case4_A"], arrays["case3_B"], verbose=False)
    np.testing.assert_allclose(d["cca_coef1"], REF["case3"]["cca_coef1"], atol=COEF_TOL)


@pytest.mark.parametrize(
    ("case", "a", "b"),
    [("case5_case3", "case3_A", "case3_B"), ("case5_case1", "case1_A", "case1_B")],
)
def test_svcca_top20_matches_tutorial(arrays, case, a, b):
    ref = REF[case]
    r = svcca.svcca(arrays[a].T, arrays[b].T, keep=20)
    assert (r.kept_x, r.kept_y) == (20, 20)
    np.testing.assert_allclose(r.correlations, ref["cca_coef1"], atol=COEF_TOL)
    assert r.thresholded_mean == pytest.approx(ref["mean_field"], abs=COEF_TOL)


@pytest.mark.parametrize("eps", ["epsilon_1e-10", "epsilon_0"])
def test_pwcca_paper_definition(arrays, eps):
    epsilon = 1e-10 if eps == "epsilon_1e-10" else 0.0
    A, B = arrays["case3_A"].T, arrays["case3_B"].T
    ref = REF["case6"][eps]
    ab = svcca.pwcca(A, B, epsilon=epsilon)
    ba = svcca.pwcca(B, A, epsilon=epsilon)
    # the paper value with exact CCA; the reference's eps=1e-10 run regularised slightly
    tol = 1e-9 if epsilon == 0 else 1e-8
    assert ab.score == pytest.approx(ref["paper(A,B)"]["pwcca_mean"], abs=tol)
    assert ba.score == pytest.approx(ref["paper(B,A)"]["pwcca_mean"], abs=tol)
    assert ab.weighted_by == "y" and ba.weighted_by == "x"
    np.testing.assert_allclose(ab.weights, ref["paper(A,B)"]["weights"], atol=1e-8)
    assert ab.weights.sum() == pytest.approx(1.0)


def test_pwcca_case6c_silent_bug_is_gone(arrays):
    ref = REF["case6c"]
    A, B = arrays["case6c_A"], arrays["case6c_B"]
    r = svcca.pwcca(A.T, B.T, epsilon=1e-10)
    assert r.score == pytest.approx(ref["paper(A,B)"]["pwcca_mean"], abs=1e-8)
    assert r.score != pytest.approx(ref["original(A,B)"]["pwcca_mean"], abs=0.05)
    m, w, _ = compat.compute_pwcca(A, B, epsilon=1e-10)
    assert m == pytest.approx(ref["fixed(A,B)"]["pwcca_mean"], abs=1e-10)
    np.testing.assert_allclose(w, ref["fixed(A,B)"]["weights"], atol=1e-10)


@pytest.mark.parametrize("eps", ["epsilon_1e-10", "epsilon_0"])
def test_compat_pwcca_reproduces_original_and_fixes_crash(arrays, eps):
    epsilon = 1e-10 if eps == "epsilon_1e-10" else 0.0
    A, B = arrays["case3_A"], arrays["case3_B"]
    ref = REF["case6"][eps]
    m, w, c = compat.compute_pwcca(B, A, epsilon=epsilon)  # where the original ran
    assert m == pytest.approx(ref["original(B,A)"]["pwcca_mean"], abs=1e-10)
    np.testing.assert_allclose(w, ref["original(B,A)"]["weights"], atol=1e-10)
    np.testing.assert_allclose(c, ref["original(B,A)"]["coefs"], atol=1e-10)
    m, w, _ = compat.compute_pwcca(A, B, epsilon=epsilon)  # the original raised IndexError
    assert m == pytest.approx(ref["fixed(A,B)"]["pwcca_mean"], abs=1e-10)


def test_pca_and_pls(arrays):
    A, B = arrays["case3_A"], arrays["case3_B"]
    np.testing.assert_allclose(compat.get_pca(A)["eigenvals"], REF["case8"]["pca_A"], rtol=1e-12)
    np.testing.assert_allclose(compat.get_pca(B)["eigenvals"], REF["case8"]["pca_B"], rtol=1e-12)
    np.testing.assert_allclose(svcca.pca(A.T).singular_values, REF["case8"]["pca_A"], rtol=1e-12)
    np.testing.assert_allclose(
        svcca.pca(A.T).eigenvalues, np.square(REF["case8"]["pca_A"]) / (A.shape[1] - 1), rtol=1e-12
    )
    pls = compat.get_pls_similarity(A, B)  # the original crashed: widths differ
    np.testing.assert_allclose(pls["eigenvals"], REF["case8"]["pls_fixed"], rtol=1e-12)
    assert pls["pls_dirns1"].shape == (48, A.shape[1])
    np.testing.assert_allclose(
        svcca.pls(A.T, B.T).singular_values, REF["case8"]["pls_fixed"], rtol=1e-12
    )
    eq = compat.get_pls_similarity(A[:48], B)
    np.testing.assert_allclose(eq["eigenvals"], REF["case8"]["pls_equal"], rtol=1e-12)
