"""precision="float32": float32 products, float64 sums, and error bounds from the math.

The bound on one chunk's entries is Higham's for a dot product of ``r`` terms,
``|fl(x^T y) - x^T y| <= gamma_r sum |x_k| |y_k|`` with ``gamma_r = r u / (1 - r u)``,
``u = 2^-24`` (the inputs are float32, so converting them costs nothing; the shift
``x - c`` rounds each centred value once more: ``r + 2`` terms in all). The float64
sums across chunks add nothing at this scale.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca._threads import SMALL_PRODUCT, dense_steps, free_cores, products
from svcca.statistic import FLOAT32_CHUNK_ROWS

U32 = float(np.finfo(np.float32).eps) / 2


def _data(n=6000, p=24, q=16, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 8))
    X = Z @ rng.standard_normal((8, p)) + 0.5 * rng.standard_normal((n, p)) + offset
    Y = Z @ rng.standard_normal((8, q)) + 0.5 * rng.standard_normal((n, q)) - offset
    return X.astype(np.float32), Y.astype(np.float32)


def test_moments_entries_within_the_dot_product_bound_with_a_large_offset():
    # A large mean (offset 1e3, std ~3) is where unshifted float32 products lose all
    # digits; shifted by the first chunk's mean they keep the bound of centred data.
    X, Y = _data(offset=1e3)
    m64 = svcca.Moments.from_arrays(X, Y)
    m32 = svcca.Moments.from_arrays(X, Y, precision="float32")
    r = FLOAT32_CHUNK_ROWS + 2
    gamma = r * U32 / (1 - r * U32)
    for key, A, B in (("sxx", X, X), ("syy", Y, Y), ("sxy", X, Y)):
        a = np.abs(A - A[:FLOAT32_CHUNK_ROWS].mean(axis=0, dtype=np.float64))
        b = np.abs(B - B[:FLOAT32_CHUNK_ROWS].mean(axis=0, dtype=np.float64))
        bound = gamma * (a.T @ b) + 1e-9 * np.abs(getattr(m64, key)).max()
        err = np.abs(getattr(m32, key) - getattr(m64, key))
        assert (err <= bound).all(), (key, float((err / bound).max()))
    np.testing.assert_allclose(m32.mean_x, m64.mean_x, rtol=0, atol=1e-9 * 1e3)
    assert m32.precision == "float32" and m64.precision == "float64"
    # The float32 path is really float32: its error is far above float64 round-off.
    assert np.abs(m32.sxx - m64.sxx).max() > 1e3 * np.finfo(np.float64).eps * np.abs(m64.sxx).max()


@pytest.mark.parametrize("how", ["batches", "memmap", "iterator", "torch"])
def test_every_input_path_accumulates_in_float32(how, tmp_path):
    X, Y = _data(n=5000)
    ref = svcca.Moments.from_arrays(X, Y, precision="float32")
    if how == "batches":
        m = svcca.Moments.empty(X.shape[1], Y.shape[1], precision="float32")
        for s in range(0, 5000, 1700):
            m.update(X[s : s + 1700], Y[s : s + 1700])
    elif how == "memmap":
        np.save(tmp_path / "x.npy", X)
        np.save(tmp_path / "y.npy", Y)
        xm = np.load(tmp_path / "x.npy", mmap_mode="r")
        ym = np.load(tmp_path / "y.npy", mmap_mode="r")
        from svcca.sources._to_moments import to_moments

        m = to_moments(xm, ym, precision="float32")
    elif how == "iterator":
        from svcca.sources._to_moments import to_moments

        m = to_moments(iter(np.array_split(X, 3)), iter(np.array_split(Y, 3)), precision="float32")
    else:
        torch = pytest.importorskip("torch")
        from svcca.sources._to_moments import to_moments

        m = to_moments(torch.from_numpy(X), torch.from_numpy(Y), precision="float32")
    assert m.precision == "float32"
    scale = np.abs(ref.sxx).max()
    # Different chunkings round differently: both within 2x the one-chunk bound.
    tol = 2 * (FLOAT32_CHUNK_ROWS + 2) * U32 * 20 * scale
    for key in ("sxx", "syy", "sxy"):
        np.testing.assert_allclose(getattr(m, key), getattr(ref, key), rtol=0, atol=tol)


def test_dask_path_accumulates_in_float32():
    da = pytest.importorskip("dask.array")
    X, Y = _data(n=4000)
    from svcca.sources._to_moments import to_moments

    m = to_moments(
        da.from_array(X, chunks=(1500, -1)),
        da.from_array(Y, chunks=(1500, -1)),
        precision="float32",
    )
    ref = svcca.Moments.from_arrays(X, Y)
    assert m.precision == "float32"
    tol = 2 * (FLOAT32_CHUNK_ROWS + 2) * U32 * 20 * np.abs(ref.sxx).max()
    np.testing.assert_allclose(m.sxy, ref.sxy, rtol=0, atol=tol)


def test_scores_move_by_the_entry_error_times_the_conditioning():
    X, Y = _data()
    m64 = svcca.Moments.from_arrays(X, Y)
    m32 = svcca.Moments.from_arrays(X, Y, precision="float32")
    # delta: the measured relative error of the blocks (an independent quantity).
    delta = max(
        np.linalg.norm(getattr(m32, k) - getattr(m64, k)) / np.linalg.norm(getattr(m64, k))
        for k in ("sxx", "syy", "sxy")
    )
    # Linear CKA = ||Sxy||^2 / (||Sxx|| ||Syy||): relative error <= 2 d + d + d (first order).
    a, b = svcca.cka(m64).score, svcca.cka(X, Y, precision="float32").score
    assert abs(a - b) <= 5 * delta * a
    assert svcca.pls(X, Y, precision="float32").score == pytest.approx(b, rel=1e-12)
    # CCA: each correlation moves by at most ~ delta * cond of the correlation blocks.
    c64, c32 = svcca.cca(m64), svcca.cca(X, Y, precision="float32")
    cond = max(np.linalg.cond(np.corrcoef(X.T)), np.linalg.cond(np.corrcoef(Y.T)))
    np.testing.assert_allclose(c32.correlations, c64.correlations, rtol=0, atol=8 * delta * cond)
    for f in (svcca.svcca, svcca.pwcca):
        assert abs(f(X, Y, precision="float32").score - f(m64).score) <= 8 * delta * cond


def test_collinear_neurons_are_found_in_float32_too():
    # A neuron that duplicates another: float32 sums leave an eigenvalue of ~1e-7, which
    # the float64 rank tolerance (1e-12) would take for a direction, and whitening would
    # turn into a spurious correlation near 1. The float32 tolerance (1.2e-4) drops it.
    X, Y = _data()
    Xd = np.hstack([X, X[:, :1] * 2.0]).astype(np.float32)
    r64 = svcca.cca(Xd, Y)
    with pytest.warns(svcca.SVCCAWarning, match="1 of its 25 directions .* were dropped"):
        r32 = svcca.cca(Xd, Y, precision="float32")
    assert r32.rank_x == r64.rank_x == X.shape[1]
    np.testing.assert_allclose(r32.correlations, r64.correlations, rtol=0, atol=1e-4)


def test_ill_conditioned_layer_warns_in_float32_only():
    rng = np.random.default_rng(3)
    n = 4000
    base = rng.standard_normal((n, 6))
    # Columns 1e-3 apart: the correlation block has condition number ~1e6.
    X = np.hstack([base, base[:, :3] + 1e-3 * rng.standard_normal((n, 3))]).astype(np.float32)
    Y = (base @ rng.standard_normal((6, 5)) + rng.standard_normal((n, 5))).astype(np.float32)
    with pytest.warns(svcca.SVCCAWarning, match=r"precision='float64'"):
        svcca.cca(X, Y, precision="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svcca.cca(X, Y)


def test_precision_is_checked_and_kept_by_merge_save_load(tmp_path):
    X, Y = _data(n=600)
    with pytest.raises(
        ValueError, match=r"precision must be one of 'float64', 'float32'; got 'half'"
    ):
        svcca.cca(X, Y, precision="half")
    with pytest.raises(ValueError, match="RBF, debiased and sample-space CKA"):
        svcca.cka(X, Y, kernel="rbf", precision="float32")
    a = svcca.Moments.from_arrays(X[:300], Y[:300], precision="float32")
    b = svcca.Moments.from_arrays(X[300:], Y[300:])
    assert b.merge(a).precision == "float32" and a.merge(b).precision == "float32"
    assert "precision='float32'" in repr(a) and "precision" not in repr(b)
    a.save(tmp_path / "m.npz")
    back = svcca.Moments.load(tmp_path / "m.npz")
    assert back.precision == "float32" and back.eps == float(np.finfo(np.float32).eps)
    assert a.swap().precision == a.copy().precision == "float32"


def test_dense_steps_run_on_one_thread_for_small_blocks():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with dense_steps(64):
        inside = [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert inside and all(t == 1 for t in inside)
    assert after == before
    with products(SMALL_PRODUCT / 2):
        small = [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]
    assert all(t == 1 for t in small)
    assert 1 <= free_cores() <= (os.cpu_count() or 1)


def test_dense_steps_limit_even_when_first_used_inside_a_callers_limit(monkeypatch):
    """The threads are compared with the BLAS's threads at the time of the call (was:
    with those when the controller was made, so a first use inside a caller's
    threadpool_limits(1) disabled every later limit: an order-dependent flake)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import svcca._threads as threads

    monkeypatch.setattr(threads, "_controller", None)

    def blas():
        info = threadpoolctl.threadpool_info()
        return [i["num_threads"] for i in info if i["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(1):
        with dense_steps(64):
            pass
    if max(blas(), default=1) < 2:
        pytest.skip("one BLAS thread here: nothing to limit")
    with dense_steps(64):
        assert all(t == 1 for t in blas())


@pytest.mark.parametrize("measure", ["cca", "svcca", "pwcca", "cka_linear"])
def test_pairwise_float32_is_the_single_calls_float32(measure):
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((5000, 6))
    reps = {
        f"l{i}": np.tanh(
            Z @ rng.standard_normal((6, 20)) + 0.3 * rng.standard_normal((5000, 20))
        ).astype(np.float32)
        for i in range(3)
    }
    r32 = svcca.pairwise(reps, measure=measure, precision="float32")
    r64 = svcca.pairwise(reps, measure=measure)
    single = {"cca": svcca.cca, "svcca": svcca.svcca, "pwcca": svcca.pwcca, "cka_linear": svcca.cka}
    f = single[measure]
    # Both passes chunk differently from one Moments pass: equal to float32 round-off
    # amplified by the conditioning (corrcoef's condition numbers here are below 100).
    cond = max(np.linalg.cond(np.corrcoef(v.T)) for v in reps.values())
    tol32 = 64 * 2 * (FLOAT32_CHUNK_ROWS + 2) * U32 * cond
    for a in reps:
        for b in reps:
            one = f(reps[a], reps[b], precision="float32").score
            assert abs(r32[a, b] - one) <= tol32, (a, b)
            assert abs(r32[a, b] - r64[a, b]) <= tol32, (a, b)
    assert not np.array_equal(r32.values, r64.values)


def test_pairwise_float32_through_dask_and_refused_with_sketch():
    da = pytest.importorskip("dask.array")
    X, Y = _data(n=3000)
    reps = {"x": X, "y": Y}
    ref = svcca.pairwise(reps, measure="cca", precision="float32").values
    got = svcca.pairwise(
        {k: da.from_array(v, chunks=(1000, -1)) for k, v in reps.items()},
        measure="cca",
        precision="float32",
    ).values
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="sketch_size runs Frequent Directions in float64"):
        svcca.pairwise(reps, sketch_size=20, precision="float32")


def test_fourier_cca_float32_within_its_moments_error_times_the_conditioning():
    from svcca.conv import fourier_cca
    from svcca.conv._dft import fourier_moments

    rng = np.random.default_rng(2)
    A = rng.standard_normal((5000, 6, 6, 8)).astype(np.float32)
    B = (A @ rng.standard_normal((8, 6)) + rng.standard_normal((5000, 6, 6, 6))).astype(np.float32)
    m64, m32 = fourier_moments(A, B), fourier_moments(A, B, "float32")
    delta = max(
        np.abs(getattr(m32, k) - getattr(m64, k)).max() / np.abs(getattr(m64, k)).max()
        for k in ("sxx", "syy", "sxy")
    )
    assert 0 < delta < 64 * (FLOAT32_CHUNK_ROWS + 2) * U32
    cond = max(np.linalg.cond(S).max() for S in (m64.sxx, m64.syy))
    a = fourier_cca(A, B, layout="nhwc")
    b = fourier_cca(A, B, layout="nhwc", precision="float32")
    np.testing.assert_allclose(
        b.frequency_correlations, a.frequency_correlations, rtol=0, atol=8 * delta * cond
    )
    assert abs(a.score - b.score) <= 8 * delta * cond


def test_float64_inputs_are_shifted_before_the_float32_cast():
    # A constant neuron at 1e6 + 0.3 (float64): cast before the shift it became a step
    # function (0 in the first chunk, c - fl32(c) after) and a fake correlation of 1.
    rng = np.random.default_rng(1)
    n = 10000
    X, Y = rng.standard_normal((n, 8)), rng.standard_normal((n, 6))
    Xc = np.c_[X, np.full(n, 1e6 + 0.3)]
    Yc = np.c_[Y, np.full(n, 1e6 + 0.3)]
    a, b = svcca.cca(Xc, Yc), svcca.cca(Xc, Yc, precision="float32")
    assert b.rank_x == a.rank_x == 8 and b.correlations.max() < 0.2
    assert abs(a.score - b.score) < 1e-5
    # Tiny structure on a large mean, float64: the centred values keep their digits.
    Z = X * 1e-3 + 1e6
    m64, m32 = svcca.Moments.from_arrays(Z), svcca.Moments.from_arrays(Z, precision="float32")
    err = np.abs(m32.sxx - m64.sxx).max() / np.abs(m64.sxx).max()
    assert err < 64 * (FLOAT32_CHUNK_ROWS + 2) * U32
    np.testing.assert_allclose(m32.mean_x, m64.mean_x, rtol=1e-15)


@pytest.mark.parametrize("path", ["pairwise", "torch", "sources"])
def test_large_means_on_every_float32_path(path):
    # float32 activations with means of +-1e6 and spread ~3: a chunk centred on a
    # float32-rounded mean is off-centre by the rounding (~0.03) and the merge must not
    # see it. Every path agrees with float64 to float32 round-off of the centred values.
    A, B = _data(n=9000, offset=1e6)
    ref = svcca.pwcca(A, B).score
    tol = 64 * (FLOAT32_CHUNK_ROWS + 2) * U32 * 100  # cond of these blocks < 100
    if path == "pairwise":
        got = svcca.pairwise({"a": A, "b": B}, measure="pwcca", precision="float32")["a", "b"]
    elif path == "torch":
        torch = pytest.importorskip("torch")
        from svcca.sources._to_moments import to_moments

        m = to_moments(torch.from_numpy(A), torch.from_numpy(B), precision="float32")
        got = svcca.pwcca(m).score
    else:
        from svcca.sources._sources import moments_from_sources

        got = svcca.pwcca(moments_from_sources(A, B, precision="float32")).score
    assert abs(got - ref) <= tol


def test_float32_products_are_scaled_and_values_float32_cannot_resolve_are_refused():
    X, Y = _data(n=3000)
    ref = svcca.cka(X, Y, precision="float32").score
    # Summed in units of a power of two, any magnitude float32 holds after the cast is
    # summed as accurately as magnitude 1 (was: refused beyond 2^60 and below 2^-60).
    for scale in (1e18, 1e-22, 1e30, 1e-40, 1e300):  # cka scales float64 arrays first
        got = svcca.cka(X.astype(np.float64) * scale, Y, precision="float32").score
        assert abs(got - ref) <= tol(np.float32, factor=100)
    for scale in (1e-35, 1e-40):
        # float64 data are divided by their unit before the cast: nothing is lost
        m = svcca.Moments.from_arrays(X.astype(np.float64) * scale, Y, precision="float32")
        assert abs(svcca.cka(m).score - ref) <= tol(np.float32, factor=100)
        # float32 data below 2^-100 lost their digits before we saw them: refused
        with pytest.raises(svcca.Float32RangeError, match="Use precision='float64'"):
            svcca.Moments.from_arrays((X * scale).astype(np.float32), Y, precision="float32")
    big = X.astype(np.float64)
    big[5, 0] = 1e39  # finite in float64, inf once cast: but divided by 2^129 first
    assert svcca.Moments.from_arrays(big, Y, precision="float32").scale_x == 2.0**129


def test_fourier_cca_float32_warns_where_it_cannot_resolve_a_channel():
    from svcca.conv import fourier_cca

    rng = np.random.default_rng(4)
    A = rng.standard_normal((3000, 4, 4, 6))
    B = A[..., :4] @ rng.standard_normal((4, 5)) + rng.standard_normal((3000, 4, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        fourier_cca(A, B, layout="nhwc", precision="float32")  # well resolved: silent
    # A channel 1e-3 away from another: float64 resolves it, float32 cannot.
    A2 = np.concatenate([A, A[..., :1] + 1e-3 * rng.standard_normal((3000, 4, 4, 1))], axis=3)
    with pytest.warns(svcca.SVCCAWarning, match="A: .* below float32's resolution"):
        fourier_cca(A2, B, layout="nhwc", precision="float32")
