"""SVCCA for layers too wide for a ``d x d`` moment: Frequent Directions, then a second pass."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

import svcca._dense as _dense
from svcca._measures._linalg import flip_signs, numerical_rank, sym_eig_desc
from svcca._measures._svcca import ReducedSide, Variance, n_directions, svcca_from_reduced
from svcca._moments import Moments, chunk_rows, column_means, scale_for, top_of
from svcca._sources import as_source, check_same_n
from svcca._validation import (
    SVCCAWarning,
    as_representation,
    check_int,
    check_keep,
    check_keep_fits,
    check_option,
    check_probability,
    raise_degenerate,
    warn_few_samples,
)

__all__ = ["svcca_two_pass"]


class FrequentDirections:
    """Liberty's Frequent Directions sketch of the centred scatter of a stream of rows.

    Keeps ``B`` (at most ``2 l`` rows of width ``d``) with
    ``0 <= S - B^T B <= (||X_c||_F^2 - ||B||_F^2) / l`` in the Loewner order, where ``S``
    is the centred scatter. Centring without knowing the mean: each chunk enters centred
    on its own mean, and each merge of the running mean with a chunk mean enters as the
    one row ``sqrt(n_a n_b / n) (m_b - m_a)`` (the Chan et al. update), so the rows fed to
    the sketch have exactly the centred scatter as their Gram matrix.
    """

    def __init__(self, d: int, ell: int) -> None:
        self.ell = ell
        self.buf = np.zeros((2 * ell, d))
        self.filled = 0
        self.n = 0
        self.mean = np.zeros(d)  # in the data's units
        self.total = 0.0  # exact trace of the centred scatter, in units of unit^2
        # The power of two the centred rows are divided by (Moments.scale_x), decided by
        # the first chunk with any spread: the sketch, total and scatter are in its units.
        self.unit: float | None = None

    def _push(self, rows: np.ndarray) -> None:
        i = 0
        while i < rows.shape[0]:
            take = min(rows.shape[0] - i, self.buf.shape[0] - self.filled)
            self.buf[self.filled : self.filled + take] = rows[i : i + take]
            self.filled += take
            i += take
            if self.filled == self.buf.shape[0]:
                self._shrink()

    def _shrink(self) -> None:
        _, s, vt = _dense.svd(self.buf[: self.filled])
        ell = self.ell
        if s.size > ell:
            s2 = np.maximum(s[:ell] ** 2 - s[ell] ** 2, 0.0)
        else:
            s2 = s**2
        keep = s2.size
        self.buf[:] = 0.0
        self.buf[:keep] = np.sqrt(s2)[:, None] * vt[:keep]
        self.filled = keep

    def update(self, block: np.ndarray) -> None:
        """Add a float64 chunk (it is centred in place)."""
        nb = block.shape[0]
        mb = column_means(block)
        block -= mb
        if self.unit is None:
            top = top_of(block)
            self.unit = scale_for(top, "float64") if np.isfinite(top) and top > 0 else None
        if self.unit not in (None, 1.0):
            block *= 1.0 / self.unit  # type: ignore[operator]  # exact
        self.total += float(np.einsum("ij,ij->", block, block))
        if self.n:
            tot = self.n + nb
            d = mb - self.mean
            row = np.sqrt(self.n * nb / tot) * (d / (self.unit or 1.0))
            self.total += float(row @ row)
            self._push(row[None, :])
            self.mean += d * (nb / tot)
            self.n = tot
        else:
            self.mean, self.n = mb, nb
        self._push(block)

    def directions(self) -> tuple[np.ndarray, np.ndarray]:
        """Estimated eigenvalues (descending) and directions ``(d, r)`` of the scatter."""
        _, s, vt = _dense.svd(self.buf[: self.filled])
        V, _ = flip_signs(vt[: self.ell].T)
        return s[: self.ell] ** 2, V


def _batches_of(
    X: Any, Y: Any, chunk_size: int | None
) -> tuple[Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], int, int]:
    """A re-startable iterator over float64 ``(x, y)`` chunks, and the widths ``(p, q)``."""
    if callable(X) and Y is None and not hasattr(X, "shape"):
        first = next(iter(X()), None)
        if first is None or not (isinstance(first, tuple) and len(first) == 2):
            raise TypeError(
                "A callable X must return a fresh iterable of (x_batch, y_batch) pairs each "
                "time it is called (two passes are made)."
            )
        p = as_representation(first[0], "X of batch 0").shape[1]
        q = as_representation(first[1], "Y of batch 0").shape[1]

        def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for i, (xb, yb) in enumerate(X()):
                a = np.array(as_representation(xb, f"X of batch {i}"), dtype=np.float64)
                b = np.array(as_representation(yb, f"Y of batch {i}"), dtype=np.float64)
                if a.shape[1] != p or b.shape[1] != q or a.shape[0] != b.shape[0]:
                    raise ValueError(
                        f"Batch {i} has shapes {a.shape} and {b.shape}; expected (m, {p}) "
                        f"and (m, {q}) with the same m, like batch 0."
                    )
                yield a, b

        return gen, p, q
    if Y is None:
        raise TypeError("svcca_two_pass compares two representations: pass X and Y.")
    sx, sy = as_source(X, "X"), as_source(Y, "Y")
    check_same_n([sx, sy])
    rows = chunk_rows(sx.p + sy.p, chunk_size, n=sx.n)

    def gen2() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, sx.n, rows):
            stop = min(start + rows, sx.n)
            yield sx.read(start, stop), sy.read(start, stop)

    return gen2, sx.p, sy.p


def ritz_side(
    S: np.ndarray,
    basis: np.ndarray,
    mean: np.ndarray,
    total: float,
    keep: float | int,
    variance: Variance,
    name: str,
    scale: float = 1.0,
) -> tuple[ReducedSide, np.ndarray]:
    """SVCCA's side from the exact moments ``S`` of the data projected on a sketched basis.

    Rayleigh-Ritz: the exact variances inside the sketched subspace (``basis``, ``d x
    l``) choose and rotate the kept directions with :func:`n_directions`, measured
    against the exact ``total`` variance. Returns the side and the rotation ``U_k``
    (``l x k``) from sketch coordinates to the kept directions.
    """
    with _dense.factorising(f"representation {name}"):
        w, U = sym_eig_desc(S)
    r = numerical_rank(w)
    if r == 0:
        raise_degenerate(name, basis.shape[0], "it is constant (no direction has any variance)")
    # Without every singular value the tutorial's convention cannot be normalised
    # exactly: "singular_values" uses the sketch's own values (a lower bound on the share).
    check_keep_fits(keep, basis.shape[0], name)
    k = n_directions(
        w[:r], keep, variance, total if variance == "explained" else None, f"the sketch of {name}"
    )
    if not isinstance(keep, int) and variance == "explained" and w[:r].sum() < keep * total:
        warnings.warn(
            f"The sketch of {name} holds {r} directions explaining "
            f"{w[:r].sum() / total:.4f} of the variance, less than keep={keep}; all {r} are "
            "kept. Pass a larger sketch_size or keep as a count.",
            SVCCAWarning,
            stacklevel=3,
        )
    Uk = U[:, :k]
    share = float(w[:k].sum() / total)
    return ReducedSide(name, w[:k], basis @ Uk, mean, share, scale=scale), Uk


def svcca_two_pass(
    X: Any,
    Y: Any = None,
    *,
    keep: float | int = 0.99,
    sketch_size: int | None = None,
    variance: Literal["explained", "singular_values"] = "explained",
    threshold: float = 0.98,
    chunk_size: int | None = None,
):
    """SVCCA for layers too wide for a ``d x d`` moment, in two passes over the data.

    Pass one sketches each layer's centred scatter with Frequent Directions (memory
    ``O(sketch_size * d)``, never ``d x d``); the sketch's right singular vectors span an
    ``l``-dimensional subspace close to the top singular subspace. Pass two projects
    every chunk onto those subspaces and gathers the exact joint moments of the reduced
    ``(n, l)`` representations. Their exact variances (Rayleigh-Ritz) choose and rotate
    the ``k`` kept directions per side; CCA of the reduced moments is the result.

    Parameters
    ----------
    X, Y : array_like, np.memmap, h5py/zarr dataset, torch tensor or dask array, shape (n, d)
        Or ``X`` a callable returning a fresh iterable of ``(x_batch, y_batch)`` pairs
        (it is called twice) and ``Y`` omitted.
    keep : float in (0, 1] or int, default 0.99
        Directions kept per side, as in :func:`svcca.svcca`. A fraction is measured
        against the exact total variance (computed in pass one).
    sketch_size : int, optional
        Rows of the sketch, ``l``. Default ``max(2 k, k + 32)`` for a count ``k`` and 512
        for a fraction; capped at ``d``.
    variance, threshold
        As in :func:`svcca.svcca`.
    chunk_size : int, optional
        Rows read per chunk.

    Returns
    -------
    SVCCAResult
        ``variance_kept_x/y`` is the exact share of variance in the kept subspace
        (measured in pass two).

    Notes
    -----
    Frequent Directions guarantees ``0 <= S - B^T B <= ||X_c - [X_c]_k||_F^2 / (l - k)``
    (Liberty 2013; Ghashami et al. 2016), so the kept subspace is close to the exact top
    singular subspace when the spectrum has a gap after ``k`` and ``l`` is a few times
    ``k``. The canonical correlations depend only on that subspace, not on a basis of it.

    References
    ----------
    .. [1] E. Liberty, "Simple and deterministic matrix sketching", KDD 2013.
    .. [2] M. Ghashami, E. Liberty, J. M. Phillips, D. P. Woodruff, "Frequent Directions:
       simple and deterministic matrix sketching", SIAM J. Comput. 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca import svcca_two_pass
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((3000, 5))
    >>> X = Z @ rng.standard_normal((5, 400)) + 0.01 * rng.standard_normal((3000, 400))
    >>> Y = Z @ rng.standard_normal((5, 300)) + 0.01 * rng.standard_normal((3000, 300))
    >>> r = svcca_two_pass(X, Y, keep=5)
    >>> r.kept_x, round(r.score, 3)
    (5, 1.0)
    """
    keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    threshold = check_probability(threshold, "threshold")
    gen, p, q = _batches_of(X, Y, chunk_size)
    if sketch_size is None:
        ell = max(2 * keep, keep + 32) if isinstance(keep, int) else 512
    else:
        sketch_size = check_int(
            sketch_size,
            "sketch_size",
            minimum=keep if isinstance(keep, int) else 1,
            fix="The sketch must hold at least the kept directions.",
        )
        ell = int(sketch_size)
    fx, fy = FrequentDirections(p, min(ell, p)), FrequentDirections(q, min(ell, q))
    for xb, yb in gen():  # pass one: sketches, means, total variances
        fx.update(xb)
        fy.update(yb)
    n = fx.n
    if n < 2:
        raise ValueError(f"At least 2 samples are needed; got {n}.")
    _, Vx = fx.directions()
    _, Vy = fy.directions()
    lx, ly = Vx.shape[1], Vy.shape[1]
    # Pass two: exact moments of the data projected on the whole sketched subspaces.
    R = Moments.empty(lx, ly)
    ux, uy = fx.unit or 1.0, fy.unit or 1.0
    for xb, yb in gen():
        a = ((xb - fx.mean) / ux) @ Vx  # in each side's units, as the sketch
        b = ((yb - fy.mean) / uy) @ Vy
        R.merge_in_place(Moments(a.shape[0], np.zeros(lx), np.zeros(ly), a.T @ a, b.T @ b, a.T @ b))
    # Rayleigh-Ritz: the exact variances inside each subspace choose and rotate the kept
    # directions (more accurate than the sketch's own, shrunken, estimates).
    rx, Ux = ritz_side(R.sxx, Vx, fx.mean, fx.total, keep, variance, "X", scale=ux)
    ry, Uy = ritz_side(R.syy, Vy, fy.mean, fy.total, keep, variance, "Y", scale=uy)
    res = svcca_from_reduced(
        n, rx, ry, Ux.T @ R.sxy @ Uy, keep=keep, variance=variance, threshold=threshold
    )
    warn_few_samples(n, rx.k, ry.k)
    return res
