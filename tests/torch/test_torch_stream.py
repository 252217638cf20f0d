"""capture_moments with a second model: how its layers are named."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import svcca  # noqa: E402
import svcca.torch as st  # noqa: E402


def test_other_model_layers_by_plain_or_prefixed_name():
    torch.manual_seed(0)

    def net():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    a, b = net(), net()
    x = list(torch.randn(200, 4).split(50))
    plain = st.capture_moments(a, x, [("1", "1")], other=b)[("1", "1")]
    prefixed = st.capture_moments(a, x, [("1", "b.1")], other=b)[("1", "b.1")]
    ref = svcca.cca(st.capture(a, x, ["1"])["1"], st.capture(b, x, ["1"])["1"]).score
    assert svcca.cca(plain).score == svcca.cca(prefixed).score
    assert svcca.cca(plain).score == pytest.approx(ref, abs=1e-6)
