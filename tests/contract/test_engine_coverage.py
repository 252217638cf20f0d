"""Every registered measure in every engine: served (equal to the single call) or
refused with the reason svcca._measures.engines_for states, so a measure cannot go
missing from an engine without a stated reason."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca._measures import ENGINES, engines_for

NAMES = sorted(svcca.MEASURES)
TOL = tol(cond=1e4)


def _pair(n=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 4)) @ rng.standard_normal((4, 4))
    Y = np.tanh(X[:, :3]) + 0.3 * rng.standard_normal((n, 3))
    return X, Y


def _pairwise(name, X, Y, tmp_path):
    return svcca.pairwise({"x": X, "y": Y}, measure=name).values[0, 1]


def _torch_compare(name, X, Y, tmp_path):
    torch = pytest.importorskip("torch")
    from svcca.torch import capture, compare

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    net = net.double()
    batches = list(torch.as_tensor(X).split(16))
    got = compare(net, net, batches, ["0", "2"], measure=name).values[0, 1]
    acts = capture(net, batches, ["0", "2"], dtype=np.float64)
    return got, svcca.MEASURES[name].score(acts["0"], acts["2"])


def _conv(name, X, Y, tmp_path):
    from svcca.conv import compare

    A, B = X[:, None, None, :], Y[:, None, None, :]  # 1 x 1 maps: avgpool is the identity
    r = compare(A, B, strategy="avgpool", measure=name, layout="nhwc")
    return getattr(r, svcca.MEASURES[name].score_field)


def _stats(name, X, Y, tmp_path):
    return svcca.stats.permutation_test(name, X, Y, n_permutations=3, seed=0).statistic


RUN = {
    "call": lambda name, X, Y, tmp_path: svcca.MEASURES[name].score(X, Y),
    "pairwise": _pairwise,
    "torch.compare": _torch_compare,
    "conv.compare": _conv,
    "stats": _stats,
}


def test_every_engine_is_checked_here():
    assert set(RUN) | {"cli compare", "cli pairwise"} == set(ENGINES)


@pytest.mark.parametrize("engine", sorted(RUN))
@pytest.mark.parametrize("name", NAMES)
def test_served_or_refused_with_the_stated_reason(name, engine, tmp_path):
    m = svcca.MEASURES[name]
    X, Y = _pair()
    why = engines_for(m)[engine]
    if why is not None:
        with pytest.raises(ValueError, match=re.escape(why)):
            RUN[engine](name, X, Y, tmp_path)
        return
    got = RUN[engine](name, X, Y, tmp_path)
    got, want = got if isinstance(got, tuple) else (got, m.score(X, Y))
    assert abs(got - want) <= TOL, (name, engine, got, want)


@pytest.mark.parametrize("command", ["compare", "pairwise"])
@pytest.mark.parametrize("name", NAMES)
def test_the_cli_serves_or_refuses_with_the_stated_reason(name, command, tmp_path, capsys):
    from svcca._cli import main

    m = svcca.MEASURES[name]
    X, Y = _pair()
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    code = main(
        [command, str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--measure", name, "--json"]
    )
    out, err = capsys.readouterr()
    why = engines_for(m)[f"cli {command}"]
    if why is not None:
        assert code == 2 and why in err.replace("\n", " ")
        return
    assert code == 0, err
    data = json.loads(out)
    got = data["score"] if command == "compare" else data["values"][0][1]
    assert abs(got - m.score(X, Y)) <= TOL
    assert data["measure"] == name and data["svcca_version"] == svcca.__version__


def test_a_minibatch_measure_is_refused_by_exactly_the_engines_that_say_so(tmp_path):
    """A registered minibatch measure (a user's): the engines that compare whole
    representations refuse it with the stated reason; torch.compare and the single call
    are its engines."""
    mb = svcca.register(
        svcca.Measure(
            "test_cov_minibatch",
            lambda X, Y: svcca.cka(X, Y),
            "minibatch",
            symmetric=True,
            range=(0.0, 1.0),
            invariances=frozenset(),
            description="a minibatch estimator",
        ),
        replace=True,
    )
    try:
        refused = {e for e, why in engines_for(mb).items() if why is not None}
        assert refused == {"pairwise", "conv.compare", "stats", "cli pairwise"}
        X, Y = _pair()
        for engine in ("pairwise", "conv.compare", "stats"):
            with pytest.raises(ValueError, match=re.escape(engines_for(mb)[engine])):
                RUN[engine](mb.name, X, Y, tmp_path)
        assert (
            "all but pairwise, conv.compare, stats, cli pairwise"
            in svcca._measures.invariance_table()
        )
    finally:
        from svcca._measures import _registry

        del _registry._REGISTRY["test_cov_minibatch"]
