"""DFT-CCA: canonical correlations of convolutional layers, one spatial frequency at a time."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

import svcca._dense as _dense
from svcca._measures import EPS, FLOAT32_COND_LIMIT, rank_rtol, thresholded_mean, unit_scaled
from svcca._result import result
from svcca._threads import dense_steps
from svcca._validation import (
    Precision,
    SVCCAWarning,
    check_epsilon,
    check_keep,
    check_option,
    check_precision,
    check_probability,
    few_samples_message,
    precision_dtype,
    precision_eps,
    raise_degenerate,
)
from svcca.conv._checks import (
    Layout,
    as_conv,
    check_layout,
    check_same_n,
    raise_nonfinite_conv,
)
from svcca.conv._grid import Grid, SideDFT, cross, make_grid
from svcca.conv._solve import (
    Factor,
    cca_factor,
    correlations,
    svd_factor,
    whitened_cross,
)

__all__ = ["FourierCCAResult", "fourier_cca", "fourier_moments"]

Variance = Literal["explained", "singular_values"]


@dataclass(frozen=True)
class FourierMoments:
    """Centred per-frequency moments of two maps at the grid's representatives."""

    grid: Grid
    dft_x: SideDFT
    dft_y: SideDFT
    mean_x: np.ndarray  # (h1, w1, c1) mean map
    mean_y: np.ndarray
    n: int
    sxx: np.ndarray  # (R, c1, c1)
    syy: np.ndarray
    sxy: np.ndarray  # (R, c1, c2)
    eps: float = EPS  # unit round-off of the products behind the blocks
    # Powers of two the maps were divided by before their DFT (exact; Moments.scale_x):
    # the blocks are in their units, the means in the data's.
    scale_x: float = 1.0
    scale_y: float = 1.0


def _mean_map(A: np.ndarray, name: str) -> np.ndarray:
    mean = A.mean(axis=0, dtype=np.float64)
    if not np.isfinite(mean).all():  # any NaN or inf in A shows up in its mean
        raise_nonfinite_conv(A, name)
    return mean


def fourier_moments(
    A: np.ndarray, B: np.ndarray, precision: Precision = "float64"
) -> FourierMoments:
    """The per-frequency cross-products of validated ``(n, h, w, c)`` maps.

    ``precision="float32"``: the centred maps are transformed and multiplied in float32
    (chunks of at most 4096 samples), the sums are float64.
    """
    grid = make_grid(A.shape[1:3], B.shape[1:3])
    dx, dy = SideDFT(A.shape[1:3], grid), SideDFT(B.shape[1:3], grid)
    mx, my = _mean_map(A, "A"), _mean_map(B, "B")
    dtype = precision_dtype(precision)
    X = dx.apply_split(A, mx, dtype)
    Y = dy.apply_split(B, my, dtype)
    sxx, syy, sxy = cross(X), cross(Y), cross(X, Y)
    eps = precision_eps(precision)
    return FourierMoments(grid, dx, dy, mx, my, A.shape[0], sxx, syy, sxy, eps)


class _Solver:
    """Whitening factors and whitened cross-products of every representative frequency."""

    def __init__(self, m: FourierMoments, fx: Factor, fy: Factor) -> None:
        self.m, self.fx, self.fy = m, fx, fy
        self.M = whitened_cross(m.sxy, fx, fy)
        self.rho, self.count = correlations(self.M, fx, fy)

    @cached_property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Channel weights ``(R, c1, k)``, ``(R, c2, k)`` with unit-variance variates."""
        U, _, Vh = _dense.svd(self.M)
        V = np.conj(Vh.transpose(0, 2, 1))
        # Deterministic phases: the largest entry of each left vector is real positive.
        top = np.take_along_axis(U, np.argmax(np.abs(U), axis=1)[:, None, :], axis=1)
        phase = np.where(np.abs(top) > 0, np.conj(top) / np.maximum(np.abs(top), 1e-300), 1.0)
        U, V = U * phase, V * phase
        scale = np.sqrt(self.m.n - 1)
        wx = self.fx.left(U, adjoint=True) / self.fx.std[:, :, None]
        wy = self.fy.left(V, adjoint=True) / self.fy.std[:, :, None]
        invalid = np.isnan(self.rho)[:, None, :]
        wx = np.where(invalid, np.nan, wx * (scale / self.m.scale_x))  # data units
        wy = np.where(invalid, np.nan, wy * (scale / self.m.scale_y))
        return wx, wy


def _expand(grid: Grid, per_rep: np.ndarray) -> np.ndarray:
    """Per-representative values ``(R, ...)`` onto the grid ``(H, W, ...)``, conjugating mirrors."""
    out = per_rep[grid.loc_rep]
    if np.iscomplexobj(out):
        out[grid.loc_conj] = np.conj(out[grid.loc_conj])
    return out


@result
class FourierCCAResult:
    """DFT-CCA of two convolutional layers.

    Attributes
    ----------
    correlations : ndarray, shape (K,)
        Every per-frequency canonical correlation of every grid location, pooled and
        sorted descending. For a translation-invariant dataset these are exactly the
        canonical correlations of the flattened ``(n, h*w*c)`` activations.
    score : float
        Mean of :attr:`correlations`.
    mean_squared : float
        Mean of the squared correlations.
    thresholded_mean : float
        google/svcca's thresholded mean of the pooled correlations.
    threshold : float
    frequency_correlations : ndarray, shape (H, W, k)
        Correlations at each frequency location, descending, ``k = min(c1, c2)``; NaN
        beyond the location's :attr:`n_correlations`.
    frequency_scores : ndarray, shape (H, W)
        Mean correlation at each location (0 where there is none).
    n_correlations : ndarray of int, shape (H, W)
        How many correlations each location has: ``min(rank_x, rank_y)`` there.
    frequencies_h, frequencies_w : ndarray of int, shapes (H,), (W,)
        The signed spatial frequency (cycles per map) of each grid row and column, in
        FFT order ``0, 1, ..., -1``; location ``(0, 0)`` is the DC component.
    n_samples : int
    shape_x, shape_y : tuple of int
        ``(h, w, c)`` of each input.
    layout : {"nhwc", "nchw"}
    epsilon : float
    keep : float, int or None
        SVCCA truncation, or None for plain CCA.
    variance : {"explained", "singular_values"}
    variance_kept_x, variance_kept_y : float
        Fraction of each layer's (pooled) variance the SVCCA truncation kept; 1.0 for
        plain CCA.
    """

    correlations: np.ndarray
    score: float
    mean_squared: float
    thresholded_mean: float
    threshold: float
    frequency_correlations: np.ndarray
    frequency_scores: np.ndarray
    n_correlations: np.ndarray
    frequencies_h: np.ndarray
    frequencies_w: np.ndarray
    n_samples: int
    shape_x: tuple[int, int, int]
    shape_y: tuple[int, int, int]
    layout: Layout
    epsilon: float
    keep: float | int | None
    variance: Variance
    variance_kept_x: float
    variance_kept_y: float
    _solver: _Solver = field(repr=False, compare=False)

    @cached_property
    def weights_x(self) -> np.ndarray:
        """``(H, W, c1, k)`` complex channel weights at each frequency location.

        ``z = X_f @ weights_x[i, j]`` are the canonical variates at location ``(i, j)``,
        where ``X_f`` is the ``(n, c1)`` DFT of the centred maps at that frequency; they
        have unit sample variance and ``corr(z_x, z_y)`` is real and equals the
        correlation. Mirror locations hold the complex conjugates. NaN columns beyond a
        location's count.
        """
        return _expand(self._solver.m.grid, self._solver.weights[0])

    @cached_property
    def weights_y(self) -> np.ndarray:
        """``(H, W, c2, k)`` complex channel weights for B, paired with :attr:`weights_x`."""
        return _expand(self._solver.m.grid, self._solver.weights[1])

    def spatial_weights(self, i: int, j: int, side: Literal["x", "y"] = "x") -> np.ndarray:
        """The canonical directions of location ``(i, j)`` in the spatial domain.

        Parameters
        ----------
        i, j : int
            Grid location (row, column), as in :attr:`frequency_correlations`.
        side : {"x", "y"}

        Returns
        -------
        ndarray, complex, shape (h, w, c, k) (``(c, h, w, k)`` for ``layout="nchw"``)
            Weights over every neuron of the layer: the ``m``-th canonical variate at
            this frequency is ``sum((A - mean) * W[..., m])`` over the spatial and channel
            axes. Its real and imaginary parts are real directions over the flattened
            activations; on a translation-invariant dataset they are canonical
            directions of the flattened CCA.
        """
        if side not in ("x", "y"):
            raise ValueError(f"side must be 'x' or 'y'; got {side!r}.")
        H, W = self.frequency_scores.shape
        if not (-H <= i < H and -W <= j < W):
            raise IndexError(f"location ({i}, {j}) is outside the {H} x {W} frequency grid.")
        m = self._solver.m
        dft, weights = (m.dft_x, self.weights_x) if side == "x" else (m.dft_y, self.weights_y)
        kernel = dft.phase_map(i % H, j % W)
        out = kernel[:, :, None, None] * weights[i, j][None, None, :, :]
        return out.transpose(2, 0, 1, 3) if self.layout == "nchw" else out

    def transform(self, A: Any, B: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Canonical variates of these or new datapoints at every frequency location.

        Parameters
        ----------
        A : array_like, shape like the fitted A (any number of samples)
        B : array_like, shape like the fitted B, optional

        Returns
        -------
        u : ndarray, complex, shape (m, H, W, k)
        v : ndarray, complex, shape (m, H, W, k) or None
        """
        m = self._solver.m
        u = self._variates(A, "A", self.shape_x, m.dft_x, m.mean_x, self._solver.weights[0])
        if B is None:
            return u, None
        v = self._variates(B, "B", self.shape_y, m.dft_y, m.mean_y, self._solver.weights[1])
        return u, v

    def _variates(
        self,
        A: Any,
        name: str,
        shape: tuple[int, int, int],
        dft: SideDFT,
        mean: np.ndarray,
        weights: np.ndarray,
    ) -> np.ndarray:
        arr = as_conv(A, name, self.layout, allow_dense=True)
        if arr.shape[1:] != shape:
            raise ValueError(
                f"{name} has maps of shape {arr.shape[1:]} (h, w, c) but the fitted {name} "
                f"had {shape}; transform needs the same layer."
            )
        X = dft.apply(arr, mean)
        z = np.matmul(X, weights)  # (R, m, k)
        return np.moveaxis(_expand(self._solver.m.grid, z), 2, 0)


def fourier_cca(
    A: Any,
    B: Any,
    *,
    layout: Layout | None = None,
    epsilon: float = 0.0,
    keep: float | int | None = None,
    variance: Variance = "explained",
    threshold: float = 0.98,
    precision: Precision = "float64",
) -> FourierCCAResult:
    """CCA (or SVCCA) of two convolutional layers through their 2-D spatial DFT.

    Parameters
    ----------
    A : array_like, shape (n, h1, w1, c1), or (n, d1) for a dense layer
        Activations of the first layer (``(n, c1, h1, w1)`` with ``layout="nchw"``).
        A 2-D array is a ``1 x 1`` map: compared on the DC component only.
    B : array_like, shape (n, h2, w2, c2), or (n, d2)
        Activations of the second layer on the same datapoints. The spatial sizes may
        differ, also for non-square maps: the layers are compared on the frequencies
        both represent, an ``min(h1, h2) x min(w1, w2)`` grid.
    layout : {"nhwc", "nchw"}
        Axis order of both inputs, required for 4-D maps: never guessed (a map read in
        the wrong layout gives a plausible wrong number). PyTorch and
        :func:`svcca.torch.capture` give ``"nchw"``; TensorFlow and JAX ``"nhwc"``. Two
        dense ``(n, d)`` inputs need none.
    epsilon : float, default 0.0
        At each frequency, prune channels whose power is below ``epsilon`` times that
        frequency's largest (as :func:`svcca.cca` does per layer). Channels below 1e-12
        of it are always pruned as numerically absent.
    keep : float in (0, 1], int or None, default None
        SVCCA truncation: keep each layer's leading principal directions (pooled over
        all frequencies) making up this fraction of its variance, or this many
        directions, before the CCA. None is plain CCA.
    variance : {"explained", "singular_values"}, default "explained"
        How ``keep`` measures the share, as in :func:`svcca.svcca`.
    threshold : float, default 0.98
        For :attr:`FourierCCAResult.thresholded_mean`.
    precision : {"float64", "float32"}, default "float64"
        ``"float32"`` transforms and multiplies the maps in float32 (chunks of at most
        4096 samples, float64 sums): half the memory of the transformed maps and about
        twice the product rate, with correlations moved by about 1e-5 times the
        whitened blocks' condition number (see :class:`svcca.Moments`).

    Returns
    -------
    FourierCCAResult
        Pooled ``.correlations`` and ``.score``, per-frequency ``.frequency_correlations``
        ``(H, W, k)`` and ``.frequency_scores``, weights and ``.transform``.

    Notes
    -----
    Section 3 of Raghu et al.: if the dataset is translation invariant (it contains
    every cyclic spatial shift of each datapoint), the covariance of the flattened
    ``h*w*c`` activations is block circulant, so the 2-D DFT over space
    (:math:`X_f = \\sum_{y,x} a_{yx} e^{-2\\pi i (f_h y / h + f_w x / w)}`)
    block-diagonalises it into one complex ``c x c`` block per frequency ``f``. The
    canonical correlations of the flattened layers are then the union over
    frequencies of the singular values of
    :math:`M_f = L_{x,f}^{-1} S_{xy,f} L_{y,f}^{-H}` (:math:`S_{xx,f} = L_{x,f}
    L_{x,f}^H`, Cholesky of the Hermitian channel covariances). Real input gives
    :math:`X_{-f} = \\overline{X_f}`, so only one of each mirror pair is solved;
    all the per-frequency problems are solved together by batched linear algebra.
    On data that is not translation invariant the result ignores the covariance
    between different frequencies and is an approximation of the flattened CCA.

    .. warning:: google/svcca's ``dft_ccas.fourier_ccas`` could not run (see
       :func:`svcca.compat.fourier_ccas`); its intended per-location numbers are those
       of :attr:`FourierCCAResult.frequency_correlations`.

    References
    ----------
    .. [1] M. Raghu, J. Gilmer, J. Yosinski, J. Sohl-Dickstein, "SVCCA: Singular Vector
       Canonical Correlation Analysis for Deep Learning Dynamics and Interpretability",
       NeurIPS 2017, arXiv:1706.05806, Section 3.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca.conv import fourier_cca
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((500, 8, 8, 4))
    >>> B = A @ rng.standard_normal((4, 3))     # a 1x1 convolution of A
    >>> r = fourier_cca(A, B, layout="nhwc")
    >>> r.frequency_correlations.shape, round(r.score, 6)
    ((8, 8, 3), 1.0)
    """
    layout = check_layout(layout)
    epsilon = check_epsilon(epsilon)
    threshold = check_probability(threshold, "threshold")
    if keep is not None:
        keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    a = as_conv(A, "A", layout, allow_dense=True)
    b = as_conv(B, "B", layout, allow_dense=True)
    check_same_n(a, b)
    # Every magnitude: each layer in units of a power of two (exact), so its DFT and
    # cross-products neither overflow nor underflow; the correlations do not depend on it.
    (a, sa), (b, sb) = unit_scaled(a), unit_scaled(b)
    m = fourier_moments(a, b, check_precision(precision))
    m = replace(m, mean_x=m.mean_x * sa, mean_y=m.mean_y * sb, scale_x=sa, scale_y=sb)
    with dense_steps(max(a.shape[3], b.shape[3])):
        if keep is None:
            fx = cca_factor(m.sxx, epsilon, m.eps)
            fy = cca_factor(m.syy, epsilon, m.eps)
        else:
            fx = svd_factor(m.sxx, m.grid.multiplicity, keep, variance, m.eps, "A")
            fy = svd_factor(m.syy, m.grid.multiplicity, keep, variance, m.eps, "B")
    for f, name, shape in ((fx, "A", a.shape), (fy, "B", b.shape)):
        if not f.rank.any():
            raise_degenerate(name, int(np.prod(shape[1:])), "it is constant at every location")
    _warn_inflated_frequencies(m.n, fx.rank, fy.rank)
    if m.eps > EPS:
        for f, name in ((fx, "A"), (fy, "B")):
            _warn_float32_frequencies(f, name, keep is None)
    with dense_steps(max(a.shape[3], b.shape[3])):
        solver = _Solver(m, fx, fy)
    # Dense inputs only (1 x 1 maps): both layouts read them alike.
    return _result(solver, a.shape, b.shape, layout or "nhwc", epsilon, keep, variance, threshold)


def _warn_float32_frequencies(f: Factor, name: str, whitened: bool) -> None:
    """float32 sums: say when frequencies lost directions or their whitening amplifies
    the round-off (as :func:`svcca._measures._cca.prepare_side` does for dense layers)."""
    dropped = int((f.kept.sum(axis=1) - f.rank).sum()) if whitened else 0
    if dropped:
        what = (
            f"{dropped} channel directions (summed over frequencies) have power below "
            f"float32's resolution ({rank_rtol(f.eps):.1e} of each frequency's largest) and "
            "were dropped (exact duplicates are dropped in float64 too; real weak channels "
            "are not)"
        )
    elif f.cond > FLOAT32_COND_LIMIT:
        what = (
            f"a frequency block has condition number {f.cond:.3g}, so the round-off of "
            f"float32 cross-products can move its correlations by up to about "
            f"{min(64 * f.eps * f.cond, 1):.2g}"
        )
    else:
        return
    warnings.warn(
        f"{name}: {what}. Use precision='float64' for this layer.", SVCCAWarning, stacklevel=3
    )


def _warn_inflated_frequencies(n: int, rank_x: np.ndarray, rank_y: np.ndarray) -> None:
    """One warning when some frequencies' channel counts leave too few samples.

    Each frequency is a CCA of ``n`` (complex) samples of ``rank_x[f]`` and
    ``rank_y[f]`` channels, so the rule of :func:`svcca.cca` applies per frequency.
    """
    bad = np.flatnonzero(rank_x + rank_y >= n - 1)
    if bad.size == 0:
        return
    f = int(bad[0])
    msg = few_samples_message(n, int(rank_x[f]), int(rank_y[f]))
    warnings.warn(
        f"{bad.size} of {rank_x.size} independent frequencies have too few samples for their "
        f"channels: {msg}",
        SVCCAWarning,
        stacklevel=3,
    )


def _result(
    solver: _Solver,
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    layout: Layout,
    epsilon: float,
    keep: float | int | None,
    variance: Variance,
    threshold: float,
) -> FourierCCAResult:
    grid = solver.m.grid
    freq_rho = _expand(grid, solver.rho)
    counts = _expand(grid, solver.count)
    valid = ~np.isnan(freq_rho)
    pooled = np.sort(freq_rho[valid])[::-1]
    sums = np.where(valid, freq_rho, 0.0).sum(axis=-1)
    scores = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return FourierCCAResult(
        correlations=pooled,
        score=float(pooled.mean()) if pooled.size else 0.0,
        mean_squared=float(np.mean(pooled**2)) if pooled.size else 0.0,
        thresholded_mean=thresholded_mean(pooled, threshold),
        threshold=threshold,
        frequency_correlations=freq_rho,
        frequency_scores=scores,
        n_correlations=counts,
        frequencies_h=grid.freq_h,
        frequencies_w=grid.freq_w,
        n_samples=solver.m.n,
        shape_x=tuple(shape_a[1:]),  # type: ignore[arg-type]
        shape_y=tuple(shape_b[1:]),  # type: ignore[arg-type]
        layout=layout,
        epsilon=epsilon,
        keep=keep,
        variance=variance,
        variance_kept_x=solver.fx.variance_kept,
        variance_kept_y=solver.fy.variance_kept,
        _solver=solver,
    )
