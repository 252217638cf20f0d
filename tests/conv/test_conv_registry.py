"""svcca.conv.compare reads the registry: its measure names are svcca.MEASURES' names."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from svcca.conv import compare, reduce_pair


@pytest.fixture(name="maps")
def _maps():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((80, 3, 3, 4))
    B = np.tanh(A @ rng.standard_normal((4, 3))) + 0.2 * rng.standard_normal((80, 3, 3, 3))
    return A, B


@pytest.mark.parametrize("name", sorted(svcca.MEASURES))
def test_every_registered_measure_equals_the_single_call_on_the_reduced_maps(name, maps):
    A, B = maps
    m = svcca.MEASURES[name]
    if m.kind == "minibatch":
        with pytest.raises(ValueError, match=f"cannot serve measure='{name}'"):
            compare(A, B, strategy="avgpool", measure=name, layout="nhwc")
        return
    X, Y = reduce_pair(A, B, strategy="avgpool", layout="nhwc")
    got = compare(A, B, strategy="avgpool", measure=name, layout="nhwc")
    assert getattr(got, m.score_field) == m.score(X, Y)


def test_the_old_names_are_gone_and_parameters_are_checked(maps):
    A, B = maps
    for old in ("cka", "regression_fit"):
        with pytest.raises(ValueError, match=rf"names of svcca.MEASURES.*got '{old}'"):
            compare(A, B, strategy="avgpool", measure=old, layout="nhwc")
    r = compare(A, B, strategy="avgpool", measure="cka_rbf", layout="nhwc", bandwidth=0.5)
    X, Y = reduce_pair(A, B, strategy="avgpool", layout="nhwc")
    assert r.score == svcca.cka(X, Y, kernel="rbf", bandwidth=0.5).score
    with pytest.raises(TypeError, match="Measure 'cka_rbf' takes no parameter 'alpha'"):
        compare(A, B, strategy="avgpool", measure="cka_rbf", layout="nhwc", alpha=1.0)
    with pytest.raises(
        ValueError, match="supports measure='cca' or 'svcca' only; got measure='rsa'"
    ):
        compare(A, B, strategy="dft", measure="rsa", layout="nhwc")


def test_a_minibatch_measure_is_refused_with_the_reason(maps):
    A, B = maps
    mb = svcca.Measure(
        "test_conv_mb",
        lambda X, Y: 0.0,
        "minibatch",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=frozenset(),
        description="minibatch",
    )
    with pytest.raises(ValueError, match="cannot serve measure='test_conv_mb': it accumulates"):
        compare(A, B, strategy="avgpool", measure=mb, layout="nhwc")


def test_prepared_sides_that_do_not_fit_are_refused_before_any_is_made(maps, monkeypatch):
    """flatten: 80 inputs x 9 positions = 720 datapoints; two RBF Gram matrices of them
    take 8.3 MB: refused with 4 MB free, served by avgpool (80 datapoints)."""
    A, B = maps
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "4M")
    with pytest.raises(
        svcca.DeviceMemoryError,
        match=r"measure='cka_rbf' and strategy='flatten' "
        r"compares 720 datapoints .* Use strategy='avgpool'",
    ):
        compare(A, B, strategy="flatten", measure="cka_rbf", layout="nhwc")
    assert np.isfinite(compare(A, B, strategy="avgpool", measure="cka_rbf", layout="nhwc").score)
