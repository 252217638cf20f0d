"""A DataParallel, DistributedDataParallel or compiled model takes the plain model's names.

Their modules are named ``module.<name>`` / ``_orig_mod.<name>``; the names of the
model a user wrote used to be refused.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("svcca.torch")
nn = torch.nn


@pytest.fixture()
def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


@pytest.fixture()
def batches():
    torch.manual_seed(1)
    return list(torch.randn(40, 4).split(10))


class DDPLike(nn.Module):
    """DistributedDataParallel's structure (its one child ``module``), without a process
    group: DDP itself cannot be built on a machine without one."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


def test_data_parallel_takes_plain_and_prefixed_names(net, batches):
    want = st.capture(net, batches, ["0", "2"])
    dp = nn.DataParallel(net)  # on a machine without GPUs it runs the module itself
    assert "module.0" in dict(dp.named_modules())
    got = st.capture(dp, batches, ["0", "module.2"])
    assert set(got) == {"0", "module.2"}  # keyed by the names given
    np.testing.assert_array_equal(got["0"], want["0"])
    np.testing.assert_array_equal(got["module.2"], want["2"])
    got = st.capture(DDPLike(net), batches, ["2#0"], calls="each")
    np.testing.assert_array_equal(got["2#0"], want["2"])


def test_compiled_model_takes_plain_names(net, batches):
    want = st.capture(net, batches, ["0", "2"])
    compiled = torch.compile(net, backend="eager")  # no C compiler needed
    assert "_orig_mod.2" in dict(compiled.named_modules())
    got = st.capture(compiled, batches, ["0", "2"])
    for k in want:  # the same float32 kernels, eager
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7)


def test_compare_of_two_wrapped_models(net, batches):
    other = DDPLike(copy.deepcopy(net))
    r = st.compare(nn.DataParallel(net), other, batches, ["0", "2"], measure="cca")
    assert r.rows == ("0", "2")
    plain = st.compare(net, copy.deepcopy(net), batches, ["0", "2"], measure="cca")
    np.testing.assert_allclose(r.values, plain.values, atol=1e-12)


def test_an_unknown_name_in_a_wrapped_model_names_the_prefix(net, batches):
    with pytest.raises(
        ValueError,
        match=r"DataParallel has no module named 'fc'\. The model is wrapped \(DataParallel\): "
        r"the names inside it start with 'module\.', and both the plain and the prefixed "
        r"names are accepted\. Names come from model\.named_modules\(\): 'module', 'module\.0'",
    ):
        st.capture(nn.DataParallel(net), batches, ["fc"])
    named = nn.Sequential()
    named.add_module("encoder", nn.Linear(4, 4))
    with pytest.raises(
        ValueError, match=r"no module named 'encodr'\. Did you mean 'module\.encoder'"
    ):
        st.capture(DDPLike(named), batches, ["encodr"])
