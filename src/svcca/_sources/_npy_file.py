"""A ``.npy`` file read by positioned reads, never memory-mapped.

A memory map of a file that shrinks while it is read kills the process with SIGBUS on
the first access past the new end: no Python code can catch that. The files the library
opens itself (paths given to the sources, ``svcca compare`` and ``svcca pairwise``) are
therefore read with ``os.preadv`` into a buffer of one chunk, at offsets computed from
the ``.npy`` header; a read that finds the file shorter than its header promised raises
a ``ValueError`` naming the file. Memory stays at one chunk per read.

A user's own ``np.memmap`` is the user's mapping: if its file is truncated during a run,
the process dies with SIGBUS, and nothing in Python can prevent it (``docs/inputs.md``).
"""

from __future__ import annotations

import io
import os
import threading
import weakref
from typing import Any, cast

import numpy as np

from svcca._validation import InputFileError

__all__ = ["NpyFile"]


class NpyFile:
    """A 2-D (or any-D, read whole) array stored in a ``.npy`` file, read on demand.

    Slicing rows (``f[start:stop]``) reads just those rows; ``np.asarray(f)`` reads the
    whole array; ``f.T`` is the transpose (rows of a transposed file are read column
    by column). Built by :func:`svcca._sources.load_array`, which checks the header
    first. The file stays open (so a file renamed over it is not read instead) until the
    object is garbage-collected or :meth:`close` is called.

    Attributes
    ----------
    path : str
    shape : tuple of int
    dtype : numpy.dtype
    """

    __slots__ = ("path", "shape", "dtype", "_fortran", "_offset", "_transposed", "_handle")

    def __init__(
        self,
        path: str,
        shape: tuple[int, ...],
        dtype: np.dtype,
        fortran: bool,
        offset: int,
        *,
        _share: NpyFile | None = None,
        _transposed: bool = False,
    ) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self._fortran = bool(fortran)
        self._offset = int(offset)
        self._transposed = _transposed
        self.shape = tuple(shape)[::-1] if _transposed else tuple(shape)
        self._handle: _Handle = _Handle(path) if _share is None else _share._handle

    # ------------------------------------------------------------------ array protocol
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def T(self) -> Any:
        """The transpose: no data are read."""
        if self.ndim != 2:
            return np.asarray(self).T
        stored = self.shape[::-1] if self._transposed else self.shape
        return NpyFile(
            self.path, stored, self.dtype, self._fortran, self._offset,
            _share=self, _transposed=not self._transposed,
        )  # fmt: skip

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read_all()
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        if self.ndim == 2:
            rows, cols = key if isinstance(key, tuple) and len(key) == 2 else (key, None)
            if isinstance(rows, slice) and rows.step in (None, 1):
                start, stop, _ = rows.indices(self.shape[0])
                block = self.read_rows(start, max(start, stop))
                return block if cols is None else block[:, cols]
        return np.asarray(self)[key]

    def close(self) -> None:
        """Close the file (reads after this raise ``ValueError``)."""
        self._handle.fh.close()

    def __repr__(self) -> str:
        return f"NpyFile({self.path!r}, shape={self.shape}, dtype={self.dtype})"

    # ------------------------------------------------------------------ reading
    def _row_major(self) -> bool:
        """Whether the logical rows are contiguous in the file."""
        return self._fortran == self._transposed

    def read_rows(
        self, start: int, stop: int, *, out: np.ndarray | None = None, dtype: Any = None
    ) -> np.ndarray:
        """Rows ``start:stop`` as a C-contiguous array of ``dtype`` (default: the file's).

        With ``out`` (C-contiguous, ``stop - start`` rows), the rows are written into it
        and it is returned: read straight in when it has the file's dtype and the rows
        are contiguous in the file, else read and converted chunk by chunk.
        """
        n, p = self.shape
        if not 0 <= start <= stop <= n:
            raise IndexError(f"rows {start}:{stop} are outside {self.path!r} ({n} rows).")
        want = self.dtype if dtype is None else np.dtype(dtype)
        if out is None:
            out = np.empty((stop - start, p), dtype=want)
        if stop == start or p == 0:
            return out
        size = self.dtype.itemsize
        if self._row_major() and out.dtype == self.dtype and out.flags.c_contiguous:
            self._pread(out, self._offset + start * p * size, start, stop)
            return out
        if self._row_major():
            raw = np.empty((stop - start, p), dtype=self.dtype)
            self._pread(raw, self._offset + start * p * size, start, stop)
            np.copyto(out, raw, casting="unsafe")
            return out
        col = np.empty(stop - start, dtype=self.dtype)
        for j in range(p):  # the logical rows are the file's columns
            self._pread(col, self._offset + (j * n + start) * size, start, stop)
            out[:, j] = col
        return out

    def _read_all(self) -> np.ndarray:
        stored = self.shape[::-1] if self._transposed else self.shape
        flat = np.empty(self.size, dtype=self.dtype)
        self._pread(flat, self._offset, 0, self.shape[0] if self.shape else 1)
        a = flat.reshape(stored, order="F" if self._fortran else "C")
        return np.ascontiguousarray(a.T if self._transposed else a)

    def _pread(self, out: np.ndarray, offset: int, start: int, stop: int) -> None:
        """Fill ``out`` (contiguous) with the bytes at ``offset``, or say the file shrank."""
        view = memoryview(cast(Any, out)).cast("B")  # out is C-contiguous
        done = 0
        while done < len(view):
            try:
                got = self._read_into(view[done:], offset + done)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"Reading rows {start}:{stop} of {self.path!r} failed: {exc.strerror}",
                ) from exc
            except ValueError as exc:  # closed
                raise ValueError(f"{self.path!r} was closed: {exc}") from exc
            if got == 0:
                promised = self._offset + self.nbytes
                raise InputFileError(
                    f"{self.path!r} shrank while it was being read: it ends at byte "
                    f"{offset + done}, inside rows {start}:{stop}, but its .npy header "
                    f"promises {promised} bytes ({self.dtype} array of shape "
                    f"{self.shape}). Was it truncated or rewritten during the run? Let "
                    "the writer finish (or copy the file first) and run again."
                )
            done += got

    def _read_into(self, view: memoryview, offset: int) -> int:
        fh = self._handle.fh
        if hasattr(os, "preadv"):  # Linux, macOS, BSDs: no shared file position
            return os.preadv(fh.fileno(), [view], offset)
        with self._handle.lock:  # elsewhere (Windows): seek and read under a lock
            fh.seek(offset)
            return fh.readinto(view) or 0


class _Handle:
    """The open file shared by an :class:`NpyFile` and its transposes; closed when the
    last of them is garbage-collected."""

    __slots__ = ("fh", "lock", "__weakref__")

    def __init__(self, path: str) -> None:
        self.fh = io.FileIO(path, "r")
        self.lock = threading.Lock()
        weakref.finalize(self, self.fh.close)
