"""Orthogonal Procrustes distance and the generalized shape metrics of Williams et al."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from svcca._validation import check_option, check_real
from svcca.measures._cca import cca_from_moments
from svcca.sources._to_moments import to_moments
from svcca.statistic._moments import Moments

__all__ = ["ProcrustesResult", "ShapeResult", "procrustes", "shape_distance"]

Kind = Literal["angular", "euclidean"]

# Directions whose partial-whitening denominator is below this fraction of the largest
# are treated as null directions (pseudo-inverse) rather than blown up.
_RANK_RTOL = 1e-12


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


def partial_whitening(S: np.ndarray, alpha: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigenbasis ``V`` and diagonal ``d`` with ``Z = V diag(d) V^T`` the partial whitener.

    ``S`` is a centred cross-product sum, rescaled to ``C = p S / tr(S)`` (mean eigenvalue
    1) so that ``Z = (alpha I + (1 - alpha) C)^{-1/2}`` does not depend on the data's
    overall scale. Null directions of the denominator get ``d = 0`` (pseudo-inverse).
    """
    tr = float(np.trace(S))
    if not tr > 0.0:
        raise ValueError(
            f"{name} has no variance (every feature is constant), so its shape is undefined. "
            "Drop constant representations before comparing."
        )
    lam, V = np.linalg.eigh(S * (S.shape[0] / tr))
    np.maximum(lam, 0.0, out=lam)
    den = alpha + (1.0 - alpha) * lam
    keep = den > _RANK_RTOL * den.max()
    d = np.zeros_like(lam)
    d[keep] = 1.0 / np.sqrt(den[keep])
    return V, d


def shape_score(m: Moments, alpha: float) -> float:
    """``||Xt^T Yt||_* / (||Xt||_F ||Yt||_F)`` for the partially whitened data."""
    if alpha == 1.0:
        nx2, ny2 = float(np.trace(m.sxx)), float(np.trace(m.syy))
        for name, v in (("X", nx2), ("Y", ny2)):
            if not v > 0.0:
                raise ValueError(
                    f"{name} has no variance (every feature is constant), so its shape is "
                    "undefined. Drop constant representations before comparing."
                )
        nuc = float(np.linalg.svd(m.sxy, compute_uv=False).sum())
        return float(min(nuc / np.sqrt(nx2 * ny2), 1.0))
    if alpha == 0.0:
        # Full whitening is CCA: use its Cholesky whitening, which keeps the scores of
        # near-identical representations accurate to ~1e-15 (an eigendecomposition of
        # the covariance would square its condition number).
        for name, S in (("X", m.sxx), ("Y", m.syy)):
            if not float(np.trace(S)) > 0.0:
                raise ValueError(
                    f"{name} has no variance (every feature is constant), so its shape is "
                    "undefined. Drop constant representations before comparing."
                )
        res = cca_from_moments(m, epsilon=0.0, threshold=1.0)
        return float(min(res.correlations.sum() / np.sqrt(res.rank_x * res.rank_y), 1.0))
    Vx, dx = partial_whitening(m.sxx, alpha, "X")
    Vy, dy = partial_whitening(m.syy, alpha, "Y")
    lam_x = np.einsum("ij,jk,ki->i", Vx.T, m.sxx, Vx)
    lam_y = np.einsum("ij,jk,ki->i", Vy.T, m.syy, Vy)
    nx2 = float(np.sum(dx**2 * np.maximum(lam_x, 0.0)))
    ny2 = float(np.sum(dy**2 * np.maximum(lam_y, 0.0)))
    M = (Vx.T @ m.sxy @ Vy) * dx[:, None] * dy[None, :]
    nuc = float(np.linalg.svd(M, compute_uv=False).sum())
    return float(min(nuc / np.sqrt(nx2 * ny2), 1.0))


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
    Each side is centred and mapped by :math:`Z = (\\alpha I + (1-\\alpha) C)^{-1/2}`,
    where :math:`C = p\\, S_{xx} / \\mathrm{tr}\\, S_{xx}` is the covariance rescaled to
    mean eigenvalue 1; then

    .. math:: \\theta = \\arccos \\frac{\\|\\tilde X^T \\tilde Y\\|_*}
              {\\|\\tilde X\\|_F\\, \\|\\tilde Y\\|_F}.

    Both the angle and the chord :math:`\\sqrt{2 - 2\\cos\\theta}` are metrics on
    representations up to rotation (and, at ``alpha = 0``, any invertible linear map).

    .. warning:: Williams et al. (and ``netrep``) apply the partial whitening to the data
       as given, so for ``0 < alpha < 1`` their distance changes if one representation is
       multiplied by a constant. Here the covariance is first rescaled to mean eigenvalue
       1, which makes every ``alpha`` invariant to isotropic scaling; the endpoints
       ``alpha = 0`` and ``alpha = 1`` agree with theirs. Their "euclidean" kind is not
       normalised; this one is, so that it is the Procrustes distance at ``alpha = 1``.

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
    s = shape_score(m, a)
    angle = float(np.arccos(s))
    dist = angle if kind == "angular" else float(np.sqrt(max(2.0 - 2.0 * s, 0.0)))
    return ShapeResult(dist, s, angle, a, kind, m.n, (m.p, m.q))
