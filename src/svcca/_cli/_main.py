"""The ``svcca`` command line.

Each subcommand lives in its own module ``svcca._cli._<name>`` exposing
``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``; modules are imported
only when their command runs (``--help`` imports none of the heavy extras). What
``compare`` and ``pairwise`` share (the measure names, the knobs, reading a file) is in
``svcca._cli._options``.

Bad input, and any ValueError or TypeError of the library (a degenerate layer, NaN in
the data), exits with status 2 and one line ``svcca <command>: error: <message>`` on
stderr, never a traceback. So does running out of memory: the line names the options
that lower it (a command module's ``MEMORY_HINT``).

Warnings (e.g. :class:`svcca.SVCCAWarning` for too few
samples) are one line each, ``svcca <command>: warning: <message>``, without Python's
source location.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from svcca._cli._options import UsageError

__all__ = ["main"]

# name -> module; a module that is not installed yet is simply not offered.
COMMANDS: dict[str, str] = {
    "compare": "svcca._cli._compare",
    "pairwise": "svcca._cli._pairwise",
    "demo": "svcca._cli._demo",
    "verify": "svcca._cli._verify",
    "measures": "svcca._cli._measures",
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svcca",
        description="Compare neural-network representations (CCA, SVCCA, PWCCA, ...).",
    )
    from svcca import __version__

    parser.add_argument("--version", action="version", version=f"svcca {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in COMMANDS.items():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _memory_hint=getattr(mod, "MEMORY_HINT", ""))
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _plain_warnings(prog: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints ``<prog>: warning: <message>``, once each."""
    seen: set[str] = set()

    def show(message: Any, category: Any, filename: str, lineno: int, *rest: Any) -> None:
        text = _one_line(message) if isinstance(message, Warning) else " ".join(message.split())
        if text not in seen:
            seen.add(text)
            print(f"{prog}: warning: {text}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``svcca`` console script and ``python -m svcca``."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    prog = f"svcca {args.command}"
    with warnings.catch_warnings():
        warnings.showwarning = _plain_warnings(prog)
        try:
            return int(args._run(args) or 0)
        except (UsageError, ValueError, TypeError, OSError, ImportError) as exc:
            print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except MemoryError as exc:
            # the hint, not NumPy's shape: what to change on the command line
            print(
                f"{prog}: error: out of memory ({_one_line(exc)}). {args._memory_hint}".rstrip(),
                file=sys.stderr,
            )
            return 2
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
