"""Boundary checks for convolutional activations.

The conv entry points validate here, once; the private machinery trusts what it gets.
Messages say what was expected, what arrived and how to fix it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from svcca._validation import check_readable, check_unmasked, raise_nonfinite, tensor_to_numpy

__all__ = ["Layout", "as_conv", "check_layout", "check_same_n"]

Layout = Literal["nhwc", "nchw"]

_LAYOUT_HELP = (
    "The layout is never guessed: pass layout='nhwc' for (n, height, width, channels) "
    "(TensorFlow, JAX) or layout='nchw' for (n, channels, height, width) (PyTorch)."
)


def check_layout(layout: Any) -> Layout | None:
    """``layout`` is one of the two supported strings, or None (then no map may be 4-D)."""
    if layout is not None and layout not in ("nhwc", "nchw"):
        raise ValueError(f"layout must be 'nhwc' or 'nchw'; got {layout!r}. {_LAYOUT_HELP}")
    return layout  # type: ignore[no-any-return]


def _describe_shape(layout: Layout | None) -> str:
    if layout is None:
        return "(n, height, width, channels) or (n, channels, height, width)"
    return "(n, height, width, channels)" if layout == "nhwc" else "(n, channels, height, width)"


def as_conv(x: Any, name: str, layout: Layout | None, *, allow_dense: bool) -> np.ndarray:
    """Return ``x`` as a real ``(n, h, w, c)`` array (a view when possible, never a copy).

    A 2-D ``(n, d)`` array (a dense layer) becomes an ``(n, 1, 1, d)`` map when
    ``allow_dense``; a ``(n, c, h, w)`` array is transposed (as a view) when
    ``layout == "nchw"``. A 4-D array with ``layout=None`` is refused: read in the wrong
    layout, channels become a spatial axis and every number is wrong.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"{name} must be an array of activations of shape {_describe_shape(layout)}; "
            f"got {type(x).__name__}."
        )
    x = check_unmasked(x, name)  # a mask would be dropped by np.asarray
    check_readable(x, name)  # sparse matrices and iterators: refused with the fix
    try:
        arr = np.asarray(tensor_to_numpy(x))  # tensors: detached, host, bf16 -> f32
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(
            f"{name} could not be converted to a numeric array ({exc}). Pass a rectangular "
            f"array of shape {_describe_shape(layout)}."
        ) from exc
    given = arr.shape
    if arr.dtype.kind not in "biuf":
        hint = (
            " Pass the real activations; the Fourier transform is taken internally."
            if arr.dtype.kind == "c"
            else " Convert it with np.asarray(..., dtype=float)."
        )
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}.{hint}")
    if arr.ndim == 2 and allow_dense:
        arr = arr[:, None, None, :]
    elif arr.ndim != 4:
        if arr.ndim == 2:
            fix = (
                "A dense layer (n, d) has no spatial map for this strategy: use "
                "strategy='dft' or 'avgpool', or reshape it to (n, 1, 1, d) yourself."
            )
        elif arr.ndim == 3:
            fix = (
                "If it is a single-channel map, add the channel axis (x[..., None] for "
                "'nhwc', x[:, None] for 'nchw')."
            )
        else:
            fix = f"Reshape it to {_describe_shape(layout)}."
        dense = " or 2-D (n, features)" if allow_dense else ""
        raise ValueError(
            f"{name} must be 4-D {_describe_shape(layout)}{dense}; got a {arr.ndim}-D array "
            f"of shape {arr.shape}. {fix}"
        )
    elif layout is None:
        raise ValueError(
            f"{name} is a 4-D map of shape {arr.shape}, and layout was not given. "
            f"{_LAYOUT_HELP} Maps recorded by svcca.torch.capture(conv='keep') are "
            "channels-first: layout='nchw'."
        )
    elif layout == "nchw":
        arr = arr.transpose(0, 2, 3, 1)
    if 0 in arr.shape:
        raise ValueError(
            f"{name} is empty (shape {given}); it needs at least one sample, "
            "one spatial position and one channel."
        )
    return arr


def check_same_n(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("A", "B")) -> int:
    """Both sides describe the same datapoints, and there are at least two."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must hold the activations of the same datapoints: "
            f"{names[0]} has {a.shape[0]} samples (first axis) and {names[1]} has "
            f"{b.shape[0]}. The first axis is always the datapoints; if yours are "
            "(neurons, datapoints) use svcca.compat."
        )
    if a.shape[0] < 2:
        raise ValueError(f"At least 2 samples are needed to compare layers; got {a.shape[0]}.")
    return int(a.shape[0])


def raise_nonfinite_conv(a: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the samples of ``a`` that hold NaN or inf."""
    raise_nonfinite(a, name, unit="samples")
