"""Inputs behave the same on every path: torch tensors that require grad, bfloat16, float16.

A tensor becomes NumPy in one place (``svcca._validation.tensor_to_numpy``, used by
``as_representation``, ``Source.read`` and conv's ``as_conv``; the device path
``moments_of_tensors`` detaches the same way). So every measure must give, for a tensor,
the number it gives for the float64 NumPy array of *the same values*:

- a float32 tensor with ``requires_grad=True``: its own values, in float64;
- a bfloat16 (float16) tensor: the float64 array of its *rounded* values, so the
  comparison is like with like. Rounding to bfloat16 moves each entry by up to
  2^-9 relative (unit round-off; eps is 2^-8), float16 by 2^-11: that difference
  belongs to the data, not to the library, and is not what is tested here.

Both sides then compute in float64 from identical float64 values; they differ only in
the order of summation (torch's kernels on the device path, NumPy's BLAS otherwise).
With n = 64 samples and well-conditioned data (condition number of each side below
10, checked), each score carries a round-off of about ``n * cond * eps64 ~ 1.4e-13``;
``TOL = 1e-11`` leaves a factor 70 of margin and is still 10^8 times smaller than
bfloat16's eps, so any dtype slip (a float32 or bfloat16 computation) fails it.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import svcca  # noqa: E402
from svcca import conv, stats  # noqa: E402

torch.set_num_threads(1)

EPS64 = np.finfo(np.float64).eps
N = 64
TOL = 1e-11
KINDS = ("float32_requires_grad", "bfloat16", "float16")


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, 5))
    Y = np.tanh(X @ rng.standard_normal((5, 4))) + 0.5 * rng.standard_normal((N, 4))
    A = rng.standard_normal((N, 4, 4, 3))
    B = np.roll(A, 1, axis=1)[..., :2] + 0.5 * rng.standard_normal((N, 4, 4, 2))
    return X, Y, A, B


def as_tensor(a: np.ndarray, kind: str):
    """The tensor of ``kind`` holding ``a``, and the float64 array of its exact values."""
    if kind == "float32_requires_grad":
        t = torch.tensor(a, dtype=torch.float32, requires_grad=True)
    else:
        t = torch.tensor(a, dtype=getattr(torch, kind))
    return t, t.detach().to(torch.float64).numpy().copy()


def _minibatch(a, b):
    acc = svcca.MinibatchCKA()
    for s in range(0, N, 32):
        acc.update(a[s : s + 32], b[s : s + 32])
    return acc.scores()


# Each entry: (X, Y) -> the numbers a measure returns (score and, where there are
# more, the whole spectrum).
MEASURES = {
    "cca": lambda a, b: svcca.cca(a, b).correlations,
    "svcca": lambda a, b: svcca.svcca(a, b, keep=3).score,
    "pwcca": lambda a, b: svcca.pwcca(a, b).score,
    "pls": lambda a, b: svcca.pls(a, b).singular_values,
    "pca": lambda a, b: svcca.pca(a).eigenvalues,
    "cka_linear_feature": lambda a, b: svcca.cka(a, b, method="feature").score,
    "cka_linear_sample": lambda a, b: svcca.cka(a, b, method="sample").score,
    "cka_linear_auto": lambda a, b: svcca.cka(a, b).score,
    "cka_rbf": lambda a, b: svcca.cka(a, b, kernel="rbf").score,
    "cka_debiased": lambda a, b: svcca.cka(a, b, debiased=True).score,
    "cka_rbf_debiased": lambda a, b: svcca.cka(a, b, kernel="rbf", debiased=True).score,
    "minibatch_cka": _minibatch,
    "procrustes": lambda a, b: svcca.procrustes(a, b).score,
    "shape_distance": lambda a, b: svcca.shape_distance(a, b, alpha=0.5).distance,
    "regression_fit": lambda a, b: svcca.regression_fit(a, b).score,
    "rsa": lambda a, b: svcca.rsa(a, b).score,
    "rdm": lambda a, b: svcca.rdm(a),
    "moments": lambda a, b: svcca.Moments.from_arrays(a, b).sxy,
    **{
        f"pairwise_{m}": functools.partial(
            lambda a, b, m: svcca.pairwise({"a": a, "b": b}, measure=m).values, m=m
        )
        for m in ("cca", "svcca", "pwcca", "pls", "cka_linear")
    },
    "permutation_test": lambda a, b: np.r_[
        (r := stats.permutation_test(svcca.cka, a, b, n_permutations=19, seed=0)).statistic,
        r.null_distribution,
    ],
    "permutation_test_loop": lambda a, b: (
        stats.permutation_test(
            svcca.cca, a, b, n_permutations=5, seed=0, vectorized=False
        ).null_distribution
    ),
    "bootstrap": lambda a, b: stats.bootstrap(svcca.cka, a, b, n_resamples=10, seed=0).distribution,
    "null_baseline_shuffle": lambda a, b: (
        stats.null_baseline(svcca.cka, a, b, kind="shuffle", n_repeats=5, seed=0).scores
    ),
}


def test_the_data_is_well_conditioned():
    X, Y, _, _ = _data()
    for M in (X, Y):
        Mc = M - M.mean(axis=0)
        assert np.linalg.cond(Mc) < 10  # the round-off budget of TOL assumes it


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mixed", [False, True], ids=["both_tensors", "tensor_and_numpy"])
@pytest.mark.parametrize("name", list(MEASURES))
def test_tensor_scores_like_the_float64_array_of_its_values(name, kind, mixed):
    X, Y, _, _ = _data()
    tx, x64 = as_tensor(X, kind)
    ty, y64 = as_tensor(Y, kind)
    if mixed:  # one tensor and one NumPy array: the chunked Source path
        ty = y64
    expected = np.asarray(MEASURES[name](x64, y64), dtype=np.float64)
    got = np.asarray(MEASURES[name](tx, ty), dtype=np.float64)
    assert got.shape == expected.shape
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
    if kind == "float32_requires_grad":
        assert tx.requires_grad and tx.grad is None  # read, never differentiated through


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_fourier_cca_takes_the_same_tensors(kind, layout):
    _, _, A, B = _data()
    if layout == "nchw":
        A, B = A.transpose(0, 3, 1, 2), B.transpose(0, 3, 1, 2)
    ta, a64 = as_tensor(np.ascontiguousarray(A), kind)
    tb, b64 = as_tensor(np.ascontiguousarray(B), kind)
    ref = conv.fourier_cca(a64, b64, layout=layout)
    res = conv.fourier_cca(ta, tb, layout=layout)
    np.testing.assert_allclose(res.score, ref.score, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(res.correlations, ref.correlations, rtol=TOL, atol=TOL)
    for strategy in ("flatten", "avgpool"):
        got = conv.compare(ta, tb, layout=layout, strategy=strategy, measure=svcca.cca)
        want = conv.compare(a64, b64, layout=layout, strategy=strategy, measure=svcca.cca)
        np.testing.assert_allclose(got.score, want.score, rtol=TOL, atol=TOL)


def test_bfloat16_becomes_float32_exactly_and_float16_stays():
    # private: the array a tensor becomes is what this pins; no public function returns it
    from svcca._validation import as_representation

    X, _, _, _ = _data()
    t16 = torch.tensor(X, dtype=torch.bfloat16)
    a = as_representation(t16, "X")
    assert a.dtype == np.float32  # no NumPy bfloat16: upcast on the tensor's side
    assert np.array_equal(a.astype(np.float64), t16.to(torch.float64).numpy())
    h = as_representation(torch.tensor(X, dtype=torch.float16), "X")
    assert h.dtype == np.float16
    g = torch.tensor(X, requires_grad=True)
    assert np.array_equal(as_representation(g, "X"), X)


def test_rounding_is_the_only_difference_a_bfloat16_tensor_makes():
    # Against the unrounded data the scores move by the data's rounding alone: each
    # entry by at most 2^-9 relative, which moves a smooth score of well-conditioned
    # data by a small multiple of that (a loose bound: 8 * 2^-8).
    X, Y, _, _ = _data()
    for f in (MEASURES["cca"], MEASURES["cka_linear_feature"], MEASURES["procrustes"]):
        exact = np.asarray(f(X, Y))
        got = np.asarray(f(as_tensor(X, "bfloat16")[0], as_tensor(Y, "bfloat16")[0]))
        assert np.max(np.abs(got - exact)) < 8 * 2.0**-8
        assert np.max(np.abs(got - exact)) > 1e3 * EPS64  # it did round, and was not hidden


@pytest.mark.parametrize("kind", KINDS)
def test_two_pass_svcca_and_bartlett_take_the_same_tensors(kind):
    X, Y, _, _ = _data()
    tx, x64 = as_tensor(X, kind)
    ty, y64 = as_tensor(Y, kind)
    np.testing.assert_allclose(
        svcca.svcca_two_pass(tx, ty, keep=3).score,
        svcca.svcca_two_pass(x64, y64, keep=3).score,
        rtol=TOL,
        atol=TOL,
    )
    np.testing.assert_allclose(
        stats.bartlett(tx, ty).statistics, stats.bartlett(x64, y64).statistics, rtol=TOL
    )


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(MEASURES))
def test_cuda_tensors_score_like_the_float64_array_of_their_values(name, kind):
    # The device path: moments on the GPU (moments_of_tensors), samples copied to the host
    # by tensor_to_numpy. Selected on purpose with -m gpu.
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    X, Y, _, _ = _data()
    tx, x64 = as_tensor(X, kind)
    ty, y64 = as_tensor(Y, kind)
    tx, ty = tx.detach().cuda().requires_grad_(tx.requires_grad), ty.detach().cuda()
    expected = np.asarray(MEASURES[name](x64, y64), dtype=np.float64)
    got = np.asarray(MEASURES[name](tx, ty), dtype=np.float64)
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
