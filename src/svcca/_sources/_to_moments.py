"""Turning what a user passes into the sufficient statistic, in one place.

Every Moments-based measure (cca, svcca, pwcca, pls, pca) calls :func:`to_moments`, so
each accepts the same inputs:

- a :class:`~svcca.Moments` object (alone);
- NumPy arrays and ``np.memmap`` files (``np.load(path, mmap_mode="r")``), read in row
  chunks whose file pages are released, so memory stays constant in ``n``;
- dask arrays: moments per block on the workers, merged up a tree (``svcca._sources._dask``);
- torch tensors: accumulated where the work runs (:func:`svcca._device.data_device`):
  GPU tensors on their GPU, any inside ``svcca.on_device(d)`` on ``d``, only the small
  result copied to the host; CPU tensors otherwise on the host path. A NumPy or Dask
  array beside tensors on a device path is refused;
- h5py / zarr datasets (anything with ``shape``, ``dtype`` and row slicing), read in
  chunks;
- iterators of batches: ``f(iter_of_x_batches, iter_of_y_batches)`` or
  ``f(iter_of_(x, y)_pairs)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from svcca._moments import Moments
from svcca._validation import Precision, as_representation, check_pair, check_precision

__all__ = ["to_moments"]


def _check_n(m: Moments) -> Moments:
    if m.n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {m.n}.")
    return m


def to_moments(
    X: Any, Y: Any, *, need_y: bool = True, precision: Precision = "float64"
) -> Moments:
    """The statistic of ``(X, Y)``, or ``X`` itself when it already is a :class:`Moments`.

    ``precision`` (checked here) says how the products of arrays are taken; a
    :class:`Moments` input keeps its own.
    """
    precision = check_precision(precision)
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
    if not need_y and Y is not None:
        raise TypeError("This measure takes one representation; got a second argument.")

    # Iterators of batches: one pass, constant memory.
    if isinstance(X, Iterator):
        if Y is not None and not isinstance(Y, Iterator):
            raise TypeError(
                "X is an iterator of batches but Y is not; pass two iterators of batches, one "
                "iterator of (x, y) pairs, or two arrays."
            )
        from svcca._sources._sources import moments_from_iterators

        m = moments_from_iterators(X, Y, precision=precision)
        if need_y and not m.has_y:
            raise TypeError(
                "This measure compares two representations: the iterator must yield (x, y) "
                "pairs, or pass a second iterator of Y batches."
            )
        return _check_n(m)
    if isinstance(Y, Iterator):
        raise TypeError("Y is an iterator of batches but X is not; pass both as iterators.")

    if need_y and Y is None:
        raise TypeError(
            "This measure compares two representations: call it as f(X, Y) with arrays of "
            "shape (n_samples, p) and (n_samples, q), or f(moments)."
        )
    from svcca._sources._sources import is_dask_array, is_streamable

    if is_streamable(X) or (Y is not None and is_streamable(Y)):
        from svcca._device import data_device

        # GPU tensors (any, inside on_device(d)) on their device; a NumPy or Dask array
        # beside them is refused there, never the tensors copied to the host silently
        on = data_device([X] if Y is None else [X, Y], ["X", "Y"][: 1 if Y is None else 2])
        if on is None and (is_dask_array(X) or is_dask_array(Y)):
            from svcca._sources._dask import moments_from_dask

            return _check_n(moments_from_dask(X, Y, precision=precision))
        if on is not None:
            from svcca._sources._sources import moments_of_tensors

            return _check_n(moments_of_tensors(X, Y, precision=precision, where=on))
        from svcca._sources._sources import moments_from_sources

        return _check_n(moments_from_sources(X, Y, precision=precision))

    if need_y:
        A, B = check_pair(X, Y)
    else:
        A, B = as_representation(X, "X"), None
    if A.shape[0] < 2:
        raise ValueError(
            f"At least 2 samples are needed to compare representations; got {A.shape[0]}."
        )
    return Moments.from_arrays(A, B, precision=precision)
