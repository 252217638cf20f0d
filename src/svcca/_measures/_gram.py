"""Gram matrices and their centring, for the kernel measures (CKA, RSA, the sanity check).

One implementation serves NumPy arrays and torch tensors: every helper here takes
either (:func:`namespace` picks ``numpy`` or ``torch`` from the argument, without
importing torch for NumPy input) and tensors stay on their device in float64; only
scalars come back. Magnitudes: a side is divided by a power of two (:func:`unit_scaled`,
exact) so that its ``n x n`` products stay inside float64's range.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from svcca._moments import scale_for, top_of
from svcca._validation import (
    Precision,
    is_torch_tensor,
    raise_degenerate,
    raise_nonfinite,
)

__all__ = [
    "center_gram",
    "center_gram_inplace",
    "centred64",
    "check_finite",
    "check_not_constant",
    "gram_linear",
    "gram_rbf",
    "hsic_from_centered",
    "in_data_units",
    "namespace",
    "unit_of",
    "unit_scaled",
]


# ---------------------------------------------------------------------- array namespace
def namespace(A: Any) -> Any:
    """``torch`` for a torch tensor, ``numpy`` for anything else (torch is never imported)."""
    return sys.modules["torch"] if is_torch_tensor(A) else np


def centred64(A: Any) -> Any:
    """The column-centred float64 copy of ``A`` (an ndarray, or a tensor on its device)."""
    if is_torch_tensor(A):
        torch = sys.modules["torch"]
        if A.dtype == torch.float64:  # never write into the caller's tensor
            return A.detach() - A.detach().mean(dim=0)
        Ac = A.detach().to(torch.float64)  # a fresh copy: centred in place (one buffer)
        Ac -= Ac.mean(dim=0)
        return Ac
    Ac = np.asarray(A, dtype=np.float64)
    return Ac - Ac.mean(axis=0)


def unit_scaled(A: Any, precision: Precision = "float64") -> tuple[Any, float]:
    """``A`` divided by the power of two ``Moments`` would sum it in, and that scale.

    Outside ``[2^-64, 2^64]`` the Gram matrices (``n x n`` entries of size ``|a|^2 p``)
    and their squared norms would overflow or underflow float64; divided by a power of
    two (exact) they do not, and every scale-invariant quantity is unchanged. ``A`` is
    returned as it is (no copy) inside the band.
    """
    scale = unit_of(A, precision)
    if scale == 1.0:
        return A, 1.0
    if is_torch_tensor(A):
        return A.detach().to(sys.modules["torch"].float64) * (1.0 / scale), scale
    return np.asarray(A, dtype=np.float64) * (1.0 / scale), scale


def unit_of(A: Any, precision: Precision = "float64") -> float:
    """The power of two :func:`unit_scaled` divides ``A`` by (1 inside the band)."""
    if is_torch_tensor(A):
        torch = sys.modules["torch"]
        if not A.numel():
            return 1.0
        lo, hi = torch.aminmax(A.detach())
        return scale_for(max(float(hi), -float(lo)), precision)
    return scale_for(top_of(A), precision)


def in_data_units(
    xy: float, xx: float, yy: float, sx: float, sy: float
) -> tuple[float, float, float]:
    """Linear HSICs of data divided by ``sx`` and ``sy``, in the data's units (inf
    beyond float64's range: the score, a ratio, is computed before this)."""
    if sx == sy == 1.0:
        return xy, xx, yy
    with np.errstate(over="ignore", under="ignore"):
        sx, sy = np.float64(sx), np.float64(sy)
        fxy = (sx * sy) ** 2  # (2^a 2^b)^2: one rounding-free power of two, or inf / 0
        return float(xy * fxy if xy else 0.0), float(xx * sx**4), float(yy * sy**4)


def _fill_diagonal(K: Any, value: float) -> None:
    if is_torch_tensor(K):
        K.fill_diagonal_(value)
    else:
        np.fill_diagonal(K, value)


# Entries of D compared per step of the tensor median (bounds its temporaries: 9 bytes
# an entry, 36 MiB).
_SELECT_CHUNK = 1 << 22


def _count_at_most(bits: Any, v: int) -> int:
    """How many entries of the int64 view ``bits`` are ``<= v`` (one pass, in chunks)."""
    total = bits.new_zeros(())
    for s in range(0, bits.numel(), _SELECT_CHUNK):
        total += (bits[s : s + _SELECT_CHUNK] <= v).sum()
    return int(total)


def _kth_smallest_bits(bits: Any, k: int) -> int:
    """The int64 pattern of the ``k``-th smallest (1-based) of non-negative float64s.

    Non-negative float64s order as their bit patterns do as int64s (a ``-0.0`` reads as
    the most negative int64, below everything, and is 0, the smallest value anyway), so
    bisection over the patterns finds the ``k``-th value exactly in at most 63 counting
    passes, with no copy of the data (``kthvalue`` copies it, and on the CPU adds an
    int64 index per entry).
    """
    lo, hi = 0, int(bits.max())
    while lo < hi:
        mid = (lo + hi) // 2
        if _count_at_most(bits, mid) >= k:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _next_bits(bits: Any, v: int) -> int:
    """The smallest pattern above ``v`` in ``bits`` (one pass)."""
    big = int(np.iinfo(np.int64).max)
    best = big
    for s in range(0, bits.numel(), _SELECT_CHUNK):
        chunk = bits[s : s + _SELECT_CHUNK]
        best = min(best, int(chunk.masked_fill(chunk <= v, big).min()))
    return best


def _median(D: Any) -> float:
    """The median of every entry of ``D`` (``>= 0``), as :func:`numpy.median` defines it.

    For a tensor: the middle entry, or for an even count the mean of the two middle
    ones, as NumPy does (``torch.median`` returns the lower one; ``torch.quantile`` is
    limited to 16M entries; ``torch.kthvalue`` copies its input), selected exactly on
    the device by bisection over the float64 bit patterns (:func:`_kth_smallest_bits`).
    """
    if not is_torch_tensor(D):
        return float(np.median(D))
    torch = sys.modules["torch"]
    bits = D.reshape(-1).view(torch.int64)
    N = bits.numel()
    lo = _kth_smallest_bits(bits, (N + 1) // 2)
    if N % 2:
        return float(np.int64(lo).view(np.float64))
    hi = lo if _count_at_most(bits, lo) >= N // 2 + 1 else _next_bits(bits, lo)
    return (float(np.int64(lo).view(np.float64)) + float(np.int64(hi).view(np.float64))) / 2.0


# ---------------------------------------------------------------------- Gram helpers
def gram_linear(A: Any) -> Any:
    """``A_c A_c^T`` for the column-centred float64 copy ``A_c`` of ``A`` (shape ``(n, n)``).

    ``A`` is an array (result on the host) or a torch tensor (result on its device).
    """
    Ac = centred64(A)
    return Ac @ Ac.T


def _sq_distances(A: Any) -> Any:
    xp = namespace(A)
    Ac = centred64(A)
    G = Ac @ Ac.T
    sq = xp.einsum("ij,ij->i", Ac, Ac)
    del Ac
    D = G
    D *= -2.0
    D += sq[:, None]
    D += sq[None, :]
    if xp is np:
        np.maximum(D, 0.0, out=D)
    else:
        D.clamp_(min=0.0)
    _fill_diagonal(D, 0.0)
    return D


def gram_rbf(
    A: Any, bandwidth: float = 1.0, sigma: float | None = None, unit: float = 1.0
) -> tuple[Any, float]:
    """RBF Gram matrix minus one, with Kornblith's median heuristic, and the width used.

    ``K_ij - 1 = expm1(-||a_i - a_j||^2 / (2 sigma^2))`` with ``sigma^2 = bandwidth^2 *
    median`` of the squared distances over the full ``n x n`` matrix (zeros on the
    diagonal included), as in Kornblith et al.'s reference code, or the absolute
    ``sigma`` given. The constant 1 is left out: centring removes it (and the unbiased
    HSIC ignores it), while ``exp`` would round away the kernel's information for wide
    kernels (at ``bandwidth=1e5`` every entry is within 1e-10 of 1). ``sigma^2`` is never
    formed (it over- or underflows for extreme widths): widths whose kernel float64
    cannot hold are refused by :func:`_check_rbf_width`. ``A`` is an array or a torch
    tensor (the Gram matrix stays on its device); ``unit`` is the power of two it was
    divided by (:func:`unit_scaled`; ``sigma`` is in its units): messages speak in the
    data's.
    """
    D = _sq_distances(A)
    if sigma is not None:
        scale, width, name = 1.0, sigma, "sigma"
    else:
        med = _median(D)
        if med <= 0.0:
            raise ValueError(
                "RBF CKA sets its width from the median pairwise squared distance, which is "
                "0 here: more than half the pairs of datapoints are identical. Remove "
                "duplicate datapoints, give an absolute width with sigma=, or use "
                "kernel='linear'."
            )
        scale, width, name = med, bandwidth, "bandwidth"
    with np.errstate(over="ignore", under="ignore"):
        c = float(np.float64(0.5) / scale / width / width)  # 1 / (2 sigma^2)
    _check_rbf_width(D, c, name, width, scale, unit)
    D *= -c
    if is_torch_tensor(D):
        D.expm1_()
    else:
        np.expm1(D, out=D)
    return D, width * float(np.sqrt(scale))


# exp(-t) of every pair beyond this is below float64's smallest normal number (2.2e-308);
# below _RBF_TINY the centred kernel's products (t^2) would underflow.
_RBF_HUGE = 708.0
_RBF_TINY = 1e-150


def _check_rbf_width(
    D: Any, c: float, name: str, width: float, scale: float, unit: float = 1.0
) -> None:
    """Refuse an RBF width whose kernel float64 cannot represent, naming the range that works.

    With ``t_ij = c d_ij^2`` (``c = 1 / (2 sigma^2)``): when even the nearest distinct
    pair has ``t > 708`` every off-diagonal kernel value underflows, the kernel is the
    identity and RBF CKA is 1 whatever the data; when the farthest pair has ``t <
    1e-150`` the kernel's deviation from 1 and its products underflow (RBF CKA's limit
    there is linear CKA). ``D`` holds the squared distances (its diagonal is restored), in
    units of ``unit``; messages give distances (and an absolute ``sigma``) in the data's.
    """
    absolute = unit if name == "sigma" else 1.0  # a bandwidth is relative: unit-free
    width = width * absolute
    far = float(D.max())
    _fill_diagonal(D, np.inf)
    near = float(D.min())
    _fill_diagonal(D, 0.0)
    what = "of the median pairwise distance" if name == "bandwidth" else "(absolute)"
    if near > 0 and not c * near <= _RBF_HUGE:  # also c = inf
        low = float(np.sqrt(0.5 * near / _RBF_HUGE / scale)) * absolute
        raise ValueError(
            f"{name}={width!r} is too narrow an RBF width for these data: even the nearest "
            f"two datapoints are {float(np.sqrt(near)) * unit:.3g} apart, so every kernel value "
            "between different datapoints underflows float64, the kernel is the identity "
            f"and RBF CKA would be 1 whatever the data. Use {name} >= {low:.3g} {what} "
            "(Kornblith et al. use bandwidths of 0.2 to 2 times the median distance)."
        )
    if far > 0 and c * far < _RBF_TINY:
        high = float(np.sqrt(0.5 * far / _RBF_TINY / scale)) * absolute
        raise ValueError(
            f"{name}={width!r} is too wide an RBF width for these data: the farthest two "
            f"datapoints are {float(np.sqrt(far)) * unit:.3g} apart, so every kernel value differs "
            "from 1 by less than float64 can hold. Use "
            f"{name} <= {high:.3g} {what}, or kernel='linear' (RBF CKA's limit for wide "
            "kernels)."
        )


def center_gram_inplace(K: Any, unbiased: bool) -> Any:
    """:func:`center_gram` of a float64 ``K`` that the caller owns, overwriting it."""
    n = K.shape[0]
    if unbiased:
        _fill_diagonal(K, 0.0)
        a = K.sum(axis=0) / (n - 2)
        a -= a.sum() / (2.0 * (n - 1))
        K -= a[:, None]
        K -= a[None, :]
        _fill_diagonal(K, 0.0)
    else:
        r = K.mean(axis=0)
        K -= r[:, None]
        K -= r[None, :]
        K += r.mean()
    return K


def center_gram(K: Any, *, unbiased: bool = False) -> Any:
    """Centre a Gram matrix (a new float64 array, or tensor on ``K``'s device).

    ``unbiased=False``: ``H K H`` with ``H = I - 11^T/n``. ``unbiased=True``: the
    centring of the U-statistic (zero diagonal, rows and columns adjusted) for which
    ``<center(K), center(L)> / (n (n - 3))`` is the unbiased HSIC of Song et al. 2012;
    it is a projection, so ``<center(K), L - diag(L)>`` gives the same number.
    """
    if is_torch_tensor(K):
        K = K.detach().to(sys.modules["torch"].float64, copy=True)
    else:
        K = np.array(K, dtype=np.float64, copy=True)
    return center_gram_inplace(K, unbiased)


def hsic_from_centered(Kc: Any, Lc: Any, *, unbiased: bool) -> float:
    """HSIC from two Gram matrices centred with :func:`center_gram` (same ``unbiased``)."""
    n = Kc.shape[0]
    if is_torch_tensor(Kc):
        dot = float(sys.modules["torch"].vdot(Kc.reshape(-1), Lc.reshape(-1)))
    else:
        dot = float(np.vdot(Kc, Lc))
    return dot / (n * (n - 3)) if unbiased else dot / (n - 1) ** 2


def check_finite(A: Any, name: str) -> None:
    """Raise (naming the bad rows) when ``A`` (an array, or a tensor) holds NaN or inf.

    A tensor is scanned on its device; only the ``n`` row flags of a bad one come to
    the host, for the message.
    """
    if is_torch_tensor(A):
        torch = sys.modules["torch"]
        if not A.is_floating_point() or bool(torch.isfinite(A).all()):
            return
        ok = torch.isfinite(A).all(dim=1).cpu().numpy()
        raise_nonfinite(np.where(ok, 0.0, np.nan)[:, None], name)
    if not np.isfinite(A).all():
        raise_nonfinite(A, name)


def check_not_constant(M: Any, name: str) -> None:
    """Refuse a representation whose every datapoint is the same (``O(n p)``, no copy)."""
    if is_torch_tensor(M):
        lo, hi = sys.modules["torch"].aminmax(M.detach(), dim=0)
        varies = bool((hi != lo).any())  # NaN != NaN: left to the finiteness check
    else:
        varies = bool(np.ptp(M, axis=0).any())
    if not varies:
        raise_degenerate(name, M.shape[1], "it is constant (every datapoint is the same)")
