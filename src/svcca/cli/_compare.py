"""``svcca compare A.npy B.npy``: one similarity between two saved representations."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

HELP = "Compare two representations saved as .npy files (rows = datapoints)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A.npy", help="first representation, (n_samples, p)")
    parser.add_argument("b", metavar="B.npy", help="second representation, (n_samples, q)")
    parser.add_argument(
        "--method",
        choices=("cca", "svcca", "pwcca"),
        default="svcca",
        help="similarity measure (default: svcca)",
    )
    parser.add_argument(
        "--keep",
        default="0.99",
        help="svcca: fraction of variance in (0, 1] or a number of directions (default 0.99)",
    )
    parser.add_argument(
        "--epsilon", type=float, default=0.0, help="cca/pwcca: relative variance pruning threshold"
    )
    parser.add_argument(
        "--transpose",
        action="store_true",
        help="the files are (neurons, datapoints), as in google/svcca",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _load(path: str, transpose: bool) -> np.ndarray:
    from svcca.cli._main import UsageError

    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise UsageError(f"{path}: not a NumPy .npy array ({exc})") from exc
    if not isinstance(arr, np.ndarray):
        raise UsageError(f"{path}: expected a single .npy array, got an archive; save one array")
    return arr.T if transpose else arr


def run(args: argparse.Namespace) -> int:
    import svcca
    from svcca.cli._main import parse_keep

    A = _load(args.a, args.transpose)
    B = _load(args.b, args.transpose)
    out: dict[str, Any] = {"method": args.method, "a": args.a, "b": args.b}
    if args.method == "cca":
        r = svcca.cca(A, B, epsilon=args.epsilon)
        out.update(
            score=r.score,
            thresholded_mean=r.thresholded_mean,
            correlations=r.correlations.tolist(),
            pruned_a=r.pruned_x.indices.tolist(),
            pruned_b=r.pruned_y.indices.tolist(),
        )
    elif args.method == "svcca":
        r2 = svcca.svcca(A, B, keep=parse_keep(args.keep))
        out.update(
            score=r2.score,
            kept_a=r2.kept_x,
            kept_b=r2.kept_y,
            correlations=r2.correlations.tolist(),
        )
    else:
        r3 = svcca.pwcca(A, B, epsilon=args.epsilon)
        out.update(
            score=r3.score, weighted_by=r3.weighted_by, correlations=r3.correlations.tolist()
        )
    out["n_samples"] = int(A.shape[0])
    if args.json:
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    else:
        extra = ""
        if args.method == "svcca":
            extra = f"  (kept {out['kept_a']} and {out['kept_b']} directions)"
        print(f"{args.method} similarity: {out['score']:.6f}{extra}")
    return 0
