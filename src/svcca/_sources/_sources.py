"""Representations read in chunks of samples: memmaps, HDF5/zarr datasets, torch, files.

A :class:`Source` wraps one representation of ``n`` samples and hands out float64 row
chunks on demand, so every pass over the data holds one chunk at a time whatever ``n``
is. NumPy arrays (``np.memmap`` included: the file pages behind each chunk are released
after it is read), array-likes that slice into NumPy arrays (``h5py.Dataset``,
``zarr.Array``), torch tensors and dask arrays are accepted. Nothing heavy is imported
here: torch and dask are recognised through ``sys.modules`` and the objects' types.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from svcca._moments import Accumulator, Moments, chunk_rows, release_rows
from svcca._sources._npy_file import NpyFile
from svcca._threads import products
from svcca._validation import (
    Precision,
    as_representation,
    is_sparse,
    is_torch_tensor,
    tensor_to_numpy,
)

__all__ = [
    "Source",
    "as_source",
    "is_dask_array",
    "is_torch_tensor",
    "load_array",
    "moments_from_sources",
]


# ---------------------------------------------------------------------- detection
# is_torch_tensor lives with the one tensor -> NumPy conversion in svcca._validation.


def is_dask_array(x: Any) -> bool:
    """Whether ``x`` is a dask array, without importing dask."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(x, da.Array)


def _is_array_like(x: Any) -> bool:
    """Objects that slice into NumPy arrays but are not NumPy arrays (h5py, zarr)."""
    return (
        not isinstance(x, np.ndarray)
        and not is_sparse(x)  # refused by as_representation, with the fix
        and hasattr(x, "shape")
        and hasattr(x, "dtype")
        and hasattr(x, "__getitem__")
    )


def is_streamable(x: Any) -> bool:
    """Whether ``x`` must be read chunk by chunk rather than through ``np.asarray``."""
    return is_torch_tensor(x) or is_dask_array(x) or _is_array_like(x)


# ---------------------------------------------------------------------- sources
class Source:
    """One representation ``(n, p)`` read in row chunks as float64 NumPy arrays.

    Parameters
    ----------
    obj : array, memmap, torch tensor, dask array, or h5py/zarr-like dataset
    name : str
        Used in error messages ("representation 'conv3' ...").
    kind : {"numpy", "torch", "dask", "file", "arraylike"}
    """

    __slots__ = ("obj", "name", "kind", "n", "p")

    def __init__(self, obj: Any, name: str, kind: str, n: int, p: int) -> None:
        self.obj, self.name, self.kind, self.n, self.p = obj, name, kind, n, p

    def read(self, start: int, stop: int, buffer: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` as a C-contiguous float64 array the caller may modify.

        NumPy arrays and memmaps are copied into the front of ``buffer`` when one is
        given (reusing one buffer avoids a page fault per 4 KiB of every chunk); other
        kinds return a fresh array.
        """
        obj = self.obj
        if self.kind in ("numpy", "torch"):
            # A tensor chunk goes through the one conversion (detached, to the host, in
            # its own dtype, bfloat16 as float32) and is widened to float64 here.
            rows = obj[start:stop] if self.kind == "numpy" else tensor_to_numpy(obj[start:stop])
            if buffer is None:
                out = np.array(rows, dtype=np.float64, copy=True)
            else:
                out = buffer[: stop - start]
                np.copyto(out, rows, casting="unsafe")
            if self.kind == "numpy":
                release_rows(obj, start, stop)
            return out
        if self.kind == "dask":
            return np.asarray(obj[start:stop].compute(), dtype=np.float64)
        try:
            if self.kind == "file":  # positioned reads straight into the buffer
                into = None if buffer is None else buffer[: stop - start]
                return obj.read_rows(start, stop, out=into, dtype=np.float64)
            block = obj[start:stop]
        except Exception as exc:  # h5py/zarr/file read errors: say which representation
            raise ValueError(
                f"Could not read rows {start}:{stop} of representation {self.name!r}: {exc}"
            ) from exc
        return np.array(block, dtype=np.float64, copy=True)

    def __repr__(self) -> str:
        return f"Source({self.name!r}, kind={self.kind!r}, n={self.n}, p={self.p})"


def _check_shape_dtype(shape: Any, dtype: Any, name: str, what: str) -> tuple[int, int]:
    shape = tuple(shape)
    kind = np.dtype(dtype).kind if dtype is not None else "?"
    if kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers; got a {what} of dtype {dtype}. Convert it to a "
            "float dtype first."
        )
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got a {what} of shape {shape}. "
            "Reshape it to (n_samples, n_features)."
        )
    n, p = shape
    if n is None or p is None or (isinstance(n, float) and np.isnan(n)):
        raise ValueError(
            f"{name} is a {what} of unknown shape {shape}; call .compute_chunk_sizes() on it first."
        )
    if int(n) == 0 or int(p) == 0:
        raise ValueError(
            f"{name} is empty (shape {shape}); it needs at least one sample and one feature."
        )
    return int(n), int(p)


def as_source(obj: Any, name: str) -> Source:
    """Wrap a representation for chunked reading, validating shape and dtype.

    Raises TypeError/ValueError that name the representation.
    """
    if isinstance(obj, Moments):
        raise TypeError(
            f"{name} is a Moments object, but this computation needs the samples themselves; "
            "pass the arrays (or memmaps, dask arrays, tensors) instead."
        )
    if isinstance(obj, (str, os.PathLike)):
        obj = load_array(obj, name)
    if is_torch_tensor(obj):
        if obj.is_complex():
            raise TypeError(f"{name} must hold real numbers; got a complex tensor.")
        dt: Any = np.float64 if obj.is_floating_point() else np.int64
        if obj.dtype == sys.modules["torch"].bool:
            dt = np.bool_
        n, p = _check_shape_dtype(obj.shape, dt, name, "tensor")
        return Source(obj, name, "torch", n, p)
    if is_dask_array(obj):
        n, p = _check_shape_dtype(obj.shape, obj.dtype, name, "dask array")
        return Source(obj, name, "dask", n, p)
    if isinstance(obj, NpyFile):
        n, p = _check_shape_dtype(obj.shape, obj.dtype, name, f"file {obj.path!r}")
        return Source(obj, name, "file", n, p)
    if _is_array_like(obj) and not isinstance(obj, (list, tuple)):
        n, p = _check_shape_dtype(obj.shape, obj.dtype, name, type(obj).__name__)
        return Source(obj, name, "arraylike", n, p)
    arr = as_representation(obj, name)
    return Source(arr, name, "numpy", arr.shape[0], arr.shape[1])


def load_array(path: str | os.PathLike[str], name: str | None = None) -> NpyFile:
    """Open an ``.npy`` file for reading by chunks, with an error naming the file.

    The result (a file reader with ``shape``, ``dtype`` and row slicing) reads rows with positioned
    reads, never a memory map: a file that shrinks during the run raises a ValueError
    naming it instead of killing the process with SIGBUS. ``np.asarray`` of it reads
    the whole array; slicing rows reads those rows.

    The header is read first, so each way a file can be wrong raises a ValueError that
    names the file and says what is wrong: a folder, an empty file, a file that is not
    in the ``.npy`` format (text, other bytes), an ``.npz`` archive, a header that does
    not parse, an array of Python objects (pickles are never loaded: unpickling can run
    arbitrary code), or a file shorter than its header says (truncated).

    Examples
    --------
    >>> import os, tempfile, numpy as np, svcca
    >>> path = os.path.join(tempfile.mkdtemp(), "layer.npy")
    >>> np.save(path, np.arange(12.0).reshape(6, 2))
    >>> a = svcca.load_array(path)
    >>> a.shape, a[2:4].tolist()
    ((6, 2), [[4.0, 5.0], [6.0, 7.0]])
    """
    from numpy.lib import format as npy

    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not a .npy file.")
    if not os.path.isfile(path):
        where = f"{path!r}:" if name is None else f"{name}: {path!r}:"
        if os.path.exists(path):  # a FIFO, /dev/zero, a socket: reading could block
            raise ValueError(
                f"{where} not a regular file (a device, pipe or socket); give a .npy file."
            )
        raise ValueError(f"{where} no such file.")
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(len(npy.MAGIC_PREFIX))
        if head != npy.MAGIC_PREFIX:
            if size == 0:
                raise ValueError(f"{path!r} is empty (0 bytes), not a NumPy .npy file.")
            if npy.MAGIC_PREFIX.startswith(head):
                raise ValueError(
                    f"{path!r} is truncated: it ends inside the .npy signature ({size} bytes)."
                )
            if head.startswith(b"PK"):
                raise ValueError(
                    f"{path!r} holds several arrays (an .npz), not one .npy array; "
                    "pass a single .npy file."
                )
            raise ValueError(
                f"{path!r} is not a NumPy .npy file: it starts with {head!r}, not the .npy "
                f"signature {npy.MAGIC_PREFIX!r}. Save each representation with numpy.save."
            )
        fh.seek(0)
        try:
            major, minor = npy.read_magic(fh)
        except ValueError as exc:
            raise ValueError(
                f"{path!r} is truncated: it ends inside the .npy signature ({size} bytes)."
            ) from exc
        if major not in (1, 2, 3):
            raise ValueError(
                f"{path!r} has .npy format version {major}.{minor}, which this NumPy "
                f"({np.__version__}) cannot read."
            )
        width = 2 if major == 1 else 4  # bytes of the header-length field
        field = fh.read(width)
        header_end = fh.tell() + int.from_bytes(field, "little")
        if len(field) < width or size < header_end:
            needs = f"{header_end} bytes" if len(field) == width else "more bytes"
            raise ValueError(
                f"{path!r} is truncated: its .npy header needs {needs}, the file has {size}. "
                "Copy or save it again."
            )
        fh.seek(len(npy.MAGIC_PREFIX) + 2)
        try:
            read_header = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
        except Exception as exc:  # the header is a Python literal: many parse errors
            raise ValueError(
                f"{path!r} is not a valid .npy file: its header does not parse "
                f"({type(exc).__name__}: {exc})."
            ) from exc
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError(
            f"{path!r} holds Python objects (dtype {dtype}), which only unpickling could "
            "read; pickles are never loaded (they can run arbitrary code). Save a numeric "
            "array instead."
        )
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size - offset < expected:
        raise ValueError(
            f"{path!r} is truncated: its header promises a {dtype} array of shape {shape} "
            f"({expected} bytes of data), but the file holds {size - offset} bytes after the "
            "header. Copy or save it again."
        )
    try:
        return NpyFile(path, tuple(shape), dtype, fortran, offset)
    except OSError as exc:
        raise ValueError(f"{path!r} could not be opened: {exc}") from exc


def check_same_n(sources: Iterable[Source]) -> int:
    """All sources describe the same samples; raise naming the first that does not."""
    sources = list(sources)
    first = sources[0]
    for s in sources[1:]:
        if s.n != first.n:
            raise ValueError(
                f"Representation {s.name!r} has {s.n} samples but {first.name!r} has "
                f"{first.n}; every representation in one comparison must describe the same "
                "datapoints in the same order (rows are samples)."
            )
    return first.n


# ---------------------------------------------------------------------- moments
def moments_from_sources(
    X: Any,
    Y: Any = None,
    *,
    chunk_size: int | None = None,
    names: tuple[str, str] = ("X", "Y"),
    precision: Precision = "float64",
    first_row: int = 0,
) -> Moments:
    """Moments of two representations read chunk by chunk (memory constant in ``n``).

    ``first_row``: where these rows start in a larger array (a Dask block), so that
    messages number rows within the whole array.
    """
    sx = X if isinstance(X, Source) else as_source(X, names[0])
    sy = None
    if Y is not None:
        sy = Y if isinstance(Y, Source) else as_source(Y, names[1])
        check_same_n([sx, sy])
    acc = Accumulator(sx.p, 0 if sy is None else sy.p, precision, names)
    rows = min(chunk_rows(sx.p + (0 if sy is None else sy.p), chunk_size, precision), sx.n)
    # Rows are read as float64 and shifted before any cast to float32 (add_rows).
    xbuf = np.empty((rows, sx.p))
    ybuf = None if sy is None else np.empty((rows, sy.p))
    with products(rows * (sx.p + (0 if sy is None else sy.p)) ** 2 / 2):
        for start in range(0, sx.n, rows):
            stop = min(start + rows, sx.n)
            xb = sx.read(start, stop, xbuf)
            yb = None if sy is None else sy.read(start, stop, ybuf)
            acc.add_rows(xb, yb, start=first_row + start, stop=first_row + stop, scratch=True)
    return acc.finish()


_DECIDE: Any = object()  # moments_of_tensors' default: decide the device here


def moments_of_tensors(
    X: Any,
    Y: Any = None,
    *,
    chunk_size: int | None = None,
    precision: Precision = "float64",
    where: Any = _DECIDE,
) -> Moments:
    """Moments of torch tensors, accumulated on their device.

    GPU tensors (any tensors inside ``svcca.on_device(d)``, which must then be on
    ``d``): chunks planned from the device's free memory, at most ``chunk_size`` rows,
    are shifted and multiplied where the tensors live by the one device accumulator
    (:class:`~svcca._moments._torch_moments.TorchAccumulator`: float64, or float32
    products into float64 sums); only the ``(p + q)^2`` result is copied to the host.
    CPU tensors (and any inside ``svcca.on_device(None)``) take the host path, read in
    chunks by :func:`moments_from_sources`, as CPU data always do. ``where``: the device
    a caller already decided by :func:`svcca._device.data_device` (None: the host).
    """
    from svcca._device import data_device
    from svcca._moments import moments_of_tensor_pair

    sx = as_source(X, "X")
    sy = None if Y is None else as_source(Y, "Y")
    if sy is not None:
        check_same_n([sx, sy])
    if where is _DECIDE:  # decided here, unless the caller has (to_moments)
        where = data_device([X] if Y is None else [X, Y], ["X"] if Y is None else ["X", "Y"])
    if where is None:
        return moments_from_sources(X, Y, chunk_size=chunk_size, precision=precision)
    return moments_of_tensor_pair(X, Y, where, chunk_size, precision)


def moments_from_iterators(
    X: Iterator[Any], Y: Iterator[Any] | None, *, precision: Precision = "float64"
) -> Moments:
    """Moments from an iterator of batches (``X`` alone, ``(x, y)`` pairs, or two iterators)."""
    if Y is None:
        return Moments.from_batches(X, precision=precision)
    sentinel = object()

    def pairs() -> Iterator[tuple[Any, Any]]:
        i = 0
        while True:
            xb, yb = next(X, sentinel), next(Y, sentinel)  # type: ignore[call-overload]
            if xb is sentinel and yb is sentinel:
                return
            if xb is sentinel or yb is sentinel:
                short = "X" if xb is sentinel else "Y"
                raise ValueError(
                    f"The batch iterators of X and Y have different lengths: {short} ran out "
                    f"after {i} batches. Both must yield the same samples in the same batches."
                )
            yield xb, yb
            i += 1

    return Moments.from_batches(pairs(), precision=precision)
