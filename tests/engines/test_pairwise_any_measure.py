"""pairwise serves every registered measure: the one-pass engine, or per pair."""

from __future__ import annotations

import numpy as np
import pytest

import svcca


def _reps(n=200):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((n, 4))
    return {f"l{i}": np.tanh(Z @ rng.standard_normal((4, 6))) for i in range(3)}


def test_a_measure_called_per_pair_takes_its_parameters_and_records_them():
    reps = _reps()
    got = svcca.pairwise(reps, measure="shape_distance", params={"alpha": 0.5})
    want = svcca.shape_distance(reps["l0"], reps["l1"], alpha=0.5).score
    assert got["l0", "l1"] == want
    assert got.settings == {"alpha": 0.5} and got.measure == "shape_distance"
    rect = svcca.pairwise({"a": reps["l0"]}, {"b": reps["l1"], "c": reps["l2"]}, measure="rsa")
    assert rect.shape == (1, 2) and rect["a", "c"] == svcca.rsa(reps["l0"], reps["l2"]).score


def test_a_users_measure_works_in_pairwise_unchanged():
    def mean_abs_corr(X, Y):
        C = np.corrcoef(X, Y, rowvar=False)
        return float(np.abs(C[: X.shape[1], X.shape[1] :]).mean())

    svcca.register(mean_abs_corr, name="test_pairwise_mac", symmetric=True, range=(0.0, 1.0),
                   invariances=frozenset({"translation"}), replace=True)
    try:
        reps = _reps()
        got = svcca.pairwise(reps, measure="test_pairwise_mac")
        assert got["l1", "l2"] == mean_abs_corr(reps["l1"], reps["l2"])
    finally:
        from svcca._measures import _registry

        del _registry._REGISTRY["test_pairwise_mac"]


def test_wrong_measures_and_parameters_are_refused_with_the_fix():
    reps = _reps()
    with pytest.raises(ValueError, match=r"measure must be one of .*svcca measures"):
        svcca.pairwise(reps, measure="cosine")
    with pytest.raises(TypeError, match=r"Measure 'rsa' takes no parameter 'alpha'; it takes"):
        svcca.pairwise(reps, measure="rsa", params={"alpha": 1})
    with pytest.raises(TypeError, match=r"params= is for measures called per pair; .*'cca'"):
        svcca.pairwise(reps, measure="cca", params={"epsilon": 0.1})


def test_representations_that_do_not_fit_are_refused_before_reading(monkeypatch):
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1K")
    with pytest.raises(svcca.DeviceMemoryError, match=r"measure='procrustes' .* Compare fewer"):
        svcca.pairwise(_reps(), measure="procrustes")
