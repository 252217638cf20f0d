"""Canonical correlation analysis on the sufficient statistic."""

from __future__ import annotations

import warnings
from dataclasses import field
from functools import cached_property
from typing import Any

import numpy as np

import svcca._dense as _dense
from svcca._measures._linalg import (
    EPS,
    Pruned,
    Whitener,
    clip_roundoff,
    flip_signs,
    prune,
    rank_rtol,
)
from svcca._moments import Moments
from svcca._result import readonly, result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import (
    Precision,
    SVCCAWarning,
    as_representation,
    check_epsilon,
    check_probability,
    raise_degenerate,
    warn_few_samples,
)

# Condition number of a side's whitened block past which float32 sums (relative error
# ~1e-5) can move its canonical correlations by more than ~0.1: prepare_side warns.
FLOAT32_COND_LIMIT = 1e5

__all__ = [
    "CCAResult",
    "CCASide",
    "canonical_correlations",
    "cca",
    "cca_from_moments",
    "cca_of_sides",
    "prepare_side",
    "project",
    "roundoff_bound",
    "svd_of_cross",
    "cross_label",
    "thresholded_mean",
    "whitened_cross",
]


def thresholded_mean(correlations: np.ndarray, threshold: float) -> float:
    """Mean of the fewest leading correlations whose sum reaches ``threshold`` of the total.

    The summary google/svcca reports as ``mean``: it drops the trailing near-zero
    coefficients that make up the last ``1 - threshold`` of the sum. At least one
    coefficient is kept (the original returned NaN for ``threshold=0``); an all-zero
    set gives 0.
    """
    if correlations.size == 0:
        return 0.0
    total = float(np.sum(correlations))
    if total <= 0.0:
        return 0.0
    share = np.cumsum(correlations) / total
    count = int(np.searchsorted(share, threshold, side="left")) + 1
    count = min(max(count, 1), correlations.size)
    return float(np.mean(correlations[:count]))


# ---------------------------------------------------------------------- prepare a side
class CCASide:
    """One representation prepared for CCA: what is kept, and its whitening factor.

    Everything here depends on one side only (its ``S_xx`` block), so the pairwise
    engine and the permutation test prepare each representation once and combine it
    with many others.

    Attributes
    ----------
    name : str
        How errors and warnings refer to the representation.
    p : int
        Features before pruning.
    kept : ndarray of int
        Features kept (not constant, not below ``epsilon``).
    pruned : Pruned
        Features removed, and why.
    white : Whitener
        ``W`` with ``W^T S_kk W = I_r`` on the kept block.
    mean : ndarray, shape (p,)
        Feature means (a copy).
    cond : float
        How much the whitening amplifies errors of the cross blocks, squared: the
        condition number of the whitened correlation block, or of the block itself when
        its errors are normwise (SVCCA's reduced blocks).
    eps : float
        Unit round-off of the products the block was summed from (``Moments.eps``).
    scale : float
        The power of two the block's data were divided by (``Moments.scale_x``): the
        whitening is of ``(x - mean) / scale``, so data-space weights divide by it.
    offset : float
        ``eps * max_j |mean_j| / std_j`` over the kept features (0 until
        :func:`with_offset` sets it): data far from the origin are held to ``eps`` of
        their offset, and merged statistics carry that relative error in their sums.
    """

    __slots__ = ("name", "p", "kept", "pruned", "white", "mean", "cond", "eps", "scale", "offset")

    def __init__(
        self,
        name: str,
        p: int,
        kept: np.ndarray,
        pruned: Pruned,
        white: Whitener,
        mean: np.ndarray,
        cond: float,
        eps: float = EPS,
        scale: float = 1.0,
    ) -> None:
        self.name, self.p, self.kept, self.pruned = name, p, kept, pruned
        self.white, self.mean, self.cond, self.eps = white, mean, cond, eps
        self.scale = scale
        # eps |mean| / std of the side's worst feature (:func:`with_offset`): the relative
        # error the rounding of means at an offset leaves in its centred sums
        self.offset = 0.0

    @property
    def rank(self) -> int:
        """Dimensions left after pruning and removing linearly dependent features."""
        return self.white.rank

    def left(self, A: np.ndarray) -> np.ndarray:
        """``W^T A[kept]`` for a cross block ``A`` with this side's ``p`` rows: ``(r, m)``."""
        return self.white.apply_t(_rows(A, self.kept))

    def right(self, B: np.ndarray) -> np.ndarray:
        """``B[:, kept] W`` for a block ``B`` with this side's ``p`` columns: ``(m, r)``."""
        return self.white.apply_t(_rows(B.T, self.kept)).T


def prepare_side(
    S: np.ndarray,
    mean: np.ndarray,
    epsilon: float,
    name: str,
    *,
    cond: float = 1.0,
    eps: float = EPS,
    scale: float = 1.0,
    n: int = 0,
) -> CCASide:
    """Prune and whiten one side from its centred cross-product block ``S`` (``p x p``).

    ``cond`` is a lower bound on :attr:`CCASide.cond` for blocks whose cross-product
    errors are normwise rather than per feature (SVCCA passes its kept spectrum's
    ``lambda_1 / lambda_k``). ``eps`` is the unit round-off of the products behind ``S``
    (``Moments.eps``); ``scale`` the sums' unit (``Moments.scale_x``); ``n`` the sample
    count, when given: features that vary but were pruned as numerically constant are
    warned about. For float32 sums a warning says when the whitening amplifies
    their round-off past 1e-2.

    Raises
    ------
    DegenerateError
        When nothing is left to compare: every feature constant or pruned.
    """
    p = S.shape[0]
    kept, pruned = prune(np.diag(S).copy(), epsilon)
    if n > 1:
        _warn_varying_pruned(pruned, S, mean, n, scale, name)
    if kept.size == 0:
        reasons = {r: pruned.reasons.count(r) for r in dict.fromkeys(pruned.reasons)}
        detail = ", ".join(f"{c} {r}" for r, c in reasons.items())
        # epsilon is relative to the largest variance (< 1), so it never prunes the
        # largest feature: only constant features leave nothing, and lowering it is no fix.
        raise_degenerate(name, p, f"every feature was pruned ({detail})")
    with _dense.factorising(f"representation {name}"):
        white = Whitener.fit(_submatrix(S, kept, kept), eps)
    side = CCASide(name, p, kept, pruned, white, readonly(mean), max(white.cond, cond), eps, scale)
    if eps > EPS:
        _warn_float32(side, kept.size - white.rank)
    return side


def _warn_varying_pruned(
    pruned: Any, S: np.ndarray, mean: np.ndarray, n: int, scale: float, name: str
) -> None:
    """Say when features that vary were pruned as numerically constant: their variance
    is below 1e-12 of the layer's largest, where float64 sums cannot tell it from the
    round-off of the large ones; CCA ignores per-feature scales, so standardising the
    features first keeps them. A feature whose spread is at the round-off of its own
    mean (``std < 1e3 eps |mean|``: a constant stored at an offset) is constant indeed."""
    varying = []
    for i, r in zip(pruned.indices, pruned.reasons, strict=True):
        if r != "numerically constant":
            continue
        std = float(np.sqrt(max(S[i, i], 0.0) / (n - 1))) * scale
        if std > 1e3 * EPS * abs(float(mean[i])):
            varying.append(int(i))
    if varying:
        warnings.warn(
            f"{name}: {len(varying)} features that vary (first: {varying[:5]}) have variances "
            "below 1e-12 of the layer's largest and were pruned as numerically constant. If "
            "they carry signal at that scale, standardise the features first "
            "(X / X.std(axis=0)): CCA does not depend on per-feature scales.",
            SVCCAWarning,
            stacklevel=4,
        )


def _warn_float32(side: CCASide, dropped: int) -> None:
    """Warn when float32 sums cannot resolve a side: directions lost, or amplified error."""
    if dropped:
        what = (
            f"{dropped} of its {side.kept.size} directions have eigenvalues below float32's "
            f"resolution ({rank_rtol(side.eps):.1e} of the largest) and were dropped (exact "
            "duplicates or linear combinations of other neurons are dropped in float64 too; "
            "real small-variance directions are not)"
        )
    elif side.cond > FLOAT32_COND_LIMIT:
        what = (
            f"its whitened block has condition number {side.cond:.3g}, so the round-off of "
            f"float32 cross-products (about {64 * side.eps:.0e} relative) can move the "
            f"canonical correlations by up to about {min(64 * side.eps * side.cond, 1):.2g}"
        )
    else:
        return
    warnings.warn(
        f"{side.name}: {what}. Use precision='float64' for this layer.",
        SVCCAWarning,
        stacklevel=4,
    )


# ---------------------------------------------------------------------- combine
def cross_label(sx: CCASide, sy: CCASide) -> str:
    """What a cross block of ``sx`` and ``sy`` is called in a factorisation's error."""
    return f"the whitened cross block of {sx.name} and {sy.name}"


def whitened_cross(sx: CCASide, sy: CCASide, Sxy: np.ndarray) -> np.ndarray:
    """``M = W_x^T S_xy W_y`` (kept rows and columns): its singular values are the CCs."""
    return sy.right(sx.left(Sxy))


def with_offset(side: CCASide, S: np.ndarray, n: int) -> CCASide:
    """Record on ``side`` how far its data sit from the origin, relative to their spread.

    Data stored at an offset ``c`` hold ``eps |c|`` absolute round-off (``fl(x + c)``),
    and statistics merged from blocks (Dask, batches) take that relative error,
    ``eps |c| / std``, into their centred sums at first order. ``S`` is the block the
    side was prepared from (``p x p``, in units of ``side.scale``, aligned with
    ``side.mean``).
    """
    if n < 2 or side.kept.size == 0:
        return side
    d = np.diag(S)[side.kept]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.abs(side.mean[side.kept]) / side.scale / np.sqrt(np.maximum(d, 0) / (n - 1))
    finite = ratio[np.isfinite(ratio)]
    side.offset = float(side.eps * finite.max()) if finite.size else 0.0
    return side


def roundoff_bound(M: np.ndarray, sx: CCASide, sy: CCASide) -> float:
    """Round-off bound on the correlations (singular values of ``M``, at most 1).

    An error ``delta`` in the (correlation-scaled) cross block reaches ``M`` amplified
    by ``||W_x|| ||W_y|| <= sqrt(cond_x cond_y)``, and an error in a side's own block
    moves the correlations by up to ``delta cond`` (first order); the products that
    formed the blocks and the backward-stable factorisations contribute
    ``delta ~ (r_x + r_y) eps`` and the Gram eigenvalues ``k eps``. A correlation beyond
    ``1 + bound`` is not round-off.
    """
    k = max(M.shape) if M.size else 1
    eps = max(sx.eps, sy.eps)
    cond = max(sx.cond, sy.cond)
    # Data at an offset: their sums carry a relative error eps |c| / std (with_offset),
    # which the whitening amplifies as any error of the blocks.
    return 64 * eps * (k + (sx.rank + sy.rank) * cond) + 8 * (sx.offset + sy.offset) * cond


def canonical_correlations(M: np.ndarray, tol: float) -> np.ndarray:
    """Singular values of the whitened cross block ``M``, descending.

    Computed as square roots of the eigenvalues of the smaller Gram matrix (``M M^T`` or
    ``M^T M``): three times cheaper than the SVD at p = 2048, with an absolute error of
    about ``eps / (2 rho)``, i.e. below 1e-10 for every correlation above 1e-6;
    correlations that are exactly 0 come out as about ``sqrt((p + q) eps)`` (1e-8 at
    p + q = 10, 7e-7 at p = q = 2048). ``tol`` bounds the round-off of ``M`` itself
    (:func:`roundoff_bound`); squared correlations outside ``[-tol, 1 + tol]`` raise
    instead of being clipped.
    """
    if M.size == 0:
        return np.zeros(0)
    rho2 = _dense.eigvalsh(_dense.smaller_gram(M))[::-1]
    return np.sqrt(clip_roundoff(rho2, 0.0, 1.0, 2 * tol, "A squared canonical correlation"))


def svd_of_cross(M: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``M = U diag(rho) V^T`` of a whitened cross block, deterministic signs.

    ``rho`` are the canonical correlations (clipped to [0, 1] within the round-off bound
    ``tol``, raising beyond it); ``U``, ``V`` the whitened canonical directions.
    """
    U, s, Vt = _dense.svd(M)
    U, V = flip_signs(U, Vt.T)
    assert V is not None
    return U, clip_roundoff(s, 0.0, 1.0, tol, "A canonical correlation"), V


class _CCASolver:
    """Both prepared sides and their whitened cross block; the SVD is computed on first use.

    Holds copies only (the sides' means and factors), never the caller's statistic.
    """

    def __init__(self, sx: CCASide, sy: CCASide, Sxy: np.ndarray) -> None:
        self.sx, self.sy = sx, sy
        self.M = whitened_cross(sx, sy, Sxy)
        self.tol = roundoff_bound(self.M, sx, sy)

    def correlations(self) -> np.ndarray:
        with _dense.factorising(cross_label(self.sx, self.sy)):
            return canonical_correlations(self.M, self.tol)

    @cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``M = U diag(s) V^T`` with the thin factors and deterministic signs."""
        with _dense.factorising(cross_label(self.sx, self.sy)):
            return svd_of_cross(self.M, self.tol)

    def full_weights(self, side: str) -> np.ndarray:
        """Weights over all original features (zeros for pruned ones), unit-norm variates."""
        U, _, V = self.svd
        s, coords = (self.sx, U) if side == "x" else (self.sy, V)
        out = np.zeros((s.p, coords.shape[1]))
        out[s.kept] = s.white.weights(coords)
        if s.scale != 1.0:
            with np.errstate(over="ignore", under="ignore"):  # beyond float64: inf / 0
                out /= s.scale
        return out


def _submatrix(S: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``S[rows][:, cols]``, without a copy when every row and column is kept."""
    if rows.size == S.shape[0] and cols.size == S.shape[1]:
        return S
    return S[np.ix_(rows, cols)]


def _rows(A: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``A[rows]``, without a copy when every row is kept."""
    return A if rows.size == A.shape[0] else A[rows]


@result
class CCAResult:
    """Canonical correlation analysis of two representations.

    Attributes
    ----------
    correlations : ndarray, shape (k,)
        All canonical correlations, descending, ``k = min(rank_x, rank_y)``.
    score : float
        Their mean, the headline similarity in [0, 1].
    mean_squared : float
        Mean of the squared correlations (``R^2_CCA``, Kornblith et al. 2019).
    thresholded_mean : float
        google/svcca's ``mean``: the mean of the leading correlations that make up
        ``threshold`` of their sum.
    threshold : float
        The threshold used for ``thresholded_mean``.
    n_samples : int
    n_features : tuple of int
        ``(p, q)``.
    rank_x, rank_y : int
        Dimensions left after pruning and after removing linearly dependent features.
    pruned_x, pruned_y : Pruned
        Features removed as constant or low-variance, and why.
    epsilon : float
        Relative variance threshold used for pruning.
    """

    correlations: np.ndarray
    score: float
    mean_squared: float
    thresholded_mean: float
    threshold: float
    n_samples: int
    n_features: tuple[int, int]
    rank_x: int
    rank_y: int
    pruned_x: Pruned
    pruned_y: Pruned
    epsilon: float
    _solver: _CCASolver = field(repr=False, compare=False)

    @cached_property
    def weights_x(self) -> np.ndarray:
        """``(p, k)`` weights: column ``i`` maps centred X to its ``i``-th canonical variate.

        Scaled so each variate has unit sample variance (``ddof=1``) on the fitted data;
        rows of pruned features are zero. Signs follow a deterministic convention (largest
        whitened coordinate positive); the correlations do not depend on them.
        """
        return readonly(self._solver.full_weights("x") * np.sqrt(self.n_samples - 1))

    @cached_property
    def weights_y(self) -> np.ndarray:
        """``(q, k)`` weights for Y, paired with :attr:`weights_x`."""
        return readonly(self._solver.full_weights("y") * np.sqrt(self.n_samples - 1))

    @property
    def mean_x(self) -> np.ndarray:
        """Feature means of X on the fitted data, ``(p,)``."""
        return self._solver.sx.mean

    @property
    def mean_y(self) -> np.ndarray:
        """Feature means of Y on the fitted data, ``(q,)``."""
        return self._solver.sy.mean

    def transform(self, X: Any, Y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Canonical variates of these or new datapoints.

        Parameters
        ----------
        X : array_like, shape (m, p)
        Y : array_like, shape (m, q), optional

        Returns
        -------
        u : ndarray, shape (m, k)
            ``(X - mean_x) @ weights_x``.
        v : ndarray, shape (m, k) or None
            ``(Y - mean_y) @ weights_y`` when ``Y`` is given.
        """
        u = project(X, "X", self.mean_x, self.weights_x)
        v = None if Y is None else project(Y, "Y", self.mean_y, self.weights_y)
        return u, v


def project(A: Any, name: str, mean: np.ndarray, weights: np.ndarray) -> np.ndarray:
    A = as_representation(A, name)
    if A.shape[1] != mean.size:
        raise ValueError(
            f"{name} has {A.shape[1]} features but the fitted representation had {mean.size}."
        )
    return (np.asarray(A, dtype=np.float64) - mean) @ weights


def cca_from_moments(
    m: Moments, *, epsilon: float, threshold: float, names: tuple[str, str] = ("X", "Y")
) -> CCAResult:
    """CCA of a validated statistic (no argument checks): prepare both sides, combine once."""
    sx = prepare_side(m.sxx, m.mean_x, epsilon, names[0], eps=m.eps, scale=m.scale_x, n=m.n)
    sy = prepare_side(m.syy, m.mean_y, epsilon, names[1], eps=m.eps, scale=m.scale_y, n=m.n)
    with_offset(sx, m.sxx, m.n)
    with_offset(sy, m.syy, m.n)
    return cca_of_sides(sx, sy, m.sxy, m.n, threshold=threshold, epsilon=epsilon)


def cca_of_sides(
    sx: CCASide, sy: CCASide, Sxy: np.ndarray, n: int, *, threshold: float, epsilon: float
) -> CCAResult:
    """The :class:`CCAResult` of two prepared sides and their cross block."""
    solver = _CCASolver(sx, sy, Sxy)
    rho = solver.correlations()
    return CCAResult(
        correlations=rho,
        score=float(rho.mean()),
        mean_squared=float(np.mean(rho**2)),
        thresholded_mean=thresholded_mean(rho, threshold),
        threshold=threshold,
        n_samples=n,
        n_features=(sx.p, sy.p),
        rank_x=sx.rank,
        rank_y=sy.rank,
        pruned_x=sx.pruned,
        pruned_y=sy.pruned,
        epsilon=epsilon,
        _solver=solver,
    )


def cca(
    X: Any,
    Y: Any = None,
    *,
    epsilon: float = 0.0,
    threshold: float = 0.98,
    precision: Precision = "float64",
) -> CCAResult:
    r"""Canonical correlation analysis between two representations of the same datapoints.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
        First representation (rows are datapoints, columns neurons), or a
        :class:`~svcca.Moments` holding both sides (then leave ``Y`` out).
    Y : array_like, shape (n_samples, q)
        Second representation of the same datapoints.
    epsilon : float, default 0.0
        Prune features whose variance is below ``epsilon`` times the layer's largest
        variance (google/svcca's relative ``epsilon``). Features below 1e-12 of it are
        always pruned as numerically constant.
    threshold : float, default 0.98
        Fraction of the correlations' sum used for :attr:`CCAResult.thresholded_mean`.
    precision : {"float64", "float32"}, default "float64"
        How the cross-products of array inputs are taken. ``"float32"`` (float32
        products, float64 sums) is about twice as fast on float32 activations; its
        errors are near 1e-7 of the entries (see :class:`~svcca.Moments`); do not use it
        for ill-conditioned layers (a warning says when). A Moments input keeps its
        own.

    Returns
    -------
    CCAResult
        ``.correlations`` (all ``min(rank_x, rank_y)`` of them, descending), ``.score``
        (their mean), weights, pruning report and ``.transform`` for variates.

    Notes
    -----
    With centred cross-product blocks :math:`S_{xx}, S_{yy}, S_{xy}` and whitening
    factors :math:`W_x^T S_{xx} W_x = I`, :math:`W_y^T S_{yy} W_y = I`, the canonical
    correlations are the singular values of :math:`M = W_x^T S_{xy} W_y` and the weights
    are :math:`W_x U`, :math:`W_y V`. The whitening uses a Cholesky factor of the
    correlation matrix (an eigendecomposition when features are linearly dependent), so
    the condition number is never squared as it is with ``pinv`` followed by a matrix
    square root. The correlations are the square roots of the eigenvalues of the
    smaller of :math:`M M^T` and :math:`M^T M`, accurate to about
    :math:`\epsilon / (2\rho)`: below 1e-10 for every correlation above 1e-6, and
    within about :math:`\sqrt{(p + q)\epsilon}` of 0 for exactly uncorrelated
    directions. The weights (one SVD of
    :math:`M`) are computed on first access.

    .. warning:: google/svcca's ``mean`` is the *thresholded* mean
       (:attr:`CCAResult.thresholded_mean`), not the mean of all correlations
       (:attr:`CCAResult.score`). Papers built on it report the former.

    References
    ----------
    .. [1] H. Hotelling, "Relations between two sets of variates", Biometrika, 1936.
    .. [2] M. Raghu, J. Gilmer, J. Yosinski, J. Sohl-Dickstein, "SVCCA: Singular Vector
       Canonical Correlation Analysis for Deep Learning Dynamics and Interpretability",
       NeurIPS 2017, arXiv:1706.05806.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 10))
    >>> Y = X @ rng.standard_normal((10, 10))        # an invertible map of X
    >>> round(svcca.cca(X, Y).score, 6)
    1.0
    """
    epsilon = check_epsilon(epsilon)
    threshold = check_probability(threshold, "threshold")
    m = to_moments(X, Y, precision=precision)
    with dense_steps(max(m.p, m.q), m.device):
        res = cca_from_moments(m, epsilon=epsilon, threshold=threshold)
    warn_few_samples(m.n, res.rank_x, res.rank_y)
    return res
