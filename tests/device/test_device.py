"""The device path (issue 13, part one): ``svcca.on_device``, the kernels of
``svcca._dense`` run by torch, and ``TorchAccumulator``.

CI has no GPU: ``on_device("cpu")`` runs the same torch code on the CPU, and every
equality below is checked there against the host path (NumPy/LAPACK). The ``gpu``
tests repeat them on CUDA (``-m gpu``; skipped without a CUDA device).

That the torch path really ran is checked, not assumed: the fixture ``kernels`` counts
the kernels torch ran (every one goes through ``svcca._dense._Device.run``) and the
cubic host kernels LAPACK ran (``np.linalg.eigh``/``eigvalsh``/``svd``, ``dpotrf``,
``solve_triangular``). Inside ``on_device(d)`` a measure must run torch kernels and
*no* host cubic kernel; inside ``on_device(None)``, the reverse.

Tolerances (``conftest.tol``): host and device run the same backward-stable kernels
(eigendecomposition, SVD, Cholesky, triangular solves) on the same float64 blocks, so
each result differs by round-off amplified by the conditioning of what is inverted: the
correlation blocks that are whitened, of condition ``cond`` (their numerically non-zero
part). Canonical correlations, PWCCA/SVCCA scores, R^2, shape distances: within
``tol(cond=cond_x + cond_y, factor=2 * 8 * d)`` (2: both results carry error; 8: the
chain of scaling, factorisation, two solves and one SVD, each backward stable; ``d``:
the dimension in LAPACK's ``O(d) eps`` backward-error bounds). Singular values and
eigenvalues are well conditioned in units of the largest: ``tol(scale=top, factor=2*d)``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.linalg

import svcca
from conftest import tol
from svcca import _dense
from svcca._device import _AUTO, _WHERE, chosen, exact_products, free_bytes, host_forced
from svcca._moments import FLOAT32_CHUNK_ROWS
from svcca._sources._sources import moments_of_tensors
from svcca._threads import dense_steps

torch = pytest.importorskip("torch")
from svcca._moments._torch_moments import TorchAccumulator  # noqa: E402

HAS_CUDA = bool(torch.cuda.is_available())
gpu = [
    pytest.mark.gpu,
    pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (torch.cuda.is_available())"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=gpu)]
U64 = float(np.finfo(np.float64).eps) / 2
U32 = float(np.finfo(np.float32).eps) / 2


# ----------------------------------------------------------------------------- helpers
def layers(n=400, p=8, q=6, seed=0):
    """Two layers driven by 4 shared latents: distinct canonical correlations."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 4))
    X = Z @ rng.standard_normal((4, p)) + 0.5 * rng.standard_normal((n, p)) + 2.0
    Y = np.tanh(Z @ rng.standard_normal((4, q))) + 0.3 * rng.standard_normal((n, q))
    return X, Y


def case(name):
    """The layers of each edge case, and whether their canonical variates are unique."""
    X, Y = layers()
    rng = np.random.default_rng(1)
    if name == "plain":
        return X, Y, True
    if name == "collinear":
        # two neurons that are combinations of others (eigen whitener: Cholesky fails),
        # and a constant neuron (pruned)
        extra = X[:, :2] @ rng.standard_normal((2, 2))
        return np.hstack([X, extra, np.full((X.shape[0], 1), 3.0)]), Y, True
    # p > n: every canonical correlation is 1 (variates not unique)
    return rng.standard_normal((30, 50)), rng.standard_normal((30, 40)), False


CASES = ["plain", "collinear", "wide"]


def cond_kept(A):
    """Condition number of the numerically non-zero part of A's correlation matrix."""
    A = A[:, A.std(axis=0) > 0]
    w = np.linalg.eigvalsh(np.corrcoef(A.T))
    w = w[w > 1e-10 * w.max()]
    return float(w.max() / w.min())


def bound(A, B):
    """Round-off bound of a whitened quantity computed twice (module docstring)."""
    d = max(A.shape[1], B.shape[1])
    return tol(cond=cond_kept(A) + cond_kept(B), factor=2 * 8 * d)


def _counting(f, counts):
    def host(*args, **kw):
        counts["host"] += 1
        return f(*args, **kw)

    return host


@pytest.fixture
def kernels(monkeypatch):
    """Counts of the cubic kernels torch ran and of those host LAPACK ran."""
    counts = {"torch": 0, "host": 0}
    run = _dense._Device.run

    def counted_run(self, what, shape, fn):
        counts["torch"] += 1
        return run(self, what, shape, fn)

    monkeypatch.setattr(_dense._Device, "run", counted_run)
    for mod, name in (
        (np.linalg, "eigh"),
        (np.linalg, "eigvalsh"),
        (np.linalg, "svd"),
        (scipy.linalg.lapack, "dpotrf"),
        (scipy.linalg, "solve_triangular"),
    ):
        monkeypatch.setattr(mod, name, _counting(getattr(mod, name), counts))
    return counts


def on(device, kernels, fn, cubic=True):
    """``fn()`` inside ``on_device(device)``, checking which kernels ran (none at all
    when the work has no cubic step: ``cubic=False``)."""
    before = dict(kernels)
    with svcca.on_device(device):
        out = fn()
    if not cubic:
        assert kernels == before, "a cubic kernel ran where none is needed"
    elif device is None:
        assert kernels["torch"] == before["torch"], "on_device(None) ran torch kernels"
        assert kernels["host"] > before["host"]
    else:
        assert kernels["torch"] > before["torch"], f"on_device({device!r}) ran no torch kernel"
        assert kernels["host"] == before["host"], f"on_device({device!r}) ran host LAPACK"
    return out


def device_moments(X, Y=None, *, device="cpu", **kwargs):
    """``moments_of_tensors`` inside ``on_device(device)``: the device accumulator runs
    whatever the rule for CPU tensors outside a block."""
    with svcca.on_device(device):
        return moments_of_tensors(X, Y, **kwargs)


def unit_angle(a, b):
    """Angle between the lines spanned by vectors a and b (accurate to eps, unlike acos)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return float(np.linalg.norm(a - np.sign(a @ b) * b))


def higham(A, B, u, rows):
    """Entrywise bound on |fl(sum) - sum| of the shifted cross-products of A and B, one
    accumulation in unit round-off ``u`` of chunks of ``rows`` rows (plus the shift),
    against an exact reference: ``gamma_{rows+2} |A - c|^T |B - c|``."""
    r = rows + 2
    gamma = r * u / (1 - r * u)
    a = np.abs(A - A[:rows].mean(axis=0))
    b = np.abs(B - B[:rows].mean(axis=0))
    return gamma * (a.T @ b)


def assert_moments_close(m, ref, A, B, u, rows):
    """Moments ``m`` (accumulated in round-off ``u``) against ``ref`` (float64, its own
    float64 error), entry by entry within the sum of both Higham bounds."""
    n = A.shape[0]
    for key, P, Q in (("sxx", A, A), ("syy", B, B), ("sxy", A, B)):
        lim = higham(P, Q, u, rows) + higham(P, Q, U64, n)
        err = np.abs(getattr(m, key) - getattr(ref, key))
        assert (err <= lim).all(), (key, float((err / lim).max()))
    # mean = c + sum(fl(a_k - c)) / n: each centred value rounded once in u, the float64
    # sum of n terms, the final addition; the reference the same in float64
    for key, P in (("mean_x", A), ("mean_y", B)):
        spread = np.abs(P - P[:rows].mean(axis=0)).max(axis=0)
        lim = (u + U64 + 4 * n * U64) * spread + 4 * U64 * np.abs(P).max(axis=0)
        np.testing.assert_array_less(np.abs(getattr(m, key) - getattr(ref, key)), lim)


# ------------------------------------------------------------------ 1. on_device itself
def test_on_device_refuses_a_bad_type():
    with pytest.raises(TypeError, match=r"device must be None, a string .*got 3 \(int\)"):
        with svcca.on_device(3):
            pass


def test_on_device_refuses_an_unknown_device_string():
    with pytest.raises(ValueError, match=r"device='gpu0' is not a device torch knows; write"):
        with svcca.on_device("gpu0"):
            pass


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_on_device_refuses_cuda_without_cuda():
    with pytest.raises(ValueError, match=r"torch.cuda.is_available\(\) is False here"):
        with svcca.on_device("cuda"):
            pass


def test_on_device_refuses_a_cuda_index_past_the_count(monkeypatch):
    if not HAS_CUDA:  # pretend one device is there: the index check is what is tested
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    count = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf"has {count} CUDA device\(s\), numbered from 0"):
        with svcca.on_device(f"cuda:{count}"):
            pass


def test_on_device_accepts_a_torch_device_and_forces_the_host_with_none(kernels):
    X, Y = layers()
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    with svcca.on_device(torch.device("cpu")):
        assert chosen() == torch.device("cpu") and not host_forced()
    with svcca.on_device(None):
        assert host_forced() and chosen() is None and chosen("cuda:7") is None
    # tensors too: read to the host, host kernels, no device recorded
    r = on(None, kernels, lambda: svcca.cca(tx, ty))
    assert r.n_samples == X.shape[0]
    with svcca.on_device(None):
        assert moments_of_tensors(tx, ty).device is None
    # a statistic recorded on a GPU is reduced on the host when the host is forced
    m = svcca.Moments.from_arrays(X, Y)
    m.device = "cuda:0"
    got = on(None, kernels, lambda: svcca.cca(m))
    ref = svcca.cca(X, Y)
    np.testing.assert_allclose(got.correlations, ref.correlations, rtol=0, atol=bound(X, Y))


def test_without_on_device_work_runs_where_the_data_live(kernels):
    X, Y = layers()
    assert _WHERE.get() is _AUTO and chosen() is None and chosen("cpu") is None
    before = dict(kernels)
    m = moments_of_tensors(torch.from_numpy(X), torch.from_numpy(Y))
    assert m.device in (None, "cpu")  # CPU tensors: on the host, or CPU torch
    svcca.cca(m)  # CPU data: the host kernels
    svcca.cca(X, Y)
    assert kernels["torch"] == before["torch"] and kernels["host"] > before["host"]


def test_a_statistic_from_a_gpu_this_process_lacks_is_reduced_on_the_host(kernels, monkeypatch):
    # e.g. Moments made on a GPU worker and unpickled on a laptop: was "device='cuda:0'
    # was asked for, but torch.cuda.is_available() is False" from every measure
    X, Y = layers()
    m = svcca.Moments.from_arrays(X, Y)
    m.device = "cuda:0"
    m = pickle.loads(pickle.dumps(m))
    assert m.device == "cuda:0"
    ref = svcca.cca(X, Y)
    if not HAS_CUDA:
        before = dict(kernels)
        got = svcca.cca(m)
        assert kernels["torch"] == before["torch"] and kernels["host"] > before["host"]
        np.testing.assert_allclose(got.correlations, ref.correlations, rtol=0, atol=bound(X, Y))
    # an index past the devices there are: the host as well
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    m.device = "cuda:1"
    assert chosen(m.device) is None
    before = dict(kernels)
    got = svcca.pls(m)
    assert kernels["torch"] == before["torch"] and kernels["host"] > before["host"]


def test_nesting_restores_the_outer_choice_also_on_errors():
    cpu = torch.device("cpu")
    with svcca.on_device("cpu"):
        with svcca.on_device(None):
            assert chosen() is None
        assert chosen() == cpu
        with pytest.raises(KeyError):
            with svcca.on_device(None):
                raise KeyError("inner")
        assert chosen() == cpu and not host_forced()
        with pytest.raises(ValueError, match="not a device torch knows"):
            with svcca.on_device("nonsense"):
                pass
        assert chosen() == cpu
    assert _WHERE.get() is _AUTO


def test_dense_steps_nested_without_a_device_inherits():
    cpu = torch.device("cpu")
    with svcca.on_device("cpu"):
        with dense_steps(4):
            outer = _dense._DENSE.get()
            assert _dense.device_in_use() == cpu
            with dense_steps(4):  # nested, no device: the same device and upload cache
                assert _dense._DENSE.get() is outer
            with dense_steps(4, "cuda:0"):  # on_device's choice wins over the data's
                assert _dense._DENSE.get() is outer
            with svcca.on_device(None), dense_steps(4):
                assert _dense.device_in_use() is None
            assert _dense._DENSE.get() is outer
        assert _dense.device_in_use() is None
    with dense_steps(4):
        assert _dense.device_in_use() is None


# ----------------------------------------------- 2. every measure: device == host path
def _measures(A, B):
    """(label, call(data) -> {quantity: value}) for every Moments-based measure."""

    def cca(d):
        r = svcca.cca(*d)
        return {
            "correlations": r.correlations,
            "score": r.score,
            "rank": (r.rank_x, r.rank_y),
            "pruned": (tuple(r.pruned_x.indices), tuple(r.pruned_y.indices)),
        }

    def sv(keep):
        def f(d):
            r = svcca.svcca(*d, keep=keep)
            return {
                "correlations": r.correlations,
                "score": r.score,
                "kept": (r.kept_x, r.kept_y),
                "variance_kept": np.array([r.variance_kept_x, r.variance_kept_y]),
            }

        return f

    def pw(weight_by):
        def f(d):
            r = svcca.pwcca(*d, weight_by=weight_by)
            return {"score": r.score, "weights": r.weights, "correlations": r.correlations}

        return f

    def shape(alpha):
        def f(d):
            r = svcca.shape_distance(*d, alpha=alpha)
            return {"distance": r.distance, "score": r.score}

        return f

    def reg(d):
        r = svcca.regression_fit(*d)
        return {
            "score": r.score,
            "r2": np.array([r.r2_y_given_x, r.r2_x_given_y]),
            "per_y": r.r2_per_feature_y,
            "per_x": r.r2_per_feature_x,
        }

    return [
        ("cca", cca),
        ("svcca keep=0.99", sv(0.99)),
        ("svcca keep=3", sv(3)),
        *[(f"pwcca {w}", pw(w)) for w in ("smaller", "x", "y", "mean")],
        ("regression_fit", reg),
        (
            "procrustes",
            lambda d: {"score": (r := svcca.procrustes(*d)).score, "distance": r.distance},
        ),
        *[(f"shape alpha={a}", shape(a)) for a in (0.0, 0.5, 1.0)],
    ]


def distance_tol(delta, score):
    """How far a shape distance moves when its score (a cosine <= 1) moves by delta.

    The chord ``c = sqrt(2 - 2 s)`` moves by at most ``min(sqrt(2 delta), 2 delta / c)``
    (``|a - b| (a + b) = |a^2 - b^2|``): near ``s = 1`` a distance keeps only half the
    digits of its score. The angle ``2 arcsin(c / 2)`` moves by at most ``sqrt(2)`` times
    the chord for angles up to ``pi / 2`` (positive scores).
    """
    c = np.sqrt(max(2 - 2 * score, 0.0))
    return np.sqrt(2) * min(np.sqrt(2 * delta), 2 * delta / c if c > 0 else np.inf)


def _compare(got, ref, atol, what):
    for key, want in ref.items():
        if isinstance(want, tuple):  # counts, ranks, pruned indices: exact
            assert got[key] == want, (what, key)
        elif key == "distance":
            assert abs(got[key] - want) <= distance_tol(atol, ref["score"]), (what, key)
        else:
            np.testing.assert_allclose(got[key], want, rtol=0, atol=atol, err_msg=f"{what} {key}")


@pytest.mark.filterwarnings("ignore::svcca.SVCCAWarning")  # the p > n case warns, as it must
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("given", ["arrays", "moments", "float32 moments"])
def test_every_measure_on_the_device_equals_the_host_path(name, given, device, kernels):
    # float32 moments: the same blocks on both paths (summed once), the rank tolerances
    # of float32 (collinear neurons found at 1e-7, not 1e-12) on both
    A, B, unique = case(name)
    if given == "arrays":
        data = (A, B)
    else:
        precision = "float32" if given.startswith("float32") else "float64"
        data = (svcca.Moments.from_arrays(A, B, precision=precision),)
    atol = bound(A, B)
    for what, f in _measures(A, B):
        ref = on(None, kernels, lambda f=f: f(data))
        got = on(device, kernels, lambda f=f: f(data))
        if not unique:
            # all correlations 1: PWCCA's per-direction weights depend on which basis of
            # that eigenspace the solver returns (on host and device alike); the score not
            ref.pop("weights", None)
        _compare(got, ref, atol, f"{name}/{given}: {what}")


@pytest.mark.filterwarnings("ignore::svcca.SVCCAWarning")
@pytest.mark.parametrize(
    "measure",
    [
        lambda m: svcca.regression_fit(m).score,
        lambda m: svcca.shape_distance(m, alpha=0.0).score,
        lambda m: svcca.shape_distance(m, alpha=0.5).score,
        lambda m: svcca.pca(m).eigenvalues[0],
    ],
    ids=["regression_fit", "shape alpha=0", "shape alpha=0.5", "pca"],
)
def test_rank_deficient_float32_moments(measure):
    # These measures held a float32 statistic to float64's rank tolerance: the round-off
    # eigenvalues of a p > n side were taken for directions, and the clipping check
    # raised "This is a bug" (FloatingPointError). With Moments.eps they are scored.
    A, B, _ = case("wide")
    m32 = svcca.Moments.from_arrays(A, B, precision="float32")
    m64 = svcca.Moments.from_arrays(A, B)
    with svcca.on_device(None):
        got, ref = measure(m32), measure(m64)
    # every value here is a score in [0, 1] (or the top variance): the float32 entries'
    # relative error ~ 4096 eps32 / 2 (Higham) moves it by at most that, scaled
    assert abs(got - ref) <= 2.5e-4 * max(1.0, abs(ref))


@pytest.mark.filterwarnings("ignore::svcca.SVCCAWarning")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CASES)
def test_pls_and_pca_spectra_on_the_device(name, device, kernels):
    A, B, _ = case(name)
    d = max(A.shape[1], B.shape[1])
    ref = on(None, kernels, lambda: svcca.pls(A, B))
    got = on(device, kernels, lambda: svcca.pls(A, B))
    s_tol = tol(scale=ref.singular_values[0], factor=2 * d)
    np.testing.assert_allclose(got.singular_values, ref.singular_values, rtol=0, atol=s_tol)
    assert abs(got.score - ref.score) <= tol(factor=2 * d)
    # the leading PLS directions (distinct singular values) agree up to sign
    gap = ref.singular_values[0] - ref.singular_values[1]
    assert unit_angle(got.weights_x[:, 0], ref.weights_x[:, 0]) <= s_tol / gap
    for X in (A, B):
        e_ref = on(None, kernels, lambda X=X: svcca.pca(X).eigenvalues)
        e_got = on(device, kernels, lambda X=X: svcca.pca(X).eigenvalues)
        np.testing.assert_allclose(e_got, e_ref, rtol=0, atol=tol(scale=e_ref[0], factor=2 * d))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["plain", "collinear"])
def test_cca_weights_on_the_device_give_the_same_canonical_variates(name, device, kernels):
    A, B, _ = case(name)
    ref = on(None, kernels, lambda: svcca.cca(A, B))
    got = on(device, kernels, lambda: svcca.cca(A, B))
    rho = ref.correlations
    atol = bound(A, B)
    u_ref, v_ref = ref.transform(A, B)
    u, v = got.transform(A, B)
    for k in range(rho.size):
        # each variate is unique up to sign when its correlation is simple: it moves by
        # at most (error of the whitened block) / (gap to the next correlation)
        gap = np.min(np.abs(np.delete(rho, k) - rho[k]))
        assert unit_angle(u[:, k], u_ref[:, k]) <= atol / gap, k
        assert unit_angle(v[:, k], v_ref[:, k]) <= atol / gap, k
        # and the device's variates really have the correlations it reports
        assert abs(np.corrcoef(u[:, k], v[:, k])[0, 1] - got.correlations[k]) <= atol
    if name == "collinear":
        # the eigen whitener ran (a Cholesky whitener keeps every unpruned neuron): the
        # two combinations of other neurons are no directions; the constant one is pruned
        assert got.rank_x == ref.rank_x == A.shape[1] - 3
        assert got.pruned_x.indices.tolist() == [A.shape[1] - 1]
        assert not got.weights_x[-1].any()


@pytest.mark.filterwarnings("ignore::svcca.SVCCAWarning")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("measure", ["cca", "svcca", "pwcca", "pls", "cka_linear"])
def test_pairwise_on_the_device_equals_the_host_path(measure, device, kernels):
    X, Y = layers()
    Xc, _, _ = case("collinear")
    W, _, _ = case("wide")
    reps = {"x": X, "y": Y, "collinear": Xc, "sin": np.sin(X)}
    cols = {"y": Y, "cos": np.cos(Xc[:, :-1])}
    atol = max(bound(a, b) for a in reps.values() for b in reps.values())
    cubic = measure in ("cca", "svcca", "pwcca")  # pls, cka_linear: Frobenius norms only

    def run(device, rows, cs=None):
        return on(device, kernels, lambda: svcca.pairwise(rows, cs, measure=measure), cubic)

    for rows, cs in ((reps, None), (reps, cols)):
        ref, got = run(None, rows, cs), run(device, rows, cs)
        np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=atol)
        assert got.dims_rows == ref.dims_rows and got.dims_cols == ref.dims_cols
    # p > n: two wide layers over the same 30 datapoints
    wide = {"a": W, "b": np.tanh(W[:, :40]), "c": W[:, ::-1] ** 2}
    ref, got = run(None, wide), run(device, wide)
    atol = max(bound(a, b) for a in wide.values() for b in wide.values())
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=atol)


@pytest.mark.parametrize("device", DEVICES)
def test_pairwise_uploads_each_read_only_factor_once(device, monkeypatch):
    up = _dense._Device.up
    misses: dict[tuple[int, int], list] = {}
    hits = [0]

    def counted(self, a):
        frozen = isinstance(a, np.ndarray) and not a.flags.writeable
        if frozen:
            hit = self.cache.get(id(a))
            if hit is not None and hit[0]() is a:
                hits[0] += 1
            else:  # keep `a` alive: its id cannot be reused during the test
                misses.setdefault((id(self), id(a)), []).append(a)
        return up(self, a)

    monkeypatch.setattr(_dense._Device, "up", counted)
    rng = np.random.default_rng(3)
    X, _ = layers(p=12)
    reps = {f"l{i}": np.tanh(X @ rng.standard_normal((12, 10))) for i in range(5)}
    with svcca.on_device(device):
        got = svcca.pairwise(reps, measure="pwcca")
    ref = svcca.pairwise(reps, measure="pwcca")
    atol = max(bound(a, b) for a in reps.values() for b in reps.values())
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=atol)
    assert misses, "no read-only factor reached the device"
    assert all(len(v) == 1 for v in misses.values()), "a factor was uploaded twice"
    # 5 layers: 25 ordered pairs combine the same 5 factors, each uploaded once
    assert hits[0] >= 25 - 5


@pytest.mark.parametrize("device", DEVICES)
def test_each_kernel_on_the_device_equals_the_host(device):
    rng = np.random.default_rng(5)
    M = rng.standard_normal((7, 5))
    S = M.T @ M  # 5 x 5, positive definite
    L = np.linalg.cholesky(S)
    p = 5
    host = {
        "eigh": np.linalg.eigh(S)[0],
        "eigvalsh": np.linalg.eigvalsh(S),
        "svd": np.linalg.svd(M, compute_uv=False),
        "svdvals": np.linalg.svd(M, compute_uv=False),
        "cholesky": L,
        "solve": scipy.linalg.solve_triangular(L, M.T, lower=True),
        "solve_t": scipy.linalg.solve_triangular(L, M.T, lower=True, trans="T"),
        "gram": M.T @ M,
        "gram_wide": M.T @ M,
        "matmul": M @ S @ S,
    }
    with svcca.on_device(device), dense_steps(p):
        assert _dense.device_in_use().type == torch.device(device).type
        w, V = _dense.eigh(S)
        U, s, Vt = _dense.svd(M)
        Lg, info = _dense.cholesky(S)
        got = {
            "eigh": w,
            "eigvalsh": _dense.eigvalsh(S),
            "svd": s,
            "svdvals": _dense.svdvals(M),
            "cholesky": Lg,
            "solve": _dense.solve_lower(L, M.T),
            "solve_t": _dense.solve_lower(L, M.T, trans=True),
            "gram": _dense.smaller_gram(M),
            "gram_wide": _dense.smaller_gram(M.T),
            "matmul": _dense.matmul(M, S, S),
        }
        # a singular block: LAPACK's and torch's info name the same leading minor
        R = np.ones((3, 3))
        info_singular = _dense.cholesky(R)[1]
        empty = _dense.eigvalsh(np.zeros((0, 0)))  # empty operands stay on the host
    assert info == 0 and info_singular == scipy.linalg.lapack.dpotrf(R, lower=1)[1] == 2
    assert isinstance(empty, np.ndarray) and empty.shape == (0,)
    cond = np.linalg.cond(S)
    for key, want in host.items():
        assert isinstance(got[key], np.ndarray) and got[key].dtype == np.float64, key
        scale = np.abs(want).max()
        # backward stable: eigen/singular values to p eps |top|; a triangular solve to
        # eps cond(L) = eps sqrt(cond(S)) relative to its result; the Cholesky factor to
        # p eps |L|; products to p eps (|A| |B|) (Higham's bound)
        c = np.sqrt(cond) if key.startswith("solve") else 1.0
        if key.startswith("gram"):
            scale = (np.abs(M).T @ np.abs(M)).max()
        if key == "matmul":
            scale = (np.abs(M) @ np.abs(S) @ np.abs(S)).max()
        atol = tol(cond=c, scale=scale, factor=2 * p)
        np.testing.assert_allclose(got[key], want, rtol=0, atol=atol, err_msg=key)
    np.testing.assert_allclose(V * w @ V.T, S, rtol=0, atol=tol(scale=w[-1], factor=2 * p))
    np.testing.assert_allclose(U * s @ Vt, M, rtol=0, atol=tol(scale=s[0], factor=2 * p))


@pytest.mark.parametrize("kernel", ["eigh", "eigvalsh", "svd", "svdvals"])
def test_a_kernel_that_fails_raises_numpys_linalg_error_on_both_paths(kernel):
    # callers (compat.robust_cca_similarity's retry) catch np.linalg.LinAlgError; torch's
    # own is a RuntimeError, and escaped them on the device path (was)
    S = np.full((4, 4), np.nan)
    for device in (None, "cpu"):
        with svcca.on_device(device), dense_steps(4):
            with pytest.raises(np.linalg.LinAlgError, match="converge"):
                getattr(_dense, kernel)(S)


def test_a_kernel_out_of_device_memory_says_what_to_do(monkeypatch):
    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch.linalg, "eigh", oom)
    S = np.eye(6) + 0.5
    msg = (
        r"The eigendecomposition of a 6 x 6 float64 block ran out of memory on cpu \(.* free "
        r"after it failed\)\. Free memory on the device, or run the small steps on the host: "
        r"with svcca.on_device\(None\)"
    )
    with svcca.on_device("cpu"), dense_steps(6), pytest.raises(svcca.DeviceMemoryError, match=msg):
        _dense.eigh(S)
    with svcca.on_device(None), dense_steps(6):  # the fix the message names
        np.testing.assert_allclose(_dense.eigh(S)[0][-1], 4.0, rtol=0, atol=tol(scale=4, factor=12))


# ------------------------------------------------- 3. TorchAccumulator and tensors
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "int64"])
def test_moments_of_tensors_equal_moments_from_arrays(dtype, device):
    X, Y = layers(n=3000)
    if dtype == "int64":
        X, Y = np.round(10 * X), np.round(10 * Y)
    tx = torch.from_numpy(X).to(getattr(torch, dtype)).to(device)
    ty = torch.from_numpy(Y).to(getattr(torch, dtype)).to(device)
    # the values the tensors hold, exactly, in float64
    A, B = tx.cpu().to(torch.float64).numpy(), ty.cpu().to(torch.float64).numpy()
    m = device_moments(tx, ty, device=device)
    ref = svcca.Moments.from_arrays(A, B)
    assert m.device == str(tx.device)  # "cpu" or "cuda:0"
    assert m.precision == "float64" and m.n == A.shape[0]
    # gamma_n = n u = 3.3e-13 relative to |A - c|^T |B - c| (each side's): ~1e-12 in all
    assert_moments_close(m, ref, A, B, U64, A.shape[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_precision_within_highams_bound(dtype, device):
    X, Y = layers(n=6000)
    X += 1e3  # a large mean: the shift by the first chunk's mean is what keeps the bound
    tx = torch.from_numpy(X).to(getattr(torch, dtype)).to(device)
    ty = torch.from_numpy(Y).to(getattr(torch, dtype)).to(device)
    # float32 input: shifted in float32 (the shift is float32-representable), rounded
    # once; float64 input: shifted in float64, rounded once to float32. Either way one
    # rounding of each centred value, the "+2" of the bound.
    A, B = tx.cpu().double().numpy(), ty.cpu().double().numpy()
    m = device_moments(tx, ty, precision="float32", device=device)
    ref = svcca.Moments.from_arrays(A, B)
    assert m.precision == "float32"
    assert_moments_close(m, ref, A, B, U32, FLOAT32_CHUNK_ROWS)
    # really float32: the error is far above float64 round-off
    assert np.abs(m.sxx - ref.sxx).max() > 1e3 * U64 * np.abs(ref.sxx).max()


def test_batches_larger_than_the_planned_chunk_are_split(monkeypatch):
    X, Y = layers(n=2000)
    p, q = X.shape[1], Y.shape[1]
    ref = svcca.Moments.from_arrays(X, Y)
    # cap the memory so that the plan leaves room for ~300 rows (plan_rows' arithmetic)
    blocks = p * p + q * q + p * q
    fixed, per_row = 8 * (blocks + 2 * (p + q)), 16 * (p + q)
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", str(int((fixed + 300.5 * per_row) / 0.8)))
    acc = TorchAccumulator(p, q, "cpu")
    assert acc.rows == 300
    chunks = []
    chunk = TorchAccumulator._chunk
    monkeypatch.setattr(
        TorchAccumulator,
        "_chunk",
        lambda self, x, y, w: chunks.append(x.shape[0]) or chunk(self, x, y, w),
    )
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    acc.add(tx[:1100], ty[:1100])
    acc.add(tx[1100:], ty[1100:])
    m = acc.finish()
    assert chunks == [300, 300, 300, 200, 300, 300, 300]
    assert_moments_close(m, ref, X, Y, U64, 300)
    # acc.rows set directly (as moments_of_tensors' chunk_size does) splits the same way
    monkeypatch.delenv("SVCCA_DEVICE_MEMORY")
    chunks.clear()
    m2 = device_moments(tx, ty, chunk_size=512)
    assert chunks == [512, 512, 512, 464]
    assert_moments_close(m2, ref, X, Y, U64, 512)


@pytest.mark.parametrize("where", ["first", "later"])
@pytest.mark.parametrize("side", ["X", "Y"])
def test_nan_or_inf_in_a_tensor_names_its_rows(side, where):
    X, Y = layers(n=2000)
    bad = X if side == "X" else Y
    row = 3 if where == "first" else 1203
    bad[row, 1], bad[row + 4, 0] = np.nan, -np.inf
    start = 0 if where == "first" else 1000
    msg = (
        rf"{side} contains NaN or inf in rows \[{row}, {row + 4}\] "
        rf"\(first shown; of rows {start}:{start + 500}\)\. Remove or impute"
    )
    with pytest.raises(ValueError, match=msg):
        device_moments(torch.from_numpy(X), torch.from_numpy(Y), chunk_size=500)
    with pytest.raises(ValueError, match=msg):  # float32 products: the same message
        device_moments(
            torch.from_numpy(X).float(),
            torch.from_numpy(Y).float(),
            chunk_size=500,
            precision="float32",
        )


def test_float32_sums_are_scaled_and_values_float32_cannot_hold_are_refused():
    X, Y = layers(n=3000)
    ty = torch.from_numpy(Y).float()
    ref = svcca.cka(device_moments(torch.from_numpy(X).float(), ty, precision="float32")).score
    # summed in units of a power of two (as on the host): 1e30 is no longer refused
    m = device_moments(torch.from_numpy(X * 1e30).float(), ty, precision="float32")
    assert m.scale_x > 2.0**90 and m.scale_y == 1.0  # the largest centred value in [1, 2)
    assert abs(svcca.cka(m).score - ref) <= tol(np.float32, factor=100)
    tx = torch.from_numpy(X * 1e-35).float()  # below 2^-100: digits lost in the cast
    with pytest.raises(svcca.Float32RangeError, match=r"X in rows 0:3000 has values of magnitude"):
        device_moments(tx, ty, precision="float32")
    # a later chunk past the range: caught when the sums are finished
    late = X.copy()
    late[2000:] *= 1e30
    with pytest.raises(svcca.Float32RangeError, match="cross-products of X overflowed"):
        device_moments(torch.from_numpy(late).float(), ty, precision="float32", chunk_size=1000)
    # a float64 value finite in float64, infinite once cast: not "NaN or inf" (was)
    big = X.copy()
    big[5, 0] = 1e39
    # divided by its unit (2^129) in float64 before the cast, float32 holds it too (was:
    # refused as beyond float32's range)
    m32 = device_moments(torch.from_numpy(big), torch.from_numpy(Y), precision="float32")
    m64 = device_moments(torch.from_numpy(big), torch.from_numpy(Y))
    assert m32.scale_x == m64.scale_x == 2.0**129
    assert abs(svcca.cka(m32).score - svcca.cka(m64).score) <= tol(np.float32, factor=100)


def test_a_tensor_on_another_device_is_refused():
    # CPU-only machines have one device with data; the meta device (no data) stands for
    # "elsewhere" in add()'s check, which runs before anything is read
    acc = TorchAccumulator(3, 2, "cpu")
    with pytest.raises(
        ValueError, match=r"X is on meta, but these moments accumulate on cpu \(batch 7\); move"
    ):
        acc.add(torch.zeros(10, 3, device="meta"), torch.zeros(10, 2), label=" (batch 7)")
    with pytest.raises(ValueError, match=r"Y is on meta, but these moments accumulate on cpu"):
        acc.add(torch.zeros(10, 3), torch.zeros(10, 2, device="meta"))
    assert acc.n == 0
    with pytest.raises(ValueError, match="X is on cpu and Y on meta; move them to one device"):
        moments_of_tensors(torch.zeros(10, 3), torch.zeros(10, 2, device="meta"))


def test_meta_tensors_are_refused_with_what_to_do():
    # was: RuntimeError "Tensor.item() cannot be called on meta tensors"
    msg = r"device='meta' holds no data .* load the weights first"
    with pytest.raises(ValueError, match=msg):
        svcca.cca(torch.zeros(10, 3, device="meta"), torch.zeros(10, 2, device="meta"))
    with pytest.raises(ValueError, match=msg), svcca.on_device("meta"):
        pass


def test_device_memory_error_says_needed_free_and_the_fix(monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "64K")
    assert free_bytes("cpu") == 64 * 1024
    msg = (
        r"Moments of 100 \+ 80 features in float64 needs .* on cpu .* 64\.0 KiB is free there "
        r"and svcca plans for 80% of it\. Compare fewer or narrower layers"
    )
    with pytest.raises(svcca.DeviceMemoryError, match=msg):
        TorchAccumulator(100, 80, "cpu")
    X = torch.zeros(300, 100, dtype=torch.float64).normal_()
    with pytest.raises(svcca.DeviceMemoryError, match="with svcca.on_device\\(None\\)"):
        with svcca.on_device("cpu"):
            svcca.cca(X, X[:, :80])
    with svcca.on_device(None):  # the fix the message names works
        svcca.cca(X, X[:, :80] + 0.1 * X[:, 20:])
    assert issubclass(svcca.DeviceMemoryError, MemoryError)


@pytest.mark.parametrize("raw", ["8GB", "-1", "0", "nan", "inf", "1eG", "K"])
def test_a_malformed_device_memory_cap_is_refused(raw, monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", raw)
    msg = rf"SVCCA_DEVICE_MEMORY='{raw}' must be a positive number of bytes, optionally with a K"
    with pytest.raises(ValueError, match=msg):
        free_bytes("cpu")


@pytest.mark.parametrize(
    ("raw", "value"), [("4096", 4096), ("2k", 2048), ("1.5M", 3 << 19), ("1G", 1 << 30)]
)
def test_the_device_memory_cap_is_read(raw, value, monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", raw)
    assert free_bytes("cpu") == value


def test_moments_device_kept_by_copy_swap_merge_not_saved(tmp_path):
    X, Y = layers(n=500)
    m = device_moments(torch.from_numpy(X), torch.from_numpy(Y))
    assert m.device == "cpu"
    assert m.copy().device == "cpu" and m.swap().device == "cpu"
    host = svcca.Moments.from_arrays(X, Y)
    assert m.merge(host).device == "cpu" and host.merge(m).device == "cpu"
    assert svcca.Moments.empty(X.shape[1], Y.shape[1]).merge(m).device == "cpu"
    assert repr(m) == f"Moments(n=500, p={X.shape[1]}, q={Y.shape[1]}, device='cpu')"
    m.save(tmp_path / "m.npz")
    back = svcca.Moments.load(tmp_path / "m.npz")
    assert back.device is None and "device" not in repr(back)
    np.testing.assert_array_equal(back.sxy, m.sxy)


@pytest.fixture
def fake_cuda(monkeypatch):
    """exact_products' CUDA branch on any machine: its switches are process-wide flags
    that a CPU torch holds too. The flags are put back after the test."""
    import svcca._device

    if not hasattr(torch.backends, "fp32_precision"):
        pytest.skip("torch < 2.9: no fp32_precision settings")
    monkeypatch.setattr(svcca._device, "resolve", lambda d: torch.device("cuda", 0))
    matmul = torch.backends.cuda.matmul
    start = (torch.backends.fp32_precision, matmul.fp32_precision)
    yield matmul
    torch.backends.fp32_precision = start[0]
    matmul.fp32_precision = start[1]


@pytest.mark.parametrize(
    ("allow", "precision"), [(True, "high"), (True, "medium"), (False, "highest")]
)
def test_exact_products_turn_tf32_off_and_restore_the_legacy_settings(fake_cuda, allow, precision):
    matmul = fake_cuda
    matmul.allow_tf32 = allow
    torch.set_float32_matmul_precision(precision)
    before = (matmul.allow_tf32, torch.get_float32_matmul_precision())
    with exact_products("cuda"):
        assert matmul.allow_tf32 is False and torch.get_float32_matmul_precision() == "highest"
        assert matmul.fp32_precision == "ieee"
    assert (matmul.allow_tf32, torch.get_float32_matmul_precision()) == before
    with pytest.raises(KeyError), exact_products("cuda"):
        raise KeyError("inside")
    assert (matmul.allow_tf32, torch.get_float32_matmul_precision()) == before


@pytest.mark.parametrize("where", ["global", "matmul"])
def test_exact_products_under_the_fp32_precision_api(fake_cuda, where):
    # torch >= 2.9: TF32 asked for through fp32_precision makes the legacy getters
    # raise ("mix of the legacy and new APIs"); exact_products raised that too (was)
    matmul = fake_cuda
    if where == "global":
        torch.backends.fp32_precision = "tf32"
    else:
        matmul.fp32_precision = "tf32"
    with exact_products("cuda"):
        assert matmul.fp32_precision == "ieee"
    assert matmul.fp32_precision == "tf32"
    with pytest.raises(KeyError), exact_products("cuda"):
        raise KeyError("inside")
    assert matmul.fp32_precision == "tf32"


def test_float32_moments_keep_their_bound_when_the_caller_allows_bfloat16_products():
    """The device accumulator multiplies under exact_products (was pinned by spying on
    that private call): with the caller's float32 matmul precision at "medium", which lets
    oneDNN multiply float32 in bfloat16 where the CPU has it, the float32 moments on the
    device keep float32's bound. (On a CPU without bfloat16 units this holds either way;
    test_exact_products_turn_tf32_off_and_restore_the_settings checks TF32 on CUDA.)"""
    start = torch.get_float32_matmul_precision()
    X, Y = layers(n=6000)
    A, B = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
    try:
        torch.set_float32_matmul_precision("medium")
        with svcca.on_device("cpu"):
            m = svcca.Moments.from_arrays(
                torch.from_numpy(X).float(), torch.from_numpy(Y).float(), precision="float32"
            )
        assert torch.get_float32_matmul_precision() == "medium"  # the caller's, kept
    finally:
        torch.set_float32_matmul_precision(start)
    assert m.device == "cpu" and m.precision == "float32"
    assert_moments_close(m, svcca.Moments.from_arrays(A, B), A, B, U32, FLOAT32_CHUNK_ROWS)


# ---------------------------------------------------------------------------- 4. CUDA
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (torch.cuda.is_available())")
def test_exact_products_turn_tf32_off_and_restore_the_settings():
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, torch.get_float32_matmul_precision())
    try:
        matmul.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
        with exact_products("cuda"):
            assert matmul.allow_tf32 is False
            assert torch.get_float32_matmul_precision() == "highest"
        assert matmul.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
        with pytest.raises(KeyError), exact_products("cuda"):
            raise KeyError("inside")
        assert matmul.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
        # with TF32 on for "training", the float32 moments still keep float32's bound
        X, Y = layers(n=6000)
        m = moments_of_tensors(
            torch.from_numpy(X).float().cuda(),
            torch.from_numpy(Y).float().cuda(),
            precision="float32",
        )
        A, B = X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)
        assert_moments_close(m, svcca.Moments.from_arrays(A, B), A, B, U32, FLOAT32_CHUNK_ROWS)
        assert matmul.allow_tf32 is True and torch.get_float32_matmul_precision() == "high"
    finally:
        matmul.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])


def test_exact_products_leave_the_settings_alone_off_cuda():
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, torch.get_float32_matmul_precision())
    for dev in (None, "cpu"):
        with exact_products(dev):
            assert (matmul.allow_tf32, torch.get_float32_matmul_precision()) == before


def test_exact_products_keep_cpu_float32_products_out_of_bfloat16():
    # "medium" lets oneDNN multiply float32 in bfloat16 where the CPU has it
    cpu = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if cpu is None or not hasattr(cpu, "fp32_precision"):
        pytest.skip("torch < 2.9: no fp32_precision settings")
    start = (torch.get_float32_matmul_precision(), cpu.fp32_precision)
    try:
        torch.set_float32_matmul_precision("medium")
        assert cpu.fp32_precision == "bf16"
        with exact_products("cpu"):
            assert cpu.fp32_precision == "ieee"
        assert cpu.fp32_precision == "bf16"
        with pytest.raises(KeyError), exact_products("cpu"):
            raise KeyError("inside")
        assert cpu.fp32_precision == "bf16"
    finally:
        torch.set_float32_matmul_precision(start[0])
        cpu.fp32_precision = start[1]


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (torch.cuda.is_available())")
def test_gpu_tensors_are_reduced_on_the_gpu_without_on_device(kernels):
    X, Y = layers()
    tx, ty = torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda()
    before = dict(kernels)
    r = svcca.cca(tx, ty)
    assert kernels["torch"] > before["torch"] and kernels["host"] == before["host"]
    ref = svcca.cca(X, Y)
    np.testing.assert_allclose(r.correlations, ref.correlations, rtol=0, atol=bound(X, Y))
    with svcca.on_device("cpu"), pytest.raises(ValueError, match="accumulate on cpu"):
        svcca.cca(tx, ty)


def test_upload_cache_is_bounded_and_forgets_freed_arrays(monkeypatch):
    import svcca._dense as dense

    with dense.dense_on(torch.device("cpu")):
        d = dense._DENSE.get()
        assert d is not None
        d.budget = 3 * 8 * 100  # room for three 10 x 10 float64 blocks
        blocks = []
        for k in range(5):
            a = np.full((10, 10), float(k))
            a.flags.writeable = False
            blocks.append(a)
            np.testing.assert_array_equal(dense.matmul(a, np.eye(10)), a)
        assert len(d.cache) == 3 and d.cached == 3 * 800  # the two oldest were dropped
        assert set(d.cache) == {id(b) for b in blocks[2:]}
        del blocks[4], a  # freed: its upload goes with it
        assert len(d.cache) == 2 and d.cached == 2 * 800
        big = np.zeros((20, 20))
        big.flags.writeable = False
        dense.matmul(big, np.eye(20))  # larger than the whole budget: never cached
        assert id(big) not in d.cache
