"""Partial least squares (SVD of the cross-covariance)."""

from __future__ import annotations

from typing import Any

import numpy as np

import svcca._dense as _dense
from svcca._measures._cca import project
from svcca._measures._cka import linear_cka_of_moments
from svcca._measures._linalg import flip_signs
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import Precision

__all__ = ["PLSResult", "pls"]


@result
class PLSResult:
    """Partial least squares between two representations.

    Attributes
    ----------
    singular_values : ndarray, shape (k,)
        Singular values of the cross-covariance ``C_xy = S_xy / (n - 1)``, descending:
        ``s_i = cov(X a_i, Y b_i)`` for unit-norm weight pairs. These are what
        google/svcca's ``numpy_pls`` called ``eigenvals``.
    eigenvalues : ndarray, shape (k,)
        ``s_i ** 2``, the eigenvalues of ``C_xy C_yx``.
    weights_x, weights_y : ndarray, shapes (p, k), (q, k)
        Orthonormal columns ``a_i``, ``b_i`` (deterministic signs).
    score : float
        ``sum(s_i^2) / (||C_xx||_F ||C_yy||_F)``, in [0, 1]: the share of covariance
        the two sides have in common. This is exactly linear CKA (Kornblith et al.
        2019, eq. 3 with centred data).
    """

    singular_values: np.ndarray
    eigenvalues: np.ndarray
    weights_x: np.ndarray
    weights_y: np.ndarray
    score: float
    mean_x: np.ndarray
    mean_y: np.ndarray

    def transform(self, X: Any, Y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """PLS components ``(X - mean_x) @ weights_x`` (and the same for ``Y``)."""
        u = project(X, "X", self.mean_x, self.weights_x)
        v = None if Y is None else project(Y, "Y", self.mean_y, self.weights_y)
        return u, v


def pls(X: Any, Y: Any = None, *, precision: Precision = "float64") -> PLSResult:
    """Partial least squares: the directions of maximal covariance between two layers.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    precision : {"float64", "float32"}, default "float64"
        How the cross-products of array inputs are taken. ``"float32"`` (float32
        products, float64 sums) is about twice as fast on float32 activations; its
        errors are near 1e-7 of the entries (see :class:`~svcca.Moments`). A Moments input
        keeps its own.

    Returns
    -------
    PLSResult

    Notes
    -----
    :math:`C_{xy} = U \\,\\mathrm{diag}(s)\\, V^T` (thin SVD); the ``i``-th pair of
    directions ``(u_i, v_i)`` maximises :math:`\\mathrm{cov}(X u, Y v)` over unit vectors
    orthogonal to the previous pairs. Unlike CCA it is not invariant to invertible maps:
    high-variance neurons dominate. Works for layers of different widths (the original
    ``numpy_pls`` crashed there).

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 6))
    >>> svcca.pls(X, X[:, :3]).singular_values.shape
    (3,)
    """
    m = to_moments(X, Y, precision=precision)
    score = linear_cka_of_moments(m, "moments").score  # refuses a constant side
    with dense_steps(max(m.p, m.q), m.device):
        with _dense.factorising("the cross-covariance of X and Y"):
            U, s, Vt = _dense.svd(m.sxy / (m.n - 1))  # in the sums' units (Moments.scale_x)
    U, V = flip_signs(U, Vt.T)
    with np.errstate(over="ignore", under="ignore"):  # beyond float64's range: inf / 0
        s = s * (m.scale_x * m.scale_y)
        ev = s**2
    return PLSResult(s, ev, U, V, score, m.mean_x, m.mean_y)  # type: ignore[arg-type]
