"""Shared by the example scripts: quick mode and where figures go."""

from __future__ import annotations

import argparse
import os


def parse(doc: str | None) -> argparse.Namespace:
    """``--quick`` (or ``SVCCA_QUICK=1``) for a run of a few seconds; ``--out`` for figures.

    ``doc`` is the script's docstring (its first line is the description); the gallery
    runs a script with an empty ``__doc__``.
    """
    description = (doc or "").strip().split("\n", 1)[0]
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes (CI); also SVCCA_QUICK=1")
    p.add_argument("--out", default=None, help="directory for figures (default: none saved)")
    args = p.parse_args()
    args.quick = args.quick or os.environ.get("SVCCA_QUICK", "") not in ("", "0")
    return args
