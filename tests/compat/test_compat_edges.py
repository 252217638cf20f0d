"""svcca.compat at its edges: few datapoints, constant layers, bad input (issue 9).

The original google/svcca returned inflated numbers silently when there were few
datapoints for the neurons, crashed in ``compute_pwcca`` when there were fewer
datapoints than neurons, and scored constant layers (when it did not crash). The drop-ins
warn, raise with a fix, or refuse the layer by its argument name instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import svcca
from conftest import independent_pair
from svcca import DegenerateError, SVCCAWarning, compat


def _acts(seed, neurons, datapoints):
    """``(neurons, datapoints)``, the original's orientation."""
    return np.random.default_rng(seed).standard_normal((neurons, datapoints))


def _quiet(fn, *args, **kwargs):
    """Call ``fn`` with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------- few datapoints
def test_fewer_datapoints_than_neurons_warns_and_says_what_chance_scores():
    a, b = _acts(0, 100, 40), _acts(1, 50, 40)  # independent data
    with pytest.warns(SVCCAWarning, match=r"40 samples for 100 and 50 dimensions") as rec:
        d = compat.get_cca_similarity(a, b)
    msg = str(rec[0].message)
    assert "inflated" in msg and "independent data of this shape score" in msg
    assert rec[0].filename == __file__  # points at the caller, not at compat
    # Still the original's number: the centred data span only n - 1 = 39 dimensions, so
    # 39 coefficients are 1 for independent data and the rest 0.
    c = d["cca_coef1"]
    assert c.size == 50
    np.testing.assert_allclose(c[:39], 1.0, atol=1e-9)
    np.testing.assert_allclose(c[39:], 0.0, atol=1e-6)
    assert d["mean"][0] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("epsilon", [0.0, 1e-10, 1e-6])
def test_singular_covariance_gives_coefficients_in_0_1(epsilon):
    """pinv of a singular covariance + 1e-10 I came out indefinite in the original:
    coefficients of 115 (this input) and a thresholded mean of 63."""
    a, b = _acts(2, 100, 60), _acts(3, 50, 60)
    with pytest.warns(SVCCAWarning, match="inflated"):
        d = compat.get_cca_similarity(a, b, epsilon=epsilon)
    c = d["cca_coef1"]
    assert np.isfinite(c).all() and c.max() <= 1.0 + 1e-9 and c.min() >= 0.0
    assert np.isfinite(d["invsqrt_xx"]).all()


def test_close_to_the_limit_warns_without_more_neurons_than_datapoints():
    # 30 + 30 >= 60 - 1: the original ran and returned inflated numbers silently.
    a, b = _acts(4, 30, 60), _acts(5, 30, 60)
    with pytest.warns(SVCCAWarning, match="60 samples for 30 and 30 dimensions"):
        d = compat.get_cca_similarity(a, b)
    # ... and the numbers are unchanged: the same as the exact CCA of the core (which
    # warns alike).
    with pytest.warns(SVCCAWarning, match="inflated"):
        exact = svcca.cca(a.T, b.T).correlations
    np.testing.assert_allclose(d["cca_coef1"], exact, rtol=0, atol=1e-8)


def test_kept_neurons_count_not_the_raw_width():
    """Pruned (dead) neurons are not dimensions: 40 neurons of which 30 are dead."""
    a, b = _acts(6, 40, 60), _acts(7, 10, 60)
    a[10:] = 0.0
    d = _quiet(compat.get_cca_similarity, a, b)  # 10 + 10 < 59: no warning
    assert int(d["x_idxs"].sum()) == 10


def test_enough_datapoints_is_quiet():
    a, b = _acts(8, 10, 200), _acts(9, 5, 200)
    _quiet(compat.get_cca_similarity, a, b)
    _quiet(compat.compute_pwcca, a, b)
    _quiet(compat.robust_cca_similarity, a, b)


def test_pwcca_fewer_datapoints_than_kept_neurons_raises_with_a_fix():
    # The original crashed here on a broadcasting error.
    a, b = _acts(10, 60, 40), _acts(11, 80, 40)
    with pytest.raises(
        ValueError,
        match=r"compute_pwcca needs at least as many datapoints as kept neurons.*acts1 has "
        r"60 kept neurons and there are 40 datapoints.*keep=k",
    ):
        compat.compute_pwcca(a, b)
    with pytest.raises(ValueError, match=r"acts2 has 60 kept neurons and there are 40"):
        compat.compute_pwcca(b, a)


def test_pwcca_few_datapoints_warns_and_runs():
    # The weighting side (acts2, 20 neurons) fits in 40 datapoints; 50 + 20 >= 39.
    a, b = _acts(12, 50, 40), _acts(13, 20, 40)
    with pytest.warns(SVCCAWarning, match="40 samples for 50 and 20 dimensions") as rec:
        mean, weights, coefs = compat.compute_pwcca(a, b)
    assert rec[0].filename == __file__
    assert weights.shape == coefs.shape == (20,)
    assert weights.sum() == pytest.approx(1.0)
    assert mean == pytest.approx(1.0, abs=1e-9)  # every coefficient is forced to 1


def test_robust_cca_warns_once():
    a, b = _acts(14, 100, 40), _acts(15, 30, 40)
    with pytest.warns(SVCCAWarning, match="inflated") as rec:
        d = compat.robust_cca_similarity(a, b)
    assert len([w for w in rec if issubclass(w.category, SVCCAWarning)]) == 1
    assert "cca_dirns1" in d and d["cca_coef1"].max() <= 1.0 + 1e-9


# ---------------------------------------------------------------------- degenerate layers
CONSTANT_LAYERS = {
    "ones": np.ones((4, 50)),
    "dead": np.zeros((4, 50)),
    # Distinct constants: their centred values are round-off of the mean, not zeros.
    "per-neuron constants": np.array([0.1, 0.7, 3.3, -2.9])[:, None] * np.ones((4, 50)),
}


@pytest.mark.parametrize("layer", sorted(CONSTANT_LAYERS))
def test_constant_layer_is_refused_by_name(layer):
    const, other = CONSTANT_LAYERS[layer], _acts(16, 3, 50)
    first = r"Representation acts1 \(4 features\) has nothing to compare: every neuron is "
    second = r"Representation acts2 \(4 features\) has nothing to compare"
    for fn in (
        compat.get_cca_similarity,
        compat.compute_pwcca,
        compat.robust_cca_similarity,
        compat.get_pls_similarity,
    ):
        with pytest.raises(DegenerateError, match=first + "constant over the datapoints"):
            fn(const, other)
        with pytest.raises(DegenerateError, match=second):
            fn(other, const)
    with pytest.raises(DegenerateError, match=r"Representation acts \(4 features\)"):
        compat.get_pca(const)


def test_some_constant_neurons_are_pruned_not_refused():
    rng = np.random.default_rng(17)
    a, b = rng.standard_normal((6, 300)), rng.standard_normal((4, 300))
    b[:3] += a[:3]
    a[2] = 7.0  # constant
    # A constant large neuron with 1-ulp jitter: its variance (~1e-16) is round-off, yet
    # above 1e-12 of the real neurons' if those are small: pruned by its range.
    a[4] = 1e8 + np.spacing(1e8) * rng.integers(0, 2, 300)
    a[[0, 1, 3, 5]] *= 1e-6
    d = compat.get_cca_similarity(a, b)
    assert d["x_idxs"].tolist() == [True, True, False, True, False, True]
    ref = svcca.cca(a[[0, 1, 3, 5]].T, b.T).correlations
    np.testing.assert_allclose(d["cca_coef1"], ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    "fn", [compat.get_cca_similarity, compat.compute_pwcca, compat.robust_cca_similarity]
)
def test_epsilon_must_be_in_0_1(fn):
    a, b = _acts(18, 4, 50), _acts(19, 3, 50)
    # The original's epsilon > 1 pruned every neuron (then crashed unpacking).
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\); got 2\.0"):
        fn(a, b, epsilon=2.0)
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\)"):
        fn(a, b, epsilon=-1e-3)


def test_nan_is_refused_not_scored():
    """NaN used to make every neuron look pruned and score 0."""
    a, b = _acts(20, 4, 50), _acts(21, 3, 50)
    b[1, 7] = np.nan
    b[0, 9] = np.inf
    match = r"acts2 contains NaN or inf in 2 of its 50 datapoints \(first: \[7, 9\]\)"
    for fn in (compat.get_cca_similarity, compat.compute_pwcca, compat.get_pls_similarity):
        with pytest.raises(ValueError, match=match):
            fn(a, b)
    with pytest.raises(ValueError, match=r"acts contains NaN or inf in 2 of its 50"):
        compat.get_pca(b)


# ---------------------------------------------------------------------- fourier_ccas
def _conv(seed, n=100, h=6, w=6, c=3):
    return np.random.default_rng(seed).standard_normal((n, h, w, c))


@pytest.mark.parametrize(
    "layer",
    [
        np.zeros((100, 6, 6, 2)),
        np.ones((100, 6, 6, 2)) * _conv(22, n=1, c=2),  # the same map for every datapoint
    ],
)
def test_fourier_constant_layer_is_refused(layer):
    with pytest.raises(DegenerateError, match=r"Representation conv_acts2 \(72 features\)"):
        compat.fourier_ccas(_conv(23), layer)
    with pytest.raises(DegenerateError, match=r"Representation conv_acts1 \(72 features\)"):
        compat.fourier_ccas(layer, _conv(23))


def test_fourier_frequencies_without_power_are_nan_not_noise():
    """Spatially constant maps have power only at frequency (0, 0). Measured against the
    largest power at the same frequency, the FFT's round-off there passed for signal:
    "correlations" of about 0.2 at every other location."""
    A = _conv(24)
    B = np.ones((100, 6, 6, 2)) * _conv(25, w=1, h=1, c=2)
    with pytest.warns(SVCCAWarning, match="35 of the 36 frequency locations have no power"):
        rows = compat.fourier_ccas(A, B)
    means = np.array([m[0] for m in rows["mean"]])
    assert np.isfinite(means[0]) and np.isnan(means[1:]).all()
    assert all(c.size == 0 for c in rows["cca_coef1"][1:])
    assert all(np.isnan(s[0]) for s in rows["sum"][1:])
    # Frequency (0, 0) is the spatial sum: its CCA is that of the spatially pooled maps.
    pooled = compat.get_cca_similarity(A.mean(axis=(1, 2)).T, B.mean(axis=(1, 2)).T)
    np.testing.assert_allclose(rows["cca_coef1"][0], pooled["cca_coef1"], atol=1e-10)


def test_fourier_few_datapoints_warns():
    with pytest.warns(SVCCAWarning, match="10 samples for 6 and 5 dimensions"):
        compat.fourier_ccas(_conv(26, n=10, c=6), _conv(27, n=10, c=5))


def test_fourier_nan_is_refused():
    A = _conv(28)
    A[3, 0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"conv_acts1 contains NaN or inf in 1 of its 100"):
        compat.fourier_ccas(A, _conv(29))


def test_compat_errors():
    X, Y = independent_pair(50, 4, 3)
    with pytest.raises(ValueError, match="acts1 and acts2 must describe the same datapoints"):
        compat.get_cca_similarity(X.T, Y[:40].T)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        compat.get_cca_similarity(X.T, Y.T, threshold=1.5)


def test_compat_no_longer_crashes():
    """Each of these raised in google/svcca (see its bug list)."""
    X, Y = independent_pair(50, 4, 3)
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\)"):
        compat.get_cca_similarity(X.T, Y.T, epsilon=2.0)  # all pruned: ValueError before
    with pytest.raises(svcca.DegenerateError, match="acts1"):  # constant layer: not 0
        compat.get_cca_similarity(np.ones((4, 50)), Y.T)
    d = compat.get_cca_similarity(X.T, Y.T, compute_coefs=False, compute_dirns=True)  # KeyError
    assert d["cca_dirns1"].shape == (4, 50) and "coef_x" not in d
    d = compat.get_cca_similarity(X.T, Y.T, threshold=0.0)  # NaN mean before
    assert d["mean"][0] == d["cca_coef1"][0]
    d = compat.robust_cca_similarity(X.T, Y.T)  # arguments were shuffled
    np.testing.assert_allclose(d["cca_coef1"], svcca.cca(X, Y).correlations, atol=1e-5)
    assert "cca_dirns1" in d
    with pytest.raises(svcca.DegenerateError, match="acts1"):
        compat.compute_pwcca(np.ones((4, 50)), Y.T)
