"""A p-value for every cell of a matrix: what it costs (issue 21, "Tests per cell").

``R`` representations of ``n`` datapoints (``--width`` features, float64, one shared
latent), compared all against all:

- ``permutation`` (``--measure``, default ``"cka_rbf"``, ``--permutations B``):
  ``svcca.pairwise(reps, measure=..., test="permutation", permutations=B)``, each side
  prepared once and each column side permuted once per permutation, against the loop a
  user writes today, ``svcca.stats.permutation_test(measure, X_i, X_j,
  n_permutations=B)`` for each of the ``R (R - 1) / 2`` pairs (the same p-values: the
  matrix path draws the same permutations). The loop is timed on ``--loop-pairs`` pairs
  and **scaled linearly** to all pairs (every pair costs the same); the printout says so.
- ``asymptotic`` (``--moments-measure``, default ``"cca"``): ``pairwise(...,
  test="asymptotic")`` against ``pairwise(...)``: the ratio is what the tests add to the
  one pass.

Timings interleave the two sides, best of ``--repeat``. Run:
``python benchmarks/bench_cell_tests.py``; ``--quick`` is a smoke run (seconds), not a
measurement.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import svcca


def make_reps(r: int, n: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 4))
    return {
        f"r{i:02d}": np.tanh(Z @ rng.standard_normal((4, width)) / 2)
        + 0.3 * rng.standard_normal((n, width))
        for i in range(r)
    }


def best(fs: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Best wall time of each function, calls interleaved."""
    out = [np.inf] * len(fs)
    for _ in range(repeat):
        for k, f in enumerate(fs):
            t = time.perf_counter()
            f()
            out[k] = min(out[k], time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--measure", default="cka_rbf")
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--loop-pairs", type=int, default=3)
    ap.add_argument("--moments-measure", default="cca")
    ap.add_argument("--moments-n", type=int, default=20000)
    ap.add_argument("--moments-width", type=int, default=256)
    ap.add_argument("--moments-reps", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.n, a.width, a.permutations, a.loop_pairs, a.repeat = 3, 60, 5, 9, 1, 1
        a.moments_n, a.moments_width, a.moments_reps = 500, 8, 3
    warnings.simplefilter("ignore", svcca.SVCCAWarning)
    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}"
    )

    reps = make_reps(a.reps, a.n, a.width)
    names = list(reps)
    pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    some = pairs[: a.loop_pairs]

    def matrix() -> Any:
        return svcca.pairwise(reps, measure=a.measure, test="permutation",
                              permutations=a.permutations, seed=0)  # fmt: skip

    def loop() -> None:
        for x, y in some:
            svcca.stats.permutation_test(a.measure, reps[x], reps[y],
                                         n_permutations=a.permutations, seed=0)  # fmt: skip

    t_matrix, t_loop = best([matrix, loop], a.repeat)
    t_loop_all = t_loop * len(pairs) / len(some)
    r = matrix()
    x, y = pairs[0]
    same = (
        r.pvalues[0, 1]
        == svcca.stats.permutation_test(
            a.measure, reps[x], reps[y], n_permutations=a.permutations, seed=0
        ).pvalue
    )
    print(
        f"\n## permutation p-values, {a.reps} x {a.reps} {a.measure}, n={a.n}, "
        f"width={a.width}, B={a.permutations} ({len(pairs)} pairs)"
    )
    print(f"matrix (pairwise test='permutation'): {t_matrix:8.2f} s")
    print(
        f"loop of permutation_test, {len(some)} pairs timed ({t_loop:.2f} s), SCALED to "
        f"{len(pairs)} pairs: {t_loop_all:8.2f} s"
    )
    print(f"ratio loop / matrix: {t_loop_all / t_matrix:.1f}x; same p-value as the loop: {same}")

    mreps = make_reps(a.moments_reps, a.moments_n, a.moments_width, seed=1)

    def plain() -> Any:
        return svcca.pairwise(mreps, measure=a.moments_measure)

    def tested() -> Any:
        return svcca.pairwise(mreps, measure=a.moments_measure, test="asymptotic")

    t_plain, t_tested = best([plain, tested], a.repeat)
    print(
        f"\n## asymptotic p-values, {a.moments_reps} x {a.moments_reps} "
        f"{a.moments_measure}, n={a.moments_n}, width={a.moments_width}"
    )
    print(
        f"pairwise: {t_plain:8.2f} s; with test='asymptotic': {t_tested:8.2f} s; "
        f"ratio {t_tested / t_plain:.2f}x"
    )


if __name__ == "__main__":
    main()
