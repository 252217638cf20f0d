"""Permutation tests and bootstrap confidence intervals for any similarity measure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from svcca._measures import fast_scorer, permutation_batches
from svcca._moments import Moments
from svcca._progress import Progress, check_progress
from svcca._result import result
from svcca._validation import (
    Precision,
    check_int,
    check_option,
    check_pair,
    check_precision,
    check_probability,
)
from svcca.stats._measure import Resolved, resolve

__all__ = [
    "BootstrapResult",
    "PermutationResult",
    "bootstrap",
    "permutation_null",
    "permutation_test",
]

# A registered measure's name, a svcca.Measure, or a callable (X, Y) -> result with .score.
Measure = Any
Alternative = Literal["greater", "less"]


@result
class PermutationResult:
    """A permutation test of the association between two representations.

    Attributes
    ----------
    statistic : float
        ``measure(X, Y).score`` on the data as paired.
    pvalue : float
        ``(1 + #{null scores at least as extreme}) / (1 + n_permutations)``: never 0,
        valid (not anti-conservative) for any number of permutations.
    null_distribution : ndarray, shape (n_permutations,)
        The measure with Y's rows shuffled, breaking the pairing of datapoints.
    n_permutations : int
    alternative : {"greater", "less"}
    vectorized : bool
        Whether the per-side work was reused across permutations (a moments measure's
        fast path, or a split measure's prepared sides) or the measure was called in
        full each time.
    measure : str
        The measure's name (its registered name, or a plain callable's ``__name__``).
    params : mapping
        The parameters it was called with.
    """

    statistic: float
    pvalue: float
    null_distribution: np.ndarray
    n_permutations: int
    alternative: str
    vectorized: bool
    measure: str
    params: Mapping[str, Any]


@result
class BootstrapResult:
    """A bootstrap confidence interval over datapoints.

    Attributes
    ----------
    statistic : float
        ``measure(X, Y).score`` on the full data.
    low, high : float
        Percentile interval: the ``(1 - confidence)/2`` and ``(1 + confidence)/2``
        quantiles of the bootstrap distribution.
    confidence : float
    distribution : ndarray, shape (n_resamples,)
        The measure on datapoints resampled with replacement (the same rows on both
        sides).
    standard_error : float
        Standard deviation of ``distribution``.
    measure : str
        The measure's name (its registered name, or a plain callable's ``__name__``).
    params : mapping
        The parameters it was called with.
    """

    statistic: float
    low: float
    high: float
    confidence: float
    distribution: np.ndarray
    standard_error: float
    measure: str
    params: Mapping[str, Any]


# ---------------------------------------------------------------------- checks
def check_arrays(X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(X, Moments) or isinstance(Y, Moments):
        raise TypeError(
            "Resampling needs the datapoints themselves: pass the arrays X and Y, not a "
            "Moments object (it no longer knows which sample is which)."
        )
    A, B = check_pair(X, Y)
    if A.shape[0] < 3:
        raise ValueError(f"Resampling needs at least 3 datapoints; got {A.shape[0]}.")
    return A, B


# ---------------------------------------------------------------------- permutations
def permutation_null(
    measure: Resolved,
    A: np.ndarray,
    B: np.ndarray,
    n_permutations: int,
    rng: np.random.Generator,
    *,
    vectorized: bool = True,
    progress: bool = False,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, bool]:
    """Scores of ``measure(A, B[perm])`` for random permutations (validated inputs)."""
    scorer = None
    if vectorized and measure.measure is not None:
        scorer = fast_scorer(measure.measure, measure.params, A, B, n_permutations, dtype)
    out = np.empty(n_permutations)
    i = 0
    with Progress(progress, n_permutations, "permutations") as bar:
        for perms in permutation_batches(rng, A.shape[0], n_permutations):
            for perm in perms:
                out[i] = scorer(perm) if scorer is not None else measure.score(A, B[perm])
                i += 1
            bar.update(perms.shape[0])
    return out, scorer is not None


def permutation_test(
    measure: Measure,
    X: Any,
    Y: Any,
    *,
    n_permutations: int = 1000,
    seed: int | np.random.Generator | None = None,
    alternative: Alternative = "greater",
    vectorized: bool = True,
    precision: Precision = "float64",
    progress: bool | None = False,
    params: dict[str, Any] | None = None,
) -> PermutationResult:
    """Permutation test: is the measured similarity larger than chance pairing gives?

    Parameters
    ----------
    measure : str, Measure or callable
        A name of :data:`svcca.MEASURES` (``"cka_rbf"``), a :class:`svcca.Measure`, or
        ``measure(X, Y)`` returning a result with ``.score`` (a function of this
        library, a ``functools.partial`` of one with keyword options, or your own). A
        minibatch measure is refused (it does not resample).
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)
    n_permutations : int, default 1000
    seed : int, Generator or None
        Seeds ``numpy.random.default_rng``; the same seed gives the same permutations.
    alternative : {"greater", "less"}, default "greater"
        "greater": small p-values mean more similar than chance (use for every
        ``.score``, which grows with similarity).
    vectorized : bool, default True
        Reuse each side's work across permutations: the library's moments measures
        (linear CKA and PLS, CCA, SVCCA, Procrustes, shape metrics, regression) through
        their fast paths, and every measure split into prepare and combine (RBF and debiased CKA,
        RSA, a registered measure of yours) by preparing each side once (and permuting
        Y's prepared side where the measure declares ``permute``). False calls the
        measure in full each time (same numbers).
    precision : {"float64", "float32"}, default "float64"
        Precision of the per-permutation products on the vectorised path (sums are
        always accumulated in float64; RSA and the plain loop ignore it). "float32" was
        1.3-2x faster per permutation for linear CKA at n=10000, p=q=512, and its null
        values differed from float64 ones by at most 2e-10 (the null's spread was 1e-4),
        so p-values change only for a null value that close to the statistic, which is
        always computed in float64.
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line
        counter). None: only when stderr is a terminal.
    params : dict, optional
        Parameters of a registered measure (``{"bandwidth": 0.5}`` for ``"cka_rbf"``).

    Returns
    -------
    PermutationResult

    Notes
    -----
    The null hypothesis is that the pairing of rows between X and Y carries no
    information: Y's rows are shuffled, which keeps each representation's own geometry
    intact. The p-value :math:`(1 + \\#\\{s_b \\ge s\\}) / (1 + B)` includes the observed
    pairing among the permutations (Phipson & Smyth 2010), so it is exact-valid.

    For linear CKA, CCA, regression and the shape metrics, centring and whitening are
    done once, and each permutation costs one ``p x n x q`` product and a small
    decomposition; for RBF CKA and RSA each side's ``n x n`` Gram or RDM (and its
    ranks) is computed once and each permutation costs one ``n x n`` gather.

    References
    ----------
    .. [1] B. Phipson, G. K. Smyth, "Permutation P-values Should Never Be Zero",
       Stat. Appl. Genet. Mol. Biol. 9(1), 2010.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 5))
    >>> Y = X + rng.standard_normal((100, 5))
    >>> res = svcca.stats.permutation_test(svcca.cka, X, Y, n_permutations=99, seed=0)
    >>> res.pvalue
    0.01
    """
    m = resolve(measure, params, "permutation_test")
    progress = check_progress(progress)
    B_ = check_int(n_permutations, "n_permutations")
    alternative = check_option(alternative, "alternative", ("greater", "less"))  # type: ignore[assignment]
    dt = np.float32 if check_precision(precision) == "float32" else np.float64
    A, B = check_arrays(X, Y)
    rng = np.random.default_rng(seed)
    stat = m.score(A, B)
    null, fast = permutation_null(
        m, A, B, B_, rng, vectorized=bool(vectorized), progress=progress, dtype=dt
    )
    tol = 1e-12 * max(1.0, abs(stat))
    if alternative == "greater":
        count = int(np.sum(null >= stat - tol))
    else:
        count = int(np.sum(null <= stat + tol))
    pvalue = (1 + count) / (1 + B_)
    return PermutationResult(stat, pvalue, null, B_, alternative, fast, m.name, m.params)


# ---------------------------------------------------------------------- bootstrap
def bootstrap(
    measure: Measure,
    X: Any,
    Y: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = None,
    progress: bool | None = False,
    params: dict[str, Any] | None = None,
) -> BootstrapResult:
    """Bootstrap confidence interval of a measure over datapoints.

    Parameters
    ----------
    measure : str, Measure or callable
        A name of :data:`svcca.MEASURES`, a :class:`svcca.Measure`, or ``measure(X, Y)``
        returning a result with ``.score`` (as for :func:`permutation_test`).
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)
    n_resamples : int, default 1000
    confidence : float in (0, 1), default 0.95
    seed : int, Generator or None
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line
        counter). None: only when stderr is a terminal.
    params : dict, optional
        Parameters of a registered measure.

    Returns
    -------
    BootstrapResult
        ``.low``, ``.high``, the bootstrap ``.distribution`` and ``.standard_error``.

    Notes
    -----
    Each resample draws ``n`` datapoints with replacement, the same rows for X and Y,
    and recomputes the measure; the interval is the percentile interval. It describes
    the variability due to the choice of datapoints, not to training seeds.

    .. warning:: Resampling with replacement duplicates datapoints, which makes biased
       estimators (biased CKA, CCA with many features) drift upwards; the percentile
       interval then need not contain the full-data value. Prefer debiased CKA, or
       many more datapoints than features, when reading these intervals.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 4))
    >>> Y = X + rng.standard_normal((200, 4))
    >>> ci = svcca.stats.bootstrap(svcca.cka, X, Y, n_resamples=200, seed=0)
    >>> bool(ci.low < ci.statistic < ci.high)
    True
    """
    m = resolve(measure, params, "bootstrap")
    progress = check_progress(progress)
    R = check_int(n_resamples, "n_resamples", minimum=2)
    conf = check_probability(confidence, "confidence")
    if not 0.0 < conf < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {conf}.")
    A, B = check_arrays(X, Y)
    rng = np.random.default_rng(seed)
    stat = m.score(A, B)
    n = A.shape[0]
    dist = np.empty(R)
    with Progress(progress, R, "bootstrap") as bar:
        for r in range(R):
            idx = rng.integers(0, n, size=n)
            dist[r] = m.score(A[idx], B[idx])
            bar.update(1)
    low, high = np.quantile(dist, [(1.0 - conf) / 2.0, (1.0 + conf) / 2.0])
    sd = float(np.std(dist, ddof=1))
    return BootstrapResult(stat, float(low), float(high), conf, dist, sd, m.name, m.params)
