"""The blocked neighbour search and the six neighbourhood measures against a brute-force
evaluation of their definitions on the full ``n x n`` matrices (small ``n``), with ties
and duplicated rows; and the memory bound of the blocked search.

Tie data are built so that tied distances are tied exactly in floating point (small
integers; directions scaled by powers of two), so the tie rule (smaller index first) is
what decides, not round-off.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

import svcca

DISTANCES = ("cosine", "euclidean", "inner_product")


# ---------------------------------------------------------------------- brute force
def _scores(X, distance):
    """The full n x n ranking scores, smaller is nearer."""
    X = np.asarray(X, dtype=np.float64)
    if distance == "cosine":
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    G = X @ X.T
    if distance == "euclidean":
        sq = np.diag(G).copy()
        return sq[:, None] + sq[None, :] - 2 * G
    return -G


def _knn(X, k, distance):
    D = _scores(X, distance)
    n = D.shape[0]
    out = []
    for i in range(n):
        order = np.lexsort((np.arange(n), D[i]))  # by score, then by index
        out.append([j for j in order if j != i][:k])
    return np.array(out), D


def _dist(D, distance):
    return np.clip(D + 1.0, 0, 2) if distance == "cosine" else np.sqrt(np.maximum(D, 0))


def _hsic_u(K, L):
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    t = (K * L.T).sum() + K.sum() * L.sum() / ((n - 1) * (n - 2)) - 2 * (K @ L).sum() / (n - 2)
    return t / (n * (n - 3))


def brute(name, X, Y, k, distance):
    nx, Dx = _knn(X, k, distance)
    ny, Dy = _knn(Y, k, distance)
    n = len(nx)
    if name == "mutual_knn":
        return np.mean([len(set(nx[i]) & set(ny[i])) / k for i in range(n)])
    if name == "cycle_knn":
        return np.mean([any(i in nx[j] for j in ny[i]) for i in range(n)])
    if name == "jaccard_knn":
        return np.mean(
            [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(nx, ny, strict=True)]
        )
    if name == "rank_similarity":
        out = []
        for a, b in zip(nx, ny, strict=True):
            shared = set(a) & set(b)
            if not shared:
                out.append(0.0)
                continue
            s = 0.0
            for j in shared:
                ra, rb = list(a).index(j) + 1, list(b).index(j) + 1
                s += 2 / ((1 + abs(ra - rb)) * (ra + rb))
            out.append(s / sum(1 / r for r in range(1, len(shared) + 1)))
        return np.mean(out)
    if name == "second_order_cosine":
        dx, dy = _dist(Dx, distance), _dist(Dy, distance)
        out = []
        for i in range(n):
            u = sorted(set(nx[i]) | set(ny[i]))
            a, b = dx[i, u], dy[i, u]
            out.append(a @ b / np.sqrt((a @ a) * (b @ b)))
        return np.mean(out)
    if name == "cknna":
        K, L = -Dx, -Dy
        Mx, My = np.zeros((n, n)), np.zeros((n, n))
        for i in range(n):
            Mx[i, nx[i]] = 1
            My[i, ny[i]] = 1
        M = Mx * My
        kl = _hsic_u(M * K, M * L)
        return kl / np.sqrt(_hsic_u(Mx * K, Mx * K) * _hsic_u(My * L, My * L))
    raise AssertionError(name)


# ---------------------------------------------------------------------- data
def _generic(n=70, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)) + 0.5
    Y = np.tanh(X @ rng.standard_normal((5, 4))) + 0.3 * rng.standard_normal((n, 4))
    return X, Y


def _tied(n=48, seed=0):
    """Rows on few exact directions, scaled by powers of two, and small integers:
    every tie is exact, and many rows are duplicated."""
    rng = np.random.default_rng(seed)
    dirs = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 1], [0, 1, -1], [1, 1, 1]], float)
    X = dirs[rng.integers(0, len(dirs), n)] * (2.0 ** rng.integers(0, 3, n))[:, None]
    Y = rng.integers(-1, 2, (n, 2)).astype(float) + np.array([3.0, 0.0])
    return X, Y


MEASURES = ("mutual_knn", "cycle_knn", "jaccard_knn", "rank_similarity", "second_order_cosine")


def _distances_of(name):
    if name == "second_order_cosine":
        return ("cosine", "euclidean")
    if name == "cknna":
        return ("cosine", "inner_product")
    return DISTANCES


CASES = [(m, d) for m in (*MEASURES, "cknna") for d in _distances_of(m)]


# ---------------------------------------------------------------------- tests
@pytest.mark.parametrize(("name", "distance"), CASES)
@pytest.mark.parametrize("k", [1, 5, 69])
def test_measures_equal_their_definition_on_full_matrices(name, distance, k):
    X, Y = _generic()
    if name == "cknna" and k == 69:
        k = 68  # k = n - 1: every point is every other's neighbour (HSIC of the kernels)
    got = svcca.MEASURES[name].score(X, Y, k=k, distance=distance, block_bytes=1024)
    assert got == pytest.approx(brute(name, X, Y, k, distance), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize(("name", "distance"), CASES)
def test_measures_follow_the_tie_rule_on_exact_ties_and_duplicates(name, distance):
    X, Y = _tied()
    with pytest.warns(svcca.SVCCAWarning, match="ambiguous"):
        got = svcca.MEASURES[name].score(X, Y, k=4, distance=distance, block_bytes=1024)
    assert got == pytest.approx(brute(name, X, Y, 4, distance), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("block_bytes", [1024, 5000, 2**26])
@pytest.mark.parametrize("data", ["generic", "tied", "sorted"])
def test_blocked_lists_equal_the_full_matrix_lists(distance, block_bytes, data):
    """``sorted``: rows ordered so that each later block holds nearer points (every block
    brings many candidates: the search's selection path, not only its filtered merge)."""
    X = (_generic(n=90) if data != "tied" else _tied(n=90))[0]
    if data == "sorted":
        X = X + np.array([3.0, 0, 0, 0, 0])
        X = X[np.argsort(X @ np.ones(5))]
    want, _ = _knn(X, 7, distance)
    measure = svcca.MEASURES["mutual_knn"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)  # the tied data: tested above
        side = measure.prepare_side(X, k=7, distance=distance, block_bytes=block_bytes)
    np.testing.assert_array_equal(side.indices, want)


@pytest.mark.parametrize("distance", DISTANCES)
def test_torch_tensors_take_the_same_path_on_their_device(distance):
    torch = pytest.importorskip("torch")
    G = _generic(n=90)[0] + np.array([3.0, 0, 0, 0, 0])
    for X in (_generic(n=90)[0], _tied(n=90)[0], G[np.argsort(G @ np.ones(5))]):
        want, _ = _knn(X, 7, distance)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", svcca.SVCCAWarning)
            side = svcca.MEASURES["mutual_knn"].prepare_side(
                torch.from_numpy(X), k=7, distance=distance, block_bytes=1024
            )
        np.testing.assert_array_equal(side.indices, want)


def test_a_duplicated_row_is_its_copys_nearest_neighbour_and_never_its_own():
    X, _ = _generic(n=30)
    X[7] = X[3]
    msg = r"ambiguous: their k-th neighbour is as near as a point left out.*by the smaller index"
    with pytest.warns(svcca.SVCCAWarning, match=msg):
        side = svcca.MEASURES["mutual_knn"].prepare_side(X, k=1, distance="euclidean")
    assert side.indices[3, 0] == 7 and side.indices[7, 0] == 3
    assert all(i not in side.indices[i] for i in range(30))
    # ambiguous: the points whose nearest is one of the copies (the other is left out),
    # not the copies themselves (each has the other, its only copy, in its list)
    D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    nearest = D.argmin(axis=1)
    assert side.ambiguous == int(np.isin(nearest, [3, 7]).sum() - 2)


def test_untied_data_warn_nothing():
    X, Y = _generic()
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        assert svcca.mutual_knn(X, Y).ambiguous == (0, 0)


def test_the_search_never_holds_an_n_by_n_matrix():
    """Peak traced memory of the search of n = 3000 points: within the documented bound
    O(block_bytes + n k + n p) (a few MB), far below the 72 MB of one n x n float64."""
    rng = np.random.default_rng(0)
    n, p, k, budget = 3000, 8, 10, 2**18
    X = rng.standard_normal((n, p))
    measure = svcca.MEASURES["mutual_knn"]
    tracemalloc.start()
    try:
        side = measure.prepare_side(X, k=k, block_bytes=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = 2 * budget + 80 * n * (k + 1) + 2 * 8 * n * p
    assert peak <= bound, (peak, bound)
    assert bound < 8 * n * n / 10
    want, _ = _knn(X[:200], k, "cosine")  # and the lists are right (first 200 points)
    assert side.indices.shape == (n, k)
    np.testing.assert_array_equal(
        measure.prepare_side(X[:200], k=k, block_bytes=budget).indices, want
    )


@pytest.mark.gpu
def test_the_search_runs_on_a_cuda_tensor_and_agrees_with_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    X, Y = _generic(n=2000)
    for name in ("mutual_knn", "cknna", "jaccard_knn"):
        cpu = svcca.MEASURES[name].score(X, Y)
        gpu = svcca.MEASURES[name].score(
            torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda(), block_bytes=2**20
        )
        assert gpu == pytest.approx(cpu, rel=1e-12)
