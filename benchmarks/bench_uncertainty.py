"""Intervals for every cell of a 12 x 12 comparison: what they cost (issue 21's benchmark).

Twelve representations of ``n`` datapoints (``--width`` features each, float64) read one
shared latent (a per-representation linear map, tanh, small noise), compared all against
all with ``svcca.pairwise`` and a one-pass measure (``--measure``, default ``"cca"``):

- ``plain``: ``svcca.pairwise(reps, measure=...)``, bare numbers.
- ``intervals``: the same with ``uncertainty="jackknife"`` (``--blocks`` blocks): the
  delete-a-block jackknife rides along the one pass (per-block moments, then the measure
  on every leave-one-block-out statistic), so the ratio ``intervals / plain`` is what an
  interval for every cell costs.
- ``loop``: what a user writes today: ``svcca.stats.bootstrap(measure, X_i, X_j,
  n_resamples=B)`` for each of the 66 unordered pairs (the 12 diagonal cells skipped, which
  favours the loop), with ``B = --resamples`` (default 1000, the function's default). Timed
  on ``--loop-pairs`` pairs with ``--loop-resamples`` resamples each and **scaled
  linearly** to 66 pairs x ``B`` resamples (every pair and resample costs the same work);
  the printout says so.

Peak memory: Python's ``tracemalloc`` (NumPy reports its buffers to it) in a separate,
untimed call of each, so tracing does not slow the timed one. Each timing is the best of
``--repeat`` calls.

The same question model against model (``svcca.torch.compare`` of two 12-layer MLPs):
``benchmarks/bench_uncertainty_compare.py``.

Run: ``python benchmarks/bench_uncertainty.py [--n 20000] [--width 256]``;
``--quick`` is a smoke run at tiny sizes (seconds) to see the script work, not a
measurement.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import svcca

N_REPS = 12


def make_reps(n: int, width: int, latent: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Twelve ``(n, width)`` float64 representations of one ``(n, latent)`` latent."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, latent))
    reps = {}
    for i in range(N_REPS):
        W = rng.standard_normal((latent, width)) / np.sqrt(latent)
        reps[f"r{i:02d}"] = np.tanh(Z @ W) + 0.1 * rng.standard_normal((n, width))
    return reps


def timed(f: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_bytes(f: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="datapoints")
    ap.add_argument("--width", type=int, default=256, help="features per representation")
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--measure", default="cca")
    ap.add_argument("--blocks", type=int, default=20, help="jackknife blocks")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap B the loop needs")
    ap.add_argument("--loop-pairs", type=int, default=2, help="pairs the loop is timed on")
    ap.add_argument("--loop-resamples", type=int, default=20, help="resamples timed per pair")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run, not a measurement")
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.width, a.latent, a.repeat = 600, 8, 4, 1
        a.loop_pairs, a.loop_resamples = 1, 3

    reps = make_reps(a.n, a.width, a.latent)
    names = list(reps)
    pairs = [(names[i], names[j]) for i in range(N_REPS) for j in range(i + 1, N_REPS)]
    print(
        f"# bench_uncertainty: 12 x 12 {a.measure}, n={a.n}, width={a.width}, "
        f"blocks={a.blocks}, float64; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, svcca {svcca.__version__}"
        + ("  [--quick: smoke run]" if a.quick else "")
    )

    def plain() -> Any:
        return svcca.pairwise(reps, measure=a.measure)

    def intervals() -> Any:
        with warnings.catch_warnings():  # the coverage warning at small n/(p+q)
            warnings.simplefilter("ignore", svcca.SVCCAWarning)
            return svcca.pairwise(reps, measure=a.measure, uncertainty="jackknife", blocks=a.blocks)

    t_plain, r_plain = timed(plain, a.repeat)
    t_int, r_int = timed(intervals, a.repeat)
    agree = float(np.max(np.abs(r_plain.values - r_int.values)))

    def loop_part() -> None:
        for x, y in pairs[: a.loop_pairs]:
            svcca.stats.bootstrap(a.measure, reps[x], reps[y], n_resamples=a.loop_resamples, seed=0)

    t_part, _ = timed(loop_part, 1)
    scale = (len(pairs) / a.loop_pairs) * (a.resamples / a.loop_resamples)
    t_loop = t_part * scale

    m_plain, m_int = peak_bytes(plain), peak_bytes(intervals)
    m_loop = peak_bytes(
        lambda: svcca.stats.bootstrap(
            a.measure, reps[pairs[0][0]], reps[pairs[0][1]], n_resamples=a.loop_resamples
        )
    )
    data_mb = sum(x.nbytes for x in reps.values()) / 2**20

    print(f"data: {data_mb:.1f} MiB in 12 arrays")
    print(f"{'':12s} {'seconds':>10s} {'x plain':>8s} {'peak MiB':>9s}")
    print(f"{'plain':12s} {t_plain:10.3f} {1.0:8.2f} {m_plain / 2**20:9.1f}")
    print(f"{'intervals':12s} {t_int:10.3f} {t_int / t_plain:8.2f} {m_int / 2**20:9.1f}")
    print(
        f"{'loop':12s} {t_loop:10.3f} {t_loop / t_plain:8.2f} {m_loop / 2**20:9.1f}"
        f"  (scaled x{scale:.0f} from {a.loop_pairs} pair(s) x {a.loop_resamples} "
        f"resamples to {len(pairs)} pairs x {a.resamples}; peak of one pair's call)"
    )
    print(f"intervals vs loop: {t_loop / t_int:.1f}x faster")
    print(f"max |values with intervals - without| = {agree:.1e} (round-off)")


if __name__ == "__main__":
    main()
