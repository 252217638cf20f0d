"""Input checks for the public API, in one place.

Every public function validates its inputs here, once, at the boundary; private
helpers trust what they are given. Messages say what was expected, what arrived and
how to fix it.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

__all__ = [
    "SVCCAWarning",
    "as_representation",
    "raise_nonfinite",
    "check_fraction_or_count",
    "check_pair",
    "check_probability",
]


class SVCCAWarning(UserWarning):
    """Warning about a comparison whose result may mislead (e.g. too few samples)."""


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return type(x).__name__


def as_representation(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D numeric NumPy array ``(n_samples, n_features)`` without copying.

    Accepts anything ``np.asarray`` turns into a real numeric array (lists, NumPy arrays,
    ``np.memmap``). Integer, boolean, float16 and float32 data are accepted; the
    computations accumulate in float64 chunk by chunk, so no float64 copy of the whole
    array is made here.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"{name} must be an array of shape (n_samples, n_features); got {_describe(x)}."
        )
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(
            f"{name} could not be converted to a numeric array ({exc}). Pass a rectangular "
            "array of shape (n_samples, n_features)."
        ) from exc
    if arr.dtype.kind not in "biuf":
        hint = (
            " Complex data is only meaningful for the Fourier path: use svcca.conv."
            if arr.dtype.kind == "c"
            else " Convert it with np.asarray(..., dtype=float)."
        )
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}.{hint}")
    if arr.ndim != 2:
        if arr.ndim == 1:
            fix = "Reshape a single feature with x.reshape(-1, 1)."
        elif arr.ndim == 4:
            fix = (
                "Convolutional activations (n, h, w, c) go through svcca.conv, or reshape "
                "them to (n, h*w*c) to flatten all neurons."
            )
        else:
            fix = "Reshape it to (n_samples, n_features)."
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got a {arr.ndim}-D array of shape "
            f"{arr.shape}. {fix}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); it needs at least one sample and one feature."
        )
    return arr


def check_pair(
    x: Any, y: Any, names: tuple[str, str] = ("X", "Y")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two representations of the same datapoints."""
    a = as_representation(x, names[0])
    b = as_representation(y, names[1])
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must describe the same datapoints: {names[0]} has "
            f"{a.shape[0]} samples (rows) and {names[1]} has {b.shape[0]}. Arrays are "
            "(n_samples, n_features); if yours are (neurons, datapoints) as in the original "
            "google/svcca code, pass their transposes or use svcca.compat."
        )
    return a, b


def raise_nonfinite(full: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the rows of ``full`` that hold NaN or inf.

    Called only once a chunk of ``full`` has been seen to be non-finite, so the full
    scan costs nothing on valid data.
    """
    bad = ~np.isfinite(full).all(axis=1)
    rows = np.flatnonzero(bad)
    raise ValueError(
        f"{name} contains NaN or inf in {rows.size} of its {full.shape[0]} rows (first: "
        f"{rows[:5].tolist()}). Remove or impute those samples in both representations "
        "before comparing."
    )


def check_fraction_or_count(keep: Any, name: str = "keep") -> float | int:
    """``keep`` is a fraction in (0, 1] or a positive integer count."""
    if isinstance(keep, (bool, np.bool_)):
        raise TypeError(f"{name} must be a fraction in (0, 1] or a positive int; got {keep!r}.")
    if isinstance(keep, numbers.Integral):
        if keep < 1:
            raise ValueError(
                f"{name} as a count must be at least 1; got {keep}. Pass a positive int "
                "(number of directions) or a float in (0, 1] (fraction of variance)."
            )
        return int(keep)
    if isinstance(keep, numbers.Real):
        keep_f = float(keep)
        if not (0.0 < keep_f <= 1.0):
            raise ValueError(
                f"{name} as a fraction must lie in (0, 1]; got {keep_f}. Pass e.g. 0.99 to keep "
                "99% of the variance, or an int to keep that many directions."
            )
        return keep_f
    raise TypeError(f"{name} must be a fraction in (0, 1] or a positive int; got {keep!r}.")


def check_probability(value: Any, name: str) -> float:
    """A real number in [0, 1]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1]; got {value!r}.")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {v}.")
    return v


def check_nonnegative(value: Any, name: str) -> float:
    """A finite real number >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a non-negative number; got {value!r}.")
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {v}.")
    return v


def warn_few_samples(n: int, p: int, q: int) -> None:
    """CCA with at least as many features as samples is trivially near 1."""
    if max(p, q) >= n:
        warnings.warn(
            f"{n} samples for {p} and {q} features: with at least as many features as "
            "datapoints, canonical correlations are trivially close to 1 and mean nothing. "
            "Use several times more datapoints than features (the SVCCA tutorial's rule of "
            "thumb), or reduce each side first with svcca.svcca(..., keep=k) for small k.",
            SVCCAWarning,
            stacklevel=3,
        )
