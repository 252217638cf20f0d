"""svcca.pairwise(..., uncertainty="jackknife"): every cell's interval, from one pass,
equals svcca.stats.interval on that pair with the same blocks; every path it does not
serve is refused with the reason; without it the result is what it was."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import svcca
from conftest import tol


def _reps(n=1200, k=3, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 3))
    widths = (5, 4, 6)[:k]
    return {
        f"l{i}": Z @ rng.standard_normal((3, p)) + rng.standard_normal((n, p))
        for i, p in enumerate(widths)
    }


FIELDS = ("corrected", "standard_error", "low", "high", "estimate")


def _cell(r, i, j):
    return {
        "corrected": r.corrected[i, j],
        "standard_error": r.standard_errors[i, j],
        "low": r.low[i, j],
        "high": r.high[i, j],
        "estimate": r.values[i, j],
    }


def _assert_cells_equal(r, rows, cols, measure, params, blocks, seed, atol):
    for i, a in enumerate(rows):
        for j, b in enumerate(cols):
            s = svcca.stats.interval(
                rows[a], cols[b], measure=measure, blocks=blocks, seed=seed, params=params
            )
            got = _cell(r, i, j)
            for f in FIELDS:
                assert got[f] == pytest.approx(getattr(s, f), abs=atol), (a, b, f)


# The engine slices each pair's block statistics out of one side-by-side statistic, the
# single-pair path accumulates that pair alone: the same sums in another order, then G
# subtractions (relative round-off ~ eps n / n_a, n_a = n (1 - 1/G)) and the measure's
# whitening (cond of the Gram blocks, a few tens here), moved by the logit scale's slope
# (1 / (v (1 - v)) <= 10 for these scores) and the jackknife's factor sqrt(G) on the se.
ATOL = tol(cond=1e3, factor=100.0)


@pytest.mark.parametrize(
    ("measure", "params"),
    [("cca", {}), ("cka_linear", {}), ("svcca", {"keep": 3}), ("pwcca", {}), ("pls", {})],
)
def test_each_cell_equals_the_single_pair_interval(measure, params):
    reps = _reps()
    r = svcca.pairwise(reps, measure=measure, uncertainty="jackknife", blocks=10, seed=3, **params)
    sizes = np.bincount(svcca.stats.block_of(np.arange(r.n_samples), 10, 3), minlength=10)
    assert r.uncertainty == {
        "method": "jackknife", "level": 0.95, "blocks": 10, "seed": 3, "blocks_used": 10,
        "block_sizes": tuple(sizes.tolist()),
    }  # fmt: skip
    assert r.replicates.shape == (10, *r.shape)
    _assert_cells_equal(r, reps, reps, measure, params, 10, 3, ATOL)
    default = svcca.pairwise(reps, measure=measure, **params)
    np.testing.assert_allclose(r.values, default.values, rtol=0, atol=ATOL)
    assert r.dims_rows == default.dims_rows and r.dims_cols == default.dims_cols
    assert ((r.low <= r.corrected) & (r.corrected <= r.high)).all()


def test_rectangular_with_a_shared_representation_and_an_asymmetric_measure():
    reps = _reps()
    rows = {"a": reps["l0"], "b": reps["l1"]}
    cols = {"b": reps["l1"], "c": reps["l2"], "a2": reps["l0"]}
    r = svcca.pairwise(rows, cols, measure="pwcca", uncertainty="jackknife", blocks=7, level=0.9)
    assert r.shape == (2, 3) and r.low.shape == (2, 3)
    for i, a in enumerate(rows):
        for j, b in enumerate(cols):
            s = svcca.stats.interval(rows[a], cols[b], measure="pwcca", blocks=7, level=0.9)
            assert r.high[i, j] == pytest.approx(s.high, abs=ATOL)
            assert r.corrected[i, j] == pytest.approx(s.corrected, abs=ATOL)


@pytest.mark.parametrize(
    ("measure", "params"), [("cka_rbf", {"bandwidth": 0.8}), ("mutual_knn", {})]
)
def test_measures_served_per_pair_get_the_rows_jackknife(measure, params):
    reps = _reps(n=240)
    r = svcca.pairwise(
        reps, measure=measure, params=params, uncertainty="jackknife", blocks=6, seed=2
    )
    # the same sides and combines in the same order: equal to the single call's
    _assert_cells_equal(r, reps, reps, measure, params, 6, 2, tol(cond=1e2))


def test_default_result_has_no_intervals_and_is_unchanged():
    reps = _reps(n=300)
    r = svcca.pairwise(reps, measure="cka_linear")
    assert r.uncertainty is None and r.corrected is None and r.low is None
    assert "uncertainty" not in r.to_dict() and "uncertainty" not in r.to_pandas().attrs
    assert list(r.cells_to_pandas().columns) == ["row", "col", "value"]


def test_results_carry_the_intervals_to_pandas_and_json():
    reps = _reps(n=600, k=2)
    r = svcca.pairwise(reps, measure="cca", uncertainty="jackknife", blocks=5)
    with pytest.raises(ValueError, match="read-only"):
        r.low[0, 0] = 0.0
    d = json.loads(json.dumps(r.to_dict()))
    assert d["uncertainty"]["blocks"] == 5 and np.allclose(d["high"], r.high)
    df = r.to_pandas()
    assert df.attrs["uncertainty"]["method"] == "jackknife"
    np.testing.assert_array_equal(df.attrs["standard_errors"], r.standard_errors)
    long = r.cells_to_pandas()
    assert list(long.columns) == ["row", "col", "value", "corrected", "se", "low", "high"]
    assert len(long) == 4 and long.loc[1, "row"] == "l0" and long.loc[1, "col"] == "l1"
    assert long.loc[1, "low"] == r.low[0, 1]


def test_coverage_warning_below_twenty_rows_per_feature():
    reps = _reps(n=150, k=2)  # 150 < 20 (5 + 4)
    with pytest.warns(svcca.SVCCAWarning, match="measured coverage of these intervals"):
        svcca.pairwise(reps, measure="cka_linear", uncertainty="jackknife", blocks=5)


def test_bad_keywords_are_refused():
    reps = _reps(n=200, k=2)
    with pytest.raises(ValueError, match="uncertainty must be None or 'jackknife'"):
        svcca.pairwise(reps, measure="cca", uncertainty="bootstrap")
    with pytest.raises(ValueError, match="blocks must be an int >= 2"):
        svcca.pairwise(reps, measure="cca", uncertainty="jackknife", blocks=1)
    with pytest.raises(ValueError, match="level must be a number in"):
        svcca.pairwise(reps, measure="cca", uncertainty="jackknife", level=95)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        svcca.pairwise(reps, measure="cka_rbf", uncertainty="jackknife", seed=-1)


def test_paths_not_served_are_refused_with_the_reason():
    reps = _reps(n=200, k=2)
    with pytest.raises(ValueError, match="sketch_size exists to avoid"):
        svcca.pairwise(reps, keep=2, sketch_size=8, uncertainty="jackknife")
    with pytest.raises(ValueError, match="keeps float64 block statistics"):
        svcca.pairwise(reps, measure="cca", precision="float32", uncertainty="jackknife")
    # dask inputs and tensors on a device are served: tests/engines/test_dask_cell_blocks.py
    # and tests/engines/test_device_cell_blocks.py


def test_block_statistics_that_do_not_fit_are_refused_before_reading():
    rng = np.random.default_rng(0)
    wide = {"a": rng.standard_normal((3, 3000)), "b": rng.standard_normal((3, 3000))}
    # 100001 statistics of 6000^2 float64 entries: about 29 TB
    with pytest.raises(svcca.DeviceMemoryError, match=r"MiB, more than half the free host"):
        svcca.pairwise(wide, measure="cka_linear", uncertainty="jackknife", blocks=100_000)


@pytest.mark.parametrize("measure", ["cka_linear", "cka_rbf"])
def test_too_few_rows_or_blocks_for_a_jackknife_are_refused(measure):
    rng = np.random.default_rng(0)
    two = {"a": rng.standard_normal((2, 2)), "b": rng.standard_normal((2, 2))}
    three = {"a": rng.standard_normal((3, 2)), "b": rng.standard_normal((3, 2))}
    # a seed that puts the 3 rows in one of 2 blocks
    seed = next(s for s in range(100) if len(set(svcca.stats.block_of(range(3), 2, s))) == 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        with pytest.raises(ValueError, match="An interval needs at least 3 rows; got 2"):
            svcca.pairwise(two, measure=measure, uncertainty="jackknife", blocks=2)
        with pytest.raises(ValueError, match="Only 1 of 2 blocks hold rows"):
            svcca.pairwise(three, measure=measure, uncertainty="jackknife", blocks=2, seed=seed)


def test_intervals_do_not_depend_on_the_chunks_or_the_source(tmp_path):
    reps = _reps(n=700, k=2)
    np.save(tmp_path / "a.npy", reps["l0"])
    files = {"l0": np.load(tmp_path / "a.npy", mmap_mode="r"), "l1": reps["l1"]}
    whole = svcca.pairwise(reps, measure="cca", uncertainty="jackknife", blocks=9)
    chunked = svcca.pairwise(files, measure="cca", uncertainty="jackknife", blocks=9, chunk_size=37)
    # rows go to blocks by their global index: the same blocks, sums in another order
    for key in ("values", "corrected", "standard_errors", "low", "high"):
        np.testing.assert_allclose(getattr(chunked, key), getattr(whole, key), rtol=0, atol=ATOL)
