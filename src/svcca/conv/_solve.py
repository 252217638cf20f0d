"""Batched complex CCA: one small Hermitian problem per frequency, solved all at once.

Every function takes stacks ``(R, ., .)`` of per-frequency moment blocks and returns
stacks, through NumPy's stacked linear algebra (Cholesky, eigh, SVD, matmul) and
SciPy's stacked triangular solve (which issues one LAPACK ``trtrs`` per matrix); no
per-frequency CCA is run in a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

import svcca._dense as _dense
from svcca._measures import EPS, NUMERICAL_RTOL, clip_roundoff, n_directions, rank_rtol
from svcca._validation import check_keep_fits

__all__ = ["Factor", "cca_factor", "correlations", "svd_factor", "whitened_cross"]


@dataclass(frozen=True)
class Factor:
    """Per-frequency whitening of one side: a left factor ``P_f`` for every frequency.

    ``P_f D_f^-1 S_f D_f^-1 P_f^H`` is the identity on the ``rank[f]`` kept dimensions
    and zero elsewhere (``D_f = diag(std[f])``). Where ``chol[f]`` the factor is
    ``P_f = L_f^{-1}`` for the Cholesky factor ``L_f`` of the correlation matrix, applied
    by triangular solves and never formed; elsewhere ``P[f]`` holds it explicitly.
    ``kept[f]`` marks the features that take part.
    """

    L: np.ndarray  # (R, c, c) Cholesky factors (meaningful where chol)
    chol: np.ndarray  # (R,) bool
    P: np.ndarray  # (R, c, c) explicit factors (meaningful where not chol)
    std: np.ndarray  # (R, c)
    kept: np.ndarray  # (R, c) bool, features kept after pruning
    rank: np.ndarray  # (R,) int
    variance_kept: float = 1.0
    cond: float = 1.0  # the largest (estimated) condition number of a whitened block
    eps: float = EPS  # unit round-off of the products behind the blocks

    def left(self, B: np.ndarray, *, adjoint: bool = False) -> np.ndarray:
        """``P_f B_f`` (or ``P_f^H B_f`` with ``adjoint``) for every frequency."""
        out = np.empty(B.shape, dtype=np.result_type(B, self.P))
        c, e = self.chol, ~self.chol
        if c.any():
            out[c] = _tri_solve(self.L[c], B[c], adjoint)
        if e.any():
            P = np.conj(self.P[e].transpose(0, 2, 1)) if adjoint else self.P[e]
            out[e] = np.matmul(P, B[e])
        return out


def _tri_solve(L: np.ndarray, B: np.ndarray, adjoint: bool) -> np.ndarray:
    """``L^{-1} B`` or ``L^{-H} B`` for stacks of lower-triangular ``L``.

    One LAPACK ``trtrs`` per matrix (about a third of the work of an inverse), called
    directly: half the time of ``scipy.linalg.solve_triangular``'s batched wrapper for
    the 130 64 x 64 blocks of a 16 x 16 map.
    """
    dtype = np.result_type(L, B)
    (trtrs,) = sla.get_lapack_funcs(("trtrs",), dtype=dtype)
    out = np.empty(B.shape, dtype=dtype)
    trans = 2 if adjoint else 0
    for i in range(L.shape[0]):
        out[i], info = trtrs(L[i], B[i], lower=1, trans=trans)
        if info != 0:  # pragma: no cover - the factors come from a successful Cholesky
            raise np.linalg.LinAlgError(f"trtrs failed on frequency block {i} (info {info}).")
    return out


def _relative_keep(var: np.ndarray, epsilon: float) -> np.ndarray:
    """Features whose variance is at least ``max(epsilon, 1e-12)`` of the largest (per row)."""
    top = var.max(axis=1, keepdims=True)
    rel = np.divide(var, top, out=np.zeros_like(var), where=top > 0)
    return (rel >= max(epsilon, NUMERICAL_RTOL)) & (var > 0)


def cca_factor(S: np.ndarray, epsilon: float, eps: float = EPS) -> Factor:
    """Whiten each frequency's correlation matrix, by Cholesky where it is well conditioned.

    Features below ``epsilon`` (relative to the frequency's largest variance, at least
    1e-12) are pruned. A frequency whose correlation matrix is numerically singular
    (a feature within 1e-12 of the span of the others) falls back to an eigendecomposition
    truncated to the numerically non-zero eigenvalues, as :class:`svcca.cca` does.
    ``eps`` is the unit round-off of the products behind ``S``: it sets that threshold
    (:func:`svcca._measures._linalg.rank_rtol`, 1e-12 for float64 sums).
    """
    rtol = rank_rtol(eps)
    R, c, _ = S.shape
    var = np.real(np.diagonal(S, axis1=1, axis2=2)).copy()
    kept = _relative_keep(var, epsilon)
    std = np.sqrt(np.where(kept, var, 1.0))
    C = S / (std[:, :, None] * std[:, None, :])
    if not kept.all():
        C *= kept[:, :, None] & kept[:, None, :]
    idx = np.arange(c)
    C[:, idx, idx] = 1.0  # pruned features become decoupled unit directions
    P = np.zeros((R, c, c), dtype=C.dtype)
    rank = kept.sum(axis=1)
    good = np.zeros(R, dtype=bool)
    try:
        L = np.linalg.cholesky(C)
        d2 = np.real(np.diagonal(L, axis1=1, axis2=2)) ** 2
        good = d2.min(axis=1) > rtol
    except np.linalg.LinAlgError:
        L = np.zeros_like(C)
        d2 = np.ones((R, c))
    bad = ~good
    if bad.any():
        w, V = _dense.eigh(C[bad])
        tol = np.maximum(rtol, w[:, -1:] * c * max(eps, EPS))
        ok = w > tol
        scale = np.where(ok, 1.0 / np.sqrt(np.where(ok, w, 1.0)), 0.0)
        Pb = scale[:, :, None] * np.conj(V.transpose(0, 2, 1))
        # Pruned features are unit eigen-directions of C: make their rows of P vanish.
        P[bad] = Pb * kept[bad][:, None, :]
        rank[bad] = ok.sum(axis=1) - (~kept[bad]).sum(axis=1)
    # lambda_max <= c for a correlation matrix and lambda_min <= min_i L_ii^2: c / d2 is
    # an estimate of the condition number (exact for the eigendecomposed frequencies).
    cond = float(c / d2[good].min()) if good.any() else 1.0
    if bad.any():
        cond = max(cond, float(np.max(w[:, -1] / np.where(ok, w, np.inf).min(axis=1))))
    return Factor(L, good, P, std, kept, rank, cond=cond, eps=eps)


def svd_factor(
    S: np.ndarray,
    multiplicity: np.ndarray,
    keep: float | int,
    variance: str,
    eps: float = EPS,
    name: str = "",
) -> Factor:
    """SVCCA's reduction: keep the leading principal directions of the whole layer.

    The eigenvalues of all frequencies are pooled (each counted as often as the grid
    locations it stands for), which is exactly the spectrum of the flattened
    ``(n, h*w*c)`` activations of a translation-invariant dataset; ``keep`` (a fraction
    of the pooled variance, or a count) then selects a global cut. The two members of a
    conjugate pair are always kept together, so a count may be exceeded by one.
    """
    R, c, _ = S.shape
    if name:  # the flattened layer on the compared grid has sum(multiplicity) * c features
        check_keep_fits(keep, int(multiplicity.sum()) * c, name)
    w, V = _dense.eigh(S)
    top = float(np.abs(w).max()) if w.size else 0.0
    # eigh is backward stable: negative eigenvalues within c eps ||S_f|| are round-off.
    w = clip_roundoff(
        w, 0.0, np.inf, 64 * c * max(eps, EPS) * top, "An eigenvalue of a frequency block"
    )
    nonzero = w > top * rank_rtol(eps) if top > 0 else np.zeros_like(w, dtype=bool)
    mult = np.broadcast_to(multiplicity[:, None], w.shape)
    vals, mults = w[nonzero], mult[nonzero]
    order = np.argsort(-vals, kind="stable")
    selected = np.zeros(vals.size, dtype=bool)
    if vals.size:
        # SVCCA's keep rule on the pooled spectrum, each eigenvalue counted as often as
        # the grid locations it stands for (the flattened layer's spectrum).
        pooled = np.repeat(vals[order], mults[order])
        what = f"representation {name} (over every frequency)" if name else None
        k = n_directions(pooled, keep, variance, what=what)  # type: ignore[arg-type]
        count = int(np.searchsorted(np.cumsum(mults[order]), k, side="left")) + 1
        selected[order[: min(count, vals.size)]] = True
    chosen = np.zeros_like(nonzero)
    chosen[nonzero] = selected
    scale = np.where(chosen, 1.0 / np.sqrt(np.where(chosen, w, 1.0)), 0.0)
    P = scale[:, :, None] * np.conj(V.transpose(0, 2, 1))
    total = float(np.sum(w * mult))
    frac = float(np.sum((w * mult)[chosen]) / total) if total > 0 else 0.0
    kept = np.ones((R, c), dtype=bool)
    none = np.zeros(R, dtype=bool)
    # The reduced blocks' errors are normwise: amplified by the kept spectrum's spread.
    cond = float(w[chosen].max() / w[chosen].min()) if chosen.any() else 1.0
    return Factor(P, none, P, np.ones((R, c)), kept, chosen.sum(axis=1), frac, cond, eps)


def whitened_cross(Sxy: np.ndarray, fx: Factor, fy: Factor) -> np.ndarray:
    """``M_f = P_x D_x^-1 S_xy D_y^-1 P_y^H``: its singular values are the correlations."""
    Sn = Sxy / (fx.std[:, :, None] * fy.std[:, None, :])
    if not (fx.kept.all() and fy.kept.all()):
        Sn *= fx.kept[:, :, None] & fy.kept[:, None, :]
    K = fx.left(Sn)  # P_x Sn
    return np.conj(fy.left(np.conj(K.transpose(0, 2, 1))).transpose(0, 2, 1))


def correlations(M: np.ndarray, fx: Factor, fy: Factor) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency correlations ``(R, k)`` (NaN beyond each frequency's count) and counts."""
    s = _dense.svdvals(M)
    # As in svcca.cca: round-off moves a correlation by ~ c eps amplified by the
    # whitening; the pooled bound uses the largest channel count.
    tol = 64 * max(fx.eps, fy.eps) * (M.shape[-1] + M.shape[-2]) * max(fx.cond, fy.cond)
    s = clip_roundoff(s, 0.0, 1.0, tol, "A per-frequency canonical correlation")
    count = np.minimum(fx.rank, fy.rank)
    s[np.arange(s.shape[1])[None, :] >= count[:, None]] = np.nan
    return s, count
