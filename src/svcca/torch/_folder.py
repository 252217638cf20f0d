"""A capture folder as a transaction: its lock, the names inside it, checked file writes.

:func:`svcca.torch.capture_to_disk` holds :class:`FolderLock` for the whole capture,
writes every file through :func:`write_file` (a temporary name unique to the process,
hashed as it is written, flushed, renamed) and reads every name a manifest gives through
:func:`inside` (a plain file name that stays inside the folder). Nothing here reads or
removes a file outside the folder.

The lock is an OS file lock on ``capture.lock`` in the folder: ``fcntl.flock`` on Linux
and macOS (on NFS, Linux turns it into a POSIX byte-range lock that every client sees),
``msvcrt.locking`` on Windows. The kernel releases it when the holding process ends, so
a killed capture never leaves a stale lock on a local disk. The holder's pid, host and
start time are written into the file for the error message only; they decide nothing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import sys
import time
from collections.abc import Iterable
from typing import Any

__all__ = [
    "LOCK",
    "CaptureLockedError",
    "FolderLock",
    "break_capture_lock",
    "hash_file",
    "inside",
    "is_our_temp",
    "lock_holder",
    "not_plain",
    "write_file",
]

LOCK = "capture.lock"
# <name>.<pid>-<8 hex>.tmp: a temporary file of one process (never a user's name by chance)
_TEMP = re.compile(r"^.+\.\d+-[0-9a-f]{8}\.tmp$")
_CHUNK = 1 << 20


class CaptureLockedError(RuntimeError):
    """Another process is capturing into the same folder."""


def is_our_temp(name: str) -> bool:
    """Whether ``name`` is a temporary file name that :func:`write_file` makes."""
    return bool(_TEMP.match(name))


# ----------------------------------------------------------------------------- names
def not_plain(name: Any) -> str | None:
    """Why ``name`` is not a plain file name (None when it is one)."""
    if not isinstance(name, str) or not name:
        return "not a file name"
    if os.path.isabs(name) or os.path.splitdrive(name)[0]:
        return "an absolute path"
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return "a path with a folder separator"
    if name in (".", ".."):
        return "'..' or '.'"
    if "\0" in name:
        return "a name with a NUL byte"
    return None


def inside(directory: str, name: Any, what: str, *sub: str) -> str:
    """The path of ``name`` in ``directory`` (or in its subfolder ``sub``), refusing a
    name that is not a plain file name or a path whose symlinks lead out of the folder."""
    bad = not_plain(name)
    if bad:
        raise ValueError(
            f"{what} in {os.path.join(directory, 'manifest.json')!r} is {name!r}, {bad}: a "
            "capture's files are plain names inside its folder, so this manifest was edited "
            "or made elsewhere. Nothing outside the folder is read or removed. Recapture "
            "with capture_to_disk(..., overwrite=True)."
        )
    path = os.path.join(directory, *sub, name)
    root = os.path.realpath(directory)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or real == root:
        raise ValueError(
            f"{os.path.join(*sub, name)!r} in {directory!r} is a symlink (or lies under one) "
            f"that leads out of the folder, to {real!r}; a capture's files must lie inside "
            "its folder, and nothing outside it is read or removed. Remove the link by hand, "
            "or capture into another folder."
        )
    return path


# ----------------------------------------------------------------------------- writes
def disk_error(exc: OSError, path: str, then: str) -> OSError:
    """``exc`` said as what to do: free space, or choose a writable folder."""
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        what = f"No space left on the device (or quota) while writing {path!r}"
        fix = f"free space there and {then}"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        what = (
            f"{os.path.dirname(path) or '.'!r} cannot be written "
            f"({os.strerror(code or 0)}) while writing {path!r}"
        )
        fix = "choose a writable folder (or make this one writable) and call again"
    else:
        return exc
    return OSError(code, f"{what}: {fix}.", path)


def write_file(path: str, chunks: Iterable[Any], *, then: str) -> tuple[int, str]:
    """Write ``chunks`` (bytes-like) to ``path`` through a temporary name unique to this
    process, flushed and renamed; return its size and SHA-256, computed from the bytes as
    they are written. On any failure the temporary file is removed and ``path`` is left
    as it was; a full or read-only disk raises an OSError saying what to do (``then``)."""
    folder, base = os.path.split(path)
    tmp = os.path.join(folder, f"{base}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    h = hashlib.sha256()
    size = 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except OSError as exc:
        raise disk_error(exc, path, then) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                h.update(view)
                f.write(view)
                size += view.nbytes
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise disk_error(exc, path, then) from exc
        raise
    return size, h.hexdigest()


def hash_file(path: str) -> tuple[int, str]:
    """Size and SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


# ----------------------------------------------------------------------------- the lock
if sys.platform == "win32":  # pragma: no cover - not exercised by our CI
    import msvcrt

    _WIN_OFFSET = 1 << 20  # lock a byte past the holder text, which stays readable

    def _try_lock(fd: int, shared: bool) -> bool:
        os.lseek(fd, _WIN_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int, shared: bool) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _open_lock(path: str, write: bool) -> int:
    flags = (os.O_RDWR | os.O_CREAT) if write else os.O_RDONLY
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise ValueError(
                f"{path!r} is a symlink; the capture lock is a plain file that svcca creates. "
                "Remove the link by hand."
            ) from exc
        if exc.errno == errno.EISDIR:
            raise ValueError(f"{path!r} is not a plain file; remove it by hand.") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{path!r} is not a plain file; remove it by hand.")
    return fd


def _holder_text(fd: int) -> str:
    info = _holder_info(fd) or {}
    try:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info["since"])))
        return f"pid {int(info['pid'])} on host {str(info['host'])!r}, since {since}"
    except (ValueError, KeyError, TypeError, OSError):
        return "a process that has not written its name yet"


def _holder_info(fd: int) -> dict[str, Any] | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096))
        return info if isinstance(info, dict) else None
    except (ValueError, OSError):
        return None


class FolderLock:
    """An exclusive lock on a capture folder, held from :meth:`acquire` to :meth:`release`.

    Raises :class:`CaptureLockedError` naming the holder when another process holds it.
    """

    def __init__(self, directory: str, purpose: str = "capture") -> None:
        self.directory = directory
        self.path = os.path.join(directory, LOCK)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        for _ in range(20):
            fd = _open_lock(self.path, write=True)
            if not _try_lock(fd, shared=False):
                # The holder writes its name right after it takes the lock: give it a
                # moment, so the message names it.
                for _ in range(50):
                    if _holder_info(fd):
                        break
                    time.sleep(0.02)
                who = _holder_text(fd)
                os.close(fd)
                raise CaptureLockedError(
                    f"{self.directory!r} is locked by another capture: expected a free folder, "
                    f"got {LOCK} held by {who}. Two captures into one folder would merge "
                    "their data. Wait for it to finish, capture into another folder, or, if "
                    "that process runs on another machine and is certainly dead, break the "
                    f"lock with `svcca verify {self.directory} --break-lock` (or "
                    "svcca.torch.break_capture_lock)."
                )
            # A holder that finishes removes the file: the lock we got must be on the
            # file that is still at the path, else another process may lock a new one.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if not same:
                _unlock(fd)
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            text = json.dumps({**info, "purpose": self.purpose}).encode()
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, text)
            self._fd = fd
            return self
        raise CaptureLockedError(  # pragma: no cover - needs a lock file replaced 20 times
            f"{self.directory!r}: could not take {LOCK}: it was replaced 20 times in a row."
        )

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if sys.platform != "win32":
                os.unlink(self.path)  # still ours: we hold the lock on it
        except OSError:
            pass
        finally:
            _unlock(fd)
            os.close(fd)
            if sys.platform == "win32":  # pragma: no cover
                try:
                    os.unlink(self.path)
                except OSError:
                    pass

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(directory: str) -> dict[str, Any] | None:
    """The holder (``pid``, ``host``, ``since``) of ``directory``'s capture lock, or None
    when no process holds it. Takes and drops a shared lock to tell; writes nothing."""
    path = os.path.join(directory, LOCK)
    if not os.path.lexists(path):
        return None
    fd = _open_lock(path, write=False)
    try:
        if _try_lock(fd, shared=True):
            _unlock(fd)
            return None
        return _holder_info(fd) or {"pid": None, "host": None, "since": None}
    finally:
        os.close(fd)


def break_capture_lock(directory: str | os.PathLike[str]) -> str:
    """Remove the capture lock of ``directory`` held by a process on another machine.

    The kernel releases a lock when its process ends, so on a local disk there is never a
    stale lock to break. On a network file system a lock held by a machine that crashed
    can outlive it until the server expires it; this removes the lock file so that a new
    capture takes a new one. Only do this when that process is certainly dead: if it
    still runs, two captures write into one folder.

    Returns
    -------
    str
        What was done, in one line.

    Raises
    ------
    ValueError
        When the lock is held by a live process on this machine (end that process
        instead), or the lock file is not a plain file.
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, LOCK)
    holder = lock_holder(directory)
    if holder is None:
        if os.path.lexists(path):
            os.unlink(path)
            return f"{path!r} was not held by any process; removed it."
        return f"{directory!r} is not locked; nothing to break."
    here = socket.gethostname()
    pid = holder.get("pid")
    if holder.get("host") == here:
        raise ValueError(
            f"{directory!r} is locked by pid {pid} on this machine ({here!r}): a running "
            "process holds it, and the kernel releases it when that process ends. Stop that "
            "process (or let it finish) instead of breaking its lock."
        )
    os.unlink(path)
    return (
        f"Removed the capture lock of {directory!r} held by pid {pid} on host "
        f"{holder.get('host')!r}; if that process still runs, it writes into the same folder "
        "as the next capture."
    )
