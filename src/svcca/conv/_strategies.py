"""One entry point for comparing convolutional layers with any measure of the library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from svcca._measures import MEASURES, Measure, refusal
from svcca.conv._checks import Layout, as_conv, check_layout, check_same_n
from svcca.conv._dft import fourier_cca

__all__ = ["Strategy", "compare", "conv_refusal", "reduce_pair"]

Strategy = Literal["dft", "flatten", "avgpool", "interpolate"]
_STRATEGIES = ("dft", "flatten", "avgpool", "interpolate")
# The measures "dft" computes per spatial frequency (fourier_cca), and the options each
# gives it by default.
_DFT = {"cca": {}, "svcca": {"keep": 0.99}}


def conv_refusal(m: Measure) -> str | None:
    """Why :func:`compare` cannot serve a registered measure (None: it can, with the
    reduction strategies; ``"dft"`` serves only CCA and SVCCA)."""
    return refusal(m, "conv.compare")


def _measures() -> dict[str, Measure]:
    """The registered measures :func:`compare` serves, by name."""
    return {k: m for k, m in MEASURES.items() if conv_refusal(m) is None}


def _resolve(measure: Any) -> tuple[str, Measure | None, Callable[..., Any]]:
    """``(name, registered measure or None, callable)``."""
    if isinstance(measure, str):
        if measure not in MEASURES:
            raise ValueError(
                f"measure must be one of {sorted(_measures())} (the names of svcca.MEASURES) "
                f"or a callable f(X, Y, **options); got {measure!r}."
            )
        measure = MEASURES[measure]
    if isinstance(measure, Measure):
        why = conv_refusal(measure)
        if why is not None:
            raise ValueError(why)
        return measure.name, measure, measure
    if callable(measure):
        for m in MEASURES.values():  # a library function is its registered measure
            if m.function is measure and not m.fixed and conv_refusal(m) is None:
                return m.name, m, m
        return getattr(measure, "__name__", "measure"), None, measure
    raise ValueError(
        f"measure must be one of {sorted(_measures())} or a callable f(X, Y, **options); "
        f"got {measure!r}."
    )


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` linear interpolation with pixel centres aligned (half-pixel rule)."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    R = np.zeros((n_out, n_in))
    np.add.at(R, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(R, (np.arange(n_out), hi), frac)
    return R


def _interpolate(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(n, h, w, c)`` maps to ``size`` (unchanged axes are not touched)."""
    out = a
    if a.shape[1] != size[0]:
        Rh = _resize_matrix(a.shape[1], size[0])
        out = np.moveaxis(np.tensordot(Rh, out, axes=(1, 1)), 0, 1)
    if a.shape[2] != size[1]:
        Rw = _resize_matrix(a.shape[2], size[1])
        out = np.moveaxis(np.tensordot(Rw, out, axes=(1, 2)), 0, 2)
    return out


def _spatial(a: np.ndarray) -> tuple[int, int]:
    return int(a.shape[1]), int(a.shape[2])


def reduce_pair(
    A: Any,
    B: Any,
    *,
    strategy: Literal["flatten", "avgpool", "interpolate"],
    layout: Layout | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D representations a spatial strategy turns two layers into.

    ``"flatten"``: every spatial position becomes a datapoint, ``(n*h*w, c)`` (same
    spatial size needed). ``"avgpool"``: the mean over space, ``(n, c)``.
    ``"interpolate"``: the smaller map is resized bilinearly to the larger size along
    each axis, then flattened as above.

    Parameters
    ----------
    A, B : array_like, shape (n, h, w, c) or (n, c, h, w)
        Two conv layers' activations on the same ``n`` datapoints (``"avgpool"`` also
        takes ``(n, c)``).
    strategy : {"flatten", "avgpool", "interpolate"}
    layout : {"nhwc", "nchw"}, optional
        Where the channels are: required for 4-D maps (``None`` takes only the 2-D
        input ``"avgpool"`` allows).

    Returns
    -------
    a, b : ndarray
        ``(n*h*w, c_a)`` and ``(n*h*w, c_b)`` (``"flatten"``, ``"interpolate"``), or
        ``(n, c_a)`` and ``(n, c_b)`` (``"avgpool"``), float64: what
        :func:`svcca.conv.compare` hands the measure.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca.conv import reduce_pair
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((10, 4, 4, 3))  # (n, h, w, c)
    >>> B = rng.standard_normal((10, 2, 2, 5))
    >>> a, b = reduce_pair(A, B, strategy="interpolate", layout="nhwc")
    >>> a.shape, b.shape
    ((160, 3), (160, 5))
    >>> a, b = reduce_pair(A, B, strategy="avgpool", layout="nhwc")
    >>> a.shape, b.shape
    ((10, 3), (10, 5))
    """
    layout = check_layout(layout)
    dense_ok = strategy == "avgpool"
    a = as_conv(A, "A", layout, allow_dense=dense_ok)
    b = as_conv(B, "B", layout, allow_dense=dense_ok)
    n = check_same_n(a, b)
    if strategy == "avgpool":
        return a.mean(axis=(1, 2), dtype=np.float64), b.mean(axis=(1, 2), dtype=np.float64)
    sa, sb = _spatial(a), _spatial(b)
    if strategy == "flatten":
        if sa != sb:
            raise ValueError(
                f"strategy='flatten' treats each spatial position as a datapoint, so both "
                f"maps need the same spatial size; got {sa} and {sb} (height, width). Use "
                "strategy='interpolate' to resize the smaller map, 'avgpool', or 'dft'."
            )
    elif strategy == "interpolate":
        size = (max(sa[0], sb[0]), max(sa[1], sb[1]))
        a, b = _interpolate(a, size), _interpolate(b, size)
    else:
        raise ValueError(f"strategy must be one of {list(_STRATEGIES)}; got {strategy!r}.")
    flat_a = np.reshape(a, (n * a.shape[1] * a.shape[2], a.shape[3]))
    flat_b = np.reshape(b, (n * b.shape[1] * b.shape[2], b.shape[3]))
    return flat_a, flat_b


def compare(
    A: Any,
    B: Any,
    *,
    strategy: Strategy = "dft",
    measure: str | Measure | Callable[..., Any] = "cca",
    layout: Layout | None = None,
    **options: Any,
) -> Any:
    """Compare two convolutional layers with a chosen spatial strategy and measure.

    Parameters
    ----------
    A : array_like, shape (n, h1, w1, c1) (``(n, c1, h1, w1)`` with ``layout="nchw"``)
    B : array_like, shape (n, h2, w2, c2)
        Activations of the same ``n`` datapoints. A 2-D ``(n, d)`` array (a dense layer
        or a single output neuron) is accepted by ``"dft"`` (compared on the DC
        component) and ``"avgpool"``.
    strategy : {"dft", "flatten", "avgpool", "interpolate"}, default "dft"
        ``"dft"``: :func:`svcca.conv.fourier_cca` (CCA per spatial frequency; exact
        for translation-invariant data). ``"flatten"``: every position is a datapoint,
        ``(n*h*w, c)``; needs equal spatial sizes. ``"avgpool"``: mean over space,
        ``(n, c)``. ``"interpolate"``: resize the smaller map bilinearly to the larger
        size, then flatten.
    measure : str, Measure or callable, default "cca"
        A name of :data:`svcca.MEASURES` (``"cka_linear"``, ``"cka_rbf"``, ``"rsa"``,
        ``"regression"``, ... and a measure you registered; ``svcca measures`` lists
        them), a :class:`svcca.Measure`, or any ``f(X, Y, **options)`` on ``(n, p)``,
        ``(n, q)`` arrays. ``"dft"`` supports ``"cca"`` and ``"svcca"`` only; a
        minibatch measure is refused (it accumulates over a model's batches).
    layout : {"nhwc", "nchw"}
        Axis order of both inputs, required for 4-D maps (never guessed; PyTorch and
        :func:`svcca.torch.capture` give ``"nchw"``).
    **options
        The measure's parameters (a registered measure checks them: ``bandwidth=0.5``
        for ``"cka_rbf"``); for ``"dft"``: :func:`svcca.conv.fourier_cca`'s, e.g.
        ``keep=0.99`` for SVCCA, ``epsilon``.

    Returns
    -------
    result
        The measure's own result (``.score`` for every measure of the library);
        :class:`~svcca.conv.FourierCCAResult` for ``"dft"``.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca.conv import compare
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((300, 6, 6, 4))
    >>> B = A @ rng.standard_normal((4, 4))
    >>> round(compare(A, B, strategy="avgpool", measure="cca", layout="nhwc").score, 6)
    1.0
    """
    if strategy not in _STRATEGIES:
        raise ValueError(
            f"strategy must be one of {list(_STRATEGIES)}; got {strategy!r}. 'dft' is the "
            "Fourier CCA of the SVCCA paper; the others reduce both layers to 2-D arrays."
        )
    name, m, fn = _resolve(measure)
    if strategy == "dft":
        if name not in _DFT or (m is None and fn is not MEASURES[name].function):
            raise ValueError(
                f"strategy='dft' computes CCA per spatial frequency and supports measure='cca' "
                f"or 'svcca' only; got measure={name!r}. Use strategy='flatten', 'avgpool' or "
                "'interpolate' for other measures."
            )
        return fourier_cca(A, B, layout=layout, **{**_DFT[name], **options})
    X, Y = reduce_pair(A, B, strategy=strategy, layout=layout)
    if m is not None:
        m.check_params(options)
        _plan_sides(m, X, Y, strategy, options)
    return fn(X, Y, **options)


def _plan_sides(m: Measure, X: np.ndarray, Y: np.ndarray, strategy: str, options: Any) -> None:
    """Refuse a split measure whose two prepared sides (an ``n x n`` Gram matrix or RDM
    of every position of every datapoint, for ``"flatten"``) do not fit in half the free
    memory, before any is made."""
    if m.prepare is None:
        return
    from svcca._device import DeviceMemoryError, format_bytes, free_bytes

    n = X.shape[0]
    need = m.prepared_bytes(n, X.shape[1], **options) + m.prepared_bytes(n, Y.shape[1], **options)
    free = free_bytes(None)
    if need > 0.5 * free:
        raise DeviceMemoryError(
            f"conv.compare with measure={m.name!r} and strategy={strategy!r} compares {n} "
            f"datapoints (every spatial position is one), whose two prepared sides take "
            f"{format_bytes(need)}; {format_bytes(free)} is free (half of it may hold them). "
            "Use strategy='avgpool' (one datapoint per input), fewer inputs, or a moments "
            "measure such as 'cka_linear' (memory constant in the datapoints)."
        )
