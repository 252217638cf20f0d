"""Batched complex CCA: one small Hermitian problem per frequency, solved all at once.

Every function takes stacks ``(R, ., .)`` of per-frequency moment blocks and returns
stacks; nothing loops over frequencies in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from svcca._linalg import NUMERICAL_RTOL

__all__ = ["Factor", "cca_factor", "correlations", "svd_factor", "whitened_cross"]


@dataclass(frozen=True)
class Factor:
    """Per-frequency whitening of one side.

    ``P[f] @ diag(1/std[f]) @ S[f] @ diag(1/std[f]) @ P[f]^H`` is the identity on the
    ``rank[f]`` kept dimensions and zero elsewhere; the rows of ``P`` for pruned or
    dropped dimensions are zero. ``kept[f]`` marks the features that take part.
    """

    P: np.ndarray  # (R, c, c)
    std: np.ndarray  # (R, c)
    kept: np.ndarray  # (R, c) bool, features kept after pruning
    rank: np.ndarray  # (R,) int
    variance_kept: float = 1.0


def _relative_keep(var: np.ndarray, epsilon: float) -> np.ndarray:
    """Features whose variance is at least ``max(epsilon, 1e-12)`` of the largest (per row)."""
    top = var.max(axis=1, keepdims=True)
    rel = np.divide(var, top, out=np.zeros_like(var), where=top > 0)
    return (rel >= max(epsilon, NUMERICAL_RTOL)) & (var > 0)


def cca_factor(S: np.ndarray, epsilon: float) -> Factor:
    """Whiten each frequency's correlation matrix, by Cholesky where it is well conditioned.

    Features below ``epsilon`` (relative to the frequency's largest variance, at least
    1e-12) are pruned. A frequency whose correlation matrix is numerically singular
    (a feature within 1e-12 of the span of the others) falls back to an eigendecomposition
    truncated to the numerically non-zero eigenvalues, as :class:`svcca.cca` does.
    """
    R, c, _ = S.shape
    var = np.real(np.diagonal(S, axis1=1, axis2=2)).copy()
    kept = _relative_keep(var, epsilon)
    std = np.sqrt(np.where(kept, var, 1.0))
    C = S / std[:, :, None] / std[:, None, :]
    C[~(kept[:, :, None] & kept[:, None, :])] = 0.0
    idx = np.arange(c)
    C[:, idx, idx] = 1.0  # pruned features become decoupled unit directions
    P = np.zeros_like(C)
    rank = kept.sum(axis=1)
    good = np.zeros(R, dtype=bool)
    try:
        L = np.linalg.cholesky(C)
        d2 = np.real(np.diagonal(L, axis1=1, axis2=2)) ** 2
        good = d2.min(axis=1) > NUMERICAL_RTOL
    except np.linalg.LinAlgError:
        L = None
    if good.any():
        assert L is not None
        P[good] = np.linalg.inv(L[good])
    bad = ~good
    if bad.any():
        w, V = np.linalg.eigh(C[bad])
        tol = np.maximum(NUMERICAL_RTOL, w[:, -1:] * c * np.finfo(np.float64).eps)
        ok = w > tol
        scale = np.where(ok, 1.0 / np.sqrt(np.where(ok, w, 1.0)), 0.0)
        P[bad] = scale[:, :, None] * np.conj(V.transpose(0, 2, 1))
        rank[bad] = ok.sum(axis=1) - (~kept[bad]).sum(axis=1)
    # Pruned features are unit directions of C: make their rows of P vanish.
    P *= kept[:, None, :]
    return Factor(P, std, kept, rank)


def svd_factor(
    S: np.ndarray,
    multiplicity: np.ndarray,
    keep: float | int,
    variance: str,
) -> Factor:
    """SVCCA's reduction: keep the leading principal directions of the whole layer.

    The eigenvalues of all frequencies are pooled (each counted as often as the grid
    locations it stands for), which is exactly the spectrum of the flattened
    ``(n, h*w*c)`` activations of a translation-invariant dataset; ``keep`` (a fraction
    of the pooled variance, or a count) then selects a global cut. The two members of a
    conjugate pair are always kept together, so a count may be exceeded by one.
    """
    R, c, _ = S.shape
    w, V = np.linalg.eigh(S)
    w = np.maximum(w, 0.0)
    top = float(w.max()) if w.size else 0.0
    nonzero = w > top * NUMERICAL_RTOL if top > 0 else np.zeros_like(w, dtype=bool)
    mult = np.broadcast_to(multiplicity[:, None], w.shape)
    vals, mults = w[nonzero], mult[nonzero]
    order = np.argsort(-vals, kind="stable")
    selected = np.zeros(vals.size, dtype=bool)
    if vals.size:
        weights = vals if variance == "explained" else np.sqrt(vals)
        if isinstance(keep, int):
            cum = np.cumsum(mults[order])
            count = int(np.searchsorted(cum, keep, side="left")) + 1
        else:
            share = np.cumsum((weights * mults)[order]) / float(np.sum(weights * mults))
            count = int(np.searchsorted(share, keep - 1e-12, side="left")) + 1
        selected[order[: min(count, vals.size)]] = True
    chosen = np.zeros_like(nonzero)
    chosen[nonzero] = selected
    scale = np.where(chosen, 1.0 / np.sqrt(np.where(chosen, w, 1.0)), 0.0)
    P = scale[:, :, None] * np.conj(V.transpose(0, 2, 1))
    total = float(np.sum(w * mult))
    frac = float(np.sum((w * mult)[chosen]) / total) if total > 0 else 0.0
    kept = np.ones((R, c), dtype=bool)
    return Factor(P, np.ones((R, c)), kept, chosen.sum(axis=1), frac)


def whitened_cross(Sxy: np.ndarray, fx: Factor, fy: Factor) -> np.ndarray:
    """``M_f = P_x D_x^-1 S_xy D_y^-1 P_y^H``: its singular values are the correlations."""
    Sn = Sxy / fx.std[:, :, None] / fy.std[:, None, :]
    Sn = Sn * (fx.kept[:, :, None] & fy.kept[:, None, :])
    return np.matmul(np.matmul(fx.P, Sn), np.conj(fy.P.transpose(0, 2, 1)))


def correlations(M: np.ndarray, fx: Factor, fy: Factor) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency correlations ``(R, k)`` (NaN beyond each frequency's count) and counts."""
    s = np.linalg.svd(M, compute_uv=False)
    np.clip(s, 0.0, 1.0, out=s)
    count = np.minimum(fx.rank, fy.rank)
    s[np.arange(s.shape[1])[None, :] >= count[:, None]] = np.nan
    return s, count
