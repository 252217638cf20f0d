"""svcca.torch.compare serves every registered measure: streamed, or per pair."""

from __future__ import annotations

import numpy as np
import pytest

import svcca

torch = pytest.importorskip("torch")
from svcca.torch import capture, compare  # noqa: E402


def _net(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 5))


def _batches():
    return list(torch.randn(200, 6, generator=torch.Generator().manual_seed(1)).split(50))


def test_two_models_with_a_measure_called_per_pair_and_its_parameters():
    a, b = _net(0), _net(1)
    got = compare(a, b, _batches(), ["0", "2"], measure="shape_distance", params={"alpha": 0.5})
    xa = capture(a, _batches(), ["0", "2"], dtype=np.float64)
    xb = capture(b, _batches(), ["0", "2"], dtype=np.float64)
    want = svcca.shape_distance(xa["2"], xb["0"], alpha=0.5).score
    assert got.values[1, 0] == pytest.approx(want, abs=1e-12)
    assert got.settings == {"alpha": 0.5} and got.dims_rows == (8, 5)


def test_wrong_parameters_and_memory_are_refused_with_the_fix(monkeypatch):
    a = _net(0)
    with pytest.raises(TypeError, match=r"Measure 'rsa' takes no parameter 'alpha'"):
        compare(a, a, _batches(), ["0"], measure="rsa", params={"alpha": 1})
    with pytest.raises(TypeError, match=r"params= is for measures called per pair"):
        compare(a, a, _batches(), ["0"], measure="cca", params={"epsilon": 0.1})
    monkeypatch.setenv("SVCCA_DEVICE_MEMORY", "1K")
    with pytest.raises(svcca.DeviceMemoryError, match=r"measure='procrustes' keeps the"):
        compare(a, a, _batches(), ["0"], measure="procrustes")
