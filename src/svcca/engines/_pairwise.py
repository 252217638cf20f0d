"""All-pairs comparisons: every layer with every layer, on one pass of shared work.

A learning-dynamics pane compares hundreds of pairs of the same few dozen
representations. Done pair by pair, each representation is centred, whitened and
decomposed again for every pair it is in, and every pair costs a ``(p + q)^2`` GEMM over
the data. Here each representation gets its Gram matrix and its transform (whitening
factor, or SVCCA's leading singular directions) once, and the cross-products of all
pairs come out of one blocked GEMM per chunk of samples; what is left per pair is a
small ``k x k`` eigenproblem.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import svcca._dense as _dense
from svcca._progress import Progress as _Progress  # the one progress contract
from svcca._result import result
from svcca._threads import dense_steps, products
from svcca._validation import (
    Precision,
    SVCCAWarning,
    check_chunk_size,
    check_epsilon,
    check_int,
    check_keep,
    check_keep_fits,
    check_option,
    check_precision,
    few_samples_message,
    precision_dtype,
    raise_degenerate,
)
from svcca.measures._cca import (
    CCASide,
    canonical_correlations,
    cross_label,
    prepare_side,
    roundoff_bound,
    svd_of_cross,
    with_offset,
)
from svcca.measures._cka import cka_ratio
from svcca.measures._pwcca import pwcca_weights
from svcca.measures._svcca import Variance, reduce_side
from svcca.measures._two_pass import FrequentDirections, ritz_side
from svcca.sources._sources import (
    Source,
    _chunk_stats,
    as_source,
    check_same_n,
    is_dask_array,
)
from svcca.statistic._accumulator import Accumulator
from svcca.statistic._moments import FLOAT32_CHUNK_ROWS, Moments
from svcca.statistic._units import Float32RangeError

__all__ = ["PairwiseResult", "pairwise"]

Measure = Literal["cca", "svcca", "pwcca", "pls", "cka_linear"]
MEASURES = ("cca", "svcca", "pwcca", "pls", "cka_linear")
_SYMMETRIC = {"cca", "svcca", "pls", "cka_linear"}
# Rows per chunk of a pass: each float64 chunk of all representations side by side is
# about this large (at least 1024 rows, so the GEMMs stay efficient).
_PASS_BYTES = 64 * 2**20


@result
class PairwiseResult:
    """A labelled matrix of similarities between named representations.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_cols)
        ``values[i, j]`` compares representation ``rows[i]`` with ``cols[j]``: the
        measure's ``.score`` (mean canonical correlation for ``"cca"`` and ``"svcca"``,
        the projection-weighted mean for ``"pwcca"`` with ``rows[i]`` as ``X``, linear
        CKA for ``"pls"`` and ``"cka_linear"``).
    rows, cols : tuple
        Labels, in order: the keys of the mappings given to :func:`pairwise`, as given
        (strings, tuples such as ``("run0", "fc1")``, integers, ...), or ``"0"``,
        ``"1"``, ... for a sequence.
    measure : str
        The measure used.
    settings : mapping
        The measure's settings (``keep``, ``variance``, ``epsilon`` as they apply).
    n_samples : int
        Datapoints every representation was measured on.
    dims_rows, dims_cols : tuple of int
        Dimensions each representation entered its comparisons with: directions kept
        (svcca), whitened rank after pruning (cca, pwcca) or features (pls, cka_linear).
    """

    values: np.ndarray
    rows: tuple[Hashable, ...]
    cols: tuple[Hashable, ...]
    measure: str
    settings: Mapping[str, Any]
    n_samples: int
    dims_rows: tuple[int, ...]
    dims_cols: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """``(len(rows), len(cols))``."""
        return (len(self.rows), len(self.cols))

    def _repr_html_(self) -> str:
        """The matrix as a coloured HTML table with its labels (Jupyter shows this)."""
        from svcca._html import pairwise_html

        return pairwise_html(self)

    def __getitem__(self, key: tuple[Hashable, Hashable]) -> float:
        """``result["conv1", "conv2"]`` (labels) or ``result[0, 1]`` (positions).

        Labels are matched as given: ``result[("run0", "fc1"), ("run1", "fc1")]`` for
        tuple labels. An integer is a position, except on an axis whose labels include
        integers: there it is looked up as a label only (``.values[i, j]`` for
        positions), so ``{3: X, 5: Y}`` is indexed ``result[3, 5]`` and never by a
        position that happens to be a label too.
        """
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(f"Index with a (row, col) pair of labels or positions; got {key!r}.")
        i = self._index(key[0], self.rows, "row")
        j = self._index(key[1], self.cols, "column")
        return float(self.values[i, j])

    @staticmethod
    def _index(k: Hashable, labels: tuple[Hashable, ...], what: str) -> int:
        is_int = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
        int_labels = any(isinstance(x, int) and not isinstance(x, bool) for x in labels)
        if is_int and not int_labels:
            pos = int(k)  # type: ignore[call-overload]
            if not -len(labels) <= pos < len(labels):
                raise KeyError(
                    f"A {what} position must be in [-{len(labels)}, {len(labels)}); got {pos}. "
                    f"Use a label ({what}s are {list(labels)}) or a smaller position."
                )
            return pos
        if k in labels:
            return labels.index(k)
        hint = (
            " Integers are labels on this axis (its labels include integers); use "
            ".values[i, j] for positions."
            if is_int
            else ""
        )
        raise KeyError(f"No {what} labelled {k!r}; {what}s are {list(labels)}.{hint}")

    def to_pandas(self) -> Any:
        """The matrix as a ``pandas.DataFrame`` indexed by row and column labels.

        Tuple labels of one length (``("run0", "fc1")``) become a ``pandas.MultiIndex``
        (``df.loc[("run0", "fc1"), ("run1", "fc1")]``); other labels a plain index.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_pandas() needs pandas: pip install 'svcca[pandas]'. The values are in "
                ".values, the labels in .rows and .cols."
            ) from exc
        df = pd.DataFrame(
            self.values, index=_pandas_index(self.rows), columns=_pandas_index(self.cols)
        )
        df.attrs["measure"] = self.measure
        df.attrs["settings"] = dict(self.settings)
        return df

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types (lists, floats, str), ready for ``json.dump``."""
        from svcca._version import __version__

        return {
            "measure": self.measure,
            "settings": dict(self.settings),
            "svcca_version": __version__,
            "n_samples": self.n_samples,
            "rows": [_plain_label(x) for x in self.rows],
            "cols": [_plain_label(x) for x in self.cols],
            "dims_rows": list(self.dims_rows),
            "dims_cols": list(self.dims_cols),
            "values": self.values.tolist(),
        }


def _pandas_index(labels: tuple[Hashable, ...]) -> Any:
    import pandas as pd

    if labels and all(isinstance(x, tuple) for x in labels):
        if len({len(x) for x in labels}) == 1 and len(labels[0]) > 0:  # type: ignore[arg-type]
            return pd.MultiIndex.from_tuples(list(labels))
    return pd.Index(list(labels), tupleize_cols=False)


def _plain_label(x: Hashable) -> Any:
    """A label as JSON-ready Python: tuples as lists, NumPy scalars as Python, else str."""
    if isinstance(x, tuple):
        return [_plain_label(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


# ---------------------------------------------------------------------- inputs
def _named(reps: Any, what: str) -> list[tuple[Hashable, Any]]:
    if isinstance(reps, Mapping):
        items: list[tuple[Hashable, Any]] = list(reps.items())
    elif isinstance(reps, Sequence) and not isinstance(reps, (str, bytes, np.ndarray)):
        items = [(str(i), v) for i, v in enumerate(reps)]
    else:
        raise TypeError(
            f"{what} must be a mapping of names to representations (e.g. {{'conv1': X1, "
            f"'conv2': X2}}) or a list of representations; got {type(reps).__name__}. To "
            "compare two arrays, call svcca.svcca(X, Y) (or another measure) directly."
        )
    if not items:
        raise ValueError(f"{what} is empty; give at least one representation.")
    return items


def _pass_rows(width: int, n: int, chunk_size: int | None, precision: Precision) -> int:
    """Rows per chunk of a pass over ``n`` rows: ``chunk_size`` or one chosen from the
    width, never more than ``n`` (a chunk buffer of ``chunk_size`` rows is allocated)."""
    chunk_size = check_chunk_size(chunk_size)
    if chunk_size is None:
        size = 4 if precision == "float32" else 8
        chunk_size = max(1024, _PASS_BYTES // (size * max(width, 1)))
    chunk_size = max(1, min(n, chunk_size))
    # float32 products stay short (their round-off grows with length); sums are float64.
    return min(chunk_size, FLOAT32_CHUNK_ROWS) if precision == "float32" else chunk_size


# ---------------------------------------------------------------------- the two passes
def _cross_block(
    blocks: list[np.ndarray],
    means: list[np.ndarray],
    transforms: list[np.ndarray | None],
    row_u: list[int],
    col_u: list[int] | None,
    work: dict[str, np.ndarray] | None = None,
    dtype: Any = None,
    inv_scales: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A^T B`` for one chunk: A (B) the centred, transformed row (column) reps side by side,
    and the column sums of A and B (float64).

    The blocks are centred on the means in their own dtype (float64 as read), divided by
    their representation's power-of-two scale (``Moments.scale_x``, as ``inv_scales``:
    exact) and only then cast to the product dtype ``dtype`` (default: the blocks'), so
    float32 products never see a rounded mean. The sums of the centred values are
    ``n (mean - fl(mean))`` summed over chunks: :func:`_centred_cross` removes that
    rank-one term, so pass two centres exactly as pass one did, whatever the offset.

    The transposed panels ``A^T`` (and ``B^T``) are written in place, one C-contiguous
    row block per representation, so no concatenation copy is made; a representation
    in both rows and columns is projected once. ``work`` holds buffers reused from chunk
    to chunk (large fresh allocations are returned to the OS on free and page-fault
    again on every chunk); the returned array is then one of them.
    """
    m = blocks[0].shape[0]
    width = [
        b.shape[1] if t is None else t.shape[1] for b, t in zip(blocks, transforms, strict=True)
    ]

    dtype = np.dtype(blocks[0].dtype if dtype is None else dtype)

    def buffer(key: str, shape: tuple[int, int]) -> np.ndarray:
        if work is None:
            return np.empty(shape, dtype=dtype)
        buf = work.get(key)
        if buf is None or buf.shape[1] < shape[1] or buf.shape[0] != shape[0]:
            buf = work[key] = np.empty(shape, dtype=dtype)
        return buf[:, : shape[1]] if buf.shape[1] != shape[1] else buf

    def panel(key: str, us: list[int], done: dict[int, np.ndarray]) -> np.ndarray:
        out = buffer(key, (sum(width[u] for u in us), m))
        off = 0
        for u in us:
            dst = out[off : off + width[u]]
            if u in done:
                dst[:] = done[u]
            else:
                b = blocks[u]
                b -= means[u]
                if inv_scales is not None and inv_scales[u] != 1.0:
                    b *= inv_scales[u]
                T = transforms[u]
                if T is None:
                    dst[:] = b.T
                else:
                    if b.dtype != dtype:
                        b = b.astype(dtype)
                    np.matmul(T.T, b.T, out=dst)
                done[u] = dst
            off += width[u]
        return out

    done: dict[int, np.ndarray] = {}
    At = panel("At", row_u, done)
    Bt = At if col_u is None else panel("Bt", col_u, done)
    sa = At.sum(axis=1, dtype=np.float64)
    sb = sa if col_u is None else Bt.sum(axis=1, dtype=np.float64)
    if work is None:
        return At @ Bt.T, sa, sb
    return np.matmul(At, Bt.T, out=buffer("C", (At.shape[0], Bt.shape[0]))), sa, sb


def _cross_block_packed(blocks: list[np.ndarray], *args: Any) -> np.ndarray:
    """:func:`_cross_block` as one float64 array ``[[C, sa], [sb^T, 0]]`` (what a Dask
    tree-reduction can sum); :func:`_centred_cross` unpacks it."""
    C, sa, sb = _cross_block(blocks, *args)
    out = np.zeros((C.shape[0] + 1, C.shape[1] + 1))
    out[:-1, :-1] = C
    out[:-1, -1] = sa
    out[-1, :-1] = sb
    return out


def _centred_cross(packed: np.ndarray, n: int) -> np.ndarray:
    """The centred cross-products from summed ``[[C, sa], [sb^T, 0]]``:
    ``C - sa sb^T / n`` (the shifted-data correction of the means' rounding)."""
    C = packed[:-1, :-1]
    C -= np.outer(packed[:-1, -1], packed[-1, :-1] / n)
    return C


def _pass1_local(
    srcs: list[Source], n: int, rows: int, bar: _Progress, precision: Precision
) -> list[Moments]:
    """Pass one: each representation's Moments, by the one Accumulator.

    Rows are read as float64 and shifted before any cast, except float32 sources of a
    float32 pass, which are read as they are and shifted in float32 by a float32 shift.
    """
    accs = [Accumulator(s.p, 0, precision) for s in srcs]
    f32 = precision == "float32"
    bufs = [
        np.empty((rows, s.p), dtype=np.float32 if f32 and _dtype(s) == np.float32 else float)
        for s in srcs
    ]
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        for acc, s, buf in zip(accs, srcs, bufs, strict=True):
            block = s.read(start, stop, buf)
            if acc.add_raw(block, scratch=True) is not None:
                name = f"Representation {s.name!r}"
                _chunk_stats(block, name, start)  # names the rows holding NaN or inf
                raise Float32RangeError(
                    f"{name} has values beyond float32's range in rows {start}:{stop}. Use "
                    "precision='float64', or rescale the activations."
                )
        bar.update(1)
    return [acc.finish() for acc in accs]


def _dtype(s: Source) -> Any:
    """The dtype a source holds (None when it does not say)."""
    return getattr(s.obj, "dtype", None)


def _pass2_local(
    srcs: list[Source],
    n: int,
    rows: int,
    args: tuple[Any, ...],
    bar: _Progress,
    dtype: Any = np.float64,
) -> np.ndarray:
    means, transforms, row_u, col_u, inv_scales = args
    total: np.ndarray | None = None
    work: dict[str, np.ndarray] = {}
    bufs = [np.empty((rows, s.p)) for s in srcs]  # float64: centred before any cast
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        blocks = [s.read(start, stop, buf) for s, buf in zip(srcs, bufs, strict=True)]
        part, sa, sb = _cross_block(
            blocks, means, transforms, row_u, col_u, work, dtype, inv_scales
        )
        if total is None:  # float64 sums, also of float32 chunk products
            total = np.zeros((part.shape[0] + 1, part.shape[1] + 1))
        total[:-1, :-1] += part
        total[:-1, -1] += sa
        total[-1, :-1] += sb
        bar.update(1)
    assert total is not None
    return _centred_cross(total, n)


# ---------------------------------------------------------------------- prepare / combine
class _Rep:
    """One representation's *prepare a side* step, done once for all its pairs.

    ``transform`` (SVCCA's kept directions) projects every chunk in pass two; ``side``
    is the measure's prepared side (:func:`svcca.measures._cca.prepare_side`, or the
    reduced side of :func:`svcca.measures._svcca.reduce_side`); CKA and PLS need only
    ``||S_xx||_F^2``. Each is the same call a single comparison makes.
    """

    __slots__ = ("side", "transform", "dim", "gram_sq")

    def __init__(
        self,
        name: str,
        m: Moments,
        measure: str,
        keep: float | int,
        variance: Variance,
        epsilon: float,
    ) -> None:
        self.side: CCASide | None = None
        self.transform: np.ndarray | None = None
        self.gram_sq = 0.0
        if measure == "svcca":
            red = reduce_side(m.sxx, m.mean_x, keep, variance, name, eps=m.eps, scale=m.scale_x)
            self.transform, self.side, self.dim = red.directions, red.cca_side(), red.k
            with_offset(self.side, np.diag(red.eigvals), m.n)
        elif measure in ("cca", "pwcca"):
            self.side = prepare_side(
                m.sxx, m.mean_x, epsilon, name, eps=m.eps, scale=m.scale_x, n=m.n
            )
            with_offset(self.side, m.sxx, m.n)
            self.dim = self.side.rank
        else:
            self.gram_sq = float(np.sum(m.sxx * m.sxx))
            if not self.gram_sq > 0:
                raise_degenerate(name, m.p, "it is constant (its centred Gram matrix is zero)")
            self.dim = m.p

    @classmethod
    def of_side(cls, side: CCASide, dim: int) -> _Rep:
        rep = cls.__new__(cls)
        rep.side, rep.transform, rep.dim, rep.gram_sq = side, None, dim, 0.0
        return rep


def _prepare_all(
    names: Sequence[Hashable],
    moms: list[Moments],
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
) -> list[_Rep]:
    """Every representation's prepare step, its kernels where its moments were made."""
    with dense_steps(max(m.p for m in moms), moms[0].device):
        return [
            _Rep(repr(nm), m, measure, keep, variance, epsilon)
            for nm, m in zip(names, moms, strict=True)
        ]


def _pair_score(measure: str, M: np.ndarray, si: CCASide, sj: CCASide) -> float:
    """The combine step of one pair from its whitened cross block ``M``."""
    tol = roundoff_bound(M, si, sj)
    with _dense.factorising(cross_label(si, sj)):
        if measure == "pwcca":
            U, rho, V = svd_of_cross(M, tol)
            weights, _ = pwcca_weights(si, sj, U, V, rho)
            return float(weights @ rho)
        return float(canonical_correlations(M, tol).mean())


def _scores(
    C: np.ndarray,
    reps: list[_Rep],
    widths: list[int],
    row_u: list[int],
    col_u: list[int],
    measure: str,
    square: bool,
    bar: _Progress,
) -> np.ndarray:
    """Every pair's score from the blocked cross-products ``C`` (rows x cols stripes)."""
    roff = np.concatenate([[0], np.cumsum([widths[u] for u in row_u])])
    coff = np.concatenate([[0], np.cumsum([widths[u] for u in col_u])])
    out = np.zeros((len(row_u), len(col_u)))
    whitened = measure in ("cca", "svcca", "pwcca")
    if whitened:
        # Whiten every row stripe from the left once (CCASide.left), then each pair's
        # block from the right (CCASide.right): the two halves of whitened_cross.
        left = [reps[u].side.left(C[roff[i] : roff[i + 1]]) for i, u in enumerate(row_u)]  # type: ignore[union-attr]
    for i, ui in enumerate(row_u):
        for j, uj in enumerate(col_u):
            if square and measure in _SYMMETRIC and j < i:
                out[i, j] = out[j, i]
            elif whitened:
                si, sj = reps[ui].side, reps[uj].side
                assert si is not None and sj is not None
                M = sj.right(left[i][:, coff[j] : coff[j + 1]])
                out[i, j] = _pair_score(measure, M, si, sj)
            else:
                S = C[roff[i] : roff[i + 1], coff[j] : coff[j + 1]]
                xy = float(np.sum(S * S))
                out[i, j] = cka_ratio(xy, reps[ui].gram_sq, reps[uj].gram_sq, 1, 1, ("", ""))
            bar.update(1)
    return out


def _warn_inflated(
    n: int,
    names: list[Hashable],
    reps: list[_Rep],
    row_u: list[int],
    col_u: list[int],
    measure: str,
) -> None:
    """One warning naming every pair whose kept dimensions leave too few samples."""
    if measure not in ("cca", "svcca", "pwcca"):
        return
    bad = [
        (names[a], names[b], reps[a].dim, reps[b].dim)
        for a in row_u
        for b in col_u
        if few_samples_message(n, reps[a].dim, reps[b].dim) is not None
    ]
    if not bad:
        return
    a, b, p, q = bad[0]
    shown = ", ".join(f"({x!r}, {y!r})" for x, y, _, _ in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    warnings.warn(
        f"{len(bad)} pairs have too few samples for their dimensions: {shown}{more}. For "
        f"({a!r}, {b!r}): {few_samples_message(n, p, q)}",
        SVCCAWarning,
        stacklevel=3,
    )


def _sketched_svcca(
    srcs: list[Source],
    n: int,
    row_u: list[int],
    col_u: list[int],
    keep: float | int,
    variance: Variance,
    ell: int,
    chunk_size: int | None,
    progress: bool | None,
) -> tuple[np.ndarray, list[_Rep]]:
    """SVCCA for wide layers: Frequent Directions, then Rayleigh-Ritz in the sketches."""
    rows1 = _pass_rows(sum(s.p for s in srcs), n, chunk_size, "float64")
    fds = [FrequentDirections(s.p, min(ell, s.p)) for s in srcs]
    n_chunks = -(-n // rows1)
    bar = _Progress(progress, total=2 * n_chunks + len(row_u) * len(col_u), desc="pairs")
    try:
        for start in range(0, n, rows1):  # pass one: sketches, means, total variances
            stop = min(start + rows1, n)
            for fd, s in zip(fds, srcs, strict=True):
                block = s.read(start, stop)
                if not np.isfinite(block).all():
                    _chunk_stats(block, f"Representation {s.name!r}", start)
                fd.update(block)
            bar.update(1)
        bases = [fd.directions()[1] for fd in fds]
        uniq = list(range(len(srcs)))
        # Pass two: every sketched subspace against every other (all blocks are needed:
        # the diagonal ones give the exact variances inside each subspace).
        units = [fd.unit or 1.0 for fd in fds]  # the sketches' units (exact powers of two)
        args = ([fd.mean for fd in fds], bases, uniq, None, [1.0 / u for u in units])
        rows2 = _pass_rows(sum(b.shape[1] for b in bases), n, chunk_size, "float64")
        bar.retotal(n_chunks + -(-n // rows2) + len(row_u) * len(col_u))
        C = _pass2_local(srcs, n, rows2, args, bar)
        off = np.concatenate([[0], np.cumsum([b.shape[1] for b in bases])])
        sides = [
            ritz_side(C[a:b, a:b], basis, fd.mean, fd.total, keep, variance, repr(s.name), u)
            for a, b, basis, fd, s, u in zip(
                off[:-1], off[1:], bases, fds, srcs, units, strict=True
            )
        ]
        # The reduced cross blocks U_i^T C_ij U_j, laid out as _scores expects.
        R = _reduced_blocks(C, off, [U for _, U in sides], row_u, col_u)
        reps = [_Rep.of_side(red.cca_side(), red.k) for red, _ in sides]
        widths = [rep.dim for rep in reps]
        out = _scores(R, reps, widths, row_u, col_u, "svcca", row_u is col_u, bar)
    finally:
        bar.close()
    return out, reps


def _reduced_blocks(
    C: np.ndarray, off: np.ndarray, Us: list[np.ndarray], row_u: list[int], col_u: list[int]
) -> np.ndarray:
    """``U_a^T C_ab U_b`` for every (row, col) pair of representations, as one matrix."""
    return np.block(
        [
            [Us[a].T @ C[off[a] : off[a + 1], off[b] : off[b + 1]] @ Us[b] for b in col_u]
            for a in row_u
        ]
    )


# ---------------------------------------------------------------------- public
def pairwise(
    rows: Mapping[str, Any] | Sequence[Any],
    cols: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    measure: Measure = "svcca",
    keep: float | int = 0.99,
    variance: Literal["explained", "singular_values"] = "explained",
    epsilon: float = 0.0,
    chunk_size: int | None = None,
    sketch_size: int | None = None,
    progress: bool | None = False,
    precision: Precision = "float64",
    params: Mapping[str, Any] | None = None,
) -> PairwiseResult:
    """Compare every representation with every other (or every row with every column).

    Parameters
    ----------
    rows : mapping of labels to representations, or sequence of representations
        Each representation is ``(n_samples, p_i)``, all on the same datapoints: NumPy
        arrays, ``np.memmap`` files (``np.load(path, mmap_mode="r")``), paths to
        ``.npy`` files, h5py/zarr datasets, torch tensors or dask arrays. The mapping's
        keys are the result's labels as given (a tuple key such as ``("run0", "fc1")``
        stays a tuple, and ``to_pandas()`` makes a MultiIndex of such keys); a
        sequence is labelled ``"0"``, ``"1"``, ...
    cols : same, optional
        Omitted: all pairs of ``rows`` (a square, symmetric matrix for symmetric
        measures). Given: the rectangular matrix ``rows x cols`` (e.g. layers at a
        checkpoint against the final model's layers). An object that appears in both
        is read and decomposed once.
    measure : str, default "svcca"
        Any name of :data:`svcca.MEASURES` (``svcca measures`` lists them). ``"svcca"``,
        ``"cca"``, ``"pwcca"``, ``"pls"`` and ``"cka_linear"`` run the one-pass engine
        below (memory constant in ``n``; ``"pls"`` and ``"cka_linear"`` both give
        linear CKA). Every other measure (Procrustes, shape metrics, regression, RBF
        CKA, RSA, your own registered one) reads each representation into memory once
        and is called on each pair: ``values[i, j]`` is exactly its score, and the
        representations must fit in half the free memory together (else
        :class:`~svcca.DeviceMemoryError`, before anything is read).
    keep, variance
        SVCCA's directions per representation, as in :func:`svcca.svcca`.
    epsilon : float, default 0.0
        Relative variance pruning for ``"cca"`` and ``"pwcca"``, as in :func:`svcca.cca`.
    chunk_size : int, optional
        Samples per chunk of each pass (default: about 64 MiB of float64 per chunk, at
        least 1024 rows). Memory is ``O(chunk_size * sum(p_i) + sum(p_i)^2)``, constant
        in ``n``.
    sketch_size : int, optional
        SVCCA only, for layers too wide for a ``p x p`` Gram matrix: pass one sketches
        each representation with Frequent Directions (``sketch_size`` rows, memory
        ``O(sketch_size * p)``) instead, as :func:`svcca.svcca_two_pass`
        does; pass two gathers the joint moments of all the sketched subspaces, and
        the kept directions are chosen inside them by their exact variances. Results
        approximate the exact ones (to about 1e-5 when the spectrum has a gap after the
        kept directions and ``sketch_size`` is a few times their number). Not for dask
        inputs.
    progress : bool or None, default False
        The library's one progress contract (:mod:`svcca._progress`): ``True`` always
        shows a bar on stderr, ``False`` never, ``None`` only when stderr is a terminal;
        without tqdm, a plain counter and one warning.
    precision : {"float64", "float32"}, default "float64"
        How the products of both passes are taken: ``"float32"`` multiplies float32
        chunks of at most 4096 rows and adds them into float64 sums (about twice the
        float64 rate; scores move by about 1e-8 for CKA and by the whitened blocks'
        condition number times 1e-7 for the CCA family, see :class:`~svcca.Moments`).
        Not with ``sketch_size``.
    params : mapping, optional
        Parameters of a measure called per pair (``{"bandwidth": 0.5}`` for
        ``"cka_rbf"``, ``{"alpha": 0.5}`` for ``"shape_distance"``), checked against its
        declaration; the one-pass measures take ``keep``, ``variance`` and ``epsilon``.

    Returns
    -------
    PairwiseResult
        ``.values[i, j]`` equals ``measure(rows[i], cols[j]).score`` (to round-off),
        with ``.rows``, ``.cols`` and ``.to_pandas()``.

    Notes
    -----
    Pass one reads every representation once and accumulates its count, mean and
    Gram matrix :math:`S_{ii}` (mergeable moments). From :math:`S_{ii}` alone comes the
    per-representation transform :math:`T_i`: SVCCA's leading eigenvectors scaled to
    unit variance, :math:`T_i = V_k \\Lambda_k^{-1/2}`; CCA's whitening factor (applied
    after the GEMM); nothing for CKA. Pass two centres each chunk on the exact means
    and accumulates one blocked GEMM, :math:`A^T B` with :math:`A = [X_1 T_1, \\dots]`
    over the row representations and :math:`B` over the columns (:math:`A^T A` in the
    square case). Block :math:`(i, j)` of it is then SVCCA's (or, after whitening,
    CCA's) matrix :math:`M_{ij}`, whose singular values are the canonical correlations;
    for CKA it is :math:`S_{ij}` and the score is
    :math:`\\|S_{ij}\\|_F^2 / (\\|S_{ii}\\|_F \\|S_{jj}\\|_F)`.

    Dask inputs run both passes as block tasks with tree reductions on whatever
    scheduler is active (see docs/dask.md); nothing but moments reaches the client.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((2000, 4))
    >>> reps = {f"layer{i}": np.tanh(Z @ rng.standard_normal((4, 20))) for i in range(3)}
    >>> r = svcca.pairwise(reps, measure="cca")
    >>> r.shape, round(r["layer0", "layer0"], 6)
    ((3, 3), 1.0)
    """
    from svcca.measures._registry import MEASURES as REGISTRY

    measure = check_option(
        measure,
        "measure",
        tuple(REGISTRY),
        fix="svcca measures (or svcca.MEASURES) lists them; svcca.register adds your own.",
    )  # type: ignore[assignment]
    params = dict(params or {})
    if measure not in MEASURES:
        return _per_pair(rows, cols, REGISTRY[measure], params, progress)
    if params:
        raise TypeError(
            f"params= is for measures called per pair; measure={measure!r} runs the one-pass "
            f"engine and takes keep=, variance=, epsilon= and precision= (got params "
            f"{sorted(params)})."
        )
    keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    epsilon = check_epsilon(epsilon)
    precision = check_precision(precision)
    if sketch_size is not None:
        sketch_size = check_int(sketch_size, "sketch_size")
        if precision != "float64":
            raise ValueError(
                "sketch_size runs Frequent Directions in float64; precision='float32' is "
                "for the exact two passes. Leave one of them out."
            )
        if measure != "svcca":
            raise ValueError(
                f"sketch_size applies to measure='svcca' only (got measure={measure!r}); "
                "CCA, PWCCA and CKA need every feature's full Gram matrix."
            )
    plan = _plan(rows, cols)
    if measure == "svcca":  # before the passes over the data, not after them
        for s in plan.srcs:
            check_keep_fits(keep, s.p, repr(s.name))
    use_dask = any(is_dask_array(s.obj) for s in plan.srcs)
    if sketch_size is not None:
        if use_dask:
            raise ValueError(
                "sketch_size is not supported with dask inputs; compute on the cluster "
                "without it, or pass NumPy arrays / memmaps."
            )
        values, reps = _sketched_svcca(
            plan.srcs,
            plan.n,
            plan.row_u,
            plan.col_u,
            keep,
            variance,
            sketch_size,
            chunk_size,
            progress,
        )
        settings: dict[str, Any] = {"keep": keep, "variance": variance, "sketch_size": sketch_size}
    else:
        values, reps = _two_passes(
            plan, measure, keep, variance, epsilon, chunk_size, progress, precision
        )
        settings = (
            {"keep": keep, "variance": variance}
            if measure == "svcca"
            else {"epsilon": epsilon}
            if measure in ("cca", "pwcca")
            else {}
        )
    _warn_inflated(plan.n, plan.names, reps, plan.row_u, plan.col_u, measure)
    return PairwiseResult(
        values=values,
        rows=plan.row_labels,
        cols=plan.col_labels,
        measure=measure,
        settings=settings,
        n_samples=plan.n,
        dims_rows=tuple(reps[u].dim for u in plan.row_u),
        dims_cols=tuple(reps[u].dim for u in plan.col_u),
    )


def _per_pair(
    rows: Any, cols: Any, measure: Any, params: dict[str, Any], progress: bool | None
) -> PairwiseResult:
    """A registered measure the one-pass engine does not serve, called per pair."""
    from svcca.engines._per_pair import per_pair_values

    measure.check_params(params)
    plan = _plan(rows, cols)
    values = per_pair_values(
        plan.srcs, plan.n, plan.row_u, plan.col_u, plan.square, measure, params, progress
    )
    return PairwiseResult(
        values=values,
        rows=plan.row_labels,
        cols=plan.col_labels,
        measure=measure.name,
        settings=dict(params),
        n_samples=plan.n,
        dims_rows=tuple(plan.srcs[u].p for u in plan.row_u),
        dims_cols=tuple(plan.srcs[u].p for u in plan.col_u),
    )


@dataclass(frozen=True)
class _Plan:
    """The unique representations of a call (a layer in both rows and cols is read once)."""

    srcs: list[Source]
    names: list[Hashable]
    row_u: list[int]
    col_u: list[int]  # the same list object as row_u when the matrix is square
    row_labels: tuple[Hashable, ...]
    col_labels: tuple[Hashable, ...]
    n: int

    @property
    def square(self) -> bool:
        return self.col_u is self.row_u


def _plan(rows: Any, cols: Any) -> _Plan:
    """Validate the representations and deduplicate them by identity."""
    row_items = _named(rows, "rows")
    col_items = row_items if cols is None else _named(cols, "cols")
    objs: list[Any] = []
    names: list[Hashable] = []
    index: dict[int, int] = {}

    def uid(name: Hashable, obj: Any) -> int:
        if id(obj) not in index:
            index[id(obj)] = len(objs)
            objs.append(obj)
            names.append(name)
        return index[id(obj)]

    row_u = [uid(k, v) for k, v in row_items]
    col_u = row_u if cols is None else [uid(k, v) for k, v in col_items]
    srcs = [as_source(o, f"representation {nm!r}") for o, nm in zip(objs, names, strict=True)]
    for s, nm in zip(srcs, names, strict=True):
        s.name = nm  # type: ignore[assignment]  # a label as given; messages show its repr
    n = check_same_n(srcs)
    if n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {n}.")
    labels = (tuple(k for k, _ in row_items), tuple(k for k, _ in col_items))
    return _Plan(srcs, names, row_u, col_u, labels[0], labels[1], n)


def _two_passes(
    plan: _Plan,
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
    chunk_size: int | None,
    progress: bool | None,
    precision: Precision = "float64",
) -> tuple[np.ndarray, list[_Rep]]:
    """Pass one: each representation's moments; prepare each side; pass two: the blocked
    cross-products of the (transformed) representations; combine every pair."""
    srcs, n = plan.srcs, plan.n
    use_dask = any(is_dask_array(s.obj) for s in srcs)
    dev = _tensor_device(srcs)
    if dev is not None:
        return _two_passes_device(
            plan, dev, measure, keep, variance, epsilon, chunk_size, progress, precision
        )
    dtype = precision_dtype(precision)
    rows1 = _pass_rows(sum(s.p for s in srcs), n, chunk_size, precision)
    n_chunks1 = 1 if use_dask else -(-n // rows1)
    n_pairs = len(plan.row_u) * len(plan.col_u)
    bar = _Progress(progress, total=2 * n_chunks1 + n_pairs, desc="pairs")
    try:
        if use_dask:
            from svcca.sources._dask import per_rep_moments_dask

            moms = per_rep_moments_dask(
                [_dask_or_array(s, n) for s in srcs],
                [str(nm) for nm in plan.names],
                precision=precision,
            )
            bar.update(1)
        else:
            with products(rows1 * max(s.p for s in srcs) ** 2 / 2):
                moms = _pass1_local(srcs, n, rows1, bar, precision)
        reps = _prepare_all(plan.names, moms, measure, keep, variance, epsilon)
        transforms = [None if r.transform is None else r.transform.astype(dtype) for r in reps]
        widths = [s.p if T is None else T.shape[1] for T, s in zip(transforms, srcs, strict=True)]
        means = [m.mean_x for m in moms]
        inv_scales = [1.0 / m.scale_x for m in moms]
        col_u = None if plan.square else plan.col_u
        if use_dask:
            from svcca.sources._dask import cross_products_dask

            # Blocks reach the tasks as float64 copies; (work, dtype) ride along in args.
            packed = cross_products_dask(
                [_dask_or_array(s, n) for s in srcs],
                _cross_block_packed,
                (means, transforms, plan.row_u, col_u, None, dtype, inv_scales),
            )
            C = _centred_cross(packed, n)
            bar.update(1)
        else:
            rows2 = _pass_rows(sum(widths), n, chunk_size, precision)
            bar.retotal(2 * n_chunks1 + n_pairs + -(-n // rows2) - n_chunks1)
            rw = [widths[u] for u in plan.row_u]
            cw = rw if plan.square else [widths[u] for u in plan.col_u]
            with products(rows2 * sum(rw) * sum(cw)):
                args = (means, transforms, plan.row_u, col_u, inv_scales)
                C = _pass2_local(srcs, n, rows2, args, bar, dtype)
        with dense_steps(max(widths)):
            values = _scores(C, reps, widths, plan.row_u, plan.col_u, measure, plan.square, bar)
    finally:
        bar.close()
    return values, reps


# ---------------------------------------------------------------------- on a device
def _tensor_device(srcs: list[Source]) -> Any:
    """The device both passes run on: torch tensors all on one device whose work runs
    there (a GPU, or any inside ``svcca.on_device``); None for the host passes."""
    from svcca._device import data_device

    return data_device([s.obj for s in srcs], [f"Representation {s.name!r}" for s in srcs])


def _two_passes_device(
    plan: _Plan,
    dev: Any,
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
    chunk_size: int | None,
    progress: bool | None,
    precision: Precision,
) -> tuple[np.ndarray, list[_Rep]]:
    """:func:`_two_passes` with the tensors' chunks never leaving their device.

    Pass one is one :class:`~svcca.statistic._torch_moments.TorchAccumulator` per
    representation; pass two the same blocked ``A^T B`` as :func:`_cross_block`, its
    chunks centred on the exact float64 means before any cast, summed in float64 on the
    device. Between and after them the prepare and combine steps are the host ones,
    their cubic kernels on ``dev`` (:mod:`svcca._dense`).
    """
    import torch

    from svcca._device import exact_products, format_bytes, plan_rows
    from svcca.statistic._torch_moments import TorchAccumulator

    srcs, n = plan.srcs, plan.n
    most = check_chunk_size(chunk_size)
    accs: list[TorchAccumulator] = []
    for s in srcs:  # all held at once: each plans beside the sums made before it
        held = sum(a.sums_bytes for a in accs)
        names = (f"Representation {s.name!r}", "")
        accs.append(TorchAccumulator(s.p, 0, dev, precision, names, held=held))
    rows1 = min(a.rows for a in accs) if most is None else min(most, *(a.rows for a in accs))
    bar = _Progress(progress, total=-(-n // rows1), desc="pairs")
    try:
        for start in range(0, n, rows1):
            stop = min(start + rows1, n)
            queued = [(a, a.queue(s.obj[start:stop])) for a, s in zip(accs, srcs, strict=True)]
            for acc, checks in queued:  # one synchronisation per chunk, not per representation
                acc.verify(checks)
            bar.update(1)
        moms = [acc.finish() for acc in accs]
        del accs
        reps = _prepare_all(plan.names, moms, measure, keep, variance, epsilon)
        f32 = precision == "float32"
        work = torch.float32 if f32 else torch.float64
        transforms = [
            None if r.transform is None else torch.from_numpy(r.transform).to(dev, work)
            for r in reps
        ]
        means = [torch.from_numpy(m.mean_x).to(dev) for m in moms]
        inv_scales = [1.0 / m.scale_x for m in moms]
        widths = [s.p if T is None else T.shape[1] for T, s in zip(transforms, srcs, strict=True)]
        wr = sum(widths[u] for u in plan.row_u)
        wc = wr if plan.square else sum(widths[u] for u in plan.col_u)
        size = 4 if f32 else 8
        rows2 = plan_rows(
            fixed=(12 if f32 else 8) * wr * wc,  # float64 sums, a float32 product block
            per_row=(8 + size) * sum(s.p for s in srcs) + size * (wr + wc),
            device=dev,
            what=f"pairwise's cross blocks ({wr} x {wc}) in {precision}",
            lower=(
                f"They take {format_bytes(8 * wr * wc)}: compare fewer or narrower "
                "representations per call (rows and cols), or run on the host: with "
                "svcca.on_device(None): ..."
            ),
            most=FLOAT32_CHUNK_ROWS if f32 else (most or 1 << 16),
            least=min(256, n),
        )
        if most is not None:
            rows2 = min(rows2, most)
        bar.retotal(-(-n // rows1) + -(-n // rows2) + len(plan.row_u) * len(plan.col_u))
        # [[C, sa], [sb^T, 0]] as on the host (_cross_block, _centred_cross).
        C = torch.zeros((wr + 1, wc + 1), dtype=torch.float64, device=dev)
        need = list(dict.fromkeys([*plan.row_u, *plan.col_u]))
        with torch.no_grad(), exact_products(dev):
            for start in range(0, n, rows2):
                stop = min(start + rows2, n)
                part = {}
                for u in need:
                    b = srcs[u].obj[start:stop].detach().to(torch.float64) - means[u]
                    if inv_scales[u] != 1.0:
                        b *= inv_scales[u]
                    b = b.to(work)
                    T = transforms[u]
                    part[u] = b if T is None else b @ T
                A = torch.cat([part[u] for u in plan.row_u], dim=1)
                B = A if plan.square else torch.cat([part[u] for u in plan.col_u], dim=1)
                if f32:
                    C[:-1, :-1] += A.mT @ B
                else:
                    C[:-1, :-1].addmm_(A.mT, B)
                C[:-1, -1] += A.sum(dim=0, dtype=torch.float64)
                C[-1, :-1] += B.sum(dim=0, dtype=torch.float64)
                bar.update(1)
        host = _centred_cross(np.asarray(C.cpu().numpy()), n)
        del C
        with dense_steps(max(widths), dev):
            values = _scores(host, reps, widths, plan.row_u, plan.col_u, measure, plan.square, bar)
    finally:
        bar.close()
    return values, reps


def _dask_or_array(s: Source, n: int) -> Any:
    return s.obj if s.kind == "dask" else s.read(0, n)
