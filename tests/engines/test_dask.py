"""Dask arrays: blockwise moments and tree reduction match in-memory results."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import latent_layers
from svcca import pairwise

da = pytest.importorskip("dask.array")


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def layers(n=1200, widths=(8, 11, 6), seed=0):
    """Three layers of a shared latent, layer i offset by i (means to shift away)."""
    return latent_layers(n, widths, seed=seed, latent=4, noise=0.1, offset_step=1.0)


def test_moments_match_in_memory_with_ragged_misaligned_chunks():
    reps = layers()
    X, Y = reps["l0"], reps["l1"]
    # features split too, row blocks not aligned with X's: more than 8 blocks in common,
    # so the merge tree (fan-in 8) has more than one level
    dx = da.from_array(X, chunks=((100, 50, 450, 30, 570), (3, 5)))
    dy = da.from_array(Y, chunks=(110, -1))
    m, ref = svcca.Moments.from_arrays(dx, dy), svcca.Moments.from_arrays(X, Y)
    assert m.n == ref.n
    for key in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
        np.testing.assert_allclose(getattr(m, key), getattr(ref, key), rtol=1e-12, atol=1e-10)


def test_measures_accept_dask_arrays():
    reps = layers(seed=1)
    X, Y = reps["l0"], reps["l2"]
    dx, dy = da.from_array(X, chunks=(300, -1)), da.from_array(Y, chunks=(300, -1))
    np.testing.assert_allclose(
        svcca.cca(dx, dy).correlations, svcca.cca(X, Y).correlations, atol=1e-10
    )
    assert svcca.svcca(dx, dy).score == pytest.approx(svcca.svcca(X, Y).score, abs=1e-10)
    np.testing.assert_allclose(svcca.pca(dx).eigenvalues, svcca.pca(X).eigenvalues, atol=1e-10)
    # a dask array and a NumPy array together
    assert svcca.pwcca(dx, Y).score == pytest.approx(svcca.pwcca(X, Y).score, abs=1e-10)


def test_pairwise_on_the_local_scheduler_and_mixed_inputs():
    reps = layers(seed=2)
    ref = pairwise(reps, measure="svcca")
    dreps = {k: da.from_array(v, chunks=(400, -1)) for k, v in reps.items()}
    np.testing.assert_allclose(pairwise(dreps, measure="svcca").values, ref.values, atol=1e-10)
    mixed = {"l0": dreps["l0"], "l1": reps["l1"], "l2": dreps["l2"]}
    np.testing.assert_allclose(pairwise(mixed, measure="svcca").values, ref.values, atol=1e-10)


def test_dask_errors():
    x = da.from_array(np.zeros((10, 2)), chunks=5)
    with pytest.raises(ValueError, match="'Y' has 9 samples but 'X' has 10"):
        svcca.Moments.from_arrays(x, da.zeros((9, 2)))
    unknown = x[x[:, 0] > 0]  # unknown row count
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        svcca.cca(unknown, unknown)
    with pytest.raises(ValueError, match="must be 2-D"):
        svcca.cca(da.zeros((10, 2, 2)), x)


def test_local_cluster_with_two_worker_processes(dask_client):
    """A real distributed cluster (the session's): 2 worker processes on localhost."""
    distributed = pytest.importorskip("distributed")
    client = dask_client
    reps = layers(n=900, seed=3)
    ref_pairs = pairwise(reps, measure="cca")
    ref_svcca = svcca.svcca(reps["l0"], reps["l1"]).score
    assert len(client.nthreads()) == 2
    dreps = {k: da.from_array(v, chunks=(150, -1)) for k, v in reps.items()}
    with distributed.get_task_stream(client) as ts:
        got = pairwise(dreps, measure="cca")
        score = svcca.svcca(dreps["l0"], dreps["l1"]).score
    workers = set(client.nthreads())
    block_tasks = [t for t in ts.data if "_block_stat" in str(t["key"])]
    # 3 representations x 6 blocks for pairwise, 2 x 6 for svcca: all ran on workers
    assert len(block_tasks) == 3 * 6 + 6
    assert {t["worker"] for t in block_tasks} <= workers
    np.testing.assert_allclose(got.values, ref_pairs.values, rtol=0, atol=1e-10)
    assert score == pytest.approx(ref_svcca, abs=1e-10)
