"""Centred kernel alignment (CKA): linear, RBF, and debiased.

Linear CKA is a function of the sufficient statistic (:class:`~svcca.Moments`) and is
computed in feature space when that is cheaper; RBF and debiased CKA need the samples
(Gram matrices, or per-sample norms for debiased linear CKA).

The Gram helpers (:mod:`svcca._measures._gram`) serve NumPy arrays and torch tensors
alike (``namespace`` picks ``numpy`` or ``torch`` from the argument, without importing
torch for NumPy input); tensors stay on their device in float64; only scalars come back.
Where the sample-space work runs follows :mod:`svcca._device` (:func:`data_device`):
tensors on a GPU, or any tensors inside ``svcca.on_device("cpu")``, on their device;
NumPy arrays, CPU tensors outside an ``on_device`` block, and everything inside
``on_device(None)`` on the host (NumPy). The ``n x n`` float64 matrices of the device
path are planned against the device's free memory first (:func:`plan_grams`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from svcca._device import data_device, plan_rows
from svcca._measures._gram import (
    _SELECT_CHUNK,
    center_gram,
    center_gram_inplace,
    check_finite,
    check_not_constant,
    gram_linear,
    gram_rbf,
    hsic_from_centered,
    in_data_units,
    unit_scaled,
)
from svcca._measures._gram import (
    _median as _median,  # re-exported: tests select medians through it
)
from svcca._moments import Moments
from svcca._result import result
from svcca._sources import to_moments
from svcca._validation import (
    Precision,
    check_bool,
    check_option,
    check_pair,
    check_precision,
    check_real,
    is_torch_tensor,
    raise_degenerate,
    tensor_representation,
)

__all__ = [
    "CKAResult",
    "cka",
    "center_gram",
    "gram_linear",
    "gram_rbf",
    "hsic_from_centered",
]

Kernel = Literal["linear", "rbf"]
Method = Literal["auto", "feature", "sample"]

# Rows per chunk when a pass over the data is needed outside Moments (row norms).
_CHUNK_ROWS = 8192


@result
class CKAResult:
    """Centred kernel alignment between two representations.

    Attributes
    ----------
    score : float
        CKA, ``hsic_xy / sqrt(hsic_xx * hsic_yy)``. In [0, 1] for the biased estimator;
        the debiased estimator can be slightly negative for unrelated data. 0 when
        either side has no variance (a constant representation).
    hsic_xy, hsic_xx, hsic_yy : float
        The HSIC estimates behind it: ``tr(K_c L_c) / (n - 1)^2`` (biased) or the
        unbiased U-statistic of Song et al. 2012 (debiased).
    kernel : {"linear", "rbf"}
    debiased : bool
    bandwidth : float or None
        The RBF bandwidth as a fraction of the median pairwise distance (None for linear).
    sigma_x, sigma_y : float or None
        The RBF widths actually used, ``sigma = bandwidth * sqrt(median squared
        distance)`` on each side (None for linear).
    method : {"feature", "sample", "moments", "minibatch"}
        Where it was computed: ``p x q`` cross-products, ``n x n`` Gram matrices, a
        given :class:`~svcca.Moments`, or accumulated over minibatches.
    n_samples : int
    n_features : tuple of int
        ``(p, q)``.
    """

    score: float
    hsic_xy: float
    hsic_xx: float
    hsic_yy: float
    kernel: str
    debiased: bool
    bandwidth: float | None
    sigma_x: float | None
    sigma_y: float | None
    method: str
    n_samples: int
    n_features: tuple[int, int]


def cka_ratio(xy: float, xx: float, yy: float, p: int, q: int, names: tuple[str, str]) -> float:
    """``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``, refusing a side with no self-similarity.

    ``HSIC(K, K)`` is 0 exactly for a constant representation (its centred Gram matrix
    is zero); the debiased estimator can also come out <= 0 on very few samples. Either
    way there is nothing to normalise by, and CKA is undefined, not 0.
    """
    for hsic, name, width in ((xx, names[0], p), (yy, names[1], q)):
        if not hsic > 0.0:
            raise_degenerate(
                name,
                width,
                f"its HSIC with itself is {hsic:.3g} (a constant layer, or too few samples "
                "for the debiased estimator)",
            )
    return float(xy / np.sqrt(xx * yy))


# ---------------------------------------------------------------------- linear paths
def _linear_from_moments(m: Moments) -> tuple[float, float, float]:
    """Biased HSICs from the centred cross-product sums."""
    s = 1.0 / (m.n - 1) ** 2
    xy = float(np.sum(m.sxy * m.sxy)) * s
    xx = float(np.sum(m.sxx * m.sxx)) * s
    yy = float(np.sum(m.syy * m.syy)) * s
    return xy, xx, yy


def row_sq_norms(A: Any, mean: np.ndarray, scale: float = 1.0) -> Any:
    """``||(a_i - mean) / scale||^2`` for every row, in float64 row chunks (on a tensor's
    device); ``scale`` is the power of two of the side's ``Moments`` (exact)."""
    inv = 1.0 / scale
    if is_torch_tensor(A):
        torch = sys.modules["torch"]
        z: dict[str, Any] = {"dtype": torch.float64, "device": A.device}
        out, mu = torch.empty(A.shape[0], **z), torch.as_tensor(mean, **z)
        for s in range(0, A.shape[0], _CHUNK_ROWS):
            block = (A[s : s + _CHUNK_ROWS].detach().to(torch.float64) - mu) * inv
            out[s : s + block.shape[0]] = torch.einsum("ij,ij->i", block, block)
        return out
    out = np.empty(A.shape[0])
    for s in range(0, A.shape[0], _CHUNK_ROWS):
        block = np.asarray(A[s : s + _CHUNK_ROWS], dtype=np.float64) - mean
        if inv != 1.0:
            block *= inv
        out[s : s + block.shape[0]] = np.einsum("ij,ij->i", block, block)
    return out


def debiased_linear_hsic(frob2: float, a: Any, b: Any, n: int) -> float:
    """Unbiased HSIC of two linear kernels from feature-space quantities.

    ``frob2 = ||X_c^T Y_c||_F^2`` and ``a_i = ||x_i - xbar||^2``, ``b_i`` likewise: with
    centred features the Gram matrices have zero row sums, and the U-statistic reduces
    to ``(frob2 - n/(n-2) a.b + sum(a) sum(b)/((n-1)(n-2))) / (n (n-3))``.
    """
    val = frob2 - n / (n - 2) * float(a @ b) + float(a.sum() * b.sum()) / ((n - 1) * (n - 2))
    return val / (n * (n - 3))


def _linear_debiased_feature(X: Any, Y: Any, m: Moments) -> tuple[float, float, float]:
    a = row_sq_norms(X, m.mean_x, m.scale_x)  # in the sums' units, as m.sxx
    b = row_sq_norms(Y, m.mean_y, m.scale_y)
    n = m.n
    xy = debiased_linear_hsic(float(np.sum(m.sxy * m.sxy)), a, b, n)
    xx = debiased_linear_hsic(float(np.sum(m.sxx * m.sxx)), a, a, n)
    yy = debiased_linear_hsic(float(np.sum(m.syy * m.syy)), b, b, n)
    return xy, xx, yy


def _sample_space(Kx: Any, Ky: Any, debiased: bool) -> tuple[float, float, float]:
    """The three HSICs of two fresh float64 Gram matrices (centred in place: consumed)."""
    Kc = center_gram_inplace(Kx, debiased)
    Lc = center_gram_inplace(Ky, debiased)
    return (
        hsic_from_centered(Kc, Lc, unbiased=debiased),
        hsic_from_centered(Kc, Kc, unbiased=debiased),
        hsic_from_centered(Lc, Lc, unbiased=debiased),
    )


def feature_space_is_cheaper(n: int, p: int, q: int) -> bool:
    """Whether ``p x q`` cross-products cost less than ``n x n`` Gram matrices.

    Feature space costs about ``n (p^2 + q^2 + pq)`` multiply-adds, sample space
    ``n^2 (p + q)`` plus a few ``n^2`` passes for centring.
    """
    return n * (p * p + q * q + p * q) <= n * n * (p + q + 4)


# ---------------------------------------------------------------------- devices
def plan_grams(
    n: int, width: int, device: Any, *, count: int, what: str, lower: str, extra: int = 0
) -> None:
    """Refuse (:class:`~svcca.DeviceMemoryError`) before allocating ``count`` float64
    ``n x n`` matrices, an ``n x width`` float64 copy and ``extra`` bytes on ``device``
    when they do not fit."""
    plan_rows(
        fixed=8 * (count * n * n + n * width) + extra,
        per_row=0,
        device=device,
        what=what,
        lower=lower,
    )


def _plan_sample_space(
    n: int, width: int, device: Any, *, kernel: str, median: bool, debiased: bool
) -> None:
    host = "or compute on the host: with svcca.on_device(None): ..."
    grams = f"two {n} x {n} float64 Gram matrices"
    if kernel == "rbf":
        what = f"RBF CKA of {n} samples ({grams}" + (
            " and the median's scratch)" if median else ")"
        )
        lower = (
            "Use fewer samples (the need grows as n^2), kernel='linear' (computed in "
            f"feature space from p x q cross-products, no n x n matrix), {host}"
        )
    else:
        what = f"Sample-space {'debiased ' if debiased else ''}linear CKA of {n} samples ({grams})"
        lower = (
            "Use method='feature' (p x q cross-products, no n x n matrix, the same score), "
            f"fewer samples, {host}"
        )
    scratch = 9 * min(n * n, _SELECT_CHUNK) if median else 0  # an int64 and a bool per entry
    plan_grams(n, width, device, count=2, what=what, lower=lower, extra=scratch)


# ---------------------------------------------------------------------- validation
def check_bandwidth(bandwidth: Any) -> float:
    return check_real(
        bandwidth,
        "bandwidth",
        low=0.0,
        low_open=True,
        fix="It is the RBF width as a fraction of the median pairwise distance (Kornblith "
        "et al. use 0.2 to 2; 1.0 is the default).",
    )


def check_sigma(sigma: Any, kernel: str, bandwidth: Any) -> tuple[float, float] | None:
    """``sigma`` as one absolute RBF width per side, or None."""
    if sigma is None:
        return None
    if kernel != "rbf":
        raise ValueError(f"sigma is an RBF width; it does not apply to kernel={kernel!r}.")
    if bandwidth != 1.0:
        raise ValueError(
            f"Give the RBF width either relative to the median distance (bandwidth=) or "
            f"absolute (sigma=), not both; got bandwidth={bandwidth!r} and sigma={sigma!r}."
        )
    pair = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    if len(pair) != 2:
        raise ValueError(f"sigma must be a float or a (sigma_x, sigma_y) pair; got {sigma!r}.")
    fix = "It is the absolute RBF width, exp(-||a - b||^2 / (2 sigma^2))."
    return (
        check_real(pair[0], "sigma", low=0.0, low_open=True, fix=fix),
        check_real(pair[1], "sigma", low=0.0, low_open=True, fix=fix),
    )


def check_debiased_n(n: int) -> None:
    if n < 4:
        raise ValueError(
            f"debiased CKA needs at least 4 samples (its U-statistic divides by n - 3); got "
            f"{n}. Use debiased=False or more datapoints."
        )


def _streamed(X: Any, Y: Any) -> bool:
    if isinstance(X, Iterator) or isinstance(Y, Iterator):
        return True
    if isinstance(X, np.ndarray) and isinstance(Y, np.ndarray):
        return False
    from svcca._sources import is_streamable

    return is_streamable(X) or (Y is not None and is_streamable(Y))


# ---------------------------------------------------------------------- public
def cka(
    X: Any,
    Y: Any = None,
    *,
    kernel: Kernel = "linear",
    bandwidth: float = 1.0,
    debiased: bool = False,
    method: Method = "auto",
    precision: Precision = "float64",
    sigma: float | tuple[float, float] | None = None,
) -> CKAResult:
    """Centred kernel alignment between two representations of the same datapoints.

    Parameters
    ----------
    X : array_like, shape (n_samples, p), or Moments
        First representation, or a :class:`~svcca.Moments` holding both sides (linear,
        biased CKA only: the other variants need the samples). For linear, biased CKA
        anything the Moments-based measures accept also works (torch tensors, dask
        arrays, h5py/zarr datasets, iterators of batches), read in one pass. Torch
        tensors on a GPU (or any tensors inside ``svcca.on_device(...)``) are compared
        on their device in float64 by every variant, RBF and debiased included: the
        data and the ``n x n`` Gram matrices never leave it, and the ``n x n`` float64
        buffers are checked against its free memory first (:class:`~svcca.DeviceMemoryError`
        says what was needed and how to need less). CPU tensors outside such a block,
        and everything inside ``on_device(None)``, take the NumPy path.
    Y : array_like, shape (n_samples, q)
        Second representation.
    kernel : {"linear", "rbf"}, default "linear"
    bandwidth : float, default 1.0
        RBF only: ``sigma = bandwidth * sqrt(median squared pairwise distance)`` on each
        side (Kornblith et al.'s ``threshold``).
    debiased : bool, default False
        Use the unbiased HSIC estimator of Song et al. 2012 (Kornblith's ``debiased``).
    method : {"auto", "feature", "sample"}, default "auto"
        Linear kernel only: compute from ``p x q`` cross-products or from ``n x n`` Gram
        matrices. "auto" picks the cheaper for the shapes; both give the same number.
    precision : {"float64", "float32"}, default "float64"
        Linear, biased CKA only: how the cross-products are taken. ``"float32"``
        (float32 products of chunks of at most 4096 rows, float64 sums; always the
        feature-space path) is about twice as fast on float32 activations and moves the
        score by about 1e-8 (see :class:`~svcca.Moments`). A Moments input keeps its own.
    sigma : float or (float, float), optional
        RBF only: absolute widths ``sigma`` (one for both sides, or one per side) in
        place of the median rule, for conventions that fix the width (platonic-rep's
        ``rbf_sigma=1``) or compute their own median (docs/conventions.md). The score
        then depends on the data's scale. Not together with ``bandwidth``.

    Returns
    -------
    CKAResult

    Notes
    -----
    With centred Gram matrices :math:`K_c = HKH`, :math:`L_c = HLH`,

    .. math:: \\mathrm{CKA} = \\frac{\\langle K_c, L_c\\rangle_F}
              {\\|K_c\\|_F \\|L_c\\|_F},

    and for the linear kernel :math:`\\langle K_c, L_c\\rangle_F =
    \\|X_c^T Y_c\\|_F^2`, so linear CKA is
    :math:`\\|S_{xy}\\|_F^2 / (\\|S_{xx}\\|_F \\|S_{yy}\\|_F)` in the moments (the
    same number as :attr:`svcca.PLSResult.score`). Debiased CKA replaces each
    :math:`\\langle K_c, L_c\\rangle` by the unbiased U-statistic

    .. math:: \\mathrm{HSIC}_1 = \\frac{1}{n(n-3)}\\Big[\\mathrm{tr}(\\tilde K\\tilde L)
       + \\frac{1^T\\tilde K 1\\, 1^T\\tilde L 1}{(n-1)(n-2)}
       - \\frac{2}{n-2} 1^T\\tilde K\\tilde L 1\\Big]

    with :math:`\\tilde K` the Gram matrix with its diagonal zeroed; for the linear kernel
    it needs only the per-sample squared norms besides :math:`S_{xy}`.

    .. warning:: Conventions differ. Biased (``debiased=False``) is the original CKA of
       Kornblith et al. 2019 and most papers; it is positive even for independent data
       and shrinks like ``1/n`` (for ``n`` much larger than the feature counts). Debiased
       CKA (Nguyen et al. 2021 and the minibatch estimator) is near 0 there. The RBF
       width is relative to the median *squared* distance over the full matrix, diagonal
       zeros included, as in Kornblith's code; other libraries use the median of the
       off-diagonal distances: pass a ``bandwidth`` accordingly.

    References
    ----------
    .. [1] S. Kornblith, M. Norouzi, H. Lee, G. Hinton, "Similarity of Neural Network
       Representations Revisited", ICML 2019, arXiv:1905.00414.
    .. [2] L. Song, A. Smola, A. Gretton, J. Bedo, K. Borgwardt, "Feature Selection via
       Dependence Maximization", JMLR 13, 2012.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 20))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    >>> round(svcca.cka(X, 3.0 * X @ Q).score, 6)     # rotation and scaling
    1.0
    """
    kernel = check_option(kernel, "kernel", ("linear", "rbf"))  # type: ignore[assignment]
    method = check_option(method, "method", ("auto", "feature", "sample"))  # type: ignore[assignment]
    debiased = check_bool(debiased, "debiased")
    bw = check_bandwidth(bandwidth) if kernel == "rbf" else None
    widths = check_sigma(sigma, kernel, bandwidth)
    if widths is not None:
        bw = None
    precision = check_precision(precision)
    if precision == "float32" and (kernel != "linear" or debiased or method == "sample"):
        raise ValueError(
            "precision='float32' applies to linear, biased CKA, which is computed from "
            "the cross-products; RBF, debiased and sample-space CKA are computed in "
            "float64. Leave precision='float64' for them."
        )

    if isinstance(X, Moments):
        if kernel != "linear" or debiased:
            raise ValueError(
                "A Moments object determines only linear, biased CKA; RBF and debiased CKA "
                "need the samples. Pass the arrays: cka(X, Y, ...)."
            )
        if method == "sample":
            raise ValueError(
                "method='sample' needs the samples (n x n Gram matrices); a Moments object "
                "only supports the feature-space computation."
            )
        return linear_cka_of_moments(to_moments(X, Y), "moments")

    if kernel == "linear" and not debiased and method != "sample" and _streamed(X, Y):
        # Iterators of batches, dask arrays, torch tensors, h5py/zarr datasets: one pass
        # into the moments, never a full in-memory copy.
        return linear_cka_of_moments(to_moments(X, Y, precision=precision), "feature")
    if Y is None:
        raise TypeError(
            "cka compares two representations: call it as cka(X, Y) with arrays of shape "
            "(n_samples, p) and (n_samples, q), or cka(moments)."
        )
    dev = data_device((X, Y), ("X", "Y"))
    if dev is None:
        A, B = check_pair(X, Y)
    else:  # tensors on a GPU, or inside on_device(): computed there, never copied out
        A, B = tensor_representation(X, "X"), tensor_representation(Y, "Y")
        if A.shape[0] != B.shape[0]:
            raise ValueError(
                f"X and Y must describe the same datapoints: X has {A.shape[0]} samples "
                f"(rows) and Y has {B.shape[0]}. Tensors are (n_samples, n_features)."
            )
    n, p, q = A.shape[0], A.shape[1], B.shape[1]
    if n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {n}.")
    if debiased:
        check_debiased_n(n)

    sigma_x = sigma_y = None
    for M, name in ((A, "X"), (B, "Y")):  # O(n p): a constant layer has no kernel to centre
        check_not_constant(M, name)
    if kernel == "rbf" or method == "sample":
        check_finite(A, "X")
        check_finite(B, "Y")
    # Every magnitude: the Gram matrices are of each side in units of a power of two
    # (exact; a copy only for data outside [2^-64, 2^64]), the feature path's Moments
    # carry theirs; the HSICs are converted back at the end.
    sa = sb = 1.0
    if kernel == "rbf":
        (A, sa), (B, sb) = unit_scaled(A), unit_scaled(B)
        if widths is not None:
            widths = (widths[0] / sa, widths[1] / sb)
        if method == "feature":
            raise ValueError(
                "method='feature' exists only for the linear kernel; RBF CKA is computed "
                "from n x n Gram matrices (leave method='auto')."
            )
        if dev is not None:
            _plan_sample_space(
                n, max(p, q), dev, kernel="rbf", median=widths is None, debiased=debiased
            )
        Kx, sigma_x = gram_rbf(A, bw or 1.0, None if widths is None else widths[0], sa)
        Ky, sigma_y = gram_rbf(B, bw or 1.0, None if widths is None else widths[1], sb)
        xy, xx, yy = _sample_space(Kx, Ky, debiased)
        del Kx, Ky
        sigma_x, sigma_y = sigma_x * sa, sigma_y * sb
        sa = sb = 1.0  # RBF kernels are unitless
        where = "sample"
    else:
        use_feature = method == "feature" or (
            method == "auto" and (precision == "float32" or feature_space_is_cheaper(n, p, q))
        )
        if dev is not None and not use_feature:
            _plan_sample_space(n, max(p, q), dev, kernel="linear", median=False, debiased=debiased)
        if use_feature:
            # a tensor's moments are accumulated on its device (TorchAccumulator)
            m = Moments.from_arrays(A, B, precision=precision) if dev is None else to_moments(A, B)
            if debiased:
                xy, xx, yy = _linear_debiased_feature(A, B, m)
            else:
                xy, xx, yy = _linear_from_moments(m)
            sa, sb = m.scale_x, m.scale_y
            where = "feature"
        else:
            (A, sa), (B, sb) = unit_scaled(A), unit_scaled(B)
            xy, xx, yy = _sample_space(gram_linear(A), gram_linear(B), debiased)
            where = "sample"
    score = cka_ratio(xy, xx, yy, p, q, ("X", "Y"))
    xy, xx, yy = in_data_units(xy, xx, yy, sa, sb)
    return CKAResult(score, xy, xx, yy, kernel, debiased, bw, sigma_x, sigma_y, where, n, (p, q))


def linear_cka_of_moments(
    m: Moments, method: str, names: tuple[str, str] = ("X", "Y")
) -> CKAResult:
    """Linear, biased CKA of a statistic (``method`` records how it was computed)."""
    xy, xx, yy = _linear_from_moments(m)
    score = cka_ratio(xy, xx, yy, m.p, m.q, names)
    xy, xx, yy = in_data_units(xy, xx, yy, m.scale_x, m.scale_y)
    return CKAResult(score, xy, xx, yy, "linear", False, None, None, None, method, m.n, (m.p, m.q))
