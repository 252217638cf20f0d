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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from svcca._progress import Progress as _Progress  # the one progress contract
from svcca._validation import check_chunk_size, check_epsilon, check_int, check_keep, check_option
from svcca.measures._linalg import NUMERICAL_RTOL, Whitener, flip_signs, prune, sym_eig_desc
from svcca.measures._svcca import Variance
from svcca.sources._sources import (
    Source,
    _chunk_stats,
    as_source,
    check_same_n,
    chunk_moments,
    is_dask_array,
)
from svcca.statistic._moments import Moments

__all__ = ["PairwiseResult", "pairwise"]

Measure = Literal["cca", "svcca", "pwcca", "pls", "cka_linear"]
MEASURES = ("cca", "svcca", "pwcca", "pls", "cka_linear")
_SYMMETRIC = {"cca", "svcca", "pls", "cka_linear"}
# Rows per chunk of a pass: each float64 chunk of all representations side by side is
# about this large (at least 1024 rows, so the GEMMs stay efficient).
_PASS_BYTES = 64 * 2**20


@dataclass(frozen=True)
class PairwiseResult:
    """A labelled matrix of similarities between named representations.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_cols)
        ``values[i, j]`` compares representation ``rows[i]`` with ``cols[j]``: the
        measure's ``.score`` (mean canonical correlation for ``"cca"`` and ``"svcca"``,
        the projection-weighted mean for ``"pwcca"`` with ``rows[i]`` as ``X``, linear
        CKA for ``"pls"`` and ``"cka_linear"``).
    rows, cols : tuple of str
        Labels, in order.
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
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    measure: str
    settings: Mapping[str, Any]
    n_samples: int
    dims_rows: tuple[int, ...]
    dims_cols: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int]:
        """``(len(rows), len(cols))``."""
        return (len(self.rows), len(self.cols))

    def __getitem__(self, key: tuple[str | int, str | int]) -> float:
        """``result["conv1", "conv2"]`` (labels) or ``result[0, 1]`` (positions)."""
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(f"Index with a (row, col) pair of labels or positions; got {key!r}.")
        i = self._index(key[0], self.rows, "row")
        j = self._index(key[1], self.cols, "column")
        return float(self.values[i, j])

    @staticmethod
    def _index(k: str | int, labels: tuple[str, ...], what: str) -> int:
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            return int(k)
        if k not in labels:
            raise KeyError(f"No {what} labelled {k!r}; {what}s are {list(labels)}.")
        return labels.index(k)  # type: ignore[arg-type]

    def to_pandas(self) -> Any:
        """The matrix as a ``pandas.DataFrame`` indexed by row and column labels."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_pandas() needs pandas: pip install 'svcca[pandas]'. The values are in "
                ".values, the labels in .rows and .cols."
            ) from exc
        df = pd.DataFrame(self.values, index=list(self.rows), columns=list(self.cols))
        df.attrs["measure"] = self.measure
        df.attrs["settings"] = dict(self.settings)
        return df

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types (lists, floats, str), ready for ``json.dump``."""
        return {
            "measure": self.measure,
            "settings": dict(self.settings),
            "n_samples": self.n_samples,
            "rows": list(self.rows),
            "cols": list(self.cols),
            "dims_rows": list(self.dims_rows),
            "dims_cols": list(self.dims_cols),
            "values": self.values.tolist(),
        }


# ---------------------------------------------------------------------- inputs
def _named(reps: Any, what: str) -> list[tuple[str, Any]]:
    if isinstance(reps, Mapping):
        items = [(str(k), v) for k, v in reps.items()]
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


def _pass_rows(width: int, n: int, chunk_size: int | None) -> int:
    chunk_size = check_chunk_size(chunk_size)
    if chunk_size is not None:
        return chunk_size
    return max(1, min(n, max(1024, _PASS_BYTES // (8 * max(width, 1)))))


# ---------------------------------------------------------------------- the two passes
def _cross_block(
    blocks: list[np.ndarray],
    means: list[np.ndarray],
    transforms: list[np.ndarray | None],
    row_u: list[int],
    col_u: list[int] | None,
    work: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """``A^T B`` for one chunk: A (B) the centred, transformed row (column) reps side by side.

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

    def buffer(key: str, shape: tuple[int, int]) -> np.ndarray:
        if work is None:
            return np.empty(shape)
        buf = work.get(key)
        if buf is None or buf.shape[1] < shape[1] or buf.shape[0] != shape[0]:
            buf = work[key] = np.empty(shape)
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
                T = transforms[u]
                if T is None:
                    dst[:] = b.T
                else:
                    np.matmul(T.T, b.T, out=dst)
                done[u] = dst
            off += width[u]
        return out

    done: dict[int, np.ndarray] = {}
    At = panel("At", row_u, done)
    Bt = At if col_u is None else panel("Bt", col_u, done)
    if work is None:
        return At @ Bt.T
    return np.matmul(At, Bt.T, out=buffer("C", (At.shape[0], Bt.shape[0])))


def _pass1_local(srcs: list[Source], n: int, rows: int, bar: _Progress) -> list[Moments]:
    moms = [Moments.empty(s.p) for s in srcs]
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        for m, s in zip(moms, srcs, strict=True):
            m._merge_in_place(
                chunk_moments(s.read(start, stop), None, (f"Representation {s.name!r}", ""), start)
            )
        bar.update(1)
    return moms


def _pass2_local(
    srcs: list[Source],
    n: int,
    rows: int,
    args: tuple[Any, ...],
    bar: _Progress,
) -> np.ndarray:
    means, transforms, row_u, col_u = args
    total: np.ndarray | None = None
    work: dict[str, np.ndarray] = {}
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        blocks = [s.read(start, stop) for s in srcs]
        part = _cross_block(blocks, means, transforms, row_u, col_u, work)
        if total is None:
            total = part.copy()
        else:
            total += part
        bar.update(1)
    assert total is not None
    return total


# ---------------------------------------------------------------------- per-pair work
def _eig_correlations(M: np.ndarray) -> np.ndarray:
    """Singular values of ``M`` via the smaller Gram matrix (as ``svcca.cca`` does)."""
    if M.size == 0:
        return np.zeros(0)
    G = M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M
    rho2 = np.linalg.eigvalsh(G)[::-1]
    return np.sqrt(np.clip(rho2, 0.0, 1.0))


class _Rep:
    """Per-representation quantities derived from its Gram matrix, computed once."""

    __slots__ = ("kept", "white", "transform", "dim", "gram_norm")

    def __init__(self, m: Moments, measure: str, keep: float | int, variance: str, eps: float):
        from svcca.measures._svcca import n_directions

        self.kept: np.ndarray | None = None
        self.white: Whitener | None = None
        self.transform: np.ndarray | None = None
        self.gram_norm = float(np.linalg.norm(m.sxx))
        if measure == "svcca":
            w, V = sym_eig_desc(m.sxx)
            nonzero = w > (w[0] * NUMERICAL_RTOL if w.size and w[0] > 0 else 0.0)
            w, V = w[nonzero], V[:, nonzero]
            k = n_directions(w, keep, variance) if w.size else 0  # type: ignore[arg-type]
            # Project on the kept directions and whiten them: the cross block of two
            # such representations is the CCA matrix M of their reduced moments.
            self.transform = V[:, :k] / np.sqrt(w[:k])
            self.dim = k
        elif measure in ("cca", "pwcca"):
            self.kept, _ = prune(np.diag(m.sxx).copy(), eps)
            if self.kept.size:
                self.white = Whitener.fit(m.sxx[np.ix_(self.kept, self.kept)])
            self.dim = self.white.rank if self.white is not None else 0
        else:
            self.dim = m.p


def _pwcca_score(M: np.ndarray, rx: _Rep, ry: _Rep) -> float:
    """PWCCA from the whitened cross block, following ``svcca.pwcca`` step by step."""
    if M.size == 0:
        return 0.0
    assert rx.kept is not None and ry.kept is not None
    side_x = rx.kept.size <= ry.kept.size
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    U, V = flip_signs(U, Vt.T)
    rho = np.clip(s, 0.0, 1.0)
    white = rx.white if side_x else ry.white
    assert white is not None and V is not None
    proj = np.abs(white.colour(U if side_x else V)).sum(axis=0)
    total = proj.sum()
    weights = proj / total if total > 0 else np.full(proj.size, 1.0 / proj.size)
    return float(weights @ rho)


def _scores(
    C: np.ndarray,
    reps: list[_Rep],
    moms: list[Moments],
    row_u: list[int],
    col_u: list[int],
    measure: str,
    square: bool,
    bar: _Progress,
) -> np.ndarray:
    widths = [
        r.transform.shape[1] if r.transform is not None else m.p
        for r, m in zip(reps, moms, strict=True)
    ]
    roff = np.concatenate([[0], np.cumsum([widths[u] for u in row_u])])
    coff = np.concatenate([[0], np.cumsum([widths[u] for u in col_u])])
    out = np.zeros((len(row_u), len(col_u)))
    whitened = measure in ("cca", "pwcca")
    if whitened:
        # Whiten every row stripe from the left, then every column stripe from the right:
        # two batched triangular solves per representation instead of two per pair.
        left = []
        for i, u in enumerate(row_u):
            r = reps[u]
            stripe = C[roff[i] : roff[i + 1]]
            left.append(
                None if r.white is None else r.white.apply_t(stripe[r.kept])  # type: ignore[index]
            )
    for i, ui in enumerate(row_u):
        for j, uj in enumerate(col_u):
            if square and measure in _SYMMETRIC and j < i:
                out[i, j] = out[j, i]
                bar.update(1)
                continue
            ri, rj = reps[ui], reps[uj]
            if measure == "svcca":
                M = C[roff[i] : roff[i + 1], coff[j] : coff[j + 1]]
                rho = _eig_correlations(M)
                out[i, j] = float(rho.mean()) if rho.size else 0.0
            elif whitened:
                L = left[i]
                if L is None or rj.white is None:
                    out[i, j] = 0.0
                else:
                    sub = L[:, coff[j] + rj.kept]  # type: ignore[operator]
                    M = rj.white.apply_t(sub.T).T
                    if measure == "cca":
                        rho = _eig_correlations(M)
                        out[i, j] = float(rho.mean()) if rho.size else 0.0
                    else:
                        out[i, j] = _pwcca_score(M, ri, rj)
            else:
                S = C[roff[i] : roff[i + 1], coff[j] : coff[j + 1]]
                norm = ri.gram_norm * rj.gram_norm
                score = float(np.sum(S * S) / norm) if norm > 0 else 0.0
                # svcca.pls clips round-off above 1; svcca.cka reports the ratio as is.
                out[i, j] = min(score, 1.0) if measure == "pls" else score
            bar.update(1)
    return out


def _sketched_svcca(
    srcs: list[Source],
    n: int,
    row_u: list[int],
    col_u: list[int],
    keep: float | int,
    variance: str,
    ell: int,
    chunk_size: int | None,
    progress: bool | None,
) -> tuple[np.ndarray, list[int]]:
    """SVCCA for wide layers: Frequent Directions, then Rayleigh-Ritz in the sketches."""
    from svcca.measures._two_pass import _choose_k, _FrequentDirections

    rows1 = _pass_rows(sum(s.p for s in srcs), n, chunk_size)
    fds = [_FrequentDirections(s.p, min(ell, s.p)) for s in srcs]
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
        args = ([fd.mean for fd in fds], bases, uniq, None)
        rows2 = _pass_rows(sum(b.shape[1] for b in bases), n, chunk_size)
        bar.retotal(n_chunks + -(-n // rows2) + len(row_u) * len(col_u))
        C = _pass2_local(srcs, n, rows2, args, bar)
        off = np.concatenate([[0], np.cumsum([b.shape[1] for b in bases])])
        Q: list[np.ndarray] = []
        dims: list[int] = []
        for u, fd in enumerate(fds):
            w, U = sym_eig_desc(C[off[u] : off[u + 1], off[u] : off[u + 1]])
            k = _choose_k(w, fd.total, keep, variance, srcs[u].name)
            Q.append(U[:, :k] / np.sqrt(w[:k]))
            dims.append(k)
        out = np.zeros((len(row_u), len(col_u)))
        for i, ui in enumerate(row_u):
            for j, uj in enumerate(col_u):
                block = C[off[ui] : off[ui + 1], off[uj] : off[uj + 1]]
                rho = _eig_correlations(Q[ui].T @ block @ Q[uj])
                out[i, j] = float(rho.mean()) if rho.size else 0.0
                bar.update(1)
    finally:
        bar.close()
    return out, dims


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
) -> PairwiseResult:
    """Compare every representation with every other (or every row with every column).

    Parameters
    ----------
    rows : mapping of str to representation, or sequence of representations
        Each representation is ``(n_samples, p_i)``, all on the same datapoints: NumPy
        arrays, ``np.memmap`` files (``np.load(path, mmap_mode="r")``), paths to
        ``.npy`` files, h5py/zarr datasets, torch tensors or dask arrays. A sequence is
        labelled ``"0"``, ``"1"``, ...
    cols : same, optional
        Omitted: all pairs of ``rows`` (a square, symmetric matrix for symmetric
        measures). Given: the rectangular matrix ``rows x cols`` (e.g. layers at a
        checkpoint against the final model's layers). An object that appears in both
        is read and decomposed once.
    measure : {"svcca", "cca", "pwcca", "pls", "cka_linear"}, default "svcca"
        ``"pls"`` and ``"cka_linear"`` both give linear CKA (``svcca.pls(...).score``).
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
        Show a progress bar on stderr (tqdm if installed). ``None``: only when stderr
        is a terminal.

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
    measure = check_option(
        measure,
        "measure",
        MEASURES,
        fix="For RBF CKA or other sample-based measures, loop over pairs with that function.",
    )  # type: ignore[assignment]
    keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    epsilon = check_epsilon(epsilon)
    if sketch_size is not None:
        sketch_size = check_int(sketch_size, "sketch_size")
        if measure != "svcca":
            raise ValueError(
                f"sketch_size applies to measure='svcca' only (got measure={measure!r}); "
                "CCA, PWCCA and CKA need every feature's full Gram matrix."
            )
    row_items = _named(rows, "rows")
    col_items = None if cols is None else _named(cols, "cols")
    square = col_items is None

    # Unique representations, by identity: a layer in both rows and cols is read once.
    objs: list[Any] = []
    names: list[str] = []
    index: dict[int, int] = {}

    def uid(name: str, obj: Any) -> int:
        if id(obj) not in index:
            index[id(obj)] = len(objs)
            objs.append(obj)
            names.append(name)
        return index[id(obj)]

    row_u = [uid(k, v) for k, v in row_items]
    col_u = row_u if square else [uid(k, v) for k, v in col_items]  # type: ignore[union-attr]
    srcs = [as_source(o, f"representation {nm!r}") for o, nm in zip(objs, names, strict=True)]
    for s, nm in zip(srcs, names, strict=True):
        s.name = nm
    n = check_same_n(srcs)
    if n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {n}.")

    use_dask = any(is_dask_array(o) for o in objs)
    if sketch_size is not None:
        if use_dask:
            raise ValueError(
                "sketch_size is not supported with dask inputs; compute on the cluster "
                "without it, or pass NumPy arrays / memmaps."
            )
        values, dims = _sketched_svcca(
            srcs, n, row_u, col_u, keep, variance, int(sketch_size), chunk_size, progress
        )
        return PairwiseResult(
            values=values,
            rows=tuple(k for k, _ in row_items),
            cols=tuple(k for k, _ in (row_items if square else col_items)),  # type: ignore[union-attr]
            measure=measure,
            settings={"keep": keep, "variance": variance, "sketch_size": int(sketch_size)},
            n_samples=n,
            dims_rows=tuple(dims[u] for u in row_u),
            dims_cols=tuple(dims[u] for u in col_u),
        )
    width1 = sum(s.p for s in srcs)
    rows1 = _pass_rows(width1, n, chunk_size)
    n_chunks1 = -(-n // rows1)
    n_pairs = len(row_u) * len(col_u)
    bar = _Progress(progress, total=(n_chunks1 if not use_dask else 1) * 2 + n_pairs, desc="pairs")
    try:
        if use_dask:
            from svcca.sources._dask import per_rep_moments_dask

            moms = per_rep_moments_dask(
                [s.obj if s.kind == "dask" else s.read(0, n) for s in srcs], names
            )
            bar.update(1)
        else:
            moms = _pass1_local(srcs, n, rows1, bar)
        reps = [_Rep(m, measure, keep, variance, epsilon) for m in moms]
        means = [m.mean_x for m in moms]
        transforms = [r.transform for r in reps]
        args = (means, transforms, row_u, None if square else col_u)
        if use_dask:
            from svcca.sources._dask import cross_products_dask

            C = cross_products_dask(
                [s.obj if s.kind == "dask" else s.read(0, n) for s in srcs], _cross_block, args
            )
            bar.update(1)
        else:
            width2 = sum(
                t.shape[1] if t is not None else s.p for t, s in zip(transforms, srcs, strict=True)
            )
            rows2 = _pass_rows(width2, n, chunk_size)
            bar.retotal(bar.total + -(-n // rows2) - n_chunks1)
            C = _pass2_local(srcs, n, rows2, args, bar)
        values = _scores(C, reps, moms, row_u, col_u, measure, square, bar)
    finally:
        bar.close()

    settings: dict[str, Any]
    if measure == "svcca":
        settings = {"keep": keep, "variance": variance}
    elif measure in ("cca", "pwcca"):
        settings = {"epsilon": epsilon}
    else:
        settings = {}
    return PairwiseResult(
        values=values,
        rows=tuple(k for k, _ in row_items),
        cols=tuple(k for k, _ in (row_items if square else col_items)),  # type: ignore[union-attr]
        measure=measure,
        settings=settings,
        n_samples=n,
        dims_rows=tuple(reps[u].dim for u in row_u),
        dims_cols=tuple(reps[u].dim for u in col_u),
    )
