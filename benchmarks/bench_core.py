"""One pair, float64: svcca.cca against the original algorithm and against the GEMM floor.

Run: python benchmarks/bench_core.py [--sizes 50000x512 50000x2048] [--repeat 2]

For each size it times, in one process and one run:
  floor    X^T X, Y^T Y and X^T Y alone (the three cross-products every exact method needs)
  original google/svcca's algorithm written out: np.cov of the stacked (neurons,
           datapoints) arrays, rescale, pinv, eigh inverse square root, SVD
  svcca    svcca.cca(X, Y) (correlations, score, pruning; weights are lazy)
and prints best-of-repeat times and the ratios. Peak memory above the inputs is measured
separately with tracemalloc (NumPy reports its allocations to it).
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numpy as np

import svcca


def floor(X: np.ndarray, Y: np.ndarray) -> None:
    X.T @ X
    Y.T @ Y
    X.T @ Y


def original(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    acts1, acts2 = X.T, Y.T
    p = acts1.shape[0]
    cov = np.cov(acts1, acts2)
    sxx, sxy, syy = cov[:p, :p], cov[:p, p:], cov[p:, p:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)

    def invsqrt(a: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(np.linalg.pinv(a))
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    arr = invsqrt(sxx) @ sxy @ invsqrt(syy)
    return np.linalg.svd(arr)[1]


def ours(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return svcca.cca(X, Y).correlations


def best_time(f, X, Y, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f(X, Y)
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_bytes(f, X, Y) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    f(X, Y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["50000x512", "50000x2048"])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-original-above", type=int, default=10**9)
    args = ap.parse_args()
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        )
    except ImportError:
        blas = "unknown BLAS"
    print(f"# {platform.processor() or platform.machine()}, numpy {np.__version__}, {blas}")
    print(
        "| n | p=q | floor s | original s | svcca s | svcca/floor | original/svcca | "
        "extra MiB svcca | extra MiB original | inputs MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        n, p = (int(v) for v in size.split("x"))
        rng = np.random.default_rng(100)
        X = rng.standard_normal((n, p))
        Y = 0.5 * X @ (rng.standard_normal((p, p)) / np.sqrt(p)) + rng.standard_normal((n, p))
        check = np.abs(ours(X, Y) - original(X, Y)).max()
        t_floor = best_time(floor, X, Y, args.repeat)
        t_ours = best_time(ours, X, Y, args.repeat)
        t_orig = best_time(original, X, Y, args.repeat)
        m_ours = peak_bytes(ours, X, Y) / 2**20
        m_orig = peak_bytes(original, X, Y) / 2**20
        inputs = (X.nbytes + Y.nbytes) / 2**20
        print(
            f"| {n} | {p} | {t_floor:.2f} | {t_orig:.2f} | {t_ours:.2f} | "
            f"{t_ours / t_floor:.2f}x | {t_orig / t_ours:.2f}x | {m_ours:.0f} | {m_orig:.0f} | "
            f"{inputs:.0f} |  (max |diff| of correlations vs original: {check:.1e})",
            flush=True,
        )


if __name__ == "__main__":
    main()
