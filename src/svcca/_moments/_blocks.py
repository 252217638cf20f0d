"""Per-block statistics accumulated in one pass: the raw material of every interval.

A moments measure is a function of the count, means and centred cross-products of the
rows (:class:`svcca.Moments`). Those are sums over rows, so the statistics of any union
of row sets follow from the statistics of its parts (Chan's merge) and, in reverse, the
statistics of "everything but this part" follow from the total and the part
(:func:`subtract_moments`). One pass that keeps one ``Moments`` per block of rows
therefore gives every delete-a-block jackknife replicate and every k-fold train/test
split at no further cost over the data.

Rows are assigned to blocks by a seeded hash of their *global* row index
(:func:`block_of`), never by their position in a batch: loaders are often sorted by
class, so contiguous blocks would each hold one class and the jackknife would measure
the spread between classes instead of the sampling spread. The hash makes the
assignment independent of how the rows are batched, so an array and the same rows fed
as batches give the same blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from svcca._device import DeviceMemoryError, free_bytes
from svcca._moments._moments import Moments

__all__ = [
    "BlockMoments",
    "PoissonMoments",
    "block_of",
    "jackknife_blocks",
    "poisson_weights",
    "subtract_moments",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele, Lea & Flood 2014) on uint64, wrapping."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _hash(rows: np.ndarray, seed: int, stream: int = 0) -> np.ndarray:
    """A 64-bit hash of each global row index, keyed by ``seed`` and ``stream``."""
    with np.errstate(over="ignore"):
        key = _mix(np.array([np.uint64(seed)]) + np.uint64(stream) * _GOLDEN)
        return _mix(rows.astype(np.uint64) * _GOLDEN + key[0])


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    return int(seed)


def check_count(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an int >= {least}; got {value!r}.")
    return int(value)


def block_of(rows: Any, blocks: int, seed: int = 0) -> np.ndarray:
    """The block of each global row index: a seeded hash modulo ``blocks``.

    Parameters
    ----------
    rows : array_like of int, shape (n,)
        Global row indices (the position of each row in the whole data set).
    blocks : int
        Number of blocks ``G >= 2``.
    seed : int, default 0

    Returns
    -------
    ndarray of int64, shape (n,)
        Values in ``[0, G)``. The same row gets the same block whatever the batching.

    Notes
    -----
    ``block = splitmix64(row * phi + key(seed)) mod G``: the splitmix64 finaliser is a
    bijection of 64-bit integers that passes BigCrush, so the blocks are an i.i.d.-like
    random partition, unrelated to the order of the rows (a loader sorted by class puts
    every class in every block). Block sizes are multinomial, not equal; the jackknife
    used here weighs unequal blocks (Busing, Meijer & van der Leeden 1999).

    Examples
    --------
    >>> from svcca.stats import block_of
    >>> b = block_of(range(1000), 10, seed=0)
    >>> int(b.min()), int(b.max()), bool((block_of(range(500, 1000), 10) == b[500:]).all())
    (0, 9, True)
    """
    blocks = check_count(blocks, "blocks", 2)
    seed = check_seed(seed)
    r = np.asarray(rows)
    if r.ndim != 1 or (r.size and (not np.issubdtype(r.dtype, np.integer) or r.min() < 0)):
        raise ValueError(
            "rows must be a 1-D array of non-negative integer row indices; got "
            f"dtype {r.dtype}, shape {r.shape}."
        )
    return (_hash(r, seed) % np.uint64(blocks)).astype(np.int64)


_POISSON1_CDF = np.cumsum(
    [np.exp(-1.0) / float(np.prod(np.arange(1, k + 1, dtype=np.float64))) for k in range(20)]
)


def jackknife_blocks(sizes: np.ndarray) -> np.ndarray:
    """The blocks that hold rows (indices into ``sizes``, the rows per block); a
    jackknife leaves each out in turn, so fewer than 2 are refused."""
    used = np.flatnonzero(sizes)
    if used.size < 2:
        raise ValueError(
            f"Only {used.size} of {len(sizes)} blocks hold rows; a jackknife needs at least 2. "
            "Use more rows or fewer blocks."
        )
    return used


def poisson_weights(rows: Any, replicates: int, seed: int = 0) -> np.ndarray:
    """Poisson(1) weights of each global row in each bootstrap replicate.

    Parameters
    ----------
    rows : array_like of int, shape (n,)
    replicates : int
    seed : int, default 0

    Returns
    -------
    ndarray of int64, shape (n, replicates)
        ``w[i, r]``: how many times row ``i`` appears in replicate ``r``; a function of
        ``(seed, i, r)`` only, so any batching gives the same replicates.

    Notes
    -----
    The Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al. 2012) draws each
    row's multiplicity independently from Poisson(1) instead of a multinomial of ``n``
    draws: the replicate size varies (mean ``n``) but each replicate can be built as the
    rows go by, with no knowledge of ``n``. The uniform is the top 53 bits of a
    splitmix64 hash of ``(seed, replicate, row)``, inverted through the Poisson(1)
    CDF.
    """
    replicates = check_count(replicates, "replicates", 1)
    seed = check_seed(seed)
    r = np.asarray(rows, dtype=np.int64)
    out = np.empty((r.shape[0], replicates), dtype=np.int64)
    for k in range(replicates):
        u = (_hash(r, seed, stream=k + 1) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        out[:, k] = np.searchsorted(_POISSON1_CDF, u, side="right")
    return out


def subtract_moments(total: Moments, part: Moments) -> Moments:
    """The statistic of the rows of ``total`` that are not in ``part``: Chan's merge undone.

    Parameters
    ----------
    total : Moments
        Statistic of a set of rows.
    part : Moments
        Statistic of a subset of those rows (fewer rows than ``total``).

    Returns
    -------
    Moments
        The statistic of the rest, ``n_a = n - n_b`` rows.

    Notes
    -----
    Chan, Golub & LeVeque's merge of ``a`` and ``b`` is
    ``S = S_a + S_b + (n_a n_b / n) (m_b - m_a)(m_b - m_a)^T`` with
    ``n m = n_a m_a + n_b m_b``. Solving for ``a``, with ``e = m_b - m`` (the part's
    mean against the total's, no large means cancelled):

    .. math::

        m_a = m - \\frac{n_b}{n_a} e, \\qquad
        S_a = S - S_b - \\frac{n\\, n_b}{n_a} e e^T,

    the same for ``yy`` and ``xy``. Round-off: each entry of ``S_a`` carries an absolute
    error of a few ``eps * (|S| + |S_b|)``, so relative to ``S_a`` it is about
    ``eps * n / n_a``: harmless for the leave-one-block-out and train-fold statistics
    (``n_a >= n / 2``), where it is the round-off of a merge. Subtracting most of the
    rows (``n_a << n``) would amplify it by ``n / n_a``; build such small statistics
    from their own blocks instead (:meth:`BlockMoments.block`). The sums are expressed
    in the larger of the two scales (powers of two, exact).
    """
    if not isinstance(total, Moments) or not isinstance(part, Moments):
        raise TypeError("subtract_moments expects two Moments (the total and a part of it).")
    if (total.p, total.q) != (part.p, part.q):
        raise ValueError(
            f"Cannot subtract Moments of widths (p={part.p}, q={part.q}) from Moments of "
            f"widths (p={total.p}, q={total.q}): they must describe the same representations."
        )
    if part.n >= total.n:
        raise ValueError(
            f"The part holds {part.n} rows and the total {total.n}: a part must hold fewer "
            "rows than the total it was taken from."
        )
    if part.n == 0:
        return total.copy()
    n, nb = total.n, part.n
    na = n - nb
    gx, gy = max(total.scale_x, part.scale_x), max(total.scale_y, part.scale_y)

    def scaled(m: Moments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ax, ay = m.scale_x / gx, m.scale_y / gy
        return m.sxx * (ax * ax), m.syy * (ay * ay), m.sxy * (ax * ay)

    txx, tyy, txy = scaled(total)
    pxx, pyy, pxy = scaled(part)
    ex, ey = part.mean_x - total.mean_x, part.mean_y - total.mean_y
    ux, uy = ex / gx, ey / gy
    f = n * nb / na
    return Moments(
        na,
        total.mean_x - ex * (nb / na),
        total.mean_y - ey * (nb / na),
        txx - pxx - f * np.outer(ux, ux),
        tyy - pyy - f * np.outer(uy, uy),
        txy - pxy - f * np.outer(ux, uy),
        precision="float32" if "float32" in (total.precision, part.precision) else "float64",
        device=total.device,
        scale_x=gx,
        scale_y=gy,
    )


def statistic_bytes(p: int, q: int) -> int:
    """Bytes of one float64 statistic of widths ``p, q`` (sums and means)."""
    return 8 * (p * p + q * q + p * q + p + q)


def plan_statistics(count: int, p: int, q: int, what: str, fix: str) -> None:
    """Refuse (:class:`svcca.DeviceMemoryError`) when ``count`` statistics of widths
    ``p, q`` need more than half the host's free memory."""
    need = count * statistic_bytes(p, q)
    free = free_bytes(None)
    if need > free // 2:
        raise DeviceMemoryError(
            f"{what} needs {count} statistics of (p + q)^2 = ({p} + {q})^2 float64 entries "
            f"each: {need / 2**20:.1f} MiB, more than half the free host memory "
            f"({free / 2**20:.1f} MiB free). {fix}"
        )


class BlockMoments:
    """One :class:`svcca.Moments` per block of rows, accumulated in one pass.

    Parameters
    ----------
    p, q : int
        Widths of X and Y (``q = 0``: X only).
    blocks : int, default 20
        Number of blocks ``G``.
    seed : int, default 0
        Seed of the row-to-block hash (:func:`block_of`).

    Notes
    -----
    Memory: ``G`` statistics of about ``(p + q)^2`` float64 entries, planned against half
    the free host memory (refused with the size and the fix otherwise). Time: the
    cross-products of each row are taken once, in its block, so the pass costs what
    :meth:`svcca.Moments.update` costs, plus ``G`` small merges for :attr:`total`.

    This is what a one-pass engine keeps per pair of representations to give an
    interval: feed it the rows with their global offsets (:meth:`update`), then
    :func:`svcca.stats.interval` combines the blocks for any moments measure.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca.stats import BlockMoments
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.standard_normal((400, 4)), rng.standard_normal((400, 3))
    >>> bm = BlockMoments(4, 3, blocks=8)
    >>> for s in range(0, 400, 100):
    ...     _ = bm.update(X[s:s + 100], Y[s:s + 100])
    >>> bm.total.n, len(bm.sizes)
    (400, 8)
    """

    def __init__(self, p: int, q: int = 0, *, blocks: int = 20, seed: int = 0) -> None:
        p = check_count(p, "p", 1)
        q = check_count(q, "q", 0)
        self.blocks = check_count(blocks, "blocks", 2)
        self.seed = check_seed(seed)
        plan_statistics(
            self.blocks + 1,
            p,
            q,
            f"Keeping {self.blocks} block statistics",
            "Use fewer blocks (blocks=10 is enough for a jackknife interval) or reduce the "
            "widths (svcca.svcca's keep=, or a random projection) first.",
        )
        self._parts = [Moments.empty(p, q) for _ in range(self.blocks)]
        self.rows_seen = 0

    @property
    def p(self) -> int:
        return self._parts[0].p

    @property
    def q(self) -> int:
        return self._parts[0].q

    @classmethod
    def from_arrays(cls, X: Any, Y: Any = None, *, blocks: int = 20, seed: int = 0) -> BlockMoments:
        """Block statistics of arrays ``X`` (n, p) and ``Y`` (n, q): row ``i`` is global
        row ``i``."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, p); got shape {X.shape}.")
        q = 0 if Y is None else np.asarray(Y).shape[-1]
        return cls(X.shape[1], q, blocks=blocks, seed=seed).update(X, Y)

    @classmethod
    def from_blocks(cls, parts: Iterable[Moments], *, seed: int = 0) -> BlockMoments:
        """Block statistics from per-block :class:`svcca.Moments` an engine accumulated.

        Parameters
        ----------
        parts : iterable of Moments, length G >= 2
            ``parts[j]``: the statistic of the rows with ``block_of(row, G, seed) == j``
            (an engine that keeps one Gram of all its layers per block slices each
            pair's ``Moments`` out of it). Copied.
        seed : int, default 0
            The seed of that assignment (recorded in the results).
        """
        parts = list(parts)
        if len(parts) < 2 or not all(isinstance(m, Moments) for m in parts):
            raise ValueError(
                f"from_blocks needs at least 2 Moments, one per block; got {len(parts)} "
                "parts (or a part that is not a Moments)."
            )
        widths = {(m.p, m.q) for m in parts}
        if len(widths) != 1:
            raise ValueError(
                f"Every block must describe the same representations; got widths {sorted(widths)}."
            )
        p, q = widths.pop()
        out = cls(p, q, blocks=len(parts), seed=seed)
        out._parts = [m.copy() for m in parts]
        out.rows_seen = int(sum(m.n for m in parts))
        return out

    @classmethod
    def from_batches(
        cls, batches: Iterable[Any], *, blocks: int = 20, seed: int = 0
    ) -> BlockMoments:
        """Block statistics of an iterable of ``X`` batches, ``(X, Y)`` pairs, or
        ``(offset, X, Y)`` triples (``offset``: the global index of the batch's first
        row; by default the rows seen so far)."""
        out: BlockMoments | None = None
        for i, batch in enumerate(batches):
            offset = None
            if isinstance(batch, tuple) and len(batch) == 3:
                offset, xb, yb = batch
            elif isinstance(batch, tuple) and len(batch) == 2:
                xb, yb = batch
            else:
                xb, yb = batch, None
            xb = np.asarray(xb)
            if xb.ndim != 2:
                raise ValueError(f"X of batch {i} must be 2-D (rows, p); got shape {xb.shape}.")
            if out is None:
                q = 0 if yb is None else np.asarray(yb).shape[-1]
                out = cls(xb.shape[1], q, blocks=blocks, seed=seed)
            out.update(xb, yb, offset=offset)
        if out is None:
            raise ValueError("from_batches received no batches; give it at least one.")
        return out

    def update(self, X: Any, Y: Any = None, *, offset: int | None = None) -> BlockMoments:
        """Add a batch whose first row has global index ``offset`` (default: the number
        of rows seen so far); returns ``self``."""
        X = np.asarray(X)
        start = self.rows_seen if offset is None else check_count(offset, "offset", 0)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (rows, p); got shape {X.shape}.")
        if (Y is None) != (self.q == 0):
            raise ValueError(
                f"These block statistics track {'a' if self.q else 'no'} Y representation; "
                f"pass {'the matching Y batch' if self.q else 'X only'} to update()."
            )
        Yv = None if Y is None else np.asarray(Y)
        if Yv is not None and Yv.shape[0] != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} rows and Y has {Yv.shape[0]}; a batch must hold the same "
                "rows on both sides."
            )
        b = block_of(np.arange(start, start + X.shape[0]), self.blocks, self.seed)
        order = np.argsort(b, kind="stable")
        bounds = np.searchsorted(b[order], np.arange(self.blocks + 1))
        for j in range(self.blocks):
            idx = order[bounds[j] : bounds[j + 1]]
            if idx.size:
                self._parts[j].update(X[idx], None if Yv is None else Yv[idx])
        self.rows_seen = max(self.rows_seen, start + X.shape[0])
        return self

    @property
    def sizes(self) -> np.ndarray:
        """Rows in each block, shape (G,)."""
        return np.array([m.n for m in self._parts], dtype=np.int64)

    def block(self, j: int) -> Moments:
        """The statistic of block ``j`` (a copy)."""
        return self._parts[j].copy()

    @property
    def total(self) -> Moments:
        """The statistic of every row seen (the blocks merged)."""
        out = Moments.empty(self.p, self.q)
        for m in self._parts:
            out.merge_in_place(m)
        return out

    def leave_out(self, j: int, total: Moments | None = None) -> Moments:
        """The statistic of every row but block ``j``: ``total`` minus block ``j``."""
        return subtract_moments(self.total if total is None else total, self._parts[j])


class PoissonMoments:
    """Poisson-bootstrap replicates of :class:`svcca.Moments`, accumulated in one pass.

    Parameters
    ----------
    p, q : int
        Widths of X and Y (``q = 0``: X only).
    replicates : int, default 200
        Number of bootstrap replicates ``B``.
    seed : int, default 0

    Notes
    -----
    Replicate ``r`` is the statistic of the rows weighted by ``w[i, r] ~ Poisson(1)``
    (:func:`poisson_weights`): the statistic of the data set in which row ``i`` appears
    ``w[i, r]`` times. Its weighted mean and centred cross-products are taken per batch
    and merged as the rows go by. Cost: ``B`` times the products of one pass (against
    one for :class:`BlockMoments`); memory: ``B`` statistics of ``(p + q)^2`` float64
    entries, planned against half the free memory. The sums are float64 in the data's
    units (no power-of-two scaling as in :class:`svcca.Moments`).
    """

    def __init__(self, p: int, q: int = 0, *, replicates: int = 200, seed: int = 0) -> None:
        p = check_count(p, "p", 1)
        q = check_count(q, "q", 0)
        self.replicates = check_count(replicates, "replicates", 2)
        self.seed = check_seed(seed)
        plan_statistics(
            self.replicates + 1,
            p,
            q,
            f"Keeping {self.replicates} bootstrap replicates",
            "Use fewer replicates, the jackknife (method='jackknife', G statistics with "
            "G ~ 20), or reduce the widths first.",
        )
        self._reps = [Moments.empty(p, q) for _ in range(self.replicates)]
        self._total = Moments.empty(p, q)
        self.rows_seen = 0

    @property
    def p(self) -> int:
        return self._total.p

    @property
    def q(self) -> int:
        return self._total.q

    @classmethod
    def from_arrays(
        cls, X: Any, Y: Any = None, *, replicates: int = 200, seed: int = 0
    ) -> PoissonMoments:
        """Replicates of arrays ``X`` (n, p) and ``Y`` (n, q)."""
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, p); got shape {X.shape}.")
        q = 0 if Y is None else np.asarray(Y).shape[-1]
        return cls(X.shape[1], q, replicates=replicates, seed=seed).update(X, Y)

    def update(self, X: Any, Y: Any = None, *, offset: int | None = None) -> PoissonMoments:
        """Add a batch whose first row has global index ``offset`` (default: the rows
        seen so far); returns ``self``."""
        start = self.rows_seen if offset is None else check_count(offset, "offset", 0)
        self._total.update(X, Y)  # validates shapes and values, by name
        Xv = np.asarray(X, dtype=np.float64)
        Yv = None if Y is None else np.asarray(Y, dtype=np.float64)
        W = poisson_weights(np.arange(start, start + Xv.shape[0]), self.replicates, self.seed)
        for r, rep in enumerate(self._reps):
            w = W[:, r]
            keep = w > 0
            sw = int(w.sum())
            if sw == 0:
                continue
            wk = w[keep].astype(np.float64)
            xk = Xv[keep]
            mx = wk @ xk / sw
            xc = xk - mx
            xw = xc * wk[:, None]
            if Yv is None:
                my, syy, sxy = np.zeros(0), np.zeros((0, 0)), np.zeros((self.p, 0))
            else:
                yk = Yv[keep]
                my = wk @ yk / sw
                yc = yk - my
                syy, sxy = (yc * wk[:, None]).T @ yc, xw.T @ yc
            rep.merge_in_place(Moments(sw, mx, my, xw.T @ xc, syy, sxy))
        self.rows_seen = max(self.rows_seen, start + Xv.shape[0])
        return self

    @property
    def total(self) -> Moments:
        """The statistic of every row seen (unweighted)."""
        return self._total.copy()

    def replicate(self, r: int) -> Moments:
        """The statistic of bootstrap replicate ``r`` (a copy)."""
        return self._reps[r].copy()
