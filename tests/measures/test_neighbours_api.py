"""The neighbourhood measures' boundaries (every refusal, with its message), their
options (platonic-rep's clipping, CKNNA's epsilon), and pairwise: each representation's
neighbour lists are searched once, and the platonic protocol is one call."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import svcca
from svcca._measures import _registry

NAMES = (
    "mutual_knn",
    "cycle_knn",
    "cknna",
    "jaccard_knn",
    "rank_similarity",
    "second_order_cosine",
)


def _layers(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    Y = np.tanh(X @ rng.standard_normal((5, 4))) + 0.3 * rng.standard_normal((n, 4))
    return X, Y


# ---------------------------------------------------------------------- refusals
@pytest.mark.parametrize("name", NAMES)
def test_k_must_leave_a_point_other_neighbours(name):
    X, Y = _layers(n=30)
    m = svcca.MEASURES[name]
    with pytest.raises(ValueError, match=r"k must be an int >= 1 and <= 29; got 30\. X has 30"):
        m.score(X, Y, k=30)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        m.score(X, Y, k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        m.score(X, Y, k=2.5)
    with pytest.raises(TypeError, match="k must be an int"):
        m.score(X, Y, k=True)


@pytest.mark.parametrize("name", NAMES)
def test_bad_options_are_refused_with_what_was_expected(name):
    X, Y = _layers()
    m = svcca.MEASURES[name]
    with pytest.raises(ValueError, match=r"distance must be one of .*'cosine'.*got 'manhattan'"):
        m.score(X, Y, distance="manhattan")
    with pytest.raises(ValueError, match=r"clip_quantile must be a number in \(0, 1\); got 1\.5"):
        m.score(X, Y, clip_quantile=1.5)
    with pytest.raises(ValueError, match=r"block_bytes must be an int >= 1024; got 10\. It bounds"):
        m.score(X, Y, block_bytes=10)


def test_distances_a_measure_cannot_use_are_refused_with_the_reason():
    X, Y = _layers()
    with pytest.raises(ValueError, match="got 'euclidean'. CKNNA restricts a kernel"):
        svcca.cknna(X, Y, distance="euclidean")
    with pytest.raises(ValueError, match="got 'euclidean'. CKNNA restricts a kernel"):
        svcca.MEASURES["cknna"].prepare_side(X, distance="euclidean")
    with pytest.raises(ValueError, match="got 'inner_product'. second-order cosine compares"):
        svcca.second_order_cosine(X, Y, distance="inner_product")
    with pytest.raises(ValueError, match="got 'inner_product'. second-order cosine compares"):
        svcca.MEASURES["second_order_cosine"].prepare_side(X, distance="inner_product")


def test_cknna_epsilon_must_be_non_negative():
    X, Y = _layers()
    with pytest.raises(ValueError, match=r"eps must be a number >= 0; got -1e-06\. It is added"):
        svcca.cknna(X, Y, eps=-1e-6)


def test_cknna_needs_four_datapoints():
    X = np.array([[0.0, 1.0], [1.0, 0.2], [1.0, 1.5]])
    with pytest.raises(ValueError, match="needs at least 4 datapoints; got 3"):
        svcca.cknna(X, X[:, ::-1] + 0.5, k=1)


def test_cknna_refuses_a_side_whose_restricted_hsic_is_not_positive():
    X = np.array(
        [
            [-0.25361804, 0.83286349],
            [-2.35459265, -0.66392131],
            [0.82150173, 0.81567945],
            [0.34144249, -0.16701507],
        ]
    )
    with pytest.raises(svcca.DegenerateError, match=r"with itself is -0.00\d+, not positive"):
        svcca.cknna(X, X + 0.1, k=2, distance="inner_product")


def test_cknna_is_not_bounded_by_one():
    """Why its range is declared unbounded: the three unbiased HSICs use different masks."""
    X = [[-0.533, 0.178, -0.386], [-1.601, -1.119, -0.392], [-0.322, -0.666, -0.606],
         [-1.273, -0.306, 0.572], [1.662, 0.272, 1.581], [-1.767, 1.255, -0.806]]  # fmt: skip
    Y = [[1.944, 3.674, -2.04], [-0.394, -1.438, 0.601], [-1.329, -3.134, 0.879],
         [-1.451, -1.429, 2.804], [1.787, -2.574, 1.649], [-0.734, 2.543, 2.153]]  # fmt: skip
    assert svcca.cknna(X, Y, k=4).score > 1.4
    assert svcca.MEASURES["cknna"].range == (-np.inf, np.inf)


def test_zero_rows_have_no_cosine_direction():
    X, Y = _layers()
    X[[4, 9]] = 0.0
    with pytest.raises(
        ValueError, match=r"2 rows are zero \(first: \[4, 9\]\).*distance='euclidean'"
    ):
        svcca.mutual_knn(X, Y)
    with pytest.warns(svcca.SVCCAWarning, match="ambiguous"):  # the two zero rows are copies
        assert 0 <= svcca.mutual_knn(X, Y, distance="euclidean").score <= 1


def test_rows_that_all_point_the_same_way_have_nothing_to_compare():
    X, Y = _layers()
    X = np.abs(X[:, :1]) * np.array([[1.0, 2.0, -1.0]])  # every row a multiple of one
    with pytest.raises(svcca.DegenerateError, match="rows all point the same way"):
        svcca.jaccard_knn(X, Y)


def test_sides_must_share_datapoints_and_parameters():
    X, Y = _layers()
    with pytest.raises(ValueError, match="X has 60 samples .* Y has 59"):
        svcca.mutual_knn(X, Y[:-1])
    m = svcca.MEASURES["mutual_knn"]
    sx, sy = m.prepare_side(X, k=5), m.prepare_side(Y, k=6)
    with pytest.raises(ValueError, match="prepared with k=5.* cannot be combined with k=6"):
        m.combine_sides(sx, sy, k=6)


# ---------------------------------------------------------------------- options
def test_clip_quantile_is_platonic_reps_exact_outlier_clipping():
    X, Y = _layers(n=80)
    X[3] *= 50.0  # an outlier
    q = 0.95
    t = np.sort(np.abs(X).ravel())[int(q * X.size)]  # platonic-rep remove_outliers(exact=True)
    u = np.sort(np.abs(Y).ravel())[int(q * Y.size)]
    want = svcca.mutual_knn(np.clip(X, -t, t), np.clip(Y, -u, u)).score
    assert svcca.mutual_knn(X, Y, clip_quantile=q).score == want
    torch = pytest.importorskip("torch")
    got = svcca.mutual_knn(torch.from_numpy(X), torch.from_numpy(Y), clip_quantile=q).score
    assert got == want
    assert svcca.MEASURES["mutual_knn"].invariances_for(clip_quantile=q) == {
        "isotropic_scaling",
        "permutation",
    }


def test_euclidean_distance_adds_translation_invariance():
    X, Y = _layers()
    m = svcca.MEASURES["jaccard_knn"]
    assert "translation" in m.invariances_for(distance="euclidean")
    assert "translation" not in m.invariances_for()
    shift = np.full(X.shape[1], 7.0)
    base = m.score(X, Y, distance="euclidean")
    assert m.score(X + shift, Y, distance="euclidean") == base
    assert m.score(X + shift, Y) != m.score(X, Y)


def test_float32_data_are_searched_in_float32():
    X, Y = _layers()
    got = svcca.mutual_knn(X.astype(np.float32), Y.astype(np.float32)).score
    # the same lists: on these data consecutive neighbours' cosines differ by 8.8e-6 at
    # least, 70 times float32's eps (the float32 search's round-off is a few eps)
    assert got == svcca.mutual_knn(X, Y).score


# ---------------------------------------------------------------------- pairwise
def _counting(name, calls):
    base = svcca.MEASURES[name]
    assert base.prepare is not None

    def prepare(X, **params):
        calls.append(1)
        return base.prepare(X, **params)

    return dataclasses.replace(base, name=f"test_counted_{name}", prepare=prepare)


def test_pairwise_searches_each_representations_neighbours_once():
    rng = np.random.default_rng(3)
    layers = {f"l{i}": rng.standard_normal((50, 4)) for i in range(20)}
    calls: list[int] = []
    m = svcca.register(_counting("mutual_knn", calls), replace=True)
    try:
        got = svcca.pairwise(layers, measure=m.name, params={"k": 5})
    finally:
        del _registry._REGISTRY[m.name]
    assert len(calls) == 20  # 20 searches for the 400 pairs
    reps = list(layers.values())
    for i in (0, 7, 19):
        for j in (0, 3, 19):
            assert got.values[i, j] == svcca.mutual_knn(reps[i], reps[j], k=5).score


def test_the_platonic_protocol_is_one_pairwise_call():
    """Huh et al. score two models by the best mutual k-NN over all their layer pairs."""
    rng = np.random.default_rng(4)
    a = [rng.standard_normal((60, 6)) for _ in range(3)]
    b = [np.tanh(a[1] @ rng.standard_normal((6, 5))) + 0.1 * rng.standard_normal((60, 5))]
    b += [rng.standard_normal((60, 5)) for _ in range(3)]
    got = svcca.pairwise(rows=a, cols=b, measure="mutual_knn")
    assert got.values.shape == (3, 4)
    want = max(svcca.mutual_knn(x, y).score for x in a for y in b)
    assert got.values.max() == want
    assert np.unravel_index(got.values.argmax(), got.values.shape) == (1, 0)


def test_pairwise_takes_the_measures_parameters():
    X, Y = _layers()
    got = svcca.pairwise(
        {"x": X, "y": Y}, measure="cknna", params={"k": 7, "eps": 1e-6, "distance": "inner_product"}
    )
    assert got.values[0, 1] == svcca.cknna(X, Y, k=7, eps=1e-6, distance="inner_product").score
