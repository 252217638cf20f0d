"""Statistics of one side, compared: magnitude, concentricity and uniformity differences.

ReSi (Klabunde et al., ICLR 2025) includes three measures that summarise each
representation by one number and report the absolute difference. Each side's number is
prepared once (:func:`svcca.pairwise` with ``L`` layers computes ``L`` of them, not
``L^2``); the uniformity's ``n x n`` kernel sum is taken in row blocks, never held whole.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from svcca._measures._rsm import RSMSide, _blocks, _check_block_size, _check_side
from svcca._result import result
from svcca._sources import to_moments
from svcca._validation import SVCCAWarning, check_real, raise_degenerate

__all__ = [
    "OneSideResult",
    "concentricity",
    "concentricity_difference",
    "magnitude_difference",
    "uniformity",
    "uniformity_difference",
]


@result
class OneSideResult:
    """The absolute difference of one statistic of each side.

    Attributes
    ----------
    distance : float
        ``|s(X) - s(Y)|``; 0 when the two sides agree in the statistic.
    values : tuple of float
        ``(s(X), s(Y))``.
    n_samples : int
    n_features : tuple of int
    """

    distance: float
    values: tuple[float, float]
    n_samples: int
    n_features: tuple[int, int]


@result
class SideStatistic:
    """One side's statistic, prepared for the pairwise engine."""

    value: float
    n_samples: int
    n_features: int


def _combine(sx: SideStatistic, sy: SideStatistic) -> OneSideResult:
    if sx.n_samples != sy.n_samples:
        raise ValueError(
            f"X and Y must describe the same datapoints: X has {sx.n_samples} samples "
            f"(rows) and Y has {sy.n_samples}."
        )
    return OneSideResult(
        abs(sx.value - sy.value),
        (sx.value, sy.value),
        sx.n_samples,
        (sx.n_features, sy.n_features),
    )


# ---------------------------------------------------------------------- magnitude
def magnitude_difference(X: Any, Y: Any = None) -> OneSideResult:
    """Difference of the norms of the two sides' mean vectors (ReSi's magnitude
    difference).

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)

    Returns
    -------
    OneSideResult
        ``distance = | ||mean(X)|| - ||mean(Y)|| |`` in the data's units.

    Notes
    -----
    .. math:: d(X, Y) = \\big|\\, \\|\\bar x\\|_2 - \\|\\bar y\\|_2 \\big|,
              \\qquad \\bar x = \\frac{1}{n} \\sum_i x_i.

    Only the means are needed: computed from :class:`svcca.Moments`. It ignores
    rotations and permutations of the features, not translations or scaling. A
    constant side is refused, as by every measure.

    References
    ----------
    .. [1] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531 (after Wang et al. 2020's
       magnitude of representations).

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((100, 2)) + [3.0, 4.0]
    >>> res = svcca.MEASURES["magnitude_difference"](X, X - [3.0, 4.0])
    >>> round(res.distance, 1)
    5.0
    """
    m = to_moments(X, Y)
    for S, name, p in ((m.sxx, "X", m.p), (m.syy, "Y", m.q)):
        if not float(np.trace(S)) > 0.0:
            raise_degenerate(name, p, "no variance, every feature is constant")
    vx, vy = float(np.linalg.norm(m.mean_x)), float(np.linalg.norm(m.mean_y))
    return OneSideResult(abs(vx - vy), (vx, vy), m.n, (m.p, m.q))


# ---------------------------------------------------------------------- concentricity
def _concentricity(A: np.ndarray, name: str) -> float:
    """Mean cosine similarity of the datapoints to their mean (rows in chunks)."""
    A64 = np.asarray(A, dtype=np.float64)
    mean = A64.mean(axis=0)
    norm_m = float(np.linalg.norm(mean))
    top = float(np.max(np.abs(A64)))
    if not norm_m > 64 * np.finfo(np.float64).eps * top * np.sqrt(A.shape[1]):
        raise ValueError(
            f"Representation {name}'s mean vector is zero (norm {norm_m:.3g}, at the "
            "round-off of its entries): the cosine of a datapoint to it is undefined. "
            "Concentricity needs uncentred data whose mean is not 0."
        )
    norms = np.linalg.norm(A64, axis=1)
    zero = norms == 0.0
    if zero.any():
        warnings.warn(
            f"{int(zero.sum())} datapoints of {name} are zero vectors (no direction): "
            "their cosine to the mean counts as 0, as in ReSi.",
            SVCCAWarning,
            stacklevel=4,
        )
    cos = (A64 @ mean) / (np.where(zero, 1.0, norms) * norm_m)
    return float(np.mean(np.where(zero, 0.0, cos)))


def concentricity(X: Any, *, _name: str = "X") -> SideStatistic:
    """One side of :func:`concentricity_difference`: its mean cosine to its mean."""
    A = _check_side(X, _name)
    return SideStatistic(_concentricity(A, _name), A.shape[0], A.shape[1])


def _concentricity_combine(sx: SideStatistic, sy: SideStatistic) -> OneSideResult:
    return _combine(sx, sy)


def concentricity_difference(X: Any, Y: Any) -> OneSideResult:
    """Difference of the two sides' concentricities (ReSi's concentricity difference).

    Parameters
    ----------
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)

    Returns
    -------
    OneSideResult

    Notes
    -----
    .. math:: c(X) = \\frac{1}{n} \\sum_i \\cos(x_i, \\bar x), \\qquad
              d(X, Y) = |c(X) - c(Y)|,

    the mean cosine similarity of each datapoint to the mean datapoint (Wang et al.
    2020). Uncentred by definition: it ignores rotations, permutations and isotropic
    scaling, not a translation. A zero row (no direction) counts as cosine 0 with a
    :class:`~svcca.SVCCAWarning` (ReSi's scikit-learn cosine does the same silently); a
    side whose mean is 0 is refused (no cosine to it is defined).

    References
    ----------
    .. [1] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.
    .. [2] L. Wang, L. Hu, J. Gu, Y. Wu, Z. Hu, K. He, J. Hopcroft, "Towards
       Understanding Learning Representations: To What Extent Do Different Neural
       Networks Learn the Same Representation", NeurIPS 2018.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((100, 3)) + 2.0
    >>> round(svcca.MEASURES["concentricity_difference"](X, 5 * X).distance, 8)
    0.0
    """
    return _combine(concentricity(X, _name="X"), concentricity(Y, _name="Y"))


# ---------------------------------------------------------------------- uniformity
def check_t(t: Any) -> float:
    return check_real(
        t,
        "t",
        low=0.0,
        low_open=True,
        fix="It is the Gaussian potential's scale exp(-t ||x - y||^2) (Wang & Isola: 2).",
    )


def _uniformity(A: np.ndarray, name: str, t: float, block_size: int | None) -> float:
    """``log(mean_ij exp(-t ||x_i - x_j||^2))`` in row blocks of the squared distances."""
    side = RSMSide(A, name)
    n = side.n
    b = _check_block_size(block_size, n)
    total = 0.0
    for lo, hi in _blocks(n, b):
        D = side.Xc[lo:hi] @ side.Xc.T
        D *= -2.0
        D += side.sq[lo:hi, None]
        D += side.sq[None, :]
        np.maximum(D, 0.0, out=D)
        idx = np.arange(hi - lo)
        D[idx, idx + lo] = 0.0
        D *= -t
        np.exp(D, out=D)
        total += float(D.sum())
    return float(np.log(total / n) - np.log(n))  # total >= n (the diagonal): finite


def uniformity(
    X: Any, *, t: float = 2.0, block_size: int | None = None, _name: str = "X"
) -> SideStatistic:
    """One side of :func:`uniformity_difference`: its uniformity (one blocked pass)."""
    tt = check_t(t)
    A = _check_side(X, _name)
    return SideStatistic(_uniformity(A, _name, tt, block_size), A.shape[0], A.shape[1])


def _uniformity_combine(
    sx: SideStatistic, sy: SideStatistic, *, t: float = 2.0, block_size: int | None = None
) -> OneSideResult:
    return _combine(sx, sy)


def uniformity_difference(
    X: Any, Y: Any, *, t: float = 2.0, block_size: int | None = None
) -> OneSideResult:
    """Difference of the two sides' uniformities (ReSi's uniformity difference).

    Parameters
    ----------
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)
    t : float, default 2.0
        Scale of the Gaussian potential (Wang & Isola's default).
    block_size : int, optional
        Rows of the ``n x n`` kernel matrix computed at once (memory ``8 block_size
        n`` bytes). Default: as many as fit in 32 MiB.

    Returns
    -------
    OneSideResult

    Notes
    -----
    .. math:: u(X) = \\log \\frac{1}{n^2} \\sum_{i, j} e^{-t \\|x_i - x_j\\|^2},
              \\qquad d(X, Y) = |u(X) - u(Y)|,

    the log of the mean Gaussian potential over all pairs, diagonal included (Wang &
    Isola 2020, as ReSi computes it). The sum is taken in row blocks; the diagonal
    contributes exactly ``n``, so :math:`u \\ge -\\log n`. It ignores rotations,
    translations and permutations, not a scaling.

    .. warning:: Wang & Isola define uniformity for features on the unit sphere
       (L2-normalised rows); ReSi applies it to raw representations, whose pairwise
       distances are usually so large that every off-diagonal term underflows: both
       sides then score :math:`-\\log n` and the difference is 0 or round-off,
       whatever the data (the ReSi values on the reference cases are 0 to 1e-3).
       Normalise the rows first (``X / np.linalg.norm(X, axis=1, keepdims=True)``) for
       the paper's measure.

    References
    ----------
    .. [1] T. Wang, P. Isola, "Understanding Contrastive Representation Learning
       through Alignment and Uniformity on the Hypersphere", ICML 2020,
       arXiv:2005.10242.
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((100, 3))
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))
    >>> round(svcca.MEASURES["uniformity_difference"](X, X @ Q).distance, 8)
    0.0
    """
    tt = check_t(t)
    return _combine(
        uniformity(X, t=tt, block_size=block_size, _name="X"),
        uniformity(Y, t=tt, block_size=block_size, _name="Y"),
    )
