"""Canonical correlation analysis on the sufficient statistic."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from svcca._validation import (
    as_representation,
    check_epsilon,
    check_probability,
    warn_few_samples,
)
from svcca.measures._linalg import Pruned, Whitener, flip_signs, prune
from svcca.sources._to_moments import to_moments
from svcca.statistic._moments import Moments

__all__ = ["CCAResult", "cca", "cca_from_moments", "project", "thresholded_mean"]


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


class _CCASolver:
    """The whitened cross-product and its factors; weights are computed on first use."""

    def __init__(self, m: Moments, epsilon: float) -> None:
        self.moments = m
        self.kept_x, self.pruned_x = prune(np.diag(m.sxx).copy(), epsilon)
        self.kept_y, self.pruned_y = prune(np.diag(m.syy).copy(), epsilon)
        self.wx: Whitener | None = None
        self.wy: Whitener | None = None
        self.M = np.zeros((0, 0))
        if self.kept_x.size and self.kept_y.size:
            kx, ky = self.kept_x, self.kept_y
            self.wx = Whitener.fit(_submatrix(m.sxx, kx, kx))
            self.wy = Whitener.fit(_submatrix(m.syy, ky, ky))
            left = self.wx.apply_t(_submatrix(m.sxy, kx, ky))
            self.M = self.wy.apply_t(left.T).T

    def correlations(self) -> np.ndarray:
        """Singular values of the whitened cross-product, descending.

        Computed as square roots of the eigenvalues of the smaller Gram matrix
        (``M M^T`` or ``M^T M``): three times cheaper than the SVD at p = 2048, with an
        absolute error of about ``eps / (2 rho)``, i.e. below 1e-10 for every
        correlation above 1e-6; correlations that are exactly 0 come out below 2e-8.
        """
        M = self.M
        if M.size == 0:
            return np.zeros(0)
        G = M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M
        rho2 = np.linalg.eigvalsh(G)[::-1]
        return np.sqrt(np.clip(rho2, 0.0, 1.0))

    @cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``M = U diag(s) V^T`` with the thin factors and deterministic signs."""
        U, s, Vt = np.linalg.svd(self.M, full_matrices=False)
        U, V = flip_signs(U, Vt.T)
        return U, np.clip(s, 0.0, 1.0), V  # type: ignore[return-value]

    def full_weights(self, side: str) -> np.ndarray:
        """Weights over all original features (zeros for pruned ones), unit-norm variates."""
        U, _, V = self.svd
        if side == "x":
            kept, white, p, coords = self.kept_x, self.wx, self.moments.p, U
        else:
            kept, white, p, coords = self.kept_y, self.wy, self.moments.q, V
        out = np.zeros((p, coords.shape[1]))
        if white is not None:
            out[kept] = white.weights(coords)
        return out


def _submatrix(S: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``S[rows][:, cols]``, without a copy when every row and column is kept."""
    if rows.size == S.shape[0] and cols.size == S.shape[1]:
        return S
    return S[np.ix_(rows, cols)]


@dataclass(frozen=True)
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
        return self._solver.full_weights("x") * np.sqrt(self.n_samples - 1)

    @cached_property
    def weights_y(self) -> np.ndarray:
        """``(q, k)`` weights for Y, paired with :attr:`weights_x`."""
        return self._solver.full_weights("y") * np.sqrt(self.n_samples - 1)

    @property
    def mean_x(self) -> np.ndarray:
        """Feature means of X on the fitted data, ``(p,)``."""
        return self._solver.moments.mean_x

    @property
    def mean_y(self) -> np.ndarray:
        """Feature means of Y on the fitted data, ``(q,)``."""
        return self._solver.moments.mean_y

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


def cca_from_moments(m: Moments, *, epsilon: float, threshold: float) -> CCAResult:
    """CCA of a validated statistic (no input checks)."""
    solver = _CCASolver(m, epsilon)
    rho = solver.correlations()
    return CCAResult(
        correlations=rho,
        score=float(rho.mean()) if rho.size else 0.0,
        mean_squared=float(np.mean(rho**2)) if rho.size else 0.0,
        thresholded_mean=thresholded_mean(rho, threshold),
        threshold=threshold,
        n_samples=m.n,
        n_features=(m.p, m.q),
        rank_x=solver.wx.rank if solver.wx is not None else 0,
        rank_y=solver.wy.rank if solver.wy is not None else 0,
        pruned_x=solver.pruned_x,
        pruned_y=solver.pruned_y,
        epsilon=epsilon,
        _solver=solver,
    )


def cca(
    X: Any,
    Y: Any = None,
    *,
    epsilon: float = 0.0,
    threshold: float = 0.98,
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
    within 2e-8 of 0 for exactly uncorrelated directions. The weights (one SVD of
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
    m = to_moments(X, Y)
    warn_few_samples(m.n, m.p, m.q)
    return cca_from_moments(m, epsilon=epsilon, threshold=threshold)
