"""The ``svcca`` command line.

Each subcommand lives in its own module ``svcca.cli._<name>`` exposing
``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``; modules are imported
only when their command runs (``--help`` imports none of the heavy extras). Bad input
exits with status 2 and a one-line error on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> module; a module that is not installed yet is simply not offered.
COMMANDS: dict[str, str] = {
    "compare": "svcca.cli._compare",
    "pairwise": "svcca.cli._pairwise",
    "demo": "svcca.cli._demo",
}


class UsageError(Exception):
    """Raised by a subcommand for bad input: reported in one line, exit status 2."""


def parse_keep(text: str) -> float | int:
    """``--keep``: an int count (``20``) or a fraction (``0.99``)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise UsageError(
            f"--keep must be a fraction like 0.99 or a count like 20; got {text!r}"
        ) from None


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
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``svcca`` console script and ``python -m svcca``."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except (UsageError, ValueError, TypeError, OSError) as exc:
        print(f"svcca {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"svcca {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
