"""Every magnitude: scale-invariant measures score ``c * X`` as ``X`` for any finite ``c``.

The statistic carries a power-of-two unit per side (``Moments.scale_x``), the sample
measures divide each side by one, so nothing overflows or underflows between 1e-300 and
1e300, in every engine. ``c * X`` rounds each entry once (relative ``eps``), so the scores
agree to ``eps`` times the problem's conditioning (``cond``: these layers are generic
Gaussian data, their whitened blocks well conditioned).

An offset ``c`` added to a layer is judged against the data actually stored,
``fl(X + c) - c`` (at 1e12 float64 keeps about four of X's sixteen digits), to
``eps * |c| / std * cond``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import svcca
from conftest import tanh_pair, tol

pytestmark = pytest.mark.faults

SCALES = (1e-300, 1e-160, 1e-100, 1e-30, 1e30, 1e80, 1e160, 1e300)
COND = 100.0  # generous for these generic, well-conditioned layers
TOL = tol(cond=COND)


def _layers(n=300, p=8, q=6, seed=0):
    return tanh_pair(n, p, q, seed=seed, noise=0.5)


SINGLE = {
    "cca": lambda X, Y: svcca.cca(X, Y).score,
    "svcca": lambda X, Y: svcca.svcca(X, Y, keep=4).score,
    "pwcca": lambda X, Y: svcca.pwcca(X, Y).score,
    "pls": lambda X, Y: svcca.pls(X, Y).score,
    "regression_fit": lambda X, Y: svcca.regression_fit(X, Y).score,
    "cka_feature": lambda X, Y: svcca.cka(X, Y, method="feature").score,
    "cka_sample": lambda X, Y: svcca.cka(X, Y, method="sample").score,
    "cka_debiased": lambda X, Y: svcca.cka(X, Y, debiased=True).score,
    "cka_rbf": lambda X, Y: svcca.cka(X, Y, kernel="rbf").score,
    "cka_float32": lambda X, Y: svcca.cka(X, Y, precision="float32").score,
    "procrustes": lambda X, Y: svcca.procrustes(X, Y).score,
    "shape_distance": lambda X, Y: svcca.shape_distance(X, Y, alpha=0.5).score,
    "rsa_euclidean": lambda X, Y: svcca.rsa(X, Y).score,
    "rsa_correlation": lambda X, Y: svcca.rsa(X, Y, metric="correlation").score,
}


def _quiet(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning of an overflow on the way
        return f(*args)


@pytest.mark.parametrize("name", sorted(SINGLE))
@pytest.mark.parametrize("c", SCALES)
def test_single_calls_score_any_magnitude_as_magnitude_one(name, c):
    X, Y = _layers()
    f = SINGLE[name]
    bound = tol(np.float32, factor=100) if name == "cka_float32" else TOL
    ref = f(X, Y)
    assert abs(_quiet(f, X * c, Y) - ref) <= bound
    assert abs(_quiet(f, X, Y * c) - ref) <= bound
    assert abs(_quiet(f, X * c, Y * c) - ref) <= bound


@pytest.mark.parametrize("measure", ["cca", "svcca", "pwcca", "cka_linear", "pls"])
@pytest.mark.parametrize("c", (1e-300, 1e-160, 1e160, 1e300))
def test_pairwise_scores_any_magnitude_as_single_calls(measure, c):
    X, Y = _layers()
    Z = np.random.default_rng(1).standard_normal((300, 5))
    ref = svcca.pairwise({"x": X, "y": Y, "z": Z}, measure=measure).values
    got = _quiet(lambda: svcca.pairwise({"x": X * c, "y": Y, "z": Z * c}, measure=measure))
    assert np.abs(got.values - ref).max() <= TOL
    f32 = _quiet(
        lambda: svcca.pairwise({"x": X * c, "y": Y}, measure=measure, precision="float32")
    )
    assert np.abs(f32.values - ref[:2, :2]).max() <= tol(np.float32, cond=COND)


@pytest.mark.parametrize("c", (1e-300, 1e300))
def test_two_pass_and_sketched_svcca_score_any_magnitude(c):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1500, 30))
    Y = X[:, :10] @ rng.standard_normal((10, 20)) + rng.standard_normal((1500, 20))
    ref = svcca.svcca_two_pass(X, Y, keep=5).score
    assert abs(_quiet(lambda: svcca.svcca_two_pass(X * c, Y, keep=5)).score - ref) <= TOL
    sk = {"measure": "svcca", "keep": 5, "sketch_size": 12}
    ref_p = svcca.pairwise({"x": X, "y": Y}, **sk).values
    got = _quiet(lambda: svcca.pairwise({"x": X * c, "y": Y}, **sk).values)
    assert np.abs(got - ref_p).max() <= TOL


@pytest.mark.parametrize("c", (1e-300, 1e300))
def test_conv_strategies_score_any_magnitude(c):
    from svcca import conv

    rng = np.random.default_rng(4)
    A = rng.standard_normal((300, 4, 4, 3))
    B = A[..., :2] @ rng.standard_normal((2, 3)) + rng.standard_normal((300, 4, 4, 3))
    ref = conv.fourier_cca(A, B, layout="nhwc")
    got = _quiet(lambda: conv.fourier_cca(A * c, B, layout="nhwc"))
    assert np.abs(got.correlations - ref.correlations).max() <= TOL
    for strategy, measure in (("dft", "svcca"), ("avgpool", "cka_linear"), ("interpolate", "cca")):
        kw = {"strategy": strategy, "layout": "nhwc", "measure": measure}
        r = conv.compare(A, B, **kw).score
        assert abs(_quiet(lambda k=kw: conv.compare(A * c, B, **k)).score - r) <= TOL


@pytest.mark.parametrize("c", (1e-300, 1e300))
def test_streaming_and_dask_score_any_magnitude(c):
    import dask.array as da

    X, Y = _layers(n=1000)
    ref = svcca.cca(X, Y).score
    batches = [(X[s : s + 128] * c, Y[s : s + 128]) for s in range(0, 1000, 128)]
    assert abs(svcca.cca(_quiet(svcca.Moments.from_batches, batches)).score - ref) <= TOL
    dx = da.from_array(X * c, chunks=(150, -1))
    assert abs(_quiet(svcca.cca, dx, Y).score - ref) <= TOL
    got = _quiet(lambda: svcca.pairwise({"x": dx, "y": Y}, measure="cca"))
    assert abs(got.values[0, 1] - ref) <= TOL


@pytest.mark.parametrize("c", (1e-300, 1e300))
def test_statistics_score_any_magnitude(c):
    X, Y = _layers(n=120)
    for measure in (svcca.cka, svcca.rsa, svcca.cca, svcca.procrustes):
        ref = svcca.stats.permutation_test(measure, X, Y, n_permutations=20, seed=0)
        got = _quiet(
            lambda m=measure: svcca.stats.permutation_test(
                m, X * c, Y, n_permutations=20, seed=0
            )
        )
        assert abs(got.statistic - ref.statistic) <= TOL
        assert np.abs(got.null_distribution - ref.null_distribution).max() <= TOL


@pytest.mark.parametrize("c", (1e-300, 1e300))
@pytest.mark.parametrize("where", ["host", "device code on the CPU"])
def test_torch_compare_scores_any_magnitude(c, where):
    torch = pytest.importorskip("torch")
    from svcca.torch import compare

    class Times(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c = 1.0

        def forward(self, x):
            return x * self.c

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5), Times()
    ).double()
    x = torch.randn(600, 6, dtype=torch.float64)
    batches = [x[i : i + 100] for i in range(0, 600, 100)]
    for measure in ("cca", "pwcca", "cka_linear", "cka_minibatch"):
        with svcca.on_device("cpu" if where != "host" else None):
            ref = compare(model, model, batches, ["0", "3"], measure=measure).values
            model[3].c = c
            try:
                got = _quiet(
                    lambda m=measure: compare(model, model, batches, ["0", "3"], measure=m)
                )
            finally:
                model[3].c = 1.0
        assert np.abs(got.values - ref).max() <= TOL, measure


def test_outputs_in_data_units_scale_with_the_data():
    X, Y = _layers()
    c = 2.0**200  # exact, so the outputs scale exactly
    a, b = svcca.cca(X, Y), svcca.cca(X * c, Y)
    assert np.allclose(b.weights_x * c, a.weights_x, rtol=1e-12, atol=0)
    u, _ = b.transform(X * c)
    v, _ = a.transform(X)
    assert np.allclose(u, v, rtol=1e-9, atol=1e-9)
    s = svcca.svcca(X * c, Y, keep=4)
    assert np.allclose(s.weights_x * c, svcca.svcca(X, Y, keep=4).weights_x, rtol=1e-12)
    p1, p2 = svcca.pls(X, Y), svcca.pls(X * c, Y)
    assert np.allclose(p2.singular_values, p1.singular_values * c, rtol=1e-12)
    e1, e2 = svcca.pca(X), svcca.pca(X * c)
    assert np.allclose(e2.eigenvalues, e1.eigenvalues * c * c, rtol=1e-12)
    assert np.allclose(e2.explained_variance_ratio, e1.explained_variance_ratio, rtol=1e-12)
    k1, k2 = svcca.cka(X, Y), svcca.cka(X * 2.0**100, Y)
    assert k2.hsic_xx == pytest.approx(k1.hsic_xx * 2.0**400, rel=1e-12)
    assert k2.hsic_xy == pytest.approx(k1.hsic_xy * 2.0**200, rel=1e-12)
    m = svcca.Moments.from_arrays(X * 2.0**100, Y)
    assert m.scale_x == 2.0**101 and m.scale_y == 1.0  # largest |x - mean| in [2^101, 2^102)
    assert np.allclose(m.cov_xx, np.cov(X * 2.0**100, rowvar=False), rtol=1e-12)
    assert "scale_x=2**101" in repr(m)
    D1, D2 = svcca.rdm(X), svcca.rdm(X * c)
    assert np.allclose(D2, D1 * c, rtol=1e-12)
    t1, t2 = svcca.svcca_two_pass(X, Y, keep=4), svcca.svcca_two_pass(X * c, Y, keep=4)
    assert np.allclose(t2.weights_x * c, t1.weights_x, rtol=1e-9, atol=0)
    from svcca import conv

    A = np.random.default_rng(5).standard_normal((200, 3, 3, 2))
    B = A[..., ::-1] + A
    f1 = conv.fourier_cca(A, B, layout="nhwc")
    f2 = conv.fourier_cca(A * c, B, layout="nhwc")
    u2, u1 = f2.transform(A * c)[0], f1.transform(A)[0]
    assert np.allclose(u2, u1, rtol=1e-9, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("offset", (1e6, 1e10, 1e12))
def test_an_offset_is_judged_against_the_data_stored(offset):
    X, Y = _layers()
    Xs = X + offset
    stored = Xs - offset  # exact (Sterbenz): what float64 kept of X
    bound = tol(cond=COND, scale=offset / X.std())
    for name in ("cca", "svcca", "pwcca", "cka_feature", "procrustes", "rsa_euclidean"):
        assert abs(_quiet(SINGLE[name], Xs, Y) - SINGLE[name](stored, Y)) <= bound, name
    for measure in ("cca", "svcca", "pwcca", "cka_linear"):
        ref = svcca.pairwise({"x": stored, "y": Y}, measure=measure).values
        got = _quiet(lambda m=measure: svcca.pairwise({"x": Xs, "y": Y}, measure=m).values)
        assert np.abs(got - ref).max() <= bound, measure


def test_constant_means_no_spread_relative_to_the_layers_own_magnitude():
    X, Y = _layers()
    for c in (1e-300, 1e300):
        svcca.cca(X * c, Y)  # a tiny or huge layer is not "constant"
        svcca.cka(X * c, Y)
        flat = np.full_like(X, c)
        for f in (svcca.cca, svcca.cka, svcca.procrustes, svcca.rsa):
            with pytest.raises(svcca.DegenerateError, match="nothing to compare"):
                f(flat, Y)
    # a neuron at 1e-20 of its layer's magnitude is numerically constant at any scale
    Z = X.copy()
    Z[:, 0] *= 1e-20
    for c in (1.0, 1e-280, 1e280):
        r = svcca.cca(Z * c, Y)
        assert list(r.pruned_x.indices) == [0]
        assert r.pruned_x.reasons == ("numerically constant",)


def test_statistics_of_different_units_merge_exactly():
    X, Y = _layers(n=1000)
    big = X.copy()
    big[500:] *= 2.0**300  # the second half's unit is 2^300 times the first's
    whole = svcca.Moments.from_arrays(big, Y)
    a = svcca.Moments.from_arrays(big[:500], Y[:500])
    b = svcca.Moments.from_arrays(big[500:], Y[500:])
    for merged in (a.merge(b), b.merge(a)):
        assert merged.scale_x == max(a.scale_x, b.scale_x)
        assert abs(svcca.cca(merged).score - svcca.cca(whole).score) <= TOL
        assert np.allclose(merged.mean_x, whole.mean_x, rtol=1e-12)


def test_a_later_chunk_beyond_the_first_ones_range_is_refused_not_summed():
    X, Y = _layers(n=1000)
    late = X.copy()
    late[600:] *= 1e250  # 2^830 times the first chunk: the sums cannot hold both
    with pytest.raises(ValueError, match=r"cross-products of X overflowed: a later chunk"):
        svcca.Moments.from_arrays(late, Y, chunk_size=200)
    with pytest.raises(svcca.Float32RangeError, match=r"Or use precision='float64'"):
        svcca.Moments.from_arrays(X * np.r_[np.ones(600), np.full(400, 1e20)][:, None], Y,
                                  chunk_size=200, precision="float32")


def test_a_scale_must_be_a_power_of_two():
    with pytest.raises(ValueError, match=r"Moments.scale_x must be a positive power of two"):
        svcca.Moments(2, np.zeros(1), np.zeros(0), np.ones((1, 1)), np.zeros((0, 0)),
                      np.zeros((1, 0)), scale_x=3.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_random_magnitudes_and_measures(seed):
    """The whole sweep: random log-uniform magnitudes on both sides, every measure."""
    rng = np.random.default_rng(seed)
    X, Y = _layers(seed=seed)
    cx, cy = 10.0 ** rng.uniform(-300, 300, size=2)
    for name, f in SINGLE.items():
        bound = tol(np.float32, factor=100) if name == "cka_float32" else TOL
        assert abs(_quiet(f, X * cx, Y * cy) - f(X, Y)) <= bound, (name, cx, cy)


@pytest.mark.parametrize("offset", (3e4, 1e6, 1e10))
def test_dask_blocks_at_an_offset_self_compare_as_one(offset):
    """Statistics merged from blocks carry eps |c| / std relative error at first order:
    the round-off bound allows it (was: "This is a bug" for a Dask self-pair from 3e4)."""
    import dask.array as da

    X = np.random.default_rng(0).standard_normal((300, 10))
    stored = (X + offset) - offset
    bound = tol(cond=COND, scale=offset / X.std())
    for measure in ("cca", "svcca", "pwcca"):
        got = svcca.pairwise(
            {"a": da.from_array(X + offset, chunks=(47, 10)), "b": stored}, measure=measure
        ).values
        assert abs(got[0, 0] - 1.0) <= bound and abs(got[0, 1] - 1.0) <= bound, measure
        single = svcca.MEASURES[measure].score(da.from_array(X + offset, chunks=(47, 10)), stored)
        assert abs(single - 1.0) <= bound


def test_minibatch_cka_over_batches_of_different_magnitudes():
    """Each layer's unit is its largest batch's: the sums made before a larger batch are
    rescaled exactly (was: 0.0 with overflow warnings from a batch at 1e77 on)."""
    X, Y = _layers(n=240)

    def run(c, at=2):
        mb = svcca.MinibatchCKA()
        for i in range(4):
            mb.update(X[60 * i : 60 * i + 60] * (c if i == at else 1.0), Y[60 * i : 60 * i + 60])
        return mb

    ref = run(1e10).result().score  # the large batch dominates the averaged HSICs
    for c in (1e60, 1e80, 1e200, 1e300):
        assert abs(_quiet(lambda c=c: run(c).result().score) - ref) <= TOL
    tiny = run(1e-300, at=0).result().score  # a batch that weighs nothing beside the others
    assert abs(tiny - run(0.0, at=0).result().score) <= TOL
    a = svcca.MinibatchCKA().update(X[:120] * 1e100, Y[:120])
    b = svcca.MinibatchCKA().update(X[120:], Y[120:])
    merged = _quiet(lambda: a.merge(b).result())
    whole = svcca.MinibatchCKA().update(X[:120] * 1e100, Y[:120]).update(X[120:], Y[120:])
    assert abs(merged.score - whole.result().score) <= TOL
    assert merged.hsic_xx == np.inf  # 1e400: beyond float64, reported as such; the score is not


def test_long_double_data_beyond_float64_are_named_so_not_as_nan():
    X, Y = _layers()
    big = X.astype(np.longdouble) * np.longdouble("1e400")
    if not np.isfinite(big).all():
        pytest.skip("long double is float64 on this platform")
    with pytest.raises(ValueError, match=r"values up to 1e40\d, beyond float64's range"):
        svcca.cca(big, Y)
    assert abs(svcca.cca(big / np.longdouble("1e300"), Y).score - svcca.cca(X, Y).score) <= TOL


def test_varying_features_pruned_as_numerically_constant_are_warned_about():
    X, Y = _layers()
    s = np.ones(X.shape[1])
    s[:2] = 1e-7  # variance 1e-14 of the largest: below the float64 floor of 1e-12
    with pytest.warns(svcca.SVCCAWarning, match=r"X: 2 features that vary .* standardise"):
        r = svcca.cca(X * s, Y)
    assert r.pruned_x.reasons == ("numerically constant",) * 2
    got = svcca.cca((X * s) / (X * s).std(axis=0), Y).score  # the fix keeps them
    assert abs(got - svcca.cca(X, Y).score) <= TOL
