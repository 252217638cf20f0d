"""Projection-weighted CCA (Morcos, Raghu & Bengio 2018)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from svcca._result import result
from svcca._threads import dense_steps
from svcca._validation import Precision, check_epsilon, check_option, warn_few_samples
from svcca.measures._cca import CCAResult, CCASide, cca_from_moments
from svcca.sources._to_moments import to_moments

__all__ = ["PWCCAResult", "pwcca", "pwcca_weights"]


@result
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
    weighted_by : {"x", "y", "mean"}
        The side whose neurons define the weights: by default the one of smaller rank
        (fewer whitened dimensions after pruning; ``"x"`` on a tie), whose variates span
        its whole space; ``"mean"`` when the weights of both sides were averaged.
    cca : CCAResult
        The underlying CCA.
    """

    score: float
    weights: np.ndarray
    correlations: np.ndarray
    weighted_by: str
    cca: CCAResult


WeightBy = Literal["smaller", "x", "y", "mean"]


def pwcca(
    X: Any,
    Y: Any = None,
    *,
    epsilon: float = 0.0,
    weight_by: WeightBy = "smaller",
    precision: Precision = "float64",
) -> PWCCAResult:
    """Projection-weighted CCA between two representations.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    epsilon : float, default 0.0
        Relative variance threshold for pruning, as in :func:`svcca.cca`.
    weight_by : {"smaller", "x", "y", "mean"}, default "smaller"
        Whose neurons weigh the correlations. ``"smaller"``: the side of smaller rank,
        the only one whose ``min(rank_x, rank_y)`` variates span all of it, as the
        paper's weights assume. ``"x"``: always the first argument (google/svcca's and
        anatome's convention, for layers of equal width the same number); ``"y"`` the
        second; ``"mean"``: the average of both weightings (repsim's ``pwcca``). See
        docs/conventions.md.
    precision : {"float64", "float32"}, default "float64"
        How the cross-products of array inputs are taken. ``"float32"`` (float32
        products, float64 sums) is about twice as fast on float32 activations; its
        errors are near 1e-7 of the entries (see :class:`~svcca.Moments`); do not use it
        for ill-conditioned layers (a warning says when). A Moments input keeps its
        own.

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
    is the one of smaller rank (``CCAResult.rank_x`` vs ``rank_y``: dimensions left
    after pruning and removing linearly dependent neurons; the first argument on a
    tie). There are ``min(rank_x, rank_y)`` canonical variates, so only on that side do
    they span the whole space of the neurons, as the paper's weights assume.

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
    weight_by = check_option(weight_by, "weight_by", WeightBy)  # type: ignore[assignment]
    m = to_moments(X, Y, precision=precision)
    with dense_steps(max(m.p, m.q), m.device):
        res = cca_from_moments(m, epsilon=epsilon, threshold=0.98)
        warn_few_samples(m.n, res.rank_x, res.rank_y)
        solver = res._solver
        U, rho, V = solver.svd
        weights, side = pwcca_weights(solver.sx, solver.sy, U, V, weight_by)
    return PWCCAResult(float(weights @ rho), weights, rho, side, res)


def pwcca_weights(
    sx: CCASide,
    sy: CCASide,
    U: np.ndarray,
    V: np.ndarray,
    weight_by: WeightBy = "smaller",
) -> tuple[np.ndarray, str]:
    """PWCCA's weights from two prepared sides and the SVD ``M = U diag(rho) V^T``.

    Returns the weights (non-negative, summing to 1) and the weighting side, ``"x"``,
    ``"y"`` (by default the one of smaller rank, ``"x"`` on a tie) or ``"mean"``.
    """
    if weight_by == "mean":
        wx, _ = pwcca_weights(sx, sy, U, V, "x")
        wy, _ = pwcca_weights(sx, sy, U, V, "y")
        return 0.5 * (wx + wy), "mean"
    side = weight_by if weight_by in ("x", "y") else "x" if sx.rank <= sy.rank else "y"
    white, coords = (sx.white, U) if side == "x" else (sy.white, V)
    proj = np.abs(white.colour(coords)).sum(axis=0)
    total = proj.sum()
    # total > 0: the weighting side is not degenerate (prepare_side refused it), so each
    # unit variate has a non-zero inner product with some neuron.
    return proj / total, side
