"""PyTorch integration: record the activations of named modules.

``import svcca`` never imports this package (nor torch); import it explicitly::

    import svcca.torch

- :func:`capture`: activations of named modules over a DataLoader, in memory.
- :func:`capture_to_disk`: the same, written batch by batch to ``.npy`` or
  ``.safetensors`` files (temporary names, atomic renames), resumable.
- :func:`capture_moments`: straight into :class:`svcca.Moments`, no activation stored.
- :func:`capture_stream`: the callback underneath, for any other accumulator.
- :func:`compare`: every layer of one model against every layer of another, in one pass
  over the batches (no activation stored), as a :class:`svcca.PairwiseResult`.
- :func:`capture_checkpoints`: the same layers at every checkpoint of a training run
  (``torch.load(..., weights_only=True)``).
- :func:`summary`: one batch through the model, every module's output and what
  capturing it needs (``select``, ``sequence``, ``conv``), as a table and as data.
- :func:`hidden_states`: a HuggingFace model's ``output_hidden_states`` (embeddings,
  then each layer) per datapoint, padding masked; :func:`hidden_states_stream` and
  :func:`hidden_state_moments` without storing activations.
- :func:`rnn_state`: ``select=`` for an RNN's final hidden state as ``(n, d)``.

``check_capture`` (a capture folder's integrity), imported below with ``as`` and left out
of ``__all__``, is *internal* API for the ``svcca verify`` command: not documented, free
to change.
"""

from svcca.torch._batches import batch_datapoints
from svcca.torch._capture import capture, capture_stream
from svcca.torch._compare import compare
from svcca.torch._disk import DiskCapture, capture_to_disk, load_capture
from svcca.torch._folder import CaptureLockedError, break_capture_lock
from svcca.torch._hf import (
    hidden_state_moments,
    hidden_state_names,
    hidden_states,
    hidden_states_stream,
)
from svcca.torch._manifest import check_capture as check_capture
from svcca.torch._options import CaptureError, CaptureWarning
from svcca.torch._select import rnn_state
from svcca.torch._stream import capture_checkpoints, capture_moments, load_checkpoint
from svcca.torch._summary import ModelSummary, ModuleSummary, summary

__all__ = [
    "CaptureError",
    "CaptureLockedError",
    "CaptureWarning",
    "DiskCapture",
    "ModelSummary",
    "ModuleSummary",
    "batch_datapoints",
    "break_capture_lock",
    "capture",
    "capture_checkpoints",
    "capture_moments",
    "capture_stream",
    "capture_to_disk",
    "compare",
    "hidden_state_moments",
    "hidden_state_names",
    "hidden_states",
    "hidden_states_stream",
    "load_capture",
    "load_checkpoint",
    "rnn_state",
    "summary",
]
