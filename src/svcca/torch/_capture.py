"""Recording the outputs of named modules of a PyTorch model.

Everything here goes through :func:`capture_stream`: it registers forward hooks on the
requested modules, runs the model batch by batch in ``eval()`` mode under
``torch.no_grad()``, hands each batch's activations (detached NumPy arrays, already
reduced to the requested shape) to a callback, and always removes the hooks and restores
every module's train/eval mode in ``finally``. The destinations (memory, disk, moments)
are callbacks on top of it.

The invariant every path keeps: a recorded array has one row per datapoint of the batch
(one per real token with ``sequence="samples"``), or the capture raises
:class:`CaptureError` saying what came, what was expected and which option to change.
The number of datapoints ``n`` of a batch is read from the batch itself (see
:func:`batch_datapoints`); padding marked by an ``attention_mask`` never counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from svcca.torch._options import (
    Calls,
    CaptureError,
    CaptureOptions,
    Conv,
    MaskOption,
    Selector,
    Sequence_,
)
from svcca.torch._run import run_capture

__all__ = [
    "capture",
    "capture_stream",
    "check_same_shape",
    "file_stem",
    "keep_batches",
    "stack",
]


def capture_stream(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    callback: Callable[[int, dict[str, np.ndarray]], None],
    *,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    skip: int = 0,
    progress: bool | None = False,
    desc: str = "capture",
    device_tensors: bool = False,
) -> int:
    """Run ``model`` over ``batches`` and pass each batch's activations to ``callback``.

    The building block under :func:`capture`, :func:`capture_to_disk` and
    :func:`capture_moments`; use it to feed any accumulator (minibatch CKA, histograms).

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        Batches as a DataLoader yields them: a tensor, a ``(inputs, labels, ...)`` tuple
        (the first element is fed to the model) or a dict (passed as keyword arguments).
    layers : list of str
        Module names from ``model.named_modules()``; ``""`` is the model itself.
    callback : callable ``(batch_index, {layer: ndarray}) -> None``
    select, sequence, time_axis, conv, dtype, mask, calls, datapoints, conv_layers
        As in :func:`capture`.
    forward, device, progress
        As in :func:`capture`.
    skip : int, default 0
        Batches at the start to pass over without running the model (used to resume).
    device_tensors : bool, default False
        For a callback that accumulates torch tensors: when the work runs on a device
        (the outputs are on a GPU, or an ``svcca.on_device(...)`` block names one), it
        receives the reduced outputs as detached tensors on their device, in the model's
        dtype, and nothing is copied to the host; otherwise NumPy arrays as always.

    Returns
    -------
    int
        Number of batches seen (including skipped ones).

    Examples
    --------
    Minibatch CKA between two layers, accumulated while the model runs:

    >>> import torch, svcca, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> acc = svcca.MinibatchCKA()
    >>> seen = svcca.torch.capture_stream(
    ...     net, torch.randn(100, 4).split(25), ["1", "2"],
    ...     lambda i, acts: acc.update(acts["1"], acts["2"]),
    ... )
    >>> seen, acc.scores().shape
    (4, (1, 1))
    """
    opts = CaptureOptions.make(
        layers,
        select=select,
        sequence=sequence,
        time_axis=time_axis,
        conv=conv,
        dtype=dtype,
        mask=mask,
        calls=calls,
        datapoints=datapoints,
        conv_layers=conv_layers,
    )
    return run_capture(
        model,
        batches,
        opts,
        callback,
        forward=forward,
        device=device,
        skip=skip,
        progress=progress,
        desc=desc,
        on_device=device_tensors,
    )


def check_same_shape(name: str, a: np.ndarray, first: np.ndarray, i: int) -> None:
    """Batch ``i`` of layer ``name`` has the per-datapoint shape of its first batch.

    Raised as each batch arrives (a long capture does not fail at its end), naming the
    layer, both shapes and, for sequences (3-D ``(n, L, d)``, from ``sequence="keep"``)
    their lengths, and what to change.
    """
    if a.shape[1:] == first.shape[1:]:
        return
    got, want = tuple(a.shape[1:]), tuple(first.shape[1:])
    head = (
        f"Layer {name!r} gave {got} per datapoint on batch {i}, but {want} on the first "
        "batch: one layer's batches must share every axis but the first."
    )
    if a.ndim == 3 and first.ndim == 3 and got[1:] == want[1:]:
        raise CaptureError(
            f"{head} These are sequences of {got[0]} and {want[0]} time steps, and "
            "sequence='keep' keeps each datapoint's whole sequence, so every batch needs "
            "one length: pad the inputs to one length, or reduce each sequence to rows "
            "with sequence='samples' (every real token), 'mean', 'last' or 'first'."
        )
    raise CaptureError(
        f"{head} Sequences of different lengths need sequence='samples', 'mean', 'last' "
        "or 'first'; conv maps of different sizes need conv='mean'; or pad the inputs to "
        "one size."
    )


def stack(chunks: Mapping[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Join each layer's per-batch arrays along the first axis."""
    if not chunks:
        raise ValueError("batches was empty: there was nothing to run the model on.")
    for n, parts in chunks.items():
        for i, a in enumerate(parts):
            check_same_shape(n, a, parts[0], i)
    return {n: np.concatenate(parts, axis=0) for n, parts in chunks.items()}


def keep_batches(
    chunks: dict[str, list[np.ndarray]],
) -> Callable[[int, dict[str, np.ndarray]], None]:
    """A capture callback appending each layer's batch to ``chunks`` (checked as it comes)."""

    def keep(i: int, arrays: dict[str, np.ndarray]) -> None:
        for n, a in arrays.items():
            parts = chunks.setdefault(n, [])
            if parts:
                check_same_shape(n, a, parts[0], i)
            parts.append(a)

    return keep


def capture(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    *,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
) -> dict[str, np.ndarray]:
    """Record the outputs of named modules of a model over a stream of batches.

    Forward hooks are registered on the named modules for the duration of the call and
    always removed (also on error). The model runs in ``eval()`` mode under
    ``torch.no_grad()``; each module's train/eval mode is restored afterwards.

    Every recorded array has one row per datapoint of the batches (one per real token
    with ``sequence="samples"``); an output that does not is refused with
    :class:`CaptureError`. The number of datapoints of a batch is read from the batch
    (:func:`batch_datapoints`), or given by ``datapoints=``.

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        A DataLoader or any iterable of batches: a tensor, a tuple whose first element is
        the input (``(x, y)`` from a DataLoader), or a dict of keyword arguments. A
        shuffling DataLoader warns (:class:`CaptureWarning`): its rows would not line up
        with another capture's.
    layers : list of str
        Names from ``model.named_modules()``, e.g. ``["features.0", "classifier"]``.
        An unknown name raises ``ValueError`` listing near matches. A module that runs
        more than once per forward pass is refused unless each call is named,
        ``"block#0"``, ``"block#1"`` (0-based, in call order), or ``calls="each"``.
    select : int, str, tuple, callable, or dict of them, optional
        How to pick one tensor from a module whose output is a tuple, dict or object:
        an int (tuple position), a str (dict key or attribute, e.g.
        ``"last_hidden_state"``), a tuple path, :func:`rnn_state` for an RNN's final
        state, or a callable. A dict gives a selector per layer. A module that returns a
        plain tensor takes no ``select`` (an int would index the batch): it is an error.
    sequence : {"samples", "mean", "last", "first", "keep"}, optional
        For 3-D sequence outputs: ``"samples"`` makes every real token a sample,
        ``(n_tokens, d)`` (the SVCCA paper's RNN comparisons), ``"mean"`` averages over
        real tokens, ``"last"`` takes the last real token, ``"first"`` the first (BERT's
        and ViT's CLS), ``"keep"`` returns ``(n, T, d)`` with padding left in. Required
        when a recorded output is a 3-D sequence.
    time_axis : {1, 0}, default 1
        Where the time axis is: 1 for ``batch_first=True`` modules, 0 for PyTorch's default
        ``(T, n, d)`` layout of ``nn.LSTM`` / ``nn.TransformerEncoderLayer`` (the inputs
        are then read as ``(T, n, ...)`` too, to count datapoints). The result is always
        batch-major. Every module of the model that has a ``batch_first`` attribute
        (RNNs, transformer layers, ``nn.MultiheadAttention``) must agree with it, or the
        capture raises :class:`CaptureError` (unless ``datapoints=`` gives the count).
    conv : {"keep", "mean", "flatten"}, default "keep"
        For channels-first maps, 3-D ``(n, c, L)``, 4-D ``(n, c, h, w)`` and 5-D
        ``(n, c, d, h, w)`` outputs of conv-type modules (convolutions, pooling, padding,
        batch/instance/group norm, upsampling, activations or dropout applied to one of
        those; for 4-D and 5-D also blocks built only of such modules, as in a ResNet):
        keep them for :mod:`svcca.conv` (layout ``"nchw"``), average over space to
        ``(n, c)``, or flatten to ``(n, c * ...)``. Reduced per batch, on the fly. A 4-D
        or 5-D output of another module (a ``Linear`` or ``LayerNorm`` may give
        channels-last ``(n, h, w, c)``, as in ConvNeXt) is refused unless ``conv_layers``
        names it or a callable ``select`` returns it (permuted to channels-first).
    dtype : numpy dtype, default float32
        Storage dtype of the recorded arrays.
    mask : "auto", None or callable, default "auto"
        Which positions of a sequence are real tokens, for ``sequence="samples"``,
        ``"mean"``, ``"last"`` and ``"first"``. ``"auto"``: a mapping batch's
        ``attention_mask`` (the HuggingFace convention), if it has one (a batch with
        decoder inputs, ``decoder_input_ids`` / ``decoder_inputs_embeds`` /
        ``decoder_attention_mask``, is refused: say which mask with a callable); a callable
        ``batch -> (n, T)`` 0/1 or bool mask for other conventions; ``None`` counts every
        position.
    calls : {"raise", "each"}, default "raise"
        A named module that runs more than once per forward pass: refuse it, or record
        every call as ``"<name>#0"``, ``"<name>#1"``, ... (a module called once keeps its
        name).
    datapoints : callable ``batch -> int``, optional
        The batch's number of datapoints, when it cannot be read from the batch (e.g. a
        custom ``forward`` on batches that are not tensors).
    conv_layers : list of str, optional
        Recorded layers whose outputs are channels-first maps, ``(n, c, L)`` or
        ``(n, c, h, w)``, although their module type does not say so (e.g. a custom
        residual block of ``Conv1d`` layers, a ConvNeXt layer).
    forward : callable ``(model, batch) -> output``, optional
        How to run the model on a batch (default: ``model(x)`` for a tensor, the first
        element of a tuple, ``model(**batch)`` for a dict). It must leave the model in
        eval mode (a :class:`CaptureWarning` says when it does not).
    device : torch.device or str, optional
        Move each batch there before running the model.
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line counter;
        ``None``: only when stderr is a terminal).

    Returns
    -------
    dict of str to ndarray
        For each layer, in the order given, its activations over all batches stacked
        along the first axis, ``(n_samples, n_features)`` (or ``(n, c, ...)``, or
        ``(n, T, d)``, when kept).

    Raises
    ------
    ValueError
        For an unknown layer name (with near matches). :class:`CaptureError` (a
        ``ValueError``) when the model fails on a batch, naming the batch and its shape,
        when an output needs ``select``/``sequence``, or has no row per datapoint.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> acts = svcca.torch.capture(net, torch.randn(100, 4).split(25), ["1", "2"])
    >>> acts["1"].shape, acts["2"].shape
    ((100, 8), (100, 3))
    """
    chunks: dict[str, list[np.ndarray]] = {}
    opts = CaptureOptions.make(
        layers,
        select=select,
        sequence=sequence,
        time_axis=time_axis,
        conv=conv,
        dtype=dtype,
        mask=mask,
        calls=calls,
        datapoints=datapoints,
        conv_layers=conv_layers,
    )
    run_capture(
        model,
        batches,
        opts,
        keep_batches(chunks),
        forward=forward,
        device=device,
        progress=progress,
        skip=0,
        desc="capture",
    )
    return stack(chunks)


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(layer: str) -> str:
    """A file-name-safe stem for a module name (``""`` is the model itself)."""
    return _SAFE.sub("_", layer) if layer else "_model_"
