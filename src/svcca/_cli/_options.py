"""What ``svcca compare`` and ``svcca pairwise`` share.

One measure vocabulary (the names of :func:`svcca.pairwise`, plus the measures of a
single pair), one set of knobs checked by the library's own validators (so a bad value
reads "--keep must be ...; got ... ." as the Python API's "keep must be ..."), one way
to read a file, and one check that the files hold the same datapoints.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "MEASURES",
    "PAIRWISE_MEASURES",
    "UNCERTAINTY_DEFAULTS",
    "UsageError",
    "add_measure_arguments",
    "add_uncertainty_arguments",
    "check_same_datapoints",
    "load_representation",
    "parse_keep",
    "parse_option",
    "resolve_measure",
    "resolve_uncertainty",
]


class UsageError(Exception):
    """Raised by a subcommand for bad input: reported in one line, exit status 2."""


# The measures are svcca.MEASURES (the registry's names are the names everywhere). The
# one-pass engine of `svcca pairwise` serves these; every other measure is called per
# pair on representations read once (svcca.pairwise).
PAIRWISE_MEASURES = ("svcca", "cca", "pwcca", "pls", "cka_linear")


def _registry() -> Any:
    from svcca._measures import MEASURES as REGISTRY

    return REGISTRY


class _Names(Sequence[str]):
    """The registry's names, read when used (a measure registered later is offered)."""

    def __getitem__(self, i: Any) -> Any:
        return tuple(_registry())[i]

    def __len__(self) -> int:
        return len(_registry())


MEASURES: Sequence[str] = _Names()


def measure_help(name: str) -> str:
    """One line on a measure: its registered description."""
    return str(_registry()[name].description)


# option -> (attribute, the measures it applies to)
KNOBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "--keep": ("keep", ("svcca",)),
    "--variance": ("variance", ("svcca",)),
    "--epsilon": ("epsilon", ("cca", "pwcca")),
    "--bandwidth": ("bandwidth", ("cka_rbf", "cka_rbf_debiased")),
    "--sketch-size": ("sketch_size", ("svcca",)),
}
# the library's defaults, as the text a user would type
DEFAULTS = {"--keep": "0.99", "--variance": "explained", "--epsilon": "0", "--bandwidth": "1.0"}
VARIANCE = ("explained", "singular_values")


def add_measure_arguments(parser: argparse.ArgumentParser, measures: Sequence[str]) -> None:
    """``--measure`` and the knobs of those ``measures`` (values are checked in ``run``)."""
    listing = "; ".join(f"{m}: {measure_help(m)}" for m in measures)
    parser.add_argument(
        "--measure",
        metavar="NAME",
        default=None,
        help=f"similarity measure (default: svcca). {listing}",
    )
    parser.add_argument(
        "--keep",
        metavar="K",
        default=None,
        help="svcca: fraction of variance in (0, 1) such as 0.99, or a number of "
        "directions such as 20 (default 0.99)",
    )
    parser.add_argument(
        "--variance",
        metavar="{" + ",".join(VARIANCE) + "}",
        default=None,
        help="svcca: what a fractional --keep is a share of (default: explained)",
    )
    parser.add_argument(
        "--epsilon",
        metavar="EPS",
        default=None,
        help="cca, pwcca: prune neurons whose variance is below EPS times the largest, "
        "EPS in [0, 1) (default 0: only constant neurons)",
    )
    if any(m in measures for m in KNOBS["--bandwidth"][1]):
        parser.add_argument(
            "--bandwidth",
            metavar="B",
            default=None,
            help="cka_rbf, cka_rbf_debiased: RBF width as a fraction of the median "
            "pairwise distance, > 0 (default 1.0)",
        )
    parser.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        default=None,
        help="a parameter of the measure (repeatable): --param alpha=0.5 for "
        "shape_distance, --param metric=correlation for rsa; `svcca measures` lists each "
        "measure's parameters",
    )
    parser.add_argument(
        "--transpose",
        action="store_true",
        help="the files are (neurons, datapoints), as google/svcca saves them",
    )


# ---------------------------------------------------------------------- knob values
def _number(text: str) -> Any:
    """``"20"`` -> 20, ``"0.99"`` -> 0.99; anything else stays text for the check to refuse."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _checked(check: Callable[[Any], Any], value: Any, flag: str, name: str) -> Any:
    """Run the library's check; its message names ``name``, say ``flag`` instead."""
    try:
        return check(value)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        if msg.startswith(name + " "):
            msg = flag + msg[len(name) :]
        raise UsageError(msg) from None


def parse_keep(text: str) -> float | int:
    """``--keep``: an int count (``20``) or a fraction in (0, 1) (``0.99``)."""
    from svcca._validation import check_keep

    try:
        return check_keep(_number(text), "--keep")
    except (TypeError, ValueError) as exc:  # the library's fix names its Python function
        msg = str(exc).replace("use svcca.cca (", "use --measure cca (")
        raise UsageError(msg) from None


def parse_option(flag: str, text: str) -> Any:
    """The value of knob ``flag`` given as ``text``, checked as the library checks it."""
    from svcca._validation import check_epsilon, check_int, check_option

    if flag == "--keep":
        return parse_keep(text)
    if flag == "--variance":
        return _checked(lambda v: check_option(v, flag, VARIANCE), text, flag, flag)
    if flag == "--epsilon":
        return _checked(check_epsilon, _number(text), flag, "epsilon")
    if flag == "--bandwidth":
        from svcca._measures import check_bandwidth

        return _checked(check_bandwidth, _number(text), flag, "bandwidth")
    if flag == "--chunk-size":  # check_chunk_size's fix ("Pass None") is for Python
        fix = "Omit --chunk-size to choose it from the widths."
        return _checked(lambda v: check_int(v, flag, fix=fix), _number(text), flag, flag)
    if flag == "--sketch-size":
        return _checked(lambda v: check_int(v, flag), _number(text), flag, flag)
    raise AssertionError(flag)  # pragma: no cover


def resolve_measure(args: argparse.Namespace, command: str) -> tuple[str, dict[str, Any]]:
    """The measure and its settings; refuse an unknown name or a knob it does not take.

    A knob given for a measure that ignores it is an error rather than silently
    dropped: ``--keep 5`` with ``--measure cca`` would otherwise look like SVCCA.
    """
    from svcca._validation import check_option

    offered = tuple(MEASURES)
    measure = "svcca" if args.measure is None else args.measure
    _checked(lambda v: check_option(v, "--measure", offered), measure, "--measure", "--measure")
    from svcca._measures import refusal

    why = refusal(_registry()[measure], f"cli {command}")
    if why is not None:
        raise UsageError(why)
    settings: dict[str, Any] = {}
    params = parse_params(getattr(args, "param", None) or [], measure)
    if params:
        settings["params"] = params
    for flag, (attr, applies) in KNOBS.items():
        text = getattr(args, attr, None)
        if measure not in applies:
            if text is not None:
                raise UsageError(
                    f"{flag} applies to --measure {' or '.join(applies)} only, not to "
                    f"{measure}; drop {flag} or change --measure."
                )
            continue
        if text is None and flag not in DEFAULTS:
            continue  # --sketch-size: off unless given
        settings[attr] = parse_option(flag, DEFAULTS[flag] if text is None else text)
    if measure not in PAIRWISE_MEASURES:  # called per pair: every knob is a parameter
        knobs = {k: v for k, v in settings.items() if k != "params"}
        settings = {"params": {**knobs, **params}} if knobs or params else {}
    return measure, settings


def parse_params(items: Sequence[str], measure: str) -> dict[str, Any]:
    """``--param KEY=VALUE`` items as the measure's parameters (numbers where they parse),
    checked against its declaration; the knobs with flags of their own keep them."""
    flagged = {attr for attr, _ in KNOBS.values()}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param expects KEY=VALUE (e.g. alpha=0.5); got {item!r}.")
        if key in flagged:
            flag = next(f for f, (attr, _) in KNOBS.items() if attr == key)
            raise UsageError(f"--param {key}=... is given as {flag} {text or 'VALUE'}.")
        if key in out:
            raise UsageError(f"--param {key} is given twice; give it once.")
        out[key] = _number(text)
    m = _registry()[measure]
    try:
        m.check_params(out)
    except TypeError as exc:
        raise UsageError(f"{exc} (see svcca measures)") from None
    if out and measure in PAIRWISE_MEASURES:
        raise UsageError(
            f"--measure {measure} takes its knobs as flags (--keep, --variance, --epsilon); "
            f"drop --param {', '.join(out)}."
        )
    return out


# ---------------------------------------------------------------------- intervals
# svcca.stats.interval's and svcca.pairwise's defaults (a test holds them equal)
UNCERTAINTY_DEFAULTS = {"blocks": 20, "seed": 0, "level": 0.95, "replicates": 200}
# which method each knob sets (seed and level: both)
_KNOB_METHOD = {"blocks": "jackknife", "replicates": "bootstrap"}


def add_uncertainty_arguments(
    parser: argparse.ArgumentParser, methods: Sequence[str], what: str
) -> None:
    """``--uncertainty {methods}`` (help ``what``) and its knobs, ``--replicates`` only
    where ``"bootstrap"`` is offered (values are checked by :func:`resolve_uncertainty`)."""
    d = UNCERTAINTY_DEFAULTS
    parser.add_argument("--uncertainty", choices=list(methods), default=None, help=what)
    parser.add_argument(
        "--blocks",
        metavar="G",
        default=None,
        help=f"jackknife: blocks of rows, assigned by a seeded hash of the row index, an "
        f"int >= 2 (default {d['blocks']})",
    )
    if "bootstrap" in methods:
        parser.add_argument(
            "--replicates",
            metavar="B",
            default=None,
            help=f"bootstrap: Poisson-weighted replicates, an int >= 2 (default {d['replicates']})",
        )
    parser.add_argument(
        "--seed",
        metavar="S",
        default=None,
        help=f"seed of the rows' blocks (bootstrap: of the weights), an int >= 0 (default "
        f"{d['seed']})",
    )
    parser.add_argument(
        "--level",
        metavar="L",
        default=None,
        help=f"interval level in (0, 1) (default {d['level']})",
    )


def resolve_uncertainty(args: argparse.Namespace) -> dict[str, Any] | None:
    """The interval settings ``{"method", "level", "seed", "blocks" | "replicates"}``
    given on the command line, checked as the library checks them; None without
    ``--uncertainty``. A knob without ``--uncertainty``, or one that belongs to the other
    method, is refused with the fix."""
    from svcca._measures import check_level
    from svcca._moments import check_count, check_seed

    method = args.uncertainty
    given = [k for k in UNCERTAINTY_DEFAULTS if getattr(args, k, None) is not None]
    if method is None:
        if given:
            wants = _KNOB_METHOD.get(given[0], "jackknife")
            raise UsageError(
                f"--{given[0]} sets the intervals of --uncertainty {wants}; add "
                f"--uncertainty {wants}, or leave it out."
            )
        return None
    for knob in given:
        wants = _KNOB_METHOD.get(knob, method)
        if wants != method:
            other = next(k for k, m in _KNOB_METHOD.items() if m == method)
            raise UsageError(
                f"--{knob} is a setting of the {wants}; --uncertainty {method} takes --{other} "
                f"instead. Drop --{knob}, or use --uncertainty {wants}."
            )

    def value(knob: str) -> Any:
        text = getattr(args, knob, None)
        return UNCERTAINTY_DEFAULTS[knob] if text is None else _number(text)

    flag = {k: "--" + k for k in UNCERTAINTY_DEFAULTS}
    out: dict[str, Any] = {
        "method": method,
        "level": _checked(check_level, value("level"), flag["level"], "level"),
        "seed": _checked(check_seed, value("seed"), flag["seed"], "seed"),
    }
    knob = "blocks" if method == "jackknife" else "replicates"
    out[knob] = _checked(lambda v: check_count(v, flag[knob], 2), value(knob), flag[knob], knob)
    return out


# ---------------------------------------------------------------------- files
def load_representation(path: str, transpose: bool) -> Any:
    """A ``.npy`` file as ``(n_samples, n_features)``, or a UsageError.

    The file is read on demand by positioned reads (:func:`svcca._sources.load_array`):
    one that shrinks during the run is an error naming it, not a SIGBUS.
    """
    from svcca._sources import load_array

    try:
        arr = load_array(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if arr.dtype.kind not in "biuf":
        what = "complex numbers" if arr.dtype.kind == "c" else f"values of dtype {arr.dtype}"
        raise UsageError(
            f"{path!r} holds {what}; the measures need real numbers (float, int or bool). "
            "Save a real-valued array."
        )
    if arr.ndim != 2:
        raise UsageError(
            f"{path!r}: expected a 2-D array (n_samples, n_features); got shape {arr.shape}. "
            "Save one row per datapoint (a single feature as shape (n, 1), a convolutional "
            "layer flattened to (n, h*w*c))."
        )
    if arr.size == 0:
        raise UsageError(
            f"{path!r} is empty (shape {arr.shape}); it needs at least one datapoint and "
            "one feature."
        )
    return arr.T if transpose else arr


def check_same_datapoints(shapes: Sequence[tuple[str, tuple[int, int]]], transpose: bool) -> None:
    """Every representation ``(label, shape as read)`` has the same number of datapoints.

    When they do not, say why as far as the shapes tell: all the files agree on their
    other axis (then they are all the other way round: ``--transpose``), one file is
    the other way round (whichever it is), or the files hold different datapoints.
    """
    ns = [shape[0] for _, shape in shapes]
    if len(set(ns)) <= 1:
        return
    axis, other = ("columns", "rows") if transpose else ("rows", "columns")
    first_label, (n0, _) = shapes[0]
    odd_label, (n1, _) = next(item for item in shapes if item[1][0] != n0)
    counts = f"{first_label!r} has {n0} {axis} and {odd_label!r} has {n1}"
    if len({shape[1] for _, shape in shapes}) == 1:
        m = shapes[0][1][1]
        if transpose:
            fix = "if the files are (datapoints, neurons), drop --transpose."
        else:
            fix = (
                "if the files are (neurons, datapoints), as google/svcca saves them, pass "
                "--transpose."
            )
        raise UsageError(
            f"The files must hold the same datapoints: {counts}, but every file has {m} "
            f"{other}. The datapoints are the {axis}; {fix}"
        )
    # A file is flipped when its other axis matches the datapoints every other file
    # agrees on and its own does not: each file is tried, the first as the others.
    flipped = []
    for i, (label, (r, c)) in enumerate(shapes):
        rest = {shape[0] for j, (_, shape) in enumerate(shapes) if j != i}
        if len(rest) == 1 and c in rest and r not in rest:
            flipped.append((label, c))
    if len(flipped) == 1:
        label, most = flipped[0]
        others = "other files" if len(shapes) > 2 else "other file"
        raise UsageError(
            f"{label!r} looks saved the other way round: its {other} match the {most} "
            f"datapoints of the {others}, its {axis} do not. Save it in the same "
            f"orientation as the {others} (--transpose flips every file, not one)."
        )
    if flipped:  # two files, each the other's transpose in shape: either could be
        as_read = " and ".join(f"{label!r} is {shape}" for label, shape in shapes)
        raise UsageError(
            f"One of the files looks saved the other way round: {as_read} as read "
            f"(the datapoints are the {axis}). Save the one that is (neurons, datapoints) "
            "as (datapoints, neurons) (--transpose flips every file, not one)."
        )
    raise UsageError(
        f"The files must hold the same datapoints in the same order: {counts} (the "
        f"datapoints are the {axis})."
    )
