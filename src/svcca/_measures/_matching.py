"""Matching measures: align the features (neurons) of one side to the other's.

From ReSi (Klabunde et al., ICLR 2025): hard and soft correlation match, permutation
Procrustes and the Procrustes size-and-shape distance are functions of the ``p x q``
feature cross-products, so they are computed from :class:`svcca.Moments` like
:func:`svcca.procrustes` (one pass over the data, constant memory in ``n``). Aligned
cosine similarity also needs each datapoint's norm, so it reads the rows once, in
chunks, accumulating two ``p x q`` matrices.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np

import svcca._dense as _dense
from svcca._measures._cka import check_finite, check_not_constant
from svcca._measures._linalg import EPS
from svcca._moments import Moments
from svcca._result import result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import (
    SVCCAWarning,
    check_option,
    check_pair,
    raise_degenerate,
)

__all__ = [
    "AlignedCosineResult",
    "CorrelationMatchResult",
    "MatchingDistanceResult",
    "aligned_cosine",
    "correlation_match",
    "permutation_procrustes",
    "procrustes_size_shape",
]

Mode = Literal["hard", "soft"]

# rows per chunk of aligned_cosine's pass (float64 chunks of about 32 MiB over both sides)
_CHUNK_ELEMENTS = 1 << 22


@result
class CorrelationMatchResult:
    """Hard or soft correlation match (Li et al. 2015) of two representations.

    Attributes
    ----------
    score : float
        The mean correlation of matched neurons, in [-1, 1].
    mode : {"hard", "soft"}
    pairs : ndarray of int, shape (min(p, q), 2)
        ``"hard"``: the one-to-one matching ``(i, j)`` (neuron ``i`` of X with neuron
        ``j`` of Y) that maximises the summed correlation. ``"soft"``: empty.
    n_samples : int
    n_features : tuple of int
    """

    score: float
    mode: str
    pairs: np.ndarray
    n_samples: int
    n_features: tuple[int, int]


@result
class MatchingDistanceResult:
    """A distance between two representations after the best feature alignment.

    Attributes
    ----------
    distance : float
        ``||X P - Y||_F`` minimised over the alignments ``P`` (permutations, or
        orthogonal maps), in the data's units; 0 for identical representations.
    squared_distance : float
    n_samples : int
    n_features : tuple of int
    """

    distance: float
    squared_distance: float
    n_samples: int
    n_features: tuple[int, int]


@result
class AlignedCosineResult:
    """Mean cosine similarity of datapoints after the best rotation of X onto Y.

    Attributes
    ----------
    score : float
        In [-1, 1]; 1 for representations equal up to a rotation and a scale.
    n_used : int
        Datapoints averaged over (those with a zero row on either side are left out).
    n_samples : int
    n_features : tuple of int
    """

    score: float
    n_used: int
    n_samples: int
    n_features: tuple[int, int]


def _check_variance(m: Moments) -> None:
    for S, name, p in ((m.sxx, "X", m.p), (m.syy, "Y", m.q)):
        if not float(np.trace(S)) > 0.0:
            raise_degenerate(name, p, "no variance, every feature is constant")


# ---------------------------------------------------------------------- correlation match
def _varying(S: np.ndarray, mean: np.ndarray, n: int, scale: float) -> np.ndarray:
    """The features that vary: variance above 0 and spread above the round-off of the
    feature's own mean (``std > 1e3 eps |mean|``; below, a constant stored at an offset).
    A correlation is scale-free per feature, so no floor relative to other features."""
    var = np.maximum(np.diag(S), 0.0)
    std = np.sqrt(var / max(n - 1, 1)) * scale
    return np.flatnonzero((var > 0.0) & (std > 1e3 * EPS * np.abs(mean)))


def _correlations(m: Moments) -> np.ndarray:
    """The ``p x q`` Pearson correlations of X's and Y's features; a constant feature
    (:func:`_varying`) correlates 0."""
    kx = _varying(m.sxx, m.mean_x, m.n, m.scale_x)
    ky = _varying(m.syy, m.mean_y, m.n, m.scale_y)
    for kept, name, p in ((kx, "X", m.p), (ky, "Y", m.q)):
        if kept.size == 0:
            raise_degenerate(name, p, "every feature is constant (to its own round-off)")
    C = np.zeros((m.p, m.q))
    sdx, sdy = np.sqrt(np.diag(m.sxx)[kx]), np.sqrt(np.diag(m.syy)[ky])
    C[np.ix_(kx, ky)] = m.sxy[np.ix_(kx, ky)] / sdx[:, None] / sdy[None, :]
    return np.clip(C, -1.0, 1.0)


def correlation_match(X: Any, Y: Any = None, *, mode: Mode = "hard") -> CorrelationMatchResult:
    """Hard or soft correlation match of the two sides' neurons (Li et al. 2015).

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    mode : {"hard", "soft"}, default "hard"
        ``"hard"``: a one-to-one matching of ``min(p, q)`` neuron pairs maximising the
        summed correlation (the assignment problem); ``"soft"``: each neuron matched to
        its most correlated neuron on the other side, the two directions averaged.

    Returns
    -------
    CorrelationMatchResult

    Notes
    -----
    With :math:`C_{ij}` the Pearson correlation of neuron :math:`i` of X and neuron
    :math:`j` of Y (signed: an anti-correlated pair is a poor match),

    .. math:: \\text{hard} = \\frac{1}{\\min(p, q)} \\max_{\\pi} \\sum_i C_{i \\pi(i)},
              \\qquad
              \\text{soft} = \\frac{1}{2}\\Big(\\frac{1}{p}\\sum_i \\max_j C_{ij}
              + \\frac{1}{q}\\sum_j \\max_i C_{ij}\\Big),

    the maximum over one-to-one maps :math:`\\pi` (``scipy.optimize.
    linear_sum_assignment``). Only the correlations are needed, so the score is
    computed from :class:`svcca.Moments`. It ignores translation, isotropic and
    per-feature (positive) scaling and permutations of the neurons, not rotations.
    A neuron with no variance (a dead unit, or a constant whose spread is at the
    round-off of its own mean) correlates 0 with every other, as in ReSi
    (scikit-learn's cosine of a zero vector); a neuron of tiny but real variance keeps
    its correlation (it is scale-free). A side whose every neuron is constant is
    refused.

    References
    ----------
    .. [1] Y. Li, J. Yosinski, J. Clune, H. Lipson, J. Hopcroft, "Convergent Learning:
       Do different neural networks learn the same representations?", ICLR 2016,
       arXiv:1511.07543.
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((200, 4))
    >>> round(svcca.MEASURES["hard_correlation_match"](X, 3 * X[:, ::-1] + 1).score, 8)
    1.0
    """
    mode = check_option(mode, "mode", ("hard", "soft"))  # type: ignore[assignment]
    m = to_moments(X, Y)
    _check_variance(m)
    with dense_steps(max(m.p, m.q), m.device):
        C = _correlations(m)
        if mode == "hard":
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(C, maximize=True)
            score = float(C[rows, cols].mean())
            pairs = np.stack([rows, cols], axis=1)
        else:
            score = float((C.max(axis=1).mean() + C.max(axis=0).mean()) / 2.0)
            pairs = np.zeros((0, 2), dtype=np.intp)
    return CorrelationMatchResult(score, mode, pairs, m.n, (m.p, m.q))


# ---------------------------------------------------------------------- Procrustes distances
def _in_common_units(m: Moments, centred: bool) -> tuple[float, float, np.ndarray, float]:
    """``(||X||_F^2, ||Y||_F^2, X^T Y, u)`` of the centred (or raw) data, each in units of
    ``u^2`` (``u`` a power of two: 1 unless the data's magnitude is extreme)."""
    u = max(m.scale_x, m.scale_y)
    fx, fy = m.scale_x / u, m.scale_y / u
    nx = float(np.trace(m.sxx)) * fx * fx
    ny = float(np.trace(m.syy)) * fy * fy
    G = m.sxy * (fx * fy)
    if not centred:
        mx, my = m.mean_x / u, m.mean_y / u
        nx += m.n * float(mx @ mx)
        ny += m.n * float(my @ my)
        G = G + m.n * np.outer(mx, my)
    return nx, ny, G, u


def _distance(nx: float, ny: float, cross: float, u: float, m: Moments) -> MatchingDistanceResult:
    """``sqrt(nx + ny - 2 cross)`` in the data's units; a negative square of round-off
    size (``|X - Y|`` near 0: a difference of the squared norms) is 0."""
    sq = nx + ny - 2.0 * cross
    if sq < 0.0:
        # the three terms carry relative errors of a few (n + p + q) eps: below that, 0
        bound = 8.0 * (m.n + m.p + m.q) * np.finfo(np.float64).eps * (nx + ny)
        if sq < -bound:  # pragma: no cover - a bug, not round-off
            raise FloatingPointError(
                f"A squared Procrustes distance came out as {sq!r}, below -{bound:.3g} (its "
                "round-off bound). This is a bug; please report it."
            )
        sq = 0.0
    with np.errstate(over="ignore"):
        return MatchingDistanceResult(float(np.sqrt(sq) * u), float(sq * u * u), m.n, (m.p, m.q))


def permutation_procrustes(X: Any, Y: Any = None) -> MatchingDistanceResult:
    """Procrustes distance over permutations of the neurons (ReSi's convention: raw data).

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
        Widths may differ (the narrower side is padded with zero neurons).

    Returns
    -------
    MatchingDistanceResult
        ``distance`` in the data's units; smaller is more similar.

    Notes
    -----
    .. math:: d(X, Y) = \\min_{P} \\|X P - Y\\|_F
              = \\sqrt{\\|X\\|_F^2 + \\|Y\\|_F^2 - 2 \\max_{\\pi} \\sum_i (X^T Y)_{i\\pi(i)}},

    over permutation matrices :math:`P` (``scipy.optimize.linear_sum_assignment`` on
    the raw cross-products :math:`X^T Y`), with the narrower side zero-padded. As in
    ReSi, neither side is centred nor scaled: it ignores permutations of the neurons
    only (a shift or a rescaling of either side moves it). A function of the raw
    second moments, computed from :class:`svcca.Moments` (the centred sums plus
    :math:`n \\bar x \\bar y^T`). Since it is a difference of squared norms, a
    distance near 0 is accurate to about :math:`\\sqrt{\\epsilon}\\,\\|X\\|_F` of the
    raw data (ReSi subtracts the matched data themselves, exact at 0; its values
    elsewhere agree to 1e-10).

    References
    ----------
    .. [1] A. H. Williams, E. Kunz, S. Kornblith, S. W. Linderman, "Generalized Shape
       Metrics on Neural Representations", NeurIPS 2021, arXiv:2110.14739.
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((100, 3))
    >>> round(svcca.MEASURES["permutation_procrustes"](X, X[:, [2, 0, 1]]).distance, 5)
    0.0
    """
    m = to_moments(X, Y)
    _check_variance(m)
    from scipy.optimize import linear_sum_assignment

    nx, ny, G, u = _in_common_units(m, centred=False)
    rows, cols = linear_sum_assignment(G, maximize=True)
    return _distance(nx, ny, float(G[rows, cols].sum()), u, m)


def procrustes_size_shape(X: Any, Y: Any = None) -> MatchingDistanceResult:
    """Procrustes size-and-shape distance: orthogonal Procrustes of the centred data,
    without scaling (Williams et al. 2021's rotation-invariant metric; ReSi's
    ``ProcrustesSizeAndShapeDistance``).

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
        Widths may differ (the narrower side is padded with zero features).

    Returns
    -------
    MatchingDistanceResult
        ``distance`` in the data's units; smaller is more similar.

    Notes
    -----
    For the centred data :math:`\\tilde X, \\tilde Y`,

    .. math:: d(X, Y) = \\min_{Q^T Q = I} \\|\\tilde X Q - \\tilde Y\\|_F
              = \\sqrt{\\|\\tilde X\\|_F^2 + \\|\\tilde Y\\|_F^2
              - 2 \\|\\tilde X^T \\tilde Y\\|_*},

    a metric on representations up to rotation and translation; a rescaling moves it
    (unlike :func:`svcca.procrustes`, which normalises each side to unit norm first).
    Computed from :class:`svcca.Moments`. Near 0 it is accurate to about
    :math:`\\sqrt{\\epsilon}\\,\\|\\tilde X\\|_F` (a difference of squared norms).

    References
    ----------
    .. [1] A. H. Williams, E. Kunz, S. Kornblith, S. W. Linderman, "Generalized Shape
       Metrics on Neural Representations", NeurIPS 2021, arXiv:2110.14739.
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    >>> round(svcca.MEASURES["procrustes_size_shape"](X, X @ Q + 5).distance, 5)
    0.0
    """
    m = to_moments(X, Y)
    _check_variance(m)
    nx, ny, G, u = _in_common_units(m, centred=True)
    with dense_steps(max(m.p, m.q), m.device):
        nuc = float(_dense.svdvals(G).sum())
    return _distance(nx, ny, nuc, u, m)


# ---------------------------------------------------------------------- aligned cosine
def aligned_cosine(X: Any, Y: Any) -> AlignedCosineResult:
    """Aligned cosine similarity: the mean cosine of each datapoint's two
    representations after the best rotation of X onto Y (ReSi's convention: raw data).

    Parameters
    ----------
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)
        Widths may differ (the narrower side is padded with zero features).

    Returns
    -------
    AlignedCosineResult

    Notes
    -----
    With :math:`\\Omega` the orthogonal Procrustes rotation of the raw data (the polar
    factor :math:`U V^T` of :math:`X^T Y = U S V^T`),

    .. math:: s(X, Y) = \\frac{1}{n} \\sum_i \\cos(\\Omega^T x_i, y_i)
              = \\frac{1}{n} \\langle \\Omega, \\textstyle\\sum_i \\hat x_i
              \\hat y_i^T \\rangle_F, \\quad \\hat x_i = x_i / \\|x_i\\|,

    so one pass over the rows in chunks accumulates :math:`X^T Y` and
    :math:`\\sum_i \\hat x_i \\hat y_i^T` (``p x q`` each), never an ``n``-sized
    matrix. Neither side is centred (as in ReSi): it ignores rotations, permutations
    and isotropic scaling (ReSi declares it not invariant to scaling; cosines are), not
    translation. Datapoints whose row is zero on either side have no cosine: they are
    left out with a :class:`~svcca.SVCCAWarning`, as ReSi does. When :math:`X^T Y` is
    singular the rotation is not unique and neither is the score.

    References
    ----------
    .. [1] T. Hamilton, J. Leskovec, D. Jurafsky, "Diachronic Word Embeddings Reveal
       Statistical Laws of Semantic Change", ACL 2016 (aligned cosine of embeddings).
    .. [2] M. Klabunde et al., "ReSi: A Comprehensive Benchmark for Representational
       Similarity Measures", ICLR 2025, arXiv:2408.00531.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    >>> round(svcca.MEASURES["aligned_cosine"](X, 2 * X @ Q).score, 8)
    1.0
    """
    A, B = check_pair(X, Y)
    for M, name in ((A, "X"), (B, "Y")):
        check_finite(M, name)
        check_not_constant(M, name)
    n, p, q = A.shape[0], A.shape[1], B.shape[1]
    G = np.zeros((p, q))
    H = np.zeros((p, q))
    used = 0
    rows = max(1, _CHUNK_ELEMENTS // (p + q))
    for lo in range(0, n, rows):
        a = np.asarray(A[lo : lo + rows], dtype=np.float64)
        b = np.asarray(B[lo : lo + rows], dtype=np.float64)
        G += a.T @ b
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        ok = (na > 0) & (nb > 0)
        used += int(ok.sum())
        H += (a[ok] / na[ok, None]).T @ (b[ok] / nb[ok, None])
    if used == 0:
        raise ValueError(
            f"Every one of the {n} datapoints has a zero row in X or in Y: no cosine is "
            "defined. Aligned cosine needs datapoints that are non-zero on both sides."
        )
    if used < n:
        warnings.warn(
            f"{n - used} of {n} datapoints have a zero row in X or Y (no direction, so no "
            "cosine): they are left out of the mean, as ReSi does.",
            SVCCAWarning,
            stacklevel=2,
        )
    with dense_steps(max(p, q)):
        U, _, Vt = _dense.svd(G)
        score = float(np.einsum("ij,ij->", U @ Vt, H) / used)
    return AlignedCosineResult(float(np.clip(score, -1.0, 1.0)), used, n, (p, q))
