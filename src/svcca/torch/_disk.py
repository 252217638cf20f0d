"""Capturing activations to disk in safe formats, resumable batch by batch.

Layout of ``directory``::

    manifest.json              what was asked for, finished batches, every file's size and SHA-256
    capture.lock               held while a capture runs (an OS file lock)
    parts/00000012.<ext>       one file per finished batch (while capturing)
    <layer>.npy | <layer>.safetensors   one file per layer once the capture is complete

A capture is a transaction on its folder: it holds the folder's lock from start to end
(:mod:`svcca.torch._folder`), every file is written under a temporary name unique to the
process, hashed as it is written, flushed and renamed, and the manifest records it only
then; a capture killed at any moment leaves only finished files, and calling
:func:`capture_to_disk` again with the same arguments checks the finished batches' hashes,
skips them and goes on.

The manifest records a fingerprint of what was captured: a SHA-256 of the model (its
module tree and every ``state_dict`` tensor's name, dtype, shape and bytes), the layers
and every capture option, and the data (a SHA-256 of the first batch and the number of
batches when the iterable has a length). A call whose fingerprint differs from the one
on disk raises, naming what differs, instead of resuming or returning the old arrays;
``overwrite=True`` discards the old capture.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import itertools
import json
import os
import shutil
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

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
from svcca.torch._folder import (
    LOCK,
    FolderLock,
    disk_error,
    inside,
    is_our_temp,
    not_plain,
    write_file,
)
from svcca.torch._manifest import (
    MANIFEST,
    PART_NAME,
    PARTS,
    RECAPTURE,
    VERSION,
    DiskCapture,
    Format,
    capture_of,
    check_file,
    check_manifest,
    layer_file,
    load_capture,
    part_ext,
    read_manifest,
)

__all__ = ["DiskCapture", "capture_to_disk", "load_capture"]

_AGAIN = "call capture_to_disk again with the same arguments (the finished batches are kept)"
# safetensors' dtype codes for the float dtypes a capture stores
_ST_DTYPES = {"<f2": "F16", "<f4": "F32", "<f8": "F64"}


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


def _write_manifest(directory: str, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=1).encode()
    write_file(os.path.join(directory, MANIFEST), [text], then=_AGAIN)


def _part_name(i: int, ext: str) -> str:
    return f"{i:08d}.{ext}"


def _part_bytes(arrays: Mapping[str, np.ndarray], fmt: str) -> Any:
    """One batch's arrays as the bytes of a part file (hashed as they are written)."""
    if fmt == "safetensors":
        from safetensors.numpy import save

        return save({f"layer{j}": np.ascontiguousarray(a) for j, a in enumerate(arrays.values())})
    buf = io.BytesIO()
    np.savez(buf, *[np.ascontiguousarray(a) for a in arrays.values()])
    return buf.getbuffer()


def _load_part_layer(path: str, j: int, fmt: str) -> np.ndarray:
    if fmt == "safetensors":
        from safetensors import safe_open

        with safe_open(path, framework="np") as f:
            return np.asarray(f.get_tensor(f"layer{j}"))
    with np.load(path, allow_pickle=False) as d:
        return np.asarray(d[f"arr_{j}"])


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
        Discard whatever capture ``directory`` holds instead of resuming it. Only the
        files this library made are removed (the manifest, ``parts/<index>.<ext>``, the
        layer files the manifest records or this call writes, temporary files); other
        files stay, and a manifest that cannot be read is discarded too.

    Returns
    -------
    DiskCapture
        Paths, shapes, ``.fingerprint``, ``.checksums``, and ``.load(layer)`` /
        ``.arrays()``.

    Raises
    ------
    CaptureLockedError
        When another process is capturing into ``directory`` (its pid, host and start
        time are in the message).
    ValueError
        When ``directory`` holds a capture with another fingerprint (and ``overwrite``
        is False), a manifest or file that does not check out (edited, damaged, swapped,
        a name leading out of the folder), or for the errors :func:`capture` raises.
    OSError
        When the disk is full (checked before the join: what is needed and what is
        free) or the folder is read-only; the message says what to do, and the finished
        batches stay on disk, so the same call resumes once space is freed.

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
    cannot be resumed (nor lined up with another capture). Every batch's input is hashed
    as it passes and recorded with its part; a resume checks the batches it skips, so
    other later batches are refused rather than mixed in (a finished capture is returned
    without iterating: there the first batch and the count are the check). The first
    batch is read once more than the capture needs (a re-iterable such as a DataLoader
    is iterated again from the start).

    The folder is a transaction. The call holds an OS lock on ``capture.lock`` in it from
    start to end (``fcntl.flock`` on Linux and macOS, ``msvcrt.locking`` on Windows; the
    kernel releases it when the process dies), so a second capture into the same folder
    raises :class:`CaptureLockedError` instead of merging its data. Every file is written
    under a temporary name unique to the process, hashed (SHA-256) as it is written,
    flushed and renamed; the manifest records each file's size and hash. Resuming checks
    the hash of every finished part; :func:`load_capture` and :meth:`DiskCapture.load`
    check sizes always and hashes by default. The joined files are written with plain
    writes after checking the free space, so a full disk is an error with the numbers,
    never a crash. A finished capture in a read-only folder is returned as it is.

    Examples
    --------
    >>> import os, tempfile, torch, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = os.path.join(tmp, "acts")
    ...     cap = svcca.torch.capture_to_disk(net, torch.randn(100, 4).split(25), ["1"], out)
    ...     relu = svcca.torch.load_capture(out).load("1", mmap=False)
    >>> cap.shapes["1"], cap.n_batches, relu.shape
    ((100, 8), 4, (100, 8))
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
    if format == "safetensors" and opts.dtype.str not in _ST_DTYPES:
        raise ValueError(
            f"format='safetensors' stores little-endian float16, float32 or float64; got "
            f"dtype {opts.dtype}. Use one of those dtypes, or format='npy'."
        )
    check_progress(progress)  # also when a finished capture is returned without a run
    directory = os.fspath(directory)
    first, batches, any_batch = _first_batch(batches)
    if not any_batch:
        raise ValueError("batches was empty: there was nothing to run the model on.")
    signature = {
        "version": VERSION,
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
    _files(directory, opts.layers, format)  # clashing names fail before any work
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, directory, "call again") from exc
    lock = FolderLock(directory)
    try:
        lock.acquire()
    except OSError as exc:
        # A folder nobody can write (a read-only disk) may still hold a finished capture.
        m = None if overwrite else _quiet_manifest(directory)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and m and m.get("complete"):
            check_manifest(directory, m)
            _check_same(directory, m, signature, fingerprint)
            return _finished(directory, m, write=False)
        raise disk_error(exc, os.path.join(directory, LOCK), "call again") from exc
    try:
        return _capture_locked(
            model,
            batches,
            opts,
            directory,
            format=format,
            overwrite=overwrite,
            signature=signature,
            fingerprint=fingerprint,
            forward=forward,
            device=device,
            progress=progress,
        )
    finally:
        lock.release()


def _sound(directory: str, manifest: dict[str, Any]) -> bool:
    """Whether a readable manifest also passes every check (names, types, counts)."""
    try:
        check_manifest(directory, manifest)
    except (OSError, ValueError):
        return False
    return True


class _HashedBatches:
    """The batches, each hashed as it passes (:func:`batch_digest`): a batch that was
    captured before (one of the first ``skip``, resumed) must be the one its part file
    recorded, else the resume would mix two datasets' rows; the others' digests are
    kept for their part records. Iterable again as ``batches`` is, with its length."""

    def __init__(self, batches: Iterable[Any], parts: list[Any], skip: int, where: str):
        self.batches, self.parts, self.skip, self.where = batches, parts, skip, where
        self.digests: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]

    def __iter__(self) -> Any:
        for i, batch in enumerate(self.batches):
            digest = batch_digest(batch)
            if i < self.skip:
                was = self.parts[i].get("batch") if i < len(self.parts) else None
                if was is not None and was != digest:
                    raise ValueError(
                        f"{self.where!r} holds an unfinished capture whose batch {i} differs "
                        f"from batch {i} of this call (SHA-256 on disk {was[:12]}..., now "
                        f"{digest[:12]}...): resuming would mix the rows of two datasets. "
                        "Resume with the same batches in the same order, or overwrite=True "
                        "to capture anew."
                    )
            self.digests[i] = digest
            yield batch


def _quiet_manifest(directory: str) -> dict[str, Any] | None:
    try:
        return read_manifest(directory)
    except (OSError, ValueError):
        return None


def _capture_locked(
    model: Any,
    batches: Iterable[Any],
    opts: CaptureOptions,
    directory: str,
    *,
    format: Format,
    overwrite: bool,
    signature: dict[str, Any],
    fingerprint: dict[str, Any],
    forward: Any,
    device: Any,
    progress: bool | None,
) -> DiskCapture:
    """The body of :func:`capture_to_disk`, run while this process holds the lock."""
    manifest: dict[str, Any] = {
        **signature,
        "fingerprint": fingerprint,
        "batches_done": 0,
        "rows": [],
        "parts": [],
        "complete": False,
    }
    ext = part_ext(format)
    targets = [layer_file(n, format) for n in opts.layers]
    if overwrite:
        old = _quiet_manifest(directory)
        if old is None and not os.path.lexists(os.path.join(directory, MANIFEST)):
            _clear(directory, None, [])  # no capture was here: nothing of its names is ours
            _refuse_foreign(directory, targets, parts=False)
        elif old is not None and _sound(directory, old):
            _clear(directory, old, [])  # what the manifest records, and no other file
            _refuse_foreign(directory, targets, parts=False)
        else:  # a capture folder whose manifest is damaged: its layer files were ours
            _clear(directory, old, targets)
    else:
        old = read_manifest(directory)
        if old is not None:
            check_manifest(directory, old)
            _check_same(directory, old, signature, fingerprint)
            manifest = old
        else:  # a new capture: never over files someone else put there
            _refuse_foreign(directory, targets, parts=True)
    if manifest["batches_done"] == 0 and not manifest["complete"]:
        # Recorded before any part file is: a folder without a manifest then never holds
        # parts of ours (a kill after the first part but before its record resumes).
        _write_manifest(directory, manifest)
    _remove_ours(directory, top=is_our_temp, part=is_our_temp)  # left by killed writers
    if manifest["complete"]:
        return _finished(directory, manifest, write=True)
    resumed_from = int(manifest["batches_done"])
    fix = f"The unfinished capture in {directory!r} is damaged. {RECAPTURE}"
    for i, record in enumerate(manifest["parts"]):  # what was finished, as it was written
        check_file(_part_path(directory, i, ext), record, verify=True, fix=fix)
    # Parts and layer files that the manifest does not record were never committed.
    names = {layer_file(n, format) for n in (*opts.layers, *manifest.get("recorded", ()))}
    _remove_ours(
        directory,
        top=lambda e: e in names,
        part=lambda e: (m := PART_NAME.match(e)) is not None and int(m[1]) >= resumed_from,
    )
    parts_dir = os.path.join(directory, PARTS)
    try:
        os.makedirs(parts_dir, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, parts_dir, _AGAIN) from exc
    inside(directory, PARTS, "the parts folder")

    inputs = _HashedBatches(batches, manifest["parts"], resumed_from, directory)

    def write(i: int, arrays: dict[str, np.ndarray]) -> None:
        _check_shapes(manifest.get("shapes"), arrays, i)
        size, sha = write_file(
            _part_path(directory, i, ext), [_part_bytes(arrays, format)], then=_AGAIN
        )
        manifest["parts"].append({"size": size, "sha256": sha, "batch": inputs.digests[i]})
        manifest["batches_done"] = i + 1
        manifest["rows"].append(int(next(iter(arrays.values())).shape[0]))
        manifest["shapes"] = {n: list(a.shape[1:]) for n, a in arrays.items()}
        # With calls="each" the recorded names ("block#0", ...) are the model's to say.
        manifest["recorded"] = list(arrays)
        _write_manifest(directory, manifest)

    seen = capture_stream(
        model,
        inputs,
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
    _files(directory, recorded, format)
    files = _join(directory, manifest, recorded)
    manifest["complete"] = True
    manifest["files"] = files
    del manifest["parts"]
    _write_manifest(directory, manifest)
    _remove_ours(directory, top=lambda e: False, part=lambda e: True)  # the parts, now joined
    cap = capture_of(directory, manifest, resumed_from=resumed_from)
    for layer in cap.layers:  # just written and hashed as written: loads need not rehash
        st = os.stat(cap.files[layer])
        cap._hashed[cap.files[layer]] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return cap


def _finished(directory: str, manifest: Mapping[str, Any], *, write: bool) -> DiskCapture:
    """A finished capture: its files' names and sizes checked (hashes when loaded)."""
    if write:  # parts left by a capture killed after its last manifest write
        _remove_ours(directory, top=lambda e: False, part=lambda e: True)
    n = int(manifest["batches_done"])
    cap = capture_of(directory, manifest, resumed_from=n)
    for layer in cap.layers:
        cap.check(layer, verify=False)
    return cap


def _part_path(directory: str, i: int, ext: str) -> str:
    return inside(directory, _part_name(i, ext), f"part {i}", PARTS)


# What a temporary name adds to a file's: ".<pid>-<8 hex>.tmp" (pids up to 10 digits).
_TEMP_SUFFIX = 24


def _files(directory: str, layers: Sequence[str], fmt: str) -> dict[str, str]:
    """Each layer's file in ``directory``; refuses, before any work, names that clash once
    made file-safe (also when only their case differs: macOS's and Windows's default
    disks do not tell them apart) and names too long for the file system with the
    temporary suffix."""
    stems = {n: file_stem(n) for n in layers}
    if len({v.casefold() for v in stems.values()}) != len(stems):
        raise ValueError(
            f"Layer names {list(layers)} map to clashing file names {stems} (names that "
            "differ only in case clash on case-insensitive disks). Capture them into "
            "separate folders, or rename the modules."
        )
    try:
        limit = os.pathconf(directory if os.path.isdir(directory) else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # pragma: no cover - no pathconf
        limit = 255
    for n, stem in stems.items():
        if len(f"{stem}.{fmt}".encode()) + _TEMP_SUFFIX > limit:
            raise ValueError(
                f"Layer {n[:40]!r}... makes a file name of {len(stem.encode()) + len(fmt) + 1} "
                f"bytes; with its temporary suffix it must fit in {limit} (the file "
                "system's NAME_MAX). Capture a shorter-named module (e.g. wrap it), or "
                "capture_stream it and save the arrays yourself."
            )
    return {n: os.path.join(directory, f"{stems[n]}.{fmt}") for n in layers}


def _check_same(
    directory: str, old: Mapping[str, Any], signature: Mapping[str, Any], fp: Mapping[str, Any]
) -> None:
    """Raise unless the capture on disk was made of the same model, options and data."""
    fix = "Use another directory, or overwrite=True to discard it and capture anew."
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


def _header(fmt: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """The bytes before the data of a ``.npy`` or ``.safetensors`` file of one array."""
    if fmt == "npy":
        buf = io.BytesIO()
        d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(buf, d)
        return buf.getvalue()
    nbytes = int(np.prod(shape)) * dtype.itemsize
    meta = {"dtype": _ST_DTYPES[dtype.str], "shape": list(shape), "data_offsets": [0, nbytes]}
    head = json.dumps({"activations": meta}, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # safetensors aligns the data to 8 bytes
    return struct.pack("<Q", len(head)) + head


def _join(directory: str, manifest: dict[str, Any], layers: tuple[str, ...]) -> dict[str, Any]:
    """Join the part files into one file per layer, written with plain writes (a full disk
    is an OSError, never a SIGBUS of a memory map) after checking that the space is free.
    Returns each layer file's record ``{"name", "size", "sha256"}``."""
    fmt, ext = manifest["format"], part_ext(manifest["format"])
    rows = [int(r) for r in manifest["rows"]]
    n = sum(rows)
    dtype = np.dtype(manifest["dtype"])
    shapes = {name: (n, *manifest["shapes"][name]) for name in layers}
    heads = {name: _header(fmt, dtype, shapes[name]) for name in layers}
    need = sum(len(heads[k]) + int(np.prod(shapes[k])) * dtype.itemsize for k in layers)
    free = shutil.disk_usage(directory).free
    if need > free:
        raise OSError(
            errno.ENOSPC,
            f"Joining the {len(rows)} finished batches of {directory!r} into one file per "
            f"layer needs {need} bytes ({need / 2**20:.1f} MiB), but {free} bytes "
            f"({free / 2**20:.1f} MiB) are free there. Free space and call capture_to_disk "
            "again with the same arguments: the finished batches are kept and only the join "
            "runs then.",
            directory,
        )

    def chunks(j: int, name: str) -> Iterator[Any]:
        yield heads[name]
        for i, r in enumerate(rows):
            a = _load_part_layer(_part_path(directory, i, ext), j, fmt)
            if a.shape != (r, *shapes[name][1:]) or a.dtype != dtype:
                raise ValueError(
                    f"Part {i} of {directory!r} holds layer {name!r} as {a.dtype} {a.shape}, "
                    f"but the manifest records {r} rows of {shapes[name][1:]} in {dtype}: the "
                    f"manifest was edited. {RECAPTURE}"
                )
            yield np.ascontiguousarray(a).reshape(-1).view(np.uint8)

    files = {}
    for j, name in enumerate(layers):
        fname = layer_file(name, fmt)
        size, sha = write_file(
            inside(directory, fname, f"layer {name!r}"), chunks(j, name), then=_AGAIN
        )
        files[name] = {"name": fname, "size": size, "sha256": sha}
    return files


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


def _remove_ours(
    directory: str, *, top: Callable[[str], bool], part: Callable[[str], bool]
) -> None:
    """Remove the files in ``directory`` whose names ``top`` accepts and the files in its
    ``parts`` folder that ``part`` accepts, of the names this library makes only (part
    files and temporary files in ``parts``); ``parts`` goes when it is left empty. A name
    whose path leads out of the folder (a symlink) raises instead: nothing outside the
    folder is ever removed."""
    doomed = [  # every path is checked before any is removed
        inside(directory, e, f"{e!r}")
        for e in os.listdir(directory)
        if e not in (MANIFEST, LOCK, PARTS) and top(e)
    ]
    parts = os.path.join(directory, PARTS)
    if os.path.lexists(parts):
        inside(directory, PARTS, "the parts folder")
        doomed += [
            inside(directory, e, f"part {e!r}", PARTS)
            for e in os.listdir(parts)
            if (PART_NAME.match(e) or is_our_temp(e) or _legacy_temp(e)) and part(e)
        ]
    for path in doomed:
        _unlink(path)
    try:
        os.rmdir(parts)
    except OSError:
        pass  # not there, or not empty: files this library did not make stay


def _legacy_temp(name: str) -> bool:
    """Temporary names of manifest version 2 (``<name>.tmp``)."""
    return name.endswith(".tmp") and bool(PART_NAME.match(name[:-4]))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise disk_error(exc, path, "call again") from exc


def _refuse_foreign(directory: str, targets: Sequence[str], *, parts: bool) -> None:
    """Refuse to start a capture over files no manifest records: a layer file this call
    would write (or, for a folder without a manifest, a part file) that already exists
    was put there by someone else, or by a capture whose manifest is gone; it is never
    overwritten."""
    taken = [t for t in targets if os.path.lexists(os.path.join(directory, t))]
    part_dir = os.path.join(directory, PARTS)
    if parts and os.path.isdir(part_dir) and not os.path.islink(part_dir):
        taken += [f"{PARTS}/{e}" for e in sorted(os.listdir(part_dir)) if not is_our_temp(e)]
    if taken:
        shown = ", ".join(repr(t) for t in taken[:5]) + (" ..." if len(taken) > 5 else "")
        raise FileExistsError(
            errno.EEXIST,
            f"{directory!r} already holds {shown}, which no capture manifest there records: "
            "expected a folder without files of the names this capture writes. They are "
            "not overwritten (they may be yours). Move them away, or capture into another "
            "folder.",
        )


def _clear(directory: str, old: Mapping[str, Any] | None, names: Sequence[str]) -> None:
    """For ``overwrite=True``: remove what this library made in ``directory``: the parts,
    the layer files the old manifest records (when it can be read), the layer files
    ``names`` (given when the folder's manifest is damaged: a capture folder's files of
    this call's names were its own), the manifest, and temporary files. Other files
    stay."""
    manifest = inside(directory, MANIFEST, "the manifest")
    ours: set[str] = set(names)
    records = old.get("files") if isinstance(old, Mapping) else None
    for r in records.values() if isinstance(records, Mapping) else ():
        name = r.get("name") if isinstance(r, Mapping) else r  # version 2: the name itself
        # a name that is not plain (``../x``, ``/etc/x``) is part of the manifest discarded
        if (
            isinstance(name, str)
            and not not_plain(name)
            and name.endswith((".npy", ".safetensors"))
        ):
            ours.add(name)
    legacy = {f"{n}.tmp" for n in (*ours, MANIFEST)}  # version 2's temporaries
    _remove_ours(
        directory,
        top=lambda e: e in ours or e in legacy or is_our_temp(e),
        part=lambda e: True,
    )
    if os.path.lexists(manifest):
        _unlink(manifest)
