"""``svcca pairwise``: the similarity matrix of many saved representations.

Inputs are a folder of ``.npy`` files, a list of ``.npy`` files, or one ``.npz`` archive
(one representation per key). ``.npy`` files are memory-mapped and streamed, so they
may be larger than memory. The matrix goes to a CSV or JSON file (or stdout) and,
with matplotlib installed, to a heatmap PNG. Outputs are written to a temporary name
and renamed at the end: an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

HELP = "Compare every representation with every other (folder/list of .npy, or one .npz)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="a folder of .npy files, .npy files, or one .npz; each (n_samples, p)",
    )
    parser.add_argument(
        "--cols",
        nargs="+",
        metavar="INPUT",
        help="compare INPUTs (rows) against these (columns) instead of all pairs",
    )
    parser.add_argument(
        "--measure",
        choices=("svcca", "cca", "pwcca", "pls", "cka_linear"),
        default="svcca",
        help="similarity measure (default: svcca)",
    )
    parser.add_argument(
        "--keep",
        default="0.99",
        help="svcca: fraction of variance in (0, 1] or a number of directions (default 0.99)",
    )
    parser.add_argument(
        "--variance",
        choices=("explained", "singular_values"),
        default="explained",
        help="svcca: what --keep is a fraction of (default: explained variance)",
    )
    parser.add_argument(
        "--epsilon", type=float, default=0.0, help="cca/pwcca: relative variance pruning threshold"
    )
    parser.add_argument(
        "--transpose",
        action="store_true",
        help="files are (neurons, datapoints), as in google/svcca",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the matrix to FILE (.csv or .json by extension; default: CSV on stdout)",
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of CSV on stdout")
    parser.add_argument("--heatmap", metavar="PNG", help="also draw a heatmap (needs matplotlib)")
    parser.add_argument("--chunk-size", type=int, default=None, help="samples per chunk")
    parser.add_argument(
        "--sketch-size",
        type=int,
        default=None,
        help="svcca on very wide layers: sketch each layer to this many directions first",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


# ---------------------------------------------------------------------- inputs
def _usage(msg: str) -> Exception:
    from svcca.cli._main import UsageError

    return UsageError(msg)


def _npy(path: str, transpose: bool) -> np.ndarray:
    from svcca.sources._sources import load_array

    try:
        arr = load_array(path)
    except ValueError as exc:
        raise _usage(str(exc)) from exc
    if arr.ndim != 2:
        raise _usage(
            f"{path!r}: expected a 2-D array (n_samples, n_features); got shape {arr.shape}"
        )
    return arr.T if transpose else arr


def _npz(path: str, transpose: bool) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {}
            for key in data.files:
                arr = data[key]
                if arr.ndim != 2:
                    raise _usage(
                        f"{path!r}: array {key!r} has shape {arr.shape}; every array must be "
                        "2-D (n_samples, n_features)"
                    )
                out[key] = arr.T if transpose else arr
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _usage(f"{path!r} is not a readable .npz archive of arrays: {exc}") from exc
    if not out:
        raise _usage(f"{path!r} holds no arrays")
    return out


def _collect(inputs: list[str], transpose: bool) -> dict[str, np.ndarray]:
    """Label -> array for a folder, .npy files, or one .npz."""
    if len(inputs) == 1 and inputs[0].endswith(".npz"):
        if not os.path.isfile(inputs[0]):
            raise _usage(f"{inputs[0]}: no such file")
        return _npz(inputs[0], transpose)
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(f for f in os.listdir(item) if f.endswith(".npy"))
            if not found:
                raise _usage(f"{item}: folder holds no .npy files")
            paths.extend(os.path.join(item, f) for f in found)
        elif item.endswith(".npz"):
            raise _usage(f"{item}: pass a single .npz alone, not mixed with other inputs")
        else:
            paths.append(item)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    labels = stems if len(set(stems)) == len(stems) else paths
    out: dict[str, np.ndarray] = {}
    for label, path in zip(labels, paths, strict=True):
        if label in out:
            raise _usage(f"{path}: given twice")
        out[label] = _npy(path, transpose)
    return out


# ---------------------------------------------------------------------- outputs
@contextlib.contextmanager
def _atomic(path: str, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``path``; rename it over ``path`` only on success."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise _usage(f"{path}: folder {directory!r} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, newline="" if "b" not in mode else None) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _csv_text(result: Any) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([result.measure, *result.cols])
    for label, row in zip(result.rows, result.values, strict=True):
        w.writerow([label, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def _heatmap(result: Any, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise _usage("--heatmap needs matplotlib: pip install 'svcca[plot]'") from exc
    r, c = result.shape
    fig, ax = plt.subplots(figsize=(2.0 + 0.45 * c, 1.5 + 0.4 * r), constrained_layout=True)
    try:
        im = ax.imshow(result.values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_xticks(range(c), result.cols, rotation=45, ha="right")
        ax.set_yticks(range(r), result.rows)
        if r * c <= 400:
            for i in range(r):
                for j in range(c):
                    v = result.values[i, j]
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if v > 0.6 else "white",
                    )
        fig.colorbar(im, ax=ax, label=f"{result.measure} similarity")
        ax.set_title(f"{result.measure}, n = {result.n_samples}")
        with _atomic(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=120)
    finally:
        plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from svcca.cli._main import parse_keep
    from svcca.engines._pairwise import pairwise

    if args.chunk_size is not None and args.chunk_size < 1:
        raise _usage(f"--chunk-size must be a positive integer; got {args.chunk_size}")
    if args.output and os.path.splitext(args.output)[1].lower() not in (".csv", ".json"):
        raise _usage(f"--output must end in .csv or .json; got {args.output!r}")
    if args.heatmap and not args.heatmap.lower().endswith(".png"):
        raise _usage(f"--heatmap must name a .png file; got {args.heatmap!r}")
    rows = _collect(args.inputs, args.transpose)
    cols = None if not args.cols else _collect(args.cols, args.transpose)
    result = pairwise(
        rows,
        cols,
        measure=args.measure,
        keep=parse_keep(args.keep),
        variance=args.variance,
        epsilon=args.epsilon,
        chunk_size=args.chunk_size,
        sketch_size=args.sketch_size,
        progress=args.progress,
    )
    as_json = args.json or (args.output or "").lower().endswith(".json")
    text = json.dumps(result.to_dict(), indent=1) + "\n" if as_json else _csv_text(result)
    if args.output:
        with _atomic(args.output) as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    if args.heatmap:
        _heatmap(result, args.heatmap)
    return 0
