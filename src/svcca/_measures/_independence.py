"""Asymptotic tests of independence from a pair's moments, for streamed data.

When the rows are gone (``svcca.torch.compare`` streams them; ``pairwise`` over files
reads them once), a permutation test is out of reach, but the moments measures' null
distributions under independence are known asymptotically, from the same
:class:`svcca.Moments` the score comes from:

- **CCA, PWCCA, SVCCA** (the canonical correlations :math:`\\rho_i` of a ``p``- and a
  ``q``-dimensional side): Bartlett's (1941) approximation to Wilks' lambda,

  .. math:: \\chi^2 = -\\Big(n - 1 - \\frac{p + q + 1}{2}\\Big) \\sum_i \\ln(1 - \\rho_i^2)
            \\;\\sim\\; \\chi^2_{pq}.

  For SVCCA ``p`` and ``q`` are the kept directions: they are chosen from each side
  alone, so under independence the other side is independent of the choice.
- **Linear CKA** (and ``pls``, whose matrix value is linear CKA): the statistic is
  :math:`T = n \\|C_{xy}\\|_F^2` with :math:`C` the covariances. Under independence
  :math:`\\sqrt n\\,\\mathrm{vec}(C_{xy}) \\to N(0, \\Sigma_{xx} \\otimes \\Sigma_{yy})` for
  any distribution with finite fourth moments, so :math:`T \\to \\sum_{a,b} \\lambda_a
  \\mu_b Z_{ab}^2` (the linear-kernel case of HSIC's null, Gretton et al. 2008), with
  :math:`\\lambda, \\mu` the eigenvalues of the two covariances. Its tail is taken by
  Liu, Tang & Zhang's (2009) chi-square approximation matching three cumulants,
  :math:`c_k = \\sum_{ab} (\\lambda_a \\mu_b)^k = \\mathrm{tr}(\\Sigma_{xx}^k)\\,
  \\mathrm{tr}(\\Sigma_{yy}^k)`, which need each side's covariance only (computed once per
  representation, not once per pair).

The calibration was measured (docs/uncertainty.md): under independence the p-values are
uniform (Kolmogorov-Smirnov) at the row counts where :data:`FEW_ROWS_TEST` holds.

References
----------
.. [1] M. S. Bartlett, "The statistical significance of canonical correlations",
   Biometrika 32(1), 1941.
.. [2] A. Gretton et al., "A kernel statistical test of independence", NIPS 2007.
.. [3] H. Liu, Y. Tang, H. H. Zhang, "A new chi-square approximation to the
   distribution of non-negative definite quadratic forms in non-central normal
   variables", Comput. Stat. Data Anal. 53(4), 2009.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from svcca._measures._registry import Measure
from svcca._moments import Moments

__all__ = [
    "ASYMPTOTIC_TESTS",
    "BOUNDARY_MEASURES",
    "null_correlations",
    "warn_null_correlations",
    "FEW_ROWS_TEST",
    "PowerTraces",
    "bartlett_statistics",
    "cca_of",
    "hsic_linear_pvalue",
    "bartlett_pvalue",
]

# Which measures have an asymptotic test here, and the statistic's name.
ASYMPTOTIC_TESTS: Mapping[str, str] = {
    "cca": "bartlett",
    "pwcca": "bartlett",
    "svcca": "bartlett",
    "cka_linear": "hsic",
    "pls": "hsic",
}

# The measures whose intervals were measured to undercover when a population canonical
# correlation is 0 (a singular value at 0 is not a smooth function of the moments).
BOUNDARY_MEASURES = frozenset({"cca", "svcca", "pwcca"})

# Below this many rows per feature (n < ratio * (p + q)) the asymptotic p-values were
# measured to drift from uniform (docs/uncertainty.md): the engines warn there.
FEW_ROWS_TEST = 10.0


def bartlett_statistics(rho: np.ndarray, n: int, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Bartlett's sequential statistics and their degrees of freedom.

    Parameters
    ----------
    rho : ndarray, shape (k,)
        Canonical correlations, descending.
    n : int
        Rows.
    p, q : int
        The two sides' dimensions (ranks after pruning).

    Returns
    -------
    statistics, dof : ndarray, shape (k,)
        ``statistics[j]`` tests "only the first ``j`` correlations are non-zero",
        :math:`-(n - 1 - (p + q + 1)/2) \\sum_{i \\ge j} \\ln(1 - \\rho_i^2)`, on
        ``dof[j] = (p - j)(q - j)`` degrees of freedom.
    """
    factor = n - 1 - (p + q + 1) / 2.0
    if factor <= 0:
        raise ValueError(
            f"Bartlett's test needs n > (p + q + 3) / 2 samples; got n={n} for ranks "
            f"p={p}, q={q}. Use more datapoints or fewer features (e.g. SVCCA's keep=)."
        )
    one_minus = np.maximum(1.0 - np.asarray(rho, dtype=np.float64) ** 2, np.finfo(float).tiny)
    tails = np.cumsum(np.log(one_minus)[::-1])[::-1]  # tails[j] = sum_{i >= j} ln(1 - rho_i^2)
    j = np.arange(tails.size)
    return -factor * tails, (p - j) * (q - j)


class PowerTraces:
    """``tr(A^k)``, ``k = 1, 2, 3``, of one side's covariance normalised to trace 1
    (``A = S / tr S``): what the linear-CKA test needs of a representation."""

    __slots__ = ("t1", "t2", "t3", "trace")

    def __init__(self, S: np.ndarray) -> None:
        S = np.asarray(S, dtype=np.float64)
        self.trace = float(np.trace(S))
        if not self.trace > 0:
            self.t1 = self.t2 = self.t3 = float("nan")
            return
        lam = np.clip(np.linalg.eigvalsh(S / self.trace), 0.0, None)
        self.t1, self.t2, self.t3 = float(lam.sum()), float(lam @ lam), float(lam**2 @ lam)


def hsic_linear_pvalue(
    sxy: np.ndarray, n: int, tx: PowerTraces, ty: PowerTraces
) -> tuple[float, float]:
    """Linear CKA's asymptotic test of independence.

    Parameters
    ----------
    sxy : ndarray, shape (p, q)
        Centred cross-products :math:`\\sum_r (x_r - \\bar x)(y_r - \\bar y)^T`, in the
        units of the Gram matrices ``tx`` and ``ty`` were computed from.
    n : int
    tx, ty : PowerTraces

    Returns
    -------
    statistic : float
        :math:`T = n \\|S_{xy}\\|_F^2 / (\\mathrm{tr} S_{xx}\\,\\mathrm{tr} S_{yy})`, the
        HSIC statistic :math:`n \\|C_{xy}\\|_F^2` in units where both covariances have
        trace 1 (its null mean is 1). NaN for a constant side.
    pvalue : float
        :math:`P(Q \\ge T)` for :math:`Q = \\sum_{ab} \\lambda_a \\mu_b Z_{ab}^2`, by Liu,
        Tang & Zhang's three-cumulant chi-square: with :math:`c_k = t_k(x) t_k(y)`,
        :math:`\\ell = c_2^3 / c_3^2` degrees of freedom and
        :math:`P(\\chi^2_\\ell \\ge \\ell + (T - c_1)\\sqrt{\\ell / c_2})`.
    """
    if not (tx.trace > 0 and ty.trace > 0):
        return float("nan"), float("nan")
    scaled = np.asarray(sxy, dtype=np.float64) / np.sqrt(tx.trace * ty.trace)
    T = float(n * np.vdot(scaled, scaled))
    c1, c2, c3 = tx.t1 * ty.t1, tx.t2 * ty.t2, tx.t3 * ty.t3
    from scipy.stats import chi2  # scipy.stats is slow to import: only when used

    dof = c2**3 / c3**2
    return T, float(chi2.sf(dof + (T - c1) * np.sqrt(dof / c2), dof))


def cca_of(m: Measure, pair: Moments, params: Mapping[str, Any]) -> Any:
    """The CCA behind a CCA-family measure's score on ``pair``: its correlations and
    the two sides' dimensions (``rank_x``, ``rank_y``)."""
    out = m(pair, None, **dict(params))
    return getattr(out, "cca", out)


def bartlett_pvalue(rho: np.ndarray, n: int, p: int, q: int) -> tuple[float, float]:
    """``(statistic, pvalue)`` of Bartlett's test that every canonical correlation of a
    ``p``- and a ``q``-dimensional side is 0 (``(0, 1)`` when a side has no dimension)."""
    if min(p, q) == 0:
        return 0.0, 1.0
    from scipy.stats import chi2

    stats, dof = bartlett_statistics(rho, n, p, q)
    return float(stats[0]), float(chi2.sf(stats[0], dof[0]))


def null_correlations(
    m: Measure, pair: Moments, params: Mapping[str, Any], alpha: float = 0.05
) -> tuple[int, int]:
    """``(zero, k)``: of a CCA-family measure's ``k`` canonical correlations on ``pair``,
    how many Bartlett's sequential test at ``alpha`` does not tell from 0 (``(0, 0)``
    for another measure, or where the test cannot run)."""
    if m.name not in BOUNDARY_MEASURES:
        return 0, 0
    res = cca_of(m, pair, params)
    p, q = int(res.rank_x), int(res.rank_y)
    k = int(np.asarray(res.correlations).size)
    if k == 0 or pair.n - 1 - (p + q + 1) / 2.0 <= 0:
        return 0, 0
    from scipy.stats import chi2

    stats, dof = bartlett_statistics(res.correlations, pair.n, p, q)
    reject = chi2.sf(stats, dof) < alpha
    significant = k if reject.all() else int(np.argmin(reject))
    return k - significant, k


def warn_null_correlations(name: str, cells: list[tuple[str, int, int]], stacklevel: int) -> None:
    """One warning naming the cells (``(label, zero, k)``) whose CCA-family interval rests
    on canonical correlations indistinguishable from 0, where its coverage was measured
    to fall short (docs/uncertainty.md); ``stacklevel`` as :func:`warnings.warn` counts
    it from here."""
    import warnings

    from svcca._validation import SVCCAWarning

    bad = [c for c in cells if c[1] > 0]
    if not bad:
        return
    shown = "; ".join(f"{label}: {z} of {k}" for label, z, k in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    warnings.warn(
        f"The {name!r} interval includes canonical correlations that Bartlett's test does "
        f"not tell from 0 ({shown}{more}). With a population canonical correlation of 0 "
        "the CCA intervals were measured to cover 0.86-0.88 at any number of rows (a "
        "correlation at 0 is not a smooth function of the data; docs/uncertainty.md): "
        "read the interval as too narrow. Compare the significant directions only "
        "(svcca with keep= their number), or use linear CKA, whose intervals cover.",
        SVCCAWarning,
        stacklevel=stacklevel,
    )
