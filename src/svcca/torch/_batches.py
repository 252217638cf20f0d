"""What a batch holds: its datapoints, packed sequences, masks, the device it is moved
to, and the warning for a loader that shuffles."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from svcca.torch._layers import _describe
from svcca.torch._options import (
    BATCH_KEYS,
    DECODER_KEYS,
    CaptureError,
    CaptureOptions,
    CaptureWarning,
)

__all__ = [
    "batch_datapoints",
    "check_packed",
    "order_free",
]


def _is_packed(x: Any) -> bool:
    from torch.nn.utils.rnn import PackedSequence

    return isinstance(x, PackedSequence)


def _packed_in(batch: Any) -> bool:
    """Whether a batch is a PackedSequence, or a tuple / list that starts with one."""
    if _is_packed(batch):
        return True
    return isinstance(batch, (tuple, list)) and bool(batch) and _is_packed(batch[0])


def check_packed(batch: Any, i: int, opts: CaptureOptions, forward: Any) -> None:
    """Refuse a PackedSequence batch that would be fed or counted the namedtuple way."""
    if not _packed_in(batch) or (forward is not None and opts.datapoints is not None):
        return
    what = []
    if forward is None:
        what.append(
            "the default forward would feed the model only its .data, (total tokens, "
            "features), as if it were a batch of that many datapoints"
        )
    if opts.datapoints is None:
        what.append("the number of datapoints (sequences) cannot be read from it")
    raise CaptureError(
        f"Batch {i} is {'' if _is_packed(batch) else 'a tuple that starts with '}a "
        f"torch.nn.utils.rnn.PackedSequence, a namedtuple: {'; '.join(what)}. Pass "
        "forward=lambda m, b: m(b) (or m(b[0]) for a tuple) to feed it whole, "
        "datapoints=lambda b: int(b.batch_sizes[0]) for its number of sequences, and "
        "select=svcca.torch.rnn_state() to record an RNN's final state (its output sequence "
        "is packed too: unpack it in select= with torch.nn.utils.rnn.pad_packed_sequence)."
    )


def _lead_tensor(batch: Any) -> Any:
    """The tensor whose size gives a batch's number of datapoints, or None."""
    import torch

    if _is_packed(batch):
        return None  # its .data is (total tokens, features)
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        for key in BATCH_KEYS:
            if isinstance(batch.get(key), torch.Tensor):
                return batch[key]
        for v in batch.values():
            if isinstance(v, torch.Tensor):
                return v
        return None
    if isinstance(batch, (tuple, list)) and batch:
        return _lead_tensor(batch[0])
    return None


def batch_datapoints(batch: Any, *, time_axis: int = 1) -> int | None:
    """How many datapoints a batch holds, as the capture reads it (None: cannot tell).

    The first dimension of the batch if it is a tensor, of its first element if it is a
    tuple or list (a DataLoader's ``(inputs, labels)``), or of a mapping's
    ``input_ids`` / ``inputs_embeds`` / ``pixel_values`` / ``input_values`` /
    ``input_features`` (the first of those present, else its first tensor value). With
    ``time_axis=0`` the inputs are time-major too, ``(T, n, ...)``, and ``n`` is their
    second dimension. A ``PackedSequence`` (whose ``.data`` is ``(total tokens, ...)``)
    gives None.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> svcca.torch.batch_datapoints((torch.zeros(32, 3, 8, 8), torch.zeros(32)))  # (x, labels)
    32
    >>> svcca.torch.batch_datapoints({"input_ids": torch.zeros(4, 12, dtype=torch.long)})
    4
    >>> svcca.torch.batch_datapoints(torch.zeros(12, 4, 5), time_axis=0)  # (T, n, features)
    4
    """
    t = _lead_tensor(batch)
    if t is None or t.ndim == 0:
        return None
    if time_axis == 0:
        return int(t.shape[1]) if t.ndim >= 2 else None
    return int(t.shape[0])


@dataclass
class _Batch:
    """What the capture knows about the batch being run."""

    index: int
    n: int
    mask: Any  # (n, T) bool tensor or None
    mask_source: str


def _inspect_batch(batch: Any, i: int, opts: CaptureOptions) -> _Batch:
    import torch

    if opts.datapoints is not None:
        n = opts.datapoints(batch)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise CaptureError(
                f"datapoints(batch) must return the batch's number of datapoints, an int >= "
                f"1; got {n!r} on batch {i}."
            )
        n = int(n)
    else:
        got = batch_datapoints(batch, time_axis=opts.time_axis)
        if got is None:
            raise CaptureError(
                f"Cannot tell how many datapoints batch {i} ({_describe(batch)}) holds: it "
                "has no tensor to read it from (a tensor, a tuple whose first element is one, "
                "or a mapping with 'input_ids' or 'pixel_values'). Pass datapoints=lambda "
                "batch: <count> so that every output can be checked for one row per "
                "datapoint."
            )
        if got == 0:
            raise CaptureError(
                f"Batch {i} ({_describe(batch)}) holds no datapoints: there is nothing to "
                "record. Drop empty batches from the data (a filter or sampler that can "
                "yield one)."
            )
        n = got
    if opts.mask is None:
        return _Batch(i, n, None, "")
    if opts.mask == "auto":
        if not isinstance(batch, Mapping):
            return _Batch(i, n, None, "")
        decoder = [k for k in DECODER_KEYS if batch.get(k) is not None]
        if decoder and opts.sequence not in (None, "keep"):
            raise CaptureError(
                f"Batch {i} has decoder inputs ({', '.join(decoder)}) besides the encoder's: "
                "an encoder-decoder model has two sequences, and mask='auto' cannot tell "
                "which one a recorded module's positions belong to (the encoder's "
                "attention_mask would mask decoder outputs of the same length). Say it: "
                "mask=lambda b: b['attention_mask'] for encoder layers, mask=lambda b: "
                "b['decoder_attention_mask'] (or mask=None when the decoder inputs have no "
                "padding) for decoder layers, and capture the two in separate calls."
            )
        if batch.get("attention_mask") is None:
            return _Batch(i, n, None, "")
        raw, source = batch["attention_mask"], "the batch's attention_mask"
    else:
        raw, source = opts.mask(batch), "mask(batch)"
        if raw is None:
            return _Batch(i, n, None, "")
    m = torch.as_tensor(raw)
    if m.ndim != 2 or m.shape[0] != n:
        raise CaptureError(
            f"{source} must be (n, T) = ({n}, T) for batch {i} with {n} datapoints (1 for a "
            f"real token, 0 for padding); got shape {tuple(m.shape)}. Pass mask=None to count "
            "every position, or mask=lambda batch: ... to give it."
        )
    if m.dtype != torch.bool:
        if m.is_floating_point() or m.is_complex():
            raise CaptureError(
                f"{source} on batch {i} is a floating-point mask (dtype {m.dtype}); it is not "
                "read as 0/1 because an additive mask (0 for real tokens, -inf or -1e9 for "
                "padding) is floating point too. Say which: mask=lambda batch: "
                "batch['attention_mask'] > 0 for a 0/1 mask, == 0 for an additive one."
            )
        if bool(((m != 0) & (m != 1)).any()):
            raise CaptureError(
                f"{source} must hold only 0/1 (or bool) values on batch {i}; got dtype "
                f"{m.dtype} with other values. An additive (0 / -inf) mask must be converted "
                "first: mask=lambda batch: batch['mask'] == 0."
            )
        m = m != 0
    empty = (~m.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise CaptureError(
            f"{source} on batch {i} marks no real token for datapoints {empty[:10]} (rows of "
            "the batch): they have nothing to record. Drop them from the data."
        )
    return _Batch(i, n, m, source)


_SHUFFLE_MESSAGE = "batches is a DataLoader that shuffles"


@contextlib.contextmanager
def order_free() -> Iterator[None]:
    """No shuffling-loader warning inside: for results that do not depend on the order.

    Moments accumulated in one pass (every layer of the pass sees each batch together)
    are the same whatever order the datapoints come in.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SHUFFLE_MESSAGE, category=CaptureWarning)
        yield


def _warn_if_shuffled(batches: Any) -> None:
    try:
        from torch.utils.data import DataLoader, RandomSampler
    except ImportError:  # pragma: no cover - torch always has it
        return
    if not isinstance(batches, DataLoader):
        return
    samplers = [batches.sampler, getattr(batches.batch_sampler, "sampler", None)]
    shuffles = any(
        isinstance(s, RandomSampler) or getattr(s, "shuffle", False) is True for s in samplers
    )
    if shuffles:
        warnings.warn(
            f"{_SHUFFLE_MESSAGE} (shuffle=True or a random sampler): every "
            "pass visits the datapoints in another order, so this capture's rows do not line "
            "up with another capture's (another model, layer set or checkpoint), and scores "
            "between them compare unrelated datapoints. Capture with shuffle=False.",
            CaptureWarning,
            stacklevel=4,
        )


# ---------------------------------------------------------------------------- outputs


def _default_forward(model: Any, batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _move(batch: Any, device: Any) -> Any:
    import torch

    if device is None:
        return batch
    if isinstance(batch, torch.Tensor) or _is_packed(batch):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _move(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(v, device) for v in batch)
    return batch


def _total(batches: Any) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None
