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
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from svcca._progress import check_progress
from svcca.torch._digest import batch_digest, model_digest, option_id
from svcca.torch._folder import (
    LOCK,
    FolderLock,
    disk_error,
    inside,
    is_our_temp,
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
from svcca.torch._options import (
    Calls,
    CaptureOptions,
    Conv,
    MaskOption,
    Selector,
    Sequence_,
)
from svcca.torch._parts import (
    _AGAIN,
    _ST_DTYPES,
    _check_same,
    _check_shapes,
    _clear,
    _files,
    _join,
    _part_bytes,
    _part_path,
    _refuse_foreign,
    _remove_ours,
)
from svcca.torch._run import run_capture

__all__ = ["DiskCapture", "capture_to_disk", "load_capture"]


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
        **{k: option_id(v) for k, v in opts.kwargs().items()},
        "forward": option_id(forward),
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

    seen = run_capture(
        model,
        inputs,
        opts,
        write,
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
