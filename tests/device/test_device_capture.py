"""Captures, compare and pairwise with the work on a torch device (issue 13).

CI has no GPU: ``svcca.on_device("cpu")`` runs every device code path (accumulation of
tensors on their device, no host copy per batch, the cubic kernels in torch) on the CPU,
and the results must equal the host path's. The ``gpu`` tests at the end run the same on
CUDA when there is one.
"""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import tol

torch = pytest.importorskip("torch")
st = pytest.importorskip("svcca.torch")
nn = torch.nn

MEASURES = ("cka_linear", "cca", "svcca", "pwcca", "pls")


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 5), nn.Tanh()
    ).double()


def gru(seed: int) -> nn.Module:
    torch.manual_seed(seed)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Linear(4, 8)
            self.rnn = nn.GRU(8, 10, batch_first=True)
            self.out = nn.Linear(10, 3)

        def forward(self, x):
            h, _ = self.rnn(torch.tanh(self.emb(x)))
            return self.out(h)

    return Net().double()


def inputs(n: int, size: int, *shape: int, seed: int = 0) -> list:
    g = torch.Generator().manual_seed(seed)
    return list(torch.randn(n, *shape, generator=g, dtype=torch.float64).split(size))


def cond_of(m: svcca.Moments) -> float:
    """Condition number of the correlation blocks CCA whitens (the error amplification)."""
    out = 1.0
    for S in (m.sxx, m.syy):
        d = np.sqrt(np.diag(S))
        keep = d > 0
        R = S[np.ix_(keep, keep)] / np.outer(d[keep], d[keep])
        out = max(out, float(np.linalg.cond(R)))
    return out


def same_moments(a: svcca.Moments, b: svcca.Moments, n: int) -> None:
    """Two float64 accumulations of the same n-term sums in another order."""
    for key in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
        x, y = getattr(a, key), getattr(b, key)
        scale = max(float(np.abs(x).max()) if x.size else 0.0, 1.0)
        np.testing.assert_allclose(x, y, rtol=0, atol=tol(np.float64, scale=scale, factor=4 * n))


class CountNumpy:
    """Counts ``torch.Tensor.numpy`` calls: every host copy of a tensor makes one."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = torch.Tensor.numpy

        def counting(t, *a, **k):
            self.calls += 1
            return real(t, *a, **k)

        monkeypatch.setattr(torch.Tensor, "numpy", counting)


# ------------------------------------------------------------------ capture_moments
def test_capture_moments_on_the_device_equal_the_host_path():
    net, x = mlp(0), inputs(1200, 150, 6)
    pairs = [("0", "2"), ("1", "3"), "5"]
    host = st.capture_moments(net, x, pairs)
    with svcca.on_device("cpu"):
        dev = st.capture_moments(net, x, pairs)
    for p in pairs:
        assert host[p].device is None and dev[p].device == "cpu"
        same_moments(host[p], dev[p], 1200)
    # the measures run their kernels where the moments were made: same numbers
    with svcca.on_device("cpu"):
        r = svcca.cca(dev[("0", "2")])
    ref = svcca.cca(host[("0", "2")])
    bound = tol(np.float64, cond=cond_of(host[("0", "2")]), factor=8 * 1200)
    np.testing.assert_allclose(r.correlations, ref.correlations, rtol=0, atol=bound)


def test_sequence_models_and_masks_on_the_device():
    net = gru(0)
    x = inputs(300, 60, 7, 4)
    masks = []
    batches = []
    g = torch.Generator().manual_seed(3)
    for xb in x:
        lengths = torch.randint(2, 8, (xb.shape[0],), generator=g)
        mask = (torch.arange(7)[None, :] < lengths[:, None]).long()
        masks.append(mask)
        batches.append({"x": xb, "attention_mask": mask})

    def forward(model, batch):
        return model(batch["x"])

    opts = {"sequence": "mean", "forward": forward}
    host = st.capture_moments(net, batches, [("emb", "rnn")], select={"rnn": 0}, **opts)
    with svcca.on_device("cpu"):
        dev = st.capture_moments(net, batches, [("emb", "rnn")], select={"rnn": 0}, **opts)
    same_moments(host[("emb", "rnn")], dev[("emb", "rnn")], 300)


def test_no_host_copy_per_batch(monkeypatch):
    """The number of tensor -> NumPy copies does not grow with the number of batches."""
    net = mlp(1)
    counts = []
    for n_batches in (2, 12):
        counter = CountNumpy(monkeypatch)
        with svcca.on_device("cpu"):
            st.capture_moments(net, inputs(40 * n_batches, 40, 6), [("0", "4")])
            st.compare(net, mlp(2), inputs(40 * n_batches, 40, 6), ["0", "2"], measure="cca")
        counts.append(counter.calls)
    assert counts[0] == counts[1]
    counter = CountNumpy(monkeypatch)  # the host path copies every batch of every layer
    st.capture_moments(net, inputs(480, 40, 6), [("0", "4")])
    assert counter.calls >= 12


def test_capture_stream_hands_tensors_only_when_the_work_is_on_a_device():
    net, x = mlp(0), inputs(100, 50, 6)
    seen: list[type] = []

    def keep(i, arrays):
        seen.append(type(arrays["0"]))

    st.capture_stream(net, x, ["0"], keep, device_tensors=True)  # a CPU model: host path
    with svcca.on_device("cpu"):
        st.capture_stream(net, x, ["0"], keep, device_tensors=True)
        st.capture_stream(net, x, ["0"], keep)  # a callback that wants NumPy gets NumPy
    with svcca.on_device(None):
        st.capture_stream(net, x, ["0"], keep, device_tensors=True)
    assert seen == [np.ndarray] * 2 + [torch.Tensor] * 2 + [np.ndarray] * 4


# ------------------------------------------------------------------ compare
@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_compare_on_the_device_equals_the_host_path(measure, precision):
    a, b = mlp(0), mlp(1)
    x = inputs(900, 150, 6)
    layers = ["1", "2", "3", "5"]  # full rank: float32 keeps every direction
    host = st.compare(a, b, x, layers, measure=measure, precision=precision)
    rect = st.compare(a, a, x, ["1", "2"], ["3", "5"], measure=measure, precision=precision)
    with svcca.on_device("cpu"):
        dev = st.compare(a, b, x, layers, measure=measure, precision=precision)
        dev_rect = st.compare(a, a, x, ["1", "2"], ["3", "5"], measure=measure, precision=precision)
    # float64: the same sums in another order; float32: each path's float32 products
    # carry their own round-off (4096-row chunks of 2^-24 relative error), amplified
    # for the CCA family by the whitened blocks' condition number.
    acts = st.capture(a, x, layers)
    c = (
        1.0
        if measure in ("cka_linear", "pls")
        else max(float(np.linalg.cond(np.corrcoef(v, rowvar=False))) for v in acts.values())
    )
    bound = tol(np.dtype(precision), cond=c, factor=8 * (900 if precision == "float64" else 64))
    np.testing.assert_allclose(dev.values, host.values, rtol=0, atol=bound)
    np.testing.assert_allclose(dev_rect.values, rect.values, rtol=0, atol=bound)
    assert dev.rows == host.rows and dev.dims_cols == host.dims_cols


def test_compare_minibatch_cka_on_the_device(monkeypatch):
    a, b = mlp(0), mlp(1)
    x = inputs(900, 150, 6)
    host = st.compare(a, b, x, ["1", "3", "5"], measure="cka_minibatch")
    counter = CountNumpy(monkeypatch)
    with svcca.on_device("cpu"):
        dev = st.compare(a, b, x, ["1", "3", "5"], measure="cka_minibatch")
    # the per-batch HSIC matrices (3 x 3) come to the host, never the activations
    assert counter.calls <= 3 * len(x)
    # per batch: b^2-term float64 sums of Gram entries, in another order
    np.testing.assert_allclose(dev.values, host.values, rtol=0, atol=tol(factor=8 * 150**2))
    bad = [t.clone() for t in x]
    bad[2][5, 1] = float("nan")
    with (
        svcca.on_device("cpu"),
        pytest.raises(
            ValueError,
            match=r"Layer '1' of model_a contains NaN or inf in rows \[5\] .*\(batch 2\)",
        ),
    ):
        st.compare(a, b, bad, ["1"], measure="cka_minibatch")


def test_compare_errors_on_the_device():
    a, b = mlp(0), mlp(1)
    bad = inputs(100, 50, 6)
    bad[1] = bad[1].clone()
    bad[1][7, 2] = float("nan")
    with (
        svcca.on_device("cpu"),
        pytest.raises(ValueError, match=r"Layer '1' of model_a contains NaN or inf .*\(batch 1\)"),
    ):
        st.compare(a, b, bad, ["1"])


def test_device_memory_is_planned_not_hoped_for(monkeypatch):
    a, b = mlp(0), mlp(1)
    x = inputs(600, 300, 6)
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "2K")
    with svcca.on_device("cpu"):
        with pytest.raises(
            svcca.DeviceMemoryError,
            match=r"compare's cross blocks \(16 x 16 features\).* needs .* on cpu .*2\.0 KiB is "
            r"free there.*compare fewer or narrower layers",
        ):
            st.compare(a, b, x, ["1"])
        with pytest.raises(svcca.DeviceMemoryError, match=r"Moments of 16 \+ 12 features"):
            st.capture_moments(a, x, [("1", "3")])
        t = {k: torch.from_numpy(v) for k, v in st.capture(a, x, ["1", "3"]).items()}
        with pytest.raises(svcca.DeviceMemoryError, match=r"Moments of 16 features"):
            svcca.pairwise(t)
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "lots")
    with svcca.on_device("cpu"), pytest.raises(ValueError, match="SVCCA_DEVICE_MEMORY='lots'"):
        st.compare(a, b, x, ["1"])


# ------------------------------------------------------------------ hidden states
def test_hidden_state_moments_on_the_device():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):
        ids = torch.randint(0, 50, (20, 9), generator=g)
        mask = torch.ones_like(ids)
        mask[::3, 5:] = 0
        batches.append({"input_ids": ids, "attention_mask": mask})
    pairs = [("embeddings", "layer.2")]
    host = st.hidden_state_moments(model, batches, pairs, sequence="mean")
    with svcca.on_device("cpu"):
        dev = st.hidden_state_moments(model, batches, pairs, sequence="mean")
    assert dev[pairs[0]].device == "cpu"
    same_moments(host[pairs[0]], dev[pairs[0]], 60)


# ------------------------------------------------------------------ tensors in memory
def test_pairwise_of_tensors_runs_both_passes_on_the_device():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((2500, 4))
    reps = {
        f"l{i}": np.tanh(Z @ rng.standard_normal((4, 9 + 3 * i)))
        + 0.2 * rng.standard_normal((2500, 9 + 3 * i))
        for i in range(3)
    }
    t = {k: torch.from_numpy(v) for k, v in reps.items()}
    for measure in MEASURES:
        ref = svcca.pairwise(reps, measure=measure)
        rect_ref = svcca.pairwise({"l0": reps["l0"]}, {"l1": reps["l1"], "l2": reps["l2"]})
        with svcca.on_device("cpu"):
            got = svcca.pairwise(t, measure=measure, chunk_size=700)
            rect = svcca.pairwise({"l0": t["l0"]}, {"l1": t["l1"], "l2": t["l2"]})
        c = 1.0 if measure in ("cka_linear", "pls") else 1e2
        np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=tol(cond=c, factor=1e4))
        np.testing.assert_allclose(rect.values, rect_ref.values, rtol=0, atol=tol(factor=1e4))


def test_moments_from_tensor_batches():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1000, 5, generator=g, dtype=torch.float64) + 3.0
    Y = torch.tanh(X[:, :3]) + 0.1 * torch.randn(1000, 3, generator=g, dtype=torch.float64)
    with svcca.on_device("cpu"):
        m = svcca.Moments.from_batches(zip(X.split(128), Y.split(128), strict=True))
    assert m.device == "cpu"
    same_moments(m, svcca.Moments.from_arrays(X.numpy(), Y.numpy()), 1000)
    # CPU tensors outside a block take the host path, as CPU data always do
    pairs = zip(X.split(128), Y.split(128), strict=True)
    assert svcca.Moments.from_batches(pairs).device is None
    with svcca.on_device("cpu"):
        one = svcca.Moments.from_batches(X.split(300), precision="float32")
        assert one.q == 0 and one.precision == "float32" and one.device == "cpu"
        with pytest.raises(ValueError, match="Batch 0 has 10 rows of X but 9 of Y"):
            svcca.Moments.from_batches([(X[:10], Y[:9])])
        with pytest.raises(ValueError, match="Batch 1 has 4 features of X and 3 of Y, but"):
            svcca.Moments.from_batches([(X[:10], Y[:10]), (X[:10, :4], Y[:10])])
        with pytest.raises(
            ValueError, match=r"X of batch 0 must be 2-D .*tensor of shape \(10,\)"
        ):
            svcca.Moments.from_batches([X[:10, 0]])


# ------------------------------------------------------------------ on a GPU
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CI has none)")


@pytest.mark.gpu
@cuda
def test_gpu_model_is_compared_on_the_gpu(monkeypatch):
    a, b = mlp(0), mlp(1)
    x = inputs(2000, 250, 6)
    host = st.compare(a, b, x, ["0", "1", "3"], measure="cca")
    counter = CountNumpy(monkeypatch)
    got = st.compare(a.cuda(), b.cuda(), [t.cuda() for t in x], ["0", "1", "3"], measure="cca")
    assert counter.calls < len(x)  # the sums, not the batches, come to the host
    np.testing.assert_allclose(got.values, host.values, rtol=0, atol=1e-9)
    with svcca.on_device("cpu"), pytest.raises(ValueError, match="accumulate on cpu"):
        st.capture_moments(a, [t.cuda() for t in x], [("0", "1")])
    m = st.capture_moments(a, [t.cuda() for t in x], [("0", "1")])[("0", "1")]
    assert m.device.startswith("cuda")


def test_gpu_benchmark_script_runs(tmp_path):
    """benchmarks/bench_gpu.py at tiny sizes on CPU torch: the script cannot rot unseen."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "bench_gpu.py"
    out = tmp_path / "gpu.json"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--device", "cpu", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    assert report["device"] == "cpu"
    for name in ("cka_linear", "svcca"):
        steps = report["small_steps"][name]
        # the same float64 moments through the torch and the NumPy kernels
        assert steps["agreement_steps"] < 1e-12
        # float32 products of 2 x 1024 rows against float64: 1e-7-level entry errors
        assert steps["agreement_float32"] < 1e-5
    assert report["moments"]["seconds"]["floor"] > 0


def test_docs_gpu_page_runs():
    """docs/gpu.md's code blocks, as written (they assert)."""
    import re
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "gpu.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert blocks
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "docs/gpu.md", "exec"), namespace)


def test_a_numpy_array_beside_tensors_on_a_device_is_refused():
    """One rule at every boundary (svcca._device.data_device): tensors whose work runs on
    a device are never copied to the host silently because an array came with them."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    Y = X @ rng.standard_normal((4, 3)) + 0.1 * rng.standard_normal((300, 3))
    tx = torch.from_numpy(X)
    ref = svcca.cca(X, Y).score
    assert svcca.cca(tx, Y).score == pytest.approx(ref, abs=1e-12)  # CPU data: host path
    with svcca.on_device("cpu"):
        for call in (
            lambda: svcca.cca(tx, Y),
            lambda: svcca.cka(tx, Y),
            lambda: svcca.pairwise({"x": tx, "y": Y}),
        ):
            with pytest.raises(TypeError, match=r"must be a torch tensor on cpu, as .* is"):
                call()
        assert svcca.cca(tx, torch.from_numpy(Y)).score == pytest.approx(ref, abs=1e-12)
