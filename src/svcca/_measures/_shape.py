"""Orthogonal Procrustes distance and the generalized shape metrics of Williams et al."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

import svcca._dense as _dense
from svcca._measures._linalg import EPS, Whitener, prune
from svcca._moments import Moments
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import check_option, check_real, raise_degenerate, warn_few_samples

__all__ = ["ProcrustesResult", "ShapeResult", "procrustes", "shape_distance"]

Kind = Literal["angular", "euclidean"]


@result
class ProcrustesResult:
    """Orthogonal Procrustes distance between two representations.

    Attributes
    ----------
    distance : float
        ``sqrt(2 - 2 * score)``, in [0, sqrt(2)]: the Euclidean distance between the
        centred, unit-Frobenius-norm representations after the best rotation. A metric.
    squared_distance : float
        ``2 - 2 * score``: the number Ding et al. 2021 call the Procrustes distance (it is
        the square of a metric, not itself one).
    score : float
        ``||X^T Y||_* / (||X||_F ||Y||_F)`` in [0, 1] (nuclear norm over Frobenius norms
        of the centred data): a similarity, 1 for rotated and scaled copies.
    n_samples : int
    n_features : tuple of int
    """

    distance: float
    squared_distance: float
    score: float
    n_samples: int
    n_features: tuple[int, int]


@result
class ShapeResult:
    """Generalized shape distance (Williams et al. 2021).

    Attributes
    ----------
    distance : float
        The angle (``kind="angular"``, in [0, pi/2]) or the chord ``sqrt(2 - 2 score)``
        (``kind="euclidean"``, in [0, sqrt(2)]). Both are metrics.
    score : float
        ``cos(angle)`` in [0, 1], the similarity behind both distances.
    angle : float
        ``arccos(score)``.
    alpha : float
        Partial-whitening parameter: 0 is CCA (full whitening), 1 is Procrustes.
    kind : {"angular", "euclidean"}
    n_samples : int
    n_features : tuple of int
    """

    distance: float
    score: float
    angle: float
    alpha: float
    kind: str
    n_samples: int
    n_features: tuple[int, int]


def check_alpha(alpha: Any) -> float:
    return check_real(
        alpha, "alpha", low=0.0, high=1.0, fix="0 is CCA (full whitening), 1 Procrustes (none)."
    )


def _check_variance(S: np.ndarray, name: str) -> float:
    """``tr(S)``, or :class:`DegenerateError` when every feature of ``name`` is constant."""
    tr = float(np.trace(S))
    if not tr > 0.0:
        raise_degenerate(name, S.shape[0], "no variance, every feature is constant")
    return tr


def _prepared_side(
    S: np.ndarray, alpha: float, name: str, eps: float = EPS
) -> tuple[np.ndarray, Whitener, np.ndarray, np.ndarray]:
    """One side of the shape metric: ``(kept, white, P, g)``.

    With ``W`` the whitener of the kept features (``W^T S W = I_r``, ``U = X W``) and
    ``B`` its inverse factor (``X = U B``, ``B^T B = S``), ``B = P diag(sigma) R`` is an
    SVD, and then ``B C^{-1/2} = c^{1/2} P R`` (``C = S / c``, ``c = tr(S) / p``), so

        phi_alpha(X) = U (alpha B + (1 - alpha) c^{1/2} P R) = U P diag(g) R,
        g = alpha sigma + (1 - alpha) sqrt(tr(S) / p).

    Computed this way the whitening is CCA's (Cholesky of the correlation matrix, or its
    truncated eigendecomposition on a rank-deficient side) and the only spectrum needed
    is that of ``B`` (``sigma^2`` are the eigenvalues of ``S``), which is bounded in
    ``g``: no eigenvalue of ``S`` is inverted, so the condition number of ``S`` is never
    squared. ``R`` (orthonormal rows) never matters: every score is invariant to it.
    """
    p = S.shape[0]
    tr = _check_variance(S, name)
    kept, _ = prune(np.diag(S).copy(), 0.0)
    with _dense.factorising(f"representation {name}"):
        white = Whitener.fit(S[np.ix_(kept, kept)], eps)
        Bt = white.colour(np.eye(white.rank))  # B^T, (p_kept, r)
        _, sigma, Pt = _dense.svd(Bt)  # B^T = R^T diag(sigma) P^T
    g = alpha * sigma + (1.0 - alpha) * np.sqrt(tr / p)
    return kept, white, Pt.T, g


def partial_whitening(S: np.ndarray, alpha: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A factor ``V`` (``p x r``) and weights ``d`` (``r``) of the partial whitening.

    For centred data ``X`` with ``S = X^T X``, ``X V diag(d)`` equals
    ``phi_alpha(X) = X (alpha I + (1 - alpha) C^{-1/2})`` (``C = p S / tr(S)``, mean
    eigenvalue 1) up to an orthogonal map on the right, so it has the same Frobenius
    norm and the same nuclear norms of cross products; ``r`` is the numerical rank of
    ``S`` (directions it does not span are dropped; the data have no component there).
    Raises :class:`~svcca.DegenerateError` naming ``name`` when ``S`` has no variance.
    """
    kept, white, P, g = _prepared_side(S, alpha, name)
    V = np.zeros((S.shape[0], P.shape[1]))
    V[kept] = white.weights(P)
    return V, g


def shape_score(m: Moments, alpha: float) -> float:
    """``||phi(X)^T phi(Y)||_* / (||phi(X)||_F ||phi(Y)||_F)`` from the moments."""
    if alpha == 1.0:
        nx2, ny2 = _check_variance(m.sxx, "X"), _check_variance(m.syy, "Y")
        nuc = float(_dense.svdvals(m.sxy).sum())
        return float(min(nuc / np.sqrt(nx2 * ny2), 1.0))
    kx, wx, Px, gx = _prepared_side(m.sxx, alpha, "X", m.eps)
    ky, wy, Py, gy = _prepared_side(m.syy, alpha, "Y", m.eps)
    # U_x^T U_y = W_x^T S_xy W_y: the CCA whitened cross block (its singular values are
    # the canonical correlations, so at alpha = 0 this is CCA exactly).
    M = wy.apply_t(wx.apply_t(m.sxy[np.ix_(kx, ky)]).T).T
    A = _dense.matmul(Px.T, M, Py) * gx[:, None] * gy[None, :]
    nuc = float(_dense.svdvals(A).sum())
    return float(min(nuc / (np.linalg.norm(gx) * np.linalg.norm(gy)), 1.0))


def procrustes(X: Any, Y: Any = None) -> ProcrustesResult:
    """Orthogonal Procrustes distance (Ding et al. 2021) between two representations.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
        Widths may differ (the narrower side is padded with zero features).

    Returns
    -------
    ProcrustesResult

    Notes
    -----
    Centre both, scale each to unit Frobenius norm, and rotate one onto the other:

    .. math:: \\min_{Q^TQ=I} \\|X - YQ\\|_F^2 = 2 - 2\\,\\|X^T Y\\|_*,

    so only :math:`S_{xy}` (its nuclear norm) and :math:`\\mathrm{tr}\\,S_{xx}`,
    :math:`\\mathrm{tr}\\,S_{yy}` are needed: it is computed from the moments. Invariant
    to rotations, isotropic scaling and translation, not to general linear maps. Equal
    to :func:`shape_distance` with ``alpha=1, kind="euclidean"``.

    .. warning:: Ding et al. report the squared quantity :math:`2 - 2\\|X^TY\\|_*`
       (:attr:`ProcrustesResult.squared_distance`); its square root
       (:attr:`~ProcrustesResult.distance`) is the metric (triangle inequality).

    References
    ----------
    .. [1] F. Ding, J.-S. Denain, J. Steinhardt, "Grounding Representation Similarity
       with Statistical Testing", NeurIPS 2021, arXiv:2108.01661.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 8))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    >>> round(svcca.procrustes(X, 2 * X @ Q + 1).distance, 6)
    0.0
    """
    m = to_moments(X, Y)
    with dense_steps(max(m.p, m.q), m.device):
        s = shape_score(m, 1.0)
    sq = max(2.0 - 2.0 * s, 0.0)
    return ProcrustesResult(float(np.sqrt(sq)), sq, s, m.n, (m.p, m.q))


def shape_distance(
    X: Any, Y: Any = None, *, alpha: float = 1.0, kind: Kind = "angular"
) -> ShapeResult:
    """Generalized shape metric with partial whitening (Williams et al. 2021).

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    alpha : float in [0, 1], default 1.0
        0 whitens each side fully (the angle is then ``arccos`` of the canonical
        correlations' sum over ``sqrt(p q)``: CCA), 1 not at all (Procrustes).
    kind : {"angular", "euclidean"}, default "angular"
        The angle between the aligned, unit-norm representations, or the chord between
        them.

    Returns
    -------
    ShapeResult

    Notes
    -----
    Each side is centred and partially whitened (Williams et al. 2021):

    .. math:: \\phi_\\alpha(X) = X \\left(\\alpha I + (1-\\alpha)\\, C^{-1/2}\\right),
              \\qquad C = p\\, \\frac{X^T X}{\\mathrm{tr}\\, X^T X},

    :math:`C` being the covariance rescaled to mean eigenvalue 1 (:math:`C^{-1/2}` a
    pseudo-inverse on a rank-deficient side); then

    .. math:: \\theta = \\arccos \\frac{\\|\\phi_\\alpha(X)^T \\phi_\\alpha(Y)\\|_*}
              {\\|\\phi_\\alpha(X)\\|_F\\, \\|\\phi_\\alpha(Y)\\|_F}.

    The nuclear norm is the best rotation of one side onto the other. Since
    :math:`\\phi_\\alpha(XQ) = \\phi_\\alpha(X) Q` for orthogonal :math:`Q`, the angle
    and the chord :math:`\\sqrt{2 - 2\\cos\\theta}` are metrics on representations up to
    rotation, isotropic scaling and translation (and, at ``alpha = 0``, any invertible
    linear map).

    .. warning:: The regularised whitener :math:`(\\alpha I + (1-\\alpha) C)^{-1/2}` (as
       in ridge CCA) interpolates between the same endpoints but is a different
       measure, not a rescaling of this one: its numbers for ``0 < alpha < 1`` differ.

       With the plain sample covariance :math:`C = X^T X / n` of the paper's formula, or
       the :math:`C = X^T X` of the centred data that ``netrep`` uses
       (``LinearMetric(alpha, score_method="angular")``, by the paper's first author),
       the distance for
       ``0 < alpha < 1`` changes when a representation is multiplied by a constant,
       because the two terms of :math:`\\phi_\\alpha` scale differently. Here :math:`C`
       has mean eigenvalue 1, so every ``alpha`` is invariant to isotropic scaling.
       Exactly: this angle is the paper's for each side scaled to
       :math:`\\|X - \\bar X\\|_F^2 = n p` (mean feature variance 1, e.g. z-scored
       features) and ``netrep``'s for each side scaled to
       :math:`\\|X - \\bar X\\|_F^2 = p` (``p`` the side's own width; ``netrep``'s zero
       padding of the narrower side changes nothing). On such data the numbers agree
       (up to ``netrep``'s eigenvalue floor of 1e-7); on other data, rescale it that
       way to reproduce theirs. The endpoints ``alpha = 0`` and ``alpha = 1`` agree
       with theirs on any data. Their "euclidean" kind is not normalised; this one is,
       so that it is the Procrustes distance at ``alpha = 1``.

    References
    ----------
    .. [1] A. H. Williams, E. Kunz, S. Kornblith, S. W. Linderman, "Generalized Shape
       Metrics on Neural Representations", NeurIPS 2021, arXiv:2110.14739.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 6))
    >>> Y = X @ rng.standard_normal((6, 6))       # an invertible map of X
    >>> round(svcca.shape_distance(X, Y, alpha=0.0).distance, 6)
    0.0
    """
    a = check_alpha(alpha)
    kind = check_option(kind, "kind", ("angular", "euclidean"))  # type: ignore[assignment]
    m = to_moments(X, Y)
    with dense_steps(max(m.p, m.q), m.device):
        s = shape_score(m, a)
    if a == 0.0:  # alpha = 0 is CCA: it inflates the same way with too few samples
        warn_few_samples(m.n, m.p, m.q)
    angle = float(np.arccos(s))
    dist = angle if kind == "angular" else float(np.sqrt(max(2.0 - 2.0 * s, 0.0)))
    return ShapeResult(dist, s, angle, a, kind, m.n, (m.p, m.q))
