"""The registry itself: declaring, registering and listing measures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import svcca
from svcca._cli import main
from svcca._measures._registry import invariance_table

DOCS = Path(__file__).parents[2] / "docs" / "invariances.md"


def test_the_docs_table_is_the_generated_one():
    text = DOCS.read_text()
    m = re.search(
        r"<!-- generated: svcca._measures._registry.invariance_table\(\) -->\n(.*?)"
        r"<!-- end generated -->",
        text,
        re.S,
    )
    assert m is not None
    assert m.group(1) == invariance_table()


def test_the_registry_is_read_only_and_names_are_the_cli_names():
    with pytest.raises(TypeError):
        svcca.MEASURES["x"] = svcca.MEASURES["cca"]  # type: ignore[index]
    from svcca._cli._options import MEASURES as CLI_MEASURES

    assert set(CLI_MEASURES) <= set(svcca.MEASURES)


def _mean_abs_corr(X, Y):
    C = np.corrcoef(np.asarray(X), np.asarray(Y), rowvar=False)
    p = np.asarray(X).shape[1]
    return float(np.abs(C[:p, p:]).mean())


def test_a_plain_function_registers_and_is_called_like_the_others():
    m = svcca.register(
        _mean_abs_corr,
        name="test_mean_abs_corr",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=frozenset({"translation", "isotropic_scaling", "per_feature_scaling"}),
        replace=True,
    )
    try:
        X = np.random.default_rng(0).standard_normal((80, 3))
        res = svcca.MEASURES["test_mean_abs_corr"](X, X[:, :2])
        assert isinstance(res, svcca.Score) and res.score == _mean_abs_corr(X, X[:, :2])
        assert m.kind == "samples" and m.params == ()
        with pytest.raises(ValueError, match="is registered already; pass replace=True"):
            svcca.register(m)
    finally:
        from svcca._measures import _registry

        del _registry._REGISTRY["test_mean_abs_corr"]


def _gram(X, **_):
    Xc = np.asarray(X, dtype=float) - np.mean(X, axis=0)
    _gram.calls += 1  # type: ignore[attr-defined]
    return Xc @ Xc.T


def _gram_alignment(K, L, **_):
    return float(np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L)))


def test_a_split_measure_prepares_each_representation_once_in_pairwise():
    _gram.calls = 0  # type: ignore[attr-defined]
    m = svcca.register(
        svcca.Measure(
            "test_gram_alignment",
            lambda X, Y: _gram_alignment(_gram(X), _gram(Y)),
            "samples",
            symmetric=True,
            range=(0.0, 1.0),
            invariances=frozenset({"orthogonal", "isotropic_scaling", "translation"}),
            description="linear CKA, as a prepared Gram matrix per side",
            prepare=_gram,
            combine=_gram_alignment,
        ),
        replace=True,
    )
    try:
        rng = np.random.default_rng(1)
        reps = {f"l{i}": rng.standard_normal((60, 4 + i)) for i in range(5)}
        res = svcca.pairwise(reps, measure="test_gram_alignment")
        assert _gram.calls == 5  # one Gram per representation, not one per pair side
        ref = svcca.pairwise(reps, measure="cka_linear").values
        np.testing.assert_allclose(res.values, ref, rtol=0, atol=1e-13)
        assert m.score(reps["l0"], reps["l1"]) == pytest.approx(ref[0, 1], abs=1e-13)
    finally:
        from svcca._measures import _registry

        del _registry._REGISTRY["test_gram_alignment"]


def test_bad_declarations_are_refused_with_what_to_give():
    with pytest.raises(TypeError, match=r"give name=\.\.\., symmetric=.*missing: name, range"):
        svcca.register(_mean_abs_corr, symmetric=True, invariances=frozenset())
    with pytest.raises(TypeError, match="register expects a Measure or a function"):
        svcca.register(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Give either a Measure, or a function"):
        svcca.register(svcca.MEASURES["cca"], name="other")
    base = {"function": _mean_abs_corr, "symmetric": True, "description": "d"}
    with pytest.raises(ValueError, match="name must be an identifier-like string"):
        svcca.Measure(name="a b", kind="samples", range=(0, 1), invariances=frozenset(), **base)
    with pytest.raises(ValueError, match="kind must be 'moments', 'samples' or 'minibatch'"):
        svcca.Measure(name="a", kind="rows", range=(0, 1), invariances=frozenset(), **base)
    with pytest.raises(ValueError, match="range must be \\(low, high\\) with low < high"):
        svcca.Measure(name="a", kind="samples", range=(1, 0), invariances=frozenset(), **base)
    with pytest.raises(ValueError, match=r"unknown invariances \['rotation'\]"):
        svcca.Measure(
            name="a", kind="samples", range=(0, 1), invariances=frozenset({"rotation"}), **base
        )
    with pytest.raises(ValueError, match="give both prepare and combine"):
        svcca.Measure(
            name="a", kind="samples", range=(0, 1), invariances=frozenset(),
            prepare=np.asarray, **base,
        )
    with pytest.raises(TypeError, match="function must be callable"):
        svcca.Measure(
            name="a", kind="samples", range=(0, 1), invariances=frozenset(), function=1,
            symmetric=True, description="d",
        )


def test_parameters_change_the_declared_invariances():
    assert "invertible_linear" in svcca.MEASURES["shape_distance"].invariances_for(alpha=0.0)
    assert "invertible_linear" not in svcca.MEASURES["shape_distance"].invariances_for()
    rsa_corr = svcca.MEASURES["rsa"].invariances_for(metric="correlation")
    assert rsa_corr == frozenset({"isotropic_scaling", "permutation"})
    assert "isotropic_scaling" not in svcca.MEASURES["cka_rbf"].invariances_for(sigma=1.0)
    with pytest.raises(TypeError, match="takes no parameter 'alpha'"):
        svcca.MEASURES["cca"].invariances_for(alpha=0.0)


@pytest.mark.parametrize("measure", ["shape_distance", "rsa", "cka_rbf"])
def test_parameter_dependent_invariances_hold(measure):
    """The declarations that depend on parameters are true for those parameters."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 5)) + 3.0
    Y = np.tanh(X[:, :3]) + 0.3 * rng.standard_normal((200, 3))
    params = {"shape_distance": {"alpha": 0.0}, "rsa": {"metric": "correlation"},
              "cka_rbf": {"sigma": 2.0}}[measure]
    m = svcca.MEASURES[measure]
    A = rng.standard_normal((5, 5)) + 2 * np.eye(5)
    changes = {"invertible_linear": X @ A, "isotropic_scaling": 3.7 * X,
               "translation": X + rng.uniform(5, 10, 5)}
    base = m.score(X, Y, **params)
    for inv, TX in changes.items():
        moved = abs(m.score(TX, Y, **params) - base)
        if inv in m.invariances_for(**params):
            assert moved <= 1e-9, (inv, moved)
        else:
            assert moved > 1e-6, (inv, moved)


def test_svcca_measures_lists_every_measure(capsys):
    assert main(["measures"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(invariance_table())
    for name in svcca.MEASURES:
        assert f"\n{name}: " in out
    assert main(["measures", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in listed] == list(svcca.MEASURES)
    cca = next(d for d in listed if d["name"] == "cca")
    assert cca["invariances"] == sorted(svcca.MEASURES["cca"].invariances_for())
    assert cca["range"] == [0.0, 1.0] and cca["kind"] == "moments"
