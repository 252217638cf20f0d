"""google/svcca's ``cca_core``, ``pwcca``, ``numpy_pls`` and ``numpy_pca``, minus the crashes.

Inputs are in the original orientation, ``(neurons, datapoints)``; results are the
original's dicts with the original's keys. The algorithm is the original's (``np.cov``,
rescaling by the largest covariance, ``epsilon`` added to the diagonal, ``pinv``, an
eigendecomposition square root, SVD), so the numbers, including the sign-dependent
PWCCA weights, are the original's. Where the original crashed or was wrong, these
functions differ, and each docstring lists exactly where.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._validation import check_epsilon, check_pair, check_probability
from svcca.measures._linalg import NUMERICAL_RTOL

__all__ = [
    "compute_pwcca",
    "get_cca_similarity",
    "get_pca",
    "get_pls_similarity",
    "robust_cca_similarity",
    "sum_threshold",
]

num_cca_trials = 5


def _acts_pair(acts1: Any, acts2: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(neurons, datapoints)`` inputs; return float64 copies."""
    a, b = check_pair(np.asarray(acts1).T, np.asarray(acts2).T, names=("acts1", "acts2"))
    return np.array(a.T, dtype=np.float64), np.array(b.T, dtype=np.float64)


def _psd_sqrt(array: np.ndarray) -> np.ndarray:
    """Matrix square root of a PSD (Hermitian) matrix; round-off negatives clipped to 0."""
    w, v = np.linalg.eigh(array)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ np.conj(v).T


def sum_threshold(array: np.ndarray, threshold: float) -> int:
    """Number of leading entries whose sum reaches ``threshold`` of the total.

    Differs from the original: returns the length (not ``None``) when every entry is
    needed, and at least 1 (not 0) for ``threshold=0``.
    """
    array = np.asarray(array)
    total = float(np.sum(array))
    if array.size == 0 or total <= 0:
        return int(array.size)
    for i in range(1, array.size):
        if np.sum(array[:i]) / total >= threshold:
            return i
    return int(array.size)


def _zero_dict(compute_dirns: bool, numx: int, numy: int, dimension: int) -> dict[str, Any]:
    """The result for a layer with no neuron left after pruning: no correlation at all."""
    out: dict[str, Any] = {
        "mean": (np.float64(0.0), np.float64(0.0)),
        "sum": (np.float64(0.0), np.float64(0.0)),
        "cca_coef1": np.zeros(0),
        "cca_coef2": np.zeros(0),
        "idx1": 0,
        "idx2": 0,
        "x_idxs": np.zeros(numx, dtype=bool),
        "y_idxs": np.zeros(numy, dtype=bool),
    }
    if compute_dirns:
        out["cca_dirns1"] = np.zeros((1, dimension))
        out["cca_dirns2"] = np.zeros((1, dimension))
    return out


def get_cca_similarity(
    acts1: Any,
    acts2: Any,
    epsilon: float = 0.0,
    threshold: float = 0.98,
    compute_coefs: bool = True,
    compute_dirns: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Drop-in for ``cca_core.get_cca_similarity``: CCA of ``(neurons, datapoints)`` arrays.

    Returns the original's dict: ``cca_coef1``, ``cca_coef2``, ``coef_x``, ``coef_y``,
    ``invsqrt_xx``, ``invsqrt_yy``, ``full_coef_x``, ``full_coef_y``,
    ``full_invsqrt_xx``, ``full_invsqrt_yy``, ``neuron_means1``, ``neuron_means2``,
    ``x_idxs``, ``y_idxs``, ``mean``, ``sum`` (and ``cca_dirns1``, ``cca_dirns2`` with
    ``compute_dirns=True``).

    Differences from the original, all where it crashed or misreported:

    - Neurons with variance below 1e-12 of the layer's largest are pruned even at
      ``epsilon=0`` (the original kept them and its SVD failed to converge).
    - Round-off negative eigenvalues are clipped before the square root (no NaN).
    - A layer with every neuron pruned (``epsilon > 1``, a constant layer) returns the
      zero result the original intended (it raised ``ValueError: too many values to
      unpack``): empty coefficient arrays, ``mean`` and ``sum`` 0.
    - ``compute_dirns=True`` with ``compute_coefs=False`` works (original: ``KeyError``).
    - ``cca_coef2`` equals ``cca_coef1``, as in the original (CCA has one set of
      coefficients); ``mean`` is still the *thresholded* mean (see
      :func:`svcca.cca` for the plain mean) and with ``threshold=0`` it is the first
      coefficient (original: NaN).
    - Both inputs, not only ``acts1``, are checked; bad input raises ``ValueError`` with
      a message rather than a bare ``AssertionError``. ``verbose`` prints nothing.
    - Directions (``compute_dirns``) are the canonical variates plus the neuron means,
      exactly as the original computes them.
    """
    del verbose
    epsilon = check_epsilon(epsilon)
    threshold = check_probability(threshold, "threshold")
    acts1, acts2 = _acts_pair(acts1, acts2)
    numx, numy = acts1.shape[0], acts2.shape[0]
    covariance = np.cov(acts1, acts2)
    sigmaxx = covariance[:numx, :numx]
    sigmaxy = covariance[:numx, numx:]
    sigmayy = covariance[numx:, numx:]
    xmax = np.max(np.abs(sigmaxx))
    ymax = np.max(np.abs(sigmayy))
    if xmax == 0 or ymax == 0:
        return _zero_dict(compute_dirns, numx, numy, acts1.shape[1])
    sigmaxx = sigmaxx / xmax
    sigmayy = sigmayy / ymax
    sigmaxy = sigmaxy / np.sqrt(xmax * ymax)

    cut = max(epsilon, NUMERICAL_RTOL)
    x_idxs = np.abs(np.diagonal(sigmaxx)) >= cut
    y_idxs = np.abs(np.diagonal(sigmayy)) >= cut
    if not x_idxs.any() or not y_idxs.any():
        return _zero_dict(compute_dirns, numx, numy, acts1.shape[1])
    sxx = sigmaxx[np.ix_(x_idxs, x_idxs)] + epsilon * np.eye(int(x_idxs.sum()))
    syy = sigmayy[np.ix_(y_idxs, y_idxs)] + epsilon * np.eye(int(y_idxs.sum()))
    sxy = sigmaxy[np.ix_(x_idxs, y_idxs)]
    invsqrt_xx = _psd_sqrt(np.linalg.pinv(sxx))
    invsqrt_yy = _psd_sqrt(np.linalg.pinv(syy))
    arr = invsqrt_xx @ sxy @ invsqrt_yy
    u, s, v = np.linalg.svd(arr)
    s = np.abs(s)

    out: dict[str, Any] = {}
    neuron_means1 = np.mean(acts1, axis=1, keepdims=True)
    neuron_means2 = np.mean(acts2, axis=1, keepdims=True)
    if compute_coefs or compute_dirns:
        x_mask = np.outer(x_idxs, x_idxs)
        y_mask = np.outer(y_idxs, y_idxs)
        full = {}
        for key, mask, val, num in (
            ("full_coef_x", x_mask, u.T, numx),
            ("full_invsqrt_xx", x_mask, invsqrt_xx, numx),
            ("full_coef_y", y_mask, v, numy),
            ("full_invsqrt_yy", y_mask, invsqrt_yy, numy),
        ):
            arr_full = np.zeros((num, num), dtype=np.result_type(val, np.float64))
            np.place(arr_full, mask, val)
            full[key] = arr_full
        if compute_coefs:
            out.update(
                coef_x=u.T,
                invsqrt_xx=invsqrt_xx,
                coef_y=v,
                invsqrt_yy=invsqrt_yy,
                neuron_means1=neuron_means1,
                neuron_means2=neuron_means2,
                **full,
            )
        if compute_dirns:
            out["cca_dirns1"] = (
                full["full_coef_x"] @ full["full_invsqrt_xx"] @ (acts1 - neuron_means1)
                + neuron_means1
            )
            out["cca_dirns2"] = (
                full["full_coef_y"] @ full["full_invsqrt_yy"] @ (acts2 - neuron_means2)
                + neuron_means2
            )
    idx = sum_threshold(s, threshold)
    out["cca_coef1"] = s
    out["cca_coef2"] = s
    out["x_idxs"] = x_idxs
    out["y_idxs"] = y_idxs
    out["mean"] = (np.mean(s[:idx]), np.mean(s[:idx]))
    out["sum"] = (np.sum(s), np.sum(s))
    return out


def robust_cca_similarity(
    acts1: Any,
    acts2: Any,
    threshold: float = 0.98,
    epsilon: float = 1e-6,
    compute_dirns: bool = True,
) -> dict[str, Any]:
    """Drop-in for ``cca_core.robust_cca_similarity``.

    The original retried :func:`get_cca_similarity` with added noise when it raised, but
    passed ``threshold`` as ``epsilon`` and ``compute_dirns`` as ``threshold``, caught
    ``np.LinAlgError`` (which does not exist), and gave ``acts2`` noise of ``acts1``'s
    shape. Here the arguments go where they belong, and since
    :func:`get_cca_similarity` no longer fails on degenerate input the retry (up to 5
    times, noise of each input's own shape, fixed seed) is only a safety net for
    ``numpy.linalg.LinAlgError``.
    """
    a1, a2 = _acts_pair(acts1, acts2)
    rng = np.random.default_rng(0)
    for trial in range(num_cca_trials):
        try:
            return get_cca_similarity(
                a1, a2, epsilon=epsilon, threshold=threshold, compute_dirns=compute_dirns
            )
        except np.linalg.LinAlgError:
            if trial + 1 == num_cca_trials:
                raise
            a1 = a1 * 1e-1 + rng.normal(size=a1.shape) * epsilon
            a2 = a2 * 1e-1 + rng.normal(size=a2.shape) * epsilon
    raise AssertionError("unreachable")  # pragma: no cover


def compute_pwcca(
    acts1: Any, acts2: Any, epsilon: float = 0.0
) -> tuple[float, np.ndarray, np.ndarray]:
    """Drop-in for ``pwcca.compute_pwcca``: ``(pwcca_mean, weights, coefs)``.

    Same algorithm as the original, including its "directions" (canonical rotations
    applied to un-whitened centred activations, means added back), so the values are
    the original's wherever it ran, sign dependence included. One fix: when the second
    input has fewer kept neurons, the original indexed ``acts1`` with ``acts2``'s mask
    (``IndexError`` when the first has more neurons, a silently wrong value when the
    counts are equal); here ``acts2`` is used. For the definition of Morcos et al. 2018
    (whitened canonical variates, independent of signs) use :func:`svcca.pwcca` on the
    transposed arrays.
    """
    a1, a2 = _acts_pair(acts1, acts2)
    res = get_cca_similarity(a1, a2, epsilon=epsilon, compute_dirns=False, compute_coefs=True)
    if res["cca_coef1"].size == 0:
        return 0.0, np.zeros(0), np.zeros(0)
    if np.sum(res["x_idxs"]) <= np.sum(res["y_idxs"]):
        coef, acts, idxs, means, coefs = (
            res["coef_x"],
            a1,
            res["x_idxs"],
            res["neuron_means1"],
            res["cca_coef1"],
        )
    else:
        coef, acts, idxs, means, coefs = (
            res["coef_y"],
            a2,
            res["y_idxs"],
            res["neuron_means2"],
            res["cca_coef2"],
        )
    dirns = coef @ (acts[idxs] - means[idxs]) + means[idxs]
    P, _ = np.linalg.qr(dirns.T)
    weights = np.sum(np.abs(P.T @ acts[idxs].T), axis=1)
    weights = weights / np.sum(weights)
    return float(np.sum(weights * coefs)), weights, coefs


def get_pls_similarity(acts1: Any, acts2: Any) -> dict[str, Any]:
    """Drop-in for ``numpy_pls.get_pls_similarity``.

    Keys: ``eigenvals`` (singular values of the cross-covariance, as in the original;
    :func:`svcca.pls` also gives true eigenvalues), ``neuron_coeffs1``,
    ``neuron_coeffs2``, ``pls_dirns1``, ``pls_dirns2``.

    Differences: the original added neuron ``i``'s mean to PLS direction ``i`` (and
    took the means over the wrong axis), which crashed whenever the layers differ in
    width; here ``pls_dirns1 = neuron_coeffs1 @ acts1``, the projection of the
    activations, means included, onto the PLS directions (likewise for ``acts2``).
    """
    a1, a2 = _acts_pair(acts1, acts2)
    numx = a1.shape[0]
    sigmaxy = np.cov(a1, a2)[:numx, numx:]
    U, S, V = np.linalg.svd(sigmaxy, full_matrices=False)
    return {
        "eigenvals": np.abs(S),
        "neuron_coeffs1": U.T,
        "neuron_coeffs2": V,
        "pls_dirns1": U.T @ a1,
        "pls_dirns2": V @ a2,
    }


def get_pca(acts: Any, compute_dirns: bool = False) -> dict[str, Any]:
    """Drop-in for ``numpy_pca.get_pca`` on ``(neurons, datapoints)`` activations.

    Keys: ``eigenvals`` (singular values of the centred activations, as in the
    original; :func:`svcca.pca` gives the covariance eigenvalues), ``neuron_coefs``
    and, with ``compute_dirns=True``, ``pca_dirns``. Each neuron is centred on its own
    mean, which reproduces the reference outputs of the original (some copies of
    ``numpy_pca`` subtract each datapoint's mean over neurons instead, which is not PCA).
    """
    a, _ = _acts_pair(acts, acts)
    means = np.mean(a, axis=1, keepdims=True)
    cacts = a - means
    U, S, _ = np.linalg.svd(cacts, full_matrices=False)
    out: dict[str, Any] = {"eigenvals": S, "neuron_coefs": U.T}
    if compute_dirns:
        out["pca_dirns"] = U.T @ cacts + means
    return out
