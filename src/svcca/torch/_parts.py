"""The files of a disk capture: one part file per finished batch (``.npz`` or
``.safetensors``, written under a temporary name and renamed), joined into one file per
layer when the capture completes; temporary and foreign files told apart and cleared."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from svcca.torch._capture import file_stem
from svcca.torch._folder import (
    LOCK,
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
    layer_file,
    part_ext,
)
from svcca.torch._options import (
    CaptureError,
)

_AGAIN = "call capture_to_disk again with the same arguments (the finished batches are kept)"
# safetensors' dtype codes for the float dtypes a capture stores
_ST_DTYPES = {"<f2": "F16", "<f4": "F32", "<f8": "F64"}


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
