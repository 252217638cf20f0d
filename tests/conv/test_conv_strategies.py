"""svcca.conv.compare: the tutorial's spatial strategies with any measure."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import svcca
from svcca.conv import compare as _compare
from svcca.conv import fourier_cca as _fourier_cca
from svcca.conv import reduce_pair as _reduce_pair
from svcca.conv._strategies import _measures  # private: conv's own measure names

# Every map built in this module is (n, h, w, c): name that layout once (fourier_cca and
# compare require it for 4-D maps; a call may still pass layout="nchw").
fourier_cca = partial(_fourier_cca, layout="nhwc")
compare = partial(_compare, layout="nhwc")
reduce_pair = partial(_reduce_pair, layout="nhwc")


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((120, 6, 4, 5))
    B = A[..., :3] @ rng.standard_normal((3, 3)) + 0.5 * rng.standard_normal((120, 6, 4, 3))
    return A, B


def test_flatten_treats_positions_as_datapoints(layers):
    A, B = layers
    r = compare(A, B, strategy="flatten", measure="cca")
    expect = svcca.cca(A.reshape(-1, 5), B.reshape(-1, 3))
    np.testing.assert_allclose(r.correlations, expect.correlations, atol=1e-12)
    X, Y = reduce_pair(A, B, strategy="flatten")
    assert X.shape == (120 * 24, 5) and Y.shape == (120 * 24, 3)


def test_avgpool_is_the_spatial_mean(layers):
    A, B = layers
    r = compare(A, B, strategy="avgpool", measure="pwcca")
    expect = svcca.pwcca(A.mean(axis=(1, 2)), B.mean(axis=(1, 2)))
    assert r.score == pytest.approx(expect.score, abs=1e-12)
    # A dense layer (or a single output neuron) is already pooled.
    dense = A.mean(axis=(1, 2)) @ np.ones((5, 2))
    d = compare(A, dense, strategy="avgpool", measure="cca")
    assert d.correlations.size == 1 and d.correlations[0] == pytest.approx(1.0, abs=1e-10)


def test_interpolate_resizes_the_smaller_map(layers):
    A, _ = layers
    small = A[:, ::2, ::2, :]  # 3 x 2
    X, Y = reduce_pair(A, small, strategy="interpolate")
    assert X.shape == Y.shape == (120 * 24, 5)
    r = compare(small, A, strategy="interpolate", measure="cca")
    assert 0.0 < r.score < 1.0


def test_resize_is_linear_interpolation():
    """strategy="interpolate" resizes the smaller map linearly along each axis (was
    tested on the private _resize_matrix and _interpolate; reduce_pair shows both)."""
    ramp = np.arange(3.0).reshape(1, 3, 1, 1).repeat(2, axis=0)  # a 3 x 1 map, twice
    tall = np.zeros((2, 6, 1, 1))
    # A linear ramp stays linear between the outermost sample centres.
    X, _ = reduce_pair(ramp, tall, strategy="interpolate")
    np.testing.assert_allclose(X[:6, 0], [0, 0.25, 0.75, 1.25, 1.75, 2])
    _, Y = reduce_pair(tall, ramp, strategy="interpolate")  # whichever side is smaller
    np.testing.assert_allclose(Y[:6, 0], [0, 0.25, 0.75, 1.25, 1.75, 2])
    # The weights of each output position sum to 1: a constant map stays constant.
    X, _ = reduce_pair(np.full((2, 3, 1, 1), 7.0), tall, strategy="interpolate")
    np.testing.assert_allclose(X, 7.0)
    # Maps of the same size are not resized.
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 4))
    X, _ = reduce_pair(x, x[..., :1], strategy="interpolate")
    np.testing.assert_array_equal(X, x.reshape(-1, 4))
    # Non-square maps are resized per axis.
    X, Y = reduce_pair(x, np.zeros((2, 6, 5, 1)), strategy="interpolate")
    assert X.shape == (2 * 6 * 5, 4) and Y.shape == (2 * 6 * 5, 1)


def test_dft_strategy_is_fourier_cca(layers):
    A, B = layers
    r = compare(A, B)
    np.testing.assert_array_equal(r.correlations, fourier_cca(A, B).correlations)
    s = compare(A, B, strategy="dft", measure="svcca")
    assert s.keep == 0.99
    t = compare(A, B, strategy="dft", measure=svcca.svcca, keep=3)
    np.testing.assert_array_equal(t.correlations, fourier_cca(A, B, keep=3).correlations)


def test_any_measure_by_name_or_callable(layers):
    A, B = layers
    for name in ("cca", "svcca", "pwcca", "pls"):
        r = compare(A, B, strategy="avgpool", measure=name)
        assert np.isfinite(r.score)
    # The other measures of the library, where this checkout has them.
    for name in sorted(set(_measures()) - {"cca", "svcca", "pwcca", "pls"}):
        r = compare(A, B, strategy="avgpool", measure=name)
        # the headline number is the declared field (.distance for a distance)
        assert np.isfinite(getattr(r, svcca.MEASURES[name].score_field)), name
    seen = {}

    def mine(X, Y, *, scale):
        seen["shapes"] = (X.shape, Y.shape)
        return scale

    assert compare(A, B, strategy="flatten", measure=mine, scale=2.5) == 2.5
    assert seen["shapes"] == ((120 * 24, 5), (120 * 24, 3))
    r = compare(A, B, strategy="flatten", measure="svcca", keep=2)
    assert r.kept_x == 2


def test_nchw_layout(layers):
    A, B = layers
    a, b = A.transpose(0, 3, 1, 2), B.transpose(0, 3, 1, 2)
    for strategy in ("flatten", "avgpool", "interpolate"):
        r1 = compare(A, B, strategy=strategy)
        r2 = compare(a, b, strategy=strategy, layout="nchw")
        np.testing.assert_allclose(r1.correlations, r2.correlations, atol=1e-12)


@pytest.mark.parametrize(
    "name", ["svcca.conv._dft", "svcca.conv._strategies", "svcca.compat._dft_ccas"]
)
def test_docstring_examples(name):
    import doctest
    import importlib

    import svcca.compat

    if name.startswith("svcca.compat") and not hasattr(svcca.compat, "fourier_ccas"):
        pytest.skip("svcca.compat does not re-export fourier_ccas yet")
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0
