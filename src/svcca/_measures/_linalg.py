"""Small dense linear algebra shared by the measures: pruning, whitening, sign flips.

Everything here works on ``p x p`` moment blocks, never on the data.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

import svcca._dense as _dense
from svcca._result import result

__all__ = [
    "Pruned",
    "Whitener",
    "clip_roundoff",
    "flip_signs",
    "numerical_rank",
    "prune",
    "rank_rtol",
    "sym_eig_desc",
]

# Variance (relative to the largest in a layer) below which a feature is numerically
# constant in float64, and the residual-variance fraction below which a feature is a
# linear combination of the others. Both are far above float64 round-off in the
# cross-products (about n * 1e-16) and far below any real signal.
NUMERICAL_RTOL = 1e-12
EPS = float(np.finfo(np.float64).eps)


def rank_rtol(eps: float = EPS) -> float:
    """Eigenvalue (relative to the largest) below which a direction is numerically zero.

    ``1e-12`` for float64 statistics. Sums of float32 products (``eps`` = 2^-23) carry
    errors near ``1e-5`` of the largest eigenvalue, so there a direction needs
    ``1e3 eps ~ 1.2e-4`` of it to be told from round-off.
    """
    return NUMERICAL_RTOL if eps <= EPS else max(NUMERICAL_RTOL, 1e3 * eps)


def clip_roundoff(values: np.ndarray, low: float, high: float, tol: float, what: str) -> np.ndarray:
    """Clip ``values`` into ``[low, high]`` when they leave it by round-off only.

    A quantity the math bounds (a correlation in [0, 1], an eigenvalue of a PSD matrix
    >= 0) can come out a few ulps outside its range; that is clipped. Beyond ``tol`` it
    is not round-off but a bug or an input outside float64's range, and clipping would
    hide it: raise instead (the tolerance is the error bound of the computation that
    produced ``values``, derived where it is called).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size:
        lo, hi = float(values.min()), float(values.max())
        if lo < low - tol or hi > high + tol:
            bad = lo if lo < low - tol else hi
            raise FloatingPointError(
                f"{what} came out as {bad!r}, outside [{low}, {high}] by more than the "
                f"round-off bound {tol:.3g} of its computation. This is a bug, or the "
                "data overflow float64: please report it with the shapes and scales of "
                "your inputs."
            )
    return np.clip(values, low, high)


def numerical_rank(eigvals: np.ndarray, eps: float = EPS) -> int:
    """How many leading eigenvalues (descending) of a PSD matrix are numerically non-zero.

    An eigenvalue below :func:`rank_rtol` (``1e-12`` in float64) of the largest is
    numerically zero (a direction the data do not span); an all-zero spectrum has rank 0.
    """
    if eigvals.size == 0 or not eigvals[0] > 0:
        return 0
    return int(np.sum(eigvals > eigvals[0] * rank_rtol(eps)))


@result
class Pruned:
    """Features removed before a comparison, and why.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        Column indices (into the representation) that were removed.
    reasons : tuple of str, length k
        ``"constant"`` (zero variance: a dead or constant neuron), ``"numerically
        constant"`` (variance below 1e-12 of the layer's largest) or ``"below epsilon"``
        (relative variance below the ``epsilon`` the caller chose).
    relative_variance : ndarray, shape (k,)
        Each removed feature's variance divided by the layer's largest variance.
    """

    indices: np.ndarray
    reasons: tuple[str, ...]
    relative_variance: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.size)


def prune(variances: np.ndarray, epsilon: float) -> tuple[np.ndarray, Pruned]:
    """Split features into kept and pruned by variance relative to the largest.

    Feature ``j`` is pruned when ``var_j < max(epsilon, 1e-12) * max_k var_k`` (the
    original's rule, ``diag(cov) / max|cov| < epsilon``, plus a float64 floor). A layer
    whose largest variance is zero loses every feature.

    Returns
    -------
    kept : ndarray of int
    pruned : Pruned
    """
    top = float(variances.max()) if variances.size else 0.0
    rel = variances / top if top > 0 else np.zeros_like(variances)
    cut = max(epsilon, NUMERICAL_RTOL)
    drop = (rel < cut) | (variances <= 0)
    idx = np.flatnonzero(drop)
    reasons = tuple(
        "constant"
        if variances[i] <= 0
        else "numerically constant"
        if rel[i] < NUMERICAL_RTOL
        else "below epsilon"
        for i in idx
    )
    return np.flatnonzero(~drop), Pruned(idx, reasons, rel[idx])


def flip_signs(u: np.ndarray, v: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Make each column of ``u`` have its largest-magnitude entry positive.

    The same flips are applied to the columns of ``v`` (the paired singular vectors),
    so ``u diag(s) v^T`` is unchanged. Deterministic across LAPACK builds, as
    scikit-learn's ``svd_flip`` is.
    """
    if u.size == 0:
        return u, v
    rows = np.argmax(np.abs(u), axis=0)
    signs = np.sign(u[rows, np.arange(u.shape[1])])
    signs[signs == 0] = 1.0
    return u * signs, (None if v is None else v * signs[: v.shape[1]])


def sym_eig_desc(S: np.ndarray, eps: float = EPS) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors (deterministic signs) of PSD S.

    ``eps`` is the unit round-off of the products ``S`` was summed from.
    """
    w, V = _dense.eigh(S)
    w, V = w[::-1], V[:, ::-1]
    # A backward-stable eigensolver gets every eigenvalue to ~ p eps ||S||: negative
    # ones within that are round-off of zero (scikit-learn's _check_psd_eigenvalues).
    top = float(abs(w[0])) if w.size else 0.0
    w = clip_roundoff(
        w, 0.0, np.inf, 64 * max(S.shape[0], 1) * max(eps, EPS) * top, "An eigenvalue"
    )
    V, _ = flip_signs(V)
    return w, V


class Whitener:
    """A factor ``W`` (``p x r``) with ``W^T S W = I_r`` for a PSD block ``S``.

    ``S`` is first scaled to a correlation matrix ``R = D^{-1} S D^{-1}`` (``D`` the
    standard deviations). When ``R`` is numerically full rank its Cholesky factor
    ``R = L L^T`` gives ``W = D^{-1} L^{-T}`` (fast: triangular solves only). When a
    feature is, to 1e-12 of its variance, a linear combination of the others (duplicated
    or collinear neurons), an eigendecomposition ``R = V diag(w) V^T`` truncated to the
    numerically non-zero ``w`` gives ``W = D^{-1} V_r diag(w_r)^{-1/2}`` instead: the
    pseudo-inverse square root the original used, without its squared condition number.
    Any such ``W`` gives the same canonical correlations.
    """

    def __init__(self, std: np.ndarray, rank: int, cond: float) -> None:
        self.std = std
        self.rank = rank
        self.cond = cond  # condition number (estimate) of the whitened correlation block

    @staticmethod
    def fit(S: np.ndarray, eps: float = EPS) -> Whitener:
        """Whiten the PSD block ``S`` (``p x p``, positive diagonal).

        ``eps`` is the unit round-off of the products ``S`` was summed from: it sets the
        eigenvalue below which a direction is collinear (:func:`rank_rtol`).
        """
        std = np.sqrt(np.diag(S))
        if not np.any(S - np.diag(np.diag(S))):
            # Uncorrelated features (SVCCA's reduced blocks are diag(eigenvalues)): W = D^-1,
            # no factorisation, no triangular solves per cross block.
            return _DiagonalWhitener(std)
        R = S / std[:, None] / std[None, :]
        L, info = _dense.cholesky(R)
        rtol = rank_rtol(eps)
        if info == 0 and np.min(np.diag(L)) ** 2 > rtol:
            # LAPACK's 1-norm estimate of 1 / cond(R), O(p^2) on the factor.
            rcond, _ = lapack.dpocon(L, float(np.abs(R).sum(axis=0).max()), uplo="L")
            return _CholeskyWhitener(std, L, 1.0 / max(float(rcond), EPS))
        w, V = sym_eig_desc(R, eps)
        tol = max(rtol, w[0] * R.shape[0] * max(eps, EPS))
        r = int(np.sum(w > tol))
        return _EigenWhitener(std, V[:, :r], np.sqrt(w[:r]), float(w[0] / w[r - 1]))

    def apply_t(self, A: np.ndarray) -> np.ndarray:
        """``W^T A`` for ``A`` of shape ``(p, m)``; returns ``(r, m)``."""
        raise NotImplementedError

    def weights(self, U: np.ndarray) -> np.ndarray:
        """``W U`` for whitened coordinates ``U`` of shape ``(r, m)``; returns ``(p, m)``."""
        raise NotImplementedError

    def colour(self, U: np.ndarray) -> np.ndarray:
        """``S W U``: inner products of every centred feature with the unit variates ``W U``.

        Shape ``(p, m)``; used by PWCCA.
        """
        raise NotImplementedError


class _CholeskyWhitener(Whitener):
    """``W = D^{-1} L^{-T}`` with ``R = L L^T``."""

    def __init__(self, std: np.ndarray, chol: np.ndarray, cond: float) -> None:
        super().__init__(std, std.size, cond)
        chol.flags.writeable = False  # uploaded to a device once, however often it is used
        self.chol = chol

    def apply_t(self, A: np.ndarray) -> np.ndarray:
        return _dense.solve_lower(self.chol, A / self.std[:, None])

    def weights(self, U: np.ndarray) -> np.ndarray:
        return _dense.solve_lower(self.chol, U, trans=True) / self.std[:, None]

    def colour(self, U: np.ndarray) -> np.ndarray:
        return _dense.matmul(self.chol, U) * self.std[:, None]


class _DiagonalWhitener(Whitener):
    """``W = D^{-1}``: the block is already diagonal (its correlation matrix is ``I``)."""

    def __init__(self, std: np.ndarray) -> None:
        super().__init__(std, std.size, 1.0)

    def apply_t(self, A: np.ndarray) -> np.ndarray:
        return A / self.std[:, None]

    def weights(self, U: np.ndarray) -> np.ndarray:
        return U / self.std[:, None]

    def colour(self, U: np.ndarray) -> np.ndarray:
        return U * self.std[:, None]


class _EigenWhitener(Whitener):
    """``W = D^{-1} V_r diag(root)^{-1}`` with ``R = V diag(root^2) V^T`` truncated."""

    def __init__(self, std: np.ndarray, basis: np.ndarray, root: np.ndarray, cond: float) -> None:
        super().__init__(std, root.size, cond)
        self.basis = np.ascontiguousarray(basis)
        self.basis.flags.writeable = False
        self.basis_t = np.ascontiguousarray(basis.T)
        self.basis_t.flags.writeable = False
        self.root = root

    def apply_t(self, A: np.ndarray) -> np.ndarray:
        return _dense.matmul(self.basis_t, A / self.std[:, None]) / self.root[:, None]

    def weights(self, U: np.ndarray) -> np.ndarray:
        return _dense.matmul(self.basis, U / self.root[:, None]) / self.std[:, None]

    def colour(self, U: np.ndarray) -> np.ndarray:
        return _dense.matmul(self.basis, U * self.root[:, None]) * self.std[:, None]
