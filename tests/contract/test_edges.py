"""One behaviour at every edge (issue 9, section 2): each rule here holds on every path.

- results are immutable snapshots;
- a degenerate (constant) layer is refused by name, never scored 0;
- arguments mean one thing (epsilon in [0, 1), keep a float fraction or an int count,
  chunk sizes positive);
- inflated scores (too few samples for the kept dimensions) warn on every path, with
  the value independent data would get, and that value is the right one;
- clipping hides only round-off (tests/linalg/test_roundoff_clipping.py).

Rules of one measure live with it (tests/measures/: SVCCA's keep, PWCCA's weighting side).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pytest

import svcca
from conftest import independent_pair, latent_pair
from svcca import conv, stats

X, Y = latent_pair(400, 6, 5, x_noise=0.5, y_noise=0.5)  # two related layers


# ---------------------------------------------------------------------- snapshots
def test_a_result_does_not_follow_the_callers_moments():
    m = svcca.Moments.from_arrays(X, Y)
    r = svcca.cca(m)
    before_u, before_v = r.transform(X, Y)
    mean_before = r.mean_x.copy()
    m.update(*latent_pair(400, 6, 5, seed=1, x_noise=0.5, y_noise=0.5))  # the caller goes on
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
def test_independent_30_by_25_data_warn_on_every_path():
    A, B = independent_pair(30, 25, 25)
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
    A, B = independent_pair(30, 25, 20)
    with pytest.warns(svcca.SVCCAWarning, match=r"mean squared correlation of 0\.86"):
        svcca.cca(A, B)  # max(p, q) / (n - 1) = 25 / 29


def test_no_warning_when_the_dimensions_leave_enough_samples():
    A, B = independent_pair(200, 20, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        svcca.cca(A, B)
        svcca.svcca(A, B, keep=5)
        svcca.pairwise({"a": A, "b": B}, measure="svcca", keep=5)


def test_the_stated_null_value_is_right():
    """E[mean rho^2] of independent Gaussian data is max(p, q) / (n - 1), exactly.

    sum_i rho_i^2 = tr(P_X P_Y) for the projections on the centred column spaces; for
    independent data E[P_X] = p / (n - 1) times the centring projection, so the
    expectation is p q / (n - 1) over min(p, q) correlations.
    """
    n, p, q, reps = 120, 12, 5, 400
    vals = np.array(
        [svcca.cca(*independent_pair(n, p, q, seed=s)).mean_squared for s in range(reps)]
    )
    expected = max(p, q) / (n - 1)
    se = vals.std(ddof=1) / np.sqrt(reps)
    assert abs(vals.mean() - expected) < 4 * se
