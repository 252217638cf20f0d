"""svcca.torch.compare's accumulation (svcca._moments.CrossMoments) where it splits and
shares work: batches longer than a float32 chunk, and a layer in both the rows and the
columns of a rectangular comparison of a model with itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import svcca  # noqa: E402
import svcca.torch as st  # noqa: E402
from conftest import tol  # noqa: E402


def mlp(seed: int) -> Any:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 7), nn.Tanh())


def inputs(n: int, size: int, seed: int = 0) -> list[Any]:
    g = torch.Generator().manual_seed(seed)
    return list(torch.randn(n, 5, generator=g).split(size))


def captured(model: Any, x: list[Any], layers: list[str]) -> dict:
    return st.capture(model, x, layers, dtype=np.float64)


def test_a_layer_in_rows_and_columns_of_one_model_is_added_once():
    # Rows (1, 3) and columns (3, 1) of the same model: not square, every layer shared.
    net, x = mlp(0), inputs(900, 300)
    got = st.compare(net, net, x, ["1", "3"], ["3", "1"], measure="cka_linear")
    acts = captured(net, x, ["1", "3"])
    want = svcca.pairwise(
        {"1": acts["1"], "3": acts["3"]}, {"3": acts["3"], "1": acts["1"]}, measure="cka_linear"
    )
    # two float64 accumulations of 900-term sums in another order: n eps relative
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=tol(factor=2 * 900))
    assert got["1", "1"] == pytest.approx(1.0, abs=tol(factor=2 * 900))
    assert got["3", "3"] == pytest.approx(1.0, abs=tol(factor=2 * 900))


def test_float32_batches_longer_than_a_chunk_equal_the_float64_scores():
    # One 9000-row batch: float32 products run in chunks of at most 4096 rows inside it.
    a, b, x = mlp(0), mlp(1), inputs(9000, 9000)
    f32 = st.compare(a, b, x, ["1", "3"], measure="cka_linear", precision="float32")
    f64 = st.compare(a, b, x, ["1", "3"], measure="cka_linear")
    # float32 products of <= 4096 terms into float64 sums: CKA moves by about
    # sqrt(4096) eps_32 relative (docs/precision.md), far below 1e-4
    np.testing.assert_allclose(f32.values, f64.values, rtol=0, atol=tol(np.float32, factor=640))
    cca32 = st.compare(a, b, x, ["3"], measure="cca", precision="float32")
    cca64 = st.compare(a, b, x, ["3"], measure="cca")
    acts = captured(a, x, ["3"])
    c = float(np.linalg.cond(np.corrcoef(acts["3"], rowvar=False)))
    np.testing.assert_allclose(
        cca32.values, cca64.values, rtol=0, atol=tol(np.float32, cond=c, factor=640)
    )


def test_nan_in_a_split_batch_names_the_rows_and_the_span():
    a, b = mlp(0), mlp(1)
    x = inputs(9000, 9000)
    x[0] = x[0].clone()
    x[0][5000, 1] = float("nan")  # in the second float32 chunk of the batch
    with pytest.raises(
        ValueError,
        match=r"Layer '1' of model_a contains NaN or inf in rows \[5000\] \(first shown; of "
        r"rows 4096:8192\) \(batch 0\)\. Remove or impute",
    ):
        st.compare(a, b, x, ["1"], measure="cka_linear", precision="float32")
