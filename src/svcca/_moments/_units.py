"""The unit of a statistic's sums: a power of two per side, so that layers of any
magnitude are summed without overflow or underflow (``Moments.scale_x``), and the float32
range checks of the products.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import numpy as np

from svcca._validation import Precision

__all__ = [
    "Float32RangeError",
    "Units",
    "check_float32_top",
    "check_scale",
    "column_means",
    "raise_overflow",
    "scale_for",
    "top_of",
]


# ---------------------------------------------------------------------- scales
# Centred values within [2^-B, 2^B] are summed as they are: their squares summed over up
# to 2^40 rows, and the squares of those sums (linear CKA's ||S||_F^2), stay far inside
# float64's normal range (and float32's for the products of a 4096-row chunk). Outside
# the band a side is scaled by a power of two that brings its largest value into [1, 2).
_SCALE_BAND = {"float64": 64, "float32": 40}
# How much larger than the unit's a later chunk's values can be before the sums overflow:
# float64 squares summed past 2^1023; float32 products of a 4096-row chunk past 2^128.
_OVERFLOW_FACTOR = {"float64": "2^440", "float32": "2^18"}


def raise_overflow(name: str, precision: Precision) -> NoReturn:
    """The sums of ``name`` overflowed: a later chunk far larger than the first."""
    raise (Float32RangeError if precision == "float32" else ValueError)(
        f"The {precision} cross-products of {name} overflowed: a later chunk held values "
        f"about the mean far larger (by a factor beyond about {_OVERFLOW_FACTOR[precision]}) "
        "than the first chunk with any spread, which set the unit of the sums. Give the rows "
        "in another order (a first batch of typical values), or rescale the activations."
        + (" Or use precision='float64'." if precision == "float32" else "")
    )


def check_scale(value: Any, name: str) -> float:
    """A scale must be a finite, positive power of two (scaling by it is exact)."""
    v = float(value)
    if not (np.isfinite(v) and v > 0 and math.frexp(v)[0] == 0.5):
        raise ValueError(
            f"Moments.{name} must be a positive power of two (the sums' unit); got {value!r}."
        )
    return v


def scale_for(top: float, precision: Precision) -> float:
    """The power-of-two scale for a side whose largest centred magnitude is ``top``.

    1 inside the band ``[2^-B, 2^B]`` (or for ``top`` 0 or not finite), else the power of
    two ``2^e`` with ``top / 2^e`` in ``[1, 2)``.
    """
    band = _SCALE_BAND[precision]
    if not (np.isfinite(top) and top > 0):
        return 1.0
    e = math.frexp(top)[1] - 1  # top = m 2^(e+1), m in [0.5, 1): top / 2^e in [1, 2)
    if -band <= e <= band:
        return 1.0
    # A subnormal top (the round-off of a mean, in a constant layer) gets the smallest
    # normal unit: its inverse, 2^1022, is finite.
    return math.ldexp(1.0, max(e, -1022))


def column_means(a: Any) -> np.ndarray:
    """float64 column means of ``a`` (any real dtype), also where the column sums would
    overflow (values near 1e300 over many rows): then of ``a`` divided by a power of two.

    NaN or inf in ``a`` give non-finite means (the caller reports them).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.asarray(np.mean(a, axis=0, dtype=np.float64))
        if not np.isfinite(m).all():
            top = top_of(np.asarray(a))
            if np.isfinite(top):  # finite data whose sum overflowed
                unit = math.ldexp(1.0, math.frexp(top)[1] - 1)  # top / unit in [1, 2)
                m = np.mean(np.asarray(a, dtype=np.float64) / unit, axis=0) * unit
    return m


def top_of(a: Any) -> float:
    """``max |a|`` without a temporary of ``a``'s size (0.0 when ``a`` is empty)."""
    if a.size == 0:
        return 0.0
    return max(float(a.max()), -float(a.min()))


class Float32RangeError(ValueError):
    """float32 cannot hold the centred values (past its range, or float32 data so small
    that their digits are lost), or a later chunk overflowed float32 products."""


# float32 chunks are scaled by a power of two before their products (scale_for), so any
# magnitude float32 holds is summed; but centred values below 2^-100 were already rounded
# to few digits when cast to float32 (its normal range ends at 2^-126).
_F32_LOW = 2.0**-100


def check_float32_top(top: float, name: str) -> None:
    """Refuse a chunk whose largest centred magnitude ``top`` float32 cannot resolve."""
    if 0.0 < top < _F32_LOW:
        raise Float32RangeError(
            f"{name} has values of magnitude {top:.3g} about its mean: cast to float32 they "
            "lose their digits (subnormal). Use precision='float64', or rescale the "
            "activations."
        )


class Units:
    """Each side's unit, for an accumulator: ``scale_x``, ``scale_y`` (None until the
    first chunk with any spread decides them) and what its rows are multiplied by."""

    scale_x: float | None = None
    scale_y: float | None = None

    @property
    def inv_x(self) -> float:
        """What rows of X are multiplied by after the shift (1 while undecided)."""
        return 1.0 / (self.scale_x or 1.0)

    @property
    def inv_y(self) -> float:
        return 1.0 / (self.scale_y or 1.0)
