"""Saved :class:`~svcca.Moments` files: written atomically, read back only when valid.

A saved statistic is a NumPy ``.npz`` archive (a zip of ``.npy`` members, no pickles).

Writing (:func:`save_arrays`) goes to a temporary file of a name unique to the process
and the call, in the destination's folder, which is flushed, ``fsync``'d and renamed
over the destination (``os.replace``, atomic on POSIX and Windows): a reader sees the
old file or the new one, never a mixture, even with several writers at once.

Reading (:func:`load_fields`) checks everything before trusting it, and every failure
is a ``ValueError`` naming the file: that it is a zip at all (a text file, a single
``.npy``, an empty or truncated file are each named as such); each member's ``.npy``
header (bounded in size, parsed without reading the data) has the dtype and shape the
format version prescribes, and the shapes agree with each other; no member declares
more bytes than its zip entry holds, so nothing is allocated beyond what the file can
supply; the zip's CRC-32 of each member (a flipped bit is caught); and the values make
a statistic: an integer count, finite sums, symmetric Gram blocks with non-negative
diagonals and every entry within the Cauchy-Schwarz bound, to round-off.
"""

from __future__ import annotations

import math
import os
import secrets
import zipfile
from typing import Any

import numpy as np
from numpy.lib import format as npy

__all__ = ["FORMAT_VERSION", "load_fields", "save_arrays"]

# Version 1: files written before the version key existed (n, means, blocks, precision;
# precision optional). Version 2: the same arrays plus ``format_version``. Version 3:
# plus the power-of-two unit of each side's sums, ``scale_x`` and ``scale_y`` (files of
# versions 1 and 2 have unit 1).
FORMAT_VERSION = 3
_FLOATS = ("mean_x", "mean_y", "sxx", "syy", "sxy")
_SCALES = ("scale_x", "scale_y")
_REQUIRED = {
    1: ("n", *_FLOATS),
    2: ("format_version", "n", "precision", *_FLOATS),
    3: ("format_version", "n", "precision", *_FLOATS, *_SCALES),
}
_OPTIONAL: dict[int, tuple[str, ...]] = {1: ("precision",), 2: (), 3: ()}
# Our headers are about 128 bytes; anything longer than this is not ours, and is
# refused before it is read (NumPy's own limit is 10,000).
_MAX_HEADER = 4096
# A deflate stream expands at most 1032:1, so a member claiming more is corrupt; with
# this, nothing read can need more memory than about 1032 times the file's size.
_DEFLATE_MAX_RATIO = 1032
# Counts beyond 2^53 are not exact in float64, in which merges weigh them.
_MAX_N = 2**53


# ---------------------------------------------------------------------- writing
def save_arrays(path: str | os.PathLike[str], arrays: dict[str, Any]) -> None:
    """Write ``arrays`` as an ``.npz`` at exactly ``path``, atomically.

    The temporary file is ``.<name>.<pid>.<random>.tmp`` in the same folder (the rename
    must not cross file systems); it is removed whatever interrupts the write.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # An interrupted save leaves neither a half-written file nor the temporary.
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):  # name the destination, not the temporary
            raise type(exc)(
                exc.errno, f"Could not save Moments to {path!r}: {exc.strerror or exc}"
            ) from exc
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (best effort: not every platform opens folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- reading
class _Invalid(Exception):
    """Raised inside the reader; turned into one ValueError naming the file."""


def load_fields(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The validated fields of a saved statistic: n, the five float64 arrays, precision,
    and the sums' units ``scale_x``, ``scale_y`` (1.0 before format version 3).

    Raises
    ------
    ValueError
        Naming the file and what is wrong with it, for every way it can be wrong.
    """
    path = os.fspath(path)
    where = f"Could not read Moments from {path!r}:"
    if os.path.isdir(path):
        raise ValueError(f"{where} it is a folder, not a saved Moments file (an .npz).")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO, /dev/zero, a socket
        raise ValueError(
            f"{where} it is not a regular file (a device, pipe or socket), not a saved "
            "Moments file (an .npz); reading it could block or never end."
        )
    try:
        with open(path, "rb") as fh:
            return _read(fh)
    except _Invalid as exc:
        raise ValueError(
            f"{where} not a saved Moments file: {exc} Save it again with Moments.save."
        ) from None
    except Exception as exc:  # a damaged zip raises many kinds (BadZipFile, struct.error,
        # NotImplementedError for a flipped version field, ...): each one names the file
        raise ValueError(f"{where} {type(exc).__name__}: {exc}") from exc


def _read(fh: Any) -> dict[str, Any]:
    size = os.fstat(fh.fileno()).st_size
    head = fh.read(8)
    fh.seek(0)
    if not zipfile.is_zipfile(fh):
        if size == 0:
            raise _Invalid("the file is empty (0 bytes).")
        if head.startswith(npy.MAGIC_PREFIX):
            raise _Invalid(
                "it holds a single .npy array; Moments.save writes an .npz archive of "
                "several arrays."
            )
        if head.startswith(b"PK"):
            raise _Invalid(
                f"it starts as a zip archive but its directory is missing or damaged "
                f"(truncated? {size} bytes)."
            )
        raise _Invalid(f"it is not an .npz (zip) archive: it starts with {head!r}.")
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as exc:
        raise _Invalid(f"the zip archive is damaged ({type(exc).__name__}: {exc}).") from None
    with zf:
        infos = {
            (i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i
            for i in zf.infolist()
        }
        version = _version(zf, infos)
        required, optional = _REQUIRED[version], _OPTIONAL[version]
        missing = [k for k in required if k not in infos]
        if missing:
            raise _Invalid(f"it lacks the arrays {missing} (format version {version}).")
        extra = sorted(set(infos) - set(required) - set(optional))
        if extra:
            raise _Invalid(f"it holds arrays {extra} that format version {version} does not have.")
        headers = {k: _header(zf, infos[k], k) for k in infos}
        _check_headers(headers)
        values = {k: _data(zf, infos[k], k, headers[k]) for k in infos}
    return _check_values(values, version)


def _version(zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo]) -> int:
    if "format_version" not in infos:
        return 1
    info = infos["format_version"]
    header = _header(zf, info, "format_version")
    if header[0] != () or header[2].kind not in "iu":
        raise _Invalid(f"format_version must be an integer scalar; its header says {header}.")
    version = int(_data(zf, info, "format_version", header))
    if version not in _REQUIRED or version > FORMAT_VERSION:
        if version > FORMAT_VERSION:
            raise _Invalid(
                f"it has format version {version}, newer than this svcca reads (up to "
                f"{FORMAT_VERSION}); upgrade svcca."
            )
        raise _Invalid(f"format version {version} does not exist.")
    return version


def _header(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str
) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header_bytes)`` of a member, data unread."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _Invalid(f"array {key!r} is compressed with an unsupported method.")
    if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise _Invalid(
            f"array {key!r} claims {info.file_size} bytes from {info.compress_size} "
            "compressed ones, more than any zip member can hold."
        )
    try:
        with zf.open(info) as m:
            major, _ = npy.read_magic(m)
            if major not in (1, 2, 3):
                raise _Invalid(f"array {key!r} has .npy format version {major}.")
            read = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
            shape, fortran, dtype = read(m, max_header_size=_MAX_HEADER)
            header_bytes = m.tell()
    except _Invalid:
        raise
    except Exception as exc:  # the header is a Python literal: many parse errors
        raise _Invalid(
            f"the header of array {key!r} is not a valid .npy header ({type(exc).__name__}: {exc})."
        ) from None
    if dtype.hasobject:
        raise _Invalid(
            f"array {key!r} holds Python objects (dtype {dtype}); pickles are never loaded."
        )
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
    if info.file_size != header_bytes + nbytes:
        raise _Invalid(
            f"array {key!r} is declared as {dtype} of shape {shape} ({nbytes} bytes) but "
            f"its zip entry holds {info.file_size - header_bytes} bytes of data."
        )
    return tuple(shape), bool(fortran), dtype, header_bytes


def _check_headers(h: dict[str, tuple[tuple[int, ...], bool, np.dtype, int]]) -> None:
    """Dtypes and shapes, from the headers alone (nothing allocated yet)."""
    if h["n"][0] != () or h["n"][2].kind not in "iu":
        raise _Invalid(f"n must be an integer scalar; it is {h['n'][2]} of shape {h['n'][0]}.")
    if "precision" in h and (h["precision"][0] != () or h["precision"][2].kind != "U"):
        raise _Invalid("precision must be a string scalar.")
    for key in _SCALES:
        if key in h and (h[key][0] != () or h[key][2] != np.float64):
            raise _Invalid(
                f"{key} must be a float64 scalar; it is {h[key][2]} of shape {h[key][0]}."
            )
    for key in _FLOATS:
        shape, _, dtype, _ = h[key]
        if dtype.kind != "f" or dtype.itemsize != 8:
            raise _Invalid(f"{key} must be float64; it is {dtype}.")
        want = 1 if key.startswith("mean") else 2
        if len(shape) != want:
            raise _Invalid(f"{key} must be {want}-D; it has shape {shape}.")
    p, q = h["mean_x"][0][0], h["mean_y"][0][0]
    if p < 1:
        raise _Invalid("mean_x is empty; X needs at least one feature.")
    for key, block in (("sxx", (p, p)), ("syy", (q, q)), ("sxy", (p, q))):
        if h[key][0] != block:
            raise _Invalid(
                f"{key} has shape {h[key][0]}, but means of lengths {p} and {q} need {block}."
            )


def _data(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, header: Any) -> np.ndarray:
    shape, fortran, dtype, header_bytes = header
    with zf.open(info) as m:
        m.read(header_bytes)
        nbytes = info.file_size - header_bytes
        raw = m.read(nbytes)
        m.read(1)  # reach the end of the entry: the zip's CRC-32 is checked there
    if len(raw) != nbytes:
        raise _Invalid(f"array {key!r} ends after {len(raw)} of its {nbytes} bytes.")
    if dtype.kind == "U":
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    a = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return np.array(a, dtype=dtype.newbyteorder("="), order="C")


def _check_values(v: dict[str, Any], version: int) -> dict[str, Any]:
    n_raw = v["n"]
    if n_raw < 0 or n_raw > _MAX_N:
        raise _Invalid(f"n = {int(n_raw)} is not a sample count (expected 0 <= n <= 2^53).")
    n = int(n_raw)
    precision = str(v["precision"][()]) if "precision" in v else "float64"
    if precision not in ("float64", "float32"):
        raise _Invalid(f"precision must be 'float64' or 'float32'; it is {precision!r}.")
    for key in _FLOATS:
        if not np.isfinite(v[key]).all():
            raise _Invalid(f"{key} holds NaN or inf.")
    if n == 0:
        for key in _FLOATS:
            if np.any(v[key]):
                raise _Invalid(f"n = 0 but {key} is not zero.")
    scale = {}
    for key in _SCALES:
        unit = float(v[key]) if key in v else 1.0
        if not (np.isfinite(unit) and unit > 0 and math.frexp(unit)[0] == 0.5):
            raise _Invalid(
                f"{key} must be a positive power of two (the sums' unit); it is {unit!r}."
            )
        scale[key] = unit
    eps = float(np.finfo(np.float32 if precision == "float32" else np.float64).eps)
    # the blocks are in units of the scales; the means in the data's own
    _check_gram(v["sxx"], v["mean_x"] / scale["scale_x"], "sxx", n, eps)
    _check_gram(v["syy"], v["mean_y"] / scale["scale_y"], "syy", n, eps)
    if v["sxy"].size:
        d = np.sqrt(np.abs(np.diag(v["sxx"])))[:, None] * np.sqrt(np.abs(np.diag(v["syy"])))
        _check_bound(v["sxy"], d, "sxy", n, eps)
    _check_joint_psd(v["sxx"], v["syy"], v["sxy"], n, eps)
    out = {k: v[k] for k in _FLOATS}
    out.update(n=n, precision=precision, **scale)
    return out


def _round_off(n: int, eps: float) -> float:
    """Relative error bound of a sum of ``n`` products in any order: ``gamma_n ~ n eps``.

    Two orderings of the same sum (``S_ij`` and ``S_ji`` taken by different kernels)
    differ by at most twice that, times ``sum_k |x_ki x_kj| <= sqrt(S_ii S_jj)``
    (Cauchy-Schwarz on the centred columns; Higham, *Accuracy and Stability of
    Numerical Algorithms*, 2nd ed., section 3.1).
    """
    return 2.0 * max(n, 2) * eps


def _check_gram(S: np.ndarray, mean: np.ndarray, key: str, n: int, eps: float) -> None:
    """``S`` is a centred Gram matrix, to round-off: symmetric, diagonal >= 0, and
    ``|S_ij| <= sqrt(S_ii S_jj)``."""
    if S.size == 0:
        return
    diag = np.diag(S)
    g = _round_off(n, eps)
    # The diagonal is a sum of squares; the one-pass correction -n d^2 of the shifted
    # sums can leave it below zero by the round-off of terms up to n * mean^2.
    floor = -g * (float(np.max(np.abs(diag))) + n * mean**2)
    low = np.flatnonzero(diag < floor)
    if low.size:
        i = int(low[0])
        raise _Invalid(
            f"{key} has a negative variance on its diagonal ({key}[{i}, {i}] = "
            f"{diag[i]:.6g}); a sum of squares cannot be negative."
        )
    d = np.sqrt(np.abs(diag))
    bound = d[:, None] * d
    asym = np.abs(S - S.T)
    tol = g * bound + g * float(np.max(np.abs(diag)))
    if np.any(asym > tol):
        i, j = (int(k) for k in np.unravel_index(int(np.argmax(asym - tol)), S.shape))
        raise _Invalid(
            f"{key} is not symmetric: {key}[{i}, {j}] = {S[i, j]:.17g} but {key}[{j}, {i}] = "
            f"{S[j, i]:.17g}, further apart than round-off ({tol[i, j]:.3g})."
        )
    _check_bound(S, bound, key, n, eps)


def _check_joint_psd(sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray, n: int, eps: float) -> None:
    """``[[S_xx, S_xy], [S_xy^T, S_yy]]`` is a Gram matrix, so positive semi-definite:
    a Cholesky factorisation (``O((p + q)^3)``, once per load) of its correlation-scaled
    form plus the round-off allowance ``(p + q) gamma_n`` must succeed. Entries each
    within Cauchy-Schwarz can still be jointly impossible (then canonical correlations
    would exceed 1)."""
    p, q = sxx.shape[0], syy.shape[0]
    G = np.block([[sxx, sxy], [sxy.T, syy]]) if q else np.array(sxx)
    d = np.sqrt(np.abs(np.diag(G)))
    live = np.flatnonzero(d > 0)  # constant features have no correlations to check
    if live.size == 0:
        return
    R = G[np.ix_(live, live)] / d[live][:, None] / d[live][None, :]
    R = 0.5 * (R + R.T)
    R[np.diag_indices_from(R)] += (p + q) * _round_off(n, eps) + 64 * eps * live.size
    try:
        np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise _Invalid(
            "its blocks [[sxx, sxy], [sxy^T, syy]] are not positive semi-definite beyond "
            "round-off: no set of samples has these cross-products (an edited or "
            "mismatched file)."
        ) from None


def _check_bound(S: np.ndarray, bound: np.ndarray, key: str, n: int, eps: float) -> None:
    """Every cross-product is within Cauchy-Schwarz, ``|S_ij| <= sqrt(S_ii S_jj)``."""
    g = _round_off(n, eps)
    scale = float(np.max(bound)) if bound.size else 0.0
    over = np.abs(S) - bound * (1.0 + g) - g * scale
    if np.any(over > 0):
        i, j = np.unravel_index(int(np.argmax(over)), S.shape)
        raise _Invalid(
            f"{key}[{i}, {j}] = {S[i, j]:.6g} exceeds the Cauchy-Schwarz bound "
            f"sqrt(S_ii S_jj) = {bound[i, j]:.6g} of the diagonals; the blocks do not come "
            "from one set of samples."
        )
