"""Linear regression fit between two representations (R^2), from the moments."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from svcca._measures._cca import CCASide, prepare_side, roundoff_bound
from svcca._measures._linalg import clip_roundoff
from svcca._moments import Moments
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import SVCCAWarning

__all__ = ["RegressionResult", "regression_fit"]


@result
class RegressionResult:
    """How well each representation is linearly predicted from the other.

    Attributes
    ----------
    score : float
        Symmetrised fit, ``(r2_y_given_x + r2_x_given_y) / 2``.
    r2_y_given_x : float
        Share of Y's total variance explained by least squares on X (with intercept):
        ``tr(S_yx S_xx^+ S_xy) / tr(S_yy)``.
    r2_x_given_y : float
        The same with the roles exchanged.
    r2_per_feature_y : ndarray, shape (q,)
        R^2 of each Y feature regressed on X (0 for constant features).
    r2_per_feature_x : ndarray, shape (p,)
        R^2 of each X feature regressed on Y.
    n_samples : int
    n_features : tuple of int
    """

    score: float
    r2_y_given_x: float
    r2_x_given_y: float
    r2_per_feature_y: np.ndarray
    r2_per_feature_x: np.ndarray
    n_samples: int
    n_features: tuple[int, int]


def explained(
    sx: CCASide, sy: CCASide, sxy: np.ndarray, var_y: np.ndarray, extra: float = 0.0
) -> tuple[float, np.ndarray]:
    """Total and per-target R^2 of regressing ``y`` (variances ``var_y``) on ``x``.

    ``sx`` is the predictor prepared for CCA (its whitening ``W``): the explained sum of
    squares of target ``j`` is ``||W^T s_xj||^2``, the fit of least squares on the kept
    predictors. Constant targets (pruned from ``sy``) have R^2 0 and add nothing.
    ``extra`` widens the round-off bound for cross-products formed in lower precision.
    """
    A = sx.left(sxy[:, sy.kept])  # (r, q_kept): whitened cross-products
    fitted = np.einsum("ij,ij->j", A, A)  # explained sum of squares per target
    tol = roundoff_bound(A, sx, sy) + extra
    per = np.zeros(var_y.size)
    per[sy.kept] = clip_roundoff(fitted / var_y[sy.kept], 0.0, 1.0, tol, "A per-feature R^2")
    total = float(clip_roundoff(fitted.sum() / var_y[sy.kept].sum(), 0.0, 1.0, tol, "R^2"))
    return total, per


def regression_from_moments(m: Moments) -> RegressionResult:
    """Regression fit of a validated statistic (no argument checks): prepare, combine twice."""
    sx = prepare_side(m.sxx, m.mean_x, 0.0, "X", eps=m.eps)
    sy = prepare_side(m.syy, m.mean_y, 0.0, "Y", eps=m.eps)
    r2_y, per_y = explained(sx, sy, m.sxy, np.diag(m.syy))
    r2_x, per_x = explained(sy, sx, m.sxy.T, np.diag(m.sxx))
    return RegressionResult(0.5 * (r2_y + r2_x), r2_y, r2_x, per_y, per_x, m.n, (m.p, m.q))


def regression_fit(X: Any, Y: Any = None) -> RegressionResult:
    """Linear regression fit (R^2) of each representation from the other.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)

    Returns
    -------
    RegressionResult
        ``.r2_y_given_x``, ``.r2_x_given_y``, their mean ``.score``, and per-feature R^2.

    Notes
    -----
    Ordinary least squares with an intercept, in-sample (no held-out data):

    .. math:: R^2_{Y|X} = \\frac{\\mathrm{tr}(S_{yx} S_{xx}^{+} S_{xy})}
              {\\mathrm{tr}(S_{yy})} = \\frac{\\|Q_X^T Y_c\\|_F^2}{\\|Y_c\\|_F^2},

    the "linear regression" similarity of Kornblith et al. 2019 (:math:`Q_X` an
    orthonormal basis of the centred X). It is invariant to any invertible linear map of
    the predictor but only to rotations and isotropic scaling of the target, so it is
    asymmetric; ``score`` averages both directions. With at least as many features as
    samples the fit is perfect and meaningless (a :class:`~svcca.SVCCAWarning` says so).

    .. warning:: This is the in-sample R^2, as in Kornblith et al.; papers that fit on
       one split and score on another (e.g. neural predictivity) report lower numbers.

    References
    ----------
    .. [1] S. Kornblith, M. Norouzi, H. Lee, G. Hinton, "Similarity of Neural Network
       Representations Revisited", ICML 2019, arXiv:1905.00414.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((400, 5))
    >>> Y = X[:, :2] @ rng.standard_normal((2, 3))    # Y is a linear function of X
    >>> round(svcca.regression_fit(X, Y).r2_y_given_x, 6)
    1.0
    """
    m = to_moments(X, Y)
    if max(m.p, m.q) >= m.n - 1:
        warnings.warn(
            f"{m.n} samples for {m.p} and {m.q} features: with about as many features as "
            "datapoints, least squares fits anything and R^2 is trivially near 1. Use many "
            "more datapoints than features.",
            SVCCAWarning,
            stacklevel=2,
        )
    with dense_steps(max(m.p, m.q), m.device):
        return regression_from_moments(m)
