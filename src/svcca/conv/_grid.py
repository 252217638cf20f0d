"""The shared frequency grid of two feature maps and the 2-D DFT onto it.

Two maps of spatial sizes ``(h1, w1)`` and ``(h2, w2)`` are compared on the frequencies
both represent: an ``H x W`` grid with ``H = min(h1, h2)``, ``W = min(w1, w2)``, whose
row ``i`` holds the signed frequency ``fftfreq(H)[i] * H`` (0, 1, ..., -1 cycles per
map), as google/svcca's ``fft_resize`` keeps them. Each side reads that frequency from
its own DFT bin ``f mod h`` (``f mod w``).

For real input the value at ``(-f_h, -f_w)`` is the complex conjugate of the value at
``(f_h, f_w)``, so the CCA problems at the two locations have the same correlations and
conjugate directions: only one of each pair (a *representative*) is solved. The bin
``-m/2`` of an even axis cropped from a larger map has no mirror on the grid, and is
solved on its own.

The DFT is done as two small matrix products per chunk of samples (along the width,
then the height), producing only the representative frequencies, already laid out as
``(frequency, sample, channel)`` for the batched cross-products; no full FFT is stored
and cropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from svcca._moments import FLOAT32_CHUNK_ROWS

__all__ = ["Grid", "SideDFT", "make_grid", "signed_frequencies"]

# Complex working memory per chunk of samples in the transform.
_CHUNK_BYTES = 48 * 2**20


def signed_frequencies(m: int) -> np.ndarray:
    """``0, 1, ..., -1``: the signed frequency of each DFT bin of length ``m``."""
    k = np.arange(m)
    return np.where(k < (m + 1) // 2, k, k - m)


def _axis_partner(m: int, sizes: tuple[int, int]) -> np.ndarray:
    """Grid index of the mirror frequency ``-f`` of each bin, or -1 where there is none."""
    partner = (-signed_frequencies(m)) % m
    if m % 2 == 0 and any(s != m for s in sizes):
        partner[m // 2] = -1  # -m/2 was cropped from a larger map: +m/2 is not on the grid
    return partner


@dataclass(frozen=True)
class Grid:
    """Frequency locations shared by two maps, and which of them are solved.

    Attributes
    ----------
    shape : (H, W)
    freq_h, freq_w : ndarray of int
        Signed frequency of each grid row / column.
    rep_rows, rep_cols : ndarray of int, shape (R,)
        Grid location of each representative, in solving order.
    multiplicity : ndarray of int, shape (R,)
        How many grid locations each representative stands for (1 or 2).
    loc_rep : ndarray of int, shape (H, W)
        The representative whose problem each location shares.
    loc_conj : ndarray of bool, shape (H, W)
        Whether the location holds the conjugate of its representative's problem.
    blocks : tuple of (col_start, col_stop, rows, rep_start)
        Representatives grouped for the transform: for the columns
        ``col_order[col_start:col_stop]`` the rows ``rows`` are solved, stored as
        representatives ``rep_start ...`` in column-major order.
    col_order : ndarray of int
        The grid columns the transform produces, in block order.
    """

    shape: tuple[int, int]
    freq_h: np.ndarray
    freq_w: np.ndarray
    rep_rows: np.ndarray
    rep_cols: np.ndarray
    multiplicity: np.ndarray
    loc_rep: np.ndarray
    loc_conj: np.ndarray
    blocks: tuple[tuple[int, int, np.ndarray, int], ...]
    col_order: np.ndarray

    @property
    def n_reps(self) -> int:
        return int(self.rep_rows.size)


def make_grid(size_x: tuple[int, int], size_y: tuple[int, int]) -> Grid:
    """The shared grid of maps of spatial sizes ``size_x`` and ``size_y``."""
    H, W = min(size_x[0], size_y[0]), min(size_x[1], size_y[1])
    fh, fw = signed_frequencies(H), signed_frequencies(W)
    ph = _axis_partner(H, (size_x[0], size_y[0]))
    pw = _axis_partner(W, (size_x[1], size_y[1]))
    valid = (ph[:, None] >= 0) & (pw[None, :] >= 0)
    flat = np.arange(H * W).reshape(H, W)
    partner = np.where(valid, ph[:, None] * W + pw[None, :], flat)
    # Prefer representatives with a non-negative width frequency (the rfft half).
    key = (fw < 0)[None, :] * (H * W) + flat
    is_rep = key <= key.ravel()[partner]

    blocks: list[tuple[int, int, np.ndarray, int]] = []
    by_rows: dict[tuple[int, ...], list[int]] = {}
    for j in range(W):  # metadata only: at most W columns
        key_rows = tuple(np.flatnonzero(is_rep[:, j]).tolist())
        if key_rows:
            by_rows.setdefault(key_rows, []).append(j)
    col_order: list[int] = []
    rep_rows: list[np.ndarray] = []
    rep_cols: list[np.ndarray] = []
    start = 0
    for rows_t, cols in by_rows.items():
        rows = np.asarray(rows_t, dtype=np.intp)
        blocks.append((len(col_order), len(col_order) + len(cols), rows, start))
        col_order.extend(cols)
        rep_rows.append(np.tile(rows, len(cols)))
        rep_cols.append(np.repeat(np.asarray(cols, dtype=np.intp), rows.size))
        start += rows.size * len(cols)
    r_rows = np.concatenate(rep_rows)
    r_cols = np.concatenate(rep_cols)
    rep_flat = r_rows * W + r_cols
    loc_rep = np.full(H * W, -1, dtype=np.intp)
    loc_conj = np.zeros(H * W, dtype=bool)
    loc_rep[rep_flat] = np.arange(rep_flat.size)
    mirror = partner.ravel()[rep_flat]
    other = mirror != rep_flat
    loc_rep[mirror[other]] = np.flatnonzero(other)
    loc_conj[mirror[other]] = True
    assert (loc_rep >= 0).all()
    return Grid(
        shape=(H, W),
        freq_h=fh,
        freq_w=fw,
        rep_rows=r_rows,
        rep_cols=r_cols,
        multiplicity=np.where(other, 2, 1),
        loc_rep=loc_rep.reshape(H, W),
        loc_conj=loc_conj.reshape(H, W),
        blocks=tuple(blocks),
        col_order=np.asarray(col_order, dtype=np.intp),
    )


def _twiddles(bins: np.ndarray, size: int) -> np.ndarray:
    """``exp(-2 pi i b x / size)`` for each bin ``b`` (rows) and position ``x`` (columns)."""
    phase = np.outer(bins, np.arange(size)) % size  # exact integer phase first
    return np.exp(-2j * np.pi * phase / size)


class SideDFT:
    """The 2-D DFT of one side's maps at the grid's representative frequencies."""

    def __init__(self, size: tuple[int, int], grid: Grid) -> None:
        self.size = size
        self.grid = grid
        self.bins_h = grid.freq_h % size[0]
        self.bins_w = grid.freq_w % size[1]
        dw = _twiddles(self.bins_w[grid.col_order], size[1])  # (ncols, w)
        # Along the width, real input: rows (column, cos/sin) of one real matrix.
        self.w1 = np.stack([dw.real, dw.imag], axis=1).reshape(-1, size[1])
        # Along the height, on [Re; Im] of the first stage: real and imaginary parts.
        self.k_re, self.k_im = [], []
        for _, _, rows, _ in grid.blocks:
            d = _twiddles(self.bins_h[rows], size[0])
            self.k_re.append(np.ascontiguousarray(np.hstack([d.real, -d.imag])))
            self.k_im.append(np.ascontiguousarray(np.hstack([d.imag, d.real])))

    def phase_map(self, i: int, j: int) -> np.ndarray:
        """``(h, w)`` complex: the DFT kernel of grid location ``(i, j)`` over positions."""
        return _twiddles(self.bins_h[i : i + 1], self.size[0]).T * _twiddles(
            self.bins_w[j : j + 1], self.size[1]
        )

    def apply_split(
        self, A: np.ndarray, mean: np.ndarray | None, dtype: Any = np.float64
    ) -> np.ndarray:
        """``(2, R, n, c)``: real and imaginary parts of the DFT of ``A - mean``.

        ``A`` is ``(n, h, w, c)``. Per chunk of samples: one transposed, centred copy
        ``(w, h, nb, c)`` in ``dtype``, one real product along the width, then for each
        block of columns two real products along the height that write straight into the
        result (of ``dtype``; float32 sums run over at most ``h + w`` terms).
        """
        n, h, w, c = A.shape
        R = self.grid.n_reps
        dtype = np.dtype(dtype)
        out = np.empty((2, R, n, c), dtype=dtype)
        w1 = self.w1.astype(dtype, copy=False)
        k_re = [k.astype(dtype, copy=False) for k in self.k_re]
        k_im = [k.astype(dtype, copy=False) for k in self.k_im]
        rows_per_chunk = max(1, _CHUNK_BYTES // (dtype.itemsize * h * w * c))
        shift = None if mean is None else mean.transpose(1, 0, 2)[:, :, None, :]
        ncols = self.w1.shape[0] // 2
        for n0 in range(0, n, rows_per_chunk):
            n1 = min(n, n0 + rows_per_chunk)
            nb = n1 - n0
            buf = np.empty((w, h, nb, c), dtype=dtype)
            src = A[n0:n1].transpose(2, 1, 0, 3)
            if shift is None:
                buf[...] = src
            else:
                np.subtract(src, shift, out=buf)
            # (2 ncols, w) @ (w, h nb c): per column, [Re; Im] stacked over the height.
            T = (w1 @ buf.reshape(w, -1)).reshape(ncols, 2 * h, nb * c)
            del buf
            for (c0, c1, rows, r0), kr, ki in zip(self.grid.blocks, k_re, k_im, strict=True):
                r1 = r0 + (c1 - c0) * rows.size
                for part, k in ((0, kr), (1, ki)):
                    dst = out[part, r0:r1, n0:n1, :].reshape(c1 - c0, rows.size, nb * c)
                    if np.may_share_memory(dst, out):
                        np.matmul(k, T[c0:c1], out=dst)
                    else:  # pragma: no cover - reshape of this slice is always a view
                        out[part, r0:r1, n0:n1, :] = np.matmul(k, T[c0:c1]).reshape(-1, nb, c)
        return out

    def apply(self, A: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
        """``(R, n, c)`` complex DFT of ``A - mean``."""
        split = self.apply_split(A, mean)
        return split[0] + 1j * split[1]


def _t(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 1)


def cross(X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
    """``X_f^H Y_f`` for every frequency, from split parts ``(2, R, n, p)``, ``(2, R, n, q)``.

    Real arithmetic on the real and imaginary planes: ``Re = Xr^T Yr + Xi^T Yi``,
    ``Im = Xr^T Yi - Xi^T Yr``; for ``Y = X`` (Hermitian) the imaginary part is
    ``G - G^T`` with ``G = Xr^T Xi``, so it costs three products instead of four.
    Returns ``(R, p, q)`` complex128. Float32 parts are multiplied in chunks of at most
    4096 samples whose products are summed in float64.
    """
    n = X.shape[2]
    if X.dtype == np.float32 and n > FLOAT32_CHUNK_ROWS:
        total = None
        for s in range(0, n, FLOAT32_CHUNK_ROWS):
            e = s + FLOAT32_CHUNK_ROWS
            part = cross(X[:, :, s:e], None if Y is None else Y[:, :, s:e])
            total = part if total is None else total + part
        assert total is not None
        return total
    Xr, Xi = X[0], X[1]
    if Y is None:
        re = np.matmul(_t(Xr), Xr)
        re += np.matmul(_t(Xi), Xi)
        G = np.matmul(_t(Xr), Xi)
        out = re.astype(np.complex128)
        out.imag = G - _t(G)
        out.real = 0.5 * (re + _t(re))
        return out
    Yr, Yi = Y[0], Y[1]
    re = np.matmul(_t(Xr), Yr)
    re += np.matmul(_t(Xi), Yi)
    im = np.matmul(_t(Xr), Yi)
    im -= np.matmul(_t(Xi), Yr)
    out = re.astype(np.complex128)
    out.imag = im
    return out
