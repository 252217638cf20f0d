"""Dask blocks: empty blocks add nothing, rows are numbered within the whole array, and
Moments.from_arrays of a dask array never gathers the array on the client."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import svcca
from conftest import linear_pair

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def data(n=240, p=6, q=4, seed=0):
    """X offset by 5 (a mean to shift away), Y linear in X's first q features."""
    return linear_pair(n, p, q, seed=seed, x_offset=5.0)


def close(a: svcca.Moments, b: svcca.Moments) -> None:
    """Equal to the round-off of their precision: the sums of n terms taken in another
    order differ by up to n eps times their scale, the means by eps times theirs."""
    assert a.n == b.n
    eps = max(a.eps, b.eps)
    mean = max(float(np.abs(b.mean_x).max()), float(np.abs(b.mean_y).max()))
    scale = max(float(np.abs(b.sxx).max()), float(np.abs(b.syy).max()))
    for key in ("mean_x", "mean_y"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=0, atol=10 * eps * mean)
    for key in ("sxx", "syy", "sxy"):
        np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=0, atol=a.n * eps * scale)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_empty_row_blocks_add_nothing(dask_client, precision, tol):
    X, Y = data()
    rows = ((0, 100, 0, 140, 0),)
    dx = da.from_array(X, chunks=rows + ((6,),))
    dy = da.from_array(Y, chunks=rows + ((4,),))
    ref = svcca.Moments.from_arrays(X, Y, precision=precision)
    close(svcca.Moments.from_arrays(dx, dy, precision=precision), ref)
    # correlations move by the entries' round-off times the whitened blocks' condition
    cond = max(np.linalg.cond(np.corrcoef(A, rowvar=False)) for A in (X, Y))
    eps_dtype = np.float32 if precision == "float32" else np.float64
    assert svcca.cca(dx, dy, precision=precision).score == pytest.approx(
        svcca.cca(X, Y, precision=precision).score, abs=tol(eps_dtype, cond=cond, factor=100)
    )
    np.testing.assert_allclose(
        svcca.pairwise({"x": dx, "y": dy}, measure="cca").values,
        svcca.pairwise({"x": X, "y": Y}, measure="cca").values,
        atol=1e-9,
    )


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_nan_rows_are_numbered_within_the_whole_array(dask_client, precision):
    X, Y = data()
    X[137, 2] = np.nan
    dx = da.from_array(X, chunks=(50, -1))  # row 137 is row 37 of the third block
    with pytest.raises(ValueError, match=r"X contains NaN or inf in rows \[137\]"):
        svcca.cca(dx, Y, precision=precision)
    with pytest.raises(ValueError, match=r"X contains NaN or inf in rows \[137\]"):
        svcca.Moments.from_arrays(dx, precision=precision)
    with pytest.raises(ValueError, match=r"Representation 'a' contains NaN or inf in rows \[137\]"):
        svcca.pairwise({"a": dx, "b": Y}, precision=precision)


def test_masked_blocks_are_refused_with_rows_of_the_whole_array(dask_client):
    X, Y = data()
    mask = np.zeros(X.shape, dtype=bool)
    mask[[3, 170], 0] = True
    mx = da.from_array(np.ma.masked_array(X, mask=mask), chunks=(60, -1), asarray=False)
    with pytest.raises(
        ValueError,
        match=r"X is a NumPy masked array .* \(first: \[170\]\)"
        "|X is a NumPy masked array .* \\(first: \\[3\\]\\)",
    ):
        svcca.cca(mx, Y)
    one = da.from_array(np.ma.masked_array(X, mask=mask), chunks=(120, -1), asarray=False)
    with pytest.raises(
        ValueError,
        match=r"masked array with 1 masked values in 1 rows "
        r"\(first: \[50\]\)",
    ):
        svcca.Moments.from_arrays(one[120:])  # row 170 of X is row 50 of this array


def test_moments_from_arrays_of_a_dask_array_stays_on_the_workers(dask_client):
    # 200,000 x 60 float64 = 96 MB, made on the workers block by block
    X = da.random.RandomState(0).standard_normal((200_000, 60), chunks=(20_000, 60))
    Y = X[:, :20] * 2.0 + 1.0
    tracemalloc.start()
    try:
        with distributed.get_task_stream(dask_client) as ts:
            m = svcca.Moments.from_arrays(X, Y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert m.n == 200_000 and (m.p, m.q) == (60, 20)
    assert peak < 8 * 2**20, f"the client allocated {peak / 2**20:.1f} MiB"
    blocks = [t for t in ts.data if "_block_stat" in str(t["key"])]
    assert len(blocks) == 10
    assert {t["worker"] for t in blocks} <= set(dask_client.nthreads())
    # the same numbers as the per-block path every measure takes
    np.testing.assert_allclose(m.sxy[:20], 2.0 * m.sxx[:20, :20], rtol=1e-12, atol=1e-6)


def test_sparse_blocks_are_refused_with_toarray(dask_client):
    sp = pytest.importorskip("scipy.sparse")
    X, Y = data()
    d = da.from_array(sp.csr_matrix(X), chunks=(120, -1), asarray=False)
    with pytest.raises(TypeError, match=r"X is a scipy.sparse csr_matrix .*X\.toarray\(\)"):
        svcca.cca(d, Y)
