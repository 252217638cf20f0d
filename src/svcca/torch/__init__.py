"""PyTorch integration: record the activations of named modules.

``import svcca`` never imports this package (nor torch); import it explicitly::

    import svcca.torch

- :func:`capture`: activations of named modules over a DataLoader, in memory.
- :func:`capture_to_disk`: the same, written batch by batch to ``.npy`` or
  ``.safetensors`` files (temporary names, atomic renames), resumable.
- :func:`capture_moments`: straight into :class:`svcca.Moments`, no activation stored.
- :func:`capture_stream`: the callback underneath, for any other accumulator.
- :func:`capture_checkpoints`: the same layers at every checkpoint of a training run
  (``torch.load(..., weights_only=True)``).
"""

from svcca.torch._capture import CaptureError, capture, capture_stream
from svcca.torch._disk import DiskCapture, capture_to_disk, load_capture
from svcca.torch._stream import capture_checkpoints, capture_moments, load_checkpoint

__all__ = [
    "CaptureError",
    "DiskCapture",
    "capture",
    "capture_checkpoints",
    "capture_moments",
    "capture_stream",
    "capture_to_disk",
    "load_capture",
    "load_checkpoint",
]
