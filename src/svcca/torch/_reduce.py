"""Reducing a recorded output to one row per datapoint: conv maps (mean or flatten),
sequences (per token, mean, last, first), layouts checked against the options."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from svcca.torch._batches import _Batch
from svcca.torch._layers import _describe
from svcca.torch._options import CaptureError, CaptureOptions
from svcca.torch._select import RNNState

__all__ = [
    "ConvMarks",
    "check_model_layout",
    "is_conv_block",
    "is_conv_module",
]


def is_conv_module(module: Any) -> bool:
    """Whether a module's 3-D output is a channels-first map ``(n, c, L)``, by its type."""
    import torch.nn as nn
    from torch.nn.modules import batchnorm, conv, instancenorm, padding, pooling

    kinds = (
        conv._ConvNd,
        pooling._MaxPoolNd,
        pooling._AvgPoolNd,
        pooling._AdaptiveAvgPoolNd,
        pooling._AdaptiveMaxPoolNd,
        pooling._LPPoolNd,
        pooling._MaxUnpoolNd,
        padding._ConstantPadNd,
        padding._ReflectionPadNd,
        padding._ReplicationPadNd,
        padding._CircularPadNd,
        nn.PixelShuffle,
        nn.PixelUnshuffle,
        batchnorm._BatchNorm,
        instancenorm._InstanceNorm,
        nn.GroupNorm,
        nn.Upsample,
    )
    return isinstance(module, kinds)


def is_conv_block(module: Any) -> bool:
    """Whether a 4-D / 5-D output of ``module`` is a channels-first map, by its type.

    A conv-type module (:func:`is_conv_module`), or a block built of them: a module with
    a conv-type descendant and none that works on the last axis (``Linear``,
    ``LayerNorm``, attention), the way a ResNet block or stage is. A block that has such a
    descendant (a ConvNeXt layer runs its ``Linear`` layers channels-last) is not, nor is
    any other module: its 4-D output may be ``(n, h, w, c)``.
    """
    import torch.nn as nn

    if is_conv_module(module):
        return True
    last_axis = (nn.Linear, nn.Bilinear, nn.LayerNorm, nn.RMSNorm, nn.MultiheadAttention)
    found = False
    for m in module.modules():
        if m is module:
            continue
        if isinstance(m, last_axis):
            return False
        found = found or is_conv_module(m)
    return found


def _is_elementwise(module: Any) -> bool:
    """Activations, dropout and identity keep their input's layout (a conv map stays one)."""
    import torch.nn as nn
    from torch.nn.modules import activation, dropout

    if isinstance(module, (nn.Identity, dropout._DropoutNd, dropout.AlphaDropout)):
        return True
    return type(module).__module__ == activation.__name__ and not isinstance(
        module, (nn.MultiheadAttention, nn.Linear)
    )


class ConvMarks:
    """The tensors of one forward pass known to be conv maps, by identity.

    Weak references, so nothing is kept alive, and a freed tensor whose memory another
    tensor reuses is never mistaken for it (as a ``data_ptr`` key would be).
    """

    def __init__(self) -> None:
        self._refs: dict[int, Any] = {}

    def add(self, t: Any) -> None:
        self._refs[id(t)] = weakref.ref(t)

    def __contains__(self, t: Any) -> bool:
        r = self._refs.get(id(t))
        return r is not None and r() is t

    def clear(self) -> None:
        self._refs.clear()


def _reshaped(selector: Any) -> bool:
    """A callable ``select`` (not :func:`rnn_state`) says the layout of what it returns."""
    return callable(selector) and not isinstance(selector, (str, tuple, RNNState))


def _layout_error(layer: str, module: Any, t: Any) -> CaptureError:
    perm = "(0, 3, 1, 2)" if t.ndim == 4 else "(0, 4, 1, 2, 3)"
    spatial = "h, w" if t.ndim == 4 else "d, h, w"
    return CaptureError(
        f"Module {layer!r} ({type(module).__name__}) returned {_describe(t)}, a {t.ndim}-D "
        f"tensor, but it is not a conv-type module (Conv, pooling, batch/instance/group norm, "
        f"upsampling, or a block made only of those), so its layout is unknown: it may be "
        f"channels-last (n, {spatial}, c), as a Linear or LayerNorm applied to a permuted map "
        f"gives it (ConvNeXt), and conv= would then reduce over the channels. If it is "
        f"channels-first (n, c, {spatial}), say so with conv_layers=[{layer!r}]; if it is "
        f"channels-last, pass select={{{layer!r}: lambda t: t.permute{perm}}}."
    )


def _check_batch_first(module: Any, layer: str, opts: CaptureOptions) -> None:
    """A module that says its layout (``batch_first``) must agree with ``time_axis``."""
    first = getattr(module, "batch_first", None)
    if isinstance(first, bool) and first != (opts.time_axis == 1):
        layout = "(n, T, d)" if first else "(T, n, d)"
        raise CaptureError(
            f"Module {layer!r} ({type(module).__name__}) has batch_first={first}: its "
            f"sequences are {layout}, but time_axis={opts.time_axis} reads them the other "
            f"way round, mixing datapoints with time steps. Pass time_axis="
            f"{1 if first else 0}."
        )


def check_model_layout(model: Any, opts: CaptureOptions) -> None:
    """Every module of ``model`` that says its layout (``batch_first``) must agree with
    ``time_axis``: the datapoints of a batch are counted along the inputs' axis
    ``1 - time_axis``, and a time-major model read batch-major (or the reverse) would make
    the rows time steps. Checked once per capture; ``datapoints=`` takes the count from the
    caller instead (a model that transposes its inputs inside), and the recorded modules'
    own sequences are still checked one by one.
    """
    if opts.datapoints is not None:
        return
    want = opts.time_axis == 1
    wrong = [
        (name or "(the model)", type(m).__name__)
        for name, m in model.named_modules()
        if isinstance(getattr(m, "batch_first", None), bool) and m.batch_first != want
    ]
    if not wrong:
        return
    shown = ", ".join(f"{name!r} ({kind})" for name, kind in wrong[:3])
    more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
    layout = "(n, T, ...)" if not want else "(T, n, ...)"
    raise CaptureError(
        f"Module {shown}{more} of {type(model).__name__} has batch_first={not want}: its "
        f"sequences are {layout}, but time_axis={opts.time_axis} reads the inputs and "
        f"sequence outputs the other way round, so datapoints would be counted along the "
        f"time axis and rows would be time steps. Pass time_axis={0 if want else 1}, or "
        "datapoints=lambda batch: <count> if the model's inputs are laid out as time_axis "
        "says and it transposes them inside."
    )


def _rows_error(
    layer: str, t: Any, n: int, b: _Batch, what: str, fix: str, kind: str = "Module"
) -> CaptureError:
    return CaptureError(
        f"{kind} {layer!r} gave {_describe(t)} on batch {b.index}, but the batch holds {n} "
        f"datapoints: {what}. {fix}"
    )


def _masked_index(mask: Any, which: str) -> Any:
    import torch

    T = mask.shape[1]
    pos = torch.arange(T, device=mask.device)
    if which == "first":
        return torch.where(mask, pos, T).min(dim=1).values
    return torch.where(mask, pos, -1).max(dim=1).values


def _reduce(
    t: Any, layer: str, opts: CaptureOptions, b: _Batch, *, conv_map: bool, kind: str = "Module"
) -> Any:
    """Reduce a picked tensor to what is recorded, checking one row per datapoint."""
    import torch

    n = b.n
    if t.ndim == 0:
        raise _rows_error(
            layer,
            t,
            n,
            b,
            "a scalar has no row per datapoint",
            "Record a module whose output keeps the batch dimension.",
            kind,
        )
    if t.ndim > 5:
        raise CaptureError(
            f"{kind} {layer!r} returned a {t.ndim}-D tensor of shape {tuple(t.shape)}; only "
            "2-D (batch, features), 3-D sequences or (n, c, L) maps, 4-D (n, c, h, w) and 5-D "
            "(n, c, d, h, w) outputs are supported. Use select=callable to reshape it."
        )
    if t.ndim <= 2:
        if t.shape[0] != n:
            raise _rows_error(
                layer,
                t,
                n,
                b,
                f"its first axis has {t.shape[0]}",
                "If the module returns several outputs, select picked one that is not per "
                "datapoint; a module whose output mixes or drops datapoints cannot be "
                "recorded.",
                kind,
            )
        return t.reshape(n, -1)
    if conv_map or t.ndim >= 4:
        if t.shape[0] != n:
            raise _rows_error(
                layer,
                t,
                n,
                b,
                f"its first axis has {t.shape[0]}",
                "Conv maps are recorded channels-first, (n, c, ...) as PyTorch's conv "
                "modules produce them; reshape others with select=callable.",
                kind,
            )
        if opts.conv == "mean":
            return t.sum(dim=tuple(range(2, t.ndim)), dtype=torch.float64) / float(
                np.prod(t.shape[2:])
            )
        if opts.conv == "flatten":
            return t.reshape(n, -1)
        return t
    # a 3-D sequence
    if opts.sequence is None:
        raise CaptureError(
            f"{kind} {layer!r} returned a 3-D tensor of shape {tuple(t.shape)}. Say how to "
            "treat the sequence axis: sequence='samples' (every real token a sample, as in "
            "the SVCCA paper's RNN figures), 'mean' (average over real tokens), 'last' (the "
            "last real token), 'first' (the first, e.g. BERT's CLS) or 'keep'; and "
            "time_axis=1 for (batch, time, features) or 0 for (time, batch, features). If it "
            "is a (n, channels, length) map, as after a Conv1d, name it in conv_layers=[...]."
        )
    batch_axis = 0 if opts.time_axis == 1 else 1
    if t.shape[batch_axis] != n:
        other = 1 - batch_axis
        fix = (
            f"With time_axis={opts.time_axis} the batch is axis {batch_axis}; "
            + (
                f"axis {other} has {n}, so pass time_axis={1 - opts.time_axis}. "
                if t.shape[other] == n
                else ""
            )
            + "If this is an RNN's final state (num_layers * directions, n, hidden), use "
            "select=svcca.torch.rnn_state(); if select picked it from a tuple, pick another "
            "element."
        )
        raise _rows_error(layer, t, n, b, f"axis {batch_axis} has {t.shape[batch_axis]}", fix, kind)
    if opts.time_axis == 0:
        t = t.transpose(0, 1)
    if opts.sequence == "keep":
        return t
    mask = b.mask
    if mask is not None:
        if mask.shape[1] != t.shape[1]:
            raise CaptureError(
                f"{b.mask_source} on batch {b.index} covers {mask.shape[1]} positions, but "
                f"{kind.lower()} {layer!r} gave {t.shape[1]} time steps ({_describe(t)}, "
                "batch-major). Pass mask=None to count every position, or "
                "mask=lambda batch: ... that matches this output."
            )
        mask = mask.to(t.device)
    if opts.sequence == "samples":
        if mask is None:
            return t.reshape(-1, t.shape[-1])
        return t[mask]
    if opts.sequence == "mean":
        if mask is None:
            return t.sum(dim=1, dtype=torch.float64) / t.shape[1]
        w = mask.to(torch.float64)
        return (t.to(torch.float64) * w[:, :, None]).sum(dim=1) / w.sum(dim=1, keepdim=True)
    if mask is None:
        return t[:, -1, :] if opts.sequence == "last" else t[:, 0, :]
    idx = _masked_index(mask, opts.sequence)
    return t[torch.arange(n, device=t.device), idx]
