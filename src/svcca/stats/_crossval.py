"""Held-out scores: fit on some datapoints, score on others, from one pass.

Each fold is a block of rows (:func:`~svcca.stats.block_of`); the training statistic of
fold ``j`` is the total minus the fold (:func:`~svcca.stats.subtract_moments`), so
k-fold cross-validation of a moments measure costs one pass over the data and ``k``
small fits on ``(p + q)^2`` numbers.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from svcca._moments import BlockMoments, Moments, check_count, check_seed, subtract_moments
from svcca._result import result

__all__ = ["CrossValidated", "cross_validate", "held_out_score"]

HeldOut = Literal["cca", "svcca", "pwcca", "regression", "procrustes"]
HELD_OUT = ("cca", "svcca", "pwcca", "regression", "procrustes")


@result
class CrossValidated:
    """A k-fold cross-validated score.

    Attributes
    ----------
    measure : str
    score : float
        Mean of :attr:`fold_scores`, weighted by the fold sizes.
    fold_scores : ndarray, shape (folds,)
        The score on each held-out fold of the maps fitted on the other folds.
    fold_sizes : ndarray, shape (folds,)
    in_sample : float
        The same fit scored on the rows it was fitted on (all rows): the measure's
        usual in-sample value, for comparison.
    folds : int
    seed : int
    n_samples : int
    """

    measure: str
    score: float
    fold_scores: np.ndarray
    fold_sizes: np.ndarray
    in_sample: float
    folds: int
    seed: int
    n_samples: int


def _covs(m: Moments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Covariances in the data's units; the 1/(n-1) cancels in every score below.
    return m.cov_xx, m.cov_yy, m.cov_xy


def _inv_sqrt(S: np.ndarray, rel: float = 1e-10) -> np.ndarray:
    """``S^{-1/2}`` on the range of ``S`` (eigenvalues below ``rel * max`` dropped):
    shape (p, r)."""
    w, V = np.linalg.eigh(S)
    keep = w > rel * max(w.max(), 0.0)
    return V[:, keep] / np.sqrt(w[keep])


def _cca_directions(sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray) -> tuple[Any, Any, Any]:
    """Canonical directions ``A`` (p, k), ``B`` (q, k) and correlations (k,) of a
    covariance: ``A = Wx U``, ``B = Wy V`` with ``Wx^T Sxy Wy = U diag(rho) V^T``."""
    wx, wy = _inv_sqrt(sxx), _inv_sqrt(syy)
    U, rho, Vt = np.linalg.svd(wx.T @ sxy @ wy, full_matrices=False)
    return wx @ U, wy @ Vt.T, rho


def _variate_correlations(A: np.ndarray, B: np.ndarray, test: Moments) -> np.ndarray:
    """Correlation of each pair of variates ``(X a_i, Y b_i)`` on the test rows."""
    sxx, syy, sxy = _covs(test)
    num = np.einsum("pi,pq,qi->i", A, sxy, B)
    vx = np.einsum("pi,pq,qi->i", A, sxx, A)
    vy = np.einsum("pi,pq,qi->i", B, syy, B)
    den = np.sqrt(vx * vy)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _pca_basis(S: np.ndarray, keep: float | int) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    w, V = w[::-1].clip(min=0.0), V[:, ::-1]
    if isinstance(keep, (int, np.integer)):
        k = int(keep)
    else:
        k = int(np.searchsorted(np.cumsum(w) / w.sum(), keep) + 1)
    return V[:, : min(k, S.shape[0])]


def _fit_score(name: str, train: Moments, test: Moments, keep: float | int) -> float:
    txx, tyy, txy = _covs(train)
    if name in ("cca", "svcca", "pwcca"):
        if name == "svcca":
            Px, Py = _pca_basis(txx, keep), _pca_basis(tyy, keep)
            A, B, _ = _cca_directions(Px.T @ txx @ Px, Py.T @ tyy @ Py, Px.T @ txy @ Py)
            A, B = Px @ A, Py @ B
        else:
            A, B, _ = _cca_directions(txx, tyy, txy)
        rho = _variate_correlations(A, B, test)
        if name != "pwcca":
            return float(rho.mean())
        # Projection weights of the training fit (Morcos et al. 2018), on the side of
        # smaller rank (x on a tie), as svcca.pwcca's default weight_by="smaller".
        side_x = _inv_sqrt(txx).shape[1] <= _inv_sqrt(tyy).shape[1]
        S, D = (txx, A) if side_x else (tyy, B)
        h = S @ D / np.sqrt(np.einsum("pi,pq,qi->i", D, S, D))  # <h_i, x_j>, h_i unit
        alpha = np.abs(h).sum(axis=0)
        return float(alpha @ rho / alpha.sum())
    sxx, syy, sxy = _covs(test)
    if name == "procrustes":
        U, _, Vt = np.linalg.svd(txy, full_matrices=False)
        return float(np.trace((U @ Vt).T @ sxy) / np.sqrt(np.trace(sxx) * np.trace(syy)))
    # regression: OLS with intercept fitted on train, R^2 on the test rows (test mean)
    dx, dy = test.mean_x - train.mean_x, test.mean_y - train.mean_y
    nt1 = (test.n - 1) if test.n > 1 else 1

    def r2(sxx_tr: Any, sxy_tr: Any, Sxx: Any, Syy: Any, Sxy: Any, ux: Any, uy: Any) -> float:
        Bm = np.linalg.lstsq(sxx_tr, sxy_tr, rcond=None)[0]
        sse = np.trace(Syy) - 2 * np.trace(Bm.T @ Sxy) + np.trace(Bm.T @ Sxx @ Bm)
        r = uy - ux @ Bm
        sse += test.n * float(r @ r) / nt1
        return float(1.0 - sse / np.trace(Syy))

    return 0.5 * (r2(txx, txy, sxx, syy, sxy, dx, dy) + r2(tyy, txy.T, syy, sxx, sxy.T, dy, dx))


def held_out_score(
    train: Moments, test: Moments, *, measure: HeldOut = "cca", keep: float | int = 0.99
) -> float:
    """Fit ``measure``'s maps on ``train`` and score them on ``test``.

    Parameters
    ----------
    train, test : Moments
        Statistics of disjoint row sets of the same two representations.
    measure : {"cca", "svcca", "pwcca", "regression", "procrustes"}, default "cca"
    keep : float or int, default 0.99
        SVCCA only: the share of variance (float) or the number of directions (int)
        each side keeps, chosen on ``train``.

    Returns
    -------
    float

    Notes
    -----
    With the test covariances :math:`S^{te}`:

    - CCA: canonical directions :math:`a_i, b_i` fitted on ``train``; the score is the
      mean over ``i`` of the test correlation of the variates,
      :math:`a_i^T S^{te}_{xy} b_i / \\sqrt{a_i^T S^{te}_{xx} a_i\\, b_i^T S^{te}_{yy}
      b_i}`. SVCCA: the same after the training PCA bases. PWCCA: the test correlations
      weighted by the training projection weights.
    - Regression: :math:`B = S_{xx}^{+} S_{xy}` and the intercept fitted on ``train``;
      :math:`R^2 = 1 - \\mathrm{SSE}/\\mathrm{SST}` on the test rows (SST about the test
      mean, as scikit-learn's ``r2_score``), the mean of both directions; it can be
      negative.
    - Procrustes: :math:`Q = U V^T` from :math:`S_{xy} = U \\Sigma V^T` on ``train``;
      :math:`\\mathrm{tr}(Q^T S^{te}_{xy}) / \\sqrt{\\mathrm{tr} S^{te}_{xx}\\,
      \\mathrm{tr} S^{te}_{yy}}`.

    Each equals the measure's in-sample score when ``test`` is ``train``.
    """
    if measure not in HELD_OUT:
        raise ValueError(
            f"Held-out scores exist for {', '.join(HELD_OUT)}; got {measure!r}. (CKA and "
            "the sample measures fit nothing: their held-out score is their score.)"
        )
    if not isinstance(train, Moments) or not isinstance(test, Moments) or not train.has_y:
        raise TypeError("train and test must be Moments of both representations (X and Y).")
    if isinstance(keep, bool) or not (
        (isinstance(keep, (int, np.integer)) and keep >= 1)
        or (isinstance(keep, float) and 0.0 < keep < 1.0)
    ):
        raise ValueError(
            f"keep must be a share of variance in (0, 1) or a number of directions >= 1, "
            f"as for svcca.svcca; got {keep!r}."
        )
    if test.n < 2 or train.n < 2:
        raise ValueError(
            f"A held-out score needs at least 2 training and 2 test rows; got {train.n} "
            f"and {test.n}."
        )
    return _fit_score(measure, train, test, keep)


def cross_validate(
    X: Any,
    Y: Any = None,
    *,
    measure: HeldOut = "cca",
    folds: int = 5,
    seed: int = 0,
    keep: float | int = 0.99,
) -> CrossValidated:
    """k-fold cross-validated CCA, SVCCA, PWCCA, regression or Procrustes score.

    Parameters
    ----------
    X : array_like, shape (n, p), or BlockMoments
        First representation, or block statistics accumulated in one pass (its blocks
        are the folds; leave ``Y`` out).
    Y : array_like, shape (n, q)
    measure : {"cca", "svcca", "pwcca", "regression", "procrustes"}, default "cca"
    folds : int, default 5
    seed : int, default 0
        Seed of the row-to-fold hash (:func:`~svcca.stats.block_of`).
    keep : float or int, default 0.99
        SVCCA's kept variance share or directions (chosen on each training set).

    Returns
    -------
    CrossValidated

    Notes
    -----
    One pass accumulates one :class:`svcca.Moments` per fold; training set ``j`` is the
    total minus fold ``j`` (:func:`~svcca.stats.subtract_moments`), then
    :func:`held_out_score`. In-sample CCA of ``p + q`` features on ``n`` rows is biased
    upward by about ``max(p, q) / n`` in its squared correlations; a held-out score is
    not (it is biased downward by the training noise instead), as in netrep's
    cross-validated metrics and neural-predictivity studies.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((400, 30)); Y = rng.standard_normal((400, 30))
    >>> r = svcca.stats.cross_validate(X, Y, measure="cca", folds=5)
    >>> bool(r.in_sample > 0.2 and abs(r.score) < 0.1)
    True
    """
    if isinstance(X, BlockMoments):
        if Y is not None:
            raise ValueError("Give block statistics alone (they hold both sides); Y must be None.")
        bm = X
    else:
        folds = check_count(folds, "folds", 2)
        seed = check_seed(seed)
        if Y is None:
            raise ValueError("cross_validate needs both representations, X and Y.")
        bm = BlockMoments.from_arrays(X, Y, blocks=folds, seed=seed)
    total = bm.total
    sizes = bm.sizes
    if (sizes < 2).any():
        raise ValueError(
            f"Fold sizes {sizes.tolist()}: every fold needs at least 2 rows. Use more rows "
            "or fewer folds."
        )

    def score(tr: Moments, te: Moments) -> float:
        return held_out_score(tr, te, measure=measure, keep=keep)

    fold_scores = np.array(
        [score(subtract_moments(total, bm.block(j)), bm.block(j)) for j in range(bm.blocks)]
    )
    return CrossValidated(
        measure,
        float(fold_scores @ sizes / sizes.sum()),
        fold_scores,
        sizes,
        score(total, total),
        bm.blocks,
        bm.seed,
        total.n,
    )
