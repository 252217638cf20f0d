"""pairwise(..., uncertainty="jackknife") of torch tensors whose work runs on a device:
the block statistics are accumulated there (one TorchAccumulator per block) and every
cell equals the NumPy path's. CI has no GPU: ``on_device("cpu")`` runs the same torch
code on the CPU; the ``gpu`` test repeats it on CUDA (``-m gpu``)."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import tol

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_blas_thread")

HAS_CUDA = bool(torch.cuda.is_available())
FIELDS = ("values", "corrected", "standard_errors", "low", "high")

# The same rows in the same blocks; the sums are grouped differently (a torch
# accumulator per block, shifted by that block's first rows' mean, against the host's
# chunk-by-chunk Moments updates) and the cells' kernels run in torch: round-off moved
# through G subtractions, the whitening of blocks of condition a few tens, the logit
# scale's slope and the jackknife's sqrt(G) (tests/uncertainty/test_pairwise_cells.py).
ATOL = tol(cond=1e3, factor=100.0)


def _reps(n=900, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    return {
        f"l{i}": Z @ rng.standard_normal((3, p)) + rng.standard_normal((n, p)) + 5.0 * i
        for i, p in enumerate((5, 4, 6))
    }


def _assert_same(got, ref):
    for key in FIELDS:
        np.testing.assert_allclose(getattr(got, key), getattr(ref, key), rtol=0, atol=ATOL)
    assert got.uncertainty == ref.uncertainty
    assert got.dims_rows == ref.dims_rows and got.dims_cols == ref.dims_cols


def _run_on(device, measure, kw):
    reps = _reps()
    # float32 tensors widen exactly; chunks of 100 rows: 9 chunks, every block in several
    tensors = {k: torch.as_tensor(v, device=device) for k, v in reps.items()}
    tensors["l1"] = tensors["l1"].float()
    ref_f32 = {**reps, "l1": reps["l1"].astype(np.float32)}
    ref = svcca.pairwise(ref_f32, measure=measure, uncertainty="jackknife", blocks=7, seed=2, **kw)
    with svcca.on_device(device):
        got = svcca.pairwise(
            tensors, measure=measure, uncertainty="jackknife", blocks=7, seed=2,
            chunk_size=100, **kw,
        )  # fmt: skip
    _assert_same(got, ref)


@pytest.mark.parametrize(
    ("measure", "kw"),
    [("cca", {}), ("svcca", {"keep": 3}), ("pwcca", {}), ("cka_linear", {})],
)
def test_cells_on_the_device_equal_the_numpy_path(measure, kw):
    _run_on("cpu", measure, kw)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (torch.cuda.is_available())")
@pytest.mark.parametrize(("measure", "kw"), [("cca", {}), ("svcca", {"keep": 3})])
def test_cells_on_cuda_equal_the_numpy_path(measure, kw):
    _run_on("cuda", measure, kw)


def test_the_block_sums_are_planned_on_the_device(monkeypatch):
    reps = {k: torch.as_tensor(v) for k, v in _reps(n=300).items()}
    # P = 15: the 21 host statistics (21 x 1.9 KiB) fit in half of 128 KiB; the 20 device
    # sums (40 KiB) and 256 rows of 4 float64 copies (120 KiB) do not fit in 80% of it
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "128K")
    with svcca.on_device("cpu"):
        with pytest.raises(svcca.DeviceMemoryError, match=r"sums on the device\) needs .* on cpu"):
            svcca.pairwise(reps, measure="cca", uncertainty="jackknife", blocks=20)
    # the host path plans only its statistics: it runs
    host = {k: v.numpy() for k, v in reps.items()}
    assert svcca.pairwise(host, measure="cca", uncertainty="jackknife", blocks=20).low is not None


def test_nan_is_reported_by_representation_and_global_row():
    reps = _reps(n=300)
    reps["l2"][233, 0] = np.inf
    tensors = {k: torch.as_tensor(v) for k, v in reps.items()}
    with svcca.on_device("cpu"):
        with pytest.raises(
            ValueError, match=r"Representation 'l2' contains NaN or inf in rows \[233\]"
        ):
            svcca.pairwise(tensors, measure="cca", uncertainty="jackknife", chunk_size=100)
    with pytest.raises(
        ValueError, match=r"Representation 'l2' contains NaN or inf in rows \[233\]"
    ):
        svcca.pairwise(reps, measure="cca", uncertainty="jackknife", chunk_size=100)


def test_arrays_mixed_with_device_tensors_are_refused():
    reps = _reps(n=200)
    mixed = {"l0": torch.as_tensor(reps["l0"]), "l1": reps["l1"]}
    with svcca.on_device("cpu"):
        with pytest.raises(TypeError, match=r"must be a torch tensor on cpu"):
            svcca.pairwise(mixed, measure="cca", uncertainty="jackknife")


def test_measures_served_per_pair_read_device_tensors():
    reps = _reps(n=200)
    tensors = {k: torch.as_tensor(v) for k, v in reps.items()}
    kw = {"measure": "cka_rbf", "params": {"bandwidth": 0.8}, "uncertainty": "jackknife"}
    ref = svcca.pairwise(reps, blocks=5, **kw)
    with svcca.on_device("cpu"):
        _assert_same(svcca.pairwise(tensors, blocks=5, **kw), ref)


def test_remaining_refusals_hold_on_the_device():
    tensors = {k: torch.as_tensor(v) for k, v in _reps(n=200).items()}
    with svcca.on_device("cpu"):
        with pytest.raises(ValueError, match="sketch_size exists to avoid"):
            svcca.pairwise(tensors, keep=2, sketch_size=8, uncertainty="jackknife")
        with pytest.raises(ValueError, match="keeps float64 block statistics"):
            svcca.pairwise(tensors, measure="cca", precision="float32", uncertainty="jackknife")
