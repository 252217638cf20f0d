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

from svcca._cli._options import (
    MEASURES,
    UsageError,
    _checked,
    _number,
    add_measure_arguments,
    add_uncertainty_arguments,
    check_same_datapoints,
    load_representation,
    parse_option,
    resolve_measure,
    resolve_uncertainty,
)
from svcca._moments import check_seed

HELP = "Compare every representation with every other (folder/list of .npy, or one .npz)."


# What `svcca` prints after "out of memory" (see svcca._cli._main).
MEMORY_HINT = (
    "Lower --chunk-size (datapoints read at a time; memory grows with it times the summed "
    "widths); with --measure svcca, --sketch-size K first reduces each wide layer to K "
    "directions (the statistic needs the square of the summed widths in float64)."
)


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
    add_measure_arguments(parser, MEASURES)
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the matrix to FILE (.csv or .json by extension; default: CSV on stdout)",
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of CSV on stdout")
    parser.add_argument("--heatmap", metavar="PNG", help="also draw a heatmap (needs matplotlib)")
    parser.add_argument(
        "--chunk-size", metavar="ROWS", default=None, help="samples per chunk, an int >= 1"
    )
    parser.add_argument(
        "--sketch-size",
        metavar="K",
        default=None,
        help="svcca on very wide layers: sketch each layer to this many directions first",
    )
    add_uncertainty_arguments(
        parser,
        ["jackknife"],
        "an interval for every cell (delete-a-block jackknife); the CSV becomes one "
        "line per cell: row, col, value, corrected, se, low, high",
    )
    parser.add_argument(
        "--test",
        choices=["permutation", "asymptotic"],
        default=None,
        help="a p-value against independence for every cell (rows shuffled, or from the "
        "moments: Bartlett for the CCA family, the HSIC null for linear CKA); the CSV "
        "becomes one line per cell, with a pvalue column",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=None,
        help="permutations of --test permutation (default: enough for Holm at 5%% over "
        "the matrix's distinct tests, at least 999)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


# ---------------------------------------------------------------------- inputs
def _npz_member_dtype(data: Any, key: str) -> np.dtype:
    """The dtype in the header of array ``key`` of an open ``.npz`` (nothing unpickled)."""
    from numpy.lib import format as npy

    names = data.zip.namelist()
    with data.zip.open(key + ".npy" if key + ".npy" in names else key) as fh:
        major, _ = npy.read_magic(fh)
        read = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
        return read(fh)[2]


def _npz(path: str, transpose: bool) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            out = {}
            for key in data.files:
                dtype = _npz_member_dtype(data, key)
                if dtype.hasobject:
                    raise UsageError(
                        f"{path!r}: array {key!r} holds Python objects (dtype {dtype}), which "
                        "only unpickling could read; pickles are never loaded (they can run "
                        "arbitrary code). Save numeric arrays instead."
                    )
                arr = data[key]
                if arr.dtype.kind not in "biuf":
                    raise UsageError(
                        f"{path!r}: array {key!r} holds values of dtype {arr.dtype}; the "
                        "measures need real numbers (float, int or bool)."
                    )
                if arr.ndim != 2 or arr.size == 0:
                    raise UsageError(
                        f"{path!r}: array {key!r} has shape {arr.shape}; every array must be "
                        "2-D (n_samples, n_features) and non-empty"
                    )
                out[key] = arr.T if transpose else arr
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path!r} is not a readable .npz archive of arrays: {exc}") from exc
    if not out:
        raise UsageError(f"{path!r} holds no arrays")
    return out


def _collect(inputs: list[str], transpose: bool) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Label -> array for a folder, .npy files, or one .npz; and label -> where it came from."""
    if len(inputs) == 1 and inputs[0].endswith(".npz"):
        if not os.path.isfile(inputs[0]):
            raise UsageError(f"{inputs[0]!r}: no such file.")
        arrays = _npz(inputs[0], transpose)
        return arrays, {key: f"{inputs[0]}[{key!r}]" for key in arrays}
    paths: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(f for f in os.listdir(item) if f.endswith(".npy"))
            if not found:
                raise UsageError(f"{item}: folder holds no .npy files")
            paths.extend(os.path.join(item, f) for f in found)
        elif item.endswith(".npz"):
            raise UsageError(f"{item}: pass a single .npz alone, not mixed with other inputs")
        else:
            paths.append(item)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    labels = stems if len(set(stems)) == len(stems) else paths
    out: dict[str, np.ndarray] = {}
    for label, path in zip(labels, paths, strict=True):
        if label in out:
            raise UsageError(f"{path}: given twice")
        out[label] = load_representation(path, transpose)
    return out, dict(zip(labels, paths, strict=True))


# ---------------------------------------------------------------------- outputs
@contextlib.contextmanager
def _atomic(path: str, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``path``; rename it over ``path`` only on success."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"{path}: folder {directory!r} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, newline="" if "b" not in mode else None) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def csv_corner(result: Any) -> str:
    """The CSV's top-left cell: the measure with its settings, and the library version
    (``cka_rbf (bandwidth=0.5); svcca 0.2.0``), so the file records what made it."""
    from svcca._measures import measure_label
    from svcca._version import __version__

    settings = {k: v for k, v in result.settings.items() if k != "params"}
    settings.update(result.settings.get("params", {}))
    return f"{measure_label(result.measure, settings)}; svcca {__version__}"


def _csv_text(result: Any) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if result.uncertainty is not None or result.test is not None:
        # one line per cell, its interval and p-value beside it
        corner = csv_corner(result)
        if result.uncertainty is not None:
            u = result.uncertainty
            corner += f"; {u['method']} {u['level']:g}, {u['blocks']} blocks, seed {u['seed']}"
        if result.test is not None:
            t = result.test
            corner += "; " + (
                f"{t['permutations']} permutations, seed {t['seed']}"
                if t["method"] == "permutation"
                else f"asymptotic {t['statistic']} test"
            )
        table = result.cells_to_pandas()
        w.writerow([corner, *table.columns[1:]])
        for line in table.itertuples(index=False):
            w.writerow([line[0], line[1], *(repr(float(v)) for v in line[2:])])
        return buf.getvalue()
    w.writerow([csv_corner(result), *result.cols])
    for label, row in zip(result.rows, result.values, strict=True):
        w.writerow([label, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def _heatmap(result: Any, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError("--heatmap needs matplotlib: pip install 'svcca[plot]'") from exc
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
    from svcca._engines import pairwise

    measure, settings = resolve_measure(args, "pairwise")
    chunk_size = None if args.chunk_size is None else parse_option("--chunk-size", args.chunk_size)
    if args.output and os.path.splitext(args.output)[1].lower() not in (".csv", ".json"):
        raise UsageError(f"--output must end in .csv or .json; got {args.output!r}")
    if args.heatmap and not args.heatmap.lower().endswith(".png"):
        raise UsageError(f"--heatmap must name a .png file; got {args.heatmap!r}")
    seed_text = args.seed
    if args.test == "permutation" and args.uncertainty is None:
        args.seed = None  # the permutations' seed, not an interval's
    elif seed_text is not None and args.uncertainty is None:
        raise UsageError(
            "--seed sets the intervals of --uncertainty jackknife (or the permutations of "
            "--test permutation); add one of them, or leave it out."
        )
    unc = resolve_uncertainty(args)
    args.seed = seed_text
    seed = (
        unc.pop("seed")
        if unc is not None
        else _checked(check_seed, _number(seed_text), "--seed", "seed")
        if seed_text is not None
        else 0
    )
    if args.permutations is not None and args.test != "permutation":
        raise UsageError(
            "--permutations sets the permutations of --test permutation; add --test "
            "permutation, or leave it out."
        )
    rows, where = _collect(args.inputs, args.transpose)
    cols, where_cols = ({}, {}) if not args.cols else _collect(args.cols, args.transpose)
    shapes = [(where[k], a.shape) for k, a in rows.items()]
    shapes += [(where_cols[k], a.shape) for k, a in cols.items()]
    check_same_datapoints(shapes, args.transpose)
    result = pairwise(
        rows,
        cols or None,
        measure=measure,  # type: ignore[arg-type]
        chunk_size=chunk_size,
        progress=args.progress,
        **settings,
        **({} if unc is None else {"uncertainty": unc.pop("method"), **unc}),
        seed=seed,
        test=args.test,
        permutations=args.permutations,
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
