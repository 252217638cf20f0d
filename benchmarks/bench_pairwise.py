"""Pane workload: every checkpoint's layers against the final model's layers, SVCCA.

Default: 8 layers x 10 checkpoints, 256 features each, n = 10000, float32 activations
made like real layers (a 32-dimensional latent through a per-layer linear map and tanh
into 256 units, plus small noise; checkpoints drift toward the final weights).

Three timings, in one run:

- ``engine``: ``svcca.pairwise(rows, cols, measure="svcca")`` (80 x 8 pairs).
- ``floor``: the arithmetic the engine cannot avoid, on data already centred in float64:
  one Gram matrix per representation (80 of ``X_i^T X_i``) plus the one blocked GEMM of
  the reduced cross-products (``A^T B``, ``A`` = the 80 representations projected on
  their kept directions side by side, ``B`` = the 8 final layers').
- ``baseline``: ``svcca.svcca(X, Y)`` for each pair. Timed on ``--baseline-pairs`` pairs
  and scaled to all pairs (each pair costs the same), unless ``--baseline-pairs 0``
  means all.

Also a DASK section (``--dask``): the same pane on a 2-process LocalCluster.

Run: ``python benchmarks/bench_pairwise.py [--n 10000] [--dask]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import svcca
from svcca import pairwise


def make_pane(n: int, layers: int, checkpoints: int, features: int, latent: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, latent)).astype(np.float32)
    reps: dict[str, np.ndarray] = {}
    final_w = [rng.standard_normal((latent, features)) / np.sqrt(latent) for _ in range(layers)]
    start_w = [rng.standard_normal((latent, features)) / np.sqrt(latent) for _ in range(layers)]
    for t in range(checkpoints):
        a = (t + 1) / checkpoints  # last checkpoint is the final model
        for ell in range(layers):
            W = ((1 - a) * start_w[ell] + a * final_w[ell]).astype(np.float32)
            H = np.tanh(Z @ W)
            H += 0.01 * rng.standard_normal(H.shape, dtype=np.float32)
            reps[f"ckpt{t}/layer{ell}"] = H
    return reps


def timed(f, repeat: int = 1):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def prepare_floor(
    rows: dict[str, np.ndarray],
    cols: dict[str, np.ndarray],
    dims: dict[str, int],
    dtype: type = np.float64,
):
    """Centred data and projected panels of the engine's sizes, in ``dtype`` (values
    irrelevant)."""
    centred = [
        (np.asarray(v, dtype=np.float64) - v.mean(axis=0)).astype(dtype) for v in rows.values()
    ]
    rng = np.random.default_rng(1)
    by_name = dict(zip(rows, centred, strict=True))

    def proj(c: np.ndarray, k: str) -> np.ndarray:
        return c @ rng.standard_normal((c.shape[1], dims[k])).astype(dtype)

    A = np.hstack([proj(c, k) for k, c in by_name.items()])
    B = np.hstack([proj(by_name[k], k) for k in cols])
    return centred, A, B


def floor_time(centred: list[np.ndarray], A: np.ndarray, B: np.ndarray) -> tuple[float, float]:
    """One Gram per representation + the one blocked GEMM of reduced cross-products."""
    t_gram, _ = timed(lambda: [c.T @ c for c in centred])
    t_gemm, _ = timed(lambda: A.T @ B)
    return t_gram, t_gemm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--checkpoints", type=int, default=10)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--baseline-pairs", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="engine/floor alternations")
    ap.add_argument("--dask", action="store_true", help="also run the pane on a LocalCluster")
    ap.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default="float64",
        help="the engine's precision; the floor is timed in the same dtype (and, for "
        "float32, also in float64)",
    )
    args = ap.parse_args()

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(
        f"# pane: {args.layers} layers x {args.checkpoints} checkpoints x {args.features} "
        f"features, n={args.n}, measure svcca (keep=0.99)"
    )
    t, reps = timed(
        lambda: make_pane(args.n, args.layers, args.checkpoints, args.features, args.latent)
    )
    print(f"data generated in {t:.1f} s")
    final = {k: v for k, v in reps.items() if k.startswith(f"ckpt{args.checkpoints - 1}/")}
    cols = {k.split("/")[1]: v for k, v in final.items()}
    n_pairs = len(reps) * len(cols)

    # Engine and floor alternate (best of --rounds each), so a shared machine's changing
    # load hits both alike.
    prec = args.precision
    res = pairwise(reps, cols, measure="svcca", precision=prec)
    dims = dict(zip(res.rows, res.dims_rows, strict=True))
    dt = np.float32 if prec == "float32" else np.float64
    floor_data = prepare_floor(reps, final, dims, dt)
    floor64 = prepare_floor(reps, final, dims) if prec == "float32" else None
    t_engine = t_gram = t_gemm = t_floor64 = np.inf
    for _ in range(args.rounds):
        t_engine = min(
            t_engine, timed(lambda: pairwise(reps, cols, measure="svcca", precision=prec))[0]
        )
        tg, tm = floor_time(*floor_data)
        t_gram, t_gemm = min(t_gram, tg), min(t_gemm, tm)
        if floor64 is not None:
            t_floor64 = min(t_floor64, sum(floor_time(*floor64)))
    t_floor = t_gram + t_gemm
    kr, kc = floor_data[1].shape[1], floor_data[2].shape[1]
    print(
        f"engine   : {t_engine:8.2f} s  ({n_pairs} pairs; kept directions "
        f"{min(res.dims_rows)}..{max(res.dims_rows)})"
    )
    print(
        f"floor    : {t_floor:8.2f} s  ({np.dtype(dt).name}: Grams {t_gram:.2f} s + one "
        f"{kr}x{kc} GEMM {t_gemm:.2f} s)"
    )
    if floor64 is not None:
        print(
            f"floor64  : {t_floor64:8.2f} s  (the same in float64; engine/floor64 = "
            f"{t_engine / t_floor64:.2f})"
        )

    # stage breakdown of the engine (same code path, timed piece by piece)
    from svcca._engines import Rep as _Rep
    from svcca._engines._passes import _cross_block, _pass1_local
    from svcca._engines._passes import pass_rows as _pass_rows
    from svcca._progress import Progress as _Progress
    from svcca._sources import as_source

    srcs = [as_source(v, k) for k, v in reps.items()]
    n = args.n
    quiet = _Progress(False, 0, "")
    rows1 = _pass_rows(sum(s.p for s in srcs), n, None, prec)
    t_p1, moms = timed(lambda: _pass1_local(srcs, n, rows1, quiet, prec))
    t_eig, rr = timed(
        lambda: [
            _Rep(repr(k), m, "svcca", 0.99, "explained", 0.0)
            for k, m in zip(reps, moms, strict=True)
        ]
    )
    means = [m.mean_x for m in moms]
    trs = [r.transform.astype(dt) for r in rr]
    row_u = list(range(len(srcs)))
    col_u = row_u[-len(cols) :]

    def p2():
        rows2 = _pass_rows(sum(t.shape[1] for t in trs), n, None, prec)
        out = None
        work: dict = {}
        for s0 in range(0, n, rows2):
            blocks = [s.read(s0, min(s0 + rows2, n)).astype(dt) for s in srcs]
            part = _cross_block(blocks, means, trs, row_u, col_u, work)
            out = part.astype(np.float64) if out is None else out + part
        return out

    t_p2, _ = timed(p2)
    print(
        f"  stages : pass 1 (read+centre+Gram) {t_p1:.2f} s, eigh x{len(srcs)} {t_eig:.2f} s, "
        f"pass 2 (read+centre+project+GEMM) {t_p2:.2f} s, pairs "
        f"{max(t_engine - t_p1 - t_eig - t_p2, 0):.2f} s (the remainder; stages are timed "
        "once each, the engine is the best of --rounds)"
    )

    items = [(a, b) for a in reps for b in cols]
    k = len(items) if args.baseline_pairs <= 0 else min(args.baseline_pairs, len(items))
    step = max(1, len(items) // k)
    sample = items[::step][:k]
    t_base, scores = timed(lambda: [svcca.svcca(reps[a], cols[b]).score for a, b in sample])
    t_base_all = t_base * len(items) / len(sample)
    err = max(abs(s - res[a, b]) for (a, b), s in zip(sample, scores, strict=True))
    print(
        f"baseline : {t_base_all:8.2f} s  (svcca.svcca per pair; {len(sample)} pairs timed "
        f"in {t_base:.2f} s, scaled to {len(items)})"
    )
    print(f"agreement: max |engine - single pair| = {err:.1e}")
    print(
        f"RATIO engine/floor = {t_engine / t_floor:.2f}   baseline/engine = "
        f"{t_base_all / t_engine:.1f}x   baseline/floor = {t_base_all / t_floor:.1f}x"
    )

    if args.dask:
        import warnings

        import dask.array as da
        from distributed import Client, LocalCluster

        warnings.filterwarnings("ignore", message="Sending large graph")
        with (
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl,
            Client(cl),
        ):
            chunk = max(1000, n // 8)
            # the data live on the workers before the clock starts (as when loaded by dask)
            drows = {k2: da.from_array(v, chunks=(chunk, -1)).persist() for k2, v in reps.items()}
            dcols = {k2.split("/")[1]: drows[k2] for k2 in final}
            t_dask, dres = timed(lambda: pairwise(drows, dcols, measure="svcca"), 2)
        diff = np.abs(dres.values - res.values).max()
        print(
            f"dask     : {t_dask:8.2f} s  (LocalCluster 2 procs x 1 thread, row chunks {chunk}); "
            f"max |dask - in-memory| = {diff:.1e}; "
            f"overhead {t_dask / t_engine:.2f}x the in-memory engine"
        )


if __name__ == "__main__":
    main()
