"""BLAS threads for the small dense steps: as shipped, forced multi-threaded, one thread.

Run: python benchmarks/bench_threads.py [--p 512] [--q 384] [--repeat 5] [--busy 4]

From one ``Moments`` (p = 512, q = 384 by default) it times ``svcca.svcca`` plus
``svcca.pwcca`` (eigendecompositions, Cholesky factors, triangular solves: no pass over
the data) three ways, interleaved, best of ``--repeat``:

  shipped   svcca._threads as it is (one BLAS thread for blocks up to 2048, the idle
            cores for larger ones and for the products)
  default   svcca._threads switched off: OpenBLAS's default threads (one per core)
  one       the whole call under threadpool_limits(1)

then again with ``--busy`` processes spinning on the cores (the "busy machine" case),
and prints the ratios. Also times ``np.linalg.eigh`` of a ``p x p`` block both ways.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import svcca
import svcca._threads as threads


@contextlib.contextmanager
def _default_threads() -> Iterator[None]:
    saved = threads._threadpools
    threads._threadpools = lambda: None  # type: ignore[assignment]  # no limits at all
    try:
        yield
    finally:
        threads._threadpools = saved  # type: ignore[assignment]


@contextlib.contextmanager
def _busy(k: int) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]
    try:
        time.sleep(1.0)
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _best(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    best = {k: np.inf for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=512)
    ap.add_argument("--q", type=int, default=384)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--busy", type=int, default=4)
    args = ap.parse_args()
    blas = [
        f"{i['internal_api']} {i.get('version')} {i.get('architecture')} "
        f"({i['num_threads']} threads)"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    ]
    print(f"bench_threads {datetime.date.today()}; {os.cpu_count()} cores; BLAS: {blas}")
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((args.n, 64))
    X = np.tanh(Z @ rng.standard_normal((64, args.p)) + rng.standard_normal((args.n, args.p)))
    Y = np.tanh(Z @ rng.standard_normal((64, args.q)) + rng.standard_normal((args.n, args.q)))
    m = svcca.Moments.from_arrays(X, Y)
    S = m.sxx

    def steps() -> None:
        svcca.svcca(m)
        svcca.pwcca(m)

    def shipped() -> None:
        steps()

    def default() -> None:
        with _default_threads():
            steps()

    def one() -> None:
        with threadpool_limits(1):
            steps()

    def eigh_default() -> None:
        np.linalg.eigh(S)

    def eigh_one() -> None:
        with threadpool_limits(1):
            np.linalg.eigh(S)

    fns: dict[str, Callable[[], object]] = {
        "svcca + pwcca, shipped": shipped,
        "svcca + pwcca, default threads": default,
        "svcca + pwcca, one thread": one,
        f"eigh {args.p}x{args.p}, default threads": eigh_default,
        f"eigh {args.p}x{args.p}, one thread": eigh_one,
    }
    for label, ctx in (
        ("quiet", contextlib.nullcontext()),
        (f"{args.busy} busy processes", _busy(args.busy)),
    ):
        with ctx:
            res = _best(fns, args.repeat)
        print(f"\n{label} (load average {os.getloadavg()[0]:.1f})")
        for k, t in res.items():
            print(f"  {k:36s} {t * 1e3:9.1f} ms")
        ship = res["svcca + pwcca, shipped"]
        dflt, one_t = res["svcca + pwcca, default threads"], res["svcca + pwcca, one thread"]
        print(f"  default / shipped {dflt / ship:.2f}x, shipped / one thread {ship / one_t:.2f}x")


if __name__ == "__main__":
    main()
