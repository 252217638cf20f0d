"""Input checks for the public API, in one place.

Every public function validates its inputs here, once, at the boundary; private
helpers trust what they are given. Messages say what was expected, what arrived and
how to fix it.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NoReturn, get_args

import numpy as np

__all__ = [
    "DegenerateError",
    "InputFileError",
    "SVCCAWarning",
    "as_representation",
    "check_bool",
    "check_chunk_size",
    "check_epsilon",
    "check_int",
    "check_keep",
    "check_keep_fits",
    "check_option",
    "check_pair",
    "check_precision",
    "check_probability",
    "check_readable",
    "check_real",
    "check_unmasked",
    "few_samples_message",
    "precision_dtype",
    "precision_eps",
    "is_sparse",
    "is_torch_tensor",
    "tensor_representation",
    "raise_degenerate",
    "nonfinite_error",
    "raise_nonfinite",
    "tensor_to_numpy",
    "warn_few_samples",
]


class InputFileError(ValueError):
    """A file the library reads itself changed under it (shrank during the run)."""


class SVCCAWarning(UserWarning):
    """Warning about a comparison whose result may mislead (e.g. too few samples)."""


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return type(x).__name__


def tensor_representation(t: Any, name: str) -> Any:
    """``t`` (a torch tensor) checked as :func:`as_representation` checks an array (2-D,
    real, not empty), detached and left on its device in its own dtype."""
    if t.is_complex():
        raise TypeError(
            f"{name} must hold real numbers; got dtype {t.dtype}. Complex data is only "
            "meaningful for the Fourier path: use svcca.conv."
        )
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got a {t.ndim}-D tensor of shape "
            f"{tuple(t.shape)}. Reshape it to (n_samples, n_features)."
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {tuple(t.shape)}); it needs at least one sample and "
            "one feature."
        )
    return t.detach()


def is_torch_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch (``sys.modules`` only)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def tensor_to_numpy(x: Any) -> Any:
    """A torch tensor as a host NumPy array; anything else is returned unchanged.

    The one place a tensor becomes NumPy: it is detached (``requires_grad`` tensors are
    read, never differentiated through), conjugate/negative views are resolved, and it
    is copied to the host. ``bfloat16`` has no NumPy dtype, so it is upcast to float32
    on the tensor's side first; that is exact (a bfloat16 is a float32 with a shorter
    significand). float16 keeps NumPy's float16. The measures accumulate in float64.
    """
    if not is_torch_tensor(x):
        return x
    torch = sys.modules["torch"]
    t = x.detach()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    return t.resolve_conj().resolve_neg().cpu().numpy()


def as_representation(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D numeric NumPy array ``(n_samples, n_features)`` without copying.

    Accepts anything ``np.asarray`` turns into a real numeric array (lists, NumPy arrays,
    ``np.memmap``) and torch tensors (through :func:`tensor_to_numpy`: detached, on the
    host, bfloat16 as float32). Integer, boolean, float16 and float32 data are accepted;
    the computations accumulate in float64 chunk by chunk, so no float64 copy of the
    whole array is made here. A masked array with masked values
    (:func:`check_unmasked`), a scipy sparse matrix and an iterator are refused with
    their fixes (``np.asarray`` would read them wrongly or as objects).
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(
            f"{name} must be an array of shape (n_samples, n_features); got {_describe(x)}."
        )
    x = check_unmasked(x, name)
    check_readable(x, name)
    try:
        arr = np.asarray(tensor_to_numpy(x))
    except (InputFileError, OSError):  # a file read by the library: its own message
        raise
    except Exception as exc:  # ragged lists and the like
        raise TypeError(
            f"{name} could not be converted to a numeric array ({exc}). Pass a rectangular "
            "array of shape (n_samples, n_features)."
        ) from exc
    if arr.dtype == np.bool_:
        # 0/1 as uint8, a view (no copy): every measure's arithmetic works on it, while
        # NumPy refuses some operations on booleans (subtraction)
        arr = arr.view(np.uint8)
    if arr.dtype.kind not in "biuf":
        hint = (
            " Complex data is only meaningful for the Fourier path: use svcca.conv."
            if arr.dtype.kind == "c"
            else " Convert it with np.asarray(..., dtype=float)."
        )
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}.{hint}")
    if arr.ndim != 2:
        if arr.ndim == 1:
            fix = "Reshape a single feature with x.reshape(-1, 1)."
        elif arr.ndim == 4:
            fix = (
                "Convolutional activations (n, h, w, c) go through svcca.conv, or reshape "
                "them to (n, h*w*c) to flatten all neurons."
            )
        else:
            fix = "Reshape it to (n_samples, n_features)."
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got a {arr.ndim}-D array of shape "
            f"{arr.shape}. {fix}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} is empty (shape {arr.shape}); it needs at least one sample and one feature."
        )
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:  # long double: wider than float64
        finite = np.isfinite(arr)
        big = np.abs(np.where(finite, arr, 0)) > np.finfo(np.float64).max
        if big.any():
            top = float(np.log10(np.abs(arr[big]).max()))
            raise ValueError(
                f"{name} holds {arr.dtype} values up to 1e{top:.0f}, beyond float64's range "
                "(1.8e308), in which svcca computes: they are not NaN or inf, but cannot be "
                f"held. Rescale {name} (every scale-invariant measure scores c * X as X)."
            )
    return arr


def check_unmasked(x: Any, name: str, first_row: int = 0) -> Any:
    """``x``, or its data when ``x`` is a NumPy masked array with nothing masked.

    A mask is never applied silently: rows must stay aligned across two
    representations, so dropping masked rows on one side would misalign the other, and
    ``np.asarray`` would read the masked values as if they were data. A masked array
    with masked entries is refused with both fixes; one whose mask is empty is its data.
    ``first_row`` numbers the rows of a block within its whole array.
    """
    if not isinstance(x, np.ma.MaskedArray):
        return x
    mask = np.ma.getmaskarray(x)
    if not mask.any():
        return x.data
    rows = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1) if mask.ndim else mask)
    shown = (rows[:5] + first_row).tolist()
    raise ValueError(
        f"{name} is a NumPy masked array with {int(mask.sum())} masked values in "
        f"{len(rows)} rows (first: {shown}); the measures read every value, so they "
        "cannot honour a mask. Drop those datapoints from every representation alike, "
        "e.g. keep = ~(X.mask.any(axis=1) | Y.mask.any(axis=1)); X, Y = X[keep].data, "
        "Y[keep].data, or fill the masked values with X.filled(value)."
    )


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy sparse matrix or array (``sys.modules`` only)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(x))


def check_readable(x: Any, name: str) -> None:
    """Refuse, with the fix, inputs that ``np.asarray`` would turn into an object array:
    scipy sparse matrices and iterators of batches (where a whole array is needed)."""
    if is_sparse(x):
        raise TypeError(
            f"{name} is a scipy.sparse {type(x).__name__} of shape {x.shape}; the measures "
            "need dense rows. Pass X.toarray() (memory n_samples x n_features), or "
            "densify it in row blocks and give an iterator of blocks to a Moments-based "
            "measure (cca, svcca, pwcca, pls, pca, linear cka, procrustes, regression)."
        )
    if isinstance(x, Iterator):
        raise TypeError(
            f"{name} is an iterator ({type(x).__name__}); this function needs the whole "
            "array (n_samples, n_features). Iterators of batches are read in one pass by "
            "the Moments-based measures (cca, svcca, pwcca, pls, pca, linear cka, "
            "procrustes, regression) and by svcca.Moments.from_batches; elsewhere stack "
            "the batches first: np.concatenate(list(batches))."
        )


def check_pair(
    x: Any, y: Any, names: tuple[str, str] = ("X", "Y")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two representations of the same datapoints."""
    a = as_representation(x, names[0])
    b = as_representation(y, names[1])
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must describe the same datapoints: {names[0]} has "
            f"{a.shape[0]} samples (rows) and {names[1]} has {b.shape[0]}. Arrays are "
            "(n_samples, n_features); if yours are (neurons, datapoints) as in the original "
            "google/svcca code, pass their transposes or use svcca.compat."
        )
    return a, b


def nonfinite_error(
    name: str,
    rows: Sequence[int] | np.ndarray,
    *,
    count: int | None = None,
    of: int | None = None,
    unit: str = "rows",
    within: tuple[int, int] | None = None,
    where: str = "",
) -> ValueError:
    """THE error for NaN or inf in a representation: every path words it here.

    ``rows``: the first offending rows (datapoints), numbered in the whole data as the
    user gave it; ``count`` of ``of``: how many there are in the whole data, when it
    was all scanned; ``unit``: what a row is called (``"samples"`` for conv maps,
    ``"datapoints"`` for the columns of the google/svcca orientation); ``where``: the
    context (``" (batch 3)"``); ``within``: the chunk of rows that was scanned.
    """
    shown = [int(r) for r in list(rows)[:5]]
    if count is not None and of is not None:
        what = f"{count} of its {of} {unit} (first: {shown})"
    else:
        span = "" if within is None else f"; of {unit} {within[0]}:{within[1]}"
        what = f"{unit} {shown} (first shown{span})"
    return ValueError(
        f"{name} contains NaN or inf in {what}{where}. Remove or impute those {unit} in "
        "every representation before comparing: similarity of non-finite values is "
        "undefined (for activations: check that batch's inputs and the model's numerics, "
        "e.g. run it in float32 rather than float16)."
    )


def raise_nonfinite(
    full: Any,
    name: str,
    *,
    first_row: int | None = None,
    unit: str = "rows",
    within: tuple[int, int] | None = None,
    where: str = "",
) -> NoReturn:
    """Raise :func:`nonfinite_error` naming the rows of ``full`` (an array, or a tensor
    scanned on its device) that hold NaN or inf.

    ``full`` is the whole data, unless ``first_row`` says it is a chunk starting at that
    row (the rows are then numbered from it, and not counted against a total). Called
    only once the data have been seen to be non-finite, so the scan costs nothing on
    valid data.
    """
    if is_torch_tensor(full):
        torch = sys.modules["torch"]
        ok = torch.isfinite(full).reshape(full.shape[0], -1).all(dim=1).cpu().numpy()
    else:
        a = np.asarray(full)
        ok = np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    bad = np.flatnonzero(~ok)
    if first_row is None:
        raise nonfinite_error(name, bad, count=bad.size, of=ok.size, unit=unit, where=where)
    raise nonfinite_error(name, bad + first_row, unit=unit, within=within, where=where)


# ---------------------------------------------------------------------- argument checks
# Every knob of the public API goes through one of these, so every message has the same
# form: "<name> must be <expected>; got <value>. <how to fix>".


def _fail(exc: type[Exception], name: str, expected: str, got: Any, fix: str = "") -> NoReturn:
    raise exc(f"{name} must be {expected}; got {got!r}." + (f" {fix}" if fix else ""))


def check_int(
    value: Any, name: str, *, minimum: int = 1, maximum: int | None = None, fix: str = ""
) -> int:
    """An integer (not a bool) in ``[minimum, maximum]``."""
    expected = f"an int >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        _fail(TypeError, name, expected, value, fix)
    v = int(value)
    if v < minimum or (maximum is not None and v > maximum):
        _fail(ValueError, name, expected, value, fix)
    return v


def check_real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    fix: str = "",
) -> float:
    """A finite real number (not a bool) in the interval from ``low`` to ``high``.

    ``low_open`` / ``high_open`` exclude the end points, as scikit-learn's ``Interval``.
    """
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is None and high is None:
        expected = "a finite number"
    elif high is None:
        expected = f"a number {'>' if low_open else '>='} {low:g}"
    elif low is None:
        expected = f"a number {'<' if high_open else '<='} {high:g}"
    else:
        expected = f"a number in {lo}, {hi}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        _fail(TypeError, name, expected, value, fix)
    v = float(value)
    bad = not np.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        _fail(ValueError, name, expected, value, fix)
    return v


def check_option(value: Any, name: str, options: Any, fix: str = "") -> str:
    """One of the strings ``options`` (a tuple, or a ``Literal[...]`` type)."""
    choices = tuple(get_args(options)) if get_args(options) else tuple(options)
    if not isinstance(value, str) or value not in choices:
        _fail(ValueError, name, "one of " + ", ".join(repr(c) for c in choices), value, fix)
    return value


Precision = Literal["float64", "float32"]


def check_precision(value: Any) -> Precision:
    """``"float64"`` (the default everywhere) or ``"float32"`` (float32 products, float64 sums)."""
    return check_option(  # type: ignore[return-value]
        value,
        "precision",
        Precision,
        "float32 halves the cost of the cross-products of float32 activations; see "
        "svcca.Moments for its accuracy.",
    )


def precision_dtype(precision: Precision) -> np.dtype:
    """The dtype products are taken in at ``precision``."""
    return np.dtype(np.float32 if precision == "float32" else np.float64)


def precision_eps(precision: Precision) -> float:
    """Unit round-off of the products taken at ``precision`` (2^-52 or 2^-23)."""
    return float(np.finfo(precision_dtype(precision)).eps)


def check_bool(value: Any, name: str) -> bool:
    """``True`` or ``False`` (NumPy booleans included)."""
    if not isinstance(value, (bool, np.bool_)):
        _fail(TypeError, name, "True or False", value)
    return bool(value)


def check_keep(keep: Any, name: str = "keep") -> float | int:
    """SVCCA's ``keep``: a float fraction in (0, 1) or an int count >= 1.

    As scikit-learn's ``PCA(n_components=...)``: ``keep=0.99`` keeps the fewest leading
    directions explaining 99% of the variance, ``keep=20`` keeps 20. ``keep=1.0`` is
    refused rather than read as "everything" (next to ``keep=1``, one direction), as a
    count above a layer's features is (:func:`check_keep_fits`, once the width is known).
    """
    fix = (
        "Pass a fraction such as 0.99 (share of variance) or an int count such as 20; to "
        "keep every direction, use svcca.cca (CCA of the whole layers)."
    )
    if isinstance(keep, (bool, np.bool_)) or not isinstance(keep, numbers.Real):
        _fail(TypeError, name, "a float in (0, 1) or an int >= 1", keep, fix)
    if isinstance(keep, numbers.Integral):
        return check_int(keep, name, minimum=1, fix=fix)
    return check_real(keep, name, low=0.0, high=1.0, low_open=True, high_open=True, fix=fix)


def check_keep_fits(keep: float | int, p: int, name: str) -> None:
    """Refuse a count ``keep`` above the ``p`` features of representation ``name``.

    One rule with :func:`check_keep`'s refusal of ``keep=1.0``: ``keep`` may not ask for
    more than a layer has. (A count within ``p`` but above the numerical rank keeps
    every direction with variance, with a warning: how many there are depends on the
    data.)
    """
    if isinstance(keep, int) and keep > p:
        raise ValueError(
            f"keep={keep} asks for more directions than representation {name} has features "
            f"({p}). Pass a count <= {p}, a fraction such as 0.99 (share of the variance: "
            "it adapts to each layer's width), or compare the whole layers with CCA "
            "(svcca.cca, --measure cca)."
        )


def check_epsilon(epsilon: Any) -> float:
    """The pruning threshold: a relative variance in [0, 1)."""
    return check_real(
        epsilon,
        "epsilon",
        low=0.0,
        high=1.0,
        high_open=True,
        fix="It is the variance, relative to the layer's largest, below which a neuron is "
        "pruned (google/svcca used 1e-10; 0 prunes only numerically constant neurons).",
    )


def check_probability(value: Any, name: str) -> float:
    """A real number in [0, 1]."""
    return check_real(value, name, low=0.0, high=1.0)


def check_chunk_size(value: Any, name: str = "chunk_size") -> int | None:
    """Rows per chunk: None (chosen from the widths) or an int >= 1."""
    if value is None:
        return None
    return check_int(value, name, minimum=1, fix="Pass None to choose it from the widths.")


# ---------------------------------------------------------------------- trust in a result
class DegenerateError(ValueError):
    """A representation with nothing left to compare (constant, or every neuron pruned).

    A similarity of nothing is not 0: the measures refuse such a layer instead of
    scoring it.
    """


def raise_degenerate(name: str, p: int | None, detail: str, fix: str = "") -> NoReturn:
    """Refuse representation ``name`` (``p`` features, when known) with what was left of it.

    ``fix`` is the measure's own advice beyond dropping the layer (e.g. lowering
    ``epsilon`` where that measure pruned neurons with it); none is given for knobs the
    measure does not have.
    """
    what = f"Representation {name}" + ("" if p is None else f" ({p} features)")
    raise DegenerateError(
        f"{what} has nothing to compare: {detail}. A constant or dead layer has no "
        "similarity to anything (it is not 0): drop it from the comparison"
        + (f", or {fix}" if fix else "")
        + "."
    )


def few_samples_message(n: int, p: int, q: int) -> str | None:
    """Why a CCA-family score of ``p`` and ``q`` dimensions on ``n`` samples is inflated.

    After centring, two representations span subspaces of dimensions ``p`` and ``q`` of
    an ``(n - 1)``-dimensional space; when ``p + q >= n - 1`` those subspaces must meet
    in ``p + q - (n - 1)`` dimensions (correlations of exactly 1, or nearly so, whatever
    the data), and even independent data score high. For independent Gaussian data the
    expected mean *squared* canonical correlation is ``max(p, q) / (n - 1)`` (the
    expected trace of a product of two random projections, ``p q / (n - 1)``, over
    ``min(p, q)`` correlations). Returns None when the dimensions leave enough samples.
    """
    if p + q < n - 1:
        return None
    span = n - 1  # each side spans at most n - 1 dimensions after centring
    forced = max(min(p, span) + min(q, span) - span, 0)
    null = min(max(p, q) / max(n - 1, 1), 1.0)
    return (
        f"{n} samples for {p} and {q} dimensions: with p + q >= n - 1 the canonical "
        f"correlations are inflated by the shape alone ({forced} of them equal 1 whatever "
        f"the data) and independent data of this shape score a mean squared correlation "
        f"of {null:.2f}. Use several times more datapoints than dimensions, reduce each "
        "side first (svcca.svcca with a small keep count), or compare against "
        "svcca.stats.null_baseline."
    )


def warn_few_samples(n: int, p: int, q: int, *, stacklevel: int = 3) -> None:
    """Warn (:class:`SVCCAWarning`) when :func:`few_samples_message` has a reason."""
    msg = few_samples_message(n, p, q)
    if msg is not None:
        warnings.warn(msg, SVCCAWarning, stacklevel=stacklevel)
