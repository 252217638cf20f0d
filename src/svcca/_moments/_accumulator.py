"""The host accumulation of :class:`~svcca._moments._moments.Moments`: one pass of
shifted, unit-scaled cross-product sums over row chunks, and reading rows of memmapped
files without keeping their pages.
"""

from __future__ import annotations

import mmap
from typing import Any, NoReturn

import numpy as np
from scipy.linalg import blas

from svcca._moments._units import (
    Float32RangeError,
    Units,
    check_float32_top,
    column_means,
    raise_overflow,
    scale_for,
    top_of,
)
from svcca._validation import Precision, precision_dtype, raise_nonfinite

__all__ = ["Accumulator", "add_products", "from_upper", "raise_bad_chunk", "release_rows"]

# The class finish() builds: svcca._moments._moments imports this module (Moments.update
# runs an Accumulator), so it registers Moments here when it is imported.
moments_class: Any = None


def raise_bad_chunk(
    block: Any,
    name: str,
    precision: Precision,
    start: int | None = None,
    stop: int | None = None,
    *,
    where: str = "",
) -> NoReturn:
    """What every host chunk loop raises when :meth:`Accumulator.add` says a side's sums
    were not finite: the rows of ``block`` (rows ``start:stop`` of the data) that hold
    NaN or inf (:func:`svcca._validation.raise_nonfinite`), or, when all are finite,
    float32 values past its range once centred. ``start`` None: ``block`` is the whole
    data."""
    block = np.asarray(block)
    if precision == "float32" and np.isfinite(block).all():
        start = start or 0
        stop = start + block.shape[0] if stop is None else stop
        top = float(np.max(np.abs(block))) if block.size else 0.0
        raise Float32RangeError(
            f"{name} has values of magnitude up to {top:.3g} in rows {start}:{stop}{where}, beyond "
            "float32's range once centred. Use precision='float64', or rescale the "
            "activations."
        )
    within = None if start is None or stop is None else (start, stop)
    raise_nonfinite(block, name, first_row=start, within=within, where=where)


def _shifted(rows: Any, shift: np.ndarray, out: np.ndarray, inv: float = 1.0) -> np.ndarray:
    """``(rows - shift) * inv`` written, rounded once, into ``out`` (of the working dtype).

    Rows of another dtype than ``out`` (float64 or int rows of a float32 accumulator) are
    shifted in float64 before the cast, so the cast never rounds away the digits the
    mean would cancel; and divided by the side's power-of-two unit (``inv``) before it,
    so it never overflows or flushes to zero. Rows already of ``out``'s dtype are shifted
    in that dtype by a shift that :meth:`Accumulator.set_shift` made exactly
    representable in it. One pass unless a unit other than 1 must precede a cast.
    """
    rows = np.asarray(rows)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported by add()
        if rows.dtype == out.dtype:
            np.subtract(rows, shift.astype(out.dtype), out=out)
            if inv != 1.0:
                out *= inv
        elif inv == 1.0:
            np.subtract(rows, shift, out=out, casting="unsafe")
        else:
            wide = np.subtract(rows, shift, dtype=np.float64)
            wide *= inv
            out[...] = wide
    return out


class Accumulator(Units):
    """One pass of cross-product sums over row chunks, accumulated in place.

    Every chunk is shifted by the first chunk's mean ``c`` and its products are added
    into the running sums by BLAS (``syrk``/``gemm`` with ``beta = 1``: no temporaries,
    no per-chunk merge). :meth:`finish` removes the shift once,
    ``S = sum (x - c)(x - c)^T - n d d^T`` with ``d = mean - c`` (the "shifted data"
    algorithm). The cancellation is bounded: the first chunk's ``r`` rows sit at
    distance ``d`` from the mean and so contribute ``r d^2 <= n var`` to the variance,
    hence ``d^2 / var <= n / r`` and the relative error stays below about
    ``(n / r) eps`` even when the first chunk is an outlying cluster (1e-12 for ten
    million rows in chunks of a thousand).

    The shift ``c`` is float64 and is subtracted from the rows *before* they are cast to
    the working dtype, so with ``precision="float32"`` each centred value is rounded to
    float32 once, whatever the input's dtype (float64 activations with a mean of 1e6 keep
    their digits); each chunk's products are taken by ``ssyrk``/``sgemm`` into a float32
    scratch block and added into the float64 sums.

    Each side is summed in units of a power of two (:func:`scale_for`), decided from the
    first chunk with any spread (before any cast, in :meth:`set_shift`) and applied in
    the same pass as the shift: the sums of a layer at 1e-300 or 1e300 neither underflow
    nor overflow, and :meth:`finish` refuses sums a later, far larger chunk overflowed.
    float32 (or narrower) data whose centred values are below 2^-100 are refused
    (:class:`Float32RangeError`): their digits were lost before we saw them.
    """

    def __init__(
        self,
        p: int,
        q: int,
        precision: Precision = "float64",
        names: tuple[str, str] = ("X", "Y"),
    ) -> None:
        self.p, self.q = p, q
        self.names = names  # how messages name X and Y
        self.precision: Precision = precision
        self.dtype = precision_dtype(precision)
        self.n = 0
        self.shift_x: np.ndarray | None = None
        self.shift_y: np.ndarray | None = None
        self.sum_x = np.zeros(p)
        self.sum_y = np.zeros(q)
        self.sxx = np.zeros((p, p), order="F")
        self.syy = np.zeros((q, q), order="F")
        self.sxy = np.zeros((p, q), order="F")
        # Each side's power-of-two scale, decided by the first chunk with any spread
        # (before it every centred value was 0, so the sums are 0 in any unit).
        self.scale_x: float | None = None
        self.scale_y: float | None = None
        self._scratch: dict[str, np.ndarray] = {}

    def set_shift(self, xb: Any, yb: Any = None) -> str | None:
        """Take the float64 column means of a first chunk (any real dtype) as the shift.

        Returns ``"x"`` or ``"y"`` when that side's chunk holds NaN or inf, else None.
        """
        shift_x = column_means(xb)
        shift_y = None if yb is None else column_means(yb)
        if not np.isfinite(shift_x).all():
            return "x"
        if shift_y is not None and not np.isfinite(shift_y).all():
            return "y"
        # float32 rows of a float32 accumulator subtract a float32-representable shift
        # (one float32 pass, see _shifted); the shift recorded is that value, exactly.
        if self.dtype == np.float32:
            if getattr(xb, "dtype", None) == np.float32:
                shift_x = shift_x.astype(np.float32).astype(np.float64)
            if shift_y is not None and getattr(yb, "dtype", None) == np.float32:
                shift_y = shift_y.astype(np.float32).astype(np.float64)
        self.shift_x, self.shift_y = shift_x, shift_y
        # Rows cast to float32 after the shift: their units come first, from the chunk as
        # given (the cast would flush 1e-300 to zero), at the cost of one float64 copy of
        # one chunk. Otherwise add() decides them on the shifted chunk, with no copy.
        if self._narrowing(xb):
            self.scale_x = self._first_scale(xb, shift_x, self.names[0])
        if yb is not None and shift_y is not None and self._narrowing(yb):
            self.scale_y = self._first_scale(yb, shift_y, self.names[1])
        return None

    def _narrowing(self, rows: Any) -> bool:
        """Whether ``rows`` are cast to a narrower working dtype after the shift."""
        dtype = getattr(rows, "dtype", None)
        return self.dtype == np.float32 and (dtype is None or np.dtype(dtype).itemsize > 4)

    def _first_scale(self, rows: Any, shift: np.ndarray, name: str) -> float | None:
        rows = np.asarray(rows)
        top = 0.0
        step = max(1, (1 << 17) // max(rows.shape[1], 1))  # 1 MiB of float64 at a time
        buf = np.empty((min(step, rows.shape[0]), rows.shape[1]))
        with np.errstate(invalid="ignore", over="ignore"):
            for s in range(0, rows.shape[0], step):
                out = buf[: min(step, rows.shape[0] - s)]
                t = top_of(np.subtract(rows[s : s + step], shift, out=out))
                if not np.isfinite(t):  # NaN or inf (max() would drop a NaN)
                    top = t
                    break
                top = max(top, t)
        if not np.isfinite(top) or top == 0.0:
            return None  # NaN/inf: reported by add(); no spread yet: decided later
        if self.dtype == np.float32 and np.asarray(rows).dtype != np.float64:
            check_float32_top(top, name)  # float32 (or narrower) data at 1e-35 lost digits
        return scale_for(top, self.precision)

    def add_rows(
        self,
        xb: Any,
        yb: Any = None,
        *,
        start: int | None = None,
        stop: int | None = None,
        where: str = "",
        whole: tuple[Any, Any] | None = None,
        scratch: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The step of every host chunk loop: add rows ``start:stop`` of any real dtype,
        shifted (in float64), in each side's unit, then cast; returns them as added.

        The rows are not modified, unless ``scratch`` says they are a buffer of the
        working dtype the caller no longer needs (then they are shifted in place). NaN
        or inf, or values float32 cannot hold, raise :func:`raise_bad_chunk`'s error
        naming :attr:`names`, the rows (numbered from ``start``, or in ``whole``, the
        full ``(X, Y)`` when the caller holds them) and ``where``.
        """
        bad = None
        if self.shift_x is None:
            bad = self.set_shift(xb, yb)
        if bad is None:
            xw, yw = self.shifted(xb, yb, scratch=scratch)
            bad = self.add(xw, yw)
        if bad is not None:
            side = 0 if bad == "x" else 1
            if whole is not None:
                raise_bad_chunk(whole[side], self.names[side], self.precision, where=where)
            block = xb if side == 0 else yb
            raise_bad_chunk(block, self.names[side], self.precision, start, stop, where=where)
        return xw, yw

    def shifted(
        self, xb: Any, yb: Any = None, *, scratch: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows as :meth:`add` takes them: shifted (in float64), in each side's unit,
        cast to :attr:`dtype`, in buffers reused from chunk to chunk (``xb`` itself when
        ``scratch`` says it is a buffer of that dtype the caller no longer needs). The
        shift must be set (:meth:`set_shift`)."""

        def work(a: Any, key: str) -> np.ndarray:
            if scratch and isinstance(a, np.ndarray) and a.dtype == self.dtype:
                return a
            return self._work(key, a.shape)

        xw = _shifted(xb, self.shift_x, work(xb, "xw"), self.inv_x)  # type: ignore[arg-type]
        yw = None
        if yb is not None:
            yw = _shifted(yb, self.shift_y, work(yb, "yw"), self.inv_y)  # type: ignore[arg-type]
        return xw, yw

    def _work(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        buf = self._scratch.get(key)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != shape[1:]:
            buf = self._scratch[key] = np.empty(shape, dtype=self.dtype)
        return buf[: shape[0]]

    def add(self, xb: np.ndarray, yb: np.ndarray | None = None) -> str | None:
        """Add a C-contiguous chunk of :attr:`dtype` already shifted by :attr:`shift_x`
        (and :attr:`shift_y`): :meth:`shifted`, as :meth:`add_rows` does.

        The chunk is already divided by each side's power-of-two unit (:func:`scale_for`,
        decided by :meth:`set_shift` from the first chunk); while a side's unit is
        undecided (every value so far equal to the shift) this chunk decides it and is
        divided here, in place (exact).

        Returns ``"x"`` or ``"y"`` when that side's chunk holds NaN or inf (nothing is
        added then), else None; raises :class:`Float32RangeError` for float32 chunks
        whose values the float32 products cannot hold.
        """
        if self.scale_x is None:
            self.scale_x = self._scale(xb, self.names[0])
        if yb is not None and self.scale_y is None:
            self.scale_y = self._scale(yb, self.names[1])
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported below
            sx = self._column_sums(xb)
            sy = None if yb is None else self._column_sums(yb)
        if not np.isfinite(sx).all():
            return "x"
        if sy is not None and not np.isfinite(sy).all():
            return "y"
        if yb is not None:
            assert sy is not None
            self.sum_y += sy
            self.syy = self._syrk(yb, self.syy, "yy")
            self.sxy = self._gemm(xb, yb, self.sxy)
        self.sum_x += sx
        self.sxx = self._syrk(xb, self.sxx, "xx")
        self.n += xb.shape[0]
        return None

    def _scale(self, a: np.ndarray, name: str) -> float | None:
        """Decide an undecided side's unit from a shifted chunk ``a``; divide ``a`` by it."""
        top = top_of(a)
        if not np.isfinite(top) or top == 0:
            return None  # NaN/inf: reported by add(); still no spread: decided later
        if self.dtype == np.float32:
            check_float32_top(top, name)
        scale = scale_for(top, self.precision)
        if scale != 1.0:
            a *= 1.0 / scale
        return scale

    def _column_sums(self, a: np.ndarray) -> np.ndarray:
        """``a^T 1`` by BLAS ``gemv`` (one fast pass; float32 chunks sum in float32, like
        their products), as float64.

        The same (SciPy's) BLAS as the products: alternating with NumPy's own OpenBLAS,
        whose worker threads spin after each call, made every product 2x slower.
        """
        ones = self._scratch.get("ones")
        if ones is None or ones.shape[0] < a.shape[0]:
            ones = self._scratch["ones"] = np.ones(a.shape[0], dtype=self.dtype)
        gemv = blas.dgemv if self.dtype == np.float64 else blas.sgemv
        return np.asarray(gemv(1.0, a.T, ones[: a.shape[0]]), dtype=np.float64)

    def _syrk(self, a: np.ndarray, S: np.ndarray, key: str) -> np.ndarray:
        """``S += upper(a^T a)`` (the lower triangle of ``S`` is filled by :meth:`finish`)."""
        return add_products(S, a, a, self._scratch, upper=True, key=key)

    def _gemm(self, a: np.ndarray, b: np.ndarray, S: np.ndarray) -> np.ndarray:
        """``S += a^T b``."""
        return add_products(S, a, b, self._scratch, key="xy")

    def finish(self) -> Any:
        """The :class:`Moments` of everything added (takes over this object's arrays)."""
        Moments = moments_class
        assert Moments is not None  # registered when svcca._moments._moments is imported
        if self.n == 0 or self.shift_x is None:
            return Moments.empty(self.p, self.q, precision=self.precision)
        for name, S in (("X", self.sxx), ("Y", self.syy), ("X and Y", self.sxy)):
            if not np.isfinite(S).all():
                raise_overflow(name, self.precision)
        sx, sy = self.scale_x or 1.0, self.scale_y or 1.0
        n = float(self.n)
        dx = self.sum_x / n  # in the sums' units
        mean_x = self.shift_x.astype(np.float64) + dx * sx
        # In-place rank-1 corrections (BLAS ger): no p x p temporaries.
        sxx = blas.dger(-n, dx, dx, a=from_upper(self.sxx), overwrite_a=1)
        if self.q == 0 or self.shift_y is None:
            return Moments(
                self.n,
                mean_x,
                np.zeros(0),
                sxx,
                self.syy,
                self.sxy,
                precision=self.precision,
                scale_x=sx,
            )
        dy = self.sum_y / n
        return Moments(
            self.n,
            mean_x,
            self.shift_y.astype(np.float64) + dy * sy,
            sxx,
            blas.dger(-n, dy, dy, a=from_upper(self.syy), overwrite_a=1),
            blas.dger(-n, dx, dy, a=self.sxy, overwrite_a=1),
            precision=self.precision,
            scale_x=sx,
            scale_y=sy,
        )


def add_products(
    S: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    scratch: dict[str, np.ndarray],
    *,
    upper: bool = False,
    key: str = "products",
) -> np.ndarray:
    """``S += a^T b`` by BLAS into the float64 (Fortran-ordered) sums ``S``; returns ``S``.

    ``upper``: ``b`` is ``a`` and only the upper triangle is added (``syrk``, half the
    work; :func:`from_upper` fills the lower one at the end). float64 chunks are added
    in place (``beta = 1``); float32 chunks (at most ``FLOAT32_CHUNK_ROWS`` rows: the
    caller's chunks) are multiplied in float32 into a scratch block kept in ``scratch``
    under ``key`` and added into the float64 sums (non-finite sums are the caller's to
    report).
    """
    if a.dtype == np.float64:
        if upper:
            return blas.dsyrk(1.0, a.T, beta=1.0, c=S, overwrite_c=1)
        return blas.dgemm(1.0, a.T, b.T, beta=1.0, c=S, trans_b=1, overwrite_c=1)
    c = scratch.get(key)
    if c is None or c.shape != S.shape:  # zeros: ssyrk never writes the lower triangle
        c = scratch[key] = np.zeros(S.shape, dtype=np.float32, order="F")
    if upper:
        c = blas.ssyrk(1.0, a.T, beta=0.0, c=c, overwrite_c=1)
    else:
        c = blas.sgemm(1.0, a.T, b.T, beta=0.0, c=c, trans_b=1, overwrite_c=1)
    with np.errstate(over="ignore", invalid="ignore"):  # reported by the caller
        S += c
    return S


def from_upper(S: np.ndarray, block: int = 256) -> np.ndarray:
    """Fill the lower triangle of ``S`` from the upper one that ``syrk`` wrote, in place."""
    p = S.shape[0]
    for j in range(0, p, block):
        S[j + block :, j : j + block] = S[j : j + block, j + block :].T
        d = S[j : j + block, j : j + block]
        d[...] = np.triu(d) + np.triu(d, 1).T
    return S


# ---------------------------------------------------------------------- memmapped files
_PAGE = mmap.PAGESIZE
try:  # NumPy >= 2
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # pragma: no cover - NumPy 1.x
    _byte_bounds = np.byte_bounds  # type: ignore[attr-defined]  # noqa: NPY201


def _read_only_mmap(A: Any) -> mmap.mmap | None:
    """The ``mmap.mmap`` behind ``A`` when ``A`` views a read-only ``np.memmap``, else None.

    ``np.asarray(memmap)`` and slices keep the memmap in their ``.base`` chain. Only mode
    ``"r"`` qualifies: dropping pages of a copy-on-write (``"c"``) mapping would discard
    the caller's in-memory edits.
    """
    obj = A
    for _ in range(64):  # base chains are short; never loop forever on odd objects
        if obj is None:
            return None
        if isinstance(obj, np.memmap):
            mm = getattr(obj, "_mmap", None)
            if getattr(obj, "mode", None) == "r" and isinstance(mm, mmap.mmap):
                return mm
            return None
        obj = getattr(obj, "base", None)
    return None


def release_rows(A: Any, start: int, stop: int) -> None:
    """Drop the resident file pages behind rows ``start:stop`` of a read-only memmap.

    ``madvise(MADV_DONTNEED)`` on a read-only file mapping unmaps the pages from this
    process (they stay in the OS page cache, so re-reading is cheap and the data are
    unchanged). A no-op for anything that is not a read-only memmap, and on platforms
    without ``madvise``.
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or stop <= start:
        return
    mm = _read_only_mmap(A)
    if mm is None:
        return
    try:
        rows = np.asarray(A[start:stop])
        lo, hi = _byte_bounds(rows)
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        first = ((lo - base) // _PAGE) * _PAGE
        last = min(hi - base, len(mm))
        if 0 <= first < last:
            mm.madvise(advice, first, last - first)
    except (OSError, ValueError, AttributeError, BufferError):  # best effort only
        return
