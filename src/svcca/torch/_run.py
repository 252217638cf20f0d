"""The loop under every capture: hooks on the requested modules, the model run batch by
batch in ``eval()`` under ``torch.no_grad()``, each batch's reduced outputs handed to a
callback, and every hook and train/eval mode restored in ``finally``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from svcca._progress import Progress, check_progress
from svcca.torch._batches import (
    _Batch,
    _default_forward,
    _inspect_batch,
    _move,
    _total,
    _warn_if_shuffled,
    check_packed,
)
from svcca.torch._layers import _describe, locate_layers
from svcca.torch._options import CaptureError, CaptureOptions, CaptureWarning
from svcca.torch._reduce import (
    ConvMarks,
    _check_batch_first,
    _is_elementwise,
    _layout_error,
    _reduce,
    _reshaped,
    check_model_layout,
    is_conv_block,
    is_conv_module,
)
from svcca.torch._select import _pick

__all__ = [
    "Extract",
    "accumulates_on",
    "float32_if_exact",
    "run_capture",
]


def _train_mode_modules(model: Any) -> list[str]:
    return [n or "(the model)" for n, m in model.named_modules() if m.training]


def _warn_train_mode(model: Any, names: list[str]) -> None:
    shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
    warnings.warn(
        f"forward left {len(names)} module(s) of {type(model).__name__} in train mode during "
        f"the capture ({shown}): dropout and batch norm then change the activations from "
        "run to run. The capture calls model.eval() before the first batch; do not call "
        "model.train() in forward=.",
        CaptureWarning,
        stacklevel=4,
    )


Extract = Callable[[Any, _Batch], dict[str, Any]]


def run_capture(
    model: Any,
    batches: Iterable[Any],
    opts: CaptureOptions,
    callback: Callable[[int, dict[str, np.ndarray]], None],
    *,
    forward: Callable[[Any, Any], Any] | None,
    device: Any,
    skip: int,
    progress: bool | None,
    desc: str,
    extract: Extract | None = None,
    on_device: bool = False,
) -> int:
    """The loop under every capture: hooks on ``opts.layers`` or ``extract(output, batch)``.

    ``callback`` receives NumPy arrays of ``opts.dtype``; with ``on_device`` (a callback
    that accumulates torch tensors) it receives the reduced tensors as they are, on
    their device, whenever the work runs there (:func:`accumulates_on`): GPU outputs,
    or any inside ``svcca.on_device(...)``.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        raise TypeError(
            "batches must be an iterable of batches (a DataLoader or a list of tensors), not "
            "one tensor: wrap a single batch as [x], or split it with torch.split(x, 256)."
        )
    show = check_progress(progress)
    run = forward if forward is not None else _default_forward
    _warn_if_shuffled(batches)

    modules: dict[str, Any] = {}
    targets: dict[str, list[tuple[str, int | None]]] = {}  # module name -> (layer, call)
    check_model_layout(model, opts)
    if extract is None:
        named = dict(model.named_modules())
        for layer, (base, k) in locate_layers(model, opts.layers).items():
            modules[base] = named[base]
            targets.setdefault(base, []).append((layer, k))

    state: dict[str, Any] = {"batch": None, "train": []}
    current: dict[str, Any] = {}
    counts: dict[str, int] = {}
    marks = ConvMarks()  # conv-map outputs seen in this forward pass

    def mark_hook(module: Any, args: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or output.ndim not in (3, 4, 5):
            return
        if is_conv_module(module) or (output.ndim > 3 and is_conv_block(module)):
            marks.add(output)
        elif args and isinstance(args[0], torch.Tensor) and args[0] in marks:
            if output.shape == args[0].shape:
                marks.add(output)

    def make_hook(base: str) -> Callable[..., None]:
        module = modules[base]

        def hook(mod: Any, args: Any, output: Any) -> None:
            k = counts.get(base, 0)
            counts[base] = k + 1
            if mod.training:
                state["train"].append(base or "(the model)")
            for layer, want in targets[base]:
                if want is not None and want != k:
                    continue
                if want is None and k > 0 and opts.calls == "raise":
                    continue  # reported after the forward pass, with every call counted
                name = layer if want is not None or k == 0 else f"{layer}#{k}"
                selector = opts.select.get(layer)
                picked = _pick(output, selector, layer, module)
                conv_map = picked.ndim in (3, 4, 5) and (
                    layer in opts.conv_layers
                    or is_conv_module(module)
                    or (picked is output and output in marks)
                    or (picked.ndim > 3 and is_conv_block(module))
                    or (picked.ndim > 3 and _reshaped(selector))
                )
                if picked.ndim in (4, 5) and not conv_map:
                    raise _layout_error(layer, module, picked)
                if conv_map and picked is output:
                    marks.add(output)  # activations applied to it stay conv maps
                if picked.ndim == 3 and not conv_map and opts.sequence is not None:
                    _check_batch_first(module, layer, opts)
                got = _reduce(picked.detach(), layer, opts, state["batch"], conv_map=conv_map)
                if got.untyped_storage().data_ptr() == picked.untyped_storage().data_ptr():
                    # a view of the output, which a later in-place module (ReLU(inplace=
                    # True) after a conv or a batch norm) would overwrite before it is read
                    got = got.clone()
                current[name] = got

        return hook

    modes = {m: m.training for m in model.modules()}
    handles = []
    seen = 0
    names: list[str] | None = None
    warned_train = False
    bar = Progress(show, _total(batches), desc)
    try:
        if extract is None:
            if any(_is_elementwise(m) for m in modules.values()):
                for m in model.modules():
                    if is_conv_module(m) or _is_elementwise(m) or is_conv_block(m):
                        handles.append(m.register_forward_hook(mark_hook))
            for base in targets:
                handles.append(modules[base].register_forward_hook(make_hook(base)))
        model.eval()
        with torch.no_grad():
            for i, batch in enumerate(batches):
                seen = i + 1
                bar.update(1)
                if i < skip:
                    continue
                current.clear()
                counts.clear()
                marks.clear()
                state["train"] = []
                check_packed(batch, i, opts, forward)
                moved = _move(batch, device)
                info = _inspect_batch(moved, i, opts)
                state["batch"] = info
                try:
                    output = run(model, moved)
                except CaptureError:
                    raise
                except Exception as exc:
                    raise CaptureError(
                        f"{type(model).__name__} failed on batch {i} ({_describe(batch)}): "
                        f"{type(exc).__name__}: {exc}. Check that the batch has the shape and "
                        "dtype the model expects, or pass forward=lambda model, batch: ... to "
                        "say how a batch is fed to it."
                    ) from exc
                if extract is not None:
                    current.update(extract(output, info))
                    order = list(current)
                else:
                    _check_calls(targets, counts, opts, i)
                    order = _recorded_names(opts, targets, counts, current)
                del output
                left = _train_mode_modules(model) or state["train"]
                if left and not warned_train:
                    _warn_train_mode(model, left)
                    warned_train = True
                if names is None:
                    names = order
                elif order != names:
                    raise CaptureError(
                        f"Batch {i} recorded {order}, but batch 0 recorded {names}: the modules "
                        "ran a different number of times. Record the calls by name "
                        "('<module>#<k>') that every batch makes."
                    )
                if on_device and accumulates_on(current[names[0]]) is not None:
                    arrays = {n: current[n] for n in names}  # no host copy
                else:
                    arrays = {
                        n: current[n].to("cpu", dtype=torch.float64).numpy().astype(opts.dtype)
                        for n in names
                    }
                current.clear()
                _check_rows(arrays, i)
                callback(i, arrays)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        bar.close()
        current.clear()
        marks.clear()
    return seen


def float32_if_exact(x: np.ndarray) -> np.ndarray:
    """A float64 batch as float32 when that loses nothing (a float32 model's outputs).

    Moments in ``precision="float32"`` of captured rows are recorded in float64: a
    float64 layer (a float64 model, or a mean over a map or a sequence) is centred on
    its float64 mean before the cast, as on the device (docs/precision.md: a float64
    neuron at 1e6 + 0.3 stays constant). Rows that float32 holds exactly take the
    float32 path as they are.
    """
    if x.dtype == np.float64:
        x32 = x.astype(np.float32)
        if np.array_equal(x32, x):
            return x32
    return x


def accumulates_on(t: Any) -> Any:
    """The device a capture of ``t`` (a recorded tensor) accumulates on, or None (host).

    ``svcca.on_device``'s device when one is in force (``None`` there: the host), else
    ``t``'s own device unless it is the CPU: a GPU model's activations never travel to
    the host, a CPU model's take the host path (NumPy and SciPy's BLAS).
    """
    from svcca._device import chosen

    return chosen(t.device)


def _recorded_names(
    opts: CaptureOptions,
    targets: Mapping[str, list[tuple[str, int | None]]],
    counts: Mapping[str, int],
    current: dict[str, Any],
) -> list[str]:
    """Names in ``opts.layers`` order; with ``calls="each"`` repeated modules get ``#k``."""
    base_of = {layer: base for base, specs in targets.items() for layer, _ in specs}
    want_of = {layer: want for specs in targets.values() for layer, want in specs}
    order: list[str] = []
    for layer in opts.layers:
        c = counts[base_of[layer]]
        if want_of[layer] is None and c > 1:  # calls == "each" (else _check_calls raised)
            current[f"{layer}#0"] = current.pop(layer)
            order.extend(f"{layer}#{k}" for k in range(c))
        else:
            order.append(layer)
    return order


def _check_calls(
    targets: Mapping[str, list[tuple[str, int | None]]],
    counts: Mapping[str, int],
    opts: CaptureOptions,
    i: int,
) -> None:
    missing = [
        layer for base, specs in targets.items() for layer, _ in specs if not counts.get(base)
    ]
    if missing:
        raise CaptureError(
            f"Modules {missing} did not run in the forward pass on batch {i}; "
            "record modules that the model actually calls."
        )
    for base, specs in targets.items():
        c = counts[base]
        for layer, want in specs:
            if want is not None and want >= c:
                raise CaptureError(
                    f"{layer!r} asks for call {want} (0-based) of module {base!r}, which ran "
                    f"{c} time(s) in the forward pass on batch {i}."
                )
            if want is None and c > 1 and opts.calls == "raise":
                calls = ", ".join(repr(f"{layer}#{k}") for k in range(c))
                raise CaptureError(
                    f"Module {layer!r} ran {c} times in one forward pass (batch {i}), so its "
                    f"name does not say which call to record. Name each call (0-based, in call "
                    f"order): layers=[{calls}], or pass calls='each' to record every call as "
                    f"its own layer {calls}."
                )


def _check_rows(arrays: dict[str, np.ndarray], i: int) -> None:
    rows = {n: a.shape[0] for n, a in arrays.items()}
    if len(set(rows.values())) > 1:
        raise CaptureError(
            f"On batch {i} the recorded layers give different numbers of samples {rows}; "
            "representations compared with each other must share samples. Use the same "
            "sequence option for all of them, or capture them separately."
        )
