"""svcca.torch on real models: RNNs, conv nets, nn.Transformer and HuggingFace models.

Each test compares a capture against the truth computed directly from the model's own
outputs on the same batches (another batch size rounds float32 differently). The
HuggingFace models are tiny randomly initialised configs (hidden 32, 2 layers, vocab
100; no download), built once per module; their tests skip without ``transformers``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import svcca  # noqa: E402
import svcca.torch as st  # noqa: E402
from conftest import tol  # noqa: E402

torch.set_num_threads(1)


def f32_tol(ref: np.ndarray, terms: int = 1) -> float:
    """Round-off of a float32 value reduced over ``terms`` values (sum in float64, cast)."""
    return tol(np.float32, scale=float(np.max(np.abs(ref))), factor=2 * terms)


# ---------------------------------------------------------------------------- RNNs


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_final_state_and_sequence(cls, batch_first, bidirectional):
    torch.manual_seed(0)
    rnn = cls(5, 8, num_layers=3, batch_first=batch_first, bidirectional=bidirectional)
    net = nn.Sequential()
    net.add_module("rnn", rnn)
    x = torch.randn(30, 7, 5)  # (n, T, d)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()  # (T, n, d)
    batches = list(x.split(10, dim=0 if batch_first else 1))
    axis = 1 if batch_first else 0
    opts = {"forward": lambda m, b: m.rnn(b), "time_axis": axis}
    outs, hs = [], []
    with torch.no_grad():
        for b in batches:
            out, state = rnn(b)
            outs.append(out if batch_first else out.transpose(0, 1))
            hs.append(state[0] if cls is nn.LSTM else state)
    out = torch.cat(outs).numpy()  # (n, T, D * 8)
    h = torch.cat(hs, dim=1)  # (L * D, n, 8)
    dirs = 2 if bidirectional else 1
    last = st.capture(net, batches, ["rnn"], select=st.rnn_state(), **opts)["rnn"]
    want = h[-dirs:].permute(1, 0, 2).reshape(30, -1).numpy()
    assert last.shape == (30, dirs * 8)
    np.testing.assert_array_equal(last, want)
    every = st.capture(net, batches, ["rnn"], select=st.rnn_state(layers="all"), **opts)["rnn"]
    np.testing.assert_array_equal(every, h.permute(1, 0, 2).reshape(30, -1).numpy())
    seq = st.capture(net, batches, ["rnn"], select=0, sequence="last", **opts)["rnn"]
    np.testing.assert_array_equal(seq, out[:, -1])
    if not bidirectional:  # the output's last step is the last layer's final h
        np.testing.assert_array_equal(seq, last)
    # The examples: h picked by a path is (layers, n, d), not per datapoint.
    path = (1, 0) if cls is nn.LSTM else 1
    with pytest.raises(st.CaptureError, match=r"final state of .*rnn_state\(\)"):
        st.capture(net, batches, ["rnn"], select=path, sequence="last", **opts)
    if cls is nn.LSTM:
        cell = st.capture(net, batches, ["rnn"], select=st.rnn_state(state="c"), **opts)["rnn"]
        assert cell.shape == (30, dirs * 8)
    else:
        with pytest.raises(st.CaptureError, match=r"state='c'\) needs an nn.LSTM"):
            st.capture(net, batches, ["rnn"], select=st.rnn_state(state="c"), **opts)


def test_rnn_wrong_time_axis_is_an_error_that_names_the_fix():
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("rnn", nn.GRU(5, 8))  # (T, n, d)
    x = torch.randn(7, 12, 5)
    # Read as (n, T, d), the batch gives n = 7 and so does the output: only the module's
    # own batch_first tells that this would average over datapoints.
    with pytest.raises(st.CaptureError, match=r"batch_first=False.*Pass time_axis=0"):
        st.capture(net, [x], ["rnn"], select=0, sequence="mean", forward=lambda m, b: m.rnn(b))

    # A (T, n, d) output of a module that does not say its layout: the batch's n (read
    # time-major from the input) is on axis 1 of the output, and the error says so.
    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = net.rnn

        def forward(self, x):
            return self.rnn(x)[0]

    with pytest.raises(st.CaptureError, match=r"holds 12 datapoints.*pass time_axis=0"):
        st.capture(Wrap(), [x], [""], sequence="mean", datapoints=lambda b: 12)
    with pytest.raises(st.CaptureError, match="applies to nn.RNN, nn.LSTM or nn.GRU|picks the"):
        st.capture(
            nn.Sequential(nn.Linear(5, 2)), [torch.randn(3, 5)], ["0"], select=st.rnn_state()
        )
    with pytest.raises(st.CaptureError, match="select=svcca.torch.rnn_state\\(\\) for the final"):
        st.capture(net, [x], ["rnn"], forward=lambda m, b: m.rnn(b), time_axis=0)


class TimeMajorNet(nn.Module):
    """A time-major LSTM (PyTorch's default) under a head: the head's output is (T, n, d)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 5)
        self.head = nn.Linear(5, 4)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_a_time_major_model_needs_time_axis_0_for_every_module():
    torch.manual_seed(0)
    net = TimeMajorNet().eval()
    x = torch.randn(7, 10, 3)  # (T, n, features)
    # Read batch-major, the input gives n = 7 and so does the head's output (7, 10, 4): the
    # rows would be time steps. The LSTM inside says its layout, so the capture refuses.
    with pytest.raises(st.CaptureError, match=r"'rnn' \(LSTM\).*batch_first=False.*time_axis=0"):
        st.capture(net, [x], ["head"], sequence="mean")
    with pytest.raises(st.CaptureError, match="or datapoints=lambda batch"):
        st.capture(net, [x], ["head"], sequence="last")
    with torch.no_grad():
        out = net(x).double()  # (T, n, 4)
    with pytest.raises(st.CaptureError, match=r"'rnn' \(LSTM\).*time_axis=0"):
        st.summary(net, x)
    s = st.summary(net, x, time_axis=0)
    assert s.datapoints == 10 and s["head"].capture.startswith("time_axis=0, sequence=")
    got = st.capture(net, [x], ["head"], sequence="mean", time_axis=0, dtype=np.float64)["head"]
    assert got.shape == (10, 4)
    np.testing.assert_allclose(got, out.mean(0).numpy(), rtol=0, atol=f32_tol(out.numpy(), 5 + 7))

    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 1).eval()
    xe = torch.randn(6, 10, 8)  # (T, n, d)
    layers = ["layers.0.norm2", "layers.0.linear2"]
    with pytest.raises(st.CaptureError, match=r"'layers.0.self_attn' \(MultiheadAttention\)"):
        st.capture(enc, [xe], layers, sequence="mean")
    with torch.no_grad():
        ref = enc(xe).double()  # the last sublayer, norm2, is the encoder's output
    acts = st.capture(enc, [xe], layers, sequence="mean", time_axis=0, dtype=np.float64)
    assert acts["layers.0.linear2"].shape == (10, 8)
    np.testing.assert_allclose(
        acts["layers.0.norm2"], ref.mean(0).numpy(), rtol=0, atol=f32_tol(ref.numpy(), 16 + 6)
    )


def test_packed_sequence_batches_and_outputs():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, batch_first=True, bidirectional=True, num_layers=2)
    net = nn.Sequential()
    net.add_module("rnn", lstm)
    net.eval()
    x = torch.randn(6, 7, 3)
    lens = torch.tensor([7, 3, 5, 2, 7, 1])
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    assert st.batch_datapoints(packed) is None  # its .data is (25, 3)
    assert st.batch_datapoints((packed, torch.zeros(6))) is None
    with pytest.raises(
        st.CaptureError,
        match=r"Batch 0 is a torch.nn.utils.rnn.PackedSequence.*only its \.data.*cannot be read"
        r".*forward=lambda m, b: m\(b\).*datapoints=.*rnn_state\(\)",
    ):
        st.capture(net, [packed], ["rnn"], select=st.rnn_state())
    with pytest.raises(st.CaptureError, match=r"a tuple that starts with a torch.nn.utils.rnn"):
        st.capture(net, [(packed, torch.zeros(6))], ["rnn"], forward=lambda m, b: m(b[0]))
    with pytest.raises(st.CaptureError, match="PackedSequence"):
        st.summary(net, packed)
    kw = {"forward": lambda m, b: m(b), "datapoints": lambda b: int(b.batch_sizes[0])}
    with torch.no_grad():
        out, (h, _) = lstm(packed)
    state = st.capture(net, [packed], ["rnn"], select=st.rnn_state(), **kw)["rnn"]
    np.testing.assert_array_equal(state, torch.cat([h[-2], h[-1]], 1).numpy())
    with pytest.raises(
        st.CaptureError, match=r"through select=0, a PackedSequence.*pad_packed_sequence\(out\[0\]"
    ):
        st.capture(net, [packed], ["rnn"], select=0, sequence="mean", **kw)
    padded = pad_packed_sequence(out, batch_first=True)[0].double()  # (6, 7, 10)
    real = torch.arange(7)[None] < lens[:, None]
    mean = st.capture(
        net,
        [packed],
        ["rnn"],
        select=lambda o: pad_packed_sequence(o[0], batch_first=True)[0],
        sequence="mean",
        mask=lambda b: real,
        dtype=np.float64,
        **kw,
    )["rnn"]
    ref = torch.stack([padded[i, : lens[i]].mean(0) for i in range(6)]).numpy()
    np.testing.assert_allclose(mean, ref, rtol=0, atol=tol(scale=7 * abs(ref).max()))

    class Packs(nn.Module):  # a module whose output is a PackedSequence
        def forward(self, b):
            return b

    with pytest.raises(st.CaptureError, match=r"'' returned a PackedSequence.*Unpack it"):
        st.capture(Packs(), [packed], [""], **kw)


# ---------------------------------------------------------------------------- conv nets


class Residual1d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv1d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv(x))


def conv1d_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(3, 6, 5),  # 0: (n, 6, 12)
        nn.ReLU(),  # 1
        nn.BatchNorm1d(6),  # 2
        Residual1d(6),  # 3: a custom block, named in conv_layers
        nn.Dropout(0.2),  # 4
        nn.AdaptiveAvgPool1d(1),  # 5: (n, 6, 1)
        nn.Flatten(),
        nn.Linear(6, 2),
    )


def test_conv1d_maps_are_reduced_over_length_not_channels():
    net = conv1d_net()
    x = torch.randn(40, 3, 16)
    batches = list(x.split(16))
    with torch.no_grad():
        ref = {k: forward_each(net[: k + 1], batches) for k in (0, 1, 2, 3, 4, 5)}
    layers = ["0", "1", "2", "3", "4", "5"]
    # sequence= is for sequences; it must not touch conv maps (the issue: "mean" averaged
    # a Conv1d output over channels).
    got = st.capture(
        net, batches, layers, conv="mean", sequence="mean", conv_layers=["3"], dtype=np.float64
    )
    for k in (0, 1, 2, 3, 4, 5):
        assert got[str(k)].shape == (40, 6)
        want = ref[k].mean(axis=2)
        np.testing.assert_allclose(got[str(k)], want, rtol=0, atol=f32_tol(want, 16))
    flat = st.capture(net, batches, ["1"], conv="flatten")["1"]
    np.testing.assert_array_equal(flat, ref[1].reshape(40, -1))
    kept = st.capture(net, batches, ["0"])["0"]
    np.testing.assert_array_equal(kept, ref[0])
    # Without conv_layers the custom block's 3-D output reads as a sequence: the error
    # says how to mark it.
    with pytest.raises(st.CaptureError, match=r"conv_layers=\[\.\.\.\]"):
        st.capture(net, batches, ["3"], conv="mean")
    with pytest.raises(ValueError, match="conv_layers names \\['9'\\]"):
        st.capture(net, batches, ["3"], conv_layers=["9"])


def forward_each(module, batches) -> np.ndarray:
    module.eval()
    with torch.no_grad():
        return torch.cat([module(b) for b in batches]).numpy()


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.skip(x))


def test_resnet_style_cnn_blocks():
    torch.manual_seed(0)
    net = nn.Sequential(Block(1, 4, 1), Block(4, 8, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(24, 1, 8, 8)
    batches = list(x.split(8))
    b0 = forward_each(net[:1], batches)
    b1 = forward_each(net[:2], batches)
    got = st.capture(net, batches, ["0", "1", "3"], conv="mean", dtype=np.float64)
    np.testing.assert_allclose(got["0"], b0.mean(axis=(2, 3)), atol=f32_tol(b0, 64), rtol=0)
    np.testing.assert_allclose(got["1"], b1.mean(axis=(2, 3)), atol=f32_tol(b1, 16), rtol=0)
    np.testing.assert_allclose(got["3"], got["1"], atol=f32_tol(b1, 16), rtol=0)
    kept = st.capture(net, batches, ["1"], dtype=np.float64)["1"]
    assert kept.shape == (24, 8, 4, 4)  # channels-first: fourier_cca(..., layout="nchw")
    res = svcca.conv.fourier_cca(kept, kept, layout="nchw")
    assert res.score == pytest.approx(1.0, abs=1e-6)


class NextBlock(nn.Module):
    """A ConvNeXt block: its Linear layers and LayerNorm run channels-last, (n, h, w, c)."""

    def __init__(self, c: int):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pwconv1 = nn.Linear(c, 2 * c)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(2 * c, c)

    def forward(self, x):
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(self.act(self.pwconv1(self.norm(h))))
        return x + h.permute(0, 3, 1, 2)


def test_channels_last_maps_are_not_read_as_nchw():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), NextBlock(4), nn.ReLU()).eval()
    x = torch.randn(6, 3, 5, 7)
    for layer in ["1.norm", "1.pwconv1", "1.act", "1"]:
        with pytest.raises(
            st.CaptureError,
            match=rf"'{re.escape(layer)}' .*not a conv-type module.*channels-last \(n, h, w, c\)"
            rf".*conv_layers=\['{re.escape(layer)}'\].*t.permute\(0, 3, 1, 2\)",
        ):
            st.capture(net, [x], [layer], conv="mean")
    out: dict[str, torch.Tensor] = {}
    hooks = [
        net.get_submodule(name).register_forward_hook(
            lambda m, a, o, name=name: out.__setitem__(name, o.double())
        )
        for name in ["1.pwconv1", "1", "2"]
    ]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    pw = st.capture(
        net,
        [x],
        ["1.pwconv1"],
        conv="mean",
        select=lambda t: t.permute(0, 3, 1, 2),
        dtype=np.float64,
    )["1.pwconv1"]
    assert pw.shape == (6, 8)  # the 8 channels, each averaged over the 5 x 7 positions
    ref = out["1.pwconv1"].numpy()
    np.testing.assert_allclose(
        pw, ref.mean(axis=(1, 2)), rtol=0, atol=tol(scale=35 * abs(ref).max())
    )
    # the block's output is channels-first again, as the caller can say; the ReLU after it
    # follows the block
    got = st.capture(net, [x], ["1", "2"], conv="mean", conv_layers=["1"], dtype=np.float64)
    for name in ["1", "2"]:
        ref = out[name].numpy()
        np.testing.assert_allclose(
            got[name], ref.mean(axis=(2, 3)), rtol=0, atol=tol(scale=35 * abs(ref).max())
        )

    class Both(nn.Module):  # a block of conv-type modules: what it returns is channels-first
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return {"map": self.conv(x), "x": x}

    two = Both().eval()
    both = st.capture(two, [x], [""], select="map", conv="mean", dtype=np.float64)[""]
    with torch.no_grad():
        want = two.conv(x).double().mean((2, 3)).numpy()
    np.testing.assert_allclose(both, want, rtol=0, atol=tol(np.float32, scale=abs(want).max()))
    s = st.summary(net, x)
    assert s["0"].capture.startswith("conv=")
    assert s["1.dwconv"].capture.startswith("conv=")
    for name in ["1.norm", "1.pwconv1", "1.act", "1", "2"]:
        assert s[name].capture.startswith("layout unknown (maybe channels-last)"), name
    assert "permute(0, 3, 1, 2)" in s["1.pwconv1"].capture


@pytest.mark.slow  # importing ConvNeXt's modeling code takes seconds
def test_hf_convnext_channels_last_outputs(tf):
    torch.manual_seed(0)
    cfg = tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, image_size=32)
    model = tf.ConvNextModel(cfg).eval()
    px = torch.randn(4, 3, 32, 32)
    pw = next(n for n, _ in model.named_modules() if n.endswith("pwconv1"))
    with pytest.raises(st.CaptureError, match="channels-last"):
        st.capture(model, [px], [pw], conv="mean")
    assert not st.summary(model, px)[pw].capture.startswith("conv=")
    conv = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    assert st.capture(model, [px], [conv], conv="mean")[conv].shape[0] == 4


# ---------------------------------------------------------------------------- nn.Transformer


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
def test_nn_transformer_time_major_with_padding_mask():
    torch.manual_seed(0)
    model = nn.Transformer(
        d_model=16, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=32
    )  # (T, n, d) by default
    n, S, T = 12, 6, 4
    src, tgt = torch.randn(S, n, 16), torch.randn(T, n, 16)
    lengths = torch.tensor([6, 3, 5, 6, 2, 4] * 2)
    pad = torch.arange(S)[None, :] >= lengths[:, None]  # (n, S), True = padding
    batches = [(src[:, s : s + 6], tgt[:, s : s + 6], pad[s : s + 6]) for s in (0, 6)]

    def fwd(m, b):
        return m(b[0], b[1], src_key_padding_mask=b[2], memory_key_padding_mask=b[2])

    got = st.capture(
        model,
        batches,
        ["encoder.layers.1", "encoder"],
        forward=fwd,
        time_axis=0,
        sequence="mean",
        mask=lambda b: ~b[2],
        dtype=np.float64,
    )
    model.eval()
    with torch.no_grad():
        enc = [model.encoder(b[0], src_key_padding_mask=b[2]).transpose(0, 1) for b in batches]
    real = (~pad).numpy()
    enc_np = torch.cat(enc).numpy()
    want = (enc_np * real[:, :, None]).sum(1) / real.sum(1, keepdims=True)
    np.testing.assert_allclose(got["encoder"], want, rtol=0, atol=f32_tol(want, S))
    assert got["encoder.layers.1"].shape == (n, 16)
    last = st.capture(
        model, batches, ["encoder"], forward=fwd, time_axis=0, sequence="last", mask=lambda b: ~b[2]
    )["encoder"]
    np.testing.assert_array_equal(last, enc_np[np.arange(n), lengths.numpy() - 1])
    # the decoder's T=4 positions do not fit the encoder's (n, 6) mask
    with pytest.raises(st.CaptureError, match=r"covers 6 positions.*gave 4 time steps"):
        st.capture(
            model,
            batches,
            ["decoder"],
            forward=fwd,
            time_axis=0,
            sequence="mean",
            mask=lambda b: ~b[2],
        )
    dec = st.capture(model, batches, ["decoder"], forward=fwd, time_axis=0, sequence="mean")
    with torch.no_grad():
        ref = torch.cat([fwd(model, b).transpose(0, 1) for b in batches]).numpy()
    np.testing.assert_allclose(dec["decoder"], ref.mean(1), rtol=0, atol=f32_tol(ref, T))


# ---------------------------------------------------------------------------- HuggingFace


@pytest.fixture(scope="module")
def tf():
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    return transformers


@pytest.fixture(scope="module")
def gpt2(tf):
    torch.manual_seed(0)
    cfg = tf.GPT2Config(
        n_embd=32,
        n_layer=2,
        n_head=2,
        vocab_size=100,
        n_positions=16,
        bos_token_id=0,
        eos_token_id=0,
    )
    return tf.GPT2Model(cfg).eval()


@pytest.fixture(scope="module")
def bert(tf):
    torch.manual_seed(0)
    cfg = tf.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=16,
    )
    return tf.BertModel(cfg).eval()


@pytest.fixture(scope="module")
def vit(tf):
    torch.manual_seed(0)
    cfg = tf.ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=8,
        patch_size=4,
        num_channels=3,
    )
    return tf.ViTModel(cfg).eval()


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    w = mask.double()[:, :, None]
    return ((h.double() * w).sum(1) / w.sum(1)).numpy()


class EncDec(nn.Module):
    """An encoder-decoder with HuggingFace keyword names, small enough for the fast suite."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Embedding(20, 4)
        self.dec = nn.Embedding(20, 4)

    def forward(self, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask=None):
        memory = self.enc(input_ids) * attention_mask[:, :, None]
        return self.dec(decoder_input_ids) + memory.sum(1, keepdim=True)


def test_encoder_decoder_mask_auto_is_refused():
    torch.manual_seed(0)
    model = EncDec().eval()
    enc_mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    b = {
        "input_ids": torch.randint(0, 20, (2, 3)),
        "attention_mask": enc_mask,
        "decoder_input_ids": torch.randint(0, 20, (2, 3)),
    }
    with pytest.raises(st.CaptureError, match=r"decoder inputs \(decoder_input_ids\).*separate"):
        st.capture(model, [b], ["dec"], sequence="mean")
    with torch.no_grad():
        dec = model.dec(b["decoder_input_ids"]).double()
        enc = model.enc(b["input_ids"]).double()
    got = st.capture(model, [b], ["dec"], sequence="mean", mask=None, dtype=np.float64)["dec"]
    np.testing.assert_allclose(
        got, dec.mean(1).numpy(), rtol=0, atol=tol(scale=3 * dec.abs().max())
    )
    got = st.capture(
        model, [b], ["enc"], sequence="mean", mask=lambda b: b["attention_mask"], dtype=np.float64
    )["enc"]
    np.testing.assert_allclose(
        got, masked_mean(enc, enc_mask), rtol=0, atol=tol(scale=3 * enc.abs().max())
    )
    assert st.capture(model, [b], ["dec"], sequence="keep")["dec"].shape == (2, 3, 4)


@pytest.mark.slow  # importing BART's modeling code takes ~2 s
def test_encoder_decoder_batches_need_a_mask_per_side(tf):
    torch.manual_seed(0)
    cfg = tf.BartConfig(
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        vocab_size=100,
        max_position_embeddings=32,
    )
    bart = tf.BartModel(cfg).eval()
    enc_mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [1] * 2 + [0] * 4, [1] * 5 + [0]])
    dec_mask = torch.tensor([[1] * 6, [1] * 6, [1] * 4 + [0] * 2, [1] * 6])
    ids = torch.randint(3, 100, (4, 6)) * enc_mask + (1 - enc_mask)  # pad id 1
    dec = torch.randint(3, 100, (4, 6))  # as long as the encoder inputs
    b = {"input_ids": ids, "attention_mask": enc_mask, "decoder_input_ids": dec}
    layers = ["encoder.layers.0", "decoder.layers.0"]
    # The encoder's attention_mask fits the decoder's outputs too: "auto" would use it there.
    with pytest.raises(st.CaptureError, match=r"decoder inputs \(decoder_input_ids\).*"):
        st.capture(bart, [b], layers[1:], sequence="mean")
    bd = {**b, "decoder_attention_mask": dec_mask}
    with pytest.raises(
        st.CaptureError,
        match=r"decoder_input_ids, decoder_attention_mask.*mask=lambda b: b\['attention_mask'\]",
    ):
        st.capture(bart, [bd], layers[:1], sequence="samples")
    with torch.no_grad():
        out = bart(**b, output_hidden_states=True)
    enc_h, dec_h = out.encoder_hidden_states[1], out.decoder_hidden_states[1]
    kw = {"sequence": "mean", "dtype": np.float64}
    enc = st.capture(bart, [b], layers[:1], mask=lambda b: b["attention_mask"], **kw)
    np.testing.assert_allclose(
        enc[layers[0]], masked_mean(enc_h, enc_mask), rtol=0, atol=f32_tol(enc_h.numpy(), 6)
    )
    dec_all = st.capture(bart, [b], layers[1:], mask=None, **kw)[layers[1]]
    np.testing.assert_allclose(
        dec_all,
        dec_h.double().mean(1).numpy(),
        rtol=0,
        atol=tol(scale=6 * float(dec_h.abs().max())),
    )
    with torch.no_grad():
        dec_h = bart(**bd, output_hidden_states=True).decoder_hidden_states[1]
    dec_pad = st.capture(bart, [bd], layers[1:], mask=lambda b: b["decoder_attention_mask"], **kw)
    np.testing.assert_allclose(
        dec_pad[layers[1]], masked_mean(dec_h, dec_mask), rtol=0, atol=f32_tol(dec_h.numpy(), 6)
    )
    # sequence="keep" uses no mask, so nothing needs saying
    kept = st.capture(bart, [b], layers[1:], sequence="keep")[layers[1]]
    np.testing.assert_array_equal(kept, out.decoder_hidden_states[1].numpy())


def token_batches(n: int = 20, T: int = 7, size: int = 8, seed: int = 0) -> list[dict]:
    """Right-padded token batches: lengths 1..T, padding id 0, attention_mask 0 there."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, T), generator=g)
    lengths = torch.randint(1, T + 1, (n,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    return [
        {"input_ids": ids[s : s + size], "attention_mask": mask[s : s + size]}
        for s in range(0, n, size)
    ]


def truth(model, batches, k: int):
    """hidden_states[k] of every batch, (n, T, d), and the masks, from the model itself."""
    with torch.no_grad():
        hs = [model(**b, output_hidden_states=True).hidden_states[k] for b in batches]
    return torch.cat(hs).numpy(), torch.cat([b["attention_mask"] for b in batches]).bool().numpy()


def masked(h: np.ndarray, m: np.ndarray, how: str) -> np.ndarray:
    if how == "mean":
        return (h * m[:, :, None]).sum(1) / m.sum(1, keepdims=True)
    if how == "samples":
        return h[m]
    pos = np.arange(m.shape[1])
    idx = np.where(m, pos, -1).max(1) if how == "last" else np.where(m, pos, 99).min(1)
    return h[np.arange(len(h)), idx]


def block_select(model, batch, name):
    """``select`` for a transformer block: None where it returns a tensor (transformers 5.x
    from about 5.1), 0 where it returns a ``(hidden_states, ...)`` tuple (4.x, 5.0)."""
    out = st.summary(model, batch)[name].output
    return None if out.startswith("Tensor(") else 0


@pytest.mark.parametrize("how", ["mean", "samples", "last", "first"])
def test_gpt2_block_outputs_padding_masked(gpt2, how):
    batches = token_batches()
    sel = {"h.0": block_select(gpt2, batches[0], "h.0")}
    sel = {k: v for k, v in sel.items() if v is not None}
    got = st.capture(gpt2, batches, ["h.0", "ln_f"], sequence=how, select=sel, dtype=np.float64)
    for layer, k in (("h.0", 1), ("ln_f", 2)):
        h, m = truth(gpt2, batches, k)
        want = masked(h, m, how)
        assert got[layer].shape == want.shape
        np.testing.assert_allclose(got[layer], want, rtol=0, atol=f32_tol(want, 7))
    # "all" positions is a different number, and only with mask=None
    unmasked = st.capture(gpt2, batches, ["h.0"], sequence="mean", mask=None, select=sel)["h.0"]
    h, m = truth(gpt2, batches, 1)
    np.testing.assert_allclose(unmasked, h.mean(1), rtol=0, atol=f32_tol(h, 7))
    assert not np.allclose(masked(h, m, "mean"), h.mean(1), atol=1e-3)


def test_gpt2_select_on_a_block_is_an_error(gpt2):
    batches = token_batches()
    if block_select(gpt2, batches[0], "h.0") is None:
        # GPT2Block returns a tensor: select=0 would take datapoint 0's tokens
        with pytest.raises(st.CaptureError, match=r"plain tensor .*select=0 would index"):
            st.capture(gpt2, batches, ["h.0"], select=0, sequence="mean")
    else:  # a (hidden_states,) tuple: select=0 is its first element, one row per datapoint
        got = st.capture(gpt2, batches, ["h.0"], select=0, sequence="mean", dtype=np.float64)
        want = masked(*truth(gpt2, batches, 1), "mean")
        np.testing.assert_allclose(got["h.0"], want, rtol=0, atol=f32_tol(want, 7))
    # wpe is (1, T, d): not per datapoint
    with pytest.raises(st.CaptureError, match=r"'wpe' gave Tensor\(1, 7, 32\).*holds 8 datapoints"):
        st.capture(gpt2, token_batches(), ["wpe"], sequence="mean")


def test_bert_cls_and_tokens(bert):
    batches = token_batches(seed=1)
    sel = {
        "": "last_hidden_state",
        "encoder.layer.1": block_select(bert, batches[0], "encoder.layer.1"),
    }
    got = st.capture(
        bert,
        batches,
        ["embeddings", "encoder.layer.1", ""],
        sequence="first",
        select={k: v for k, v in sel.items() if v is not None},
    )
    for layer, k in (("embeddings", 0), ("encoder.layer.1", 2), ("", 2)):
        h, m = truth(bert, batches, k)
        np.testing.assert_array_equal(got[layer], h[:, 0])
    tokens = st.hidden_states(bert, batches, sequence="samples")
    assert list(tokens) == ["embeddings", "layer.1", "layer.2"]
    for k, name in enumerate(tokens):
        h, m = truth(bert, batches, k)
        np.testing.assert_array_equal(tokens[name], h[m])
    assert len(tokens["layer.1"]) == int(m.sum()) < m.size


def test_hidden_states_all_reductions_and_moments(gpt2):
    batches = token_batches(n=30, seed=2)
    for how in ("mean", "last"):
        got = st.hidden_states(gpt2, batches, sequence=how, dtype=np.float64)
        assert list(got) == ["embeddings", "layer.1", "layer.2"]
        for k, name in enumerate(got):
            want = masked(*truth(gpt2, batches, k), how)
            np.testing.assert_allclose(got[name], want, rtol=0, atol=f32_tol(want, 7))
    acts = st.hidden_states(gpt2, batches, sequence="mean", dtype=np.float64)
    stats = st.hidden_state_moments(
        gpt2, batches, [("embeddings", "layer.2"), "layer.1"], sequence="mean"
    )
    ref = svcca.Moments.from_arrays(acts["embeddings"], acts["layer.2"])
    m = stats[("embeddings", "layer.2")]
    assert m.n == 30 and stats["layer.1"].n == 30
    scale = float(np.abs(ref.sxy).max())
    np.testing.assert_allclose(m.sxy, ref.sxy, rtol=0, atol=tol(np.float64, scale=scale, factor=60))
    # minibatch CKA from the stream, against the same batches of stored activations
    acc = svcca.MinibatchCKA()

    def feed(i, arrays):
        layers = list(arrays.values())
        acc.update(layers, layers)

    st.hidden_states_stream(gpt2, batches, feed, sequence="mean", dtype=np.float64)
    sizes = [len(b["input_ids"]) for b in batches]
    starts = np.cumsum([0, *sizes])
    ref_cka = svcca.MinibatchCKA.from_batches(
        ([a[s:e] for a in acts.values()], [a[s:e] for a in acts.values()])
        for s, e in zip(starts[:-1], starts[1:], strict=True)
    )
    np.testing.assert_allclose(acc.scores(), ref_cka.scores(), atol=1e-12)
    with pytest.raises(st.CaptureError, match=r"pairs name 'layer.7'.*'embeddings'"):
        st.hidden_state_moments(gpt2, batches, [("layer.7", "layer.1")], sequence="mean")
    with pytest.raises(ValueError, match="needs 2-D activations"):
        st.hidden_state_moments(gpt2, batches, ["layer.1"], sequence="keep")
    with pytest.raises(ValueError, match="sequence must be given"):
        st.hidden_states(gpt2, batches, sequence=None)


def test_hidden_states_errors():
    net = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(st.CaptureError, match="failed on batch 0"):
        st.hidden_states(net, [torch.randn(3, 4)], sequence="mean")
    with pytest.raises(st.CaptureError, match="has no hidden_states"):
        st.hidden_states(net, [torch.randn(3, 4)], sequence="mean", forward=lambda m, b: m(b))
    assert st.hidden_state_names(13)[:3] == ["embeddings", "layer.01", "layer.02"]
    assert st.hidden_state_names(13) == sorted(st.hidden_state_names(13))


def test_vit_cls_patches_and_a_dropout_called_twice(vit):
    torch.manual_seed(1)
    images = torch.randn(12, 3, 8, 8)
    batches = [{"pixel_values": x} for x in images.split(5)]
    got = st.hidden_states(vit, batches, sequence="first")
    with torch.no_grad():
        hs = [vit(**b, output_hidden_states=True).hidden_states for b in batches]
    for k, name in enumerate(got):
        np.testing.assert_array_equal(got[name], torch.cat([h[k][:, 0] for h in hs]).numpy())
    proj = "embeddings.patch_embeddings.projection"
    maps = st.capture(vit, batches, [proj], conv="mean", dtype=np.float64)[proj]
    assert maps.shape == (12, 32)
    s = st.summary(vit, batches[0])
    assert s[proj].capture.startswith("conv=")
    assert s[""].capture.startswith("select='last_hidden_state'")
    twice = [m.name for m in s.modules if m.calls == 2]
    if not twice:  # transformers before ~5.2 calls every ViT module once
        return
    # ViT's layer dropout ("layers.0.dropout") runs twice per layer in one forward pass
    drop = twice[0]
    assert s[drop].calls == 2 and "#1" in s[drop].capture
    with pytest.raises(st.CaptureError, match=rf"ran 2 times .*'{drop}#0', '{drop}#1'"):
        st.capture(vit, batches, [drop], sequence="first")
    each = st.capture(vit, batches, [drop], sequence="first", calls="each")
    assert list(each) == [f"{drop}#0", f"{drop}#1"]
    second = st.capture(vit, batches, [f"{drop}#1"], sequence="first")[f"{drop}#1"]
    np.testing.assert_array_equal(second, each[f"{drop}#1"])
    with pytest.raises(st.CaptureError, match=r"asks for call 2 \(0-based\).*ran 2 time"):
        st.capture(vit, batches, [f"{drop}#2"], sequence="first")


def test_summary_of_gpt2(gpt2):
    batch = token_batches()[0]
    s = st.summary(gpt2, batch)
    assert s.datapoints == 8
    if s["h.0"].output == "tuple(Tensor(8, 7, 32))":  # transformers < 5.3
        assert s["h.0"].capture.startswith("select=0, sequence=")
    else:
        assert s["h.0"].output == "Tensor(8, 7, 32)" and s["h.0"].capture.startswith("sequence=")
    assert s["h.0.attn"].capture.startswith("select=0, sequence=")
    assert s["wpe"].capture.startswith("not per datapoint")
    assert s["h"].calls == 0
    text = str(s)
    assert text.splitlines()[0] == "GPT2Model on a batch of 8 datapoints"
    assert re.search(
        r"^h\.0 +GPT2Block +1 +(tuple\()?Tensor\(8, 7, 32\)\)? +(select=0, )?sequence=", text, re.M
    )
    with pytest.raises(KeyError, match="No module 'nope'"):
        s["nope"]


DOC = Path(__file__).resolve().parents[2] / "docs" / "torch.md"


def test_docs_huggingface_section_runs(tf):
    text = DOC.read_text()
    section = text.split("## HuggingFace models", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)  # the blocks assert their results
