"""The per-pair engine prepares each representation once and plans the prepared sides
against free memory before preparing any."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import svcca


def _reps(L=5, n=120):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((n, 4))
    return {f"l{i}": np.tanh(Z @ rng.standard_normal((4, 3 + i))) for i in range(L)}


@pytest.mark.parametrize("name", ["cka_rbf", "cka_rbf_debiased", "cka_linear_debiased", "rsa"])
def test_five_layers_take_five_preparations_and_equal_the_single_calls(name):
    """The library's own split measures, counted through a registered copy whose
    prepare counts its calls: L layers, L preparations (not L^2 or L (L + 1))."""
    lib = svcca.MEASURES[name]
    calls = []

    def counted(X, **kw):
        calls.append(1)
        return lib.prepare(X, **kw)

    copy = dataclasses.replace(lib, name=f"test_counted_{name}", prepare=counted)
    svcca.register(copy, replace=True)
    try:
        reps = _reps()
        got = svcca.pairwise(reps, measure=copy.name)
        assert len(calls) == 5
        for i, a in enumerate(reps.values()):
            for j, b in enumerate(reps.values()):
                assert abs(got.values[i, j] - lib.score(a, b)) <= 1e-12, (i, j)
        calls.clear()
        rect = svcca.pairwise(
            {"a": reps["l0"]}, {"b": reps["l1"], "c": reps["l2"]}, measure=copy.name
        )
        assert len(calls) == 3 and rect.shape == (1, 2)
    finally:
        from svcca._measures import _registry

        del _registry._REGISTRY[copy.name]


def test_prepared_sides_that_do_not_fit_are_refused_before_any_is_prepared(monkeypatch):
    """Three 200-row layers of 6 features take 29 KB; their RBF Gram matrices 960 KB:
    with 400 KB free the rows would fit, the sides do not."""
    rng = np.random.default_rng(1)
    reps = {f"l{i}": rng.standard_normal((200, 6)) for i in range(3)}
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "400K")
    with pytest.raises(
        svcca.DeviceMemoryError,
        match=r"measure='cka_rbf' keeps its prepared sides .* for 200 datapoints: 1\.\d+ MiB.*"
        r"fewer datapoints \(an n x n side grows as n\^2\)",
    ):
        svcca.pairwise(reps, measure="cka_rbf")
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "4M")
    assert svcca.pairwise(reps, measure="cka_rbf").shape == (3, 3)


def test_compare_plans_the_sides_its_activations_become(monkeypatch):
    torch = pytest.importorskip("torch")
    from svcca.torch import compare

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5))
    batches = list(torch.randn(200, 6, generator=torch.Generator().manual_seed(1)).split(50))
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "400K")
    with pytest.raises(
        svcca.DeviceMemoryError,
        match=r"measure='rsa' keeps the activations and the sides they are prepared into of "
        r"2 layers .* by batch \d+ \(\d+ datapoints\)",
    ):
        compare(net, net, batches, ["0", "2"], measure="rsa")
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "4M")
    assert compare(net, net, batches, ["0", "2"], measure="rsa").values.shape == (2, 2)
