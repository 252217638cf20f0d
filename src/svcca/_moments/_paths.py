"""Where :meth:`Moments.from_arrays` and :meth:`Moments.from_batches` send what the host
loop does not sum: tensors whose work runs on a device, and Dask arrays.

The modules that sum them build :class:`Moments` (or sit a layer above), so they cannot
be imported by ``_moments``: they register their functions here when imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from svcca._validation import Precision

__all__ = ["register_dask_moments", "split_batch", "tensor_batch_device"]

# Tensor batches are summed on their device by svcca._moments._torch_moments. That
# module builds Moments (it imports this one), so it cannot be imported from here: it
# registers its functions below when it is imported, and svcca._moments imports it.
tensor_batches: Callable[[Iterable[Any], Precision, Any], Any] | None = None
tensor_pair: Callable[[Any, Any, Any, int | None, Precision], Any] | None = None
# Dask arrays: svcca._sources (a layer above) registers its blockwise path.
dask_pair: Callable[..., Any] | None = None


def register_dask_moments(path: Callable[..., Any]) -> None:
    """Where :meth:`Moments.from_arrays` sends Dask arrays (``svcca._sources`` registers
    its blockwise path when it is imported: it sits a layer above)."""
    global dask_pair
    dask_pair = path


def split_batch(batch: Any) -> tuple[Any, Any]:
    """A batch as ``(x, y)`` (``y`` None for X alone)."""
    if isinstance(batch, tuple) and len(batch) == 2:
        return batch
    if isinstance(batch, tuple):
        raise TypeError(
            f"A batch is X, or a pair (X, Y); got a tuple of {len(batch)} items. Yield "
            "(x_batch, y_batch) for two representations (one Moments per pair of layers)."
        )
    return batch, None


def tensor_batch_device(batch: Any, i: int) -> Any:
    """The device batch ``i``'s torch tensors are summed on (GPU tensors, or any inside
    ``svcca.on_device(d)``), or None (CPU tensors and arrays: the host path). A NumPy
    array beside such tensors is refused (:func:`svcca._device.data_device`)."""
    from svcca._device import data_device

    xb, yb = split_batch(batch)
    arrays = [xb] if yb is None else [xb, yb]
    return data_device(arrays, [f"X of batch {i}", f"Y of batch {i}"][: len(arrays)])
