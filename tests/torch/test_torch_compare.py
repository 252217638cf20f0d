"""svcca.torch.compare: one pass, model against model, equal to capture + pairwise."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import svcca  # noqa: E402
import svcca.torch as st  # noqa: E402
from conftest import run_examples, tol  # noqa: E402

torch.set_num_threads(1)

MOMENT_MEASURES = ["cka_linear", "cca", "svcca", "pwcca", "pls"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1):
        yield


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 5), nn.Tanh()
    )


def cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def batches(n: int, shape: tuple[int, ...], size: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return list(torch.randn(n, *shape, generator=g).split(size))


def cond(acts: dict[str, np.ndarray]) -> float:
    """Largest condition number of a layer's correlation matrix (what CCA whitens)."""
    return max(float(np.linalg.cond(np.corrcoef(a, rowvar=False))) for a in acts.values())


def bound(measure: str, n: int, acts: dict[str, np.ndarray]) -> float:
    """Two float64 accumulations of the same n-term sums in another order: each entry of the
    moments is accurate to n eps (worst case) relative; CKA is a ratio of such sums, a
    canonical correlation moves by that times the condition number of the whitened
    blocks."""
    c = 1.0 if measure in ("cka_linear", "pls") else cond(acts)
    return tol(np.float64, cond=c, factor=2 * n)


# ------------------------------------------------------------------ equality with pairwise
@pytest.mark.parametrize("measure", MOMENT_MEASURES)
def test_mlp_equals_capture_plus_pairwise(measure):
    a, b = mlp(0), mlp(1)
    x = batches(600, (6,), 64)  # the last batch is smaller (24 rows)
    la, lb = ["1", "3", "5"], ["1", "2", "3", "5"]
    r = st.compare(a, b, x, la, lb, measure=measure, keep=4)
    A, B = st.capture(a, x, la), st.capture(b, x, lb)
    kw = {"keep": 4} if measure == "svcca" else {}
    ref = svcca.pairwise(A, B, measure=measure, **kw)
    np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=bound(measure, 600, {**A, **B}))
    assert r.rows == tuple(la) and r.cols == tuple(lb)
    assert r.measure == measure and r.n_samples == 600
    assert r.dims_rows == ref.dims_rows and r.dims_cols == ref.dims_cols
    assert dict(r.settings) == dict(ref.settings)


@pytest.mark.parametrize("measure", MOMENT_MEASURES)
def test_cnn_with_conv_mean_equals_capture_plus_pairwise(measure):
    a, b = cnn(2), cnn(3)
    x = batches(300, (3, 6, 6), 50, seed=1)
    layers = ["1", "3", "6"]
    r = st.compare(a, b, x, layers, measure=measure, conv="mean", keep=0.95)
    # compare keeps the float64 pooled means; capture stores float32 unless told
    A = st.capture(a, x, layers, conv="mean", dtype=np.float64)
    B = st.capture(b, x, layers, conv="mean", dtype=np.float64)
    kw = {"keep": 0.95} if measure == "svcca" else {}
    ref = svcca.pairwise(A, B, measure=measure, **kw)
    np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=bound(measure, 300, {**A, **B}))
    assert r.cols == tuple(layers)  # layers_b=None: the same names


def test_model_outputs_against_independent_cka():
    """The models' own outputs (layer "") scored by svcca.cka on torch's forward results."""
    a, b = mlp(4), mlp(5)
    x = batches(500, (6,), 100, seed=2)
    with torch.no_grad():
        ya = torch.cat([a(xb) for xb in x]).double().numpy()
        yb = torch.cat([b(xb) for xb in x]).double().numpy()
    r = st.compare(a, b, x, ["", "3"], [""], measure="cka_linear")
    assert r[("", "")] == pytest.approx(svcca.cka(ya, yb).score, abs=tol(factor=2 * 500))
    r = st.compare(a, b, x, [""], measure="cca")
    want = svcca.cca(ya, yb).score
    assert r["", ""] == pytest.approx(want, abs=tol(cond=cond({"a": ya, "b": yb}), factor=1000))


def test_cka_minibatch_equals_minibatch_cka_over_the_same_batches():
    a, b = mlp(6), mlp(7)
    x = batches(320, (6,), 64, seed=3)
    la, lb = ["1", "3"], ["3", "5"]
    r = st.compare(a, b, x, la, lb, measure="cka_minibatch")
    acc = svcca.MinibatchCKA()
    for xb in x:
        A, B = st.capture(a, [xb], la), st.capture(b, [xb], lb)
        acc.update([A[k] for k in la], [B[k] for k in lb])
    # the same float64 sums of the same per-batch terms: only summation order differs
    np.testing.assert_allclose(r.values, acc.scores(), rtol=0, atol=tol(factor=2 * 64 * 64))
    assert r.measure == "cka_minibatch" and r.n_samples == 320
    assert r.dims_rows == (16, 12) and r.dims_cols == (12, 5)


def test_same_model_twice_runs_once_and_scores_one_on_the_diagonal():
    class Counting(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net, self.calls = net, 0

        def forward(self, x):
            self.calls += 1
            return self.net(x)

    net = Counting(mlp(8))
    x = batches(200, (6,), 50, seed=4)
    layers = ["net.1", "net.3", "net.5"]
    r = st.compare(net, net, x, layers, measure="cka_linear")
    assert net.calls == 4  # one forward pass per batch, not two
    np.testing.assert_allclose(np.diag(r.values), 1.0, rtol=0, atol=tol(factor=2 * 200))
    np.testing.assert_allclose(r.values, r.values.T, rtol=0, atol=0)
    ref = svcca.pairwise(st.capture(net.net, x, ["1", "3", "5"]), measure="cka_linear")
    np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=tol(factor=2 * 200))
    part = st.compare(net, net, x, layers, ["net.5"], measure="cca")
    assert part.shape == (3, 1) and part["net.5", "net.5"] == pytest.approx(1.0, abs=1e-12)


def test_capture_options_are_forwarded():
    """sequence/time_axis, select (shared and per-model keys), forward and device."""

    class Seq(nn.Module):
        def __init__(self, seed):
            super().__init__()
            torch.manual_seed(seed)
            self.rnn = nn.GRU(3, 7)  # (T, n, d) outputs: time_axis=0
            self.head = nn.Linear(7, 4)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out)

    a, b = Seq(0), Seq(1)
    g = torch.Generator().manual_seed(5)
    x = [{"x": torch.randn(5, 40, 3, generator=g)} for _ in range(4)]  # (T, n, d)
    fwd = lambda m, batch: m(batch["x"])  # noqa: E731
    opts = dict(sequence="mean", time_axis=0, forward=fwd)
    r = st.compare(a, b, x, ["rnn", "head"], select={"rnn": 0}, device="cpu", **opts)
    A = st.capture(a, x, ["rnn", "head"], select={"rnn": 0}, dtype=np.float64, **opts)
    B = st.capture(b, x, ["rnn", "head"], select={"rnn": 0}, dtype=np.float64, **opts)
    ref = svcca.pairwise(A, B, measure="cka_linear")
    np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=tol(factor=2 * 160))
    assert r.n_samples == 160
    # per-model keys: only model_b's GRU output needs picking here, so model_a fails
    with pytest.raises(ValueError, match=r"'a\.rnn' returned"):
        st.compare(a, b, x, ["rnn"], select={"b.rnn": 0}, **opts)
    s = st.compare(a, b, x, ["rnn"], select={"a.rnn": 0, "b.rnn": 0}, **opts)
    assert s.values[0, 0] == pytest.approx(ref.values[0, 0], abs=tol(factor=2 * 160))


def test_progress_bar_goes_to_stderr(capsys):
    st.compare(mlp(0), mlp(1), batches(100, (6,), 50), ["1"], progress=True)
    err = capsys.readouterr().err
    assert "compare" in err
    st.compare(mlp(0), mlp(1), batches(100, (6,), 50), ["1"], progress=False)
    assert capsys.readouterr().err == ""


def test_one_shot_iterator_and_no_activation_kept():
    a, b = mlp(0), mlp(1)
    x = batches(200, (6,), 50)
    r = st.compare(a, b, iter(x), ["1"], ["3"], measure="cka_linear")
    assert r.n_samples == 200
    # hooks removed, modes restored
    assert sum(len(m._forward_hooks) for m in [*a.modules(), *b.modules()]) == 0
    assert a.training and b.training


# ------------------------------------------------------------------ errors
def test_errors_are_explained():
    a, b = mlp(0), mlp(1)
    x = batches(100, (6,), 50)
    with pytest.raises(
        ValueError,
        match=r"measure must be one of 'cca', .*'cka_minibatch', .*'rsa'.*; got "
        r"'cosine'\. svcca measures",
    ):
        st.compare(a, b, x, ["1"], measure="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="conv must be 'mean' or 'flatten' in compare"):
        st.compare(a, b, x, ["1"], conv="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="layers_a is empty"):
        st.compare(a, b, x, [])
    with pytest.raises(ValueError, match=r"layers_b lists \['1'\] more than once"):
        st.compare(a, b, x, ["1"], ["1", "1"])
    with pytest.raises(TypeError, match="layers_a must hold str module names; got 3"):
        st.compare(a, b, x, [3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="model_b must be a torch.nn.Module; got str"):
        st.compare(a, "b", x, ["1"])
    with pytest.raises(ValueError, match="Sequential has no module named '9'"):
        st.compare(a, b, x, ["1"], ["9"])
    with pytest.raises(ValueError, match=r"select names 'zz', which is in neither layers_a"):
        st.compare(a, b, x, ["1"], select={"zz": 0})
    with pytest.raises(ValueError, match="batches was empty"):
        st.compare(a, b, [], ["1"])
    with pytest.raises(ValueError, match="At least 2 samples are needed"):
        st.compare(a, b, [x[0][:1]], ["1"])
    with pytest.raises(TypeError, match="progress must be True or False"):
        st.compare(a, b, x, ["1"], progress="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keep must be"):
        st.compare(a, b, x, ["1"], measure="svcca", keep=0)


def test_shared_modules_are_refused():
    shared = nn.Linear(6, 8)
    a = nn.Sequential(shared, nn.Tanh())
    b = nn.Sequential(shared, nn.ReLU())
    x = batches(100, (6,), 50)
    with pytest.raises(
        ValueError, match="Layer '0' of model_a is a module that model_a and model_b share"
    ):
        st.compare(a, b, x, ["0", "1"])
    r = st.compare(a, b, x, ["1"])  # unshared layers are fine
    assert r.shape == (1, 1)


def test_constant_and_nonfinite_layers_are_refused_by_name():
    a, b = mlp(0), mlp(1)
    dead = nn.Sequential(nn.Linear(6, 4), nn.ReLU())
    with torch.no_grad():
        dead[0].weight.zero_()
        dead[0].bias.fill_(-1.0)
    x = batches(100, (6,), 50)
    with pytest.raises(
        svcca.DegenerateError, match=r"Representation '1' of model_b \(4 features\)"
    ):
        st.compare(a, dead, x, ["1"], measure="cca")
    with pytest.raises(svcca.DegenerateError, match=r"'1' of model_b"):
        st.compare(a, dead, x, ["1"], measure="cka_minibatch")
    bad = [x[0], x[1].clone()]
    bad[1][7, 2] = float("nan")
    for measure in ("cka_linear", "cka_minibatch"):
        with pytest.raises(
            ValueError,
            match=r"Layer '1' of model_a contains NaN or inf in rows \[7\] .*\(batch 1\)",
        ):
            st.compare(a, b, bad, ["1"], measure=measure)


def test_activations_near_the_top_of_float64_are_averaged_and_compared():
    big = nn.Linear(1, 1).double()
    with torch.no_grad():
        big.weight.fill_(1e308)
        big.bias.zero_()
    # 50 values of 1e308 sum past float64's range: averaged in units of 2^1023 (was:
    # refused as "too large to average"); a constant layer is then refused as constant
    x = [torch.ones(50, 1, dtype=torch.float64)]
    with pytest.raises(svcca.DegenerateError, match=r"'' of model_a .* it is constant"):
        st.compare(big, copy.deepcopy(big), x, [""])
    x = [torch.rand(50, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))]
    for measure in ("cka_linear", "cca"):
        for where in (None, "cpu"):
            with svcca.on_device(where):
                got = st.compare(big, copy.deepcopy(big), x, [""], measure=measure)
            assert got.values[0, 0] == pytest.approx(1.0, abs=1e-12)


def test_few_samples_warning_names_the_pairs():
    a, b = mlp(0), mlp(1)
    x = batches(20, (6,), 10)
    with pytest.warns(svcca.SVCCAWarning, match=r"pairs have too few samples"):
        st.compare(a, b, x, ["1"], measure="cca")


def test_docstring_example():
    import doctest

    res = run_examples(st.compare, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 0


def test_result_draws_as_a_heatmap():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import svcca.plot

    r = st.compare(mlp(0), mlp(1), batches(100, (6,), 50), ["1", "3"], ["5"])
    fig = svcca.plot.heatmap(r)
    try:
        np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), r.values)
        assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1", "3"]
    finally:
        plt.close(fig)


def pairwise_of_captures(a, b, x, la, lb, measure="cka_linear", **opts):
    """The two-step reference: capture each model (float64, as compare keeps), then pairwise."""
    A = st.capture(a, x, la, dtype=np.float64, **opts)
    B = st.capture(b, x, lb, dtype=np.float64, **opts)
    return svcca.pairwise(A, B, measure=measure)


def test_attention_mask_and_mask_option_are_forwarded():
    class Tok(nn.Module):
        def __init__(self, seed):
            super().__init__()
            torch.manual_seed(seed)
            self.emb = nn.Embedding(20, 8)
            self.lin = nn.Linear(8, 6)

        def forward(self, input_ids, attention_mask=None):
            return self.lin(torch.tanh(self.emb(input_ids)))

    g = torch.Generator().manual_seed(9)
    x = []
    for _ in range(4):
        ids = torch.randint(0, 20, (30, 7), generator=g)
        keep = torch.arange(7) < torch.randint(2, 8, (30, 1), generator=g)  # right padding
        x.append({"input_ids": ids, "attention_mask": keep.long()})
    a, b = Tok(0), Tok(1)
    layers = ["emb", "lin"]
    for mask in ("auto", None):
        r = st.compare(a, b, x, layers, sequence="mean", mask=mask)
        ref = pairwise_of_captures(a, b, x, layers, layers, sequence="mean", mask=mask)
        np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=tol(factor=2 * 120))
    masked = st.compare(a, b, x, layers, sequence="samples")
    assert masked.n_samples == int(sum(int(d["attention_mask"].sum()) for d in x))  # real tokens
    padded = st.compare(a, b, x, layers, sequence="samples", mask=None)
    assert padded.n_samples == 4 * 30 * 7


def test_conv_layers_are_forwarded_with_per_model_keys():
    class Res(nn.Module):  # a (n, c, L) map from a module that is not conv-type itself
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 4, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x)) + x.repeat(1, 2, 1)

    def net(seed):
        torch.manual_seed(seed)
        return nn.Sequential(Res(), nn.Flatten(), nn.Linear(4 * 9, 3))

    a, b = net(0), net(1)
    x = batches(120, (2, 9), 40, seed=6)
    r = st.compare(a, b, x, ["0", "2"], conv_layers=["0"])
    ref = pairwise_of_captures(a, b, x, ["0", "2"], ["0", "2"], conv="mean", conv_layers=["0"])
    np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=tol(factor=2 * 120))
    one = st.compare(a, b, x, ["0"], ["2"], conv_layers=["a.0"])  # model_a's layer only
    assert one.values[0, 0] == pytest.approx(ref.values[0, 1], abs=tol(factor=2 * 120))
    with pytest.raises(ValueError, match="conv_layers names 'zz', which is in neither"):
        st.compare(a, b, x, ["0"], conv_layers=["zz"])


def test_repeated_calls_are_named_or_expanded():
    class Twice(nn.Module):
        def __init__(self, seed):
            super().__init__()
            torch.manual_seed(seed)
            self.inp = nn.Linear(6, 8)
            self.blk = nn.Linear(8, 8)

        def forward(self, x):
            return self.blk(torch.tanh(self.blk(torch.tanh(self.inp(x)))))

    a, b = Twice(0), Twice(1)
    x = batches(100, (6,), 25, seed=7)
    r = st.compare(a, b, x, ["blk"], ["inp", "blk"], calls="each")
    assert r.rows == ("blk#0", "blk#1") and r.cols == ("inp", "blk#0", "blk#1")
    A = st.capture(a, x, ["blk"], calls="each", dtype=np.float64)
    B = st.capture(b, x, ["inp", "blk"], calls="each", dtype=np.float64)
    ref = svcca.pairwise(A, B, measure="cka_linear")
    assert ref.rows == r.rows and ref.cols == r.cols
    np.testing.assert_allclose(r.values, ref.values, rtol=0, atol=tol(factor=2 * 100))
    named = st.compare(a, b, x, ["blk#1"], ["blk#0"])
    assert named.values[0, 0] == pytest.approx(r["blk#1", "blk#0"], abs=tol(factor=2 * 100))
    with pytest.raises(ValueError, match=r"Module 'a\.blk' ran 2 times"):
        st.compare(a, b, x, ["blk"])


def test_memory_does_not_grow_with_the_number_of_inputs():
    import tracemalloc

    a, b = mlp(0), mlp(1)
    peaks = []
    for n in (1000, 8000):
        x = batches(n, (6,), 100, seed=8)
        tracemalloc.start()
        st.compare(a, b, x, ["1", "3", "5"], measure="cca")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # stored activations would take 8000 x 66 float64 (4 MiB) on the larger run alone;
    # what compare keeps is one batch and 33 x 33 sums
    assert peaks[1] < 1.5 * peaks[0] + 2**18, peaks


def test_docs_section_runs():
    """docs/torch.md's "Model against model" example, as written."""
    import re
    from pathlib import Path

    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = (Path(__file__).resolve().parents[2] / "docs" / "torch.md").read_text()
    section = text.split("## Model against model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    namespace: dict = {}
    try:
        for code in blocks:
            exec(compile(code, "docs/torch.md", "exec"), namespace)  # the blocks assert
    finally:
        plt.close("all")


def test_a_shuffling_loader_is_fine_here():
    """Both models see each batch together and moments do not depend on the order, so the
    capture's shuffling warning (meant for captures compared with other captures) is not
    given, and the result is the unshuffled one."""
    import warnings

    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(batches(300, (6,), 300, seed=10)[0])
    a, b = mlp(0), mlp(1)
    ordered = st.compare(a, b, DataLoader(ds, batch_size=50), ["1", "3"], measure="cca")
    loader = DataLoader(ds, batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shuffled = st.compare(a, b, loader, ["1", "3"], measure="cca")
    A = st.capture(a, DataLoader(ds, batch_size=50), ["1", "3"])
    np.testing.assert_allclose(shuffled.values, ordered.values, rtol=0, atol=bound("cca", 300, A))


@pytest.mark.parametrize("measure", MOMENT_MEASURES)
def test_float32_precision_equals_pairwise_of_float32_captures(measure):
    # float32 products of at most 4096 rows into float64 sums, on both paths: they agree
    # to float32 round-off (64 sqrt(r) eps_32 of each entry, times the conditioning),
    # and differ from the float64 result by the same order, not more.
    a, b = mlp(0), mlp(1)
    x = batches(3000, (6,), 500)
    la, lb = ["1", "3", "5"], ["1", "3", "5"]
    kw = {"keep": 4} if measure == "svcca" else {}
    r32 = st.compare(a, b, x, la, lb, measure=measure, precision="float32", **kw)
    r64 = st.compare(a, b, x, la, lb, measure=measure, **kw)
    A, B = st.capture(a, x, la), st.capture(b, x, lb)
    ref = svcca.pairwise(A, B, measure=measure, precision="float32", **kw)
    c = 1.0 if measure in ("cka_linear", "pls") else cond({**A, **B})
    bound32 = tol(np.float32, cond=c, factor=64 * 64)
    np.testing.assert_allclose(r32.values, ref.values, rtol=0, atol=bound32)
    np.testing.assert_allclose(r32.values, r64.values, rtol=0, atol=bound32)
    assert not np.array_equal(r32.values, r64.values)
    with pytest.raises(ValueError, match="minibatch CKA accumulates"):
        st.compare(a, b, x, la, lb, measure="cka_minibatch", precision="float32")


def test_cka_minibatch_names_a_last_batch_too_small():
    a, b = mlp(0), mlp(1)
    x = batches(203, (6,), 50)  # the last batch has 3 rows
    with pytest.raises(ValueError, match=r"Batch 4 holds 3 datapoints.*drop_last=True"):
        st.compare(a, b, x, ["1"], ["1"], measure="cka_minibatch")
