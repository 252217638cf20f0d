"""Neighbourhood measures at scale: svcca's blocked exact search against the references.

Sections, interleaved in one process (each timing the best of ``--repeat`` rounds, ours
and the reference alternating), with the values compared and the peak memory of each
call (NumPy's, by tracemalloc, and the process's resident high-water mark above its
level before the call, which also counts torch's allocations):

1. ``platonic``: ``svcca.mutual_knn`` and ``svcca.cknna`` against platonic-rep's
   full-matrix method in torch (written out below: the ``n x n`` similarity matrix, its
   argsort, two ``n x n`` masks; CKNNA's five ``n x n`` matrices), at ``--n`` (10,000).
2. ``resi``: ``svcca.jaccard_knn``, ``rank_similarity`` and ``second_order_cosine``
   against ReSi's calls (scikit-learn ``NearestNeighbors(k + 1, metric="cosine")``, its
   Python set operations, and for second-order cosine the two full ``n x n`` distance
   matrices of ``sklearn.metrics.pairwise_distances``), at ``--n``.
3. ``scale``: ours alone at ``--n-large`` (100,000 x 256 float32): time and peak
   memory, and the memory the references' methods would need there.
4. ``pairwise``: ``svcca.pairwise`` of ``--layers`` (20) layers with ``mutual_knn``
   (each layer's neighbours searched once: 20 searches) against the ``20 x 20`` single
   calls (two searches each: 800), timed on ``--single-pairs`` of them and scaled.

Data: two representations of the same datapoints, 256 features each, float32, made from
a shared 32-dimensional latent (tanh of different linear maps, plus noise).

Run: ``python benchmarks/bench_field.py`` (the lead's sizes; minutes) or ``--quick``
(tiny sizes, seconds: checks that it runs; its timings mean nothing).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

import svcca

K = 10
KNN = "mutual_knn"


# ---------------------------------------------------------------------- data
def make_pair(n: int, p: int, seed: int = 0, latent: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, latent)).astype(np.float32)
    out = []
    for _ in range(2):
        W = (rng.standard_normal((latent, p)) / np.sqrt(latent)).astype(np.float32)
        H = np.tanh(Z @ W) + 0.1 * rng.standard_normal((n, p), dtype=np.float32)
        out.append(H.astype(np.float32))
    return out[0], out[1]


def make_layers(n: int, p: int, layers: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 32)).astype(np.float32)
    reps = {}
    for ell in range(layers):
        W = (rng.standard_normal((32, p)) / np.sqrt(32)).astype(np.float32)
        reps[f"layer{ell}"] = np.tanh(Z @ W) + 0.1 * rng.standard_normal((n, p), dtype=np.float32)
    return reps


# ---------------------------------------------------------------------- platonic-rep, written out
def platonic_knn(torch: Any, feats: Any, topk: int) -> Any:
    """platonic-rep's compute_nearest_neighbors: the n x n matrix, argsorted."""
    return (feats @ feats.T).fill_diagonal_(-1e8).argsort(dim=1, descending=True)[:, :topk]


def platonic_mutual_knn(torch: Any, A: Any, B: Any, topk: int) -> float:
    A = torch.nn.functional.normalize(A, dim=-1)
    B = torch.nn.functional.normalize(B, dim=-1)
    knn_a, knn_b = platonic_knn(torch, A, topk), platonic_knn(torch, B, topk)
    n = knn_a.shape[0]
    r = torch.arange(n).unsqueeze(1)
    ma, mb = torch.zeros(n, n), torch.zeros(n, n)
    ma[r, knn_a] = 1.0
    mb[r, knn_b] = 1.0
    return float(((ma * mb).sum(dim=1) / topk).mean())


def _hsic_unbiased(torch: Any, K: Any, L: Any) -> Any:
    m = K.shape[0]
    Kt, Lt = K.clone().fill_diagonal_(0), L.clone().fill_diagonal_(0)
    v = (
        torch.sum(Kt * Lt.T)
        + torch.sum(Kt) * torch.sum(Lt) / ((m - 1) * (m - 2))
        - 2 * torch.sum(torch.mm(Kt, Lt)) / (m - 2)
    )
    return v / (m * (m - 3))


def platonic_cknna(torch: Any, A: Any, B: Any, topk: int) -> float:
    A = torch.nn.functional.normalize(A, dim=-1)
    B = torch.nn.functional.normalize(B, dim=-1)
    n = A.shape[0]
    K, L = A @ A.T, B @ B.T

    def sim(K: Any, L: Any) -> Any:
        _, ik = torch.topk(K.clone().fill_diagonal_(float("-inf")), topk, dim=1)
        _, il = torch.topk(L.clone().fill_diagonal_(float("-inf")), topk, dim=1)
        mk = torch.zeros(n, n, dtype=K.dtype).scatter_(1, ik, 1)
        ml = torch.zeros(n, n, dtype=K.dtype).scatter_(1, il, 1)
        mask = mk * ml
        return _hsic_unbiased(torch, mask * K, mask * L)

    return float(sim(K, L) / (torch.sqrt(sim(K, K) * sim(L, L)) + 1e-6))


# ---------------------------------------------------------------------- ReSi, as it calls it
def resi_top_k(R: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", n_jobs=os.cpu_count())
    nn.fit(R)
    return nn.kneighbors(R)[1][:, 1:]


def resi_jaccard(R: np.ndarray, Rp: np.ndarray, k: int) -> float:
    a, b = resi_top_k(R, k), resi_top_k(Rp, k)
    return float(
        np.mean([len(set(x) & set(y)) / len(set(x) | set(y)) for x, y in zip(a, b, strict=True)])
    )


def resi_rank(R: np.ndarray, Rp: np.ndarray, k: int) -> float:
    a, b = resi_top_k(R, k), resi_top_k(Rp, k)
    scores = np.zeros(len(a))
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        joint = list(set(x) & set(y))
        if not joint:
            continue
        norm = sum(1 / r for r in range(1, len(joint) + 1))
        s = 0.0
        for j in joint:
            rx, ry = np.argwhere(x == j)[0][0] + 1, np.argwhere(y == j)[0][0] + 1
            s += 2 / ((1 + abs(rx - ry)) * (rx + ry))
        scores[i] = s / norm
    return float(np.mean(scores))


def resi_second_order(R: np.ndarray, Rp: np.ndarray, k: int) -> float:
    import scipy.spatial.distance
    import sklearn.metrics

    a, b = resi_top_k(R, k), resi_top_k(Rp, k)
    union = [list(set(x) | set(y)) for x, y in zip(a, b, strict=True)]
    da = sklearn.metrics.pairwise_distances(R, metric="cosine")
    db = sklearn.metrics.pairwise_distances(Rp, metric="cosine")
    return float(
        np.mean(
            [1 - scipy.spatial.distance.cosine(da[i, u], db[i, u]) for i, u in enumerate(union)]
        )
    )


# ---------------------------------------------------------------------- measuring
def _status(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(f: Callable[[], Any]) -> tuple[float, Any, float, float | None]:
    """(seconds, value, NumPy peak MiB, process high-water mark above start MiB)."""
    can = _reset_hwm()
    before = _status("VmRSS")
    tracemalloc.start()
    t = time.perf_counter()
    value = f()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    hwm = _status("VmHWM")
    extra = None if not can or hwm is None or before is None else hwm - before
    return dt, value, peak, extra


def _score(name: str, X: np.ndarray, Y: np.ndarray) -> float:
    return float(getattr(svcca, name)(X, Y, k=K).score)


def _fmt(m: tuple[float, float | None]) -> str:
    rss = "" if m[1] is None else f", rss +{m[1]:.0f} MiB"
    return f"{m[0]:8.1f} MiB numpy{rss}"


def duel(label: str, ours: Callable[[], float], ref: Callable[[], float], repeat: int) -> None:
    best = {"ours": np.inf, "ref": np.inf}
    mem: dict[str, tuple[float, float | None]] = {}
    vals: dict[str, float] = {}
    for _ in range(repeat):  # interleaved: ours, reference, ours, ...
        for name, f in (("ours", ours), ("ref", ref)):
            dt, v, peak, hwm = measure(f)
            best[name] = min(best[name], dt)
            mem[name], vals[name] = (peak, hwm), v
    print(
        f"  {label:22s} ours {best['ours']:8.3f} s | ref {best['ref']:8.3f} s | "
        f"ref/ours {best['ref'] / best['ours']:6.2f}x | values {vals['ours']:.10f} vs "
        f"{vals['ref']:.10f}"
    )
    print(f"  {'':22s} memory ours {_fmt(mem['ours'])} | ref {_fmt(mem['ref'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--n-large", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=256)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--single-pairs", type=int, default=20, help="0: all layers^2 pairs")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sections", nargs="+", default=["platonic", "resi", "scale", "pairwise"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    args = ap.parse_args()
    if args.quick:
        args.n, args.n_large, args.features, args.layers, args.repeat = 300, 1000, 32, 4, 1
        args.single_pairs = 4
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, k = {K}")
    X, Y = make_pair(args.n, args.features)

    if "platonic" in args.sections:
        import torch

        A, B = torch.from_numpy(X), torch.from_numpy(Y)
        print(f"platonic-rep (torch full matrices, float32) vs svcca, n = {args.n}:")
        duel(
            "mutual_knn",
            lambda: svcca.mutual_knn(X, Y, k=K).score,
            lambda: platonic_mutual_knn(torch, A, B, K),
            args.repeat,
        )
        duel(
            "cknna (eps=1e-6)",
            lambda: svcca.cknna(X, Y, k=K, eps=1e-6).score,
            lambda: platonic_cknna(torch, A, B, K),
            args.repeat,
        )

    if "resi" in args.sections:
        print(f"ReSi (scikit-learn NearestNeighbors, cosine) vs svcca, n = {args.n}:")
        for name, ref in (
            ("jaccard_knn", resi_jaccard),
            ("rank_similarity", resi_rank),
            ("second_order_cosine", resi_second_order),
        ):
            duel(name, partial(_score, name, X, Y), partial(ref, X, Y, K), args.repeat)

    if "scale" in args.sections:
        n = args.n_large
        XL, YL = make_pair(n, args.features, seed=2)
        print(f"svcca alone, n = {n} x {args.features} float32:")
        for name in ("mutual_knn", "cknna", "jaccard_knn"):
            dt, v, peak, hwm = measure(partial(_score, name, XL, YL))
            rss = "" if hwm is None else f", rss +{hwm:.0f} MiB"
            print(f"  {name:22s} {dt:8.1f} s, value {v:.6f}, {peak:.0f} MiB numpy{rss}")
        gib = 2**30
        print(
            f"  references at n = {n}: one n x n float32 matrix is {4 * n * n / gib:.1f} GiB; "
            f"platonic-rep's mutual_knn holds the similarity matrix, its int64 argsort and "
            f"two float32 masks (>= {20 * n * n / gib:.0f} GiB); its cknna five n x n "
            f"matrices and their temporaries (>= {20 * n * n / gib:.0f} GiB); ReSi's "
            f"second-order cosine two float64 distance matrices ({16 * n * n / gib:.0f} GiB)"
        )

    if "pairwise" in args.sections:
        reps = make_layers(args.n, args.features, args.layers)
        names = list(reps)
        print(f"pairwise of {args.layers} layers, mutual_knn, n = {args.n}:")
        dt, vals, peak, hwm = measure(lambda: svcca.pairwise(reps, measure=KNN).values)
        pairs = [(a, b) for a in names for b in names]
        m = len(pairs) if args.single_pairs == 0 else min(args.single_pairs, len(pairs))
        idx = np.random.default_rng(0).choice(len(pairs), m, replace=False)
        t = time.perf_counter()
        for i in idx:
            a, b = pairs[i]
            v = svcca.mutual_knn(reps[a], reps[b]).score
            assert abs(v - vals[names.index(a), names.index(b)]) < 1e-3  # float32 vs float64
        single = (time.perf_counter() - t) / m * len(pairs)
        rss = "" if hwm is None else f", rss +{hwm:.0f} MiB"
        print(
            f"  pairwise {dt:8.1f} s ({args.layers} searches; {peak:.0f} MiB numpy{rss}) | "
            f"{len(pairs)} single calls {single:8.1f} s (timed on {m}, scaled) | "
            f"ratio {single / dt:6.1f}x"
        )


if __name__ == "__main__":
    main()
