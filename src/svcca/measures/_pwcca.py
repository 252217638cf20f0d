"""Projection-weighted CCA (Morcos, Raghu & Bengio 2018)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from svcca._validation import check_epsilon
from svcca.measures._cca import CCAResult, cca_from_moments
from svcca.sources._to_moments import to_moments

__all__ = ["PWCCAResult", "pwcca"]


@dataclass(frozen=True)
class PWCCAResult:
    """Projection-weighted CCA.

    Attributes
    ----------
    score : float
        ``sum_i weights[i] * correlations[i]``.
    weights : ndarray, shape (k,)
        Non-negative, summing to 1: how much of the weighting side's activity each
        canonical variate accounts for.
    correlations : ndarray, shape (k,)
        The canonical correlations the weights apply to, descending.
    weighted_by : {"x", "y"}
        The side whose neurons define the weights: the one with fewer kept features
        (``"x"`` on a tie).
    cca : CCAResult
        The underlying CCA.
    """

    score: float
    weights: np.ndarray
    correlations: np.ndarray
    weighted_by: str
    cca: CCAResult


def pwcca(X: Any, Y: Any = None, *, epsilon: float = 0.0) -> PWCCAResult:
    """Projection-weighted CCA between two representations.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    epsilon : float, default 0.0
        Relative variance threshold for pruning, as in :func:`svcca.cca`.

    Returns
    -------
    PWCCAResult

    Notes
    -----
    Let ``h_i`` be the ``i``-th canonical variate of the weighting side ``X`` (centred,
    normalised to unit length) and ``x_j`` its centred neurons. The weight of
    correlation ``rho_i`` is :math:`\\alpha_i \\propto \\sum_j |\\langle h_i, x_j
    \\rangle|`, normalised to sum to 1, and the score is :math:`\\sum_i \\alpha_i
    \\rho_i` (Morcos et al. 2018, Sec. 2.3). With whitening factor :math:`W` and
    whitened directions :math:`U` the inner products are the columns of
    :math:`S_{xx} W U`, so PWCCA is computed from the moments alone. The weighting side
    is the one with fewer kept features (the first argument on a tie), whose variates
    span its whole space.

    The score is invariant to permutations, sign flips and isotropic scaling of the
    neurons, and to any invertible map of the *other* side; it is not invariant to
    general rotations of the weighting side (its weights sum absolute projections over
    neurons).

    .. warning:: google/svcca's ``pwcca.compute_pwcca`` builds its "directions" without
       the whitening step and adds the means back, so its value depends on the signs
       LAPACK gives singular vectors; with fewer kept neurons in the second argument it
       indexes the wrong array. :func:`svcca.compat.compute_pwcca` keeps its algorithm
       (minus the indexing bug); this function follows the paper.

    References
    ----------
    .. [1] A. Morcos, M. Raghu, S. Bengio, "Insights on representational similarity in
       neural networks with canonical correlation", NeurIPS 2018, arXiv:1806.05759.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 8))
    >>> round(svcca.pwcca(X, X @ rng.standard_normal((8, 8))).score, 6)
    1.0
    """
    epsilon = check_epsilon(epsilon)
    m = to_moments(X, Y)
    res = cca_from_moments(m, epsilon=epsilon, threshold=0.98)
    solver = res._solver
    side = "x" if solver.kept_x.size <= solver.kept_y.size else "y"
    if solver.M.size == 0:
        return PWCCAResult(0.0, np.zeros(0), np.zeros(0), side, res)
    U, rho, V = solver.svd
    white = solver.wx if side == "x" else solver.wy
    assert white is not None
    proj = np.abs(white.colour(U if side == "x" else V)).sum(axis=0)
    total = proj.sum()
    weights = proj / total if total > 0 else np.full(proj.size, 1.0 / proj.size)
    return PWCCAResult(float(weights @ rho), weights, rho, side, res)
