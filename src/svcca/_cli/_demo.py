"""``svcca demo``: train small networks on the bundled digits and draw the paper's figures."""

from __future__ import annotations

import argparse
import os
import sys

from svcca._cli._options import UsageError

HELP = (
    "Train a small CNN and MLP on scikit-learn's digits from several seeds and redraw the "
    "SVCCA paper's figures (needs torch, matplotlib, scikit-learn)."
)


# What `svcca` prints after "out of memory" (see svcca._cli._main).
MEMORY_HINT = "Close other programs, or run svcca demo --quick (fewer datapoints)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default="svcca-demo", help="output directory (default: svcca-demo)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer epochs: under a minute on two cores (CI)"
    )
    parser.add_argument(
        "--sanity",
        action="store_true",
        help="instead, run the Kornblith et al. 2019 Table 2 layer-identification check",
    )
    parser.add_argument(
        "--monotonicity",
        action="store_true",
        help="instead, run ReSi's layer-monotonicity test of every registered measure",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="networks for --sanity (>= 2) or --monotonicity (>= 1)",
    )
    parser.add_argument(
        "--study",
        action="store_true",
        help="with --sanity: the same check across depths, widths, datapoints and the MLP",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    from svcca._validation import check_int

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(
            f"--out {args.out!r} is an existing file; svcca demo writes a folder of figures, "
            "checkpoints and an index.html there. Pass a folder (new or existing) instead."
        )
    if args.sanity and args.monotonicity:
        raise UsageError("--sanity and --monotonicity are two runs: give one of them.")
    if args.seeds is not None and not (args.sanity or args.monotonicity):
        raise UsageError("--seeds applies to --sanity and --monotonicity only.")
    if args.monotonicity and args.seeds is not None:
        try:
            check_int(args.seeds, "--seeds", minimum=1)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.sanity and args.seeds is not None:
        try:
            check_int(
                args.seeds,
                "--seeds",
                minimum=2,
                fix="--sanity identifies layers across networks, so it needs at least 2.",
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        import svcca._demo  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError(str(exc)) from exc
    progress = not args.quiet
    if args.study and not args.sanity:
        raise UsageError("--study applies to --sanity only: svcca demo --sanity --study.")
    if args.study and args.quick:
        raise UsageError("--study has no quick mode (about an hour on 2 cores); drop --quick.")
    if args.sanity:
        from svcca._demo import run_sanity, run_study

        if args.study:
            run_study(args.out, seeds=args.seeds or 3, progress=progress)
            with open(os.path.join(args.out, "study.md")) as fh:
                print(fh.read())
            return 0
        res = run_sanity(args.out, seeds=args.seeds, quick=args.quick, progress=progress)
        print(res.markdown)
        return 0
    if args.monotonicity:
        from svcca._demo import monotonicity_markdown, run_monotonicity

        mono = run_monotonicity(
            args.out, seeds=args.seeds or 2, quick=args.quick, progress=progress
        )
        print(monotonicity_markdown(mono))
        return 0
    from svcca._demo import run_demo

    try:
        report = run_demo(args.out, quick=args.quick, progress=progress)
    except ImportError as exc:
        raise UsageError(str(exc)) from exc
    for fg in report.figures:
        print(f"{fg.name}: {fg.finding}")
    print(f"wrote {report.index} ({report.seconds:.0f} s)", file=sys.stderr)
    return 0
