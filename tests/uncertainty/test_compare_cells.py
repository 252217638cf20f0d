"""svcca.torch.compare(..., uncertainty="jackknife"): every cell's interval, streamed batch
by batch, equals svcca.pairwise(..., uncertainty="jackknife") on the captured activations
with the same blocks and seed, whatever the batch size (blocks hash the global row
index); the paths it does not serve are refused with the reason."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import svcca  # noqa: E402
import svcca.torch as st  # noqa: E402
from conftest import tol  # noqa: E402

torch.set_num_threads(1)

FIELDS = ("values", "corrected", "standard_errors", "low", "high")
LAYERS = ["1", "3", "5"]


def _mlp(seed: int) -> Any:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 9), nn.Tanh(), nn.Linear(9, 7), nn.ReLU(), nn.Linear(7, 4), nn.Tanh()
    ).double()


def _inputs(n: int = 600, seed: int = 0) -> Any:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _captured(model: Any, x: Any) -> dict[str, np.ndarray]:
    acts = st.capture(model, list(x.split(100)), LAYERS, dtype=np.float64)
    return {k: np.asarray(acts[k]) for k in LAYERS}


# Both sides accumulate each block's statistic of all layers side by side from the same
# rows, in other chunks (batches here, pairwise's chunks there): the same sums in another
# order, then G subtractions and the measure's whitening (the layers' correlation
# matrices have condition numbers of a few hundred at most), the logit scale's slope and
# the jackknife's sqrt(G) on the se: pairwise's own tolerance for its per-cell equality.
ATOL = tol(cond=1e3, factor=100.0)


@pytest.mark.parametrize("measure", ["cka_linear", "cca", "svcca", "pwcca", "pls"])
def test_cells_equal_pairwise_on_the_captured_activations(measure):
    a, b, x = _mlp(0), _mlp(1), _inputs()
    ref = svcca.pairwise(
        _captured(a, x),
        _captured(b, x),
        measure=measure,
        uncertainty="jackknife",
        blocks=7,
        seed=3,
        level=0.9,
    )
    for size in (600, 64, 37):  # one batch, even batches, a ragged last batch
        got = st.compare(
            a,
            b,
            list(x.split(size)),
            LAYERS,
            measure=measure,
            uncertainty="jackknife",
            blocks=7,
            seed=3,
            level=0.9,
        )
        assert got.rows == ref.rows and got.cols == ref.cols
        assert got.uncertainty == ref.uncertainty
        assert got.settings == ref.settings and got.n_samples == ref.n_samples == 600
        for f in FIELDS:
            np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=0, atol=ATOL)
        assert np.all(got.low <= got.high)


def test_same_model_square_matrix_equals_pairwise():
    a, x = _mlp(2), _inputs(400, seed=1)
    acts = _captured(a, x)
    ref = svcca.pairwise(acts, measure="cka_linear", uncertainty="jackknife", blocks=5)
    got = st.compare(a, a, list(x.split(50)), LAYERS, uncertainty="jackknife", blocks=5)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=0, atol=ATOL)
    np.testing.assert_allclose(got.low, got.low.T, rtol=0, atol=0)  # mirrored, as pairwise


def test_per_pair_measure_uses_pairwise_per_pair_intervals():
    a, b, x = _mlp(0), _mlp(1), _inputs(300)
    ref = svcca.pairwise(
        _captured(a, x),
        _captured(b, x),
        measure="cka_linear_debiased",
        uncertainty="jackknife",
        blocks=4,
        seed=1,
    )
    got = st.compare(
        a,
        b,
        list(x.split(45)),
        LAYERS,
        measure="cka_linear_debiased",
        uncertainty="jackknife",
        blocks=4,
        seed=1,
    )
    for f in FIELDS:
        np.testing.assert_allclose(getattr(got, f), getattr(ref, f), rtol=0, atol=ATOL)


def test_default_is_unchanged():
    a, b, x = _mlp(0), _mlp(1), _inputs(300)
    got = st.compare(a, b, list(x.split(50)), LAYERS, measure="cca")
    assert got.uncertainty is None and got.low is None and got.standard_errors is None
    ref = svcca.pairwise(_captured(a, x), _captured(b, x), measure="cca")
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=ATOL)


def test_refusals_say_why():
    a, b, x = _mlp(0), _mlp(1), list(_inputs(200).split(50))
    with pytest.raises(ValueError, match=r"not served for measure='cka_minibatch'"):
        st.compare(a, b, x, LAYERS, measure="cka_minibatch", uncertainty="jackknife")
    with pytest.raises(ValueError, match=r"precision='float32' is for the accumulation"):
        st.compare(a, b, x, LAYERS, uncertainty="jackknife", precision="float32")
    with pytest.raises(ValueError, match=r"uncertainty must be None or 'jackknife'"):
        st.compare(a, b, x, LAYERS, uncertainty="bootstrap")
    with pytest.raises(ValueError, match=r"blocks"):
        st.compare(a, b, x, LAYERS, uncertainty="jackknife", blocks=1)


def test_blocks_that_do_not_fit_are_refused_with_the_size():
    a, b, x = _mlp(0), _mlp(1), list(_inputs(100).split(50))
    with pytest.raises(
        svcca.DeviceMemoryError,
        match=r"compare\(\.\.\., uncertainty='jackknife'\) over 6 layers of 40 features.*"
        r"MiB.*Use fewer blocks",
    ):
        st.compare(a, b, x, LAYERS, uncertainty="jackknife", blocks=10**9)


def test_few_rows_warning_points_at_the_call():
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(6, 30), nn.Tanh()).double()
    x = list(_inputs(200).split(50))
    with pytest.warns(svcca.SVCCAWarning, match=r"Jackknife intervals for 'cca' from 200") as w:
        st.compare(wide, wide, x, ["0", "1"], measure="cca", uncertainty="jackknife")
    assert any(r.filename == __file__ for r in w if "Jackknife" in str(r.message))


@pytest.mark.parametrize("measure", ["cca", "cka_linear", "svcca"])
def test_device_batches_keep_their_blocks_on_the_device_and_agree(measure):
    """Batches delivered as tensors (inside svcca.on_device; a GPU takes the same code)
    accumulate their block statistics on the device: the same cells as on the host."""
    a, b, x = _mlp(0), _mlp(1), list(_inputs(400).split(70))
    kw = {"keep": 3} if measure == "svcca" else {}
    host = st.compare(a, b, x, LAYERS, measure=measure, uncertainty="jackknife", blocks=6, **kw)
    with svcca.on_device("cpu"):
        dev = st.compare(a, b, x, LAYERS, measure=measure, uncertainty="jackknife", blocks=6,
                         **kw)  # fmt: skip
    for f in ("values", "corrected", "standard_errors", "low", "high", "replicates"):
        np.testing.assert_allclose(getattr(dev, f), getattr(host, f), rtol=0, atol=ATOL, err_msg=f)
    assert dev.uncertainty == host.uncertainty

