"""SVCCA: keep each side's leading singular directions, then CCA."""

from __future__ import annotations

import warnings
from dataclasses import field
from functools import cached_property
from typing import Any, Literal

import numpy as np

import svcca._dense as _dense
from svcca._measures._cca import (
    CCAResult,
    CCASide,
    cca_of_sides,
    prepare_side,
    project,
    with_offset,
)
from svcca._measures._linalg import EPS, numerical_rank, sym_eig_desc
from svcca._result import readonly, result
from svcca._sources import to_moments
from svcca._threads import dense_steps
from svcca._validation import (
    Precision,
    SVCCAWarning,
    check_keep,
    check_keep_fits,
    check_option,
    check_probability,
    raise_degenerate,
    warn_few_samples,
)

__all__ = [
    "ReducedSide",
    "SVCCAResult",
    "n_directions",
    "reduce_side",
    "svcca",
    "svcca_from_reduced",
]

Variance = Literal["explained", "singular_values"]


def n_directions(
    eigvals: np.ndarray,
    keep: float | int,
    variance: Variance,
    total: float | None = None,
    what: str | None = None,
) -> int:
    """How many leading directions to keep: SVCCA's keep rule, written once.

    Parameters
    ----------
    eigvals : ndarray, shape (r,)
        Non-zero eigenvalues of the centred cross-product (squared singular values of
        the centred data), descending.
    keep : float or int
        A fraction in (0, 1) (the fewest leading directions whose share of the total
        reaches it) or a count (capped at ``r``, with an :class:`~svcca.SVCCAWarning`
        naming ``what`` when it asks for more: those directions have no variance).
    variance : {"explained", "singular_values"}
        What the share is of: eigenvalues (true explained variance) or their square
        roots (the sum of singular values that google/svcca's tutorial used).
    total : float, optional
        The total variance when ``eigvals`` is not the whole spectrum (the two-pass
        sketch); ``"explained"`` shares are measured against it.
    """
    r = eigvals.size
    if isinstance(keep, int):
        if keep > r and what is not None:
            warnings.warn(
                f"keep={keep} asks for more directions than {what} has with non-zero "
                f"variance ({r}): all {r} are kept.",
                SVCCAWarning,
                stacklevel=4,
            )
        return min(keep, r)
    if variance == "explained":
        share = np.cumsum(eigvals) / (eigvals.sum() if total is None else total)
    else:
        roots = np.sqrt(eigvals)
        share = np.cumsum(roots) / roots.sum()
    # A share of 1.0 may come out as 1 - 1e-16: compare with a little slack.
    return min(int(np.searchsorted(share, keep - 1e-12, side="left")) + 1, r)


class ReducedSide:
    """One representation reduced to its kept singular directions (SVCCA's first step).

    Attributes
    ----------
    name : str
    eigvals : ndarray, shape (k,)
        Variances (centred sums of squares) along the kept directions, descending.
    directions : ndarray, shape (p, k)
        Orthonormal kept directions in feature space.
    mean : ndarray, shape (p,)
    share : float
        Fraction of the total variance the kept directions explain.
    scale : float
        The power of two the data were divided by (``Moments.scale_x``); ``eigvals`` are
        in its units.
    """

    __slots__ = ("name", "eigvals", "directions", "mean", "share", "eps", "scale")

    def __init__(
        self,
        name: str,
        eigvals: np.ndarray,
        directions: np.ndarray,
        mean: np.ndarray,
        share: float,
        eps: float = EPS,
        scale: float = 1.0,
    ) -> None:
        self.name, self.eigvals, self.directions = name, eigvals, directions
        self.mean, self.share, self.eps, self.scale = mean, share, eps, scale

    @property
    def k(self) -> int:
        return int(self.eigvals.size)

    def cca_side(self) -> CCASide:
        """The reduced representation prepared for CCA (its block is ``diag(eigvals)``)."""
        w = self.eigvals
        return prepare_side(
            np.diag(w),
            self.directions.T @ self.mean,
            0.0,
            self.name,
            cond=float(w[0] / w[-1]),
            eps=self.eps,
            scale=self.scale,
        )


def reduce_side(
    S: np.ndarray,
    mean: np.ndarray,
    keep: float | int,
    variance: Variance,
    name: str,
    *,
    eps: float = EPS,
    scale: float = 1.0,
) -> ReducedSide:
    """Prepare one side for SVCCA: the leading eigenpairs of its block, chosen by ``keep``.

    Directions with eigenvalue below 1e-12 of the largest (``rank_rtol(eps)``: 1.2e-4
    for float32 sums) are numerically zero and never kept.

    Raises
    ------
    DegenerateError
        When the representation is constant (no direction has non-zero variance).
    """
    check_keep_fits(keep, S.shape[0], name)
    with _dense.factorising(f"representation {name}"):
        w, V = sym_eig_desc(S, eps)
    r = numerical_rank(w, eps)
    if r == 0:
        raise_degenerate(name, S.shape[0], "it is constant (no direction has any variance)")
    k = n_directions(w[:r], keep, variance, what=f"representation {name}")
    return ReducedSide(
        name,
        w[:k],
        V[:, :k],
        np.array(mean, dtype=np.float64),
        float(w[:k].sum() / w[:r].sum()),
        eps,
        scale,
    )


@result
class SVCCAResult:
    """SVCCA of two representations.

    Attributes
    ----------
    correlations : ndarray, shape (k,)
        Canonical correlations between the kept subspaces, descending.
    score : float
        Their mean.
    mean_squared : float
        Mean of the squared correlations.
    thresholded_mean : float
        google/svcca's thresholded mean of the correlations.
    kept_x, kept_y : int
        Singular directions kept on each side.
    variance_kept_x, variance_kept_y : float
        Fraction of the total variance (sum of squared singular values) the kept
        directions explain, whatever ``variance`` convention chose them.
    keep : float or int
        The requested fraction or count.
    variance : {"explained", "singular_values"}
        The convention ``keep`` was applied with.
    cca : CCAResult
        The CCA of the reduced representations (coordinates in the kept singular
        directions).
    """

    correlations: np.ndarray
    score: float
    mean_squared: float
    thresholded_mean: float
    kept_x: int
    kept_y: int
    variance_kept_x: float
    variance_kept_y: float
    keep: float | int
    variance: Variance
    cca: CCAResult
    directions_x: np.ndarray = field(repr=False, compare=False)
    directions_y: np.ndarray = field(repr=False, compare=False)
    mean_x: np.ndarray = field(repr=False, compare=False)
    mean_y: np.ndarray = field(repr=False, compare=False)

    @cached_property
    def weights_x(self) -> np.ndarray:
        """``(p, k)`` weights from centred X features to the canonical variates."""
        return readonly(self.directions_x @ self.cca.weights_x)

    @cached_property
    def weights_y(self) -> np.ndarray:
        """``(q, k)`` weights from centred Y features to the canonical variates."""
        return readonly(self.directions_y @ self.cca.weights_y)

    def transform(self, X: Any, Y: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Canonical variates ``(X - mean_x) @ weights_x`` (and the same for ``Y``)."""
        u = project(X, "X", self.mean_x, self.weights_x)
        v = None if Y is None else project(Y, "Y", self.mean_y, self.weights_y)
        return u, v


def svcca(
    X: Any,
    Y: Any = None,
    *,
    keep: float | int = 0.99,
    variance: Variance = "explained",
    threshold: float = 0.98,
    precision: Precision = "float64",
) -> SVCCAResult:
    """Singular Vector CCA (Raghu et al. 2017).

    Each representation is reduced to its leading singular directions (the SVD of the
    centred data), then the reduced representations are compared with CCA.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
    Y : array_like, shape (n_samples, q)
    keep : float in (0, 1) or int >= 1, default 0.99
        A float fraction: keep the fewest leading directions whose share of the
        variance reaches it. An int count: keep that many directions, at most the
        layer's features (a count above the directions with non-zero variance keeps
        those, with an :class:`~svcca.SVCCAWarning`). As in scikit-learn's
        ``PCA(n_components=...)``, ``keep=1.0`` is refused (it would read as
        "everything" next to ``keep=1``, one direction), and so is a count above the
        features: to compare the whole layers use :func:`svcca.cca`.
    variance : {"explained", "singular_values"}, default "explained"
        ``"explained"`` measures the share with squared singular values (true explained
        variance). ``"singular_values"`` sums the singular values themselves, the rule
        google/svcca's tutorial used; it keeps more directions for the same ``keep``.
    threshold : float, default 0.98
        For :attr:`SVCCAResult.thresholded_mean`.
    precision : {"float64", "float32"}, default "float64"
        How the cross-products of array inputs are taken. ``"float32"`` (float32
        products, float64 sums) is about twice as fast on float32 activations; its
        errors are near 1e-7 of the entries (see :class:`~svcca.Moments`); do not use it
        for ill-conditioned layers (a warning says when). A Moments input keeps its
        own.

    Returns
    -------
    SVCCAResult

    Notes
    -----
    The right singular vectors of centred ``X`` are the eigenvectors ``V`` of
    :math:`S_{xx}` and the squared singular values its eigenvalues, so the reduced
    statistic is exactly :math:`V_k^T S_{xx} V_k = \\mathrm{diag}(\\lambda_{1..k})`,
    :math:`V_k^T S_{xy} W_k`: SVCCA needs no second pass over the data. Directions
    with eigenvalue below 1e-12 of the largest are numerically zero and never kept.

    .. warning:: The tutorial of google/svcca chose ``k`` by the sum of singular values,
       not of their squares; ``variance="singular_values"`` reproduces it. The paper
       speaks of explained variance, which is the default here.

    References
    ----------
    .. [1] M. Raghu et al., "SVCCA", NeurIPS 2017, arXiv:1706.05806.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((3000, 5))
    >>> X = Z @ rng.standard_normal((5, 40)) + 0.1 * rng.standard_normal((3000, 40))
    >>> Y = Z @ rng.standard_normal((5, 30)) + 0.1 * rng.standard_normal((3000, 30))
    >>> r = svcca.svcca(X, Y, keep=5)
    >>> r.kept_x, r.kept_y, round(r.score, 2)
    (5, 5, 1.0)
    """
    keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    threshold = check_probability(threshold, "threshold")
    m = to_moments(X, Y, precision=precision)
    with dense_steps(max(m.p, m.q), m.device):
        rx = reduce_side(m.sxx, m.mean_x, keep, variance, "X", eps=m.eps, scale=m.scale_x)
        ry = reduce_side(m.syy, m.mean_y, keep, variance, "Y", eps=m.eps, scale=m.scale_y)
        res = svcca_from_reduced(
            m.n,
            rx,
            ry,
            _dense.matmul(rx.directions.T, m.sxy, ry.directions),
            keep=keep,
            variance=variance,
            threshold=threshold,
        )
    warn_few_samples(m.n, rx.k, ry.k)
    return res


def svcca_from_reduced(
    n: int,
    x: ReducedSide,
    y: ReducedSide,
    sxy_reduced: np.ndarray,
    *,
    keep: float | int,
    variance: Variance,
    threshold: float,
) -> SVCCAResult:
    """SVCCA once each side is reduced to its kept singular directions.

    ``sxy_reduced`` is ``V_x^T S_xy V_y``, shape ``(k_x, k_y)``. The reduced blocks are
    diagonal, so the CCA of the reduced statistic (:func:`svcca.cca`'s own two steps)
    is cheap.
    """
    sx = with_offset(x.cca_side(), np.diag(x.eigvals), n)
    sy = with_offset(y.cca_side(), np.diag(y.eigvals), n)
    inner = cca_of_sides(sx, sy, sxy_reduced, n, threshold=threshold, epsilon=0.0)
    return SVCCAResult(
        correlations=inner.correlations,
        score=inner.score,
        mean_squared=inner.mean_squared,
        thresholded_mean=inner.thresholded_mean,
        kept_x=x.k,
        kept_y=y.k,
        variance_kept_x=x.share,
        variance_kept_y=y.share,
        keep=keep,
        variance=variance,
        cca=inner,
        directions_x=x.directions,
        directions_y=y.directions,
        mean_x=x.mean,
        mean_y=y.mean,
    )
