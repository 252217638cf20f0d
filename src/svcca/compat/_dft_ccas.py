"""Drop-in for google/svcca's ``dft_ccas.fourier_ccas``, which could not run."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from svcca._validation import SVCCAWarning, raise_degenerate, warn_few_samples
from svcca.compat._cca_core import constant_neurons, sum_threshold
from svcca.conv import (
    FourierMoments,
    Grid,
    as_conv,
    check_same_n,
    fourier_moments,
    raise_nonfinite_conv,
)

__all__ = ["fourier_ccas"]


def _inv_sqrt(S: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Batched Hermitian ``S^{-1/2}`` on the kept features (pseudo-inverse on a null space)."""
    S = S * (kept[:, :, None] & kept[:, None, :])
    w, V = np.linalg.eigh(S)
    tol = np.maximum(w[:, -1:], 0.0) * S.shape[-1] * np.finfo(np.float64).eps
    ok = w > tol
    scale = np.where(ok, 1.0 / np.sqrt(np.where(ok, w, 1.0)), 0.0)
    return np.matmul(V * scale[:, None, :], np.conj(V.transpose(0, 2, 1)))


def _kept(S: np.ndarray) -> np.ndarray:
    """Features with power at each frequency (epsilon is 0).

    A channel's power at a frequency counts when it is at least 1e-12 of the layer's
    largest at any frequency: measured against the largest at the same frequency, the
    FFT's round-off at a frequency where the layer has no power (spatially constant
    maps, say) would pass for signal and give correlations of noise.
    """
    var = np.real(np.diagonal(S, axis1=1, axis2=2))
    return var > 1e-12 * var.max()


def _per_location(m: FourierMoments, compute_dirns: bool, A: Any, B: Any) -> list[dict]:
    """The original's ``get_cca_similarity`` dict for every representative frequency."""
    grid: Grid = m.grid
    n = m.n
    kx, ky = _kept(m.sxx), _kept(m.syy)
    # np.cov conjugates its second argument: the original's blocks are conj(X^H Y) etc.
    # It then rescales each location's covariances by their largest magnitude.
    sxx, syy, sxy = (np.conj(s) / (n - 1) for s in (m.sxx, m.syy, m.sxy))
    xmax = np.abs(sxx).max(axis=(1, 2))[:, None, None]
    ymax = np.abs(syy).max(axis=(1, 2))[:, None, None]
    xmax, ymax = np.where(xmax > 0, xmax, 1.0), np.where(ymax > 0, ymax, 1.0)
    ixx, iyy = _inv_sqrt(sxx / xmax, kx), _inv_sqrt(syy / ymax, ky)
    arr = np.matmul(np.matmul(ixx, sxy / np.sqrt(xmax * ymax)), iyy)
    u, s, vh = np.linalg.svd(arr, full_matrices=True)
    means_x = m.dft_x.apply(m.mean_x[None], None)[:, 0, :]  # (R, c1) Fourier means
    means_y = m.dft_y.apply(m.mean_y[None], None)[:, 0, :]
    if compute_dirns:
        # Canonical variates u_i^H S_xx^{-1/2} (x - mean) over the datapoints, for the
        # centred (c, datapoints) coefficients x, in the original's rescaled basis.
        Xt = m.dft_x.apply(A, m.mean_x).transpose(0, 2, 1)  # (R, c1, n)
        Yt = m.dft_y.apply(B, m.mean_y).transpose(0, 2, 1)
        dirns1 = np.matmul(np.matmul(np.conj(u.transpose(0, 2, 1)), ixx), Xt)
        dirns2 = np.matmul(np.matmul(vh, iyy), Yt)
    out = []
    for r in range(grid.n_reps):  # building the per-location rows (no linear algebra here)
        xm, ym = kx[r], ky[r]
        nx, ny = int(xm.sum()), int(ym.sum())
        k = min(nx, ny)
        coefs = np.clip(s[r, :k], 0.0, 1.0)
        ux = u[r][np.ix_(xm, xm)].T
        vy = vh[r][np.ix_(ym, ym)]
        d: dict[str, Any] = {
            "coef_x": ux,
            "invsqrt_xx": ixx[r][np.ix_(xm, xm)],
            "full_coef_x": _place(ux, xm),
            "full_invsqrt_xx": _place(ixx[r][np.ix_(xm, xm)], xm),
            "coef_y": vy,
            "invsqrt_yy": iyy[r][np.ix_(ym, ym)],
            "full_coef_y": _place(vy, ym),
            "full_invsqrt_yy": _place(iyy[r][np.ix_(ym, ym)], ym),
            "neuron_means1": means_x[r][:, None],
            "neuron_means2": means_y[r][:, None],
            "cca_coef1": coefs,
            "cca_coef2": coefs,
            "x_idxs": xm.copy(),
            "y_idxs": ym.copy(),
        }
        idx = sum_threshold(coefs, 0.98)
        # No power on one side at this frequency: no correlation to report (not 0).
        mean = np.float64(np.mean(coefs[:idx])) if k else np.float64(np.nan)
        total = np.float64(np.sum(coefs)) if k else np.float64(np.nan)
        d["mean"] = (mean, mean)
        d["sum"] = (total, total)
        if compute_dirns:
            d["cca_dirns1"] = dirns1[r]
            d["cca_dirns2"] = dirns2[r]
        out.append(d)
    return out


def _place(block: np.ndarray, mask: np.ndarray) -> np.ndarray:
    full = np.zeros((mask.size, mask.size), dtype=block.dtype)
    full[np.ix_(mask, mask)] = block
    return full


def _mirror(d: dict[str, Any]) -> dict[str, Any]:
    """The result at the mirror frequency: every complex quantity conjugated."""
    return {
        k: (np.conj(v) if isinstance(v, np.ndarray) and np.iscomplexobj(v) else v)
        for k, v in d.items()
    }


def fourier_ccas(
    conv_acts1: Any,
    conv_acts2: Any,
    return_coefs: bool = False,
    compute_dirns: bool = False,
    verbose: bool = False,
) -> Any:
    """google/svcca's ``dft_ccas.fourier_ccas``: one CCA per spatial frequency location.

    Parameters
    ----------
    conv_acts1 : array_like, shape (datapoints, h1, w1, c1)
    conv_acts2 : array_like, shape (datapoints, h2, w2, c2)
        The original's conv orientation (datapoints first, channels last).
    return_coefs : bool, default False
        Keep ``coef_x`` / ``coef_y`` (the per-location singular vectors, in the whitened
        basis) in each row; otherwise they are dropped, as the original intended.
    compute_dirns : bool, default False
        Add ``cca_dirns1`` / ``cca_dirns2``: each location's canonical variates over the
        datapoints, ``(c, datapoints)`` complex.
    verbose : bool, default False
        Accepted for compatibility; nothing is printed.

    Returns
    -------
    pandas.DataFrame or list of dict
        One row per location ``(i, j)`` of the ``min(h1, h2) x min(w1, w2)`` frequency
        grid (row-major), with the keys of the original's ``get_cca_similarity``
        (``cca_coef1``, ``mean``, ``sum``, ``x_idxs``, ...) plus ``location``. A
        DataFrame when pandas is installed, else a list of dicts.

    Notes
    -----
    The numbers are those the original would have produced had it run: google/svcca's
    reference outputs (case 7: equal sizes and a 2x cropped map) are reproduced to 1e-7
    (measured 3.4e-8) against its run on NumPy 2 (complex64 FFT) and to 1e-12 (measured
    1.5e-14) against the same code with a complex128 FFT, which is what this function
    computes. It runs on
    :func:`svcca.conv.fourier_cca`'s batched machinery: the two maps are transformed once,
    only one of each pair of mirror frequencies is solved, and rows for the mirror are
    the complex conjugates.

    Differences from the original, which raised before returning anything:

    - complex coefficients are handled (``np.place`` into a float array crashed);
    - ``compute_dirns`` is a keyword, not the ``epsilon`` slot: ``epsilon`` is 0, except
      that channels with no power at a frequency (below 1e-12 of the layer's largest
      power at any frequency) are dropped there instead of making the SVD fail; a
      location where one layer has no power at all has no correlation: its row has an
      empty ``cca_coef1`` and NaN ``mean`` and ``sum`` (not 0), with an
      :class:`~svcca.SVCCAWarning`;
    - a layer whose every neuron is constant over the datapoints raises
      :class:`~svcca.DegenerateError` naming ``conv_acts1`` or ``conv_acts2``; NaN or
      inf raises ``ValueError``; too few datapoints for the channels compared at a
      frequency (``c1 + c2 >= n - 1``) warns that the coefficients are inflated;
    - the keys it read (``neuron_coeffs1/2``) never existed; the real ``coef_x/coef_y``
      are kept or dropped, and never passed through ``ifft2``;
    - ``cca_dirns`` are the canonical variates of the centred coefficients (the original
      added the means back and, for complex input, missed a conjugate), not ``ifft2``-ed
      over the wrong axes;
    - ``fft_resize`` cropped both axes with the width's indices (square maps only); here
      each axis keeps its own shared frequencies, so non-square maps work;
    - the FFT is complex128 (the original's complex64 cast lost about 3e-8).

    Examples
    --------
    >>> import numpy as np
    >>> from svcca.compat import fourier_ccas
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((300, 4, 4, 3))
    >>> rows = fourier_ccas(A, A @ rng.standard_normal((3, 2)))
    >>> len(rows), [round(float(c), 6) for c in rows["cca_coef1"][0]]
    (16, [1.0, 1.0])
    """
    del verbose
    a = as_conv(conv_acts1, "conv_acts1", "nhwc", allow_dense=False)
    b = as_conv(conv_acts2, "conv_acts2", "nhwc", allow_dense=False)
    check_same_n(a, b, ("conv_acts1", "conv_acts2"))
    for name, arr in (("conv_acts1", a), ("conv_acts2", b)):
        flat = arr.reshape(arr.shape[0], -1)
        if not np.isfinite(flat).all():
            raise_nonfinite_conv(arr, name)
        if constant_neurons(flat.T).all():
            raise_degenerate(name, flat.shape[1], "every neuron is constant over the datapoints")
    m = fourier_moments(a, b)
    kx, ky = _kept(m.sxx).sum(axis=1), _kept(m.syy).sum(axis=1)
    warn_few_samples(m.n, int(kx.max()), int(ky.max()))
    silent = int(((kx == 0) | (ky == 0))[m.grid.loc_rep].sum())
    if silent:
        warnings.warn(
            f"{silent} of the {m.grid.loc_rep.size} frequency locations have no power in "
            "one of the layers (e.g. spatially constant maps), so they have no canonical "
            "correlation: their rows have empty cca_coef1 and NaN mean and sum (use "
            "np.nanmean to pool the others).",
            SVCCAWarning,
            stacklevel=2,
        )
    reps = _per_location(m, compute_dirns, a, b)
    H, W = m.grid.shape
    rows = []
    for i in range(H):
        for j in range(W):
            r = int(m.grid.loc_rep[i, j])
            d = _mirror(reps[r]) if m.grid.loc_conj[i, j] else dict(reps[r])
            if not return_coefs:
                del d["coef_x"], d["coef_y"]
            d["location"] = (i, j)
            rows.append(d)
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)
