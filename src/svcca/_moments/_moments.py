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
import math
import os
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from svcca._moments import _accumulator, _paths
from svcca._moments._accumulator import Accumulator, release_rows
from svcca._moments._chunks import chunk_rows
from svcca._moments._paths import split_batch, tensor_batch_device
from svcca._moments._units import check_scale
from svcca._threads import products
from svcca._validation import (
    Precision,
    as_representation,
    check_precision,
    precision_eps,
    tensor_representation,
)

__all__ = ["Moments"]


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
    scale_x, scale_y : float, default 1.0
        Powers of two the sums are expressed in: ``sxx`` holds the sums of
        ``(x - mean_x) / scale_x``, so the centred cross-products are
        ``scale_x**2 * sxx``, ``scale_y**2 * syy`` and ``scale_x * scale_y * sxy``
        (:attr:`cov_xx` and friends apply them). They are 1 unless the data's centred
        magnitude lies outside ``[2^-64, 2^64]`` (``[2^-40, 2^40]`` for float32 products),
        where the sums would overflow or lose digits to underflow; then the first chunk's
        largest centred magnitude sets them (see Notes). The means are always in the
        data's units.
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

    Every magnitude: the statistic is exact under scaling by powers of two, so each side
    carries one (:attr:`scale_x`, :attr:`scale_y`) chosen from the first chunk's largest
    centred value when that lies outside the band where sums of squares (and the
    squares of those sums, which linear CKA takes) stay within float64's normal range.
    Layers of magnitude 1e-300 or 1e300 are therefore summed as accurately as layers of
    magnitude 1, and every scale-invariant measure scores ``c * X`` as ``X`` for any
    finite ``c``. A later chunk larger than the first by more than about 2^400 (float64)
    would overflow the sums: that is refused when the statistic is finished, never
    returned as a wrong number. Merging statistics of different scales rescales the
    one of smaller scale (exactly, by a power of two).

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

    __slots__ = (
        "n",
        "mean_x",
        "mean_y",
        "sxx",
        "syy",
        "sxy",
        "precision",
        "device",
        "scale_x",
        "scale_y",
    )

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
        scale_x: float = 1.0,
        scale_y: float = 1.0,
    ) -> None:
        self.precision: Precision = check_precision(precision)
        self.device = None if device is None else str(device)
        self.scale_x = check_scale(scale_x, "scale_x")
        self.scale_y = check_scale(scale_y, "scale_y")
        self.n = int(n)
        self.mean_x = np.asarray(mean_x, dtype=np.float64)
        self.mean_y = np.asarray(mean_y, dtype=np.float64)
        self.sxx = np.asarray(sxx, dtype=np.float64)
        self.syy = np.asarray(syy, dtype=np.float64)
        self.sxy = np.asarray(sxy, dtype=np.float64)
        if self.n < 0:
            raise ValueError(f"Moments.n counts samples and must be >= 0; got {n!r}.")
        p, q = self.mean_x.shape[0], self.mean_y.shape[0]
        expected = {"sxx": (p, p), "syy": (q, q), "sxy": (p, q)}
        for key, shape in expected.items():
            got = getattr(self, key).shape
            if got != shape:
                raise ValueError(
                    f"Moments.{key} must have shape {shape} to match means of length {p} and "
                    f"{q}; got {got}."
                )
        # O(p^2): a statistic of finite data is finite, whatever its magnitude (the sums
        # are in units of scale_x); NaN or inf here would give plausible wrong scores.
        for key in ("mean_x", "mean_y", "sxx", "syy", "sxy"):
            if not np.isfinite(getattr(self, key)).all():
                raise ValueError(
                    f"Moments.{key} holds NaN or inf: expected the finite statistic of finite "
                    "data. Build it from the data (Moments.from_arrays, update, merge), which "
                    "refuse non-finite rows by name."
                )

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, p: int, q: int = 0, *, precision: Precision = "float64") -> Moments:
        """An empty statistic for ``p`` features of X and ``q`` of Y (``q = 0``: no Y)."""
        for name, v in (("p", p), ("q", q)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
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
        planned from its free memory; CPU tensors take the host path. Dask arrays (one
        or both sides) are summed block by block where the blocks live and merged up a
        tree, as by every measure (``docs/dask.md``): the client never holds the array;
        ``chunk_size`` does not apply (the row blocks are the chunks).
        """
        from svcca._device import data_device

        da = sys.modules.get("dask.array")
        if da is not None and (isinstance(X, da.Array) or isinstance(Y, da.Array)):
            # one task per row block on the workers, tree-reduced: only the small
            # statistic reaches the client (svcca._sources._dask)
            assert _paths.dask_pair is not None  # registered when svcca._sources is imported
            return _paths.dask_pair(X, Y, precision=precision)
        arrays = [X] if Y is None else [X, Y]
        where = data_device(arrays, ["X", "Y"][: len(arrays)])
        if where is not None:
            assert _paths.tensor_pair is not None  # registered when svcca._moments is imported
            X = tensor_representation(X, "X")
            Y = None if Y is None else tensor_representation(Y, "Y")
            if Y is not None and Y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"X has {X.shape[0]} rows and Y has {Y.shape[0]}; both must hold the same "
                    "datapoints, one row each."
                )
            return _paths.tensor_pair(X, Y, where, chunk_size, precision)
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
        device = None if first is None else tensor_batch_device(first, 0)
        if device is not None:
            assert _paths.tensor_batches is not None  # registered when svcca._moments is imported
            return _paths.tensor_batches(itertools.chain([first], it), precision, device)
        for i, batch in enumerate(itertools.chain([] if first is None else [first], it)):
            if i and tensor_batch_device(batch, i) is not None:
                raise TypeError(
                    f"Batch {i} holds torch tensors whose work runs on a device, but batch 0 "
                    "did not (it took the host path); tensors are not copied to the host "
                    "silently. Give every batch as tensors on one device, or every batch as "
                    "arrays (or accumulate on the host: with svcca.on_device(None): ...)."
                )
            xb, yb = split_batch(batch)
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
        rows = chunk_rows(self.p + self.q, chunk_size, self.precision, X.shape[0])
        acc = Accumulator(self.p, self.q, self.precision, ("X" + _batch_label, "Y" + _batch_label))
        with products(rows * (self.p + self.q) ** 2 / 2):
            for start in range(0, X.shape[0], rows):
                stop = min(start + rows, X.shape[0])
                # shift (in float64) and cast in one pass into reused buffers, then the
                # products; a memmap's pages are handed back once read, so reading a
                # file straight through keeps resident memory at one chunk
                acc.add_rows(X[start:stop], None if Y is None else Y[start:stop], whole=(X, Y))
                release_rows(X, start, stop)
                if Y is not None:
                    release_rows(Y, start, stop)
        batch = acc.finish()
        if self.n == 0:  # adopt the fresh arrays instead of copying them
            self.n, self.mean_x, self.mean_y = batch.n, batch.mean_x, batch.mean_y
            self.sxx, self.syy, self.sxy = batch.sxx, batch.syy, batch.sxy
            self.scale_x, self.scale_y = batch.scale_x, batch.scale_y
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
            scale_x=self.scale_x,
            scale_y=self.scale_y,
        )

    def merge_in_place(self, other: Moments) -> Moments:
        """Add ``other``'s samples to this statistic in place (Chan et al.); returns ``self``.

        ``other`` is left unchanged. Both must have the same widths, as for
        :meth:`merge` (two integer comparisons: cheap enough for the hot loops that build
        a statistic chunk by chunk). The result's :attr:`precision` is the lower of the
        two.
        """
        if not isinstance(other, Moments):
            raise TypeError(f"merge_in_place expects a Moments object; got {type(other).__name__}.")
        if other.mean_x.shape != self.mean_x.shape or other.mean_y.shape != self.mean_y.shape:
            raise ValueError(
                f"Cannot merge Moments of widths (p={other.p}, q={other.q}) into Moments of "
                f"widths (p={self.p}, q={self.q}): they must describe the same "
                "representations."
            )
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
            self.scale_x = other.scale_x
            if self.has_y:
                self.mean_y = other.mean_y.copy()
                self.syy = other.syy.copy()
                self.sxy = other.sxy.copy()
                self.scale_y = other.scale_y
            return self
        # One scale per side: the larger of the two; the other's sums are rescaled by an
        # exact power of two (what underflows there is below the round-off of the sums).
        gx, gy = max(self.scale_x, other.scale_x), max(self.scale_y, other.scale_y)
        self._rescale(gx, gy)
        oxx, oyy, oxy = other.sxx, other.syy, other.sxy
        if (other.scale_x, other.scale_y) != (gx, gy):
            ax, ay = other.scale_x / gx, other.scale_y / gy
            oxx, oyy, oxy = oxx * (ax * ax), oyy * (ay * ay), oxy * (ax * ay)
        n = self.n + other.n
        f = self.n * other.n / n
        # Mean differences in the sums' units: (dx / gx)(dx / gx)^T never overflows.
        dx = other.mean_x - self.mean_x
        ux = dx / gx
        self.sxx += oxx
        self.sxx += f * np.outer(ux, ux)
        self.mean_x += dx * (other.n / n)
        if self.has_y:
            dy = other.mean_y - self.mean_y
            uy = dy / gy
            self.syy += oyy
            self.syy += f * np.outer(uy, uy)
            self.sxy += oxy
            self.sxy += f * np.outer(ux, uy)
            self.mean_y += dy * (other.n / n)
        self.n = n
        return self

    def _rescale(self, scale_x: float, scale_y: float) -> None:
        """Express the sums in units of the (larger, power-of-two) scales given, in place."""
        ax, ay = self.scale_x / scale_x, self.scale_y / scale_y
        if ax != 1.0:
            self.sxx *= ax * ax
            self.sxy *= ax
        if ay != 1.0:
            self.syy *= ay * ay
            self.sxy *= ay
        self.scale_x, self.scale_y = scale_x, scale_y

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
            scale_x=self.scale_y,
            scale_y=self.scale_x,
        )

    def _ddof1(self) -> float:
        if self.n < 2:
            raise ValueError(f"Covariances need at least 2 samples; these Moments hold {self.n}.")
        return 1.0 / (self.n - 1)

    @property
    def cov_xx(self) -> np.ndarray:
        """Sample covariance of X in the data's units, ``scale_x^2 S_xx / (n - 1)``
        (entries beyond float64's range are inf: use the scaled :attr:`sxx` there)."""
        return _unscaled(self.sxx, self.scale_x * self.scale_x * self._ddof1())

    @property
    def cov_yy(self) -> np.ndarray:
        """Sample covariance of Y in the data's units, ``scale_y^2 S_yy / (n - 1)``."""
        return _unscaled(self.syy, self.scale_y * self.scale_y * self._ddof1())

    @property
    def cov_xy(self) -> np.ndarray:
        """Sample cross-covariance in the data's units, ``scale_x scale_y S_xy / (n - 1)``."""
        return _unscaled(self.sxy, self.scale_x * self.scale_y * self._ddof1())

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to an ``.npz`` file at exactly ``path`` (no pickles), atomically.

        The arrays go to a temporary file of a name unique to this process and call, in
        the same folder, which is flushed to disk and renamed over ``path``: a reader
        (or a crash) sees the previous file or this one, never part of one, even while
        other processes save to the same path. The file records its format version
        (:data:`svcca._moments._files.FORMAT_VERSION`, 3: with the sums' units
        ``scale_x``, ``scale_y``); ``device`` is not saved.
        """
        from svcca._moments._files import FORMAT_VERSION, save_arrays

        save_arrays(
            path,
            {
                "format_version": np.int64(FORMAT_VERSION),
                "n": np.int64(self.n),
                "mean_x": self.mean_x,
                "mean_y": self.mean_y,
                "sxx": self.sxx,
                "syy": self.syy,
                "sxy": self.sxy,
                "precision": np.str_(self.precision),
                "scale_x": np.float64(self.scale_x),
                "scale_y": np.float64(self.scale_y),
            },
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Moments:
        """Read a file written by :meth:`save`, checked before it is trusted.

        Nothing is unpickled. Files of every format version are read (those saved before
        the version was recorded are version 1). The file must be a zip of ``.npy``
        arrays with bounded headers whose shapes and dtypes are those of a statistic
        (integer ``0 <= n <= 2^53``, float64 means and blocks of agreeing shapes), intact
        (the zip's checksums), with finite values, symmetric blocks with non-negative
        diagonals and cross-products within Cauchy-Schwarz, to round-off.

        Raises
        ------
        ValueError
            Naming the file and what is wrong, for every way it can be wrong (damaged or
            truncated archive, a text or ``.npy`` file, missing or extra arrays, wrong
            shapes, dtypes or values).
        """
        from svcca._moments._files import load_fields

        f = load_fields(path)
        return cls(
            f["n"],
            f["mean_x"],
            f["mean_y"],
            f["sxx"],
            f["syy"],
            f["sxy"],
            precision=f["precision"],
            scale_x=f["scale_x"],
            scale_y=f["scale_y"],
        )

    def __repr__(self) -> str:
        tail = "" if self.precision == "float64" else f", precision={self.precision!r}"
        for side in ("x", "y"):
            scale = getattr(self, f"scale_{side}")
            tail += "" if scale == 1.0 else f", scale_{side}=2**{math.frexp(scale)[1] - 1}"
        tail += "" if self.device is None else f", device={self.device!r}"
        return f"Moments(n={self.n}, p={self.p}, q={self.q}{tail})"

    def _repr_html_(self) -> str:
        """Shapes, count, precision and device as an HTML table (Jupyter shows this)."""
        from svcca._html import moments_html

        return moments_html(self)


def _unscaled(S: np.ndarray, factor: float) -> np.ndarray:
    """``factor * S`` where entries beyond float64's range become inf (quietly: the
    scaled sums hold them exactly, and the measures read those)."""
    with np.errstate(over="ignore", under="ignore"):
        return S * factor


_accumulator.moments_class = Moments  # what Accumulator.finish builds
