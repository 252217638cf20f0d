"""One behaviour at every edge (issue 9, section 2): each rule here holds on every path.

- results are immutable snapshots;
- a degenerate (constant) layer is refused by name, never scored 0;
- arguments mean one thing (epsilon in [0, 1), keep a float fraction or an int count,
  chunk sizes positive);
- inflated scores (too few samples for the kept dimensions) warn on every path, with
  the value independent data would get, and that value is the right one;
- clipping hides only round-off.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pytest

import svcca
from svcca import conv, stats
from svcca.measures._cca import canonical_correlations
from svcca.measures._linalg import clip_roundoff


def related(n=400, p=6, q=5, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    X = Z @ rng.standard_normal((3, p)) + 0.5 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((3, q)) + 0.5 * rng.standard_normal((n, q))
    return X, Y


X, Y = related()


# ---------------------------------------------------------------------- snapshots
def test_a_result_does_not_follow_the_callers_moments():
    m = svcca.Moments.from_arrays(X, Y)
    r = svcca.cca(m)
    before_u, before_v = r.transform(X, Y)
    mean_before = r.mean_x.copy()
    m.update(*related(seed=1))  # the caller keeps accumulating
    after_u, after_v = r.transform(X, Y)
    np.testing.assert_array_equal(after_u, before_u)
    np.testing.assert_array_equal(after_v, before_v)
    np.testing.assert_array_equal(r.mean_x, mean_before)


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (lambda: svcca.cca(X, Y), ("correlations", "weights_x", "weights_y", "mean_x")),
        (lambda: svcca.svcca(X, Y, keep=3), ("correlations", "weights_x", "directions_x")),
        (lambda: svcca.pwcca(X, Y), ("weights", "correlations")),
        (lambda: svcca.pls(X, Y), ("singular_values", "weights_x", "mean_y")),
        (lambda: svcca.pca(X), ("eigenvalues", "components", "mean")),
        (lambda: svcca.regression_fit(X, Y), ("r2_per_feature_y",)),
        (lambda: svcca.pairwise({"x": X, "y": Y}), ("values",)),
        (lambda: svcca.cca(X, Y).pruned_x, ("indices", "relative_variance")),
    ],
)
def test_result_arrays_are_read_only_and_results_frozen(call, fields):
    r = call()
    for name in fields:
        a = getattr(r, name)
        assert not a.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.score = 0.5  # type: ignore[misc]
    assert r == r  # identity: no element-wise comparison of array fields
    assert r != call()


def test_the_callers_arrays_stay_writeable_and_unshared():
    A, B = X.copy(), Y.copy()
    r = svcca.cca(A, B)
    assert A.flags.writeable and B.flags.writeable
    A[:] = 0.0  # changing the input afterwards changes nothing in the result
    assert r.score == pytest.approx(svcca.cca(X, Y).score, abs=0)


# ---------------------------------------------------------------------- degenerate layers
CONST = np.ones((400, 3))

MEASURES = {
    "cca": svcca.cca,
    "svcca": svcca.svcca,
    "pwcca": svcca.pwcca,
    "pls": svcca.pls,
    "cka linear": svcca.cka,
    "cka sample": functools.partial(svcca.cka, method="sample"),
    "cka rbf": functools.partial(svcca.cka, kernel="rbf"),
    "cka debiased": functools.partial(svcca.cka, debiased=True),
    "regression": svcca.regression_fit,
    "rsa": svcca.rsa,
    "procrustes": svcca.procrustes,
    "shape": functools.partial(svcca.shape_distance, alpha=0.5),
}


@pytest.mark.parametrize("name", list(MEASURES))
@pytest.mark.parametrize("side", ["X", "Y"])
def test_a_constant_layer_is_refused_by_name(name, side):
    fn = MEASURES[name]
    args = (CONST, Y) if side == "X" else (X, CONST)
    with pytest.raises(svcca.DegenerateError, match=rf"Representation {side}\b"):
        fn(*args)


def test_a_constant_layer_is_refused_on_the_other_paths():
    with pytest.raises(svcca.DegenerateError, match=r"Representation X \(3 features\)"):
        svcca.cca(svcca.Moments.from_arrays(CONST, Y))
    with pytest.raises(svcca.DegenerateError, match=r"Representation X \(3 features\)"):
        svcca.pca(CONST)
    with pytest.raises(svcca.DegenerateError, match="Representation 'dead'"):
        svcca.pairwise({"x": X, "dead": CONST}, measure="cca")
    with pytest.raises(svcca.DegenerateError, match="Representation X"):
        svcca.svcca_two_pass(CONST, Y, keep=2)
    with pytest.raises(svcca.DegenerateError, match="Representation A"):
        conv.fourier_cca(
            np.ones((60, 3, 3, 2)),
            np.random.default_rng(0).normal(size=(60, 3, 3, 2)),
            layout="nhwc",
        )
    with pytest.raises(svcca.DegenerateError):
        stats.permutation_test(svcca.cca, CONST, Y, n_permutations=10, seed=0)


def test_degenerate_is_a_value_error_so_callers_and_the_cli_catch_it():
    assert issubclass(svcca.DegenerateError, ValueError)


# ---------------------------------------------------------------------- arguments
@pytest.mark.parametrize("eps", [-0.1, 1.0, 2.0, float("nan")])
def test_epsilon_must_lie_in_0_1(eps):
    pattern = r"epsilon must be a number in \[0, 1\)"
    for call in (
        lambda: svcca.cca(X, Y, epsilon=eps),
        lambda: svcca.pwcca(X, Y, epsilon=eps),
        lambda: svcca.pairwise({"x": X, "y": Y}, measure="cca", epsilon=eps),
        lambda: stats.bartlett(X, Y, epsilon=eps),
        lambda: conv.fourier_cca(
            X.reshape(400, 1, 1, 6), Y.reshape(400, 1, 1, 5), epsilon=eps, layout="nhwc"
        ),
    ):
        with pytest.raises(ValueError, match=pattern):
            call()


def test_keep_is_a_fraction_below_one_or_a_count():
    assert svcca.svcca(X, Y, keep=1).kept_x == 1  # an int: one direction
    assert svcca.svcca(X, Y, keep=np.int64(2)).kept_x == 2
    assert svcca.svcca(X, Y, keep=np.float64(0.5)).kept_x >= 1
    for bad in (1.0, np.float64(1.0), 0.0):
        with pytest.raises(ValueError, match=r"keep must be a number in \(0, 1\); got"):
            svcca.svcca(X, Y, keep=bad)
    with pytest.raises(ValueError, match=r"keep must be an int >= 1; got 0"):
        svcca.pairwise({"x": X}, measure="svcca", keep=0)


@pytest.mark.parametrize("bad", [-5, 0])
def test_chunk_size_must_be_positive_everywhere(bad):
    pattern = f"chunk_size must be an int >= 1; got {bad}"
    with pytest.raises(ValueError, match=pattern):
        svcca.Moments.from_arrays(X, Y, chunk_size=bad)
    with pytest.raises(ValueError, match=pattern):
        svcca.pairwise({"x": X, "y": Y}, chunk_size=bad)
    with pytest.raises(ValueError, match=pattern):
        svcca.svcca_two_pass(X, Y, keep=2, chunk_size=bad)
    with pytest.raises(TypeError, match="chunk_size must be an int >= 1; got 2.5"):
        svcca.Moments.from_arrays(X, Y, chunk_size=2.5)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: svcca.svcca(X, Y, variance="energy"), "variance must be one of"),
        (lambda: svcca.pairwise({"x": X}, measure="rbf"), "measure must be one of"),
        (lambda: svcca.cka(X, Y, kernel="poly"), "kernel must be one of"),
        (lambda: stats.null_baseline(svcca.cca, X, Y, kind="uniform"), "kind must be one of"),
        (lambda: svcca.cca(X, Y, threshold=2), r"threshold must be a number in \[0, 1\]"),
    ],
)
def test_option_strings_share_one_message_form(call, pattern):
    with pytest.raises(ValueError, match=pattern + r".*; got "):
        call()


# ---------------------------------------------------------------------- inflated scores
def independent(n, p, q, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal((n, q))


def test_independent_30_by_25_data_warn_on_every_path():
    A, B = independent(30, 25, 25)
    msg = "inflated by the shape alone"
    with pytest.warns(svcca.SVCCAWarning, match=msg):
        assert svcca.cca(A, B).score > 0.9  # the number the warning is about
    with pytest.warns(svcca.SVCCAWarning, match=msg):
        svcca.svcca(A, B, keep=20)
    with pytest.warns(svcca.SVCCAWarning, match=msg):
        svcca.pwcca(A, B)
    with pytest.warns(svcca.SVCCAWarning, match=msg):
        svcca.svcca_two_pass(A, B, keep=20)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        svcca.pairwise({"a": A, "b": B, "c": A[:, :3]}, measure="cca")
    inflated = [w for w in seen if issubclass(w.category, svcca.SVCCAWarning)]
    assert len(inflated) == 1  # once, naming the pairs
    assert "('a', 'b')" in str(inflated[0].message) and "pairs have too few samples" in str(
        inflated[0].message
    )
    with pytest.warns(svcca.SVCCAWarning, match="frequencies have too few samples"):
        conv.fourier_cca(A.reshape(30, 1, 1, 25), B.reshape(30, 1, 1, 25), layout="nhwc")


def test_the_warning_states_the_independent_data_value():
    A, B = independent(30, 25, 20)
    with pytest.warns(svcca.SVCCAWarning, match=r"mean squared correlation of 0\.86"):
        svcca.cca(A, B)  # max(p, q) / (n - 1) = 25 / 29


def test_no_warning_when_the_dimensions_leave_enough_samples():
    A, B = independent(200, 20, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        svcca.cca(A, B)
        svcca.svcca(A, B, keep=5)
        svcca.pairwise({"a": A, "b": B}, measure="svcca", keep=5)


def test_svcca_warns_on_the_kept_dimensions_not_the_raw_width():
    A, B = independent(60, 80, 80)
    with pytest.warns(svcca.SVCCAWarning):
        svcca.svcca(A, B, keep=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        svcca.svcca(A, B, keep=5)  # 5 + 5 kept directions on 60 samples


def test_the_stated_null_value_is_right():
    """E[mean rho^2] of independent Gaussian data is max(p, q) / (n - 1), exactly.

    sum_i rho_i^2 = tr(P_X P_Y) for the projections on the centred column spaces; for
    independent data E[P_X] = p / (n - 1) times the centring projection, so the
    expectation is p q / (n - 1) over min(p, q) correlations.
    """
    n, p, q, reps = 120, 12, 5, 400
    vals = np.array([svcca.cca(*independent(n, p, q, seed=s)).mean_squared for s in range(reps)])
    expected = max(p, q) / (n - 1)
    se = vals.std(ddof=1) / np.sqrt(reps)
    assert abs(vals.mean() - expected) < 4 * se


# ---------------------------------------------------------------------- clipping
def test_round_off_is_clipped_and_anything_larger_raises():
    np.testing.assert_array_equal(
        clip_roundoff(np.array([1 + 1e-15, -1e-16, 0.5]), 0.0, 1.0, 1e-12, "x"), [1.0, 0.0, 0.5]
    )
    with pytest.raises(FloatingPointError, match=r"A squared canonical correlation came out as"):
        canonical_correlations(np.array([[1.2]]), tol=1e-12)
    assert canonical_correlations(np.array([[1.0 + 1e-14]]), tol=1e-12)[0] == 1.0


def test_self_similarity_is_exactly_one_on_ill_conditioned_layers():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((500, 8)) * np.logspace(0, -5, 8)  # variances over 10 decades
    for fn in (svcca.cca, svcca.pwcca, functools.partial(svcca.svcca, keep=8)):
        r = fn(A, A @ rng.standard_normal((8, 8)))
        assert r.score == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------------- PWCCA's weighting side
def test_pwcca_weights_by_the_side_of_smaller_rank():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((500, 3))
    A = np.hstack([base, base @ rng.standard_normal((3, 3))])  # 6 neurons spanning 3 dims
    B = base @ rng.standard_normal((3, 4)) + 0.1 * rng.standard_normal((500, 4))
    r = svcca.pwcca(A, B)
    assert (r.cca.rank_x, r.cca.rank_y) == (3, 4)
    assert r.weighted_by == "x"  # fewer dimensions, though more neurons
    assert r.weights.size == 3 and r.weights.sum() == pytest.approx(1.0)
    assert svcca.pwcca(B, A).weighted_by == "y"
