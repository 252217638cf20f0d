"""Bartlett's sequential chi-square test (Wilks' lambda) for canonical correlations."""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._measures import bartlett_statistics, cca_from_moments
from svcca._result import result
from svcca._sources import to_moments
from svcca._validation import check_epsilon, check_probability

__all__ = ["BartlettResult", "bartlett"]


@result
class BartlettResult:
    """How many canonical correlations are significantly non-zero.

    Attributes
    ----------
    n_significant : int
        The number ``k`` of leading correlations declared non-zero: the first ``k``
        sequential tests reject at level ``alpha`` and test ``k + 1`` does not.
    correlations : ndarray, shape (m,)
        All canonical correlations, descending.
    statistics : ndarray, shape (m,)
        Bartlett's statistic for "correlations ``j+1, ..., m`` are all zero" (index ``j``).
    dof : ndarray of int, shape (m,)
        Its chi-square degrees of freedom, ``(p - j)(q - j)``.
    pvalues : ndarray, shape (m,)
        Chi-square upper-tail p-values, non-increasing in significance down the list.
    alpha : float
    n_samples : int
    ranks : tuple of int
        ``(p, q)``: dimensions of each side after pruning, used in the test.
    """

    n_significant: int
    correlations: np.ndarray
    statistics: np.ndarray
    dof: np.ndarray
    pvalues: np.ndarray
    alpha: float
    n_samples: int
    ranks: tuple[int, int]


def bartlett(X: Any, Y: Any = None, *, alpha: float = 0.05, epsilon: float = 0.0) -> BartlettResult:
    """Bartlett's test (Wilks' lambda) for the number of significant canonical correlations.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    alpha : float, default 0.05
        Level of each sequential test.
    epsilon : float, default 0.0
        Pruning threshold passed to :func:`~svcca.cca`.

    Returns
    -------
    BartlettResult

    Notes
    -----
    For :math:`j = 0, \\dots, m-1` the hypothesis that only the first :math:`j` canonical
    correlations are non-zero is tested with

    .. math:: \\chi^2_j = -\\Big(n - 1 - \\frac{p + q + 1}{2}\\Big)
              \\sum_{i > j} \\ln(1 - \\rho_i^2),
              \\qquad \\mathrm{dof}_j = (p - j)(q - j),

    (Bartlett's approximation to the distribution of Wilks' lambda
    :math:`\\Lambda_j = \\prod_{i>j}(1-\\rho_i^2)`), assuming jointly Gaussian data and
    independent samples. This replaces google/svcca's rule of keeping the leading
    coefficients that reach 98% of their sum with a test at a stated level.

    References
    ----------
    .. [1] M. S. Bartlett, "The statistical significance of canonical correlations",
       Biometrika 32(1), 1941.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((1000, 2))                  # 2 shared dimensions
    >>> X = np.hstack([z, rng.standard_normal((1000, 4))])
    >>> Y = np.hstack([z + 0.5 * rng.standard_normal((1000, 2)),
    ...                rng.standard_normal((1000, 3))])
    >>> svcca.stats.bartlett(X, Y).n_significant
    2
    """
    a = check_probability(alpha, "alpha")
    eps = check_epsilon(epsilon)
    m = to_moments(X, Y)
    res = cca_from_moments(m, epsilon=eps, threshold=0.98)
    p, q = res.rank_x, res.rank_y
    rho = res.correlations
    k = rho.size
    stats, dof = bartlett_statistics(rho, m.n, p, q)
    from scipy.stats import chi2  # scipy.stats is slow to import: only when used

    pvalues = chi2.sf(stats, dof)
    # Enforce the sequential procedure: testing stops at the first non-rejection.
    reject = pvalues < a
    n_sig = int(np.argmin(reject)) if not reject.all() else k
    return BartlettResult(n_sig, rho, stats, dof, pvalues, a, m.n, (p, q))
