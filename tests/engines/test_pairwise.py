"""The all-pairs engine agrees with the single-pair functions, pair by pair."""

from __future__ import annotations

import json

import numpy as np
import pytest

import svcca
from conftest import latent_layers
from svcca import PairwiseResult, pairwise

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def layers(n: int = 800, widths=(12, 15, 9, 20), seed: int = 0, noise: float = 0.05):
    """Representations like real layers: a shared latent through tanh, plus noise."""
    return latent_layers(n, widths, seed=seed, latent=6, noise=noise)


SINGLE = {
    "cca": lambda a, b, **kw: svcca.cca(a, b, **kw).score,
    "svcca": lambda a, b, **kw: svcca.svcca(a, b, **kw).score,
    "pwcca": lambda a, b, **kw: svcca.pwcca(a, b, **kw).score,
    "pls": lambda a, b, **kw: svcca.pls(a, b).score,
}


def reference(rows, cols, measure, **kw):
    f = SINGLE[measure]
    return np.array([[f(a, b, **kw) for b in cols.values()] for a in rows.values()])


@pytest.mark.parametrize("measure", ["cca", "svcca", "pwcca", "pls"])
def test_square_matches_single_pair_functions(measure):
    reps = layers()
    reps["dead"] = np.c_[reps["l0"][:, :4], np.zeros(800), np.ones(800)]  # pruned features
    r = pairwise(reps, measure=measure, chunk_size=300)  # several chunks per pass
    np.testing.assert_allclose(r.values, reference(reps, reps, measure), rtol=0, atol=1e-10)
    assert r.rows == r.cols == tuple(reps)
    assert r.measure == measure
    assert r.n_samples == 800


def test_rectangular_matches_and_reads_shared_objects_once():
    rows = layers(seed=1)
    cols = {"final0": rows["l1"], "final1": rows["l3"], "other": layers(seed=2)["l0"]}
    r = pairwise(rows, cols, measure="svcca", keep=5)
    np.testing.assert_allclose(r.values, reference(rows, cols, "svcca", keep=5), atol=1e-10)
    assert r.shape == (4, 3)
    assert r.dims_rows == (5, 5, 5, 5) and r.dims_cols == (5, 5, 5)
    # a representation compared with itself (same object in rows and cols) scores 1
    assert r["l1", "final0"] == pytest.approx(1.0, abs=1e-12)
    assert r[3, 1] == pytest.approx(1.0, abs=1e-12)


def test_svcca_options_and_epsilon_pass_through():
    reps = layers(seed=3)
    for kw in ({"keep": 0.9, "variance": "singular_values"}, {"keep": 3}):
        r = pairwise(reps, measure="svcca", **kw)
        np.testing.assert_allclose(r.values, reference(reps, reps, "svcca", **kw), atol=1e-10)
        assert dict(r.settings) == {"keep": kw["keep"], "variance": kw.get("variance", "explained")}
    r = pairwise(reps, measure="cca", epsilon=0.2)
    np.testing.assert_allclose(r.values, reference(reps, reps, "cca", epsilon=0.2), atol=1e-10)


def test_symmetric_measures_give_symmetric_matrices_with_unit_diagonal():
    reps = layers(seed=4)
    for measure in ("cca", "svcca", "pls", "cka_linear"):
        v = pairwise(reps, measure=measure).values
        np.testing.assert_allclose(v, v.T, atol=0)
        np.testing.assert_allclose(np.diag(v), 1.0, atol=1e-10)
    # PWCCA weights by the narrower side, the first on a tie: equal widths make it
    # asymmetric, and both orders are computed
    v = pairwise(layers(seed=4, widths=(10, 10)), measure="pwcca").values
    assert abs(v[0, 1] - v[1, 0]) > 1e-6


def test_cka_linear_agrees_with_svcca_cka_when_available():
    reps = layers(seed=5)
    r = pairwise(reps, measure="cka_linear")
    ref = np.array([[svcca.cka(a, b).score for b in reps.values()] for a in reps.values()])
    np.testing.assert_allclose(r.values, ref, atol=1e-10)
    np.testing.assert_allclose(r.values, pairwise(reps, measure="pls").values, atol=1e-12)


def test_sequence_input_is_labelled_by_position_and_result_exports():
    reps = list(layers(seed=6, widths=(8, 10)).values())
    r = pairwise(reps, measure="cca")
    assert isinstance(r, PairwiseResult)
    assert r.rows == ("0", "1")
    df = r.to_pandas()
    assert list(df.index) == ["0", "1"] and list(df.columns) == ["0", "1"]
    assert df.loc["0", "1"] == pytest.approx(r.values[0, 1], abs=0)
    assert df.attrs["measure"] == "cca"
    d = json.loads(json.dumps(r.to_dict()))
    assert d["values"][0][1] == pytest.approx(r.values[0, 1], abs=0)
    assert d["rows"] == ["0", "1"] and d["settings"] == {"epsilon": 0.0}


def test_memmaps_and_paths_stream(tmp_path):
    reps = layers(seed=7)
    paths = {}
    for k, v in reps.items():
        np.save(tmp_path / f"{k}.npy", v.astype(np.float32))
        paths[k] = tmp_path / f"{k}.npy"
    mm = {k: np.load(p, mmap_mode="r") for k, p in paths.items()}
    ref = pairwise({k: v.astype(np.float32) for k, v in reps.items()}, measure="svcca")
    np.testing.assert_allclose(
        pairwise(mm, measure="svcca", chunk_size=300).values, ref.values, atol=1e-10
    )
    np.testing.assert_allclose(pairwise(paths, measure="svcca").values, ref.values, atol=1e-10)


def test_progress_bar_goes_to_stderr(capsys):
    reps = layers(seed=8, widths=(5, 6))
    pairwise(reps, measure="cca", progress=True)
    err = capsys.readouterr().err
    assert "pairs" in err
    pairwise(reps, measure="cca")  # quiet by default
    assert capsys.readouterr().err == ""


def test_a_constant_representation_is_refused_by_name():
    reps = layers(seed=9, widths=(5, 6))
    reps["flat"] = np.ones((800, 3))
    for measure in ("cca", "svcca", "pwcca", "pls", "cka_linear"):
        with pytest.raises(svcca.DegenerateError, match=r"Representation 'flat' \(3 features\)"):
            pairwise(reps, measure=measure)


# ---------------------------------------------------------------------- bad input
def test_different_sample_counts_name_the_representation():
    reps = layers(seed=10, widths=(5, 6))
    reps["short"] = np.zeros((799, 3))
    with pytest.raises(ValueError, match=r"'short' has 799 samples but 'l0' has 800"):
        pairwise(reps)
    with pytest.raises(ValueError, match=r"'short' has 799 samples"):
        pairwise(layers(seed=10, widths=(5,)), {"short": np.zeros((799, 3))})


def test_bad_arguments_are_explained():
    reps = layers(seed=11, widths=(5, 6))
    with pytest.raises(ValueError, match="measure must be one of"):
        pairwise(reps, measure="rbf")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping of names to representations"):
        pairwise(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="rows is empty"):
        pairwise({})
    with pytest.raises(ValueError, match=r"keep must be a number in \(0, 1\)"):
        pairwise(reps, keep=1.5)
    with pytest.raises(ValueError, match="variance must be"):
        pairwise(reps, variance="total")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epsilon must be"):
        pairwise(reps, measure="cca", epsilon=-1.0)
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):
        pairwise(reps, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be an int >= 1"):
        pairwise(reps, chunk_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'l1' is a Moments object"):
        pairwise({"l0": reps["l0"], "l1": svcca.Moments.from_arrays(reps["l1"])})
    with pytest.raises(ValueError, match="'bad' must be 2-D"):
        pairwise({"l0": reps["l0"], "bad": np.zeros(800)})
    with pytest.raises(ValueError, match="At least 2 samples"):
        pairwise({"a": np.zeros((1, 2)), "b": np.zeros((1, 2))})


def test_nonfinite_rows_are_named():
    reps = layers(seed=12, widths=(5, 6))
    reps["l1"][500, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"Representation 'l1' contains NaN or inf in rows \[500\]"
    ):
        pairwise(reps, chunk_size=300)


def test_result_lookup_errors():
    r = pairwise(layers(seed=13, widths=(5, 6)), measure="cca")
    with pytest.raises(KeyError, match="No row labelled 'zz'"):
        r["zz", "l0"]
    with pytest.raises(KeyError, match=r"\(row, col\) pair"):
        r["l0"]  # type: ignore[index]


def test_result_pickles():
    import pickle

    r = pairwise(layers(seed=14, widths=(5, 6)), measure="svcca", keep=3)
    back = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(back.values, r.values)
    assert back.rows == r.rows and back.settings == r.settings


def wide_layers(n=1500, widths=(150, 120, 90), seed=20):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 6)) * np.linspace(3, 1, 6)
    return {
        f"w{i}": Z @ rng.standard_normal((6, w)) + 0.05 * rng.standard_normal((n, w)) + i
        for i, w in enumerate(widths)
    }


def test_sketched_svcca_for_wide_layers_matches_exact():
    reps = wide_layers()
    exact = pairwise(reps, measure="svcca", keep=6)
    got = pairwise(reps, measure="svcca", keep=6, sketch_size=24, chunk_size=400)
    np.testing.assert_allclose(got.values, exact.values, atol=2e-5)
    assert got.dims_rows == exact.dims_rows == (6, 6, 6)
    assert got.settings["sketch_size"] == 24
    cols = {"last": reps["w2"]}
    got = pairwise(reps, cols, measure="svcca", keep=0.9, sketch_size=40)
    exact = pairwise(reps, cols, measure="svcca", keep=0.9)
    assert got.dims_rows == exact.dims_rows and got.dims_cols == exact.dims_cols
    np.testing.assert_allclose(got.values, exact.values, atol=2e-5)


def test_sketch_errors():
    reps = wide_layers(n=300, widths=(20, 30))
    with pytest.raises(ValueError, match="sketch_size applies to measure='svcca' only"):
        pairwise(reps, measure="cca", sketch_size=10)
    with pytest.raises(ValueError, match="sketch_size must be an int >= 1"):
        pairwise(reps, sketch_size=0)
    with pytest.raises(TypeError, match="sketch_size must be an int >= 1"):
        pairwise(reps, sketch_size=1.5)  # type: ignore[arg-type]
    bad = dict(reps)
    bad["w1"] = bad["w1"].copy()
    bad["w1"][7, 3] = np.inf
    with pytest.raises(ValueError, match=r"Representation 'w1' contains NaN or inf in rows \[7\]"):
        pairwise(bad, sketch_size=10)
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="not supported with dask inputs"):
        pairwise({k: da.from_array(v, chunks=100) for k, v in reps.items()}, sketch_size=10)


def test_tuple_keys_stay_tuples_and_give_a_multiindex():
    base = layers(seed=15, widths=(5, 6, 7))
    reps = {("e0", "fc1"): base["l0"], ("e0", "fc2"): base["l1"], ("e1", "fc1"): base["l2"]}
    r = pairwise(reps, measure="cka_linear")
    assert r.rows == r.cols == tuple(reps)
    want = svcca.cka(base["l0"], base["l2"]).score
    assert r[("e0", "fc1"), ("e1", "fc1")] == pytest.approx(want, abs=1e-12)
    df = r.to_pandas()
    assert df.index.nlevels == 2 and df.columns.nlevels == 2
    assert list(df.index) == list(reps)
    assert df.loc[("e0", "fc1"), ("e1", "fc1")] == r.values[0, 2]
    assert df.loc["e0"].shape == (2, 3)  # first level selects epochs
    d = json.loads(json.dumps(r.to_dict()))
    assert d["rows"] == [["e0", "fc1"], ["e0", "fc2"], ["e1", "fc1"]]
    with pytest.raises(KeyError, match=r"No column labelled \('e9', 'fc1'\)"):
        r[("e0", "fc1"), ("e9", "fc1")]


def test_keys_are_not_converted_to_strings():
    base = layers(seed=16, widths=(5, 6))
    r = pairwise({3: base["l0"], 5: base["l1"]}, {"last": base["l1"]}, measure="cka_linear")
    assert r.rows == (3, 5) and r.cols == ("last",)
    assert r[5, "last"] == pytest.approx(1.0, abs=1e-12)  # an int on an int-labelled axis: a label
    assert r[3, 0] == r.values[0, 0]  # ...and a position on a string-labelled one
    with pytest.raises(
        KeyError, match=r"No row labelled 0; rows are \[3, 5\]\. Integers are labels"
    ):
        r[0, 0]
    with pytest.raises(KeyError, match=r"column position must be in \[-1, 1\); got 1\."):
        r[3, 1]
    assert list(r.to_pandas().index) == [3, 5]
    mixed = pairwise({"a": base["l0"], ("b", 1): base["l1"]}, measure="cka_linear")
    assert mixed.rows == ("a", ("b", 1)) and mixed.to_pandas().index.nlevels == 1
    assert json.loads(json.dumps(mixed.to_dict()))["rows"] == ["a", ["b", 1]]


def test_tuple_labels_name_the_representation_in_errors():
    base = layers(seed=17, widths=(5, 6))
    bad = base["l1"].copy()
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"Representation \('e1', 'fc1'\) contains NaN or inf"):
        pairwise({("e0", "fc1"): base["l0"], ("e1", "fc1"): bad})
