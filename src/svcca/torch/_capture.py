"""Recording the outputs of named modules of a PyTorch model.

Everything here goes through :func:`capture_stream`: it registers forward hooks on the
requested modules, runs the model batch by batch in ``eval()`` mode under
``torch.no_grad()``, hands each batch's activations (detached NumPy arrays, already
reduced to the requested shape) to a callback, and always removes the hooks and restores
every module's train/eval mode in ``finally``. The destinations (memory, disk, moments)
are callbacks on top of it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from svcca._progress import Progress, check_progress

__all__ = [
    "CaptureError",
    "CaptureOptions",
    "capture",
    "capture_stream",
    "resolve_layers",
]

Sequence_ = Literal["samples", "mean", "last", "keep"]
Conv = Literal["keep", "mean", "flatten"]
Selector = int | str | tuple | Callable[[Any], Any]


class CaptureError(ValueError):
    """The model could not be run on a batch, or a module's output could not be used."""


@dataclass(frozen=True)
class CaptureOptions:
    """How module outputs are picked and shaped (validated once, shared by all paths)."""

    layers: tuple[str, ...]
    select: Mapping[str, Selector]
    sequence: Sequence_ | None
    time_axis: int
    conv: Conv
    dtype: np.dtype

    @classmethod
    def make(
        cls,
        layers: Sequence[str] | str,
        *,
        select: Selector | Mapping[str, Selector] | None,
        sequence: Sequence_ | None,
        time_axis: int,
        conv: Conv,
        dtype: Any,
    ) -> CaptureOptions:
        if isinstance(layers, str):
            layers = [layers]
        try:
            layers = tuple(layers)
        except TypeError as exc:
            raise TypeError(
                f"layers must be a list of module names (model.named_modules() names); got "
                f"{type(layers).__name__}."
            ) from exc
        if not layers:
            raise ValueError("layers is empty: name at least one module to record.")
        for name in layers:
            if not isinstance(name, str):
                raise TypeError(f"layer names must be str; got {name!r} ({type(name).__name__}).")
        if len(set(layers)) != len(layers):
            dup = sorted({n for n in layers if layers.count(n) > 1})
            raise ValueError(f"layers lists {dup} more than once; name each module once.")
        if isinstance(select, Mapping):
            unknown = sorted(set(select) - set(layers))
            if unknown:
                raise ValueError(
                    f"select names {unknown}, which are not in layers {list(layers)}; give "
                    "select a key for each recorded layer whose output needs picking."
                )
            sel = dict(select)
        elif select is None:
            sel = {}
        else:
            _check_selector(select)
            sel = {name: select for name in layers}
        for s in sel.values():
            _check_selector(s)
        if sequence not in (None, "samples", "mean", "last", "keep"):
            raise ValueError(
                f"sequence must be one of 'samples', 'mean', 'last', 'keep' or None; got "
                f"{sequence!r}."
            )
        if conv not in ("keep", "mean", "flatten"):
            raise ValueError(f"conv must be one of 'keep', 'mean', 'flatten'; got {conv!r}.")
        if time_axis not in (0, 1):
            raise ValueError(
                f"time_axis must be 1 for (batch, time, features) outputs (batch_first=True) "
                f"or 0 for (time, batch, features) (PyTorch's default for nn.LSTM and "
                f"nn.TransformerEncoderLayer); got {time_axis!r}."
            )
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise ValueError(f"dtype must be a floating dtype such as float32; got {dt}.")
        return cls(layers, sel, sequence, time_axis, conv, dt)


def _check_selector(s: Any) -> None:
    if isinstance(s, (int, str)) or callable(s):
        return
    if isinstance(s, tuple) and all(isinstance(k, (int, str)) for k in s):
        return
    raise TypeError(
        "select must be an int (tuple position), a str (dict key or attribute), a tuple of "
        f"those (a path into nested outputs) or a callable; got {s!r}."
    )


def resolve_layers(model: Any, layers: Sequence[str]) -> dict[str, Any]:
    """Map each requested name to its module, with near matches for unknown names."""
    modules = dict(model.named_modules())
    out: dict[str, Any] = {}
    for name in layers:
        if name in modules:
            out[name] = modules[name]
            continue
        names = [n for n in modules if n]
        near = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
        raise ValueError(
            f"{type(model).__name__} has no module named {name!r}.{hint} Names come from "
            f"model.named_modules(): {shown}"
        )
    return out


def _describe(obj: Any, depth: int = 0) -> str:
    shape = getattr(obj, "shape", None)
    if shape is not None:
        return f"{type(obj).__name__}{tuple(shape)}"
    if depth > 2:
        return type(obj).__name__
    if isinstance(obj, Mapping):
        inner = ", ".join(f"{k!r}: {_describe(v, depth + 1)}" for k, v in list(obj.items())[:6])
        return f"{type(obj).__name__}{{{inner}}}"
    if isinstance(obj, (tuple, list)):
        inner = ", ".join(_describe(v, depth + 1) for v in obj[:6])
        return f"{type(obj).__name__}({inner})"
    return type(obj).__name__


def _pick(output: Any, selector: Selector | None, layer: str) -> Any:
    import torch

    if selector is None:
        if isinstance(output, torch.Tensor):
            return output
        raise CaptureError(
            f"Module {layer!r} returned {_describe(output)}, not one tensor. Choose the "
            f"element to record with select={{{layer!r}: ...}}: an int for a tuple position "
            "(e.g. 0 for an LSTM's output sequence), a str for a dict key or attribute, a "
            "tuple such as (1, 0) for a nested element (an LSTM's final hidden state h), "
            "or a callable."
        )
    if callable(selector) and not isinstance(selector, (str, tuple)):
        picked = selector(output)
    else:
        path = selector if isinstance(selector, tuple) else (selector,)
        picked = output
        for step in path:
            try:
                if isinstance(step, str) and not isinstance(picked, Mapping):
                    picked = getattr(picked, step)
                else:
                    picked = picked[step]
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise CaptureError(
                    f"select={selector!r} does not apply to the output of module {layer!r}, "
                    f"which is {_describe(output)} (failed at {step!r}: {exc})."
                ) from exc
    if not isinstance(picked, torch.Tensor):
        raise CaptureError(
            f"select={selector!r} picked {_describe(picked)} from module {layer!r}; it must "
            f"pick a tensor. The whole output is {_describe(output)}."
        )
    return picked


def _shape(t: Any, opts: CaptureOptions, layer: str) -> Any:
    """Reduce a picked tensor to what is recorded (still a torch tensor)."""
    if t.ndim == 2:
        return t
    if t.ndim == 1:
        return t.reshape(-1, 1)
    if t.ndim == 3:
        if opts.sequence is None:
            raise CaptureError(
                f"Module {layer!r} returned a 3-D tensor of shape {tuple(t.shape)}. Say how "
                "to treat the sequence axis: sequence='samples' (every time step a sample, "
                "as in the SVCCA paper's RNN figures), 'mean' (average over time), 'last' "
                "(the last step) or 'keep'; and time_axis=1 for (batch, time, features) or 0 "
                "for (time, batch, features)."
            )
        if opts.time_axis == 0:
            t = t.transpose(0, 1)
        if opts.sequence == "samples":
            return t.reshape(-1, t.shape[-1])
        if opts.sequence == "mean":
            return t.mean(dim=1)
        if opts.sequence == "last":
            return t[:, -1, :]
        return t
    if t.ndim == 4:
        if opts.conv == "mean":
            return t.mean(dim=(2, 3))
        if opts.conv == "flatten":
            return t.reshape(t.shape[0], -1)
        return t
    raise CaptureError(
        f"Module {layer!r} returned a {t.ndim}-D tensor of shape {tuple(t.shape)}; only 2-D "
        "(batch, features), 3-D sequence and 4-D (batch, channels, height, width) outputs "
        "are supported. Use select=callable to reshape it."
    )


def _default_forward(model: Any, batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _move(batch: Any, device: Any) -> Any:
    import torch

    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _move(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(v, device) for v in batch)
    return batch


def _batch_shape(batch: Any) -> str:
    return _describe(batch)


def _total(batches: Any) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


def capture_stream(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    callback: Callable[[int, dict[str, np.ndarray]], None],
    *,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    skip: int = 0,
    progress: bool | None = False,
    desc: str = "capture",
) -> int:
    """Run ``model`` over ``batches`` and pass each batch's activations to ``callback``.

    The building block under :func:`capture`, :func:`capture_to_disk` and
    :func:`capture_moments`; use it to feed any accumulator (minibatch CKA, histograms).

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        Batches as a DataLoader yields them: a tensor, a ``(inputs, labels, ...)`` tuple
        (the first element is fed to the model) or a dict (passed as keyword arguments).
    layers : list of str
        Module names from ``model.named_modules()``; ``""`` is the model itself.
    callback : callable ``(batch_index, {layer: ndarray}) -> None``
    select, sequence, time_axis, conv, dtype, forward, device, progress
        As in :func:`capture`.
    skip : int, default 0
        Batches at the start to pass over without running the model (used to resume).

    Returns
    -------
    int
        Number of batches seen (including skipped ones).
    """
    import torch

    opts = CaptureOptions.make(
        layers, select=select, sequence=sequence, time_axis=time_axis, conv=conv, dtype=dtype
    )
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        raise TypeError(
            "batches must be an iterable of batches (a DataLoader or a list of tensors), not "
            "one tensor: wrap a single batch as [x], or split it with torch.split(x, 256)."
        )
    show = check_progress(progress)
    modules = resolve_layers(model, opts.layers)
    run = forward if forward is not None else _default_forward

    current: dict[str, Any] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: Any, args: Any, output: Any) -> None:
            picked = _pick(output, opts.select.get(name), name)
            current[name] = _shape(picked.detach(), opts, name)

        return hook

    modes = {m: m.training for m in model.modules()}
    handles = []
    seen = 0
    bar = Progress(show, _total(batches), desc)
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        model.eval()
        with torch.no_grad():
            for i, batch in enumerate(batches):
                seen = i + 1
                bar.update(1)
                if i < skip:
                    continue
                current.clear()
                try:
                    run(model, _move(batch, device))
                except CaptureError:
                    raise
                except Exception as exc:
                    raise CaptureError(
                        f"{type(model).__name__} failed on batch {i} ({_batch_shape(batch)}): "
                        f"{type(exc).__name__}: {exc}. Check that the batch has the shape and "
                        "dtype the model expects, or pass forward=lambda model, batch: ... to "
                        "say how a batch is fed to it."
                    ) from exc
                missing = [n for n in opts.layers if n not in current]
                if missing:
                    raise CaptureError(
                        f"Modules {missing} did not run in the forward pass on batch {i}; "
                        "record modules that the model actually calls."
                    )
                arrays = {
                    n: current[n].to("cpu", dtype=torch.float64).numpy().astype(opts.dtype)
                    for n in opts.layers
                }
                _check_rows(arrays, i)
                callback(i, arrays)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        bar.close()
        current.clear()
    return seen


def _check_rows(arrays: dict[str, np.ndarray], i: int) -> None:
    rows = {n: a.shape[0] for n, a in arrays.items()}
    if len(set(rows.values())) > 1:
        raise CaptureError(
            f"On batch {i} the recorded layers give different numbers of samples {rows}; "
            "representations compared with each other must share samples. Use the same "
            "sequence option for all of them, or capture them separately."
        )


def capture(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    *,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
) -> dict[str, np.ndarray]:
    """Record the outputs of named modules of a model over a stream of batches.

    Forward hooks are registered on the named modules for the duration of the call and
    always removed (also on error). The model runs in ``eval()`` mode under
    ``torch.no_grad()``; each module's train/eval mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        A DataLoader or any iterable of batches: a tensor, a tuple whose first element is
        the input (``(x, y)`` from a DataLoader), or a dict of keyword arguments.
    layers : list of str
        Names from ``model.named_modules()``, e.g. ``["features.0", "classifier"]``.
        An unknown name raises ``ValueError`` listing near matches.
    select : int, str, tuple, callable, or dict of them, optional
        How to pick one tensor from a module whose output is a tuple, dict or object:
        an int (tuple position), a str (dict key or attribute, e.g.
        ``"last_hidden_state"``), a tuple path (``(1, 0)`` picks ``h`` out of an LSTM's
        ``(output, (h, c))``) or a callable. A dict gives a selector per layer.
    sequence : {"samples", "mean", "last", "keep"}, optional
        For 3-D outputs (sequences): ``"samples"`` makes every time step a sample,
        ``(n * T, d)`` (the SVCCA paper's RNN comparisons), ``"mean"`` averages over time,
        ``"last"`` takes the final step, ``"keep"`` returns ``(n, T, d)``. Required when a
        recorded output is 3-D.
    time_axis : {1, 0}, default 1
        Where the time axis is: 1 for ``batch_first=True`` modules, 0 for PyTorch's default
        ``(T, n, d)`` layout of ``nn.LSTM`` / ``nn.TransformerEncoderLayer``. The result
        is always batch-major.
    conv : {"keep", "mean", "flatten"}, default "keep"
        For 4-D ``(n, c, h, w)`` outputs: keep them for the convolutional strategies in
        :mod:`svcca.conv` (layout ``"nchw"``), average-pool over space to ``(n, c)``, or
        flatten to ``(n, c*h*w)``. The reduction happens per batch, on the fly.
    dtype : numpy dtype, default float32
        Storage dtype of the recorded arrays.
    forward : callable ``(model, batch) -> output``, optional
        How to run the model on a batch (default: ``model(x)`` for a tensor, the first
        element of a tuple, ``model(**batch)`` for a dict).
    device : torch.device or str, optional
        Move each batch there before running the model.
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line counter;
        ``None``: only when stderr is a terminal).

    Returns
    -------
    dict of str to ndarray
        For each layer, in the order given, its activations over all batches stacked
        along the first axis, ``(n_samples, n_features)`` (or ``(n, c, h, w)``, or
        ``(n, T, d)``, when kept).

    Raises
    ------
    ValueError
        For an unknown layer name (with near matches). :class:`CaptureError` (a
        ``ValueError``) when the model fails on a batch, naming the batch and its shape,
        or when an output needs ``select``/``sequence``.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> acts = svcca.torch.capture(net, torch.randn(100, 4).split(25), ["1", "2"])
    >>> acts["1"].shape, acts["2"].shape
    ((100, 8), (100, 3))
    """
    chunks: dict[str, list[np.ndarray]] = {}

    def keep(i: int, arrays: dict[str, np.ndarray]) -> None:
        for n, a in arrays.items():
            chunks.setdefault(n, []).append(a)

    capture_stream(
        model,
        batches,
        layers,
        keep,
        select=select,
        sequence=sequence,
        time_axis=time_axis,
        conv=conv,
        dtype=dtype,
        forward=forward,
        device=device,
        progress=progress,
    )
    if not chunks:
        raise ValueError("batches was empty: there was nothing to run the model on.")
    out = {}
    for n in chunks:
        try:
            out[n] = np.concatenate(chunks[n], axis=0)
        except ValueError as exc:
            raise CaptureError(
                f"Layer {n!r} gave batches of incompatible shapes "
                f"{sorted({a.shape[1:] for a in chunks[n]})}: {exc}. Sequences of different "
                "lengths need sequence='samples', 'mean' or 'last'."
            ) from exc
    return out


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(layer: str) -> str:
    """A file-name-safe stem for a module name (``""`` is the model itself)."""
    return _SAFE.sub("_", layer) if layer else "_model_"
