"""capture_to_disk never resumes (or returns) a capture of another model, options or data."""

from __future__ import annotations

import copy
import functools
import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import svcca.torch as st  # noqa: E402
from conftest import tol  # noqa: E402

# private: what the fingerprint tells apart, structure by structure (capture_to_disk's
# refusals show one case at a time, tested below)
from svcca.torch._digest import batch_digest, model_digest  # noqa: E402

torch.set_num_threads(1)


def mlp(seed: int = 0, act: type[nn.Module] = nn.ReLU) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 10), act(), nn.Linear(10, 3))


def data(n: int = 60, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return list(torch.randn(n, 6, generator=g).split(20))


def outputs(net: nn.Module, batches) -> np.ndarray:
    """The model's own outputs, batch by batch: the truth for layer ``""``."""
    with torch.no_grad():
        return torch.cat([net(b) for b in batches]).numpy()


class Flaky:
    """Batches that raise after ``fail_at`` batches (an interrupted capture)."""

    def __init__(self, batches, fail_at):
        self.batches, self.fail_at = batches, fail_at

    def __iter__(self):
        for i, b in enumerate(self.batches):
            if i == self.fail_at:
                raise KeyboardInterrupt("simulated kill")
            yield b


def test_another_model_in_a_finished_capture_raises_then_overwrite_recaptures(tmp_path):
    x = data()
    first = st.capture_to_disk(mlp(0), x, [""], tmp_path)
    np.testing.assert_array_equal(first.load(""), outputs(mlp(0), x))
    other = mlp(1)
    with pytest.raises(
        ValueError,
        match=r"holds a capture of another model: the model's "
        r"modules or weights differ .* or overwrite=True",
    ):
        st.capture_to_disk(other, x, [""], tmp_path)
    res = st.capture_to_disk(other, x, [""], tmp_path, overwrite=True)
    assert res.resumed_from == 0
    np.testing.assert_array_equal(res.load(""), outputs(other, x))
    assert not np.allclose(res.load(""), outputs(mlp(0), x))
    # the same weights in another object are the same model: returned as finished
    again = st.capture_to_disk(copy.deepcopy(other), x, [""], tmp_path)
    assert again.resumed_from == len(x)


def test_another_model_in_an_unfinished_capture_raises(tmp_path):
    x = data(100)
    with pytest.raises(KeyboardInterrupt):
        st.capture_to_disk(mlp(0), Flaky(x, fail_at=2), ["1"], tmp_path)
    net = mlp(0)
    with torch.no_grad():
        net[2].bias[0] += 1e-3  # one weight changed, even one not feeding the layer
    with pytest.raises(ValueError, match="holds a capture of another model"):
        st.capture_to_disk(net, x, ["1"], tmp_path)
    res = st.capture_to_disk(mlp(0), x, ["1"], tmp_path)  # the right model resumes
    assert res.resumed_from == 2 and res.n_batches == 5
    np.testing.assert_array_equal(res.load("1"), st.capture(mlp(0), x, ["1"])["1"])


def test_architecture_without_weights_is_part_of_the_model(tmp_path):
    x = data()
    st.capture_to_disk(mlp(0), x, [""], tmp_path)
    with pytest.raises(ValueError, match="another model"):
        st.capture_to_disk(mlp(0, act=nn.Tanh), x, [""], tmp_path)  # same state dict


def test_other_data_raises(tmp_path):
    net = mlp(0)
    st.capture_to_disk(net, data(seed=0), [""], tmp_path)
    with pytest.raises(
        ValueError,
        match=r"holds a capture of other data: the first batch "
        r"differs .*shuffles or augments",
    ):
        st.capture_to_disk(net, data(seed=1), [""], tmp_path)
    # the same first batch, but more batches than were captured
    longer = data(seed=0) + data(seed=2)
    with pytest.raises(ValueError, match=r"other data: 3 batches on disk, but batches has 6"):
        st.capture_to_disk(net, longer, [""], tmp_path)
    res = st.capture_to_disk(net, longer, [""], tmp_path, overwrite=True)
    np.testing.assert_array_equal(res.load(""), outputs(net, longer))


def test_declared_batch_count_of_an_unfinished_capture(tmp_path):
    x = data(100)

    class Sized(Flaky):
        def __len__(self):
            return len(self.batches)

    with pytest.raises(KeyboardInterrupt):
        st.capture_to_disk(mlp(0), Sized(x, fail_at=2), ["1"], tmp_path)
    with pytest.raises(ValueError, match=r"an unfinished capture of 5 batches, but batches has 4"):
        st.capture_to_disk(mlp(0), x[:4], ["1"], tmp_path)


def test_every_option_is_in_the_fingerprint(tmp_path):
    net = mlp(0)
    x = data()
    st.capture_to_disk(net, x, ["1"], tmp_path, forward=lambda m, b: m(b))
    with pytest.raises(ValueError, match=r"other settings \(forward: on disk 'callable "):
        st.capture_to_disk(net, x, ["1"], tmp_path, forward=lambda m, b: m(b * 2))
    with pytest.raises(ValueError, match=r"other settings \(dtype: on disk '<f4', now '<f8'"):
        st.capture_to_disk(net, x, ["1"], tmp_path, dtype=np.float64, forward=lambda m, b: m(b))
    res = st.capture_to_disk(net, x, ["1"], tmp_path, forward=lambda m, b: m(b))
    assert res.resumed_from == 3  # the same source: the same option

    class Pick:  # a callable selector whose repr says what it picks
        def __init__(self, scale):
            self.scale = scale

        def __call__(self, out):
            return out * self.scale

        def __repr__(self):
            return f"Pick({self.scale})"

    st.capture_to_disk(net, x, ["1"], tmp_path / "sel", select=Pick(1))
    with pytest.raises(
        ValueError,
        match=r"other settings \(select: on disk \{'1': 'callable "
        r".*Pick\(1\)'\}, now \{'1': 'callable .*Pick\(2\)'\}",
    ):
        st.capture_to_disk(net, x, ["1"], tmp_path / "sel", select=Pick(2))
    fwd = functools.partial(lambda m, b, k: m(b * k), k=1.0)
    st.capture_to_disk(net, x, ["1"], tmp_path / "partial", forward=fwd)
    with pytest.raises(ValueError, match=r"other settings \(forward: on disk \['partial'"):
        st.capture_to_disk(
            net, x, ["1"], tmp_path / "partial", forward=functools.partial(fwd, k=2.0)
        )
    with open(tmp_path / "manifest.json") as f:
        manifest = json.load(f)
    for key in (
        "select",
        "sequence",
        "time_axis",
        "conv",
        "dtype",
        "mask",
        "calls",
        "datapoints",
        "conv_layers",
        "forward",
        "layers",
        "format",
    ):
        assert key in manifest, key


def test_fingerprint_is_recorded_and_loaded(tmp_path):
    net = mlp(3)
    x = data()
    res = st.capture_to_disk(net, x, ["1"], tmp_path)
    want = {"model": model_digest(net), "first_batch": batch_digest(x[0]), "n_batches": 3}
    assert res.fingerprint == want
    assert st.load_capture(tmp_path).fingerprint == want


def test_one_shot_iterator_keeps_its_first_batch(tmp_path):
    net = mlp(0)
    x = data()
    res = st.capture_to_disk(net, iter(x), [""], tmp_path)
    np.testing.assert_array_equal(res.load(""), outputs(net, x))
    assert res.fingerprint["n_batches"] is None
    again = st.capture_to_disk(net, iter(x), [""], tmp_path)
    assert again.resumed_from == 3


def test_old_manifest_cannot_be_checked(tmp_path):
    net = mlp(0)
    x = data()
    st.capture_to_disk(net, x, [""], tmp_path)
    path = tmp_path / "manifest.json"
    m = json.loads(path.read_text())
    m["version"] = 1
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match=r"manifest version 1 \(this version writes 3"):
        st.capture_to_disk(net, x, [""], tmp_path)
    assert st.capture_to_disk(net, x, [""], tmp_path, overwrite=True).resumed_from == 0


def test_a_shuffling_loader_is_never_resumed(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(60, 6, generator=g))
    loader = DataLoader(ds, batch_size=20, shuffle=True, generator=g)
    net = mlp(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the capture's own warning about shuffling
        st.capture_to_disk(net, loader, [""], tmp_path)
        with pytest.raises(ValueError, match="first batch differs"):
            st.capture_to_disk(net, loader, [""], tmp_path)


def test_digests_of_batch_structures():
    t = torch.arange(6.0).reshape(2, 3)
    assert batch_digest(t) == batch_digest(t.clone())
    assert batch_digest(t) != batch_digest(t.double())  # dtype counts
    assert batch_digest(t) != batch_digest(t.reshape(3, 2))  # shape counts
    assert batch_digest(t.t()) == batch_digest(t.t().contiguous())  # layout does not
    d = {"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.tensor([[1, 1, 0]])}
    d2 = {**d, "attention_mask": torch.tensor([[1, 1, 1]])}
    assert batch_digest(d) != batch_digest(d2)
    assert batch_digest((t, torch.tensor([0, 1]))) != batch_digest((t, torch.tensor([1, 0])))
    assert batch_digest(t.bfloat16()) != batch_digest(t.half())  # bfloat16 has no NumPy dtype
    assert batch_digest(np.ones(3)) != batch_digest(np.ones(3, dtype=np.float32))
    net = nn.BatchNorm1d(3)
    before = model_digest(net)
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3))  # running statistics are buffers: part of the model
    assert model_digest(net) != before


def test_calls_each_records_every_call_to_disk(tmp_path):
    """With calls="each" the names ('lin#0', 'lin#1') are known only once the model ran:
    the files, the returned capture and load_capture use the recorded names."""

    class Twice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.out = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.lin(torch.tanh(self.lin(x))))

    net = Twice()
    x = list(torch.randn(40, 4, generator=torch.Generator().manual_seed(0)).split(10))
    cap = st.capture_to_disk(net, x, ["lin", "out"], tmp_path, calls="each")
    ref = st.capture(net, x, ["lin", "out"], calls="each")
    assert cap.layers == ("lin#0", "lin#1", "out") == tuple(ref)
    for k, a in cap.arrays().items():
        np.testing.assert_array_equal(a, ref[k])
    again = st.capture_to_disk(net, x, ["lin", "out"], tmp_path, calls="each")
    assert again.resumed_from == 4 and again.layers == cap.layers
    assert st.load_capture(tmp_path).layers == cap.layers


@pytest.mark.parametrize("lengths", [(1, 5), (5, 1)])
def test_sequences_of_different_lengths_are_refused_as_they_are_written(tmp_path, lengths):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3))
    batches = [torch.randn(2, t, 4) for t in lengths]
    # In memory the batches cannot be stacked either; on disk the first batch's rows
    # were broadcast into the last batch's shape.
    with pytest.raises(st.CaptureError, match=r"per datapoint on batch 1.*time steps"):
        st.capture(net, batches, ["0"], sequence="keep")
    with pytest.raises(
        st.CaptureError,
        match=rf"'0' gave \({lengths[1]}, 3\) per datapoint on batch 1, but \({lengths[0]}, 3\) "
        r"on the first batch.*sequence='samples'",
    ):
        st.capture_to_disk(net, batches, ["0"], tmp_path, sequence="keep")
    assert not list(tmp_path.glob("*.safetensors"))
    same = [torch.randn(2, 5, 4), torch.randn(3, 5, 4)]
    got = st.capture_to_disk(net, same, ["0"], tmp_path / "same", sequence="keep")
    np.testing.assert_array_equal(got.load("0"), torch.cat([net(b) for b in same]).detach())


def test_conv_maps_of_different_sizes_are_refused_also_after_a_resume(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    batches = [torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(2, 1, 6, 6)]
    with pytest.raises(KeyboardInterrupt):
        st.capture_to_disk(net, Flaky(batches, 2), ["0"], tmp_path, conv="keep")
    with pytest.raises(st.CaptureError, match=r"\(2, 6, 6\) per datapoint on batch 2.*conv='mean'"):
        st.capture_to_disk(net, batches, ["0"], tmp_path, conv="keep")
    mean = st.capture_to_disk(net, batches, ["0"], tmp_path / "mean", conv="mean")
    with torch.no_grad():
        ref = torch.cat([net(b).double().mean((2, 3)) for b in batches]).numpy()
    # stored as float32: one rounding of each mean
    np.testing.assert_allclose(
        mean.load("0"), ref, rtol=0, atol=tol(np.float32, scale=abs(ref).max(), factor=1.0)
    )
