"""Intervals for every cell of a 12 x 12 ``svcca.torch.compare``: what they cost.

Issue 21's benchmark, model against model. Two MLPs (``--inputs`` features in, ``--depth``
Linear + tanh layers of ``--width`` units, seeds 0 and 1; tanh rather than ReLU so no
unit is dead on a block of rows), the ``--depth`` tanh outputs of each captured,
every layer of model A against every layer of model B (``depth^2`` = 144 cells), over
``--n`` Gaussian inputs fed in batches of ``--batch`` rows, ``--measure`` (default
``"cca"``, as ``bench_uncertainty.py``), float64 statistics:

- ``plain``: ``svcca.torch.compare(a, b, batches, layers, measure=...)``: one pass, bare
  numbers.
- ``intervals``: the same call with ``uncertainty="jackknife", blocks=--blocks``: also one
  pass (the rows go to blocks by a seeded hash of their global index; per block, the
  moments of all ``2 x depth`` layers side by side), then the measure on every
  leave-one-block-out statistic of every cell. ``intervals / plain`` is what an
  interval for every cell costs.
- ``loop``: what a user writes today: ``svcca.torch.capture`` of both models (float64,
  every activation kept), then ``svcca.stats.bootstrap(measure, A_i, B_j,
  n_resamples=B)`` for each of the 144 pairs, ``B = --resamples`` (default 1000, the
  function's default). The capture is timed in full; the bootstraps are timed on
  ``--loop-pairs`` pairs x ``--loop-resamples`` resamples and **scaled linearly** to
  144 pairs x ``B`` resamples (every pair of equal widths and every resample costs the
  same work). The printout says so.

Timings: ``plain`` and ``intervals`` interleaved in one process (plain, intervals,
plain, intervals, ...), best of ``--repeat``; the loop once. Peak memory, in untimed
calls: NumPy's buffers as ``tracemalloc`` sees them (torch's own allocations are not
traced), and the process's peak resident set above its level before the call
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``; Linux only, else
"n/a"). The intervals' statistics are planned at ``(blocks + 1) x P^2 x 8`` bytes,
``P = 2 x depth x width``: 6.3 GB at the defaults (12 + 12 layers of 256, 20 blocks),
printed before the run; ``compare`` refuses with the fix if half the free memory cannot
hold them.

Run: ``python benchmarks/bench_uncertainty_compare.py [--n 20000] [--width 256]
[--blocks 20] [--repeat 2]`` on a quiet machine (minutes at the defaults);
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
import torch

import svcca
import svcca.torch as st

nn = torch.nn


def mlp(inputs: int, width: int, depth: int, seed: int) -> nn.Sequential:
    """``depth`` x (Linear, Tanh), in evaluation mode."""
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    d = inputs
    for _ in range(depth):
        mods += [nn.Linear(d, width), nn.Tanh()]
        d = width
    return nn.Sequential(*mods).eval()


def _status(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def memory(f: Callable[[], Any]) -> tuple[float, float | None]:
    """Peak traced NumPy memory and peak RSS growth of ``f()``, in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        can_reset = True
    except OSError:
        can_reset = False
    before = _status("VmRSS")
    tracemalloc.start()
    try:
        f()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    hwm = _status("VmHWM")
    grown = None if not can_reset or hwm is None or before is None else hwm - before
    return peak, grown


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="inputs (datapoints)")
    ap.add_argument("--inputs", type=int, default=128, help="input features")
    ap.add_argument("--width", type=int, default=256, help="units per layer")
    ap.add_argument("--depth", type=int, default=12, help="captured layers per model")
    ap.add_argument("--batch", type=int, default=500, help="rows per batch")
    ap.add_argument("--measure", default="cca")
    ap.add_argument("--blocks", type=int, default=20, help="jackknife blocks")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap B the loop needs")
    ap.add_argument("--loop-pairs", type=int, default=2, help="pairs the loop is timed on")
    ap.add_argument("--loop-resamples", type=int, default=20, help="resamples timed per pair")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="tiny smoke run, not a measurement")
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.inputs, a.width, a.batch, a.repeat = 800, 8, 6, 150, 1
        a.loop_pairs, a.loop_resamples = 1, 3

    net_a = mlp(a.inputs, a.width, a.depth, seed=0)
    net_b = mlp(a.inputs, a.width, a.depth, seed=1)
    layers = [str(2 * i + 1) for i in range(a.depth)]  # the tanh modules
    g = torch.Generator().manual_seed(0)
    batches = list(torch.randn(a.n, a.inputs, generator=g).split(a.batch))
    cells = a.depth * a.depth
    P = 2 * a.depth * a.width
    planned = (a.blocks + 1) * P * P * 8 / 2**30
    print(
        f"# bench_uncertainty_compare: {a.depth} x {a.depth} {a.measure}, two MLPs "
        f"{a.inputs} -> {a.depth} x {a.width} (tanh), n={a.n} in batches of {a.batch}, "
        f"blocks={a.blocks}, float64; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
        f"threads), numpy {np.__version__}, svcca {svcca.__version__}"
        + ("  [--quick: smoke run, not a measurement]" if a.quick else "")
    )
    print(
        f"# intervals' block statistics: ({a.blocks} + 1) x {P}^2 x 8 bytes = "
        f"{planned:.2f} GiB (planned)"
    )

    def plain() -> Any:
        return st.compare(net_a, net_b, batches, layers, measure=a.measure)

    def intervals() -> Any:
        with warnings.catch_warnings():  # the coverage warning at small n/(p+q)
            warnings.simplefilter("ignore", svcca.SVCCAWarning)
            return st.compare(
                net_a, net_b, batches, layers, measure=a.measure,
                uncertainty="jackknife", blocks=a.blocks, seed=0,
            )  # fmt: skip

    best = {"plain": np.inf, "intervals": np.inf}
    out: dict[str, Any] = {}
    for _ in range(a.repeat):  # interleaved: plain, intervals, plain, intervals, ...
        for key, job in (("plain", plain), ("intervals", intervals)):
            t = time.perf_counter()
            out[key] = job()
            best[key] = min(best[key], time.perf_counter() - t)
    agree = float(np.max(np.abs(out["plain"].values - out["intervals"].values)))
    del out

    # The loop a user writes today: capture both models, then a bootstrap per pair.
    t = time.perf_counter()
    acts_a = st.capture(net_a, batches, layers, dtype=np.float64)
    acts_b = st.capture(net_b, batches, layers, dtype=np.float64)
    t_capture = time.perf_counter() - t
    pairs = [(x, y) for x in layers for y in layers]
    timed_pairs = pairs[: a.loop_pairs]
    t = time.perf_counter()
    for x, y in timed_pairs:
        svcca.stats.bootstrap(a.measure, acts_a[x], acts_b[y], n_resamples=a.loop_resamples, seed=0)
    t_part = time.perf_counter() - t
    scale = (len(pairs) / len(timed_pairs)) * (a.resamples / a.loop_resamples)
    t_loop = t_capture + t_part * scale
    del acts_a, acts_b

    def loop_memory() -> None:  # the capture kept, and one pair's bootstrap
        xa = st.capture(net_a, batches, layers, dtype=np.float64)
        xb = st.capture(net_b, batches, layers, dtype=np.float64)
        svcca.stats.bootstrap(
            a.measure, xa[layers[0]], xb[layers[0]], n_resamples=a.loop_resamples, seed=0
        )

    mem = {"plain": memory(plain), "intervals": memory(intervals), "loop": memory(loop_memory)}

    def mib(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.0f}"

    tp = best["plain"]
    print(f"{'':10s} {'seconds':>10s} {'x plain':>8s} {'peak MiB (tracemalloc)':>23s}"
          f" {'peak RSS growth MiB':>20s}")  # fmt: skip
    for key, secs in (("plain", tp), ("intervals", best["intervals"]), ("loop", t_loop)):
        peak, rss = mem[key]
        print(f"{key:10s} {secs:10.3f} {secs / tp:8.2f} {peak:23.1f} {mib(rss):>20s}")
    print(
        f"# loop = capture of both models ({t_capture:.3f} s, timed in full) + bootstraps "
        f"timed on {len(timed_pairs)} pair(s) x {a.loop_resamples} resamples "
        f"({t_part:.3f} s) and SCALED x{scale:.0f} to {len(pairs)} pairs x {a.resamples} "
        f"resamples; its memory is the capture's plus one pair's bootstrap"
    )
    print(f"intervals / plain: {best['intervals'] / tp:.2f}x the time for {cells} intervals")
    print(f"loop / intervals: {t_loop / best['intervals']:.1f}x (intervals faster)")
    print(
        f"max |values with intervals - without| = {agree:.1e} (round-off, which grows with "
        "the conditioning of the deep layers: a random tanh MLP's layer covariances reach "
        "condition numbers of 1e10 by layer 12)"
    )


if __name__ == "__main__":
    main()
