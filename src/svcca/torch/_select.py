"""Picking the tensor to record from a module's output (``select=``): an index, a key,
an attribute, a callable, or :func:`rnn_state` for an RNN's final hidden state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from svcca._validation import check_option
from svcca.torch._batches import _is_packed
from svcca.torch._layers import _describe
from svcca.torch._options import CaptureError, Selector

__all__ = [
    "RNNState",
    "rnn_state",
]


@dataclass(frozen=True)
class RNNState:
    """Selector for the final state of an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``.

    Made by :func:`rnn_state`; see there.
    """

    state: Literal["h", "c"] = "h"
    layers: Literal["last", "all"] = "last"

    def __call__(self, output: Any, module: Any = None) -> Any:
        import torch

        if module is None or not isinstance(module, torch.nn.RNNBase):
            kind = "no module" if module is None else type(module).__name__
            raise CaptureError(
                f"rnn_state() picks the final state of an nn.RNN, nn.LSTM or nn.GRU; it was "
                f"given the output of {kind}. Use it as select= for an RNN module only."
            )
        hidden = output[1]
        if isinstance(hidden, tuple):  # LSTM: (h, c)
            h = hidden[0] if self.state == "h" else hidden[1]
        elif self.state == "c":
            raise CaptureError(
                f"rnn_state(state='c') needs an nn.LSTM (which has a cell state); "
                f"{type(module).__name__} has only h. Use state='h'."
            )
        else:
            h = hidden
        if h.ndim != 3:
            raise CaptureError(
                f"rnn_state() expects the state of a batched {type(module).__name__}, "
                f"(num_layers * directions, n, hidden); got shape {tuple(h.shape)}. Feed "
                "batched inputs (unbatched inputs give 2-D states)."
            )
        dirs = 2 if module.bidirectional else 1
        if self.layers == "last":
            h = h[-dirs:]  # the last layer, both directions if bidirectional
        return h.permute(1, 0, 2).reshape(h.shape[1], -1)


def rnn_state(
    *, state: Literal["h", "c"] = "h", layers: Literal["last", "all"] = "last"
) -> RNNState:
    """A ``select=`` value that records an RNN's final state as ``(n, features)``.

    PyTorch returns an RNN's final state ``h`` as ``(num_layers * directions, n, hidden)``
    whatever ``batch_first`` says, so neither ``select`` paths nor ``sequence=`` can take
    it per datapoint. This selector does.

    Parameters
    ----------
    state : {"h", "c"}, default "h"
        The hidden state, or an ``nn.LSTM``'s cell state.
    layers : {"last", "all"}, default "last"
        ``"last"``: the last layer's state, ``(n, directions * hidden)`` (both directions
        side by side for a bidirectional RNN, forward first); ``"all"``: every layer's,
        ``(n, num_layers * directions * hidden)``, layer by layer.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> lstm = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
    >>> net = torch.nn.Sequential()
    >>> net.add_module("rnn", lstm)
    >>> acts = svcca.torch.capture(net, [torch.randn(10, 7, 3)], ["rnn"],
    ...                            forward=lambda m, x: m.rnn(x),
    ...                            select=svcca.torch.rnn_state())
    >>> acts["rnn"].shape
    (10, 5)
    """
    check_option(state, "state", ("h", "c"))
    check_option(layers, "layers", ("last", "all"))
    return RNNState(state, layers)


def _is_rnn_state(picked: Any, output: Any, module: Any) -> bool:
    """Whether ``picked`` is the final state of an RNN module's ``(out, h | (h, c))``."""
    import torch

    if not isinstance(module, torch.nn.RNNBase):
        return False
    if not isinstance(output, tuple) or len(output) != 2:
        return False
    hidden = output[1]
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    return any(picked is p for p in parts)


def _packed_output_error(layer: str, output: Any, selector: Any) -> CaptureError:
    where = "returned" if selector is None else f"gave, through select={selector!r},"
    path = "out" if selector is None else "out[0]" if selector in (0, (0,)) else "..."
    return CaptureError(
        f"Module {layer!r} {where} a PackedSequence (the whole output is "
        f"{_describe(output)}): its .data is (total tokens, features), not one row per "
        "datapoint. Unpack it in select: select={"
        f"{layer!r}: lambda out: torch.nn.utils.rnn.pad_packed_sequence({path}, "
        "batch_first=True)[0]} with sequence='samples'/'mean'/'last' and mask=lambda b: ... "
        "for the real steps, or select=svcca.torch.rnn_state() for an RNN's final state."
    )


def _pick(output: Any, selector: Selector | None, layer: str, module: Any = None) -> Any:
    import torch

    if selector is None:
        if isinstance(output, torch.Tensor):
            return output
        if _is_packed(output):
            raise _packed_output_error(layer, output, None)
        hint = ""
        if isinstance(module, torch.nn.RNNBase):
            hint = (
                f" For this {type(module).__name__}: select=0 for the output sequence (with "
                "sequence=...), select=svcca.torch.rnn_state() for the final hidden state."
            )
        raise CaptureError(
            f"Module {layer!r} returned {_describe(output)}, not one tensor. Choose the "
            f"element to record with select={{{layer!r}: ...}}: an int for a tuple position "
            "(e.g. 0 for an LSTM's output sequence), a str for a dict key or attribute "
            "(e.g. 'last_hidden_state'), a tuple such as (0, 'x') for a nested element, "
            f"svcca.torch.rnn_state() for an RNN's final state, or a callable.{hint}"
        )
    if isinstance(selector, RNNState):
        picked = selector(output, module)
    elif isinstance(output, torch.Tensor) and not callable(selector):
        raise CaptureError(
            f"Module {layer!r} returned a plain tensor {_describe(output)}, so select="
            f"{selector!r} would index its first (batch) dimension and record datapoint "
            f"{selector!r} instead of picking an output. Drop select for this layer (in "
            "transformers 5, GPT2Block and BertLayer return a tensor, not a tuple), or give a "
            "callable to reshape it."
        )
    elif callable(selector) and not isinstance(selector, (str, tuple)):
        picked = selector(output)
    else:
        path = selector if isinstance(selector, tuple) else (selector,)
        picked = output
        for step in path:
            try:
                if isinstance(step, str) and not isinstance(picked, Mapping):
                    picked = getattr(picked, step)
                else:
                    picked = picked[step]
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise CaptureError(
                    f"select={selector!r} does not apply to the output of module {layer!r}, "
                    f"which is {_describe(output)} (failed at {step!r}: {exc})."
                ) from exc
    if _is_packed(picked):
        raise _packed_output_error(layer, output, selector)
    if not isinstance(picked, torch.Tensor):
        raise CaptureError(
            f"select={selector!r} picked {_describe(picked)} from module {layer!r}; it must "
            f"pick a tensor. The whole output is {_describe(output)}."
        )
    if not isinstance(selector, RNNState) and _is_rnn_state(picked, output, module):
        raise CaptureError(
            f"select={selector!r} picked the final state of {type(module).__name__} "
            f"{layer!r}, {_describe(picked)}: (num_layers * directions, n, hidden) whatever "
            "batch_first says, so its first axis is not the datapoints. Use select="
            "svcca.torch.rnn_state() for the last layer's state as (n, hidden), or "
            "rnn_state(layers='all') for every layer's."
        )
    return picked
