"""``svcca verify PATH``: check a capture folder or a saved statistic, say what is wrong.

A folder is checked as a capture of :func:`svcca.torch.capture_to_disk`: the manifest's
schema and counts, that every name stays inside the folder, each file's size and
SHA-256, and whether a capture holds its lock now. A file is read with
:meth:`svcca.Moments.load`. Exit status 0 when everything checks out (a finished
capture, or an unfinished one that resumes), 1 when something is wrong (one line per
problem on stdout), 2 for bad usage (no such path), as in ``cmp`` and ``diff``.
"""

from __future__ import annotations

import argparse
import os

from svcca._cli._options import UsageError

HELP = (
    "Check a capture folder (manifest, names, sizes, SHA-256, lock) or a saved Moments file "
    "(.npz) and say what is wrong; exit 0 when fine, 1 when not."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a capture folder or a Moments .npz file")
    parser.add_argument(
        "--break-lock",
        action="store_true",
        help="first remove the capture lock held by a process on another machine that is "
        "certainly dead (a lock of a live process on this machine is refused)",
    )


def _say(path: str, status: str, problems: list[str]) -> int:
    print(f"{path}: {status}")
    for p in problems:
        print(f"{path}: problem: {' '.join(p.split())}")
    return 1 if problems else 0


def run(args: argparse.Namespace) -> int:
    path = os.fspath(args.path)
    if not os.path.exists(path):
        raise UsageError(f"{path!r}: no such file or folder.")
    if os.path.isdir(path):
        from svcca.torch import break_capture_lock, check_capture

        if args.break_lock:
            print(f"{path}: {break_capture_lock(path)}")
        status, problems = check_capture(path)
        return _say(path, status, problems)
    if args.break_lock:
        raise UsageError(f"--break-lock applies to a capture folder; {path!r} is a file.")
    import svcca

    try:
        m = svcca.Moments.load(path)
    except ValueError as exc:
        return _say(path, "not a readable Moments file", [str(exc)])
    return _say(path, f"a saved statistic, {m!r}, reads back", [])
