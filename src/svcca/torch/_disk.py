"""Capturing activations to disk in safe formats, resumable batch by batch.

Layout of ``directory``::

    manifest.json              what was asked for, how many batches are finished
    parts/00000012.<ext>       one file per finished batch (while capturing)
    <layer>.npy | <layer>.safetensors   one file per layer once the capture is complete

Every file is written under a temporary name and renamed when complete, so a capture
killed at any moment leaves only finished files; calling :func:`capture_to_disk` again
with the same arguments skips the finished batches and goes on.

The manifest records a fingerprint of what was captured: a SHA-256 of the model (its
module tree and every ``state_dict`` tensor's name, dtype, shape and bytes), the layers
and every capture option, and the data (a SHA-256 of the first batch and the number of
batches when the iterable has a length). A call whose fingerprint differs from the one
on disk raises, naming what differs, instead of resuming or returning the old arrays;
``overwrite=True`` discards the old capture.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from svcca._progress import check_progress
from svcca._validation import is_torch_tensor
from svcca.torch._capture import (
    Calls,
    CaptureError,
    CaptureOptions,
    Conv,
    MaskOption,
    Selector,
    Sequence_,
    capture_stream,
    file_stem,
)

__all__ = ["DiskCapture", "capture_to_disk", "load_capture"]

Format = Literal["safetensors", "npy"]
_MANIFEST = "manifest.json"
_VERSION = 2


@dataclass(frozen=True)
class DiskCapture:
    """Activations captured to a directory.

    Attributes
    ----------
    directory : str
    layers : tuple of str
    files : dict of str to str
        Path of each layer's file.
    shapes : dict of str to tuple of int
        Shape of each layer's array.
    format : {"safetensors", "npy"}
    n_batches : int
        Batches captured in total.
    resumed_from : int
        Batches that were already on disk when this call started (0 for a fresh capture).
    fingerprint : dict
        What the capture was made of: ``"model"`` (SHA-256 of the module tree and the
        state dict), ``"first_batch"`` (SHA-256 of the first batch) and ``"n_batches"``
        (the iterable's length, or None when it had none).
    """

    directory: str
    layers: tuple[str, ...]
    files: dict[str, str] = field(repr=False)
    shapes: dict[str, tuple[int, ...]]
    format: Format
    n_batches: int
    resumed_from: int
    fingerprint: dict[str, Any] = field(default_factory=dict, repr=False)

    def load(self, layer: str, *, mmap: bool = True) -> np.ndarray:
        """One layer's activations (memory-mapped for ``.npy`` unless ``mmap=False``)."""
        if layer not in self.files:
            raise KeyError(f"No layer {layer!r} in this capture; it has {list(self.layers)}.")
        return _read(self.files[layer], self.format, mmap=mmap)

    def arrays(self, *, mmap: bool = True) -> dict[str, np.ndarray]:
        """All layers, in capture order."""
        return {n: self.load(n, mmap=mmap) for n in self.layers}


def _read(path: str, fmt: str, *, mmap: bool) -> np.ndarray:
    if fmt == "npy":
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    from safetensors.numpy import load_file

    return load_file(path)["activations"]


# ---------------------------------------------------------------------- fingerprints
def _code_digest(code: Any) -> str:
    """SHA-256 of a code object's bytecode and constants (nested code objects recursed)."""
    h = hashlib.sha256(code.co_code)
    for c in code.co_consts:
        h.update((_code_digest(c) if hasattr(c, "co_code") else repr(c)).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:16]


def _option_id(v: Any) -> Any:
    """A JSON value standing for a capture option (equal after a round trip through JSON).

    A function is named by its qualified name and a digest of its bytecode, so an edited
    lambda counts as another option; ``functools.partial`` by its function and arguments;
    other callables by their type and repr (e.g. ``RNNState(state='h', layers='last')``),
    or their type alone when the repr is only an address.
    """
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.dtype):
        return v.str
    if isinstance(v, Mapping):
        return {str(k): _option_id(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (tuple, list)):
        return [_option_id(x) for x in v]
    if isinstance(v, functools.partial):
        return ["partial", _option_id(v.func), _option_id(list(v.args)), _option_id(v.keywords)]
    if callable(v):
        code = getattr(v, "__code__", None)
        if code is not None:  # a function, lambda or method: its name and its code
            name = f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', '')}"
            return f"callable {name} {_code_digest(code)}"
        kind = f"{type(v).__module__}.{type(v).__qualname__}"
        text = repr(v)  # a callable object: its repr, unless that is only an address
        return f"callable {kind}" + ("" if " at 0x" in text else f" {text}")
    return f"{type(v).__qualname__} {v!r}"


def _feed(h: Any, obj: Any) -> None:
    """Hash the structure and bytes of a batch (tensors, arrays, mappings, sequences)."""
    if is_torch_tensor(obj):
        t = obj.detach().cpu()
        if t.layout != _strided():
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        t = t.contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(_uint8()).numpy())
    elif isinstance(obj, np.ndarray):
        h.update(f"array {obj.dtype.str} {obj.shape};".encode())
        if obj.dtype.hasobject:
            h.update(repr(obj.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(obj).reshape(-1).view(np.uint8))
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for k, v in obj.items():
            h.update(f"{k!r}:".encode())
            _feed(h, v)
        h.update(b"}")
    elif isinstance(obj, (tuple, list)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(obj).__name__} {obj!r};".encode())
    else:  # an object whose content we cannot read: its type at least
        h.update(f"object {type(obj).__module__}.{type(obj).__qualname__};".encode())


def _strided() -> Any:
    import torch

    return torch.strided


def _uint8() -> Any:
    import torch

    return torch.uint8


def model_digest(model: Any) -> str:
    """SHA-256 of a model: its module tree (names and types) and every state-dict entry
    (name, dtype, shape and bytes of each tensor: parameters and buffers)."""
    h = hashlib.sha256()
    for name, mod in model.named_modules():
        h.update(f"module {name!r} {type(mod).__module__}.{type(mod).__qualname__};".encode())
    for name, value in model.state_dict().items():
        h.update(f"state {name!r};".encode())
        _feed(h, value)
    return h.hexdigest()


def batch_digest(batch: Any) -> str:
    """SHA-256 of one batch's structure, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    _feed(h, batch)
    return h.hexdigest()


def _first_batch(batches: Iterable[Any]) -> tuple[Any, Iterable[Any], bool]:
    """The first batch, the batches to run (the same iterable when it can be iterated
    again, so a DataLoader stays a DataLoader), and whether there was one."""
    it = iter(batches)
    sentinel = object()
    first = next(it, sentinel)
    if first is sentinel:
        return None, batches, False
    if it is batches:  # a one-shot iterator: put the first batch back in front
        return first, itertools.chain([first], it), True
    return first, batches, True


def _length(batches: Any) -> int | None:
    try:
        return int(len(batches))
    except TypeError:
        return None


def _write_atomic_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_part(path: str, arrays: dict[str, np.ndarray], fmt: str) -> None:
    tmp = path + ".tmp"
    if fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file(
            {f"layer{j}": np.ascontiguousarray(a) for j, a in enumerate(arrays.values())}, tmp
        )
    else:
        with open(tmp, "wb") as f:
            np.savez(f, *[np.ascontiguousarray(a) for a in arrays.values()])
    os.replace(tmp, path)


def _load_part(path: str, n_layers: int, fmt: str) -> list[np.ndarray]:
    if fmt == "safetensors":
        from safetensors.numpy import load_file

        d = load_file(path)
        return [d[f"layer{j}"] for j in range(n_layers)]
    with np.load(path, allow_pickle=False) as d:
        return [d[f"arr_{j}"] for j in range(n_layers)]


def capture_to_disk(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    directory: str | os.PathLike[str],
    *,
    format: Format = "npy",
    overwrite: bool = False,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
) -> DiskCapture:
    """Capture activations to files in ``directory``, resuming an interrupted capture.

    Takes the same options as :func:`svcca.torch.capture`. Each finished batch is
    written to its own part file (temporary name, then rename) and recorded in
    ``manifest.json``; when every batch is done the parts are joined into one file per
    layer (``<layer>.npy``, memory-mappable, or ``<layer>.safetensors``), again through a
    temporary name. Nothing is ever pickled.

    Parameters
    ----------
    directory : path
        Created if missing. If it holds an unfinished capture with the same fingerprint
        (below), the batches already on disk are skipped (the model is not run on them);
        if it holds a finished one, it is returned without running the model.
    format : {"npy", "safetensors"}, default "npy"
    overwrite : bool, default False
        Discard whatever capture ``directory`` holds instead of resuming it.

    Returns
    -------
    DiskCapture
        Paths, shapes, ``.fingerprint``, and ``.load(layer)`` / ``.arrays()``.

    Raises
    ------
    ValueError
        When ``directory`` holds a capture with another fingerprint (and ``overwrite``
        is False), or for the errors :func:`capture` raises.

    Notes
    -----
    The fingerprint is a SHA-256 of the model (module names and types, and every
    ``state_dict`` tensor's name, dtype, shape and bytes), the layers and every capture
    option (``select``, ``sequence``, ``time_axis``, ``conv``, ``dtype``, ``mask``,
    ``calls``, ``datapoints``, ``conv_layers``, ``forward``, and the format; a function
    by its name and bytecode), and the data: a SHA-256 of the first batch and the number
    of batches (when ``len(batches)`` exists). Resuming with another model, other
    weights, other options or other data therefore raises instead of returning stale
    arrays; the fix is another directory, or ``overwrite=True``. A loader that shuffles
    or augments at random yields another first batch on every pass, so its captures
    cannot be resumed (nor lined up with another capture). Batches after the first are
    not hashed (that would read the data twice): the batch count and the first batch
    are the check. The first batch is read once more than the capture needs (a
    re-iterable such as a DataLoader is iterated again from the start).
    """
    if format not in ("safetensors", "npy"):
        raise ValueError(f"format must be 'npy' or 'safetensors'; got {format!r}.")
    opts = CaptureOptions.make(
        layers,
        select=select,
        sequence=sequence,
        time_axis=time_axis,
        conv=conv,
        dtype=dtype,
        mask=mask,
        calls=calls,
        datapoints=datapoints,
        conv_layers=conv_layers,
    )
    check_progress(progress)  # also when a finished capture is returned without a run
    directory = os.fspath(directory)
    first, batches, any_batch = _first_batch(batches)
    if not any_batch:
        raise ValueError("batches was empty: there was nothing to run the model on.")
    os.makedirs(directory, exist_ok=True)
    manifest_path = os.path.join(directory, _MANIFEST)
    parts_dir = os.path.join(directory, "parts")
    signature = {
        "version": _VERSION,
        "layers": list(opts.layers),
        "format": format,
        **{k: _option_id(v) for k, v in opts.kwargs().items()},
        "forward": _option_id(forward),
    }
    fingerprint = {
        "model": model_digest(model),
        "first_batch": batch_digest(first),
        "n_batches": _length(batches),
    }
    manifest: dict[str, Any] = {
        **signature,
        "fingerprint": fingerprint,
        "batches_done": 0,
        "rows": [],
        "complete": False,
    }
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        if overwrite:
            _clear(directory, old)
        else:
            _check_same(directory, old, signature, fingerprint)
            manifest = old
    ext = "safetensors" if format == "safetensors" else "npz"
    _files(directory, opts.layers, format)  # clashing names fail before any work
    resumed_from = int(manifest["batches_done"])

    if not manifest["complete"]:
        os.makedirs(parts_dir, exist_ok=True)

        def write(i: int, arrays: dict[str, np.ndarray]) -> None:
            _check_shapes(manifest.get("shapes"), arrays, i)
            _save_part(os.path.join(parts_dir, f"{i:08d}.{ext}"), arrays, format)
            manifest["batches_done"] = i + 1
            manifest["rows"].append(int(next(iter(arrays.values())).shape[0]))
            manifest["shapes"] = {n: list(a.shape[1:]) for n, a in arrays.items()}
            # With calls="each" the recorded names ("block#0", ...) are the model's to say.
            manifest["recorded"] = list(arrays)
            _write_atomic_json(manifest_path, manifest)

        seen = capture_stream(
            model,
            batches,
            opts.layers,
            write,
            **opts.kwargs(),
            forward=forward,
            device=device,
            skip=resumed_from,
            progress=progress,
            desc="capture to disk",
        )
        if seen < resumed_from:
            raise ValueError(
                f"batches yielded {seen} batches, but {resumed_from} were already captured in "
                f"{directory!r}; resume with the same batches, or overwrite=True."
            )
        if manifest["batches_done"] == 0:
            raise ValueError("batches was empty: there was nothing to run the model on.")
        recorded = tuple(manifest.get("recorded", opts.layers))
        files = _files(directory, recorded, format)
        _join(manifest, recorded, files, parts_dir, ext, format)
        manifest["complete"] = True
        manifest["files"] = {n: os.path.basename(p) for n, p in files.items()}
        _write_atomic_json(manifest_path, manifest)
        shutil.rmtree(parts_dir, ignore_errors=True)

    n = int(sum(manifest["rows"]))
    recorded = tuple(manifest.get("recorded", opts.layers))
    shapes = {name: (n, *manifest["shapes"][name]) for name in recorded}
    return DiskCapture(
        directory=directory,
        layers=recorded,
        files=_files(directory, recorded, format),
        shapes=shapes,
        format=format,
        n_batches=int(manifest["batches_done"]),
        resumed_from=resumed_from,
        fingerprint=dict(manifest["fingerprint"]),
    )


def _files(directory: str, layers: Sequence[str], fmt: str) -> dict[str, str]:
    """Each layer's file in ``directory``; refuses names that clash once made file-safe."""
    stems = {n: file_stem(n) for n in layers}
    if len(set(stems.values())) != len(stems):
        raise ValueError(f"Layer names {list(layers)} map to clashing file names {stems}.")
    return {n: os.path.join(directory, f"{stems[n]}.{fmt}") for n in layers}


def _check_same(
    directory: str, old: Mapping[str, Any], signature: Mapping[str, Any], fp: Mapping[str, Any]
) -> None:
    """Raise unless the capture on disk was made of the same model, options and data."""
    fix = "Use another directory, or overwrite=True to discard it and capture anew."
    if old.get("version") != _VERSION:
        raise ValueError(
            f"{directory!r} holds a capture in manifest version {old.get('version')!r} "
            f"(this version writes {_VERSION}, with a fingerprint of the model and the data), "
            f"so it cannot be checked against this call. {fix}"
        )
    differs = {k: (old.get(k), v) for k, v in signature.items() if old.get(k) != v}
    if differs:
        detail = "; ".join(f"{k}: on disk {a!r}, now {b!r}" for k, (a, b) in differs.items())
        raise ValueError(
            f"{directory!r} holds a capture made with other settings ({detail}). {fix}"
        )
    was = old.get("fingerprint") or {}
    if was.get("model") != fp["model"]:
        raise ValueError(
            f"{directory!r} holds a capture of another model: the model's modules or weights "
            f"differ (SHA-256 on disk {str(was.get('model'))[:12]}..., now "
            f"{fp['model'][:12]}...). {fix}"
        )
    if was.get("first_batch") != fp["first_batch"]:
        raise ValueError(
            f"{directory!r} holds a capture of other data: the first batch differs (SHA-256 "
            f"on disk {str(was.get('first_batch'))[:12]}..., now {fp['first_batch'][:12]}...). "
            "A DataLoader that shuffles or augments at random yields another first batch "
            f"on every pass; capture with a fixed order and fixed transforms. {fix}"
        )
    done = bool(old.get("complete"))
    count = old.get("batches_done") if done else was.get("n_batches")
    if count is not None and fp["n_batches"] is not None and count != fp["n_batches"]:
        what = f"{count} batches on disk" if done else f"an unfinished capture of {count} batches"
        raise ValueError(
            f"{directory!r} holds a capture of other data: {what}, but batches has "
            f"{fp['n_batches']}. {fix}"
        )


def _join(
    manifest: dict[str, Any],
    layers: tuple[str, ...],
    files: dict[str, str],
    parts_dir: str,
    ext: str,
    fmt: str,
) -> None:
    """Join the part files into one file per layer (each written to a temporary name)."""
    n = int(sum(manifest["rows"]))
    n_batches = int(manifest["batches_done"])
    for j, name in enumerate(layers):
        shape = (n, *manifest["shapes"][name])
        dtype = np.dtype(manifest["dtype"])
        tmp = files[name] + ".tmp"
        out: np.ndarray
        if fmt == "npy":
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        else:
            out = np.empty(shape, dtype=dtype)
        row = 0
        for i in range(n_batches):
            a = _load_part(os.path.join(parts_dir, f"{i:08d}.{ext}"), len(layers), fmt)[j]
            out[row : row + a.shape[0]] = a
            row += a.shape[0]
        if isinstance(out, np.memmap):
            out.flush()
            del out
        else:
            from safetensors.numpy import save_file

            save_file({"activations": out}, tmp)
        os.replace(tmp, files[name])


def _check_shapes(
    shapes: Mapping[str, list[int]] | None, arrays: Mapping[str, np.ndarray], i: int
) -> None:
    """Each batch's per-datapoint shapes must be those of the first batch written."""
    if not shapes:
        return
    for name, a in arrays.items():
        want = shapes.get(name)
        if want is not None and list(a.shape[1:]) != list(want):
            raise CaptureError(
                f"Layer {name!r} gave {tuple(a.shape[1:])} per datapoint on batch {i}, but "
                f"{tuple(want)} on the first batch: the batches of one layer file must "
                "share every axis but the first (rows would be misaligned or broadcast). "
                "Sequences of different lengths need sequence='samples', 'mean', 'last' or "
                "'first'; conv maps of different sizes need conv='mean'; or pad the inputs "
                "to one size."
            )


def _clear(directory: str, manifest: Mapping[str, Any]) -> None:
    shutil.rmtree(os.path.join(directory, "parts"), ignore_errors=True)
    for fname in (manifest.get("files") or {}).values():
        path = os.path.join(directory, fname)
        if os.path.exists(path):
            os.remove(path)
    os.remove(os.path.join(directory, _MANIFEST))


def load_capture(directory: str | os.PathLike[str]) -> DiskCapture:
    """Open a finished capture written by :func:`capture_to_disk`."""
    directory = os.fspath(directory)
    path = os.path.join(directory, _MANIFEST)
    if not os.path.exists(path):
        raise ValueError(f"{directory!r} holds no capture (no {_MANIFEST}).")
    with open(path) as f:
        m = json.load(f)
    if not m.get("complete"):
        raise ValueError(
            f"The capture in {directory!r} is unfinished ({m.get('batches_done')} batches "
            "done); run capture_to_disk again with the same arguments to finish it."
        )
    n = int(sum(m["rows"]))
    layers = tuple(m.get("recorded", m["layers"]))
    return DiskCapture(
        directory=directory,
        layers=layers,
        files={k: os.path.join(directory, v) for k, v in m["files"].items()},
        shapes={k: (n, *m["shapes"][k]) for k in layers},
        format=m["format"],
        n_batches=int(m["batches_done"]),
        resumed_from=int(m["batches_done"]),
        fingerprint=dict(m.get("fingerprint") or {}),
    )
