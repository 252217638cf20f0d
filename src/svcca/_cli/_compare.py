"""``svcca compare A.npy B.npy``: one similarity between two saved representations.

The measures and knobs are those of ``svcca pairwise`` (see ``svcca._cli._options``),
plus the measures of a single pair.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zipfile
from typing import Any

import numpy as np

from svcca._cli._options import (
    MEASURES,
    UsageError,
    add_measure_arguments,
    add_uncertainty_arguments,
    check_same_datapoints,
    load_representation,
    resolve_measure,
    resolve_uncertainty,
)

HELP = "Compare two representations saved as .npy files (rows = datapoints)."


# What `svcca` prints after "out of memory" (see svcca._cli._main).
MEMORY_HINT = (
    "svcca compare holds the pair in memory: run svcca pairwise A.npy B.npy with "
    "--chunk-size ROWS instead (it streams the files; svcca, cca, pwcca, pls, cka_linear), "
    "and for the n x n measures (cka_rbf, rsa, the debiased CKAs) compare fewer datapoints."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A.npy", help="first representation, (n_samples, p)")
    parser.add_argument("b", metavar="B.npy", help="second representation, (n_samples, q)")
    add_measure_arguments(parser, MEASURES)
    add_uncertainty_arguments(
        parser,
        ["jackknife", "bootstrap"],
        "an interval for the measure's population value, svcca.stats.interval: "
        "delete-a-block jackknife (any measure) or Poisson bootstrap (moments measures); "
        "prints the estimate, the bias-corrected estimate, the standard error and the "
        "interval",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    # The old name of --measure, kept working for scripts written against it.


def _load(path: str, transpose: bool) -> np.ndarray:
    if os.path.isdir(path):
        raise UsageError(
            f"{path!r} is a folder; svcca compare takes two .npy files. To compare every "
            f".npy file in a folder with every other, run: svcca pairwise {path}"
        )
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        raise UsageError(
            f"{path!r} is an .npz archive (several arrays); svcca compare takes two .npy "
            f"files. To compare the arrays inside it, run: svcca pairwise {path}"
        )
    return load_representation(path, transpose)


def _compute(measure: str, A: np.ndarray, B: np.ndarray, s: dict[str, Any]) -> dict[str, Any]:
    """The score and what else each measure says about the pair, as JSON types."""
    import svcca

    if measure == "svcca":
        r = svcca.svcca(A, B, keep=s["keep"], variance=s["variance"])
        return {
            "score": r.score,
            "kept_a": r.kept_x,
            "kept_b": r.kept_y,
            "correlations": r.correlations.tolist(),
        }
    if measure == "cca":
        c = svcca.cca(A, B, epsilon=s["epsilon"])
        return {
            "score": c.score,
            "thresholded_mean": c.thresholded_mean,
            "correlations": c.correlations.tolist(),
            "pruned_a": c.pruned_x.indices.tolist(),
            "pruned_b": c.pruned_y.indices.tolist(),
        }
    if measure == "pwcca":
        w = svcca.pwcca(A, B, epsilon=s["epsilon"])
        return {
            "score": w.score,
            "weighted_by": w.weighted_by,
            "correlations": w.correlations.tolist(),
        }
    # every other registered measure, with its parameters: the score and what its
    # result says beyond it
    params = dict(s.get("params", {}))
    r = svcca.MEASURES[measure](A, B, **params)
    out: dict[str, Any] = {"score": float(getattr(r, svcca.MEASURES[measure].score_field))}
    extras = {
        "singular_values": "singular_values",
        "sigma_x": "sigma_a",
        "sigma_y": "sigma_b",
        "distance": "distance",
        "squared_distance": "squared_distance",
        "r2_y_given_x": "r2_b_from_a",
        "r2_x_given_y": "r2_a_from_b",
        "metric": "metric",
        "compare": "compare",
        "alpha": "alpha",
        "angle": "angle",
    }
    for field, key in extras.items():
        v = getattr(r, field, None)
        if v is not None:
            out[key] = v.tolist() if isinstance(v, np.ndarray) else v
    return out


def _interval(
    measure: str, A: Any, B: Any, settings: dict[str, Any], unc: dict[str, Any]
) -> dict[str, Any]:
    """``svcca.stats.interval`` of the pair with the command's settings, as JSON types."""
    import svcca

    if A.shape[0] < 3:
        raise UsageError(
            f"--uncertainty needs at least 3 datapoints; the files hold {A.shape[0]}. "
            "Compare more datapoints, or leave out --uncertainty."
        )
    params = settings["params"] if "params" in settings else dict(settings)
    knob = "blocks" if unc["method"] == "jackknife" else "replicates"
    try:
        r = svcca.stats.interval(
            np.asarray(A), np.asarray(B), measure=measure, level=unc["level"],
            method=unc["method"], seed=unc["seed"], params=params, **{knob: unc[knob]},
        )  # fmt: skip
    except ValueError as exc:  # the library's fix names its Python keyword
        msg = str(exc).replace("method='jackknife'", "--uncertainty jackknife")
        raise UsageError(msg) from None
    record = {**unc, "transform": r.transform}
    if r.method == "jackknife":
        record["blocks_used"] = r.blocks
    return {
        "uncertainty": record,
        "estimate": r.estimate,
        "corrected": r.corrected,
        "bias": r.bias,
        "standard_error": r.standard_error,
        "low": r.low,
        "high": r.high,
    }


def _interval_line(out: dict[str, Any]) -> str:
    u = out["uncertainty"]
    how = (
        f"{u['blocks_used']} blocks"
        if u["method"] == "jackknife"
        else f"{u['replicates']} replicates"
    )
    return (
        f"{100 * u['level']:g}% interval for the population value ({u['method']}, {how}, "
        f"seed {u['seed']}): estimate {out['estimate']:.6f}, corrected {out['corrected']:.6f}, "
        f"standard error {out['standard_error']:.6f}, [{out['low']:.6f}, {out['high']:.6f}]"
    )


def _summary(measure: str, out: dict[str, Any]) -> str:
    extra = ""
    if measure == "svcca":
        extra = f"  (kept {out['kept_a']} and {out['kept_b']} directions)"
    elif measure == "procrustes":
        extra = f"  (distance {out['distance']:.6f})"
    elif measure == "regression":
        ba, ab = out["r2_b_from_a"], out["r2_a_from_b"]
        extra = f"  (R^2 of B from A {ba:.6f}, of A from B {ab:.6f})"
    from svcca._measures import MEASURES as REGISTRY

    m = REGISTRY.get(measure)
    word = "distance" if m is not None and not m.larger_is_more_similar else "similarity"
    return f"{measure} {word}: {out['score']:.6f}{extra}"


def run(args: argparse.Namespace) -> int:
    measure, settings = resolve_measure(args, "compare")
    unc = resolve_uncertainty(args)
    A = _load(args.a, args.transpose)
    B = _load(args.b, args.transpose)
    check_same_datapoints([(args.a, A.shape), (args.b, B.shape)], args.transpose)
    try:
        result = _compute(measure, A, B, settings)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if re.search(r"\b[XY]\b", msg):  # the library's names for the two sides
            msg += f" (X is {args.a!r}, Y is {args.b!r}.)"
        raise UsageError(msg) from exc
    if unc is not None:
        result.update(_interval(measure, A, B, settings, unc))
    from svcca._version import __version__

    out: dict[str, Any] = {
        "measure": measure,
        "settings": settings,
        "svcca_version": __version__,
        "a": args.a,
        "b": args.b,
        "n_samples": int(A.shape[0]),
        **result,
    }
    if args.json:
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(_summary(measure, out))
        if unc is not None:
            print(_interval_line(out))
    return 0
