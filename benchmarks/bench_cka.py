"""Linear CKA and its permutation test against a straightforward sample-space implementation.

Run: python benchmarks/bench_cka.py [--n 10000] [--p 512] [--permutations 1000]
                                    [--baseline-permutations 3]

In one process it times
  floor     X^T X, Y^T Y and X^T Y alone (the cross-products feature-space CKA needs)
  naive     the textbook computation: centred n x n Gram matrices K = H X X^T H and
            L = H Y Y^T H, then <K, L> / (||K|| ||L||)
  svcca     svcca's cka(X, Y) (feature space for these shapes, chunked float64 moments)
and the permutation test with ``--permutations`` permutations:
  floor     one X^T Y[perm] product per permutation (what an exact test cannot avoid)
  naive     the textbook CKA recomputed for each permuted Y (timed on
            ``--baseline-permutations`` permutations and extrapolated: the full run
            would take hours)
  svcca     svcca.stats.permutation_test(cka, X, Y): centring and ||X^T X||, ||Y^T Y||
            once, then one p x n x q product per permutation
With ``--float32`` it also times the test with ``precision="float32"``.
It checks that the two agree (score, and the null values on the same permutations),
then prints times and ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from svcca import stats
from svcca._measures._cka import cka
from svcca.stats._resampling import _permutations


def floor(X: np.ndarray, Y: np.ndarray) -> None:
    X.T @ X
    Y.T @ Y
    X.T @ Y


def naive_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Centred Gram matrices in sample space, the way most tutorials write it."""

    def centred_gram(A: np.ndarray) -> np.ndarray:
        K = A @ A.T  # then H K H with H = I - 11^T/n, applied as row/column means
        r = K.mean(axis=0)
        K -= r[:, None]
        K -= r[None, :]
        K += r.mean()
        return K

    K = centred_gram(X)
    L = centred_gram(Y)
    hsic_xy = np.vdot(K, L)
    return float(hsic_xy / np.sqrt(np.vdot(K, K) * np.vdot(L, L)))


def timed(f, *args):
    t0 = time.perf_counter()
    out = f(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--p", type=int, default=512)
    ap.add_argument("--permutations", type=int, default=1000)
    ap.add_argument("--baseline-permutations", type=int, default=3)
    ap.add_argument(
        "--float32",
        action="store_true",
        help="also time permutation_test(..., precision='float32')",
    )
    args = ap.parse_args()
    n, p = args.n, args.p

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, p)) / np.sqrt(p) + 2.0 * rng.standard_normal((n, p))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    print(f"shape: n={n}, p=q={p}, float64\n")

    t_floor, _ = timed(floor, X, Y)
    t_ours, res = timed(cka, X, Y)
    t_naive, ref = timed(naive_cka, X, Y)
    assert abs(res.score - ref) < 1e-9, (res.score, ref)
    print("linear CKA (one call)")
    print(f"  floor (3 cross-products) {t_floor:8.2f} s")
    print(f"  naive (sample space)     {t_naive:8.2f} s")
    print(f"  svcca ({res.method:7s})        {t_ours:8.2f} s   score {res.score:.6f}")
    print(f"  naive / svcca            {t_naive / t_ours:8.1f} x")
    print(f"  svcca / floor            {t_ours / t_floor:8.2f} x\n")

    # Baseline: the same permutations the test draws (same seed, same generator).
    B = args.permutations
    b = args.baseline_permutations
    perms = next(_permutations(np.random.default_rng(1), n, b))
    t0 = time.perf_counter()
    naive_null = [naive_cka(X, Y[perm]) for perm in perms]
    t_naive_each = (time.perf_counter() - t0) / b

    t_gemm = min(timed(np.matmul, X.T, Y[perms[0]])[0] for _ in range(2))

    t_perm, pt = timed(lambda: stats.permutation_test(cka, X, Y, n_permutations=B, seed=1))
    assert pt.vectorized
    assert np.allclose(pt.null_distribution[:b], naive_null, rtol=1e-9, atol=1e-12)
    print(f"permutation test ({B} permutations)")
    print(
        f"  naive (recompute Grams)  {t_naive_each * B:8.1f} s   "
        f"(extrapolated from {b}: {t_naive_each:.2f} s each)"
    )
    print(f"  svcca (vectorised)       {t_perm:8.1f} s   ({t_perm / B * 1e3:.1f} ms each)")
    print(f"  floor (one X^T Y[perm] product per permutation) {t_gemm * 1e3:.1f} ms each")
    print(f"  naive / svcca            {t_naive_each * B / t_perm:8.1f} x")
    print(f"  svcca / floor            {t_perm / (B * t_gemm):8.2f} x")
    print(f"  p-value {pt.pvalue:.4f}, null mean {pt.null_distribution.mean():.2e}")
    if args.float32:
        t32, p32 = timed(
            lambda: stats.permutation_test(cka, X, Y, n_permutations=B, seed=1, precision="float32")
        )
        err = np.max(np.abs(p32.null_distribution - pt.null_distribution))
        print(f"  svcca float32            {t32:8.1f} s   ({t32 / B * 1e3:.1f} ms each)")
        print(f"  float64 / float32        {t_perm / t32:8.2f} x   max |null difference| {err:.1e}")


if __name__ == "__main__":
    main()
