"""``sequence="keep"`` over batches of different lengths: the layer, the lengths, the fix.

It failed with NumPy's concatenate message (capture) or a broadcast error (compare).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("svcca.torch")
nn = torch.nn


@pytest.fixture()
def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()


def test_capture_names_the_layer_the_lengths_and_the_fix(net):
    batches = [torch.randn(2, 5, 4), torch.randn(2, 5, 4), torch.randn(2, 7, 4)]
    with pytest.raises(
        st.CaptureError,
        match=r"Layer '2' gave \(7, 3\) per datapoint on batch 2, but \(5, 3\) on the first "
        r"batch: .* sequences of 7 and 5 time steps, and sequence='keep' keeps each "
        r"datapoint's whole sequence, so every batch needs one length: pad the inputs",
    ):
        st.capture(net, batches, ["2"], sequence="keep", mask=None)


def test_maps_of_different_sizes_point_to_conv_mean():
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    with pytest.raises(
        st.CaptureError,
        match=r"Layer '0' gave \(2, 6, 6\) per datapoint on batch 1, but \(2, 5, 5\) .*"
        r"conv maps of different sizes need conv='mean'",
    ):
        st.capture(conv, [torch.randn(3, 1, 5, 5), torch.randn(3, 1, 6, 6)], ["0"])


def test_compare_and_capture_moments_refuse_keep(net):
    batches = [torch.randn(8, 5, 4)]
    with pytest.raises(ValueError, match=r"sequence='keep' gives each datapoint a whole"):
        st.compare(net, net, batches, ["0"], sequence="keep", mask=None)
    with pytest.raises(ValueError, match=r"capture_moments needs 2-D activations, and "):
        st.capture_moments(net, batches, [("0", "2")], sequence="keep", mask=None)
