"""google/svcca's ``cca_core``, ``pwcca``, ``numpy_pls`` and ``numpy_pca``, minus the crashes.

Inputs are in the original orientation, ``(neurons, datapoints)``; results are the
original's dicts with the original's keys. The algorithm is the original's (``np.cov``,
rescaling by the largest covariance, ``epsilon`` added to the diagonal, an inverse
square root, SVD), so the numbers, including the sign-dependent PWCCA weights, are the
original's. Where the original crashed or was wrong, these functions differ, and each
docstring lists exactly where. None returns a plausible number for input that has none:
a constant layer raises :class:`~svcca.DegenerateError` naming ``acts1`` or ``acts2``;
too few datapoints for the neurons warns (:class:`~svcca.SVCCAWarning`: the value is
inflated) or, where no number is meaningful, raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._measures import NUMERICAL_RTOL
from svcca._validation import (
    as_representation,
    check_epsilon,
    check_pair,
    check_probability,
    nonfinite_error,
    raise_degenerate,
    warn_few_samples,
)

__all__ = [
    "compute_pwcca",
    "get_cca_similarity",
    "get_pca",
    "get_pls_similarity",
    "robust_cca_similarity",
    "sum_threshold",
]

num_cca_trials = 5
EPS = float(np.finfo(np.float64).eps)


def _acts(arr: np.ndarray, name: str) -> np.ndarray:
    """A validated ``(n, p)`` array as a float64 ``(neurons, datapoints)`` copy.

    Refuses NaN or inf, and a layer whose every neuron is constant over the datapoints
    (:class:`~svcca.DegenerateError` naming ``name``).
    """
    acts = np.array(arr.T, dtype=np.float64)
    finite = np.isfinite(acts).all(axis=0)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise nonfinite_error(name, bad, count=bad.size, of=acts.shape[1], unit="datapoints")
    if constant_neurons(acts).all():
        raise_degenerate(name, acts.shape[0], "every neuron is constant over the datapoints")
    return acts


def _rows(acts: Any) -> Any:
    """``(neurons, datapoints)`` as ``(datapoints, neurons)``; a masked array keeps its
    mask (for :func:`~svcca._validation.as_representation` to refuse, with the fix)."""
    return acts.T if isinstance(acts, np.ma.MaskedArray) else np.asarray(acts).T


def _acts_pair(acts1: Any, acts2: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate two ``(neurons, datapoints)`` inputs; return float64 copies."""
    a, b = check_pair(_rows(acts1), _rows(acts2), names=("acts1", "acts2"))
    return _acts(a, "acts1"), _acts(b, "acts2")


def constant_neurons(acts: np.ndarray) -> np.ndarray:
    """Rows of ``acts`` whose values agree to a few ulps of their magnitude.

    A constant neuron's centred values are round-off of its mean, not zeros, so its
    variance cannot tell it from a real one when every neuron of a layer is constant;
    its range can.
    """
    return np.ptp(acts, axis=1) <= 4 * EPS * np.max(np.abs(acts), axis=1)


def _inv_sqrt(S: np.ndarray, epsilon: float) -> np.ndarray:
    """``(S + epsilon I)^{-1/2}`` of a PSD ``S``, as a pseudo-inverse.

    The original formed ``pinv(S + epsilon I)`` and then its square root by a second
    eigendecomposition. That is the same matrix, but the explicit inverse squares the
    condition number: with a singular ``S`` (fewer datapoints than neurons) and
    ``epsilon = 1e-10`` it came out indefinite and gave "canonical correlations" above
    100. One eigendecomposition of ``S`` is exact for a nearby PSD matrix, so the
    correlations stay in [0, 1] up to round-off; on the original's reference cases the
    numbers agree to 1e-12. Eigenvalues of ``S + epsilon I`` below 1e-12 of the largest
    (round-off of a singular ``S``) are treated as 0.
    """
    w, V = np.linalg.eigh(S)
    w = np.clip(w, 0.0, None) + epsilon
    keep = w > NUMERICAL_RTOL * w.max()
    d = np.zeros_like(w)
    d[keep] = 1.0 / np.sqrt(w[keep])
    return (V * d) @ V.T


def _warn_few_datapoints(res: dict[str, Any], n: int) -> None:
    """:class:`~svcca.SVCCAWarning` from the public function when the kept neurons of
    both layers come close to the number of datapoints (the coefficients are inflated)."""
    warn_few_samples(n, int(np.sum(res["x_idxs"])), int(np.sum(res["y_idxs"])), stacklevel=4)


def sum_threshold(array: np.ndarray, threshold: float) -> int:
    """Number of leading entries whose sum reaches ``threshold`` of the total.

    Differs from the original: returns the length (not ``None``) when every entry is
    needed, and at least 1 (not 0) for ``threshold=0``.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca.compat import sum_threshold
    >>> sum_threshold(np.array([0.6, 0.3, 0.1]), 0.8)  # 0.6 + 0.3 reaches 80% of 1.0
    2
    """
    array = np.asarray(array)
    total = float(np.sum(array))
    if array.size == 0 or total <= 0:
        return int(array.size)
    for i in range(1, array.size):
        if np.sum(array[:i]) / total >= threshold:
            return i
    return int(array.size)


def _cca(
    acts1: np.ndarray,
    acts2: np.ndarray,
    epsilon: float,
    threshold: float,
    compute_coefs: bool,
    compute_dirns: bool,
) -> dict[str, Any]:
    """The original's ``get_cca_similarity`` on validated inputs (no checks, no warnings)."""
    numx, numy = acts1.shape[0], acts2.shape[0]
    covariance = np.cov(acts1, acts2)
    sigmaxx = covariance[:numx, :numx]
    sigmaxy = covariance[:numx, numx:]
    sigmayy = covariance[numx:, numx:]
    # Both maxima are positive: _acts refused layers whose every neuron is constant.
    xmax = np.max(np.abs(sigmaxx))
    ymax = np.max(np.abs(sigmayy))
    sigmaxx = sigmaxx / xmax
    sigmayy = sigmayy / ymax
    sigmaxy = sigmaxy / np.sqrt(xmax * ymax)

    # The largest-variance neuron has relative variance 1 > cut, so neither mask is empty.
    cut = max(epsilon, NUMERICAL_RTOL)
    x_idxs = (np.abs(np.diagonal(sigmaxx)) >= cut) & ~constant_neurons(acts1)
    y_idxs = (np.abs(np.diagonal(sigmayy)) >= cut) & ~constant_neurons(acts2)
    invsqrt_xx = _inv_sqrt(sigmaxx[np.ix_(x_idxs, x_idxs)], epsilon)
    invsqrt_yy = _inv_sqrt(sigmayy[np.ix_(y_idxs, y_idxs)], epsilon)
    sxy = sigmaxy[np.ix_(x_idxs, y_idxs)]
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

    - Neurons with variance below 1e-12 of the layer's largest, or constant to a few
      ulps, are pruned even at ``epsilon=0`` (the original kept them and its SVD failed
      to converge).
    - The inverse square roots come from one eigendecomposition of each (regularised)
      covariance, not ``pinv`` and then a second one: the same matrices, without
      squaring the condition number. Round-off negative eigenvalues are clipped (no
      NaN), and a singular covariance (fewer datapoints than neurons) no longer gives
      coefficients far above 1 (the original: over 100 at ``epsilon=1e-10``).
    - Too few datapoints for the kept neurons (``p + q >= n - 1``) warns with
      :class:`~svcca.SVCCAWarning`: the coefficients are inflated by the shape alone
      (with more neurons than datapoints they are all 1, whatever the data), and the
      warning says what independent data of that shape score. The original returned the
      same numbers silently (it refused only ``acts1`` with more neurons than
      datapoints, by an ``AssertionError``).
    - A layer whose every neuron is constant raises :class:`~svcca.DegenerateError`
      naming ``acts1`` or ``acts2`` (the original raised ``ValueError: too many values
      to unpack``); a constant layer has no similarity to anything, not 0.
    - ``epsilon`` must be in [0, 1) (``ValueError``): it is relative to the largest
      variance, so the original's ``epsilon > 1`` pruned every neuron.
    - NaN or inf raises ``ValueError`` naming the datapoints.
    - ``compute_dirns=True`` with ``compute_coefs=False`` works (original: ``KeyError``).
    - ``cca_coef2`` equals ``cca_coef1``, as in the original (CCA has one set of
      coefficients); ``mean`` is still the *thresholded* mean (see
      :func:`svcca.cca` for the plain mean) and with ``threshold=0`` it is the first
      coefficient (original: NaN).
    - Both inputs, not only ``acts1``, are checked; bad input raises ``ValueError`` with
      a message rather than a bare ``AssertionError``. ``verbose`` prints nothing.
    - Directions (``compute_dirns``) are the canonical variates plus the neuron means,
      exactly as the original computes them.

    Examples
    --------
    The original's ``(neurons, datapoints)`` orientation and keys:

    >>> import numpy as np
    >>> from svcca import compat as cca_core
    >>> rng = np.random.default_rng(0)
    >>> acts1 = rng.standard_normal((20, 1000))
    >>> acts2 = np.tanh(acts1[:10]) + 0.1 * rng.standard_normal((10, 1000))
    >>> results = cca_core.get_cca_similarity(acts1, acts2, epsilon=1e-10, verbose=False)
    >>> results["cca_coef1"].shape
    (10,)
    >>> print(f"{np.mean(results['cca_coef1']):.3f}")
    0.953
    """
    del verbose
    epsilon = check_epsilon(epsilon)
    threshold = check_probability(threshold, "threshold")
    a1, a2 = _acts_pair(acts1, acts2)
    res = _cca(a1, a2, epsilon, threshold, compute_coefs, compute_dirns)
    _warn_few_datapoints(res, a1.shape[1])
    return res


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
    :func:`get_cca_similarity` no longer fails on valid input the retry (up to 5
    times, noise of each input's own shape, fixed seed) is only a safety net for
    ``numpy.linalg.LinAlgError``. A constant layer is refused
    (:class:`~svcca.DegenerateError`), not given noise to correlate, and too few
    datapoints warn, as in :func:`get_cca_similarity`.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca import compat as cca_core
    >>> rng = np.random.default_rng(0)
    >>> acts1 = rng.standard_normal((20, 1000))
    >>> acts2 = np.tanh(acts1[:10]) + 0.1 * rng.standard_normal((10, 1000))
    >>> results = cca_core.robust_cca_similarity(acts1, acts2)
    >>> print(f"{np.mean(results['cca_coef1']):.3f}")
    0.953
    """
    epsilon = check_epsilon(epsilon)
    threshold = check_probability(threshold, "threshold")
    a1, a2 = _acts_pair(acts1, acts2)
    n = a1.shape[1]
    rng = np.random.default_rng(0)
    for trial in range(num_cca_trials):
        try:
            res = _cca(a1, a2, epsilon, threshold, True, compute_dirns)
        except np.linalg.LinAlgError:
            if trial + 1 == num_cca_trials:
                raise
            a1 = a1 * 1e-1 + rng.normal(size=a1.shape) * epsilon
            a2 = a2 * 1e-1 + rng.normal(size=a2.shape) * epsilon
        else:
            _warn_few_datapoints(res, n)
            return res
    raise AssertionError("unreachable")  # pragma: no cover


def compute_pwcca(
    acts1: Any, acts2: Any, epsilon: float = 0.0
) -> tuple[float, np.ndarray, np.ndarray]:
    """Drop-in for ``pwcca.compute_pwcca``: ``(pwcca_mean, weights, coefs)``.

    Same algorithm as the original, including its "directions" (canonical rotations
    applied to un-whitened centred activations, means added back), so the values are
    the original's wherever it ran, sign dependence included. For the definition of
    Morcos et al. 2018 (whitened canonical variates, independent of signs) use
    :func:`svcca.pwcca` on the transposed arrays.

    Differences from the original:

    - When the second input has fewer kept neurons, the original indexed ``acts1`` with
      ``acts2``'s mask (``IndexError`` when the first has more neurons, a silently wrong
      value when the counts are equal); here ``acts2`` is used.
    - The weights project the activations of the layer with fewer kept neurons onto its
      ``k`` canonical directions, which takes at least ``k`` datapoints: with fewer the
      original crashed on a broadcasting error; here a ``ValueError`` says so and what
      to do. With ``p + q >= n - 1`` kept neurons it warns
      (:class:`~svcca.SVCCAWarning`): the coefficients, and so the mean, are inflated,
      and ``p + q - (n - 1)`` of them equal 1, so their canonical directions are any
      basis of a shared subspace and the weights (as the original computes them)
      depend on round-off.
    - A constant layer raises :class:`~svcca.DegenerateError`, and the CCA underneath
      differs from the original's as :func:`get_cca_similarity` lists.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca import compat as pwcca
    >>> rng = np.random.default_rng(0)
    >>> acts1 = rng.standard_normal((20, 1000))
    >>> acts2 = np.tanh(acts1[:10]) + 0.1 * rng.standard_normal((10, 1000))
    >>> pwcca_mean, weights, coefs = pwcca.compute_pwcca(acts1, acts2)
    >>> print(f"{pwcca_mean:.3f}", weights.shape, coefs.shape)
    0.953 (10,) (10,)
    """
    epsilon = check_epsilon(epsilon)
    a1, a2 = _acts_pair(acts1, acts2)
    res = _cca(a1, a2, epsilon, 0.98, True, False)
    if np.sum(res["x_idxs"]) <= np.sum(res["y_idxs"]):
        name, coef, acts, idxs, means, coefs = (
            "acts1",
            res["coef_x"],
            a1,
            res["x_idxs"],
            res["neuron_means1"],
            res["cca_coef1"],
        )
    else:
        name, coef, acts, idxs, means, coefs = (
            "acts2",
            res["coef_y"],
            a2,
            res["y_idxs"],
            res["neuron_means2"],
            res["cca_coef2"],
        )
    k, n = int(np.sum(idxs)), acts.shape[1]
    if n < k:
        raise ValueError(
            f"compute_pwcca needs at least as many datapoints as kept neurons in the layer "
            f"it weights by (the one with fewer): {name} has {k} kept neurons and there are "
            f"{n} datapoints, so its {k} canonical directions span at most {n} dimensions "
            "and the weights are undefined. Use more datapoints than neurons, or reduce "
            "each layer first (e.g. to its top-k singular directions, as SVCCA does: "
            "svcca.svcca(acts1.T, acts2.T, keep=k))."
        )
    _warn_few_datapoints(res, n)
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
    activations, means included, onto the PLS directions (likewise for ``acts2``). A
    constant layer raises :class:`~svcca.DegenerateError` (it has no cross-covariance,
    so every direction would be arbitrary); NaN or inf raises ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca import compat as numpy_pls
    >>> rng = np.random.default_rng(0)
    >>> acts1 = rng.standard_normal((20, 1000))
    >>> acts2 = np.tanh(acts1[:10]) + 0.1 * rng.standard_normal((10, 1000))
    >>> results = numpy_pls.get_pls_similarity(acts1, acts2)
    >>> sorted(results)
    ['eigenvals', 'neuron_coeffs1', 'neuron_coeffs2', 'pls_dirns1', 'pls_dirns2']
    >>> results["eigenvals"].shape
    (10,)
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
    A constant layer raises :class:`~svcca.DegenerateError`; NaN or inf ``ValueError``.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca import compat as numpy_pca
    >>> acts = np.random.default_rng(0).standard_normal((20, 1000))  # (neurons, datapoints)
    >>> results = numpy_pca.get_pca(acts, compute_dirns=True)
    >>> results["eigenvals"].shape, results["pca_dirns"].shape
    ((20,), (20, 1000))
    """
    a = _acts(as_representation(_rows(acts), "acts"), "acts")
    means = np.mean(a, axis=1, keepdims=True)
    cacts = a - means
    U, S, _ = np.linalg.svd(cacts, full_matrices=False)
    out: dict[str, Any] = {"eigenvals": S, "neuron_coefs": U.T}
    if compute_dirns:
        out["pca_dirns"] = U.T @ cacts + means
    return out
