"""Streaming CCA from memmapped .npy files: peak memory and throughput.

Two representations of ``--features`` float32 features and ``--n`` samples are written
to ``.npy`` files, then ``svcca.cca(np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r"))``
runs in a fresh process that reports its peak resident memory (``VmHWM``, which counts
file-backed pages of the memmaps) and its wall time. Side by side:

- ``in-memory GEMM rate``: the bare float64 ``Z^T Z`` (``Z = [X Y]`` already centred, in
  memory) on ``--gemm-rows`` rows, in rows per second: the floor of any moment
  computation.
- ``in-memory Moments``: ``Moments.from_arrays`` on the same rows held in RAM (float32).
- ``streamed, warm``: the files in the OS page cache (just written).
- ``streamed, cold``: the files evicted from the page cache first
  (``posix_fadvise(DONTNEED)``), so every page comes from the disk.
- ``no release``: the same run with page release switched off, on the first quarter of
  the rows, to show what reading a memmap straight through costs in memory.
- ``float32``: the warm streamed run again with ``precision="float32"`` (float32 chunk
  products, float64 sums), against both the float64 and the float32 GEMM rates.

Run: ``python benchmarks/bench_streaming.py [--n 2000000] [--features 256] [--dir /tmp]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import svcca, svcca._moments._moments as mom

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024

    a, b, rows, release = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    precision = sys.argv[5]
    if not release:
        mom.release_rows = lambda *args: None
    X = np.load(a, mmap_mode="r")[:rows]
    Y = np.load(b, mmap_mode="r")[:rows]
    before = hwm()
    t = time.perf_counter()
    r = svcca.cca(X, Y, precision=precision)
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "hwm_mb": hwm(), "hwm_before_mb": before,
                      "score": r.score, "rows": rows}))
    """
)


GEMM_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import svcca

    a, b, g = sys.argv[1], sys.argv[2], int(sys.argv[3])
    X = np.load(a, mmap_mode="r")[:g].copy()
    Y = np.load(b, mmap_mode="r")[:g].copy()
    Z = np.hstack([X, Y]).astype(np.float64)
    Z -= Z.mean(axis=0)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        Z.T @ Z
        best = min(best, time.perf_counter() - t)
    Z = Z.astype(np.float32)
    best32 = np.inf
    for _ in range(3):
        t = time.perf_counter()
        Z.T @ Z
        best32 = min(best32, time.perf_counter() - t)
    del Z
    t = time.perf_counter()
    svcca.Moments.from_arrays(X, Y)
    mem = time.perf_counter() - t
    print(json.dumps({"gemm_rate": g / best, "gemm32_rate": g / best32, "moments_rate": g / mem}))
    """
)


def write(path: str, n: int, p: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, p))
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        a[s : s + m] = rng.standard_normal((m, p), dtype=np.float32) + np.float32(seed)
    a.flush()
    del a


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_child(script: str, *argv: object) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, argv)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(a: str, b: str, rows: int, release: bool, precision: str = "float64") -> dict:
    return run_child(CHILD, a, b, rows, "1" if release else "0", precision)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--gemm-rows", type=int, default=200_000)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    n, p = args.n, args.features
    gb = n * p * 4 / 2**30
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"# 2 representations x {p} float32 features x {n} samples = 2 x {gb:.2f} GiB")

    work = tempfile.mkdtemp(dir=args.dir, prefix="svcca-bench-")
    try:
        a, b = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
        t = time.perf_counter()
        write(a, n, p, 1)
        write(b, n, p, 2)
        print(f"files written in {time.perf_counter() - t:.1f} s")

        g = min(args.gemm_rows, n)
        before = run_child(GEMM_CHILD, a, b, g)
        warm = child(a, b, n, True)
        rate = n / warm["seconds"]
        print(
            f"streamed, warm cache : {rate / 1e6:6.3f} M rows/s  peak RSS {warm['hwm_mb']:7.1f} MB "
            f"({warm['seconds']:.1f} s)"
        )
        evict(a)
        evict(b)
        cold = child(a, b, n, True)
        crate = n / cold["seconds"]
        print(
            f"streamed, cold cache : {crate / 1e6:6.3f} M rows/s  "
            f"peak RSS {cold['hwm_mb']:7.1f} MB "
            f"({cold['seconds']:.1f} s)"
        )
        after = run_child(GEMM_CHILD, a, b, g)
        gemm_rate = (before["gemm_rate"] + after["gemm_rate"]) / 2
        mem_rate = (before["moments_rate"] + after["moments_rate"]) / 2
        print(
            f"in-memory GEMM rate  : {gemm_rate / 1e6:6.3f} M rows/s  (float64 [X Y]^T [X Y] on "
            f"{g} rows; {before['gemm_rate'] / 1e6:.3f} before, {after['gemm_rate'] / 1e6:.3f} "
            "after the streamed runs)"
        )
        print(f"in-memory Moments    : {mem_rate / 1e6:6.3f} M rows/s  (float32 arrays in RAM)")
        quarter = max(n // 4, 1)
        nr = child(a, b, quarter, False)
        print(
            f"no page release      : peak RSS {nr['hwm_mb']:7.1f} MB on {quarter} rows "
            f"(files {2 * quarter * p * 4 / 2**20:.0f} MB) vs with release "
            f"{warm['hwm_mb']:.1f} MB on all {n}"
        )
        print(
            f"RATIO gemm/streamed-warm = {gemm_rate / rate:.2f}  gemm/streamed-cold = "
            f"{gemm_rate / crate:.2f}  in-memory-Moments/streamed-warm = {mem_rate / rate:.2f}  "
            f"peak RSS {max(warm['hwm_mb'], cold['hwm_mb']):.0f} MB (target < 1024)"
        )
        assert abs(warm["score"] - cold["score"]) < 1e-12
        w32 = child(a, b, n, True, "float32")
        rate32 = n / w32["seconds"]
        gemm32 = (before["gemm32_rate"] + after["gemm32_rate"]) / 2
        print(
            f"float32, warm cache  : {rate32 / 1e6:6.3f} M rows/s  "
            f"peak RSS {w32['hwm_mb']:7.1f} MB "
            f"(score differs from float64 by {abs(w32['score'] - warm['score']):.1e}); "
            f"float32 GEMM rate {gemm32 / 1e6:.3f} M rows/s"
        )
        print(
            f"RATIO gemm64/streamed-float32-warm = {gemm_rate / rate32:.2f}  "
            f"gemm32/streamed-float32-warm = {gemm32 / rate32:.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
