"""pairwise(..., uncertainty="jackknife") of dask arrays: the block statistics are made
per row block on the workers of a real cluster and tree-reduced; every cell equals the
NumPy path's, whatever the chunking; memory is planned on the client and the workers."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import tol

da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.usefixtures("one_blas_thread")

FIELDS = ("values", "corrected", "standard_errors", "low", "high")

# Both paths add the same rows to the same blocks (block_of of the global row index);
# only the grouping of the sums differs (per row block merged up a tree, against chunk
# by chunk): the round-off of the sums, moved through G subtractions (~ eps n / n_a),
# the whitening of blocks of condition a few tens, the logit scale's slope and the
# jackknife's sqrt(G): the tolerance of tests/uncertainty/test_pairwise_cells.py.
ATOL = tol(cond=1e3, factor=100.0)


def _reps(n=900, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    return {  # offsets 0, 5, 10: means to shift away
        f"l{i}": Z @ rng.standard_normal((3, p)) + rng.standard_normal((n, p)) + 5.0 * i
        for i, p in enumerate((5, 4, 6))
    }


def _uneven(reps):
    """Each representation with its own uneven row chunks (one of a single row), one
    with its features split, and one left as NumPy."""
    return {
        "l0": da.from_array(reps["l0"], chunks=((100, 350, 1, 449), (2, 3))),
        "l1": da.from_array(reps["l1"], chunks=(123, -1)),
        "l2": reps["l2"],
    }


def _assert_same(got, ref):
    for key in FIELDS:
        np.testing.assert_allclose(getattr(got, key), getattr(ref, key), rtol=0, atol=ATOL)
    assert got.uncertainty == ref.uncertainty
    assert got.dims_rows == ref.dims_rows and got.dims_cols == ref.dims_cols


@pytest.mark.parametrize(
    ("measure", "kw"),
    [("cca", {}), ("svcca", {"keep": 3}), ("pwcca", {}), ("cka_linear", {})],
)
def test_cells_on_a_cluster_equal_the_numpy_path(dask_client, measure, kw):
    from distributed import get_task_stream

    reps = _reps()
    ref = svcca.pairwise(reps, measure=measure, uncertainty="jackknife", blocks=7, seed=2, **kw)
    with get_task_stream(dask_client) as stream:
        got = svcca.pairwise(
            _uneven(reps), measure=measure, uncertainty="jackknife", blocks=7, seed=2, **kw
        )
    _assert_same(got, ref)
    # the block statistics were made on the workers, one task per row block of the
    # first array (the others are rechunked to its 4 row blocks)
    leaves = [t for t in stream.data if "_leaf_stats" in str(t["key"])]
    workers = set(dask_client.scheduler_info()["workers"])
    assert len(leaves) == 4 and {t["worker"] for t in leaves} <= workers


def test_rectangular_and_a_single_row_block(dask_client):
    reps = _reps(n=400, seed=1)
    rows = {"a": reps["l0"], "b": reps["l1"]}
    cols = {"c": reps["l2"], "a2": reps["l0"]}
    ref = svcca.pairwise(rows, cols, measure="pwcca", uncertainty="jackknife", blocks=5)
    one = {k: da.from_array(v, chunks=(-1, -1)) for k, v in rows.items()}
    many = {k: da.from_array(v, chunks=(37, -1)) for k, v in cols.items()}
    _assert_same(svcca.pairwise(one, many, measure="pwcca", uncertainty="jackknife", blocks=5), ref)


def test_local_scheduler_many_row_blocks_a_numpy_array_first():
    # more than 8 row blocks: each block's merge tree has two levels; the NumPy array
    # first takes the dask arrays' row blocks
    reps = _reps(n=700, seed=3)
    dreps = {k: da.from_array(v, chunks=(41, -1)) for k, v in reps.items()}
    dreps["l0"] = reps["l0"]
    ref = svcca.pairwise(reps, measure="pls", uncertainty="jackknife", blocks=4, seed=9)
    _assert_same(
        svcca.pairwise(dreps, measure="pls", uncertainty="jackknife", blocks=4, seed=9), ref
    )


def test_nan_is_reported_by_representation_and_global_row(dask_client):
    reps = _reps(n=300)
    reps["l1"][217, 2] = np.nan
    dreps = {k: da.from_array(v, chunks=(100, -1)) for k, v in reps.items()}
    with pytest.raises(
        ValueError, match=r"Representation 'l1' contains NaN or inf in rows \[217\]"
    ):
        svcca.pairwise(dreps, measure="cca", uncertainty="jackknife", blocks=4)


def test_measures_served_per_pair_read_dask_arrays():
    reps = _reps(n=200)
    dreps = {k: da.from_array(v, chunks=(64, -1)) for k, v in reps.items()}
    kw = {"measure": "cka_rbf", "params": {"bandwidth": 0.8}, "uncertainty": "jackknife"}
    _assert_same(svcca.pairwise(dreps, blocks=5, **kw), svcca.pairwise(reps, blocks=5, **kw))


def test_statistics_that_do_not_fit_the_client_are_refused_before_computing():
    rng = np.random.default_rng(0)
    wide = {k: da.from_array(rng.standard_normal((3, 3000))) for k in "ab"}
    # 100001 statistics of 6000^2 float64 entries: about 29 TB
    with pytest.raises(svcca.DeviceMemoryError, match=r"MiB, more than half the free host"):
        svcca.pairwise(wide, measure="cka_linear", uncertainty="jackknife", blocks=100_000)


def test_statistics_that_do_not_fit_a_worker_are_refused_before_computing():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(0)
    reps = {k: da.from_array(rng.standard_normal((50, 300)), chunks=(25, -1)) for k in "ab"}
    # P = 600: a leaf holds 20 statistics of 600^2 float64 entries (55 MiB), more than
    # half of a 64 MB worker; the client's 21 fit in any test machine's free memory
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, memory_limit="64MB",
            dashboard_address=":0",
        ) as cluster,
        distributed.Client(cluster),
    ):  # fmt: skip
        with pytest.raises(svcca.DeviceMemoryError, match=r"per task on a dask worker.*rechunk"):
            svcca.pairwise(reps, measure="cka_linear", uncertainty="jackknife", blocks=20)


def test_remaining_refusals_hold_for_dask_inputs():
    reps = {k: da.from_array(v, chunks=(100, -1)) for k, v in _reps(n=200).items()}
    with pytest.raises(ValueError, match="sketch_size exists to avoid"):
        svcca.pairwise(reps, keep=2, sketch_size=8, uncertainty="jackknife")
    with pytest.raises(ValueError, match="keeps float64 block statistics"):
        svcca.pairwise(reps, measure="cca", precision="float32", uncertainty="jackknife")
