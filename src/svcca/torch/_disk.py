"""Capturing activations to disk in safe formats, resumable batch by batch.

Layout of ``directory``::

    manifest.json              what was asked for, how many batches are finished
    parts/00000012.<ext>       one file per finished batch (while capturing)
    <layer>.npy | <layer>.safetensors   one file per layer once the capture is complete

Every file is written under a temporary name and renamed when complete, so a capture
killed at any moment leaves only finished files; calling :func:`capture_to_disk` again
with the same arguments skips the finished batches and goes on.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from svcca._progress import check_progress
from svcca.torch._capture import (
    CaptureOptions,
    Conv,
    Selector,
    Sequence_,
    capture_stream,
    file_stem,
)

__all__ = ["DiskCapture", "capture_to_disk", "load_capture"]

Format = Literal["safetensors", "npy"]
_MANIFEST = "manifest.json"
_VERSION = 1


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
    """

    directory: str
    layers: tuple[str, ...]
    files: dict[str, str] = field(repr=False)
    shapes: dict[str, tuple[int, ...]]
    format: Format
    n_batches: int
    resumed_from: int

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


def _selector_id(s: Any) -> str:
    if callable(s) and not isinstance(s, (str, tuple)):
        return f"callable {getattr(s, '__qualname__', type(s).__name__)}"
    return repr(s)


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
        Created if missing. If it holds an unfinished capture of the same layers and
        options, the batches already on disk are skipped (the model is not run on them),
        so ``batches`` must yield the same batches in the same order as before. If it
        holds a finished one, it is returned without running the model.
    format : {"npy", "safetensors"}, default "npy"
    overwrite : bool, default False
        Discard whatever capture ``directory`` holds instead of resuming it.

    Returns
    -------
    DiskCapture
        Paths, shapes, and ``.load(layer)`` / ``.arrays()``.

    Raises
    ------
    ValueError
        When ``directory`` holds a capture made with other layers or options (and
        ``overwrite`` is False), or for the errors :func:`capture` raises.
    """
    if format not in ("safetensors", "npy"):
        raise ValueError(f"format must be 'npy' or 'safetensors'; got {format!r}.")
    opts = CaptureOptions.make(
        layers, select=select, sequence=sequence, time_axis=time_axis, conv=conv, dtype=dtype
    )
    check_progress(progress)  # also when a finished capture is returned without a run
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    manifest_path = os.path.join(directory, _MANIFEST)
    parts_dir = os.path.join(directory, "parts")
    signature = {
        "version": _VERSION,
        "layers": list(opts.layers),
        "format": format,
        "sequence": opts.sequence,
        "time_axis": opts.time_axis,
        "conv": opts.conv,
        "dtype": opts.dtype.str,
        "select": {k: _selector_id(v) for k, v in sorted(opts.select.items())},
    }
    manifest: dict[str, Any] = {**signature, "batches_done": 0, "rows": [], "complete": False}
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            old = json.load(f)
        if overwrite:
            _clear(directory, old)
        else:
            differs = {k: (old.get(k), v) for k, v in signature.items() if old.get(k) != v}
            if differs:
                detail = "; ".join(
                    f"{k}: on disk {a!r}, now {b!r}" for k, (a, b) in differs.items()
                )
                raise ValueError(
                    f"{directory!r} holds a capture made with other settings ({detail}). Use "
                    "another directory, or overwrite=True to discard it."
                )
            manifest = old
    ext = "safetensors" if format == "safetensors" else "npz"
    stems = {n: file_stem(n) for n in opts.layers}
    files = {n: os.path.join(directory, f"{stems[n]}.{format}") for n in opts.layers}
    if len(set(stems.values())) != len(stems):
        raise ValueError(f"Layer names {list(opts.layers)} map to clashing file names {stems}.")
    resumed_from = int(manifest["batches_done"])

    if not manifest["complete"]:
        os.makedirs(parts_dir, exist_ok=True)

        def write(i: int, arrays: dict[str, np.ndarray]) -> None:
            _save_part(os.path.join(parts_dir, f"{i:08d}.{ext}"), arrays, format)
            manifest["batches_done"] = i + 1
            manifest["rows"].append(int(next(iter(arrays.values())).shape[0]))
            manifest["shapes"] = {n: list(a.shape[1:]) for n, a in arrays.items()}
            _write_atomic_json(manifest_path, manifest)

        seen = capture_stream(
            model,
            batches,
            opts.layers,
            write,
            select=opts.select,
            sequence=opts.sequence,
            time_axis=opts.time_axis,
            conv=opts.conv,
            dtype=opts.dtype,
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
        _join(manifest, opts.layers, files, parts_dir, ext, format)
        manifest["complete"] = True
        manifest["files"] = {n: os.path.basename(p) for n, p in files.items()}
        _write_atomic_json(manifest_path, manifest)
        shutil.rmtree(parts_dir, ignore_errors=True)

    n = int(sum(manifest["rows"]))
    shapes = {name: (n, *manifest["shapes"][name]) for name in opts.layers}
    return DiskCapture(
        directory=directory,
        layers=opts.layers,
        files=files,
        shapes=shapes,
        format=format,
        n_batches=int(manifest["batches_done"]),
        resumed_from=resumed_from,
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
    layers = tuple(m["layers"])
    return DiskCapture(
        directory=directory,
        layers=layers,
        files={k: os.path.join(directory, v) for k, v in m["files"].items()},
        shapes={k: (n, *m["shapes"][k]) for k in layers},
        format=m["format"],
        n_batches=int(m["batches_done"]),
        resumed_from=int(m["batches_done"]),
    )
