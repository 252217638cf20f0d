"""``svcca measures``: every registered measure with the properties it declares."""

from __future__ import annotations

import argparse
import json
import math

HELP = "list the measures (svcca.MEASURES) with their declared properties"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per measure, in a list"
    )


def run(args: argparse.Namespace) -> int:
    from svcca._measures import MEASURES, engines_for, invariance_table

    if not args.json:
        print(invariance_table(), end="")
        for m in MEASURES.values():
            params = ", ".join(m.params) or "none"
            print(f"{m.name}: {m.description} (parameters: {params})")
        return 0
    out = [
        {
            "name": m.name,
            "kind": m.kind,
            "description": m.description,
            "parameters": list(m.params),
            "symmetric": m.symmetric,
            "larger_is_more_similar": m.larger_is_more_similar,
            "is_metric": m.is_metric,
            "range": [v if math.isfinite(v) else str(v) for v in m.range],
            "invariances": sorted(m.invariances_for()),
            "engines": engines_for(m),
        }
        for m in MEASURES.values()
    ]
    print(json.dumps(out, indent=1))
    return 0
