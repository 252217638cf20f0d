"""Projection-weighted CCA (Morcos, Raghu & Bengio 2018)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from scipy.special import gammaln

from svcca._measures._cca import CCAResult, CCASide, cca_from_moments
from svcca._measures._linalg import EPS
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import Precision, check_epsilon, check_option, warn_few_samples

__all__ = [
    "PWCCAResult",
    "projection_weights",
    "pwcca",
    "pwcca_weights",
    "tie_gap",
    "tied_groups",
]


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
    neurons). It is asymmetric by definition, the weights coming from one side: with
    ranks that differ, ``pwcca(X, Y)`` and ``pwcca(Y, X)`` both weigh by the narrower
    side and agree; with equal ranks each weighs by its first argument.

    Canonical correlations that tie (equal within their round-off bound; e.g. every
    direction the two sides share, such as a DenseNet block's input concatenated into
    its output, has correlation 1) have variates that are any orthonormal basis of one
    subspace, and the paper's weight of that group depends on the basis. Each member of
    a tied group of ``g`` then weighs the mean of its weight over every basis,
    :math:`m_g \\sum_j \\|P_j\\|_2` (:math:`P_j` neuron ``j``'s projections on the
    group, :math:`m_g` the mean of :math:`|u_1|` for ``u`` uniform on the unit sphere
    of :math:`R^g`), so the score does not depend on LAPACK's choice: the single call,
    :func:`svcca.pairwise` and both argument orders agree.

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
        weights, side = pwcca_weights(solver.sx, solver.sy, U, V, rho, weight_by)
    return PWCCAResult(float(weights @ rho), weights, rho, side, res)


def pwcca_weights(
    sx: CCASide,
    sy: CCASide,
    U: np.ndarray,
    V: np.ndarray,
    rho: np.ndarray,
    weight_by: WeightBy = "smaller",
) -> tuple[np.ndarray, str]:
    """PWCCA's weights from two prepared sides and the SVD ``M = U diag(rho) V^T``.

    Correlations within :func:`tie_gap` of each other are tied (:func:`tied_groups`).
    Returns the weights (non-negative, summing to 1) and the weighting side, ``"x"``,
    ``"y"`` (by default the one of smaller rank, ``"x"`` on a tie) or ``"mean"``.
    """
    if weight_by == "mean":
        wx, _ = pwcca_weights(sx, sy, U, V, rho, "x")
        wy, _ = pwcca_weights(sx, sy, U, V, rho, "y")
        return 0.5 * (wx + wy), "mean"
    side = weight_by if weight_by in ("x", "y") else "x" if sx.rank <= sy.rank else "y"
    white, coords = (sx.white, U) if side == "x" else (sy.white, V)
    proj = projection_weights(white.colour(coords), tied_groups(rho, tie_gap(sx, sy)))
    total = proj.sum()
    # total > 0: the weighting side is not degenerate (prepare_side refused it), so each
    # unit variate has a non-zero inner product with some neuron.
    return proj / total, side


def tie_gap(sx: CCASide, sy: CCASide) -> float:
    """Correlations closer than this are tied: ``64 eps (r_x + r_y)``, with ``eps`` the
    unit round-off of the statistic's products.

    Correlations equal in exact arithmetic (shared columns) come out about ``eps``
    apart: 1e-15 in float64 (at whitening condition numbers up to 2e3), 4e-7 from
    float32 sums. The gap stays below the spacing of distinct correlations of real
    layers (1.4e-3 between the closest of a float32 test pair whose bound is 3e-4):
    grouping those would move the score by their share of the weight times their
    distance from it. (Not the clipping bound ``roundoff_bound``, a worst case that
    grows with the condition number: 1e-1 for that pair.)
    """
    eps = max(sx.eps, sy.eps, EPS)
    return float(64 * eps * (sx.rank + sy.rank))


def tied_groups(rho: np.ndarray, gap: float) -> list[slice]:
    """Runs of the descending ``rho`` whose neighbours are at most ``gap`` apart.

    Correlations that equal within round-off are one tied group: their canonical
    variates are any orthonormal basis of one subspace (one side holding columns of the
    other, as a DenseNet block's concatenated output, ties all their correlations at 1).
    """
    edges = [0, *(np.flatnonzero(np.abs(np.diff(rho)) > gap) + 1).tolist(), rho.size]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def projection_weights(C: np.ndarray, groups: list[slice]) -> np.ndarray:
    """Unnormalised PWCCA weights from the inner products ``C`` (neurons x variates).

    A variate alone weighs ``sum_j |C_ji|`` (Morcos et al.). Within a tied group of
    ``g`` variates that sum depends on which orthonormal basis of the group's subspace
    the SVD returned, and so would the score (the group's share of the weight). Each
    member weighs instead the mean of it over every basis (uniformly random rotations):
    with ``P_j`` neuron ``j``'s projections on the group, ``E sum_j |(Q P_j)_1| =
    m_g sum_j ||P_j||_2``, ``m_g = E|u_1| = Gamma(g/2) / (sqrt(pi) Gamma((g+1)/2))``
    for ``u`` uniform on the unit sphere of ``R^g`` (``m_1 = 1``: untied variates keep the
    paper's weight). The weights are then unique, and so is the score.
    """
    proj = np.abs(C).sum(axis=0)
    for g in groups:
        size = g.stop - g.start
        if size > 1:
            mean_abs = math.exp(gammaln(size / 2) - gammaln((size + 1) / 2)) / math.sqrt(math.pi)
            proj[g] = mean_abs * float(np.linalg.norm(C[:, g], axis=1).sum())
    return proj
