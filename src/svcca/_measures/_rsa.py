"""Representational similarity analysis: dissimilarity matrices and their comparison."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import numpy as np

from svcca._measures._gram import check_finite, unit_scaled
from svcca._result import result
from svcca._validation import as_representation, check_option, check_pair, raise_degenerate

__all__ = [
    "RSAResult",
    "RSASide",
    "combine_rsa",
    "compare_rdms",
    "permute_rsa",
    "prepare_rsa",
    "rdm",
    "rsa",
    "rsa_side_bytes",
]

Metric = Literal["euclidean", "correlation"]
Compare = Literal["spearman", "pearson"]


@result
class RSAResult:
    """Representational similarity analysis of two representations.

    Attributes
    ----------
    score : float
        Correlation (Pearson or Spearman) between the off-diagonal entries of the two
        representational dissimilarity matrices, in [-1, 1].
    metric : {"euclidean", "correlation"}
        Dissimilarity between datapoints.
    compare : {"spearman", "pearson"}
        How the two RDMs were compared.
    n_samples : int
    n_features : tuple of int
    """

    score: float
    metric: str
    compare: str
    n_samples: int
    n_features: tuple[int, int]


def rdm_unchecked(A: np.ndarray, metric: str, *, data_units: bool = True) -> np.ndarray:
    """The RDM of ``A``; ``data_units=False`` leaves Euclidean distances in units of the
    power of two ``A`` was divided by (what RSA correlates: scale-free, never inf).

    Every magnitude: the distances of ``A / 2^k`` (exact; products neither overflow nor
    underflow), times ``2^k`` at the end; correlation distances do not depend on it.
    """
    A, scale = unit_scaled(np.asarray(A, dtype=np.float64))
    if metric == "correlation":
        Z = A - A.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
        bad = np.flatnonzero(norms <= 1e-12 * max(float(norms.max()), 1e-300))
        if bad.size:
            raise ValueError(
                f"metric='correlation' compares the activity patterns of datapoints across "
                f"features, but {bad.size} datapoints (first: {bad[:5].tolist()}) have the "
                "same value in every feature. Use metric='euclidean', or drop them."
            )
        Z /= norms[:, None]
        D = Z @ Z.T
        np.subtract(1.0, D, out=D)
        np.clip(D, 0.0, 2.0, out=D)
    else:
        Ac = A - A.mean(axis=0)
        sq = np.einsum("ij,ij->i", Ac, Ac)
        D = Ac @ Ac.T
        D *= -2.0
        D += sq[:, None]
        D += sq[None, :]
        np.maximum(D, 0.0, out=D)
        np.sqrt(D, out=D)
        if data_units and scale != 1.0:
            with np.errstate(over="ignore", under="ignore"):  # beyond float64: inf / 0
                D *= scale
    np.fill_diagonal(D, 0.0)
    return D


def rdm(X: Any, *, metric: Metric = "euclidean") -> np.ndarray:
    """Representational dissimilarity matrix of the datapoints of one representation.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_features)
    metric : {"euclidean", "correlation"}, default "euclidean"
        ``"euclidean"``: distance between datapoints' activity vectors.
        ``"correlation"``: ``1 - r`` with ``r`` the Pearson correlation of two
        datapoints' activity patterns across features (the usual RSA choice in
        neuroscience; needs at least 2 features).

    Returns
    -------
    ndarray, shape (n_samples, n_samples)
        Symmetric, zero diagonal.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> svcca.rdm(np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[0., 5.],
           [5., 0.]])
    """
    metric = check_option(metric, "metric", ("euclidean", "correlation"))  # type: ignore[assignment]
    return _rdm_checked(as_representation(X, "X"), metric, "X")


def _rdm_checked(A: np.ndarray, metric: str, name: str, *, data_units: bool = True) -> np.ndarray:
    check_finite(A, name)
    if metric == "correlation" and A.shape[1] < 2:
        raise ValueError(
            "metric='correlation' correlates datapoints across features and needs at least 2 "
            f"features; {name} has {A.shape[1]}. Use metric='euclidean'."
        )
    return rdm_unchecked(A, metric, data_units=data_units)


def _upper(D: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(D.shape[0], k=1)
    return D[i, j]


def _pearson(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    aa, bb = float(a @ a), float(b @ b)
    for ss, name in ((aa, names[0]), (bb, names[1])):
        if not ss > 0:
            raise_degenerate(
                name,
                None,
                "every pair of its datapoints is equally dissimilar (a constant RDM)",
                "compute its RDM with another dissimilarity if its datapoints differ",
            )
    return float(a @ b / np.sqrt(aa * bb))


def compare_rdms(Dx: np.ndarray, Dy: np.ndarray, *, compare: Compare = "spearman") -> float:
    """Correlation between the upper triangles (diagonal excluded) of two RDMs.

    Raises :class:`~svcca.DegenerateError` when either RDM is constant (all
    dissimilarities equal: nothing to rank or correlate).

    Parameters
    ----------
    Dx, Dy : array_like, shape (n, n)
        Representational dissimilarity matrices of the same ``n >= 3`` datapoints
        (:func:`svcca.rdm`).
    compare : {"spearman", "pearson"}, default "spearman"
        Rank correlation (Kriegeskorte et al. 2008) or linear correlation of the
        ``n (n - 1) / 2`` dissimilarities.

    Returns
    -------
    float
        In [-1, 1]; :func:`svcca.rsa` is ``compare_rdms(rdm(X), rdm(Y))``.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30, 5))
    >>> Y = X @ rng.standard_normal((5, 4))
    >>> r = svcca.compare_rdms(svcca.rdm(X), svcca.rdm(Y))
    >>> bool(np.isclose(r, svcca.rsa(X, Y).score))
    True
    """
    compare = check_option(compare, "compare", ("spearman", "pearson"))  # type: ignore[assignment]
    Dx, Dy = np.asarray(Dx, dtype=np.float64), np.asarray(Dy, dtype=np.float64)
    if Dx.ndim != 2 or Dx.shape[0] != Dx.shape[1] or Dx.shape != Dy.shape:
        raise ValueError(
            f"compare_rdms needs two square RDMs of the same size; got shapes {Dx.shape} and "
            f"{Dy.shape}."
        )
    if Dx.shape[0] < 3:
        raise ValueError(
            f"Comparing RDMs needs at least 3 datapoints (2 distinct pairs); got {Dx.shape[0]}."
        )
    a, b = _upper(Dx), _upper(Dy)
    if compare == "spearman":
        from scipy.stats import rankdata  # scipy.stats is slow to import: only when used

        a, b = rankdata(a), rankdata(b)
    return _pearson(a, b, ("Dx", "Dy"))


def rsa(
    X: Any,
    Y: Any,
    *,
    metric: Metric = "euclidean",
    compare: Compare = "spearman",
) -> RSAResult:
    """Representational similarity analysis: compare the geometry of two representations.

    Parameters
    ----------
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)
    metric : {"euclidean", "correlation"}, default "euclidean"
        Dissimilarity between datapoints within each representation (see :func:`rdm`).
    compare : {"spearman", "pearson"}, default "spearman"
        Correlation between the two RDMs' off-diagonal entries.

    Returns
    -------
    RSAResult

    Notes
    -----
    RSA asks whether the two representations put the same datapoints close together,
    not whether they span the same subspace. Cost and memory are ``O(n^2)``.

    .. warning:: Conventions differ: neuroscience RSA (Kriegeskorte et al. 2008) usually
       uses ``metric="correlation"`` and ``compare="spearman"``; machine-learning papers
       often use Euclidean RDMs. Spearman is invariant to any monotone change of the
       dissimilarities (e.g. squared vs plain distances); Pearson is not. Pass
       ``compare="pearson"`` with ``metric="euclidean"`` for the linear comparison.

    References
    ----------
    .. [1] N. Kriegeskorte, M. Mur, P. Bandettini, "Representational similarity analysis
       - connecting the branches of systems neuroscience", Front. Syst. Neurosci. 2008.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 4))
    >>> round(svcca.rsa(X, 2 * X + 1).score, 6)
    1.0
    """
    metric = check_option(metric, "metric", ("euclidean", "correlation"))  # type: ignore[assignment]
    compare = check_option(compare, "compare", ("spearman", "pearson"))  # type: ignore[assignment]
    A, B = check_pair(X, Y)
    if A.shape[0] < 3:
        raise ValueError(f"RSA needs at least 3 datapoints (2 distinct pairs); got {A.shape[0]}.")
    return combine_rsa(_side(A, metric, compare, "X"), _side(B, metric, compare, "Y"))


# ---------------------------------------------------------------------- prepared sides
@dataclasses.dataclass(frozen=True, eq=False)
class RSASide:
    """What one representation contributes to RSA: its condensed RDM.

    Attributes
    ----------
    values : ndarray, shape (n (n - 1) / 2,)
        The upper triangle of its RDM (row by row, diagonal excluded), ranked for
        ``compare="spearman"``, centred (read-only).
    norm : float
        ``||values||``.
    metric, compare : str
    n, p : int
    """

    values: np.ndarray
    norm: float
    metric: str
    compare: str
    n: int
    p: int

    @functools.cached_property
    def square(self) -> np.ndarray:
        """The values as a symmetric ``(n, n)`` matrix (zero diagonal), made once, for
        permutations: one gather per permutation instead of index arithmetic on
        ``n (n - 1) / 2`` pairs (3x faster at n = 600)."""
        i, j = _pairs(self.n)
        S = np.zeros((self.n, self.n))
        S[i, j] = self.values
        S[j, i] = self.values
        return S


def prepare_rsa(X: Any, *, metric: Metric = "euclidean", compare: Compare = "spearman") -> RSASide:
    """One side of :func:`rsa`: the centred (ranked) upper triangle of its RDM, refused
    as :func:`rsa` refuses it. ``combine_rsa(prepare_rsa(X), prepare_rsa(Y))`` equals
    ``rsa(X, Y)`` with the same options, to round-off."""
    metric = check_option(metric, "metric", ("euclidean", "correlation"))  # type: ignore[assignment]
    compare = check_option(compare, "compare", ("spearman", "pearson"))  # type: ignore[assignment]
    A = as_representation(X, "X")
    if A.shape[0] < 3:
        raise ValueError(f"RSA needs at least 3 datapoints (2 distinct pairs); got {A.shape[0]}.")
    return _side(A, metric, compare, "X")


def _side(A: np.ndarray, metric: str, compare: str, name: str) -> RSASide:
    a = _upper(_rdm_checked(A, metric, name, data_units=False))
    if np.ptp(a) == 0:
        raise_degenerate(
            name,
            A.shape[1],
            "all its datapoints are equally far apart (a constant RDM)",
            "choose another metric= if its datapoints differ but are equidistant",
        )
    if compare == "spearman":
        from scipy.stats import rankdata

        a = rankdata(a)
    a = a - a.mean()
    a.setflags(write=False)
    return RSASide(a, float(np.sqrt(a @ a)), metric, compare, A.shape[0], A.shape[1])


def combine_rsa(sx: RSASide, sy: RSASide, **_: Any) -> RSAResult:
    """RSA of two prepared sides: the correlation of their condensed RDMs."""
    if sx.n != sy.n:
        raise ValueError(
            f"The two prepared sides must describe the same datapoints: X has {sx.n} "
            f"samples and Y has {sy.n}."
        )
    if (sx.metric, sx.compare) != (sy.metric, sy.compare):
        raise ValueError(
            f"The two sides were prepared with different options: metric={sx.metric!r}, "
            f"compare={sx.compare!r} and metric={sy.metric!r}, compare={sy.compare!r}."
        )
    score = float(sx.values @ sy.values / (sx.norm * sy.norm))
    return RSAResult(score, sx.metric, sx.compare, sx.n, (sx.p, sy.p))


def permute_rsa(side: RSASide, perm: np.ndarray) -> RSASide:
    """The side with its datapoints reordered by ``perm``: the pair ``(i, j)`` of the
    permuted RDM is the pair ``(perm[i], perm[j])`` of the original, so its condensed
    entries are gathered from :attr:`RSASide.square`, not recomputed (the same multiset:
    mean and norm unchanged)."""
    i, j = _pairs(side.n)
    return dataclasses.replace(side, values=side.square[perm[i], perm[j]])


@functools.lru_cache(maxsize=2)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The row-major upper triangle's ``(i, j)``, shared by the permutations of a test."""
    i, j = np.triu_indices(n, k=1)
    i.setflags(write=False)
    j.setflags(write=False)
    return i, j


def rsa_side_bytes(n: int, p: int, **_: Any) -> int:
    """Bytes a prepared side keeps: ``n (n - 1) / 2`` float64 dissimilarities."""
    return 8 * (n * (n - 1) // 2)
