"""The sanity check's rows are the registry's names and every registered measure that
runs on whole activations, so a measure registered later is scored with no change."""

from __future__ import annotations

import numpy as np

import svcca
from svcca._demo import _sanity as sn


def _mean_abs_corr(X, Y):
    C = np.corrcoef(X, Y, rowvar=False)
    return float(np.abs(C[: X.shape[1], X.shape[1] :]).mean())


def test_rows_are_registry_names_with_parameters():
    rows = sn.rows()
    assert "cka_rbf (bandwidth=0.4)" in rows and "cca [mean_squared]" in rows
    for row in rows:
        assert row.split(" ")[0] in svcca.MEASURES, row
    served = {n for n, m in svcca.MEASURES.items() if m.kind != "minibatch"}
    assert {row.split(" ")[0] for row in rows} == served


def test_a_measure_registered_later_is_a_row_equal_to_its_single_call():
    svcca.register(
        _mean_abs_corr,
        name="test_sanity_mac",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=frozenset({"translation"}),
        replace=True,
    )
    try:
        assert sn.rows()[-1] == "test_sanity_mac"
        rng = np.random.default_rng(0)
        a = [rng.standard_normal((80, 4)), rng.standard_normal((80, 3))]
        b = [a[0] + 0.5 * rng.standard_normal((80, 4)), rng.standard_normal((80, 5))]
        got = sn.similarity_matrices(a, b)["test_sanity_mac"]
        want = [[_mean_abs_corr(P, Q) for Q in b] for P in a]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    finally:
        from svcca._measures import _registry

        del _registry._REGISTRY["test_sanity_mac"]
