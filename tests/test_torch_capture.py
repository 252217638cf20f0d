"""svcca.torch: capture activations of named modules (memory, disk, moments, checkpoints)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import svcca  # noqa: E402
import svcca.torch as st  # noqa: E402
from conftest import tol  # noqa: E402

torch.set_num_threads(1)


def float32_tol(ref: np.ndarray, fan_in: int) -> float:
    """Float32 round-off of a forward pass compared with the same pass on the same batches.

    A float32 forward pass with another batch size (or split) rounds differently, so
    every comparison below runs the reference on the very batches the capture ran. What
    may still differ is the kernel's summation order (alignment, vector width): a dot
    product of ``fan_in`` terms is accurate to ``fan_in`` float32 eps of the output's
    size, twice that for two results.
    """
    return tol(np.float32, scale=float(np.max(np.abs(ref))), factor=2 * fan_in)


def forward_batches(fn, batches) -> torch.Tensor:
    """``fn`` applied batch by batch, concatenated: the capture's own batching."""
    with torch.no_grad():
        return torch.cat([fn(b) for b in batches])


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)
    )


def data(n: int = 120, d: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g)


def hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


# ---------------------------------------------------------------------------- memory


def test_capture_matches_manual_forward_and_restores_state():
    net = mlp()
    net.train()
    net[3].eval()  # mixed modes must come back exactly
    x = data()
    batches = [(xb, torch.zeros(len(xb))) for xb in x.split(32)]
    acts = st.capture(net, batches, ["1", "4", "5"])
    assert list(acts) == ["1", "4", "5"]
    h1 = forward_batches(lambda b: torch.relu(net[0](b)), x.split(32))
    h4 = forward_batches(lambda b: torch.tanh(net[3](b)), h1.split(32))  # dropout is off
    out = forward_batches(net[5], h4.split(32))
    for got, want, fan_in in ((acts["1"], h1, 6), (acts["4"], h4, 16), (acts["5"], out, 8)):
        want = want.numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=float32_tol(want, fan_in))
    assert acts["1"].dtype == np.float32
    assert hooks_left(net) == 0
    assert net.training and net[0].training and not net[3].training
    assert all(p.grad is None for p in net.parameters())


def test_capture_runs_without_grad():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((torch.is_grad_enabled(), self.training))
            return x

    net = nn.Sequential(nn.Linear(6, 4), Probe())
    acts = st.capture(net, [data(10)], ["1"], dtype=np.float64)
    assert seen == [(False, False)]
    assert acts["1"].dtype == np.float64
    assert type(acts["1"]) is np.ndarray


def test_hooks_removed_and_mode_restored_when_model_fails():
    net = mlp()
    net.train()
    good, bad = data(8), torch.randn(8, 5)  # wrong width on the second batch
    with pytest.raises(st.CaptureError, match=r"failed on batch 1 \(Tensor\(8, 5\)\).*shape"):
        st.capture(net, [good, bad], ["1"])
    assert hooks_left(net) == 0
    assert net.training


def test_unknown_layer_lists_near_matches():
    net = nn.Sequential()
    net.add_module("encoder", nn.Linear(6, 4))
    net.add_module("fc1", nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"no module named 'fc2'.*Did you mean 'fc1'"):
        st.capture(net, [data(4)], ["fc2"])
    with pytest.raises(ValueError, match="no module named 'decoder'.*named_modules"):
        st.capture(net, [data(4)], ["decoder"])
    assert hooks_left(net) == 0


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"layers": []}, ValueError, "layers is empty"),
        ({"layers": ["0", "0"]}, ValueError, "more than once"),
        ({"layers": [0]}, TypeError, "must be str"),
        ({"layers": ["0"], "conv": "avg"}, ValueError, "conv must be one of"),
        ({"layers": ["0"], "sequence": "all"}, ValueError, "sequence must be one of"),
        ({"layers": ["0"], "time_axis": 2}, ValueError, "time_axis must be 1"),
        ({"layers": ["0"], "dtype": np.int32}, ValueError, "floating dtype"),
        ({"layers": ["0"], "select": {"x": 0}}, ValueError, "not in layers"),
        ({"layers": ["0"], "select": 1.5}, TypeError, "select must be"),
    ],
)
def test_option_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        st.capture(mlp(), [data(4)], **kwargs)


def test_batches_must_be_iterable_of_batches_and_nonempty():
    with pytest.raises(TypeError, match="not one tensor"):
        st.capture(mlp(), data(4), ["0"])
    with pytest.raises(ValueError, match="batches was empty"):
        st.capture(mlp(), [], ["0"])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        st.capture(lambda x: x, [data(4)], ["0"])


def test_module_not_called_in_forward():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(6, 3), nn.Linear(6, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(st.CaptureError, match=r"\['unused'\] did not run"):
        st.capture(Skip(), [data(4)], ["unused"])


def test_dict_batches_and_custom_forward():
    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 3)

        def forward(self, inputs, scale):
            return self.lin(inputs) * scale

    net = Kw()
    x = data(10)
    acts = st.capture(net, [{"inputs": x, "scale": 2.0}], ["", "lin"])
    with torch.no_grad():
        np.testing.assert_allclose(acts[""], (net.lin(x) * 2).numpy(), rtol=1e-6)
    acts2 = st.capture(net, [x], ["lin"], forward=lambda m, b: m(b, 1.0))
    np.testing.assert_allclose(acts2["lin"], acts["lin"], rtol=1e-6)


# ---------------------------------------------------------------------------- outputs


def test_lstm_tuple_output_needs_select_and_sequence():
    torch.manual_seed(0)
    lstm = nn.LSTM(input_size=5, hidden_size=7)  # (T, n, d) layout
    model = nn.Sequential()
    model.add_module("lstm", lstm)
    x = torch.randn(9, 12, 5)  # T=9, n=12
    batches = [x[:, :6], x[:, 6:]]

    def fwd(m, b):
        return m.lstm(b)

    with pytest.raises(st.CaptureError, match=r"returned tuple\(Tensor\(9, 6, 7\).*select="):
        st.capture(model, batches, ["lstm"], forward=fwd, time_axis=0)
    with pytest.raises(st.CaptureError, match="sequence='samples'"):
        st.capture(model, batches, ["lstm"], forward=fwd, select=0, time_axis=0)
    with torch.no_grad():
        out, (h, c) = lstm(x)
    ref = out.transpose(0, 1)  # (n, T, d)
    samples = st.capture(
        model, batches, ["lstm"], forward=fwd, select=0, sequence="samples", time_axis=0
    )["lstm"]
    assert samples.shape == (12 * 9, 7)
    np.testing.assert_allclose(samples, ref.reshape(-1, 7).numpy(), atol=1e-6)
    pooled = st.capture(
        model, batches, ["lstm"], forward=fwd, select=0, sequence="mean", time_axis=0
    )["lstm"]
    np.testing.assert_allclose(pooled, ref.mean(1).numpy(), atol=1e-6)
    last = st.capture(
        model, batches, ["lstm"], forward=fwd, select={"lstm": 0}, sequence="last", time_axis=0
    )["lstm"]
    np.testing.assert_allclose(last, h[-1].numpy(), atol=1e-6)
    # The final hidden state: h has shape (layers, n, d); the batches are (T, n, d), so
    # time_axis=0 also says where the datapoints of the input are.
    h_last = st.capture(
        model, batches, ["lstm"], forward=fwd, select=lambda o: o[1][0][-1], time_axis=0
    )["lstm"]
    np.testing.assert_allclose(h_last, h[-1].numpy(), atol=1e-6)
    h_sel = st.capture(model, batches, ["lstm"], forward=fwd, select=st.rnn_state(), time_axis=0)[
        "lstm"
    ]
    np.testing.assert_allclose(h_sel, h[-1].numpy(), atol=1e-6)
    kept = st.capture(
        model, batches, ["lstm"], forward=fwd, select=0, sequence="keep", time_axis=0
    )["lstm"]
    np.testing.assert_allclose(kept, ref.numpy(), atol=1e-6)
    with pytest.raises(st.CaptureError, match=r"select=\(5,\) does not apply"):
        st.capture(model, batches, ["lstm"], forward=fwd, select=(5,), time_axis=0)
    with pytest.raises(st.CaptureError, match="must pick a tensor"):
        st.capture(model, batches, ["lstm"], forward=fwd, select=1, time_axis=0)


def test_transformer_encoder_layer_sequences():
    torch.manual_seed(0)
    enc = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    model = nn.Sequential(enc)
    x = torch.randn(10, 4, 8)  # (n, T, d)
    acts = st.capture(model, x.split(5), ["0", "0.linear1"], sequence="samples")
    assert acts["0"].shape == (40, 8) and acts["0.linear1"].shape == (40, 16)
    enc.eval()
    ref = forward_batches(enc, x.split(5)).numpy()
    # the longest sum in the layer: the feed-forward block's 16 hidden units
    np.testing.assert_allclose(acts["0"], ref.reshape(40, 8), rtol=0, atol=float32_tol(ref, 16))
    pooled = st.capture(model, x.split(5), ["0"], sequence="mean")["0"]
    np.testing.assert_allclose(pooled, ref.mean(1), rtol=0, atol=float32_tol(ref, 16 + 4))
    # time steps as samples feed a CCA directly; a layer against itself scores 1.
    assert svcca.cca(acts["0"], acts["0"]).score == pytest.approx(1.0, abs=1e-6)


def test_mixed_sample_counts_are_refused():
    enc = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    head = nn.Linear(8, 2)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.head = enc, head

        def forward(self, x):
            return self.head(self.enc(x).mean(1))

    with pytest.raises(st.CaptureError, match="different numbers of samples"):
        st.capture(M(), [torch.randn(3, 4, 8)], ["enc", "head"], sequence="samples")


def test_dict_and_attribute_outputs():
    class Out:
        def __init__(self, h):
            self.hidden = h

    class DictNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 4)

        def forward(self, x):
            h = self.lin(x)
            return {"hidden": h, "logits": h.sum(1)}

    class ObjNet(DictNet):
        def forward(self, x):
            return Out(self.lin(x))

    x = data(10)
    for cls in (DictNet, ObjNet):
        net = cls()
        acts = st.capture(net, [x], [""], select="hidden")
        with torch.no_grad():
            np.testing.assert_allclose(acts[""], net.lin(x).numpy(), atol=1e-6)
    with pytest.raises(st.CaptureError, match=r"select='nope' does not apply"):
        st.capture(DictNet(), [x], [""], select="nope")
    logits = st.capture(DictNet(), [x], [""], select="logits")[""]
    assert logits.shape == (10, 1)


def tiny_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 8 * 8, 10),
    )


def test_conv_outputs_kept_or_reduced():
    net = tiny_cnn()
    x = torch.randn(20, 1, 8, 8)
    ref = forward_batches(net[:4], x.split(7)).numpy()
    atol = float32_tol(ref, 4 * 3 * 3)  # the second convolution sums 4 x 3 x 3 terms
    kept = st.capture(net, x.split(7), ["3"])["3"]
    assert kept.shape == (20, 6, 8, 8)
    np.testing.assert_allclose(kept, ref, rtol=0, atol=atol)
    mean = st.capture(net, x.split(7), ["3"], conv="mean")["3"]
    # the spatial mean adds a sum of 8 x 8 terms in float32
    mean_tol = float32_tol(ref, 4 * 3 * 3 + 8 * 8)
    np.testing.assert_allclose(mean, ref.mean(axis=(2, 3)), rtol=0, atol=mean_tol)
    flat = st.capture(net, x.split(7), ["3"], conv="flatten")["3"]
    np.testing.assert_allclose(flat, ref.reshape(20, -1), rtol=0, atol=atol)


def test_five_d_conv_maps_reduced_and_six_d_refused():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 2, 1))
    x = torch.randn(4, 1, 3, 3, 3)
    ref = forward_batches(net, [x]).numpy()
    kept = st.capture(net, [x], ["0"])["0"]
    np.testing.assert_array_equal(kept, ref)
    mean = st.capture(net, [x], ["0"], conv="mean", dtype=np.float64)["0"]
    np.testing.assert_allclose(mean, ref.mean(axis=(2, 3, 4)), rtol=0, atol=float32_tol(ref, 27))
    six = nn.Sequential(nn.Flatten(0, 0))  # passes a 6-D input through unchanged
    with pytest.raises(st.CaptureError, match="6-D tensor"):
        st.capture(six, [torch.randn(2, 1, 1, 1, 1, 1)], ["0"])


# ---------------------------------------------------------------------------- disk


class Flaky:
    """Batches that raise after ``fail_at`` batches on the first pass (an interruption)."""

    def __init__(self, batches, fail_at=None):
        self.batches, self.fail_at = batches, fail_at

    def __iter__(self):
        for i, b in enumerate(self.batches):
            if self.fail_at is not None and i == self.fail_at:
                raise KeyboardInterrupt("simulated kill")
            yield b


class Counting(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_disk_capture_matches_memory_and_resumes(tmp_path, fmt):
    if fmt == "safetensors":
        pytest.importorskip("safetensors")
    net = Counting(mlp())
    batches = list(data(100).split(16))  # 7 batches
    ref = st.capture(net, batches, ["net.1", "net.5"])
    net.calls = 0
    with pytest.raises(KeyboardInterrupt):
        st.capture_to_disk(net, Flaky(batches, fail_at=4), ["net.1", "net.5"], tmp_path, format=fmt)
    assert net.calls == 4 and hooks_left(net) == 0
    leftovers = [f for _, _, fs in os.walk(tmp_path) for f in fs if f.endswith(".tmp")]
    assert leftovers == []
    assert not (tmp_path / f"net.1.{fmt}").exists()
    with pytest.raises(ValueError, match="unfinished"):
        st.load_capture(tmp_path)
    net.calls = 0
    res = st.capture_to_disk(net, batches, ["net.1", "net.5"], tmp_path, format=fmt)
    assert net.calls == 3  # only the batches that were not finished
    assert res.resumed_from == 4 and res.n_batches == 7
    assert res.shapes == {"net.1": (100, 16), "net.5": (100, 3)}
    for name in ref:
        np.testing.assert_array_equal(res.load(name), ref[name])
    assert not (tmp_path / "parts").exists()
    # A finished capture is returned without running the model again.
    net.calls = 0
    again = st.capture_to_disk(net, batches, ["net.1", "net.5"], tmp_path, format=fmt)
    assert net.calls == 0 and again.resumed_from == 7
    loaded = st.load_capture(tmp_path)
    np.testing.assert_array_equal(loaded.arrays()["net.5"], ref["net.5"])
    with pytest.raises(KeyError, match="No layer 'x'"):
        loaded.load("x")


def test_disk_capture_settings_mismatch_and_overwrite(tmp_path):
    net = mlp()
    batches = list(data(40).split(20))
    st.capture_to_disk(net, batches, ["1"], tmp_path)
    with pytest.raises(ValueError, match=r"other settings \(layers: on disk \['1'\]"):
        st.capture_to_disk(net, batches, ["4"], tmp_path)
    res = st.capture_to_disk(net, batches, ["4"], tmp_path, overwrite=True)
    assert res.layers == ("4",) and not (tmp_path / "1.npy").exists()
    np.testing.assert_allclose(res.load("4"), st.capture(net, batches, ["4"])["4"])
    with pytest.raises(ValueError, match="format must be"):
        st.capture_to_disk(net, batches, ["4"], tmp_path, format="pickle")
    with pytest.raises(ValueError, match="holds no capture"):
        st.load_capture(tmp_path / "nothing")
    with pytest.raises(ValueError, match="batches was empty"):
        st.capture_to_disk(net, [], ["1"], tmp_path / "empty")


def test_disk_capture_root_module_name(tmp_path):
    pytest.importorskip("safetensors")
    net = mlp()
    res = st.capture_to_disk(net, [data(10)], [""], tmp_path, format="safetensors")
    assert os.path.basename(res.files[""]) == "_model_.safetensors"
    assert res.load("").shape == (10, 3)


# ---------------------------------------------------------------------------- moments


def test_capture_moments_equals_moments_of_arrays():
    net = mlp()
    batches = list(data(300).split(64))
    acts = st.capture(net, batches, ["1", "4"], dtype=np.float64)
    stats = st.capture_moments(net, batches, [("1", "4"), "4"])
    ref = svcca.Moments.from_arrays(acts["1"], acts["4"])
    m = stats[("1", "4")]
    assert m.n == 300
    np.testing.assert_allclose(m.sxy, ref.sxy, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(m.sxx, ref.sxx, rtol=1e-9, atol=1e-9)
    assert svcca.cca(m).score == pytest.approx(svcca.cca(acts["1"], acts["4"]).score, abs=1e-9)
    assert stats["4"].q == 0 and stats["4"].n == 300
    assert hooks_left(net) == 0


def test_capture_moments_two_models_and_conv():
    a, b = tiny_cnn(0), tiny_cnn(1)
    x = torch.randn(60, 1, 8, 8)
    stats = st.capture_moments(a, x.split(25), [("1", "3"), ("5", "5")], other=b)
    xa = st.capture(a, x.split(25), ["1"], conv="mean", dtype=np.float64)["1"]
    xb = st.capture(b, x.split(25), ["3"], conv="mean", dtype=np.float64)["3"]
    ref = svcca.Moments.from_arrays(xa, xb)
    np.testing.assert_allclose(stats[("1", "3")].sxy, ref.sxy, rtol=1e-9, atol=1e-9)
    # the same batches as capture_moments: another batch size would round differently
    la = st.capture(a, x.split(25), ["5"], dtype=np.float64)["5"]
    lb = st.capture(b, x.split(25), ["5"], dtype=np.float64)["5"]
    assert svcca.cca(stats[("5", "5")]).score == pytest.approx(svcca.cca(la, lb).score, abs=1e-9)
    assert hooks_left(a) == 0 and hooks_left(b) == 0


def test_capture_moments_errors():
    net = mlp()
    with pytest.raises(ValueError, match="conv='mean'"):
        st.capture_moments(net, [data(4)], [("1", "4")], conv="keep")
    with pytest.raises(ValueError, match="pairs is empty"):
        st.capture_moments(net, [data(4)], [])
    with pytest.raises(TypeError, match="Each entry of pairs"):
        st.capture_moments(net, [data(4)], [("1", "4", "5")])
    with pytest.raises(ValueError, match="batches was empty"):
        st.capture_moments(net, [], [("1", "4")])


# ---------------------------------------------------------------------------- checkpoints


def test_capture_checkpoints(tmp_path):
    paths = []
    for seed in range(3):
        p = tmp_path / f"epoch{seed}.pt"
        torch.save(mlp(seed).state_dict(), p)
        paths.append(str(p))
    torch.save({"model": mlp(7).state_dict(), "epoch": 7}, tmp_path / "wrapped.pt")
    net = mlp(42)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batches = list(data(50).split(25))
    series = st.capture_checkpoints(net, paths, batches, ["1", "5"])
    assert list(series) == ["epoch0", "epoch1", "epoch2"]
    for seed, label in enumerate(series):
        direct = st.capture(mlp(seed), batches, ["1", "5"])
        np.testing.assert_allclose(series[label]["5"], direct["5"], atol=1e-6)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    wrapped = st.capture_checkpoints(
        net, {"final": tmp_path / "wrapped.pt"}, batches, ["5"], key="model"
    )
    np.testing.assert_allclose(
        wrapped["final"]["5"], st.capture(mlp(7), batches, ["5"])["5"], atol=1e-6
    )


def test_checkpoint_errors(tmp_path):
    net = mlp()
    batches = [data(10)]
    with pytest.raises(TypeError, match="one-shot iterator"):
        st.capture_checkpoints(net, [], iter(batches), ["1"])
    with pytest.raises(ValueError, match="does not exist"):
        st.capture_checkpoints(net, [tmp_path / "missing.pt"], batches, ["1"])
    torch.save(nn.Linear(2, 2), tmp_path / "pickled.pt")  # a whole pickled module
    with pytest.raises(ValueError, match="weights_only=True"):
        st.load_checkpoint(net, tmp_path / "pickled.pt")
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not fit Sequential"):
        st.load_checkpoint(net, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no entry 'model'"):
        st.load_checkpoint(net, tmp_path / "other.pt", key="model")
    with pytest.raises(TypeError, match="must hold a state dict"):
        st.load_checkpoint(net, [1, 2])
    with pytest.raises(TypeError, match="Wrap it in a list"):
        st.capture_checkpoints(net, str(tmp_path / "other.pt"), batches, ["1"])
    with pytest.raises(ValueError, match="checkpoints is empty"):
        st.capture_checkpoints(net, [], batches, ["1"])


def test_progress_bar_goes_to_stderr(capsys):
    pytest.importorskip("tqdm")
    st.capture(mlp(), list(data(20).split(5)), ["1"], progress=True)
    err = capsys.readouterr().err
    assert "capture" in err and "/4" in err


def test_import_svcca_does_not_import_torch():
    code = "import sys, svcca; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_dataloader_and_conv_maps_feed_dft_cca():
    from torch.utils.data import DataLoader, TensorDataset

    from svcca.conv import fourier_cca

    net = tiny_cnn()
    x = torch.randn(64, 1, 8, 8)
    loader = DataLoader(TensorDataset(x, torch.zeros(64)), batch_size=16, shuffle=False)
    acts = st.capture(net, loader, ["1", "3"], dtype=np.float64)
    assert acts["1"].shape == (64, 4, 8, 8) and acts["3"].shape == (64, 6, 8, 8)
    res = fourier_cca(acts["1"], acts["3"], layout="nchw")
    nhwc = fourier_cca(
        acts["1"].transpose(0, 2, 3, 1), acts["3"].transpose(0, 2, 3, 1), layout="nhwc"
    )
    assert res.score == pytest.approx(nhwc.score, abs=1e-10)
    assert 0.0 < res.score <= 1.0


def test_capture_stream_feeds_minibatch_cka():
    net = mlp()
    batches = list(data(256).split(64))
    acc = svcca.MinibatchCKA()

    def feed(i, arrays):
        layers = [arrays["1"], arrays["4"], arrays["5"]]
        acc.update(layers, layers)

    seen = st.capture_stream(net, batches, ["1", "4", "5"], feed, dtype=np.float64)
    assert seen == 4 and acc.n_batches == 4
    acts = st.capture(net, batches, ["1", "4", "5"], dtype=np.float64)
    ref = svcca.MinibatchCKA.from_batches(
        ([a[s : s + 64] for a in acts.values()], [a[s : s + 64] for a in acts.values()])
        for s in range(0, 256, 64)
    )
    np.testing.assert_allclose(acc.scores(), ref.scores(), atol=1e-12)
    assert acc.scores().shape == (3, 3)
    assert hooks_left(net) == 0


@pytest.mark.parametrize(
    "name", ["svcca.torch._capture", "svcca.torch._select", "svcca.torch._stream"]
)
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------- one row per datapoint


def test_datapoints_read_from_the_batch_or_given():
    x = data(10)
    assert st.batch_datapoints(x) == 10
    assert st.batch_datapoints((x, torch.zeros(10))) == 10
    assert st.batch_datapoints({"scale": 2.0, "input_ids": torch.zeros(4, 7)}) == 4
    assert st.batch_datapoints({"a": 1.0, "b": torch.zeros(3, 2)}) == 3
    assert st.batch_datapoints(torch.zeros(7, 5, 2), time_axis=0) == 5
    assert st.batch_datapoints([1.0, 2.0]) is None
    net = mlp()
    with pytest.raises(
        st.CaptureError, match=r"Cannot tell how many datapoints batch 0.*datapoints="
    ):
        st.capture(net, [[1.0]], ["0"], forward=lambda m, b: m(x))
    got = st.capture(net, [[1.0]], ["0"], forward=lambda m, b: m(x), datapoints=lambda b: 10)
    assert got["0"].shape == (10, 16)
    with pytest.raises(st.CaptureError, match=r"datapoints\(batch\) must return .* got 0"):
        st.capture(net, [x], ["0"], datapoints=lambda b: 0)
    with pytest.raises(TypeError, match="datapoints must be a callable"):
        st.capture(net, [x], ["0"], datapoints=10)


def test_outputs_without_a_row_per_datapoint_are_refused():
    class Odd(nn.Module):
        def __init__(self, out):
            super().__init__()
            self.out = out

        def forward(self, x):
            return self.out(x)

    x = data(6)
    with pytest.raises(st.CaptureError, match=r"'' gave Tensor\(\) .*a scalar has no row"):
        st.capture(Odd(lambda x: x.sum()), [x], [""])
    with pytest.raises(st.CaptureError, match=r"gave Tensor\(6\) .*holds 6|gave Tensor\(1, 6\)"):
        st.capture(Odd(lambda x: x.sum(0, keepdim=True)), [x], [""])
    with pytest.raises(st.CaptureError, match=r"first axis has 2.*channels-first"):
        st.capture(Odd(lambda x: torch.zeros(2, 1, 3, 3)), [x], [""], conv_layers=[""])
    with pytest.raises(st.CaptureError, match=r"axis 0 has 4"):
        st.capture(Odd(lambda x: torch.zeros(4, 5, 3)), [x], [""], sequence="mean")
    one = st.capture(Odd(lambda x: x.sum(1)), [x], [""])[""]
    assert one.shape == (6, 1)


def test_select_on_a_plain_tensor_is_refused():
    with pytest.raises(st.CaptureError, match=r"plain tensor Tensor\(4, 16\), so select=0"):
        st.capture(mlp(), [data(4)], ["0"], select=0)
    # a callable may reshape a tensor
    got = st.capture(mlp(), [data(4)], ["0"], select=lambda t: t[:, :3])["0"]
    assert got.shape == (4, 3)


def seq_net():
    torch.manual_seed(0)
    enc = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    return nn.Sequential(enc)


def test_mask_options_and_errors():
    net = seq_net()
    x = torch.randn(4, 5, 8)
    m = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [0, 1, 1, 1, 0]])
    net.eval()
    with torch.no_grad():
        ref = net(x).numpy()
    w = m.numpy().astype(bool)
    want = {
        "mean": (ref * w[:, :, None]).sum(1) / w.sum(1, keepdims=True),
        "last": ref[np.arange(4), [2, 4, 0, 3]],
        "first": ref[np.arange(4), [0, 0, 0, 1]],
        "samples": ref[w],
    }
    fwd = {"forward": lambda mod, b: mod(b["x"])}
    for how, expected in want.items():
        got = st.capture(net, [{"x": x, "attention_mask": m}], ["0"], sequence=how, **fwd)["0"]
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol(np.float32, factor=20))
        given = st.capture(net, [(x, m)], ["0"], sequence=how, mask=lambda b: b[1].bool())["0"]
        np.testing.assert_array_equal(given, got)
    off = st.capture(net, [{"x": x, "attention_mask": m}], ["0"], sequence="mean", mask=None, **fwd)
    np.testing.assert_allclose(off["0"], ref.mean(1), rtol=0, atol=tol(np.float32, factor=20))
    bad = [
        (torch.ones(4, 5, 1), r"must be \(n, T\) = \(4, T\).*got shape \(4, 5, 1\)"),
        (torch.full((4, 5), 2), "only 0/1"),
        (torch.zeros(4, 5), "floating-point mask .* > 0 for a 0/1 mask, == 0 for an additive"),
        (torch.tensor([[1, 1, 0, 0, 0]] * 3 + [[0] * 5]), r"no real token for datapoints \[3\]"),
        (torch.ones(4, 3, dtype=torch.bool), r"covers 3 positions.*gave 5 time steps"),
    ]
    for mask, match in bad:
        with pytest.raises(st.CaptureError, match=match):
            st.capture(net, [(x, mask)], ["0"], sequence="mean", mask=lambda b: b[1])
    with pytest.raises(TypeError, match="mask must be 'auto'"):
        st.capture(net, [x], ["0"], sequence="mean", mask="attention_mask")


def test_calls_option_and_a_module_run_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 6)

        def forward(self, x):
            return self.lin(torch.tanh(self.lin(x)))

    net = Twice()
    x = data(8)
    with pytest.raises(st.CaptureError, match=r"'lin' ran 2 times .*\['lin#0', 'lin#1'\].*calls="):
        st.capture(net, [x], ["lin"])
    each = st.capture(net, [x], ["lin"], calls="each")
    with torch.no_grad():
        first = net.lin(x)
        second = net.lin(torch.tanh(first))
    np.testing.assert_array_equal(each["lin#0"], first.numpy())
    np.testing.assert_array_equal(each["lin#1"], second.numpy())
    named = st.capture(net, [x], ["lin#1", ""])
    np.testing.assert_array_equal(named["lin#1"], second.numpy())
    stats = st.capture_moments(net, [x], [("lin#0", "lin#1")], calls="each")
    assert stats[("lin#0", "lin#1")].n == 8
    with pytest.raises(st.CaptureError, match=r"pairs name 'lin'.*'lin#0'"):
        st.capture_moments(net, [x], [("lin", "")], calls="each")
    with pytest.raises(ValueError, match="calls must be one of 'raise', 'each'"):
        st.capture(net, [x], ["lin"], calls="all")


def test_runs_that_cannot_be_trusted_warn():
    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(data(32), torch.zeros(32))
    with pytest.warns(st.CaptureWarning, match="DataLoader that shuffles"):
        st.capture(mlp(), DataLoader(ds, batch_size=8, shuffle=True), ["1"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st.capture(mlp(), DataLoader(ds, batch_size=8), ["1"])
        # moments of one pass do not depend on the order: no warning, the same statistic
        net = mlp()
        shuffled = st.capture_moments(net, DataLoader(ds, batch_size=8, shuffle=True), ["1"])
        ordered = st.capture_moments(net, DataLoader(ds, batch_size=8), ["1"])
        # Other batch compositions may round each float32 activation differently, by up
        # to 6 eps |a| (a dot product of fan_in 6 terms), and so its deviation from the
        # mean by 2 x 6 eps max|a|; sxx sums 32 centred products of two deviations (each
        # at most 2 max|a|): 2 x 12 x 2 = 48 eps max|a|^2 per term, twice for two runs.
        acts = st.capture(net, DataLoader(ds, batch_size=8), ["1"], dtype=np.float64)["1"]
        scale = 32 * float(np.abs(acts).max()) ** 2
        atol = tol(np.float32, scale=scale, factor=96)
        np.testing.assert_allclose(shuffled["1"].sxx, ordered["1"].sxx, rtol=0, atol=atol)
    net = mlp()

    def train_forward(m, b):
        m.train()
        return m(b)

    with pytest.warns(st.CaptureWarning, match=r"left 7 module\(s\) of Sequential in train mode"):
        st.capture(net, [data(8)], ["1"], forward=train_forward)
    assert net.training  # the caller's mode is restored as always


def test_capture_options_forward_as_keywords():
    opts = st._capture.CaptureOptions.make(["1"], sequence="mean", mask=None, calls="each")
    again = st._capture.CaptureOptions.make(["1"], **opts.kwargs())
    assert again == opts
    with pytest.raises(ValueError, match="state must be one of"):
        st.rnn_state(state="x")


def test_summary_lists_every_module():
    net = mlp()
    s = st.summary(net, data(5))
    assert [m.name for m in s.modules] == ["", "0", "1", "2", "3", "4", "5"]
    assert all(m.capture == "ready" and m.calls == 1 for m in s.modules)
    assert s["3"].type == "Linear" and s["3"].output == "Tensor(5, 8)"
    with pytest.raises(st.CaptureError, match="failed on the batch"):
        st.summary(net, torch.randn(5, 2))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        st.summary(lambda x: x, data(5))
    assert hooks_left(net) == 0


def test_batches_must_record_the_same_layers_and_shapes():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 6)

        def forward(self, x):
            for _ in range(len(x) // 4):  # 4 rows: one call; 8 rows: two calls
                x = self.lin(x)
            return x

    batches = [data(4), data(8)]
    with pytest.raises(st.CaptureError, match=r"Batch 1 recorded \['lin#0', 'lin#1'\].*\['lin'\]"):
        st.capture(Loop(), batches, ["lin"], calls="each")
    seq = nn.Sequential(nn.Identity())
    with pytest.raises(
        st.CaptureError,
        match=r"Layer '0' gave \(5, 4\) per datapoint on batch 1, but \(3, 4\) on the first "
        r"batch.*sequences of 5 and 3 time steps.*pad the inputs to one length, or reduce "
        r"each sequence to rows with sequence='samples'",
    ):
        st.capture(seq, [torch.randn(2, 3, 4), torch.randn(2, 5, 4)], ["0"], sequence="keep")


def test_rnn_state_needs_batched_inputs():
    net = nn.Sequential()
    net.add_module("rnn", nn.GRU(3, 4))
    with pytest.raises(st.CaptureError, match=r"state of a batched GRU.*got shape \(1, 4\)"):
        st.capture(
            net,
            [torch.randn(5, 3)],
            ["rnn"],
            select=st.rnn_state(),
            forward=lambda m, b: m.rnn(b),
            datapoints=lambda b: 1,
        )


def test_capture_moments_float32_is_moments_of_float32_arrays():
    net = mlp()
    batches = list(data(300).split(64))
    acts = st.capture(net, batches, ["1", "4"])  # float32, as the float32 path records
    m = st.capture_moments(net, batches, [("1", "4")], precision="float32")[("1", "4")]
    ref = svcca.Moments.from_batches(
        zip(
            np.split(acts["1"], [64, 128, 192, 256]),
            np.split(acts["4"], [64, 128, 192, 256]),
            strict=True,
        ),
        precision="float32",
    )
    assert m.precision == "float32" and m.n == 300
    # Same float32 batches, same float32 products, float64 sums: to float64 round-off.
    scale = float(np.abs(ref.sxx).max())
    np.testing.assert_allclose(
        m.sxx, ref.sxx, rtol=0, atol=tol(np.float64, scale=scale, factor=300)
    )
    np.testing.assert_allclose(
        m.sxy, ref.sxy, rtol=0, atol=tol(np.float64, scale=scale, factor=300)
    )
    with pytest.raises(ValueError, match="precision must be one of"):
        st.capture_moments(net, batches, [("1", "4")], precision="float16")
