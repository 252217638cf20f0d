"""RBF, debiased, sample-space and minibatch CKA of torch tensors on their device.

CI has no GPU: the torch path runs on the CPU inside ``svcca.on_device("cpu")`` and is
checked against the NumPy path (``on_device(None)`` / plain arrays), which
tests/measures/test_cka.py pins against independent references. ``TestCuda`` (``-m gpu``)
repeats the comparisons on CUDA, where GPU tensors take the device path by themselves.

Tolerances: every HSIC is a sum of ``N = n^2`` products of centred Gram entries, each an
inner product of ``p`` terms; summed in another order (another GEMM, another reduction
tree) it moves by at most ``gamma_N = N eps`` relative to the sum of the terms' sizes
(Higham, Accuracy and Stability, 2nd ed., eq. 3.5). With correlated data (scores ~0.6,
no cancellation to speak of) the HSICs and the score therefore agree to ``10 eps n^2``.
"""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca._validation import DegenerateError

torch = pytest.importorskip("torch")
from svcca._device import data_device  # noqa: E402
from svcca._measures import _cka as cka_module  # noqa: E402
from svcca._measures._cka import _median  # noqa: E402

HAS_CUDA = bool(torch.cuda.is_available())

VARIANTS = {
    "rbf": {"kernel": "rbf"},
    "rbf_half_width": {"kernel": "rbf", "bandwidth": 0.5},
    "rbf_sigma": {"kernel": "rbf", "sigma": (2.0, 3.0)},
    "rbf_debiased": {"kernel": "rbf", "debiased": True},
    "linear_debiased_feature": {"debiased": True, "method": "feature"},
    "linear_debiased_auto": {"debiased": True},
    "linear_debiased_sample": {"debiased": True, "method": "sample"},
    "linear_sample": {"method": "sample"},
}


def _data(n: int = 60, p: int = 7, q: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, q)) + rng.standard_normal((n, q))
    return X, Y


def _assert_same(r_dev: svcca.CKAResult, r_np: svcca.CKAResult, n: int) -> float:
    """Field by field within the n^2 summation bound; returns the score difference."""
    bound = tol(cond=n * n)
    for field in ("score", "hsic_xy", "hsic_xx", "hsic_yy"):
        a, b = getattr(r_dev, field), getattr(r_np, field)
        assert type(a) is float, field
        np.testing.assert_allclose(a, b, rtol=0, atol=bound * max(abs(b), 1.0), err_msg=field)
    for field in ("kernel", "debiased", "bandwidth", "method", "n_samples", "n_features"):
        assert getattr(r_dev, field) == getattr(r_np, field), field
    for field in ("sigma_x", "sigma_y"):
        a, b = getattr(r_dev, field), getattr(r_np, field)
        assert (a is None) == (b is None), field
        if b is not None:  # sqrt of one entry of D, each to ~(p + 2) eps of max D
            np.testing.assert_allclose(a, b, rtol=tol(cond=20), err_msg=field)
    return abs(r_dev.score - r_np.score)


# ---------------------------------------------------------------------- the variants
@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_variant_equals_the_numpy_path(name, dtype):
    X, Y = _data()
    Xt, Yt = torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)
    # the NumPy path on the same (float32-rounded) values: both compute in float64
    r_np = svcca.cka(Xt.numpy(), Yt.numpy(), **VARIANTS[name])
    with svcca.on_device("cpu"):
        r_dev = svcca.cka(Xt, Yt, **VARIANTS[name])
    _assert_same(r_dev, r_np, X.shape[0])


def test_odd_n_and_more_features_than_samples():
    X, Y = _data(n=33, p=40, q=50, seed=3)
    for kw in ({"kernel": "rbf"}, {"debiased": True}, {"debiased": True, "method": "feature"}):
        r_np = svcca.cka(X, Y, **kw)
        with svcca.on_device("cpu"):
            r_dev = svcca.cka(torch.from_numpy(X), torch.from_numpy(Y), **kw)
        _assert_same(r_dev, r_np, 33)
    assert r_np.method == "feature"


def test_median_is_numpys_definition():
    # torch.median would give the lower middle value (2.0); NumPy averages the two
    t = torch.tensor([[4.0, 1.0], [3.0, 2.0]], dtype=torch.float64)
    assert torch.median(t).item() == 2.0
    assert _median(t) == np.median(t.numpy()) == 2.5
    odd = torch.tensor([[5.0, 1.0, 4.0]], dtype=torch.float64)
    assert _median(odd) == np.median(odd.numpy()) == 4.0
    same = torch.tensor([[3.0, 3.0], [3.0, 1.0]], dtype=torch.float64)  # a tie in the middle
    assert _median(same) == np.median(same.numpy()) == 3.0


@pytest.mark.parametrize("shape", [(1, 1), (7, 7), (8, 8), (9, 13), (40, 40)])
def test_median_selection_is_exact_across_chunks(monkeypatch, shape):
    monkeypatch.setattr(cka_module, "_SELECT_CHUNK", 5)  # many chunks, ragged last one
    rng = np.random.default_rng(sum(shape))
    D = rng.exponential(size=shape) * 10.0 ** rng.integers(-300, 300, size=shape)
    D.flat[::3] = 0.0  # ties and zeros, as the diagonal of a distance matrix gives
    D.flat[1::11] = -0.0
    D.flat[2::5] = D.flat[-1]
    assert _median(torch.from_numpy(D)) == np.median(D)


def test_rbf_width_even_n_follows_numpy_median():
    # n even: an even count of squared distances, so the two middle values are averaged
    X, Y = _data(n=40)
    r_np = svcca.cka(X, Y, kernel="rbf")
    with svcca.on_device("cpu"):
        r_dev = svcca.cka(torch.from_numpy(X), torch.from_numpy(Y), kernel="rbf")
    np.testing.assert_allclose(r_dev.sigma_x, r_np.sigma_x, rtol=tol(cond=20))
    np.testing.assert_allclose(r_dev.sigma_y, r_np.sigma_y, rtol=tol(cond=20))


def test_requires_grad_tensors_are_read_not_differentiated():
    X, Y = _data()
    Xt = torch.from_numpy(X).requires_grad_()
    with svcca.on_device("cpu"):
        r = svcca.cka(Xt, torch.from_numpy(Y), kernel="rbf", debiased=True)
    assert type(r.score) is float and Xt.grad is None
    _assert_same(r, svcca.cka(X, Y, kernel="rbf", debiased=True), X.shape[0])


def test_input_tensors_are_left_unchanged():
    X, Y = _data()
    Xt, Yt = torch.from_numpy(X.copy()), torch.from_numpy(Y.copy())
    with svcca.on_device("cpu"):
        for kw in VARIANTS.values():
            svcca.cka(Xt, Yt, **kw)
    assert np.array_equal(Xt.numpy(), X) and np.array_equal(Yt.numpy(), Y)


def test_public_gram_helpers_take_tensors():
    from svcca._measures._cka import center_gram, gram_linear, gram_rbf, hsic_from_centered

    X, _ = _data(n=30)
    Xt = torch.from_numpy(X).float()
    x32 = Xt.numpy()
    bound = tol(cond=30 * 7)
    for unbiased in (False, True):
        K = center_gram(gram_linear(x32), unbiased=unbiased)
        Kt = center_gram(gram_linear(Xt), unbiased=unbiased)
        assert isinstance(Kt, torch.Tensor) and Kt.dtype == torch.float64
        scale = np.abs(K).max()
        np.testing.assert_allclose(Kt.numpy(), K, rtol=0, atol=bound * scale)
        h, ht = (
            hsic_from_centered(K, K, unbiased=unbiased),
            hsic_from_centered(Kt, Kt, unbiased=unbiased),
        )
        np.testing.assert_allclose(ht, h, rtol=tol(cond=30 * 30))
    (R, s), (Rt, st) = gram_rbf(x32, 0.5), gram_rbf(Xt, 0.5)
    np.testing.assert_allclose(Rt.numpy(), R, rtol=0, atol=bound)
    assert st == pytest.approx(s, rel=tol(cond=20))
    G = gram_linear(Xt)
    center_gram(G)  # a copy: the argument is left alone
    assert torch.equal(G, gram_linear(Xt))


# ---------------------------------------------------------------------- the device rule
def test_device_rule_where_the_work_runs():
    X, Y = _data()
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    assert data_device((X, Y), ("X", "Y")) is None  # arrays: host
    assert data_device((Xt, Yt), ("X", "Y")) is None  # CPU tensors, no block: host
    with svcca.on_device("cpu"):
        assert data_device((Xt, Yt), ("X", "Y")) == torch.device("cpu")
        assert data_device((X, Y), ("X", "Y")) is None  # arrays stay on the host
        with svcca.on_device(None):
            assert data_device((Xt, Yt), ("X", "Y")) is None


def test_cpu_tensors_outside_on_device_take_the_numpy_path(monkeypatch):
    # Only the device path plans its n x n buffers: under a 1 MiB cap the same call
    # refuses inside on_device("cpu") and runs outside it and inside on_device(None).
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1M")
    X, Y = _data(n=400)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    expected = svcca.cka(X, Y, kernel="rbf")
    assert svcca.cka(Xt, Yt, kernel="rbf").score == expected.score  # the very same path
    with svcca.on_device(None):
        assert svcca.cka(Xt, Yt, kernel="rbf").score == expected.score
    with svcca.on_device("cpu"), pytest.raises(svcca.DeviceMemoryError):
        svcca.cka(Xt, Yt, kernel="rbf")


def test_cpu_tensor_with_an_array_outside_on_device_is_the_numpy_path():
    X, Y = _data()
    r = svcca.cka(torch.from_numpy(X), Y, kernel="rbf")
    assert r.score == svcca.cka(X, Y, kernel="rbf").score


# ---------------------------------------------------------------------- memory planning
@pytest.mark.parametrize(
    ("kw", "fix"),
    [
        ({"kernel": "rbf"}, r"RBF CKA of 400 samples .*median.*kernel='linear'"),
        ({"kernel": "rbf", "sigma": 1.0}, r"RBF CKA of 400 samples .*fewer samples"),
        ({"debiased": True, "method": "sample"}, r"debiased linear CKA .*method='feature'"),
        ({"method": "sample"}, r"Sample-space linear CKA of 400 .*on_device\(None\)"),
    ],
)
def test_too_large_n_is_refused_before_allocating(monkeypatch, kw, fix):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1M")
    X, Y = _data(n=400)
    with svcca.on_device("cpu"), pytest.raises(svcca.DeviceMemoryError, match=fix) as info:
        svcca.cka(torch.from_numpy(X), torch.from_numpy(Y), **kw)
    msg = str(info.value)
    assert "needs" in msg and "1.0 MiB is free" in msg and "400 x 400 float64" in msg
    # the need stated is the buffers': two n x n float64, an n x p copy, the median's scratch
    need = 8 * (2 * 400 * 400 + 400 * 7) + (9 * 400 * 400 if kw == {"kernel": "rbf"} else 0)
    assert svcca._device.format_bytes(need) in msg


def test_the_plan_lets_what_fits_through(monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1M")
    X, Y = _data(n=100)  # 2 x 100^2 float64 + the median's 9 bytes an entry < 80% of 1 MiB
    with svcca.on_device("cpu"):
        r = svcca.cka(torch.from_numpy(X), torch.from_numpy(Y), kernel="rbf")
    _assert_same(r, svcca.cka(X, Y, kernel="rbf"), 100)


# ---------------------------------------------------------------------- refusals
def test_tensors_on_two_devices_are_refused():
    X, Y = _data()
    meta = torch.empty(Y.shape, dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match=r"X is on cpu and Y on meta; move them to one device"):
        svcca.cka(torch.from_numpy(X), meta, kernel="rbf")


def test_tensor_on_another_device_than_the_blocks_is_refused():
    meta = torch.empty((10, 3), dtype=torch.float64, device="meta")
    with (
        svcca.on_device("cpu"),
        pytest.raises(
            ValueError,
            match=r"X must be on cpu, where svcca.on_device\('cpu'\) .* got a tensor on meta",
        ),
    ):
        svcca.cka(meta, meta, kernel="rbf")


def test_array_mixed_with_tensors_on_a_device_path_is_refused():
    X, Y = _data()
    with (
        svcca.on_device("cpu"),
        pytest.raises(TypeError, match=r"Y must be a torch tensor on cpu, as X is; got ndarray"),
    ):
        svcca.cka(torch.from_numpy(X), Y, debiased=True)


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda t: t[:, 0], ValueError, r"X must be 2-D .* 1-D tensor of shape \(60,\)"),
        (lambda t: t.to(torch.complex128), TypeError, r"X must hold real numbers; got dtype"),
        (lambda t: t[:, :0], ValueError, r"X is empty \(shape \(60, 0\)\)"),
        (lambda t: t[:50], ValueError, r"X has 50 samples \(rows\) and Y has 60"),
    ],
)
def test_malformed_tensors_are_refused(make, exc, match):
    X, Y = _data()
    with svcca.on_device("cpu"), pytest.raises(exc, match=match):
        svcca.cka(make(torch.from_numpy(X)), torch.from_numpy(Y), kernel="rbf")


def test_constant_nonfinite_and_duplicate_tensors_are_refused():
    X, Y = _data()
    Yt = torch.from_numpy(Y)
    with svcca.on_device("cpu"):
        with pytest.raises(DegenerateError, match=r"Representation X \(7 features\).*constant"):
            svcca.cka(torch.ones((60, 7), dtype=torch.int64), Yt, kernel="rbf")
        bad = torch.from_numpy(X.copy())
        bad[[3, 8], 1] = float("nan")
        with pytest.raises(
            ValueError, match=r"X contains NaN or inf in 2 of its 60 rows .*\[3, 8\]"
        ):
            svcca.cka(bad, Yt, kernel="rbf")
        # one datapoint 50 times: 2510 of the 3600 squared distances are 0, so is the median
        dup = torch.from_numpy(np.vstack([np.repeat(X[:1], 50, axis=0), X[1:11]]))
        with pytest.raises(ValueError, match=r"median pairwise squared distance, which is 0"):
            svcca.cka(dup, Yt, kernel="rbf")
        with pytest.raises(ValueError, match=r"debiased CKA needs at least 4 samples"):
            svcca.cka(Yt[:3], Yt[:3], debiased=True)


# ---------------------------------------------------------------------- minibatch
def _batches(n_batches: int = 4, b: int = 32):
    rng = np.random.default_rng(5)
    for _ in range(n_batches):
        x = rng.standard_normal((b, 6))
        yield [x, np.tanh(x @ rng.standard_normal((6, 9)))], [x[:, :3] ** 2, x + 0.1]


@pytest.mark.parametrize("same", [False, True])
def test_minibatch_on_tensors_equals_minibatch_on_arrays(same):
    on_arrays, on_tensors = svcca.MinibatchCKA(), svcca.MinibatchCKA()
    for xs, ys in _batches():
        txs = [torch.from_numpy(a) for a in xs]
        tys = txs if same else [torch.from_numpy(a).float() for a in ys]  # float32 Y
        with svcca.on_device("cpu"):
            on_tensors.update(txs, tys)
        # the arrays' accumulator on the very values the tensors hold
        on_arrays.update(xs, xs if same else [t.numpy() for t in tys])
    b = 32
    assert on_tensors.shape == on_arrays.shape == (2, 2)
    assert on_tensors.n_samples == on_arrays.n_samples == 4 * b
    for field in ("sum_xy", "sum_xx", "sum_yy"):
        got, want = getattr(on_tensors, field), getattr(on_arrays, field)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=tol(cond=b * b), atol=0, err_msg=field)
    np.testing.assert_allclose(
        on_tensors.scores(), on_arrays.scores(), rtol=0, atol=tol(cond=b * b)
    )
    r = on_tensors.result(1, 0)
    assert r.method == "minibatch" and type(r.score) is float
    merged = on_tensors.merge(on_arrays)  # tensor and array sums are the same kind
    np.testing.assert_allclose(merged.scores(), on_arrays.scores(), rtol=0, atol=tol(cond=b * b))


def test_minibatch_single_batch_equals_full_debiased_cka_on_the_device():
    X, Y = _data(n=64)
    with svcca.on_device("cpu"):
        acc = svcca.MinibatchCKA().update(torch.from_numpy(X), torch.from_numpy(Y))
        full = svcca.cka(torch.from_numpy(X), torch.from_numpy(Y), debiased=True, method="sample")
    np.testing.assert_allclose(acc.result().score, full.score, rtol=0, atol=tol(cond=64**2))


def test_minibatch_cpu_tensors_outside_on_device_take_the_numpy_path(monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1M")
    X, Y = _data(n=300)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    acc = svcca.MinibatchCKA().update(Xt, Yt)  # host path: nothing planned
    assert acc.result().score == svcca.MinibatchCKA().update(X, Y).result().score
    with (
        svcca.on_device("cpu"),
        pytest.raises(
            svcca.DeviceMemoryError,
            match=r"Minibatch CKA of 2 layers over batches of 300 .*smaller",
        ),
    ):
        svcca.MinibatchCKA().update(Xt, Yt)


def test_minibatch_refusals():
    X, Y = _data(n=32)
    Xt = torch.from_numpy(X)
    meta = torch.empty((32, 5), dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match=r"X\[0\] is on cpu and Y on meta"):
        svcca.MinibatchCKA().update([Xt, Xt], meta)
    with svcca.on_device("cpu"):
        with pytest.raises(TypeError, match=r"X\[1\] must be a torch tensor on cpu, as X\[0\]"):
            svcca.MinibatchCKA().update([Xt, X], torch.from_numpy(Y))
        bad = Xt.clone()
        bad[4, 0] = float("inf")
        with pytest.raises(ValueError, match=r"X\[1\] contains NaN or inf in 1 of its 32 rows"):
            svcca.MinibatchCKA().update([Xt, bad], torch.from_numpy(Y))
        with pytest.raises(ValueError, match=r"Y must be 2-D"):
            svcca.MinibatchCKA().update(Xt, torch.from_numpy(Y[:, 0]))


# ---------------------------------------------------------------------- CUDA
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (torch.cuda.is_available())")
class TestCuda:
    """The same comparisons with the tensors on a GPU (no on_device: the data's device)."""

    @pytest.mark.parametrize("name", sorted(VARIANTS))
    def test_every_variant_equals_the_numpy_path(self, name):
        X, Y = _data(n=500, p=64, q=48)
        Xt, Yt = torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda()
        r_dev = svcca.cka(Xt, Yt, **VARIANTS[name])
        _assert_same(r_dev, svcca.cka(X, Y, **VARIANTS[name]), 500)

    def test_device_rule(self):
        Xt = torch.from_numpy(_data()[0]).cuda()
        assert data_device((Xt, Xt), ("X", "Y")) == Xt.device
        with svcca.on_device(None):
            assert data_device((Xt, Xt), ("X", "Y")) is None
        with svcca.on_device("cpu"), pytest.raises(ValueError, match="X must be on cpu"):
            svcca.cka(Xt, Xt, kernel="rbf")
        with pytest.raises(ValueError, match=r"X is on cuda:\d and Y on cpu"):
            svcca.cka(Xt, Xt.cpu(), kernel="rbf")

    def test_minibatch(self):
        on_arrays, on_gpu = svcca.MinibatchCKA(), svcca.MinibatchCKA()
        for xs, ys in _batches(b=256):
            on_arrays.update(xs, ys)
            on_gpu.update(
                [torch.from_numpy(a).cuda() for a in xs], [torch.from_numpy(a).cuda() for a in ys]
            )
        np.testing.assert_allclose(on_gpu.sum_xy, on_arrays.sum_xy, rtol=tol(cond=256**2))
        np.testing.assert_allclose(on_gpu.scores(), on_arrays.scores(), atol=tol(cond=256**2))
