"""The common contract of every registered measure (scikit-learn's common checks, over
``svcca.MEASURES``): a measure added to the registry is checked here without a new test.

Each declared property is checked both ways: a declared invariance holds on generic data
(to round-off: ``eps`` times the conditioning of these well-conditioned layers), and an
invariance *not* declared fails there (the score moves by far more than round-off), so
the declarations are facts. Likewise symmetry, the range, self-similarity, immutable
results, and the same score from arrays, memory maps and tensors.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import svcca
from conftest import tol

COND = 1e4  # generous bound on the conditioning of these random layers and maps
TOL = tol(cond=COND)
MOVES = 1e-6  # a non-invariance moves a generic score by far more than this
NAMES = sorted(svcca.MEASURES)


def _layers(n=300, p=6, q=5, seed=0):
    """Two generic layers: correlated features of different scales, a nonlinear link."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p)) * rng.uniform(0.5, 3, p)
    X += rng.uniform(-2, 2, p)
    Y = np.tanh(X[:, :3] @ rng.standard_normal((3, q))) + 0.3 * rng.standard_normal((n, q))
    Y = Y @ rng.standard_normal((q, q)) + rng.uniform(-1, 1, q)
    return X, Y


def _transforms(p, seed=1):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    A = rng.standard_normal((p, p)) + 2 * np.eye(p)
    perm = np.roll(np.arange(p), 1)
    b = rng.uniform(5, 10, p) * rng.choice([-1, 1], p)
    d = rng.uniform(0.1, 10, p)
    return {
        "orthogonal": lambda X: X @ Q,
        "isotropic_scaling": lambda X: 3.7 * X,
        "per_feature_scaling": lambda X: X * d,
        "translation": lambda X: X + b,
        "invertible_linear": lambda X: X @ A,
        "permutation": lambda X: X[:, perm],
    }


def _score(name, X, Y):
    return svcca.MEASURES[name].score(X, Y)


def _tol(name, *values):
    """The round-off bound of a score: TOL where the declared range is bounded; a
    distance unbounded above (``range=(0, inf)``, in the data's units: a norm of a
    difference, a Procrustes distance) is accurate to TOL relative to its size."""
    if np.isinf(svcca.MEASURES[name].range[1]):
        return TOL * max([1.0, *(abs(v) for v in values)])
    return TOL


@pytest.mark.parametrize("name", NAMES)
def test_declared_invariances_hold_and_the_others_fail(name):
    """An invariance is of either side: declared, it holds for X and for Y; not declared,
    it fails for at least one of them (PWCCA's weights come from one side only)."""
    measure = svcca.MEASURES[name]
    X, Y = _layers()
    base = _score(name, X, Y)
    declared = measure.invariances_for()
    tx, ty = _transforms(X.shape[1]), _transforms(Y.shape[1], seed=2)
    for inv in tx:
        moved = max(
            abs(_score(name, tx[inv](X), Y) - base), abs(_score(name, X, ty[inv](Y)) - base)
        )
        if inv in declared:
            assert moved <= _tol(name, base), (
                f"{name} declares {inv} invariance, but moved by {moved:.3g}"
            )
        else:
            assert moved > MOVES, f"{name} does not declare {inv}, but moved only {moved:.3g}"


@pytest.mark.parametrize("name", NAMES)
def test_symmetry_as_declared(name):
    X, Y = _layers()
    xy = _score(name, X, Y)
    gap = abs(xy - _score(name, Y, X))
    if svcca.MEASURES[name].symmetric:
        assert gap <= _tol(name, xy)
    else:
        assert gap > MOVES


@pytest.mark.parametrize("name", NAMES)
def test_range_and_self_similarity(name):
    measure = svcca.MEASURES[name]
    lo, hi = measure.range
    X, Y = _layers()
    Z = np.random.default_rng(7).standard_normal(Y.shape)  # independent of X
    for A, B in ((X, Y), (X, Z), (Y, X)):
        assert lo - TOL <= _score(name, A, B) <= hi + TOL
    # a measure declares its self-score where it is not the best end of its range
    # (Measure.self_score: CKNNA's range is not bounded; cycle k-NN has none fixed)
    best = measure.self_score
    if best is not None:
        if not np.isnan(best):
            assert abs(_score(name, X, X) - best) <= TOL
    elif measure.larger_is_more_similar:
        assert abs(_score(name, X, X) - hi) <= TOL
    else:
        # A distance (smaller is more similar) is 0 from a representation to itself. It
        # is often the square root of a difference of squared sizes (Procrustes, GULP):
        # at 0 it carries the square root of their round-off, sqrt(TOL) relative to
        # the size of what it compares (here its distance to independent data).
        unit = max(1.0, abs(_score(name, X, Z)))
        assert abs(_score(name, X, X) - lo) <= np.sqrt(TOL) * unit


@pytest.mark.parametrize("name", NAMES)
def test_results_are_immutable_snapshots(name):
    X, Y = _layers()
    res = svcca.MEASURES[name](X, Y)
    assert dataclasses.is_dataclass(res)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.score = 0.5  # type: ignore[misc]
    for f in dataclasses.fields(res):
        v = getattr(res, f.name)
        if isinstance(v, np.ndarray) and v.size:
            assert not v.flags.writeable, f"{name}.{f.name} is writeable"
    X[:] = 0.0  # the caller's arrays change afterwards: the result does not
    assert getattr(res, svcca.MEASURES[name].score_field) == _score(name, *_layers())


@pytest.mark.parametrize("name", NAMES)
def test_calling_the_registry_equals_calling_the_function(name):
    measure = svcca.MEASURES[name]
    X, Y = _layers()
    direct = measure.function(X, Y, **measure.fixed)
    assert measure.score(X, Y) == getattr(direct, measure.score_field)
    with pytest.raises(TypeError, match=rf"Measure '{name}' takes no parameter 'nonsense'"):
        measure(X, Y, nonsense=1)


@pytest.mark.parametrize("name", NAMES)
def test_degenerate_and_non_finite_inputs_are_refused(name):
    X, Y = _layers()
    flat = np.ones_like(X)
    with pytest.raises(svcca.DegenerateError, match="nothing to compare"):
        _score(name, flat, Y)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        _score(name, bad, Y)


@pytest.mark.parametrize("name", NAMES)
def test_arrays_memmaps_and_tensors_give_one_score(name, tmp_path):
    X, Y = _layers()
    ref = _score(name, X, Y)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert abs(_score(name, mm, Y) - ref) <= _tol(name, ref)
    torch = pytest.importorskip("torch")
    assert abs(_score(name, torch.from_numpy(X), torch.from_numpy(Y)) - ref) <= _tol(name, ref)


@pytest.mark.parametrize("name", NAMES)
def test_float32_precision_stays_within_its_bound(name):
    measure = svcca.MEASURES[name]
    if "precision" not in measure.params:
        pytest.skip(f"{name} is computed in float64 only (no precision parameter)")
    X, Y = _layers()
    got = measure.score(X, Y, precision="float32")
    assert abs(got - measure.score(X, Y)) <= tol(np.float32, cond=COND)


@pytest.mark.parametrize("name", NAMES)
def test_declarations_are_well_formed(name):
    m = svcca.MEASURES[name]
    assert m.name == name and m.description
    assert m.invariances_for() <= svcca._measures._registry.INVARIANCES
    assert m.kind in ("moments", "samples", "minibatch")


@pytest.mark.parametrize("name", NAMES)
def test_pairwise_equals_single_calls(name):
    """Every registered measure is served by pairwise (the one-pass engine, or called per
    pair); a minibatch measure is refused with the reason."""
    X, Y = _layers()
    Z = np.random.default_rng(9).standard_normal((X.shape[0], 4))
    reps = {"x": X, "y": Y, "z": Z}
    if svcca.MEASURES[name].kind == "minibatch":
        with pytest.raises(ValueError, match="accumulates over minibatches"):
            svcca.pairwise(reps, measure=name)
        return
    got = svcca.pairwise(reps, measure=name)
    assert got.measure == name
    for i, a in enumerate(reps.values()):
        for j, b in enumerate(reps.values()):
            want = _score(name, a, b)
            assert abs(got.values[i, j] - want) <= _tol(name, want), (i, j)


@pytest.mark.parametrize("name", NAMES)
def test_torch_compare_equals_capture_and_the_single_call(name):
    """Every registered measure is served by svcca.torch.compare: streamed, or per pair
    on the captured activations; either way it equals the single call on the capture."""
    torch = pytest.importorskip("torch")
    from svcca.torch import capture, compare

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5), torch.nn.Tanh()
    ).double()
    batches = list(torch.randn(300, 6, dtype=torch.float64).split(60))
    layers = ["0", "3"]
    got = compare(net, net, batches, layers, measure=name)
    acts = capture(net, batches, layers, dtype=np.float64)
    for i, a in enumerate(layers):
        for j, b in enumerate(layers):
            want = _score(name, acts[a], acts[b])
            assert abs(got.values[i, j] - want) <= _tol(name, want), (name, a, b)


@pytest.mark.parametrize("name", NAMES)
def test_prepared_sides_combine_to_the_single_call(name):
    """A measure split into prepare and combine gives the single call's number, with its
    default parameters and each declared parameter's other setting; a declared permute
    gives the side of the permuted rows; a declared side_bytes is what a side holds."""
    m = svcca.MEASURES[name]
    if m.prepare is None:
        pytest.skip(f"{name} is not split into prepare and combine")
    X, Y = _layers()
    variants = [{}] + [v for v in _PARAM_VARIANTS if set(v) <= set(m.params)]
    for params in variants:
        want = m.score(X, Y, **params)
        got = m.combine_sides(m.prepare_side(X, **params), m.prepare_side(Y, **params), **params)
        assert abs(got - want) <= TOL, (params, got, want)
    perm = np.random.default_rng(5).permutation(X.shape[0])
    sy = m.prepare_side(Y)
    if m.side_bytes is not None:  # what a prepared side holds in the engines (unpermuted)
        fields = [sy] if isinstance(sy, np.ndarray) else list(getattr(sy, "__dict__", {}).values())
        held = sum(v.nbytes for v in fields if isinstance(v, np.ndarray))
        assert held <= m.prepared_bytes(*Y.shape)
    if m.permute is not None:
        moved = m.combine_sides(m.prepare_side(X), m.permute_side(sy, perm))
        assert abs(moved - m.score(X, Y[perm])) <= TOL


# Other settings of the library's own parameters, where a measure takes them.
_PARAM_VARIANTS = (
    {"bandwidth": 0.4},
    {"sigma": 2.0},
    {"method": "sample"},
    {"method": "feature"},
    {"metric": "correlation"},
    {"compare": "pearson"},
)
