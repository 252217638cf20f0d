"""Principal component analysis of one representation."""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._measures._cca import project
from svcca._measures._linalg import numerical_rank, sym_eig_desc
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import raise_degenerate

__all__ = ["PCAResult", "pca"]


@result
class PCAResult:
    """Principal components of one representation.

    Attributes
    ----------
    eigenvalues : ndarray, shape (p,)
        Eigenvalues of the sample covariance (``ddof=1``), descending: the variance
        along each principal direction.
    singular_values : ndarray, shape (p,)
        Singular values of the centred data, ``sqrt((n - 1) * eigenvalues)``. These are
        what google/svcca's ``numpy_pca`` called ``eigenvals``.
    explained_variance_ratio : ndarray, shape (p,)
        ``eigenvalues / eigenvalues.sum()``.
    components : ndarray, shape (p, p)
        Orthonormal principal directions as columns (deterministic signs).
    mean : ndarray, shape (p,)
    """

    eigenvalues: np.ndarray
    singular_values: np.ndarray
    explained_variance_ratio: np.ndarray
    components: np.ndarray
    mean: np.ndarray

    def transform(self, X: Any, n_components: int | None = None) -> np.ndarray:
        """Scores ``(X - mean) @ components[:, :n_components]``, shape ``(m, k)``."""
        k = self.components.shape[1] if n_components is None else int(n_components)
        return project(X, "X", self.mean, self.components[:, :k])


def pca(X: Any) -> PCAResult:
    """Principal component analysis (eigendecomposition of the covariance).

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments

    Returns
    -------
    PCAResult

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((1000, 3)) * [3.0, 2.0, 1.0]
    >>> np.round(svcca.pca(X).eigenvalues).tolist()
    [9.0, 4.0, 1.0]
    """
    m = to_moments(X, None, need_y=False)
    with dense_steps(m.p, m.device):
        w, V = sym_eig_desc(m.sxx, m.eps)
    if numerical_rank(w, m.eps) == 0:
        raise_degenerate("X", m.p, "it is constant (no direction has any variance)")
    ratio = w / w.sum()  # in the sums' units (Moments.scale_x): exact at any magnitude
    with np.errstate(over="ignore", under="ignore"):  # beyond float64's range: inf / 0
        ev = w * (m.scale_x * m.scale_x / (m.n - 1))
        sv = np.sqrt(w) * m.scale_x
    return PCAResult(ev, sv, ratio, V, m.mean_x)
