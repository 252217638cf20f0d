"""HuggingFace-style hidden states: every layer of a model from one forward pass per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from svcca._moments import Moments
from svcca._validation import Precision, check_precision
from svcca.torch._batches import _Batch, order_free
from svcca.torch._capture import keep_batches, stack
from svcca.torch._layers import _describe
from svcca.torch._options import CaptureError, CaptureOptions, Conv, MaskOption, Sequence_
from svcca.torch._reduce import _reduce
from svcca.torch._run import run_capture
from svcca.torch._stream import Pair, check_pairs, finished, pair_accumulator

__all__ = [
    "hidden_state_moments",
    "hidden_state_names",
    "hidden_states",
    "hidden_states_stream",
]


def hidden_state_names(count: int) -> list[str]:
    """Names of a model's ``count`` hidden states: ``"embeddings"``, then each layer.

    Layers are numbered from 1 (``hidden_states[k]`` is the output of layer ``k``), zero
    padded so that the names sort in model order: ``["embeddings", "layer.01", ...,
    "layer.12"]`` for 12 layers.

    >>> hidden_state_names(3)
    ['embeddings', 'layer.1', 'layer.2']
    """
    width = len(str(max(count - 1, 1)))
    return ["embeddings"] + [f"layer.{k:0{width}d}" for k in range(1, count)]


def _forward_hidden(model: Any, batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return model(**batch, output_hidden_states=True)
    if isinstance(batch, (tuple, list)):
        return model(batch[0], output_hidden_states=True)
    return model(batch, output_hidden_states=True)


def _options(sequence: Any, conv: Any, dtype: Any, mask: Any, datapoints: Any) -> CaptureOptions:
    if sequence is None:
        raise ValueError(
            "sequence must be given for hidden states, which are (n, T, d) sequences: 'mean' "
            "(over real tokens), 'first' (CLS), 'last' (the last real token), 'samples' "
            "(every real token a datapoint) or 'keep'."
        )
    return CaptureOptions.make(
        ["hidden_states"],
        sequence=sequence,
        conv=conv,
        dtype=dtype,
        mask=mask,
        datapoints=datapoints,
    )


def _extractor(opts: CaptureOptions) -> Callable[[Any, _Batch], dict[str, Any]]:
    def extract(output: Any, b: _Batch) -> dict[str, Any]:
        hs = output.get("hidden_states") if isinstance(output, Mapping) else None
        if hs is None:
            hs = getattr(output, "hidden_states", None)
        if not isinstance(hs, (tuple, list)) or not hs:
            raise CaptureError(
                f"The model's output on batch {b.index} has no hidden_states "
                f"({_describe(output)}). hidden_states() needs a HuggingFace-style model that "
                "returns them for output_hidden_states=True (with return_dict on); a custom "
                "forward= must pass output_hidden_states=True itself. Encoder-decoder models "
                "(encoder_hidden_states, decoder_hidden_states): capture their blocks with "
                "svcca.torch.capture()."
            )
        names = hidden_state_names(len(hs))
        return {
            name: _reduce(t.detach(), name, opts, b, conv_map=False, kind="Hidden state")
            for name, t in zip(names, hs, strict=True)
        }

    return extract


def hidden_states_stream(
    model: Any,
    batches: Iterable[Any],
    callback: Callable[[int, dict[str, np.ndarray]], None],
    *,
    sequence: Sequence_ | None,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    datapoints: Callable[[Any], int] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    skip: int = 0,
    progress: bool | None = False,
    desc: str = "hidden states",
    device_tensors: bool = False,
) -> int:
    """Pass each batch's hidden states, reduced, to ``callback(i, {name: ndarray})``.

    The streaming form of :func:`hidden_states` (same options), e.g. to feed
    :class:`svcca.MinibatchCKA` without keeping activations. ``device_tensors`` as in
    :func:`svcca.torch.capture_stream` (tensors on their device, no host copy, when the
    work runs on a device). Returns the number of batches seen.

    Examples
    --------
    Minibatch CKA between every pair of hidden states, nothing stored:

    >>> import torch, svcca, svcca.torch
    >>> from transformers import BertConfig, BertModel  # doctest: +SKIP
    >>> bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2,
    ...                             num_attention_heads=2, intermediate_size=64,
    ...                             vocab_size=100))  # doctest: +SKIP
    >>> batches = [{"input_ids": torch.randint(0, 100, (20, 6))} for _ in range(5)]
    >>> acc = svcca.MinibatchCKA()
    >>> svcca.torch.hidden_states_stream(
    ...     bert, batches, lambda i, a: acc.update(list(a.values()), list(a.values())),
    ...     sequence="mean")  # doctest: +SKIP
    >>> acc.scores().shape  # doctest: +SKIP
    (3, 3)
    """
    opts = _options(sequence, conv, dtype, mask, datapoints)
    return run_capture(
        model,
        batches,
        opts,
        callback,
        forward=forward if forward is not None else _forward_hidden,
        device=device,
        skip=skip,
        progress=progress,
        desc=desc,
        extract=_extractor(opts),
        on_device=device_tensors,
    )


def hidden_states(
    model: Any,
    batches: Iterable[Any],
    *,
    sequence: Sequence_ | None,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    datapoints: Callable[[Any], int] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
) -> dict[str, np.ndarray]:
    """Every hidden state of a HuggingFace model (embeddings, then each layer), per datapoint.

    One forward pass per batch with ``output_hidden_states=True``; each element of the
    output's ``hidden_states`` becomes one entry, named by :func:`hidden_state_names`
    (``"embeddings"``, ``"layer.1"``, ...), reduced over the sequence as ``sequence``
    says with padding left out: a mapping batch's ``attention_mask`` is used by default.

    Parameters
    ----------
    model : torch.nn.Module
        A ``transformers`` model (or any module that takes ``output_hidden_states=True``
        and returns an output with a ``hidden_states`` tuple).
    batches : iterable
        Mappings of keyword arguments (``input_ids``, ``attention_mask``,
        ``pixel_values``, ...), or tensors / ``(inputs, labels)`` tuples.
    sequence : {"mean", "first", "last", "samples", "keep"}
        ``"mean"`` over real tokens, ``"first"`` token (BERT's and ViT's CLS), ``"last"``
        real token (GPT-2's summary position), every real token a datapoint
        (``"samples"``), or ``(n, T, d)`` unreduced (``"keep"``, padding included).
    conv : {"keep", "mean", "flatten"}, default "keep"
        For conv models whose hidden states are ``(n, c, h, w)`` maps (e.g. ResNet).
    dtype, mask, datapoints, device, progress
        As for :func:`svcca.torch.capture`.
    forward : callable ``(model, batch) -> output``, optional
        Default: ``model(**batch, output_hidden_states=True)`` (or ``model(x, ...)``).

    Returns
    -------
    dict of str to ndarray
        ``{name: (n, d)}`` in model order (``(n_tokens, d)`` for ``"samples"``).

    Examples
    --------
    >>> import torch, svcca.torch
    >>> from transformers import BertConfig, BertModel  # doctest: +SKIP
    >>> bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2,
    ...                             num_attention_heads=2, intermediate_size=64,
    ...                             vocab_size=100))  # doctest: +SKIP
    >>> batch = {"input_ids": torch.randint(0, 100, (4, 6)),
    ...          "attention_mask": torch.tensor([[1] * 6, [1] * 4 + [0] * 2] * 2)}
    >>> acts = svcca.torch.hidden_states(bert, [batch], sequence="mean")  # doctest: +SKIP
    >>> {k: v.shape for k, v in acts.items()}  # doctest: +SKIP
    {'embeddings': (4, 32), 'layer.1': (4, 32), 'layer.2': (4, 32)}
    """
    chunks: dict[str, list[np.ndarray]] = {}

    hidden_states_stream(
        model,
        batches,
        keep_batches(chunks),
        sequence=sequence,
        conv=conv,
        dtype=dtype,
        mask=mask,
        datapoints=datapoints,
        forward=forward,
        device=device,
        progress=progress,
    )
    return stack(chunks)


def hidden_state_moments(
    model: Any,
    batches: Iterable[Any],
    pairs: Sequence[Pair],
    *,
    sequence: Sequence_ | None,
    conv: Conv = "mean",
    mask: MaskOption = "auto",
    datapoints: Callable[[Any], int] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
    precision: Precision = "float64",
) -> dict[Pair, Moments]:
    """:class:`svcca.Moments` of pairs of hidden states, no activation stored.

    Parameters
    ----------
    pairs : list of (str, str) or str
        Pairs of :func:`hidden_state_names` names, e.g. ``[("embeddings", "layer.2")]``;
        a single name gives a one-sided statistic.
    sequence, conv, mask, datapoints, forward, device, progress
        As for :func:`hidden_states` (``sequence="keep"`` and ``conv="keep"`` are not
        2-D and cannot be accumulated).
    precision : {"float64", "float32"}, default "float64"
        ``"float32"``: activations centred on float64 means, then rounded once to
        float32, their products taken in float32 chunks of at most 4096 rows, added into
        float64 sums
        (:class:`svcca.Moments`, docs/precision.md).

    Returns
    -------
    dict
        ``{pair: Moments}`` in the order given.

    Examples
    --------
    >>> import torch, svcca, svcca.torch
    >>> from transformers import BertConfig, BertModel  # doctest: +SKIP
    >>> bert = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2,
    ...                             num_attention_heads=2, intermediate_size=64,
    ...                             vocab_size=100))  # doctest: +SKIP
    >>> batches = [{"input_ids": torch.randint(0, 100, (20, 6))} for _ in range(5)]
    >>> stats = svcca.torch.hidden_state_moments(
    ...     bert, batches, [("embeddings", "layer.2")], sequence="mean")  # doctest: +SKIP
    >>> stats[("embeddings", "layer.2")].n  # doctest: +SKIP
    100
    """
    if sequence == "keep" or conv == "keep":
        raise ValueError(
            "hidden_state_moments needs 2-D activations: sequence='keep' and conv='keep' "
            "leave sequences or maps; use 'mean', 'first', 'last' or 'samples' (and "
            "conv='mean' or 'flatten')."
        )
    pairs = check_pairs(pairs)
    precision = check_precision(precision)
    accumulate, stats = pair_accumulator(pairs, precision=precision)
    with order_free():  # moments of one pass do not depend on the order of the datapoints
        hidden_states_stream(
            model,
            batches,
            accumulate,
            sequence=sequence,
            conv=conv,
            # float64 rows: the accumulator centres them on float64 means, then casts
            dtype=np.float64,
            mask=mask,
            datapoints=datapoints,
            forward=forward,
            device=device,
            progress=progress,
            desc="hidden-state moments",
            device_tensors=True,
        )
    return finished(stats)
