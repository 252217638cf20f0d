"""Every error path of svcca.conv: what was expected, what came, how to fix it."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from svcca.conv import compare as _compare
from svcca.conv import fourier_cca as _fourier_cca
from svcca.conv import reduce_pair as _reduce_pair

# Every map built in this module is (n, h, w, c): name that layout once (fourier_cca and
# compare require it for 4-D maps; a call may still pass layout="nchw").
fourier_cca = partial(_fourier_cca, layout="nhwc")
compare = partial(_compare, layout="nhwc")
reduce_pair = partial(_reduce_pair, layout="nhwc")


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 4, 4, 3)), rng.standard_normal((20, 4, 4, 2))


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((20, 4, 3)), r"must be 4-D .* got a 3-D array .* add the channel axis"),
        (np.zeros((20, 4, 4, 3, 1)), r"got a 5-D array of shape \(20, 4, 4, 3, 1\)"),
        (np.zeros(20), r"got a 1-D array"),
    ],
)
def test_wrong_rank(maps, bad, match):
    A, _ = maps
    with pytest.raises(ValueError, match=match):
        fourier_cca(A, bad)


def test_dense_input_where_a_map_is_needed(maps):
    A, _ = maps
    with pytest.raises(ValueError, match=r"dense layer .* strategy='dft' or 'avgpool'"):
        compare(A, np.zeros((20, 5)), strategy="flatten")
    with pytest.raises(ValueError, match="dense layer"):
        reduce_pair(np.zeros((20, 5)), A, strategy="interpolate")


def test_mismatched_samples(maps):
    A, B = maps
    with pytest.raises(ValueError, match=r"same datapoints: A has 20 .* B has 19"):
        fourier_cca(A, B[:19])
    with pytest.raises(ValueError, match="same datapoints"):
        compare(A, B[:19], strategy="avgpool")


def test_too_few_samples(maps):
    A, B = maps
    with pytest.raises(ValueError, match="At least 2 samples"):
        fourier_cca(A[:1], B[:1])


def test_layout(maps):
    A, B = maps
    with pytest.raises(
        ValueError, match=r"layout must be 'nhwc' or 'nchw'; got 'hwc'.*never guessed"
    ):
        fourier_cca(A, B, layout="hwc")
    with pytest.raises(ValueError, match="layout must be"):
        compare(A, B, strategy="avgpool", layout="NCHW")


def test_spatial_sizes_flatten_cannot_reconcile(maps):
    A, _ = maps
    with pytest.raises(
        ValueError, match=r"same spatial size; got \(4, 4\) and \(2, 4\).*interpolate"
    ):
        compare(A, A[:, :2], strategy="flatten")


def test_strategy_and_measure(maps):
    A, B = maps
    with pytest.raises(ValueError, match="strategy must be one of"):
        compare(A, B, strategy="maxpool")
    with pytest.raises(ValueError, match="strategy must be one of"):
        reduce_pair(A, B, strategy="dft")
    with pytest.raises(
        ValueError, match=r"supports measure='cca' or 'svcca' only; got measure='pwcca'"
    ):
        compare(A, B, strategy="dft", measure="pwcca")
    with pytest.raises(ValueError, match=r"measure must be one of .*'cca'.*; got 'ccaa'"):
        compare(A, B, strategy="avgpool", measure="ccaa")
    with pytest.raises(ValueError, match="measure must be one of"):
        compare(A, B, strategy="avgpool", measure="pca")  # one representation only
    with pytest.raises(ValueError, match="measure must be one of"):
        compare(A, B, strategy="avgpool", measure="pairwise")  # not a measure of (X, Y)


def test_non_numeric_and_missing_input(maps):
    A, _ = maps
    with pytest.raises(TypeError, match="real numbers; got dtype complex128.*taken internally"):
        fourier_cca(A, A.astype(complex))
    with pytest.raises(TypeError, match="real numbers; got dtype <U1"):
        fourier_cca(A, np.full((20, 4, 4, 3), "a"))
    with pytest.raises(TypeError, match="must be an array of activations"):
        fourier_cca(A, None)
    with pytest.raises(TypeError, match="must be an array of activations"):
        fourier_cca("A", A)
    with pytest.raises(TypeError, match="could not be converted"):
        fourier_cca(A, [[1.0, 2.0], [3.0]])


def test_empty_and_nonfinite(maps):
    A, B = maps
    with pytest.raises(ValueError, match="is empty"):
        fourier_cca(A, np.zeros((20, 0, 4, 2)))
    bad = B.copy()
    bad[3, 1, 1, 0] = np.nan
    bad[7, 0, 0, 1] = np.inf
    with pytest.raises(
        ValueError, match=r"B contains NaN or inf in 2 of its 20 samples \(first: \[3, 7\]\)"
    ):
        fourier_cca(A, bad)


def test_knobs(maps):
    A, B = maps
    with pytest.raises(ValueError, match=r"keep must be a number in \(0, 1\)"):
        fourier_cca(A, B, keep=1.5)
    with pytest.raises(ValueError, match="variance must be"):
        fourier_cca(A, B, keep=0.9, variance="total")
    with pytest.raises(ValueError, match="epsilon must be"):
        fourier_cca(A, B, epsilon=-1.0)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        fourier_cca(A, B, threshold=2.0)


def test_result_methods(maps):
    A, B = maps
    r = fourier_cca(A, B)
    with pytest.raises(ValueError, match=r"maps of shape \(4, 2, 3\) .* fitted A had \(4, 4, 3\)"):
        r.transform(A[:, :, :2])
    with pytest.raises(ValueError, match="side must be 'x' or 'y'"):
        r.spatial_weights(0, 0, side="z")
    with pytest.raises(IndexError, match=r"location \(4, 0\) is outside the 4 x 4"):
        r.spatial_weights(4, 0)


def test_a_4d_map_needs_its_layout():
    # Read as NHWC, an NCHW map swaps channels for a spatial axis and gives a plausible
    # wrong number: the layout of a 4-D map is never assumed.
    A = np.random.default_rng(0).standard_normal((200, 3, 4, 4))
    for call in (
        lambda: _fourier_cca(A, A),
        lambda: _compare(A, A, strategy="avgpool"),
        lambda: _reduce_pair(A, A, strategy="flatten"),
    ):
        with pytest.raises(
            ValueError,
            match=r"A is a 4-D map of shape \(200, 3, 4, 4\), and "
            r"layout was not given.*capture\(conv='keep'\) are channels-first: "
            r"layout='nchw'",
        ):
            call()
    # Dense layers have no layout to get wrong.
    d = A.reshape(200, -1)
    assert _fourier_cca(d, d).score == pytest.approx(1.0)
    assert _fourier_cca(A, A, layout="nchw").score == pytest.approx(1.0)
