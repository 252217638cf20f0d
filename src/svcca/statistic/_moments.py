"""The mergeable sufficient statistic under every linear measure.

CCA, SVCCA, PWCCA, PLS, PCA (and linear CKA, Procrustes, regression) depend on two
representations only through the sample count, the means and the centred
cross-product blocks of ``[X Y]``. :class:`Moments` holds exactly those, accumulated in
float64, and merges exactly (the pairwise update of Chan, Golub and LeVeque), so the
same object is built from whole arrays, from batches, or from pieces computed
elsewhere and merged.
"""

from __future__ import annotations

import itertools
import mmap
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from scipy.linalg import blas

from svcca._threads import products
from svcca._validation import (
    Precision,
    as_representation,
    check_chunk_size,
    check_precision,
    precision_dtype,
    precision_eps,
    raise_nonfinite,
    tensor_representation,
)

__all__ = ["Moments"]

# Rows per chunk are chosen so that one float64 chunk of [X Y] is about this many bytes:
# large enough for an efficient GEMM, small enough to keep memory O(p^2 + chunk).
_CHUNK_BYTES = 32 * 2**20
# float32 products of one chunk are dot products of up to this many terms; their
# round-off grows with the length (about sqrt(rows) eps_32 typically, rows eps_32 at
# worst), so chunks stay short and the sums across chunks are float64.
FLOAT32_CHUNK_ROWS = 4096


def _chunk_rows(
    width: int, chunk_size: int | None, precision: Precision = "float64", n: int | None = None
) -> int:
    """Rows per chunk: ``chunk_size`` (checked: an int >= 1) or one chosen from the width;
    at most ``n`` (the rows there are, when known: a chunk buffer may be allocated)."""
    chunk_size = check_chunk_size(chunk_size)
    if precision == "float32":
        if chunk_size is not None:
            rows = min(chunk_size, FLOAT32_CHUNK_ROWS)
        else:
            rows = max(256, min(FLOAT32_CHUNK_ROWS, _CHUNK_BYTES // (4 * max(width, 1))))
    elif chunk_size is not None:
        rows = chunk_size
    else:
        rows = max(256, _CHUNK_BYTES // (8 * max(width, 1)))
    return rows if n is None else max(1, min(rows, n))


class Moments:
    """Count, means and centred cross-products of one or two representations.

    For ``X`` of shape ``(n, p)`` and ``Y`` of shape ``(n, q)`` with column means
    :math:`\\bar x, \\bar y`, the statistic is

    .. math::

        S_{xx} = \\sum_i (x_i - \\bar x)(x_i - \\bar x)^T,\\quad
        S_{yy} = \\sum_i (y_i - \\bar y)(y_i - \\bar y)^T,\\quad
        S_{xy} = \\sum_i (x_i - \\bar x)(y_i - \\bar y)^T,

    sums, not averages (divide by ``n - 1`` for covariances: :attr:`cov_xx`). ``Y`` may
    be absent (``q = 0``) for single-representation measures such as PCA.

    Build it with :meth:`from_arrays`, :meth:`from_batches`, or :meth:`empty` followed
    by :meth:`update`; combine partial results with :meth:`merge`. Every measure in the
    library accepts a ``Moments`` in place of the two arrays.

    Parameters
    ----------
    n : int
        Number of samples seen.
    mean_x, mean_y : ndarray, shapes (p,), (q,)
        Column means.
    sxx, syy, sxy : ndarray, shapes (p, p), (q, q), (p, q)
        Centred cross-product sums.
    precision : {"float64", "float32"}, default "float64"
        How the cross-products were taken (see Notes); the measures read it to size their
        round-off tolerances (:attr:`eps`).
    device : str, optional
        Where the sums were accumulated (``"cuda:0"``), None on the host. The measures
        run their small dense steps there too unless ``svcca.on_device`` says otherwise
        (``svcca._device``); the arrays themselves are always NumPy, on the host. Not
        saved by :meth:`save`.

    Notes
    -----
    With ``precision="float32"`` each chunk of at most 4096 rows is shifted (in float32)
    by the first chunk's mean, its products are taken by float32 BLAS (``ssyrk`` /
    ``sgemm``: twice the float64 rate) and added into float64 sums; the means and the
    final correction are float64. The entries then carry an error of about 1e-7 of
    their scale (measured; Higham's bound for 4096-term float32 dot products is
    ``4096 eps_32 / 2 ~ 2.4e-4``) instead of ``1e-16``. Linear CKA and PLS scores move
    by about 1e-8; a canonical correlation moves by up to the entry error times the
    condition number of the whitened blocks, so do not use float32 for CCA, SVCCA or PWCCA of
    layers whose correlation matrix is ill-conditioned (condition number above ~1e4;
    the measures warn when it exceeds 1e5), nor when inputs are float64 data that need
    more than 7 significant digits.

    Two partial statistics ``a`` and ``b`` merge exactly with
    ``S = S_a + S_b + (n_a n_b / n) d d^T`` where ``d`` is the difference of their means
    (Chan, Golub & LeVeque 1979). Each batch is centred on its own mean before its
    cross-products are taken, so there is no cancellation from large means.

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise
       algorithm for computing sample variances", Stanford CS report 79-773, 1979.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((1000, 5)), rng.standard_normal((1000, 3))
    >>> m = svcca.Moments.empty(5, 3)
    >>> for s in range(0, 1000, 250):
    ...     _ = m.update(X[s:s + 250], Y[s:s + 250])
    >>> bool(np.allclose(m.sxy, svcca.Moments.from_arrays(X, Y).sxy))
    True
    """

    __slots__ = ("n", "mean_x", "mean_y", "sxx", "syy", "sxy", "precision", "device")

    def __init__(
        self,
        n: int,
        mean_x: np.ndarray,
        mean_y: np.ndarray,
        sxx: np.ndarray,
        syy: np.ndarray,
        sxy: np.ndarray,
        *,
        precision: Precision = "float64",
        device: str | None = None,
    ) -> None:
        self.precision: Precision = check_precision(precision)
        self.device = None if device is None else str(device)
        self.n = int(n)
        self.mean_x = np.asarray(mean_x, dtype=np.float64)
        self.mean_y = np.asarray(mean_y, dtype=np.float64)
        self.sxx = np.asarray(sxx, dtype=np.float64)
        self.syy = np.asarray(syy, dtype=np.float64)
        self.sxy = np.asarray(sxy, dtype=np.float64)
        p, q = self.mean_x.shape[0], self.mean_y.shape[0]
        expected = {"sxx": (p, p), "syy": (q, q), "sxy": (p, q)}
        for key, shape in expected.items():
            got = getattr(self, key).shape
            if got != shape:
                raise ValueError(
                    f"Moments.{key} must have shape {shape} to match means of length {p} and "
                    f"{q}; got {got}."
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, p: int, q: int = 0, *, precision: Precision = "float64") -> Moments:
        """An empty statistic for ``p`` features of X and ``q`` of Y (``q = 0``: no Y)."""
        for name, v in (("p", p), ("q", q)):
            if not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"{name} must be a non-negative int; got {v!r}.")
        if p == 0:
            raise ValueError("p must be at least 1: X needs at least one feature.")
        return cls(
            0,
            np.zeros(p),
            np.zeros(q),
            np.zeros((p, p)),
            np.zeros((q, q)),
            np.zeros((p, q)),
            precision=precision,
        )

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        Y: Any = None,
        *,
        chunk_size: int | None = None,
        precision: Precision = "float64",
    ) -> Moments:
        """Accumulate the statistic of ``X`` (and ``Y``) in one pass over row chunks.

        Parameters
        ----------
        X : array_like, shape (n, p)
        Y : array_like, shape (n, q), optional
        chunk_size : int, optional
            Rows per chunk. The default keeps each float64 chunk near 32 MiB, so memory
            stays at the inputs plus ``O((p + q)^2)`` plus one chunk, and ``np.memmap``
            inputs are read straight through.
        precision : {"float64", "float32"}, default "float64"
            ``"float32"``: float32 products of chunks of at most 4096 rows, float64 sums
            (about twice as fast; entries accurate to about 1e-7 of their scale, see Notes of
            :class:`Moments`).

        Torch tensors on a GPU (any inside ``svcca.on_device(d)``) are summed on their
        device, as by :meth:`from_batches`, in chunks of at most ``chunk_size`` rows
        planned from its free memory; CPU tensors take the host path.
        """
        from svcca._device import data_device

        arrays = [X] if Y is None else [X, Y]
        where = data_device(arrays, ["X", "Y"][: len(arrays)])
        if where is not None:
            assert tensor_pair is not None  # registered when svcca.statistic is imported
            X = tensor_representation(X, "X")
            Y = None if Y is None else tensor_representation(Y, "Y")
            if Y is not None and Y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"X has {X.shape[0]} rows and Y has {Y.shape[0]}; both must hold the same "
                    "datapoints, one row each."
                )
            return tensor_pair(X, Y, where, chunk_size, precision)
        X = as_representation(X, "X")
        q = 0
        if Y is not None:
            Y = as_representation(Y, "Y")
            q = Y.shape[1]
        return cls.empty(X.shape[1], q, precision=precision).update(X, Y, chunk_size=chunk_size)

    @classmethod
    def from_batches(cls, batches: Iterable[Any], *, precision: Precision = "float64") -> Moments:
        """Accumulate from an iterable of ``X`` batches or ``(X, Y)`` pairs.

        Batches of GPU tensors are summed on their device and never reach the host (the
        result records the device in :attr:`device`); CPU tensors take the host path;
        ``svcca.on_device`` overrides both, as for every input.
        """
        m: Moments | None = None
        it = iter(batches)
        first = next(it, None)
        if first is not None and _tensor_batch(first, 0):
            assert tensor_batches is not None  # registered when svcca.statistic is imported
            return tensor_batches(itertools.chain([first], it), precision)
        for i, batch in enumerate(itertools.chain([] if first is None else [first], it)):
            if i and _tensor_batch(batch, i):
                raise TypeError(
                    f"Batch {i} holds torch tensors whose work runs on a device, but batch 0 "
                    "did not (it took the host path); tensors are not copied to the host "
                    "silently. Give every batch as tensors on one device, or every batch as "
                    "arrays (or accumulate on the host: with svcca.on_device(None): ...)."
                )
            xb, yb = _split(batch)
            xb = as_representation(xb, f"X of batch {i}")
            yb = None if yb is None else as_representation(yb, f"Y of batch {i}")
            if m is None:
                m = cls.empty(xb.shape[1], 0 if yb is None else yb.shape[1], precision=precision)
            m.update(xb, yb, _batch_label=f" (batch {i})")
        if m is None:
            raise ValueError("from_batches received no batches; give it at least one.")
        return m

    # ------------------------------------------------------------------ accumulation
    @property
    def p(self) -> int:
        """Number of features of X."""
        return int(self.mean_x.shape[0])

    @property
    def q(self) -> int:
        """Number of features of Y (0 when there is no Y)."""
        return int(self.mean_y.shape[0])

    @property
    def eps(self) -> float:
        """Unit round-off of the products behind the sums (2^-52, or 2^-23 for float32)."""
        return precision_eps(self.precision)

    @property
    def has_y(self) -> bool:
        """Whether a second representation was accumulated."""
        return self.q > 0

    def update(
        self,
        X: Any,
        Y: Any = None,
        *,
        chunk_size: int | None = None,
        _batch_label: str = "",
    ) -> Moments:
        """Add a batch of samples in place and return ``self``.

        ``X`` must have ``p`` columns and, when the statistic has a Y side, ``Y`` must be
        given with ``q`` columns and the same number of rows.
        """
        X = as_representation(X, "X" + _batch_label)
        if X.shape[1] != self.p:
            raise ValueError(
                f"X{_batch_label} has {X.shape[1]} features but these Moments were built for "
                f"{self.p}; every batch of a representation must have the same width."
            )
        if self.has_y:
            if Y is None:
                raise ValueError(
                    f"These Moments track a Y representation ({self.q} features); pass the "
                    f"matching Y batch to update(X, Y){_batch_label}."
                )
            Y = as_representation(Y, "Y" + _batch_label)
            if Y.shape[1] != self.q:
                raise ValueError(
                    f"Y{_batch_label} has {Y.shape[1]} features but these Moments were built "
                    f"for {self.q}; every batch of a representation must have the same width."
                )
            if Y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"X{_batch_label} has {X.shape[0]} rows and Y has {Y.shape[0]}; a batch "
                    "must hold the same samples on both sides."
                )
        elif Y is not None:
            raise ValueError(
                "These Moments were built without a Y representation (q=0), but update() "
                "received a Y batch. Build them with Moments.empty(p, q) to track both."
            )
        rows = _chunk_rows(self.p + self.q, chunk_size, self.precision, X.shape[0])
        acc = Accumulator(self.p, self.q, self.precision)
        # One buffer per side, reused by every chunk: fresh large arrays would cost a
        # page fault per 4 KiB on every chunk.
        xbuf = np.empty((rows, self.p), dtype=acc.dtype)
        ybuf = np.empty((rows, self.q), dtype=acc.dtype) if self.has_y else None
        with products(rows * (self.p + self.q) ** 2 / 2):
            for start in range(0, X.shape[0], rows):
                stop = min(start + rows, X.shape[0])
                bad = None
                if acc.shift_x is None:  # the first chunk's float64 means
                    bad = acc.set_shift(X[start:stop], None if Y is None else Y[start:stop])
                if bad is None:
                    # Shift (in float64) and cast in one pass, then the products.
                    xb = _read_rows(X, start, stop, xbuf, acc.shift_x)  # type: ignore[arg-type]
                    yb = None
                    if ybuf is not None:
                        yb = _read_rows(Y, start, stop, ybuf, acc.shift_y)  # type: ignore[arg-type]
                    try:
                        bad = acc.add(xb, yb)
                    except Float32RangeError as exc:
                        raise Float32RangeError(
                            str(exc).replace("X has", f"X{_batch_label} has", 1)
                        ) from None
                if bad is not None:
                    side = np.asarray(X if bad == "x" else Y)
                    _raise_bad(side, bad.upper() + _batch_label, self.precision)
        batch = acc.finish()
        if self.n == 0:  # adopt the fresh arrays instead of copying them
            self.n, self.mean_x, self.mean_y = batch.n, batch.mean_x, batch.mean_y
            self.sxx, self.syy, self.sxy = batch.sxx, batch.syy, batch.sxy
        else:
            self.merge_in_place(batch)
        return self

    def merge(self, other: Moments) -> Moments:
        """Return the statistic of the union of both sample sets (neither is changed)."""
        if not isinstance(other, Moments):
            raise TypeError(f"merge expects a Moments object; got {type(other).__name__}.")
        if (other.p, other.q) != (self.p, self.q):
            raise ValueError(
                f"Cannot merge Moments of widths (p={self.p}, q={self.q}) and "
                f"(p={other.p}, q={other.q}): they must describe the same representations."
            )
        return self.copy().merge_in_place(other)

    def copy(self) -> Moments:
        """A deep copy."""
        return Moments(
            self.n,
            self.mean_x.copy(),
            self.mean_y.copy(),
            self.sxx.copy(),
            self.syy.copy(),
            self.sxy.copy(),
            precision=self.precision,
            device=self.device,
        )

    def merge_in_place(self, other: Moments) -> Moments:
        """Add ``other``'s samples to this statistic in place (Chan et al.); returns ``self``.

        ``other`` is left unchanged. Both must have the same widths (unchecked here, for
        the hot loops that build a statistic chunk by chunk; :meth:`merge` checks). The
        result's :attr:`precision` is the lower of the two.
        """
        if other.precision == "float32":
            self.precision = "float32"
        if self.device is None:
            self.device = other.device
        if other.n == 0:
            return self
        if self.n == 0:
            self.n = other.n
            self.mean_x = other.mean_x.copy()
            self.sxx = other.sxx.copy()
            if self.has_y:
                self.mean_y = other.mean_y.copy()
                self.syy = other.syy.copy()
                self.sxy = other.sxy.copy()
            return self
        n = self.n + other.n
        f = self.n * other.n / n
        dx = other.mean_x - self.mean_x
        self.sxx += other.sxx
        self.sxx += f * np.outer(dx, dx)
        self.mean_x += dx * (other.n / n)
        if self.has_y:
            dy = other.mean_y - self.mean_y
            self.syy += other.syy
            self.syy += f * np.outer(dy, dy)
            self.sxy += other.sxy
            self.sxy += f * np.outer(dx, dy)
            self.mean_y += dy * (other.n / n)
        self.n = n
        return self

    # ------------------------------------------------------------------ views
    def swap(self) -> Moments:
        """The statistic with the roles of X and Y exchanged (shares no memory)."""
        if not self.has_y:
            raise ValueError("swap() needs Moments with a Y representation.")
        return Moments(
            self.n,
            self.mean_y.copy(),
            self.mean_x.copy(),
            self.syy.copy(),
            self.sxx.copy(),
            self.sxy.T.copy(),
            precision=self.precision,
            device=self.device,
        )

    def _ddof1(self) -> float:
        if self.n < 2:
            raise ValueError(f"Covariances need at least 2 samples; these Moments hold {self.n}.")
        return 1.0 / (self.n - 1)

    @property
    def cov_xx(self) -> np.ndarray:
        """Sample covariance of X, ``S_xx / (n - 1)``."""
        return self.sxx * self._ddof1()

    @property
    def cov_yy(self) -> np.ndarray:
        """Sample covariance of Y, ``S_yy / (n - 1)``."""
        return self.syy * self._ddof1()

    @property
    def cov_xy(self) -> np.ndarray:
        """Sample cross-covariance, ``S_xy / (n - 1)``."""
        return self.sxy * self._ddof1()

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to an ``.npz`` file (no pickles), atomically: a temporary name, then rename."""
        path = os.fspath(path)
        tmp = path + ".tmp.npz"
        try:
            np.savez(
                tmp,
                n=np.int64(self.n),
                mean_x=self.mean_x,
                mean_y=self.mean_y,
                sxx=self.sxx,
                syy=self.syy,
                sxy=self.sxy,
                precision=np.str_(self.precision),
            )
            os.replace(tmp, path)
        except BaseException:
            # An interrupted save leaves neither a half-written file nor the temporary.
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Moments:
        """Read a file written by :meth:`save` (``allow_pickle=False``)."""
        keys = ("n", "mean_x", "mean_y", "sxx", "syy", "sxy")
        try:
            with np.load(os.fspath(path), allow_pickle=False) as data:
                missing = [k for k in keys if k not in data.files]
                if missing:
                    raise ValueError(
                        f"{os.fspath(path)!r} is not a saved Moments file: it lacks {missing}."
                    )
                precision = str(data["precision"]) if "precision" in data.files else "float64"
                return cls(*(data[k] for k in keys), precision=precision)  # type: ignore[arg-type]
        except (OSError, EOFError, ValueError) as exc:
            raise ValueError(f"Could not read Moments from {os.fspath(path)!r}: {exc}") from exc

    def __repr__(self) -> str:
        tail = "" if self.precision == "float64" else f", precision={self.precision!r}"
        tail += "" if self.device is None else f", device={self.device!r}"
        return f"Moments(n={self.n}, p={self.p}, q={self.q}{tail})"


# Tensor batches are summed on their device by svcca.statistic._torch_moments. That
# module builds Moments (it imports this one), so it cannot be imported from here: it
# registers its functions below when it is imported, and svcca.statistic imports it.
tensor_batches: Callable[[Iterable[Any], Precision], Moments] | None = None
tensor_pair: Callable[[Any, Any, Any, int | None, Precision], Moments] | None = None


def _split(batch: Any) -> tuple[Any, Any]:
    """A batch as ``(x, y)`` (``y`` None for X alone)."""
    if isinstance(batch, tuple) and len(batch) == 2:
        return batch
    return batch, None


def _tensor_batch(batch: Any, i: int) -> bool:
    """Whether batch ``i`` is torch tensors to be summed on their device: GPU tensors,
    or any inside ``svcca.on_device(d)`` (CPU tensors otherwise take the host path). A
    NumPy array beside such tensors is refused (:func:`svcca._device.data_device`)."""
    from svcca._device import data_device

    xb, yb = _split(batch)
    arrays = [xb] if yb is None else [xb, yb]
    return data_device(arrays, [f"X of batch {i}", f"Y of batch {i}"][: len(arrays)]) is not None


def _raise_bad(side: np.ndarray, name: str, precision: Precision) -> None:
    """A chunk's sums were not finite: NaN/inf in the data, or values past float32."""
    if precision == "float32" and np.isfinite(side).all():
        raise Float32RangeError(
            f"{name} has values of magnitude up to {float(np.max(np.abs(side))):.3g}, "
            "beyond float32's range once centred. Use precision='float64', or rescale the "
            "activations."
        )
    raise_nonfinite(side, name)


def _shifted(rows: Any, shift: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``rows - shift`` written, rounded once, into ``out`` (of the working dtype): one pass.

    Rows of another dtype than ``out`` (float64 or int rows of a float32 accumulator) are
    shifted in float64 before the cast, so the cast never rounds away the digits the
    mean would cancel. Rows already of ``out``'s dtype are shifted in that dtype by a
    shift that :meth:`Accumulator.set_shift` made exactly representable in it.
    """
    rows = np.asarray(rows)
    if rows.dtype == out.dtype:
        shift = shift.astype(out.dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported by add()
        np.subtract(rows, shift, out=out, casting="unsafe")
    return out


class Float32RangeError(ValueError):
    """float32 products cannot hold the centred values (beyond ~1e18 or below ~1e-18)."""


# Centred values beyond 2^60 (1.2e18) square past float32's range (3.4e38) once summed
# over a chunk; below 2^-60 their products (< 7.5e-37) are subnormal or zero.
_F32_HIGH, _F32_LOW = 2.0**60, 2.0**-60


def _check_float32_range(a: np.ndarray, name: str) -> None:
    check_float32_top(max(float(a.max()), -float(a.min())) if a.size else 0.0, name)


def check_float32_top(top: float, name: str) -> None:
    """Refuse a chunk whose largest centred magnitude ``top`` float32 products cannot hold."""
    if top > _F32_HIGH or 0.0 < top < _F32_LOW:
        raise Float32RangeError(
            f"{name} has values of magnitude {top:.3g} about its mean: float32 products "
            f"{'overflow' if top > _F32_HIGH else 'lose their digits (subnormal)'} at "
            "that scale. Use precision='float64', or rescale the activations."
        )


def _read_rows(
    A: np.ndarray, start: int, stop: int, buffer: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Rows ``start:stop`` of ``A`` minus ``shift``, written into the front of ``buffer``.

    Subtracting the (float64) shift and converting to the buffer's dtype is one pass.
    When ``A`` is a read-only ``np.memmap`` (or a view of one), the file pages behind the
    rows just read are handed back to the kernel, so reading a file straight through
    keeps resident memory at one chunk instead of growing to the file's size.
    """
    out = _shifted(A[start:stop], shift, buffer[: stop - start])
    release_rows(A, start, stop)
    return out


class Accumulator:
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
    scratch block and added into the float64 sums. float32 products cannot hold values
    beyond about 1e18 or below 1e-18 after centring: such a chunk is refused
    (:class:`Float32RangeError`) rather than overflowed or flushed to zero.
    """

    def __init__(self, p: int, q: int, precision: Precision = "float64") -> None:
        self.p, self.q = p, q
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
        self._scratch: dict[str, np.ndarray] = {}

    def set_shift(self, xb: Any, yb: Any = None) -> str | None:
        """Take the float64 column means of a first chunk (any real dtype) as the shift.

        Returns ``"x"`` or ``"y"`` when that side's chunk holds NaN or inf, else None.
        """
        with np.errstate(invalid="ignore", over="ignore"):
            shift_x = np.asarray(np.mean(xb, axis=0, dtype=np.float64))
            shift_y = None if yb is None else np.asarray(np.mean(yb, axis=0, dtype=np.float64))
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
        return None

    def add_raw(self, xb: Any, yb: Any = None, *, scratch: bool = False) -> str | None:
        """Add a chunk of rows of any real dtype: shifted (in float64), then cast.

        The rows are not modified, unless ``scratch`` says they are a buffer of the
        working dtype the caller no longer needs (then they are shifted in place).
        """
        if self.shift_x is None:
            bad = self.set_shift(xb, yb)
            if bad is not None:
                return bad

        def work(a: Any, key: str) -> np.ndarray:
            if scratch and isinstance(a, np.ndarray) and a.dtype == self.dtype:
                return a
            return self._work(key, a.shape)

        xw = _shifted(xb, self.shift_x, work(xb, "xw"))  # type: ignore[arg-type]
        yw = None
        if yb is not None:
            yw = _shifted(yb, self.shift_y, work(yb, "yw"))  # type: ignore[arg-type]
        return self.add(xw, yw)

    def _work(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        buf = self._scratch.get(key)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != shape[1:]:
            buf = self._scratch[key] = np.empty(shape, dtype=self.dtype)
        return buf[: shape[0]]

    def add(self, xb: np.ndarray, yb: np.ndarray | None = None) -> str | None:
        """Add a C-contiguous chunk of :attr:`dtype` already shifted by :attr:`shift_x`
        (and :attr:`shift_y`): :func:`_read_rows` with the shift, or :meth:`add_raw`.

        Returns ``"x"`` or ``"y"`` when that side's chunk holds NaN or inf (nothing is
        added then), else None; raises :class:`Float32RangeError` for float32 chunks
        whose values the float32 products cannot hold.
        """
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported below
            sx = self._column_sums(xb)
            sy = None if yb is None else self._column_sums(yb)
        if not np.isfinite(sx).all():
            return "x"
        if sy is not None and not np.isfinite(sy).all():
            return "y"
        if self.dtype == np.float32 and self.n == 0:
            # The first chunk sets the scale; later overflow shows as non-finite sums
            # (finish checks them), and later tiny chunks weigh nothing beside it.
            _check_float32_range(xb, "X")
            if yb is not None:
                _check_float32_range(yb, "Y")
        if yb is not None:
            assert sy is not None
            self.sum_y += sy
            self.syy = self._syrk(yb, self.syy, "yy")
            self.sxy = self._gemm(xb, yb, self.sxy)
        self.sum_x += sx
        self.sxx = self._syrk(xb, self.sxx, "xx")
        self.n += xb.shape[0]
        return None

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
        if self.dtype == np.float64:
            return blas.dsyrk(1.0, a.T, beta=1.0, c=S, overwrite_c=1)
        c = self._scratch.get(key)
        if c is None:  # zeros: ssyrk never writes the lower triangle
            c = self._scratch[key] = np.zeros(S.shape, dtype=np.float32, order="F")
        c = blas.ssyrk(1.0, a.T, beta=0.0, c=c, overwrite_c=1)
        S += c
        return S

    def _gemm(self, a: np.ndarray, b: np.ndarray, S: np.ndarray) -> np.ndarray:
        """``S += a^T b``."""
        if self.dtype == np.float64:
            return blas.dgemm(1.0, a.T, b.T, beta=1.0, c=S, trans_b=1, overwrite_c=1)
        c = self._scratch.get("xy")
        if c is None:
            c = self._scratch["xy"] = np.zeros(S.shape, dtype=np.float32, order="F")
        c = blas.sgemm(1.0, a.T, b.T, beta=0.0, c=c, trans_b=1, overwrite_c=1)
        S += c
        return S

    def finish(self) -> Moments:
        """The :class:`Moments` of everything added (takes over this object's arrays)."""
        if self.n == 0 or self.shift_x is None:
            return Moments.empty(self.p, self.q, precision=self.precision)
        if self.dtype == np.float32:
            for name, S in (("X", self.sxx), ("Y", self.syy), ("X and Y", self.sxy)):
                if not np.isfinite(S).all():
                    raise Float32RangeError(
                        f"The float32 cross-products of {name} overflowed (values beyond "
                        "about 1e18 about their mean). Use precision='float64', or rescale "
                        "the activations."
                    )
        n = float(self.n)
        dx = self.sum_x / n
        mean_x = self.shift_x.astype(np.float64) + dx
        # In-place rank-1 corrections (BLAS ger): no p x p temporaries.
        sxx = blas.dger(-n, dx, dx, a=_from_upper(self.sxx), overwrite_a=1)
        if self.q == 0 or self.shift_y is None:
            return Moments(
                self.n, mean_x, np.zeros(0), sxx, self.syy, self.sxy, precision=self.precision
            )
        dy = self.sum_y / n
        return Moments(
            self.n,
            mean_x,
            self.shift_y.astype(np.float64) + dy,
            sxx,
            blas.dger(-n, dy, dy, a=_from_upper(self.syy), overwrite_a=1),
            blas.dger(-n, dx, dy, a=self.sxy, overwrite_a=1),
            precision=self.precision,
        )


def _from_upper(S: np.ndarray, block: int = 256) -> np.ndarray:
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
