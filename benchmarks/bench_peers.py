"""svcca against its peers on the same CPU, same float32 inputs, in one process.

Run: python benchmarks/bench_peers.py [--n 20000] [--repeat 3] [--quick]

Every row times, interleaved round by round (best of ``--repeat``), svcca and a peer
implementation of the same formula, and checks that they give the same number:

  linear CKA, p = q = 512   svcca.cka (float64, and precision="float32") against the
                            formula from the three cross-products in torch float32
                            (what anatome and ckatorch compute) and Kornblith et al.'s
                            numpy reference (float64, feature space)
  mean CCA, p = q = 256     svcca.cca against google/svcca's algorithm (covariance,
                            pinv, eigh inverse square roots; numpy float64) and CCA by QR
                            in torch float32 (anatome's algorithm)
  SVCCA 99%, p = q = 512    svcca.svcca against SVD of each centred side, then CCA by QR,
                            in torch float32 (anatome's SVCCA, centred)
  12-way pairwise CCA       svcca.pairwise(measure="cca") against a loop of QR-CCA over
    n = 5000, p = 64        the 66 pairs in torch float32 (netrep's LinearMetric(alpha=0)
                            loops over pairs the same way)

cca-zoo and ckatorch are timed too when installed. The peers are written here from the
papers and the peers' documented algorithms, not imported, so the benchmark needs only
torch. Torch gets as many threads as BLAS (never more than the cores).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable

import numpy as np
from bench_core import original  # google/svcca's algorithm, written out once

import svcca


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i["user_api"] == "blas"]
        return ", ".join(
            f"{i['internal_api']} {i.get('version')} {i.get('architecture')}, "
            f"{i['num_threads']} threads"
            for i in info
        )
    except ImportError:
        return "unknown"


# ---------------------------------------------------------------------- peers (torch)
def torch_cka(X, Y) -> float:
    """Linear CKA from the three cross-products of centred float32 data."""
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    xy = (Y.T @ X).square().sum()
    return float(xy / ((X.T @ X).norm() * (Y.T @ Y).norm()))


def torch_cca_qr(X, Y):
    """CCA by QR of each centred side: the singular values of Q_x^T Q_y (anatome)."""
    import torch

    qx, _ = torch.linalg.qr(X - X.mean(0))
    qy, _ = torch.linalg.qr(Y - Y.mean(0))
    return torch.linalg.svdvals(qx.T @ qy)


def torch_svcca(X, Y, keep: float = 0.99) -> float:
    """SVD of each centred side, the leading directions holding ``keep`` of the variance,
    then CCA by QR of the reduced data (anatome's SVCCA, with centring)."""
    import torch

    def reduce(A):
        A = A - A.mean(0)
        U, s, _ = torch.linalg.svd(A, full_matrices=False)
        share = torch.cumsum(s**2, 0) / (s**2).sum()
        k = int(torch.searchsorted(share, torch.tensor(keep, dtype=share.dtype))) + 1
        return U[:, :k] * s[:k]

    return float(torch_cca_qr(reduce(X), reduce(Y)).mean())


def kornblith_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Kornblith et al.'s ``feature_space_linear_cka`` (numpy, float64)."""
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    X = X - X.mean(0, keepdims=True)
    Y = Y - Y.mean(0, keepdims=True)
    dot = np.linalg.norm(X.T @ Y) ** 2
    return float(dot / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


def original_cca(X: np.ndarray, Y: np.ndarray) -> float:
    """google/svcca's cca_core algorithm written out (numpy float64, bench_core's copy)."""
    return float(original(X.astype(np.float64), Y.astype(np.float64)).mean())


# ---------------------------------------------------------------------- timing
def _race(fns: dict[str, Callable[[], float]], repeat: int) -> dict[str, tuple[float, float]]:
    """Best time and value of each function, the functions interleaved round by round."""
    best = {k: np.inf for k in fns}
    value = {}
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            value[k] = f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: (best[k], value[k]) for k in fns}


def _report(title: str, res: dict[str, tuple[float, float]], ours: str) -> None:
    print(f"\n{title}")
    t_ours = res[ours][0]
    for k, (t, v) in res.items():
        rel = "" if k == ours else f"   {t / t_ours:5.2f}x the time of {ours}"
        print(f"  {k:34s} {t:8.3f} s   value {v:.10f}{rel}")


def _pair(rng: np.random.Generator, n: int, p: int, q: int) -> tuple[np.ndarray, np.ndarray]:
    Z = rng.standard_normal((n, 32), dtype=np.float32)
    X = Z @ rng.standard_normal((32, p), dtype=np.float32)
    X += rng.standard_normal((n, p), dtype=np.float32)
    Y = Z @ rng.standard_normal((32, q), dtype=np.float32)
    Y += 2 * rng.standard_normal((n, q), dtype=np.float32)
    return np.tanh(X / 8), np.tanh(Y / 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: check it runs")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(min(torch.get_num_threads(), _cores()))
    n = 2000 if args.quick else args.n
    wide, mid, small = (64, 32, 16) if args.quick else (512, 256, 64)
    print(
        f"bench_peers {datetime.date.today()} on {platform.processor() or platform.machine()}, "
        f"{_cores()} cores; BLAS: {_blas()}; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; n = {n}"
    )
    rng = np.random.default_rng(0)
    t = torch.from_numpy

    X, Y = _pair(rng, n, wide, wide)
    tx, ty = t(X), t(Y)
    fns: dict[str, Callable[[], float]] = {
        "svcca.cka float64": lambda: svcca.cka(X, Y).score,
        "svcca.cka precision=float32": lambda: svcca.cka(X, Y, precision="float32").score,
        "torch float32 (3 cross-products)": lambda: torch_cka(tx, ty),
        "Kornblith numpy float64": lambda: kornblith_cka(X, Y),
    }
    try:
        from ckatorch.core import cka_base  # type: ignore[import-not-found]

        fns["ckatorch"] = lambda: float(cka_base(tx, ty, kernel="linear"))
    except ImportError:
        pass
    _report(f"linear CKA, p = q = {wide}", _race(fns, args.repeat), "svcca.cka precision=float32")

    X, Y = _pair(rng, n, mid, mid)
    tx, ty = t(X), t(Y)
    fns = {
        "svcca.cca float64": lambda: svcca.cca(X, Y).score,
        "svcca.cca precision=float32": lambda: svcca.cca(X, Y, precision="float32").score,
        "google/svcca (numpy float64)": lambda: original_cca(X, Y),
        "QR-CCA torch float32 (anatome)": lambda: float(torch_cca_qr(tx, ty).mean()),
    }
    try:
        from cca_zoo.linear import CCA as ZooCCA  # type: ignore[import-not-found]

        def zoo() -> float:
            model = ZooCCA(latent_dimensions=mid).fit((X, Y))
            return float(np.mean(model.average_pairwise_correlations((X, Y))))

        fns["cca-zoo"] = zoo
    except ImportError:
        pass
    _report(f"mean CCA, p = q = {mid}", _race(fns, args.repeat), "svcca.cca float64")

    X, Y = _pair(rng, n, wide, wide)
    tx, ty = t(X), t(Y)
    fns = {
        "svcca.svcca float64": lambda: svcca.svcca(X, Y).score,
        "svcca.svcca precision=float32": lambda: svcca.svcca(X, Y, precision="float32").score,
        "SVD + QR-CCA torch float32": lambda: torch_svcca(tx, ty),
    }
    _report(f"SVCCA 99%, p = q = {wide}", _race(fns, args.repeat), "svcca.svcca float64")

    n_pw = 1000 if args.quick else 5000
    reps = {f"l{i}": _pair(rng, n_pw, small, small)[0] for i in range(12)}
    treps = {k: t(v) for k, v in reps.items()}
    names = list(reps)

    def loop() -> float:
        vals = [
            float(torch_cca_qr(treps[a], treps[b]).mean())
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        ]
        return float(np.mean(vals))

    def engine(precision: str) -> float:
        r = svcca.pairwise(reps, measure="cca", precision=precision).values
        return float(r[np.triu_indices(12, 1)].mean())

    fns = {
        "svcca.pairwise float64": lambda: engine("float64"),
        "svcca.pairwise precision=float32": lambda: engine("float32"),
        "QR-CCA torch float32, 66 pairs": loop,
    }
    _report(
        f"12-way pairwise CCA, n = {n_pw}, p = {small} (value: mean over the 66 pairs)",
        _race(fns, args.repeat),
        "svcca.pairwise float64",
    )


if __name__ == "__main__":
    main()
