"""The capture options: what to record and how to shape it, validated once into one
frozen :class:`CaptureOptions` that every capture path passes down."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from svcca._validation import SVCCAWarning, check_option

__all__ = [
    "BATCH_KEYS",
    "Calls",
    "CaptureError",
    "CaptureOptions",
    "CaptureWarning",
    "Conv",
    "DECODER_KEYS",
    "MaskOption",
    "Selector",
    "Sequence_",
]


Sequence_ = Literal["samples", "mean", "last", "first", "keep"]
Conv = Literal["keep", "mean", "flatten"]
Calls = Literal["raise", "each"]
Selector = int | str | tuple | Callable[[Any], Any]
MaskOption = Literal["auto"] | Callable[[Any], Any] | None

_SEQUENCES = ("samples", "mean", "last", "first", "keep")
#: Keys of a mapping batch whose first dimension is the number of datapoints, in order.
BATCH_KEYS = ("input_ids", "inputs_embeds", "pixel_values", "input_values", "input_features")
#: Keys of a mapping batch that feed an encoder-decoder model's decoder.
DECODER_KEYS = ("decoder_input_ids", "decoder_inputs_embeds", "decoder_attention_mask")


class CaptureError(ValueError):
    """The model could not be run on a batch, or a module's output could not be used."""


class CaptureWarning(SVCCAWarning):
    """A capture ran, but its rows may not mean what the caller expects (see the message)."""


@dataclass(frozen=True)
class CaptureOptions:
    """How module outputs are picked and shaped (validated once, shared by all paths).

    Every knob of :func:`capture_stream` except the run itself (``forward``, ``device``,
    ``progress``) lives here. Each public capture (``capture``, ``capture_stream``,
    ``capture_to_disk``, ``capture_moments``, ``compare``, ``hidden_states``) keeps its
    keyword arguments, validates them once into this object at its boundary and passes
    the object down (:func:`~svcca.torch._run.run_capture`); :meth:`kwargs` gives them
    back as keyword arguments (a disk capture's manifest records them).
    """

    layers: tuple[str, ...]
    select: Mapping[str, Selector]
    sequence: Sequence_ | None
    time_axis: int
    conv: Conv
    dtype: np.dtype
    mask: MaskOption = "auto"
    calls: Calls = "raise"
    datapoints: Callable[[Any], int] | None = None
    conv_layers: tuple[str, ...] = ()

    @classmethod
    def make(
        cls,
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
    ) -> CaptureOptions:
        if isinstance(layers, str):
            layers = [layers]
        try:
            layers = tuple(layers)
        except TypeError as exc:
            raise TypeError(
                f"layers must be a list of module names (model.named_modules() names); got "
                f"{type(layers).__name__}."
            ) from exc
        if not layers:
            raise ValueError("layers is empty: name at least one module to record.")
        for name in layers:
            if not isinstance(name, str):
                raise TypeError(f"layer names must be str; got {name!r} ({type(name).__name__}).")
        if len(set(layers)) != len(layers):
            dup = sorted({n for n in layers if layers.count(n) > 1})
            raise ValueError(f"layers lists {dup} more than once; name each module once.")
        if isinstance(select, Mapping):
            unknown = sorted(set(select) - set(layers))
            if unknown:
                raise ValueError(
                    f"select names {unknown}, which are not in layers {list(layers)}; give "
                    "select a key for each recorded layer whose output needs picking."
                )
            sel = dict(select)
        elif select is None:
            sel = {}
        else:
            _check_selector(select)
            sel = {name: select for name in layers}
        for s in sel.values():
            _check_selector(s)
        if sequence is not None and sequence not in _SEQUENCES:
            raise ValueError(
                f"sequence must be one of 'samples', 'mean', 'last', 'first', 'keep' or None; "
                f"got {sequence!r}."
            )
        check_option(conv, "conv", ("keep", "mean", "flatten"))
        if isinstance(time_axis, bool) or time_axis not in (0, 1):
            raise ValueError(
                f"time_axis must be 1 for (batch, time, features) outputs (batch_first=True) "
                f"or 0 for (time, batch, features) (PyTorch's default for nn.LSTM and "
                f"nn.TransformerEncoderLayer); got {time_axis!r}."
            )
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise ValueError(f"dtype must be a floating dtype such as float32; got {dt}.")
        if not (mask is None or mask == "auto" or callable(mask)):
            raise TypeError(
                f"mask must be 'auto' (use a mapping batch's 'attention_mask'), None (count "
                f"every position) or a callable batch -> (n, T) mask; got {mask!r}."
            )
        check_option(
            calls,
            "calls",
            ("raise", "each"),
            "'raise' refuses a module that runs more than once per forward pass; 'each' "
            "records every call as '<name>#0', '<name>#1', ...",
        )
        if datapoints is not None and not callable(datapoints):
            raise TypeError(
                f"datapoints must be a callable batch -> number of datapoints; got {datapoints!r}."
            )
        if isinstance(conv_layers, str):
            conv_layers = [conv_layers]
        conv_names = tuple(conv_layers)
        stray = sorted(set(conv_names) - set(layers))
        if stray:
            raise ValueError(
                f"conv_layers names {stray}, which are not in layers {list(layers)}; list "
                "recorded layers whose outputs are channels-first maps, (n, c, L) or "
                "(n, c, h, w)."
            )
        return cls(layers, sel, sequence, time_axis, conv, dt, mask, calls, datapoints, conv_names)

    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`capture_stream` (all but ``layers``)."""
        return {
            "select": dict(self.select),
            "sequence": self.sequence,
            "time_axis": self.time_axis,
            "conv": self.conv,
            "dtype": self.dtype,
            "mask": self.mask,
            "calls": self.calls,
            "datapoints": self.datapoints,
            "conv_layers": self.conv_layers,
        }


def _check_selector(s: Any) -> None:
    if isinstance(s, (int, str)) or callable(s):
        return
    if isinstance(s, tuple) and all(isinstance(k, (int, str)) for k in s):
        return
    raise TypeError(
        "select must be an int (tuple position), a str (dict key or attribute), a tuple of "
        f"those (a path into nested outputs), svcca.torch.rnn_state() or a callable; got {s!r}."
    )
