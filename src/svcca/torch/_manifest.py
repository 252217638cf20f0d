"""A capture folder's manifest: its schema, its files' sizes and hashes, and reading it.

``manifest.json`` (version 3) holds the capture's settings and fingerprint, the number
of finished batches with their row counts, and for every file the library wrote its
size and SHA-256: ``parts`` (one entry per finished batch, named
``parts/<index:08d>.<npz|safetensors>``) while the capture runs, ``files`` (one entry
per layer, ``{"name", "size", "sha256"}``) once it is complete. Every open checks the
schema and that the counts agree; names are plain file names inside the folder.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from svcca.torch._capture import file_stem
from svcca.torch._folder import hash_file, inside, lock_holder

__all__ = ["DiskCapture", "check_capture", "load_capture"]

Format = Literal["safetensors", "npy"]
MANIFEST = "manifest.json"
PARTS = "parts"
VERSION = 3
PART_NAME = re.compile(r"^(\d{8})\.(npz|safetensors)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
RECAPTURE = "Recapture with capture_to_disk(..., overwrite=True)."


def part_ext(fmt: str) -> str:
    return "safetensors" if fmt == "safetensors" else "npz"


def layer_file(layer: str, fmt: str) -> str:
    """The file name of one layer's joined file."""
    return f"{file_stem(layer)}.{fmt}"


# ------------------------------------------------------------------------ reading
def read_manifest(directory: str) -> dict[str, Any] | None:
    """The parsed manifest of ``directory``, or None when it has none."""
    path = inside(directory, MANIFEST, "the manifest")
    if not os.path.lexists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"{path!r} is not a readable manifest ({exc}): the capture in {directory!r} "
            f"cannot be checked. {RECAPTURE} (it discards the capture)."
        ) from exc
    if not isinstance(m, dict):
        raise ValueError(
            f"{path!r} is not a capture manifest: expected a JSON object, got "
            f"{type(m).__name__}. {RECAPTURE}"
        )
    return m


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _record_ok(r: Any) -> bool:
    batch = r.get("batch") if isinstance(r, dict) else None  # the input's SHA-256
    return (
        isinstance(r, dict)
        and _is_count(r.get("size"))
        and isinstance(r.get("sha256"), str)
        and bool(_HEX64.match(r["sha256"]))
        and (batch is None or (isinstance(batch, str) and bool(_HEX64.match(batch))))
    )


def check_manifest(directory: str, m: Mapping[str, Any], fix: str = RECAPTURE) -> None:
    """Raise ValueError unless ``m`` is a version-3 manifest whose parts agree."""
    where = repr(os.path.join(directory, MANIFEST))
    if m.get("version") != VERSION:
        raise ValueError(
            f"{directory!r} holds a capture in manifest version {m.get('version')!r} (this "
            f"version writes {VERSION}, with a fingerprint of the model and the data and each "
            f"file's size and SHA-256), so it cannot be checked against this call. {fix}"
        )

    def bad(what: str) -> ValueError:
        return ValueError(f"{where} is damaged or was edited: {what}. {fix}")

    if m.get("format") not in ("npy", "safetensors"):
        raise bad(f"format is {m.get('format')!r}, expected 'npy' or 'safetensors'")
    for key in ("layers", "recorded"):
        v = m.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise bad(f"{key} is {v!r}, expected a list of layer names")
    try:
        dt = np.dtype(m.get("dtype"))
    except TypeError:
        raise bad(f"dtype is {m.get('dtype')!r}, expected a NumPy dtype such as '<f4'") from None
    if dt.kind != "f" or m.get("dtype") is None:
        raise bad(f"dtype is {m.get('dtype')!r}, expected a floating dtype such as '<f4'")
    done, rows, complete = m.get("batches_done"), m.get("rows"), m.get("complete")
    if not _is_count(done):
        raise bad(f"batches_done is {done!r}, expected a count")
    if not isinstance(rows, list) or not all(_is_count(r) for r in rows):
        raise bad(f"rows is {rows!r}, expected one row count per finished batch")
    if len(rows) != done:
        raise bad(f"batches_done is {done}, but rows lists {len(rows)} batches")
    if not isinstance(complete, bool):
        raise bad(f"complete is {complete!r}, expected true or false")
    fp = m.get("fingerprint")
    if not (
        isinstance(fp, dict)
        and all(isinstance(fp.get(k), str) for k in ("model", "first_batch"))
        and (fp.get("n_batches") is None or _is_count(fp.get("n_batches")))
    ):
        raise bad(
            f"fingerprint is {fp!r}, expected {{'model': sha256, 'first_batch': sha256, "
            "'n_batches': a count or null}"
        )
    recorded = list(m.get("recorded", m["layers"]))
    if done:
        shapes = m.get("shapes")
        if not isinstance(shapes, dict) or any(
            not isinstance(shapes.get(n), list) or not all(_is_count(d) for d in shapes[n])
            for n in recorded
        ):
            raise bad(f"shapes is {shapes!r}, expected a shape per layer {recorded}")
    if not complete:
        parts = m.get("parts")
        if not isinstance(parts, list) or not all(_record_ok(r) for r in parts):
            raise bad("parts is not a list of {'size', 'sha256'} records")
        if len(parts) != done:
            raise bad(f"batches_done is {done}, but parts records {len(parts)} part files")
        return
    if not done:
        raise bad("a complete capture with 0 batches")
    files = m.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(recorded):
        raise bad(f"files is {files!r}, expected one record per layer {recorded}")
    for layer, r in files.items():
        if not _record_ok(r):
            raise bad(f"the file record of layer {layer!r} is {r!r}")
        inside(directory, r.get("name"), f"the file of layer {layer!r}")
        want = layer_file(layer, m["format"])
        if r["name"] != want:
            raise bad(f"layer {layer!r} is recorded in {r['name']!r}, expected {want!r}")


def check_file(
    path: str,
    record: Mapping[str, Any],
    *,
    verify: bool,
    fix: str,
    cache: dict[str, tuple[int, int, int]] | None = None,
) -> None:
    """Raise ValueError unless the file at ``path`` has the recorded size (always) and
    SHA-256 (when ``verify``; skipped when ``cache`` says this very file was hashed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(
            f"{path!r} is missing; the manifest records it ({record['size']} bytes). {fix}"
        ) from None
    if st.st_size != record["size"]:
        raise ValueError(
            f"{path!r} has {st.st_size} bytes, but the manifest records {record['size']}: the "
            f"file was cut off, replaced or edited after it was written. {fix}"
        )
    if not verify:
        return
    key = (st.st_size, st.st_mtime_ns, st.st_ino)
    if cache is not None and cache.get(path) == key:
        return
    got = hash_file(path)[1]
    if got != record["sha256"]:
        raise ValueError(
            f"{path!r} does not hold what was written there: its SHA-256 is {got[:16]}..., "
            f"the manifest records {record['sha256'][:16]}... (a flipped bit, a file swapped "
            f"with another, an edit). {fix}"
        )
    if cache is not None:
        cache[path] = key


# ------------------------------------------------------------------------ the capture
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
    checksums : dict of str to dict
        Each layer file's ``{"name", "size", "sha256"}`` as the manifest records them.
    """

    directory: str
    layers: tuple[str, ...]
    files: dict[str, str] = field(repr=False)
    shapes: dict[str, tuple[int, ...]]
    format: Format
    n_batches: int
    resumed_from: int
    fingerprint: dict[str, Any] = field(default_factory=dict, repr=False)
    checksums: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # files hashed in this process: path -> (size, mtime_ns, inode) when it matched
    _hashed: dict[str, tuple[int, int, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def check(self, layer: str, *, verify: bool = True) -> None:
        """Raise ValueError unless ``layer``'s file has its recorded size and (with
        ``verify``) SHA-256."""
        if layer not in self.files:
            raise KeyError(f"No layer {layer!r} in this capture; it has {list(self.layers)}.")
        record = self.checksums.get(layer)
        if record is not None:
            fix = f"The capture in {self.directory!r} is damaged. {RECAPTURE}"
            check_file(self.files[layer], record, verify=verify, fix=fix, cache=self._hashed)

    def load(self, layer: str, *, mmap: bool = True, verify: bool = True) -> np.ndarray:
        """One layer's activations (memory-mapped for ``.npy`` unless ``mmap=False``).

        The file's size is checked against the manifest on every load; with ``verify``
        (the default) its SHA-256 too, once per process and file unless the file changed
        since (about 1 s per GB from the page cache, plus the read time of a cold disk;
        ``verify=False`` skips it). A damaged or swapped file raises ValueError.

        A memory map is not guarded after it is returned: if another process truncates
        the file while you compute on it, the process dies with SIGBUS (no Python code
        can catch it). Where that can happen, pass ``mmap=False`` or read the file with
        ``svcca._sources.load_array(capture.files[layer])`` (positioned reads: a clear
        error instead; docs/inputs.md).
        """
        self.check(layer, verify=verify)
        a = _read(self.files[layer], self.format, mmap=mmap)
        if a.shape != self.shapes[layer]:
            raise ValueError(
                f"{self.files[layer]!r} holds an array of shape {a.shape}, but the manifest "
                f"records {self.shapes[layer]} for layer {layer!r}: the file or the manifest "
                f"was edited. {RECAPTURE}"
            )
        return a

    def arrays(self, *, mmap: bool = True, verify: bool = True) -> dict[str, np.ndarray]:
        """All layers, in capture order."""
        return {n: self.load(n, mmap=mmap, verify=verify) for n in self.layers}


def _read(path: str, fmt: str, *, mmap: bool) -> np.ndarray:
    if fmt == "npy":
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    from safetensors.numpy import load_file

    return load_file(path)["activations"]


def capture_of(directory: str, m: Mapping[str, Any], resumed_from: int) -> DiskCapture:
    """The :class:`DiskCapture` a complete, checked manifest describes."""
    n = int(sum(m["rows"]))
    layers = tuple(m.get("recorded", m["layers"]))
    files = m["files"]
    return DiskCapture(
        directory=directory,
        layers=layers,
        files={k: inside(directory, files[k]["name"], f"the file of {k!r}") for k in layers},
        shapes={k: (n, *m["shapes"][k]) for k in layers},
        format=m["format"],
        n_batches=int(m["batches_done"]),
        resumed_from=resumed_from,
        fingerprint=dict(m.get("fingerprint") or {}),
        checksums={k: dict(files[k]) for k in layers},
    )


def _unfinished(directory: str, m: Mapping[str, Any]) -> str:
    try:
        holder = lock_holder(directory)
    except (OSError, ValueError):
        holder = None
    if holder:
        return (
            f"The capture in {directory!r} is running now ({m['batches_done']} batches done, "
            f"pid {holder.get('pid')} on host {holder.get('host')!r}); load it when it ends."
        )
    return (
        f"The capture in {directory!r} is unfinished ({m['batches_done']} batches done); "
        "run capture_to_disk again with the same arguments to finish it."
    )


def load_capture(directory: str | os.PathLike[str], *, verify: bool = True) -> DiskCapture:
    """Open a finished capture written by :func:`capture_to_disk`.

    Parameters
    ----------
    directory : path
    verify : bool, default True
        Check every layer file's SHA-256 against the manifest now (sizes, the manifest's
        schema and its names are always checked). Hashing reads every file once:
        measured 0.19 to 0.25 s for a 200 MB capture in the page cache on one core
        (about 1 GB/s), plus the read time when the files come from a cold disk;
        ``verify=False`` opens the same capture in under 1 ms. Without it, a swapped
        layer file of the same size, or a flipped bit, is not caught. Later
        :meth:`DiskCapture.load` calls do not hash a file again unless it changed.

    Raises
    ------
    ValueError
        When the folder holds no capture, an unfinished one, or a manifest or file that
        does not check out (a name leading out of the folder, another size or hash).

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
    directory = os.fspath(directory)
    m = read_manifest(directory)
    if m is None:
        raise ValueError(f"{directory!r} holds no capture (no {MANIFEST}).")
    fix = (
        f"{RECAPTURE} Its layer files are plain .npy or .safetensors files that numpy.load "
        "and safetensors still read."
    )
    check_manifest(directory, m, fix=fix if m.get("version") != VERSION else RECAPTURE)
    if not m["complete"]:
        raise ValueError(_unfinished(directory, m))
    cap = capture_of(directory, m, resumed_from=int(m["batches_done"]))
    for layer in cap.layers:
        cap.check(layer, verify=verify)
    return cap


# ------------------------------------------------------------------------ svcca verify
def check_capture(directory: str) -> tuple[str, list[str]]:
    """What ``directory`` holds, in one line, and each problem found, one line each
    (none when the capture checks out: schema, names, sizes and SHA-256 of every file)."""
    try:
        m = read_manifest(directory)
        if m is None:
            return "no capture", [f"holds no capture (no {MANIFEST})"]
        check_manifest(directory, m)
    except ValueError as exc:
        return "a damaged capture", [str(exc)]
    problems: list[str] = []
    try:
        holder = lock_holder(directory)
    except (OSError, ValueError) as exc:
        holder = None
        problems.append(str(exc))
    done = m["batches_done"]
    checks: list[tuple[str, Mapping[str, Any], str, tuple[str, ...]]]
    if m["complete"]:
        files = m["files"]
        checks = [(r["name"], r, f"the file of layer {k!r}", ()) for k, r in files.items()]
        status = f"a finished capture: {len(files)} layers, {done} batches, {sum(m['rows'])} rows"
    else:
        ext = part_ext(m["format"])
        checks = [(f"{i:08d}.{ext}", r, f"part {i}", (PARTS,)) for i, r in enumerate(m["parts"])]
        status = (
            f"an unfinished capture: {done} batches done; capture_to_disk with the same "
            "arguments resumes it"
        )
    for name, r, what, sub in checks:
        try:
            check_file(inside(directory, name, what, *sub), r, verify=True, fix="")
        except ValueError as exc:
            problems.append(str(exc).strip())
    if not problems:
        status += f"; the size and SHA-256 of all {len(checks)} files match the manifest"
    if holder:
        status += (
            f"; locked by a running capture (pid {holder.get('pid')} on host "
            f"{holder.get('host')!r})"
        )
    return status, problems
