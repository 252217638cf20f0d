"""A DegenerateError advises only what the measure that raised it can change.

cka, rsa and procrustes advised lowering an ``epsilon`` they do not take.
"""

from __future__ import annotations

import numpy as np
import pytest

import svcca


@pytest.fixture()
def layers():
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((60, 4))
    return np.ones((60, 3)), Y


@pytest.mark.parametrize(
    "measure",
    [
        svcca.cka,
        lambda X, Y: svcca.cka(X, Y, kernel="rbf"),
        svcca.procrustes,
        svcca.shape_distance,
        svcca.cca,
        svcca.pwcca,
        svcca.svcca,
    ],
)
def test_a_constant_layer_is_refused_without_advice_about_knobs(layers, measure):
    X, Y = layers
    with pytest.raises(
        svcca.DegenerateError,
        match=r"Representation X \(3 features\) has nothing to compare: .* drop it from "
        r"the comparison\.$",
    ) as info:
        measure(X, Y)
    assert "epsilon" not in str(info.value)


def test_rsa_advises_another_dissimilarity(layers):
    X, Y = layers
    with pytest.raises(
        svcca.DegenerateError,
        match=r"drop it from the comparison, or choose another metric= if its datapoints "
        r"differ but are equidistant\.",
    ) as info:
        svcca.rsa(X, Y)
    assert "epsilon" not in str(info.value)


def test_cca_pruning_never_advises_epsilon(layers):
    """epsilon is relative to the layer's largest variance (< 1): it never prunes the
    largest feature, so only constant features leave nothing and lowering it is no fix."""
    _, Y = layers
    X = np.zeros((60, 3))
    with pytest.raises(svcca.DegenerateError, match=r"every feature was pruned") as info:
        svcca.cca(X, Y, epsilon=0.5)
    assert "epsilon" not in str(info.value)
