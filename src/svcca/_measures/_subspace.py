"""Subspace measures from the second moments: eigenspace overlap and GULP.

Both compare the spaces two representations span (raw, for the eigenspace overlap
score; centred and whitened, for GULP), so both are functions of :class:`svcca.Moments`
and are computed from it like the CCA family (one pass over the data, constant memory in
``n``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

import svcca._dense as _dense
from svcca._measures._cca import prepare_side
from svcca._measures._linalg import EPS, Whitener, clip_roundoff
from svcca._moments import Moments
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import SVCCAWarning, check_real, raise_degenerate

__all__ = ["EigenspaceOverlapResult", "GULPResult", "eigenspace_overlap", "gulp"]


@result
class EigenspaceOverlapResult:
    """Eigenspace overlap score (May et al. 2019) of two representations.

    Attributes
    ----------
    score : float
        ``||U_x^T U_y||_F^2 / max(p, q)`` in [0, 1].
    ranks : tuple of int
        The numerical ranks of X and Y (the dimensions of their column spaces).
    n_samples : int
    n_features : tuple of int
    """

    score: float
    ranks: tuple[int, int]
    n_samples: int
    n_features: tuple[int, int]


@result
class GULPResult:
    """GULP distance (Boix-Adsera et al. 2022) between two representations.

    Attributes
    ----------
    distance : float
        ``d_lambda``, the square root of :attr:`squared_distance`: a metric, 0 when the
        two sides' ridge predictors agree on every task.
    squared_distance : float
        ``d_lambda^2``, the number ReSi reports.
    ridge : float
        The regularisation ``lambda`` (relative to the mean variance of each side).
    n_samples : int
    n_features : tuple of int
    """

    distance: float
    squared_distance: float
    ridge: float
    n_samples: int
    n_features: tuple[int, int]


def _check_variance(m: Moments) -> None:
    for S, name, p in ((m.sxx, "X", m.p), (m.syy, "Y", m.q)):
        if not float(np.trace(S)) > 0.0:
            raise_degenerate(name, p, "no variance, every feature is constant")


# ---------------------------------------------------------------------- eigenspace overlap
def _centred_side(m: Moments, side: str) -> tuple[np.ndarray, Whitener]:
    """The kept features of one side and the CCA whitener of their centred block
    (:func:`svcca._measures._cca.prepare_side`: constant features pruned, a feature that
    varies below 1e-12 of the largest variance warned about)."""
    if side == "X":
        prepared = prepare_side(m.sxx, m.mean_x, 0.0, "X", eps=m.eps, scale=m.scale_x, n=m.n)
    else:
        prepared = prepare_side(m.syy, m.mean_y, 0.0, "Y", eps=m.eps, scale=m.scale_y, n=m.n)
    return prepared.kept, prepared.white


def _raw_coordinates(
    S: np.ndarray, mean: np.ndarray, n: int, kept: np.ndarray, white: Whitener
) -> np.ndarray:
    """``M`` (``(r + 1) x p``) with ``X = [1/sqrt(n), U] M`` for orthonormal columns.

    The centred data are ``Z = U B`` with ``U = Z W`` orthonormal (``W`` the whitener,
    ``B = W^T S``) and orthogonal to the constant vector, so the raw data
    ``X = Z + 1 mean^T`` are ``[1/sqrt(n), U]`` times ``[sqrt(n) mean^T; B]``: the
    singular values of ``M`` are those of ``X`` itself, found without forming ``X^T X``
    (whose condition number is the square of X's; with means far above the spread that
    loses every small direction).
    """
    p = S.shape[0]
    M = np.zeros((white.rank + 1, p))
    M[0] = np.sqrt(n) * mean
    M[1:, kept] = white.colour(np.eye(white.rank)).T  # B = W^T S = (S W)^T
    return M


def _column_basis(M: np.ndarray, n: int) -> np.ndarray:
    """An orthonormal basis of the column space of ``M``, with NumPy's ``matrix_rank``
    rule (singular values above ``s_max max(n, p) eps``), as ReSi counts the rank."""
    U, s, _ = _dense.svd(M)
    if not s.size or not s[0] > 0:
        return U[:, :0]
    return U[:, : int(np.sum(s > s[0] * max(n, M.shape[1]) * EPS))]


def eigenspace_overlap(X: Any, Y: Any = None) -> EigenspaceOverlapResult:
    """Eigenspace overlap score: how much the column spaces of X and Y overlap.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)

    Returns
    -------
    EigenspaceOverlapResult

    Notes
    -----
    With :math:`U_x` (``n x r_x``) an orthonormal basis of the span of X's columns (the
    left singular vectors of the raw data, :math:`r_x` its numerical rank),

    .. math:: \\mathrm{EOS}(X, Y) = \\frac{\\|U_x^T U_y\\|_F^2}{\\max(p, q)},

    the sum of the squared cosines of the principal angles between the two column
    spaces over the wider side's width (May et al. 2019; ReSi). As in ReSi the data
    are not centred: it ignores every invertible linear map of the features
    (rotations, scalings, permutations), not a translation.

    Computed from :class:`svcca.Moments`, never from the ``n x n`` singular vectors
    ReSi computes (``np.linalg.svd(R)`` with full matrices): the centred data are
    ``U B`` with ``U`` orthonormal (CCA's whitening of the centred block) and
    orthogonal to the constant vector, so the raw data are ``[1/sqrt(n), U] M`` with
    ``M = [sqrt(n) mean^T; B]`` small, and the overlap is that of the column spaces of
    ``M_x`` and ``M_y`` through the cross Gram ``diag(1, U^T V)``. The singular values
    of ``M`` are X's own, so the raw Gram ``X^T X`` (whose condition number is the
    square of X's, and which loses every small direction under a large mean) is never
    formed. The rank is NumPy's ``matrix_rank`` rule, as ReSi's (singular values above
    ``max(n, p) eps`` of the largest); a centred direction below 1e-12 of the largest
    eigenvalue of the correlation-scaled covariance (a feature collinear with others)
    is dropped by the whitening first.

    References
    ----------
    .. [1] A. May, J. Zhang, T. Dao, C. Re, "On the Downstream Performance of
       Compressed Word Embeddings", NeurIPS 2019, arXiv:1909.01264.
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 4))
    >>> round(svcca.MEASURES["eigenspace_overlap"](X, X @ rng.standard_normal((4, 4))).score, 8)
    1.0
    """
    m = to_moments(X, Y)
    _check_variance(m)
    with dense_steps(max(m.p, m.q), m.device):
        kx, wx = _centred_side(m, "X")
        ky, wy = _centred_side(m, "Y")
        # X = [u0, U] M_x and Y = [u0, V] M_y with u0 = 1/sqrt(n) orthogonal to U and V:
        # the cross Gram of the two bases is diag(1, U^T V), U^T V = W_x^T S_xy W_y
        Mx = _raw_coordinates(m.sxx, m.mean_x / m.scale_x, m.n, kx, wx)
        My = _raw_coordinates(m.syy, m.mean_y / m.scale_y, m.n, ky, wy)
        K = np.zeros((wx.rank + 1, wy.rank + 1))
        K[0, 0] = 1.0
        K[1:, 1:] = wy.apply_t(wx.apply_t(m.sxy[np.ix_(kx, ky)]).T).T
        Qx, Qy = _column_basis(Mx, m.n), _column_basis(My, m.n)
        C = _dense.matmul(Qx.T, K, Qy)
        overlap = float(np.einsum("ij,ij->", C, C))
    # ||U_x^T U_y||_F^2 <= min(r_x, r_y): its singular values are cosines
    rx, ry = Qx.shape[1], Qy.shape[1]
    bound = float(min(rx, ry))
    tol = 100.0 * max(m.eps, EPS) * max(wx.cond, wy.cond) * max(bound, 1.0)
    overlap = float(clip_roundoff(np.array([overlap]), 0.0, bound, tol, "The overlap")[0])
    score = overlap / max(m.p, m.q)
    return EigenspaceOverlapResult(score, (rx, ry), m.n, (m.p, m.q))


# ---------------------------------------------------------------------- GULP
def check_ridge(ridge: Any) -> float:
    return check_real(
        ridge,
        "ridge",
        low=0.0,
        fix="It is GULP's lambda, relative to each side's mean variance (0: "
        "unregularised, ReSi's default; larger smooths towards linear-CKA-like behaviour).",
    )


def _spectrum(S: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (clipped at 0, descending) and eigenvectors of ``S / tr(S)``."""
    w, V = _dense.eigh(S / float(np.trace(S)))
    w, V = w[::-1], V[:, ::-1]
    return np.maximum(w, 0.0), V


def _gulp_squared(m: Moments, ridge: float) -> tuple[float, float]:
    """``T1 + T2 - 2 T3`` (Boix-Adsera et al.'s ``predictor_dist``) from the moments,
    and the round-off bound of that difference."""
    tx, ty = float(np.trace(m.sxx)), float(np.trace(m.syy))
    if ridge == 0.0:
        # Sigma^{-0} is the pseudo-inverse: T1, T2 are the ranks and T3 the sum of the
        # squared canonical correlations, through CCA's whitening (no squared condition
        # number: the correlation matrices are factorised, not their eigenvalues inverted)
        kx, wx = _centred_side(m, "X")
        ky, wy = _centred_side(m, "Y")
        M = wy.apply_t(wx.apply_t(m.sxy[np.ix_(kx, ky)]).T)
        rho2 = _dense.svdvals(M) ** 2
        tol = 100.0 * max(m.eps, EPS) * max(wx.cond, wy.cond)
        rho2 = clip_roundoff(rho2, 0.0, 1.0, tol, "A squared canonical correlation")
        return float(wx.rank + wy.rank - 2.0 * rho2.sum()), 2.0 * rho2.size * tol
    lx, Vx = _spectrum(m.sxx, m.eps)
    ly, Vy = _spectrum(m.syy, m.eps)
    ix, iy = 1.0 / (lx + ridge), 1.0 / (ly + ridge)
    t1 = float(np.sum((lx * ix) ** 2))
    t2 = float(np.sum((ly * iy) ** 2))
    cross = _dense.matmul(Vx.T, m.sxy / np.sqrt(tx * ty), Vy)
    cross *= np.sqrt(ix)[:, None]
    cross *= np.sqrt(iy)[None, :]
    t3 = float(np.einsum("ij,ij->", cross, cross))
    # Each eigenvalue (of a unit-trace matrix) carries an absolute error of a few eps;
    # lambda / (lambda + ridge) amplifies it by up to 1 / (lambda + ridge): the
    # condition number of the regularised covariance bounds the error of each term.
    cond = 1.0 / min(float(lx[-1]) + ridge, float(ly[-1]) + ridge)
    bound = 100.0 * max(m.eps, EPS) * (m.p + m.q) * max(cond, 1.0)
    if bound > 1e-6 * (m.p + m.q):
        warnings.warn(
            f"GULP with ridge={ridge:g}: a side's smallest covariance eigenvalue is "
            f"{min(float(lx[-1]), float(ly[-1])):.1e} of its total variance, so ridge "
            f"leaves (Sigma + ridge I) with condition number {cond:.1e}: the squared "
            f"distance carries round-off up to {bound:.1e}. Use a larger ridge (the "
            "regularised GULP), or ridge=0 (the pseudo-inverse: directions below 1e-12 "
            "are dropped).",
            SVCCAWarning,
            stacklevel=4,
        )
    return t1 + t2 - 2.0 * t3, bound


def gulp(X: Any, Y: Any = None, *, ridge: float = 0.0) -> GULPResult:
    """GULP: the distance between the two sides' best ridge-regression predictors.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    ridge : float, default 0.0
        GULP's :math:`\\lambda`, for each side centred and scaled to unit total
        variance (mean eigenvalue ``1/p`` of its covariance). 0 (ReSi's default)
        is the unregularised predictor, a function of the canonical correlations;
        ``ridge > 0`` is the regularised form.

    Returns
    -------
    GULPResult
        ``distance`` (the metric) and ``squared_distance`` (ReSi's number).

    Notes
    -----
    Each side is centred and scaled to :math:`\\mathrm{tr}\\,\\Sigma = 1`
    (:math:`\\Sigma_x = S_{xx} / \\mathrm{tr}\\,S_{xx}`, :math:`\\Sigma_{xy} =
    S_{xy} / \\sqrt{\\mathrm{tr}\\,S_{xx}\\,\\mathrm{tr}\\,S_{yy}}`, as GULP's code and
    ReSi do); with :math:`\\Sigma^{-\\lambda} = (\\Sigma + \\lambda I)^{-1}` (the
    pseudo-inverse at :math:`\\lambda = 0`),

    .. math:: d_\\lambda^2 = \\mathrm{tr}\\big((\\Sigma_x \\Sigma_x^{-\\lambda})^2\\big)
              + \\mathrm{tr}\\big((\\Sigma_y \\Sigma_y^{-\\lambda})^2\\big)
              - 2\\,\\mathrm{tr}\\big(\\Sigma_x^{-\\lambda} \\Sigma_{xy}
              \\Sigma_y^{-\\lambda} \\Sigma_{yx}\\big).

    At :math:`\\lambda = 0` this is :math:`r_x + r_y - 2 \\sum_i \\rho_i^2` (ranks and
    canonical correlations): it ignores every invertible linear map and translation of
    either side, as CCA does. At :math:`\\lambda > 0` it ignores rotations,
    translations, permutations and isotropic scaling only. A function of
    :class:`svcca.Moments`.

    More features than datapoints: at :math:`\\lambda = 0` the canonical correlations
    are inflated by the shape alone (with :math:`p + q \\ge n - 1` some equal 1 for any
    data), so a :class:`~svcca.SVCCAWarning` says so and suggests ``ridge > 0``, which
    is well posed for any ``n`` (ReSi's implementation asserts ``n >= p`` instead).

    .. warning:: ReSi (and GULP's ``predictor_dist``) return :math:`d_\\lambda^2`, here
       :attr:`GULPResult.squared_distance`; the headline :attr:`~GULPResult.distance`
       is its square root, the metric of the paper. ReSi's :math:`\\lambda = 0` counts
       every positive eigenvalue, round-off included, in the ranks; here a direction
       below 1e-12 of the largest (correlation-scaled) eigenvalue is absent, so the two
       differ on rank-deficient data (ReSi's value there is round-off).

    References
    ----------
    .. [1] E. Boix-Adsera, H. Lawrence, G. Stepaniants, P. Rigollet, "GULP: a
       prediction-based metric between representations", NeurIPS 2022,
       arXiv:2210.06545.
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 4))
    >>> round(svcca.MEASURES["gulp"](X, X @ rng.standard_normal((4, 4)) + 1).squared_distance, 8)
    0.0
    """
    lam = check_ridge(ridge)
    m = to_moments(X, Y)
    _check_variance(m)
    if lam == 0.0 and m.p + m.q >= m.n - 1:
        warnings.warn(
            f"GULP with ridge=0 on {m.n} samples for {m.p} and {m.q} features: with p + q "
            ">= n - 1 the unregularised predictors agree by the shape alone (canonical "
            "correlations of 1 for any data), so the distance shrinks towards 0. Pass "
            "ridge > 0 (e.g. 1e-2) for the regularised GULP, or use more datapoints.",
            SVCCAWarning,
            stacklevel=2,
        )
    with dense_steps(max(m.p, m.q), m.device):
        sq, bound = _gulp_squared(m, lam)
    # d^2 >= 0; round-off of the p + q terms (times the whitening's conditioning) can
    # make a zero distance a few ulps negative (ReSi reports -8.4e-13 on a rotated copy)
    sq = float(clip_roundoff(np.array([sq]), 0.0, np.inf, bound, "GULP's squared distance")[0])
    return GULPResult(float(np.sqrt(sq)), float(sq), lam, m.n, (m.p, m.q))
