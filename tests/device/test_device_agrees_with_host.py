"""The device path agrees with the host path on inputs that once made it differ, crash
with an unhelpful message, or give a wrong number.

CI has no GPU: the device code runs on CPU torch inside ``svcca.on_device("cpu")``; each
test states what the host path does with the same input, and the device path must
agree.
"""

from __future__ import annotations

import numpy as np
import pytest

import svcca

torch = pytest.importorskip("torch")


def _pair(n: int = 300, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = torch.randn(n, 4, generator=g, dtype=torch.float64) + x[:, :4]
    return x, y


# ------------------------------------------------------- Moments.from_batches of tensors
@pytest.mark.parametrize("where", ["first", "last"])
def test_from_batches_empty_tensor_batch_refused_as_on_host(where):
    # The host path refuses a 0-row batch; the device path took it silently.
    x, y = _pair()
    batches = list(zip(x.split(100), y.split(100), strict=True))
    empty = (x[:0], y[:0])
    batches = [empty, *batches] if where == "first" else [*batches, empty]
    i = 0 if where == "first" else len(batches) - 1
    with svcca.on_device(None), pytest.raises(ValueError, match=f"X of batch {i} is empty") as h:
        svcca.Moments.from_batches([(b[0].numpy(), b[1].numpy()) for b in batches])
    with svcca.on_device("cpu"), pytest.raises(ValueError, match=f"X of batch {i} is empty") as d:
        svcca.Moments.from_batches(batches)
    assert str(d.value) == str(h.value)


def test_from_batches_zero_feature_tensor_refused_as_on_host():
    x, y = _pair()
    with svcca.on_device("cpu"), pytest.raises(ValueError, match=r"Y of batch 0 is empty"):
        svcca.Moments.from_batches([(x, y[:, :0])])


def test_from_batches_numpy_batch_after_tensor_batches_says_what_to_do():
    # Was AttributeError: 'numpy.ndarray' object has no attribute 'is_complex'.
    x, y = _pair()
    batches = [(x[:100], y[:100]), (x[100:].numpy(), y[100:].numpy())]
    with svcca.on_device("cpu"), pytest.raises(TypeError) as e:
        svcca.Moments.from_batches(batches)
    msg = str(e.value)
    assert "X of batch 1 must be a torch tensor" in msg
    assert "batch 0 was" in msg and "torch.as_tensor" in msg


# ----------------------------------------------------------------------- captures
def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()


@pytest.mark.parametrize("where", [None, "cpu"])
def test_capture_of_an_empty_batch_is_refused_by_name(where):
    # Was "Sequential failed on batch 1 (...): RuntimeError: cannot reshape tensor of 0
    # elements ...": the capture's own reshape, blamed on the model.
    st = pytest.importorskip("svcca.torch")
    x, _ = _pair()
    batches = [x[:100], x[:0], x[100:]]
    net = _mlp()
    with svcca.on_device(where):
        with pytest.raises(
            st.CaptureError, match=r"Batch 1 \(Tensor\(0, 6\)\) holds no datapoints"
        ):
            st.capture_moments(net, batches, [("0", "2")])
        with pytest.raises(st.CaptureError, match="holds no datapoints.*Drop empty batches"):
            st.compare(net, net, batches, ["0", "2"], measure="cca")


# ------------------------------------------------------------------ exact products
def test_exact_products_hold_while_another_thread_leaves_its_block():
    # The guard saves and restores process-wide flags. Two threads (one per GPU, or two
    # compare calls in a thread pool): A enters (saves 'bf16'), B enters (saves 'ieee'),
    # A leaves and restored 'bf16' while B was still multiplying: B's float32 products
    # ran in bfloat16 (on CUDA: TF32), and B then left 'ieee' behind for good.
    import threading

    from svcca._device import exact_products

    cpu = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if cpu is None or not hasattr(cpu, "fp32_precision"):
        pytest.skip("torch < 2.9: no CPU fp32_precision setting")
    cuda = torch.backends.cuda.matmul
    start = (torch.backends.fp32_precision, cuda.fp32_precision, cpu.fp32_precision)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[str] = []

    def first() -> None:
        with exact_products("cpu"):
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def second() -> None:
        a_in.wait(10)
        with exact_products("cpu"):
            b_in.set()
            a_out.wait(10)
            seen.append(cpu.fp32_precision)  # B is still inside its block

    try:
        torch.set_float32_matmul_precision("medium")
        assert cpu.fp32_precision == "bf16"
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert seen == ["ieee"]
        assert cpu.fp32_precision == "bf16"  # the user's setting, once both have left
    finally:  # all three, as they were ("medium" set them all)
        torch.backends.fp32_precision, cuda.fp32_precision, cpu.fp32_precision = start


# ------------------------------------------------------------------ the upload cache
def test_upload_cache_never_serves_a_read_only_view_of_changed_data():
    # A read-only view of a writeable array is not frozen: its base can change, and the
    # cached upload (keyed by identity) then served the old values.
    from svcca import _dense

    ones = np.ones((3, 3))
    base = np.eye(3) * 2.0
    view = base[:, :]
    view.flags.writeable = False
    with _dense.dense_on(torch.device("cpu")):
        np.testing.assert_array_equal(_dense.matmul(view, ones), view @ ones)
        base[0, 0] = 100.0
        np.testing.assert_array_equal(_dense.matmul(view, ones), view @ ones)


def test_upload_cache_uploads_a_frozen_factor_once_and_not_a_reused_id():
    from svcca import _dense

    ones = np.ones((3, 3))
    frozen = np.eye(3) * 2.0
    frozen.flags.writeable = False
    with _dense.dense_on(torch.device("cpu")):
        dev = _dense._DENSE.get()
        assert dev is not None
        assert dev.up(frozen) is dev.up(frozen)  # uploaded once
        stale = dev.cache[id(frozen)]
        del frozen  # freed: its weak reference is dead
        assert stale[0]() is None
        # an array at the same address is not the freed one: the weak reference tells
        other = np.eye(3) * 5.0
        other.flags.writeable = False
        dev.cache[id(other)] = stale  # the address reused
        np.testing.assert_array_equal(_dense.matmul(other, ones), other @ ones)


# -------------------------------------------------- float32 products of float64 layers
class _Offset(torch.nn.Module):
    """A float64 layer at 1e6 + O(1) (``o``) and a layer after it (``m``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(6, 5).double()
        self.o = torch.nn.Identity()
        self.m = torch.nn.Linear(5, 4).double()

    def forward(self, x):
        h = self.o(self.lin(x) + 1e6)
        return self.m(torch.tanh(h - 1e6))


def _cond(m: svcca.Moments) -> float:
    out = 1.0
    for S in (m.sxx, m.syy):
        d = np.sqrt(np.diag(S))
        out = max(out, float(np.linalg.cond(S / np.outer(d, d))))
    return out


@pytest.mark.parametrize("where", [None, "cpu"])
def test_float32_moments_of_a_float64_layer_at_1e6_keep_its_digits(where):
    # docs/precision.md: every path centres on exact float64 means before the cast ("a
    # float64 neuron at 1e6 + 0.3 stays exactly constant"). The host captures cast the
    # recorded float64 activations to float32 first (0.06 apart at 1e6): canonical
    # correlations were off by 4e-3 there, 2e-7 on the device.
    from conftest import tol

    st = pytest.importorskip("svcca.torch")
    net = _Offset()
    g = torch.Generator().manual_seed(1)
    batches = list(torch.randn(3000, 6, generator=g, dtype=torch.float64).split(500))
    with svcca.on_device(None):
        acts = st.capture(net, batches, ["o", "m"], dtype=np.float64)
    exact = svcca.Moments.from_arrays(acts["o"], acts["m"])
    truth = svcca.cca(exact).correlations
    # each centred value rounded once to float32, then float32 products of <= 4096 rows
    # (Higham: ~sqrt(4096) u in practice), amplified by the whitening's conditioning
    bound = tol(np.float32, cond=_cond(exact), factor=64)
    with svcca.on_device(where):
        m = st.capture_moments(net, batches, [("o", "m")], precision="float32")[("o", "m")]
        res = st.compare(net, net, batches, ["o"], ["m"], measure="cca", precision="float32")
    np.testing.assert_allclose(svcca.cca(m).correlations, truth, rtol=0, atol=bound)
    np.testing.assert_allclose(res.values[0, 0], truth.mean(), rtol=0, atol=bound)


# ------------------------------------------------- outputs changed in place afterwards
def _inplace_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 5), torch.nn.ReLU(inplace=True), torch.nn.Linear(5, 3)
    ).double()


@pytest.mark.parametrize("where", [None, "cpu"])
def test_a_layer_followed_by_an_inplace_activation_is_recorded_as_it_returned(where):
    # VGG's Conv2d -> ReLU(inplace=True), ResNet's bn1 -> relu(inplace=True): the ReLU
    # overwrote the recorded output before the capture read it, so '0' was recorded
    # after the ReLU (every negative entry 0: a silently wrong layer, on both paths).
    from conftest import tol

    st = pytest.importorskip("svcca.torch")
    net = _inplace_net()
    g = torch.Generator().manual_seed(1)
    batches = list(torch.randn(300, 6, generator=g, dtype=torch.float64).split(100))
    with torch.no_grad():
        lin = torch.cat([net[0](b) for b in batches]).numpy()  # the module's own output
        out = torch.cat([net(b) for b in batches]).numpy()
    truth = svcca.Moments.from_arrays(lin, out)
    scale = float(np.abs(truth.sxx).max())
    with svcca.on_device(where):
        acts = st.capture(net, batches, ["0"], dtype=np.float64)
        m = st.capture_moments(net, batches, [("0", "2")])[("0", "2")]
        res = st.compare(net, net, batches, ["0"], ["2"], measure="cca")
    np.testing.assert_array_equal(acts["0"], lin)
    for key in ("mean_x", "sxx", "sxy"):
        np.testing.assert_allclose(
            getattr(m, key), getattr(truth, key), rtol=0, atol=tol(scale=scale, factor=4 * 300)
        )
    np.testing.assert_allclose(
        res.values[0, 0], svcca.cca(truth).score, rtol=0, atol=tol(cond=_cond(truth), factor=100)
    )
