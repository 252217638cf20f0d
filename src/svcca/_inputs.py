"""Turning what a user passes (arrays, a Moments object) into the sufficient statistic."""

from __future__ import annotations

from typing import Any

from svcca._moments import Moments
from svcca._validation import as_representation, check_pair

__all__ = ["to_moments"]


def to_moments(X: Any, Y: Any, *, need_y: bool = True) -> Moments:
    """The statistic of ``(X, Y)``, or ``X`` itself when it already is a :class:`Moments`."""
    if isinstance(X, Moments):
        if Y is not None:
            raise TypeError(
                "Pass either a Moments object alone or two arrays, not a Moments and an array."
            )
        if need_y and not X.has_y:
            raise ValueError(
                "This measure compares two representations, but the Moments object has no Y "
                "side; build it with Moments.from_arrays(X, Y)."
            )
        if X.n < 2:
            raise ValueError(f"The Moments object holds {X.n} samples; at least 2 are needed.")
        return X
    if need_y:
        if Y is None:
            raise TypeError(
                "This measure compares two representations: call it as f(X, Y) with arrays of "
                "shape (n_samples, p) and (n_samples, q), or f(moments)."
            )
        A, B = check_pair(X, Y)
    else:
        A, B = as_representation(X, "X"), None
    if A.shape[0] < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {A.shape[0]}.")
    return Moments.from_arrays(A, B)
