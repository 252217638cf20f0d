"""Torch tensors as inputs: GPU tensors computed on their device, CPU tensors on the host path."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import latent_pair
from svcca import pairwise

torch = pytest.importorskip("torch")


def pair(n=1500, p=10, q=7, seed=0):
    """Two related layers, X through tanh and offset by 3 (a mean to shift away)."""
    return latent_pair(n, p, q, seed=seed, x_tanh=True, x_noise=0.1, x_offset=3.0, y_noise=0.2)


def test_moments_of_tensors_match_numpy():
    X, Y = pair()
    m = svcca.Moments.from_arrays(torch.from_numpy(X), torch.from_numpy(Y), chunk_size=400)
    ref = svcca.Moments.from_arrays(X, Y)
    for key in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
        got = getattr(m, key)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        np.testing.assert_allclose(got, getattr(ref, key), rtol=1e-12, atol=1e-10)


def test_measures_accept_tensors_and_return_numpy():
    X, Y = pair(seed=1)
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    r = svcca.cca(tx, ty)
    assert isinstance(r.correlations, np.ndarray) and isinstance(r.score, float)
    np.testing.assert_allclose(r.correlations, svcca.cca(X, Y).correlations, atol=1e-10)
    assert svcca.svcca(tx, ty).score == pytest.approx(svcca.svcca(X, Y).score, abs=1e-10)
    assert svcca.pwcca(tx, ty).score == pytest.approx(svcca.pwcca(X, Y).score, abs=1e-10)
    np.testing.assert_allclose(svcca.pca(tx).eigenvalues, svcca.pca(X).eigenvalues, atol=1e-10)
    # float32 tensors accumulate in float64
    r32 = svcca.cca(tx.float(), ty.float())
    ref32 = svcca.cca(X.astype(np.float32), Y.astype(np.float32))
    np.testing.assert_allclose(r32.correlations, ref32.correlations, atol=1e-10)
    # a tensor and a NumPy array together (read chunk by chunk to the host)
    assert svcca.cca(tx, Y).score == pytest.approx(svcca.cca(X, Y).score, abs=1e-10)


def test_pairwise_with_tensors():
    X, Y = pair(seed=2)
    reps = {"x": X, "y": Y, "z": np.sin(X)}
    ref = pairwise(reps, measure="svcca")
    got = pairwise({k: torch.from_numpy(v) for k, v in reps.items()}, measure="svcca")
    np.testing.assert_allclose(got.values, ref.values, atol=1e-10)


def test_tensor_errors():
    X, Y = pair(n=100)
    tx = torch.from_numpy(X)
    with pytest.raises(ValueError, match="'Y' has 99 samples but 'X' has 100"):
        svcca.cca(tx, torch.from_numpy(Y[:99]))
    with pytest.raises(ValueError, match="must be 2-D"):
        svcca.cca(tx, torch.zeros(100))
    with pytest.raises(TypeError, match="must hold real numbers"):
        svcca.cca(tx, torch.zeros((100, 2), dtype=torch.complex64))
    bad = tx.clone()
    bad[5, 0] = float("nan")
    with pytest.raises(ValueError, match=r"X contains NaN or inf in rows \[5\]"):
        svcca.cca(bad, torch.from_numpy(Y))


@pytest.mark.gpu
def test_cuda_tensors_stay_on_the_device():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, Y = pair(seed=3)
    tx, ty = torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda()
    np.testing.assert_allclose(
        svcca.cca(tx, ty).correlations, svcca.cca(X, Y).correlations, atol=1e-9
    )
    with pytest.raises(ValueError, match="to one device"):
        svcca.cca(tx, torch.from_numpy(Y))
