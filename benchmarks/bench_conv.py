"""DFT-CCA speed and memory: svcca.conv.fourier_cca against a per-location loop.

Run: python benchmarks/bench_conv.py [--quick]

For each case, in one run:
- loop: what google/svcca's ``dft_ccas.fourier_ccas`` does (written here from its
  description): a full complex ``fft2`` of both maps, frequency cropping, then for every
  grid location a CCA of the ``(c, n)`` Fourier coefficients the way ``cca_core`` does
  it (``np.cov``, max rescaling, ``pinv``, eigen square root, SVD);
- floor: the two transforms plus the per-frequency cross-products alone (the moment
  pass of ``fourier_cca``, no CCA solved);
- svcca.conv.fourier_cca, its peak extra memory (tracemalloc sees NumPy's buffers),
  and its agreement with the loop.

Then, on a translation-invariant dataset small enough to flatten, the time of one CCA on
all ``h*w*c`` neurons against fourier_cca (same correlations), and how far the two are
apart on data that is not translation invariant.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from functools import partial

import numpy as np

import svcca
from svcca.conv import fourier_cca
from svcca.conv._grid import SideDFT, cross, make_grid


def loop_like_original(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Per-location CCA coefficients ``(H, W, k)``, one location at a time."""
    H, W = min(A.shape[1], B.shape[1]), min(A.shape[2], B.shape[2])

    def spectrum(x: np.ndarray) -> np.ndarray:
        f = np.fft.fft2(x.astype(np.complex128), axes=(1, 2))
        rows = np.rint(np.fft.fftfreq(H) * H).astype(int) % x.shape[1]
        cols = np.rint(np.fft.fftfreq(W) * W).astype(int) % x.shape[2]
        return f[:, rows][:, :, cols]

    def inv_sqrt(S: np.ndarray) -> np.ndarray:
        w, V = np.linalg.eigh(np.linalg.pinv(S))
        return (V * np.sqrt(np.maximum(w, 0.0))) @ V.conj().T

    t0 = time.perf_counter()
    FA, FB = spectrum(A), spectrum(B)
    print(f"  (loop: its fft2 and cropping take     {time.perf_counter() - t0:8.3f} s)")
    p = A.shape[3]
    out = np.empty((H, W, min(A.shape[3], B.shape[3])))
    for i in range(H):
        for j in range(W):
            cov = np.cov(FA[:, i, j, :].T, FB[:, i, j, :].T)
            sxx, sxy, syy = cov[:p, :p], cov[:p, p:], cov[p:, p:]
            mx, my = np.abs(sxx).max(), np.abs(syy).max()
            arr = inv_sqrt(sxx / mx) @ (sxy / np.sqrt(mx * my)) @ inv_sqrt(syy / my)
            out[i, j] = np.linalg.svd(arr, compute_uv=False)
    return out


def all_cross(X: np.ndarray, Y: np.ndarray) -> tuple:
    return cross(X), cross(Y), cross(X, Y)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, res = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t0)
    return best, res


def peak_bytes(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def speed_case(n: int, sa: tuple, sb: tuple, repeat: int, loop: bool) -> None:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, *sa))
    # B: a 1x1 mix of A (resampled to B's size) plus noise, so correlations are non-trivial.
    stride = (sa[0] // sb[0], sa[1] // sb[1])
    base = A[:, :: stride[0], :: stride[1], :]
    B = base @ rng.standard_normal((sa[2], sb[2])) + rng.standard_normal((n, *sb))
    label = f"n={n}  {sa[0]}x{sa[1]}x{sa[2]} vs {sb[0]}x{sb[1]}x{sb[2]}"
    print(f"\n{label}")
    grid = make_grid(A.shape[1:3], B.shape[1:3])
    dx, dy = SideDFT(A.shape[1:3], grid), SideDFT(B.shape[1:3], grid)
    mx, my = A.mean(axis=0), B.mean(axis=0)
    # Interleaved repeats, best of each: the machine is shared and its load drifts.
    # Also CPU time of this process: with one BLAS thread it is the work done, far less
    # sensitive than wall time to other jobs on the machine.
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name, fn):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times[name] = min(times.get(name, np.inf), time.perf_counter() - t0)
        cpu[name] = min(cpu.get(name, np.inf), time.process_time() - c0)
        return out

    for _ in range(repeat):
        timed("fft", lambda: (np.fft.rfft2(A, axes=(1, 2)), np.fft.rfft2(B, axes=(1, 2))))
        X, Y = timed("dft", lambda: (dx.apply_split(A, mx), dy.apply_split(B, my)))
        timed("cross", partial(all_cross, X, Y))
        X = Y = None
        res = timed("ours", lambda: fourier_cca(A, B, layout="nhwc"))
        res32 = timed("ours32", lambda: fourier_cca(A, B, layout="nhwc", precision="float32"))
        X, Y = timed(
            "dft32", lambda: (dx.apply_split(A, mx, np.float32), dy.apply_split(B, my, np.float32))
        )
        timed("cross32", partial(all_cross, X, Y))
        X = Y = None
    t_fft, t_dft, t_cross, t_ours = times["fft"], times["dft"], times["cross"], times["ours"]
    t_floor = min(t_fft, t_dft) + t_cross
    print(f"  numpy rfft2 of both maps              {t_fft:8.3f} s")
    print(f"  our DFT of both (needed freqs only)   {t_dft:8.3f} s")
    print(f"  per-frequency cross-products          {t_cross:8.3f} s")
    print(f"  floor = faster transform + products   {t_floor:8.3f} s")
    ratio = t_ours / t_floor
    print(f"  svcca.conv.fourier_cca                {t_ours:8.3f} s   {ratio:5.2f}x floor")
    c_floor = min(cpu["fft"], cpu["dft"]) + cpu["cross"]
    print(
        f"  CPU time: floor {c_floor:.3f} s, fourier_cca {cpu['ours']:.3f} s = "
        f"{cpu['ours'] / c_floor:.2f}x floor"
    )
    t_floor32 = times["dft32"] + times["cross32"]
    d32 = np.nanmax(np.abs(res32.frequency_correlations - res.frequency_correlations))
    print(
        f"  fourier_cca precision='float32'       {times['ours32']:8.3f} s   "
        f"{times['ours32'] / t_floor32:5.2f}x its float32 floor ({t_floor32:.3f} s), "
        f"{t_ours / times['ours32']:.2f}x faster than float64, max |d rho| {d32:.1e}"
    )
    complex_copy = 2 * (A.nbytes + B.nbytes)
    peak = peak_bytes(lambda: fourier_cca(A, B, layout="nhwc"))
    print(
        f"  peak extra memory                     {peak / 2**20:8.0f} MiB = "
        f"{peak / complex_copy:4.2f} complex copies of the inputs ({complex_copy / 2**20:.0f} MiB)"
    )
    if loop:
        c0 = time.process_time()
        t_loop, rho = best_of(lambda: loop_like_original(A, B), 1)
        c_loop = time.process_time() - c0
        print(f"  CPU time: loop {c_loop:.3f} s = {c_loop / cpu['ours']:.1f}x fourier_cca")
        diff = np.nanmax(np.abs(res.frequency_correlations - rho))
        speedup = t_loop / t_ours
        print(f"  per-location loop (original's way)    {t_loop:8.3f} s   {speedup:5.1f}x slower")
        print(f"  floor / loop                          {t_floor / t_loop:8.3f}")
        print(f"  max |fourier_cca - loop| per location {diff:8.1e}")


def shifted(m: int, h: int, w: int, c1: int, c2: int, rng, invariant: bool):
    """A random conv-like layer pair; with ``invariant``, every cyclic shift of each map."""
    Z = rng.standard_normal((m, h, w, c1))
    A = np.maximum(Z, 0.0) + 0.3 * rng.standard_normal(Z.shape)
    K = rng.standard_normal((3, 3, c1, c2)) / 3
    B = 0.5 * rng.standard_normal((m, h, w, c2))
    for dy in range(3):
        for dx in range(3):
            B += np.roll(A, (dy - 1, dx - 1), axis=(1, 2)) @ K[dy, dx]
    if not invariant:
        return A, B
    shifts = [(sy, sx) for sy in range(h) for sx in range(w)]
    As = np.concatenate([np.roll(A, s, axis=(1, 2)) for s in shifts])
    Bs = np.concatenate([np.roll(B, s, axis=(1, 2)) for s in shifts])
    return As, Bs


def flatten_case(m: int, h: int, w: int, c1: int, c2: int, repeat: int) -> None:
    rng = np.random.default_rng(1)
    print(
        f"\ntranslation-invariant: {m} maps x {h * w} shifts = {m * h * w} samples, "
        f"{h}x{w}x{c1} vs {h}x{w}x{c2} ({h * w * c1} vs {h * w * c2} neurons)"
    )
    A, B = shifted(m, h, w, c1, c2, rng, invariant=True)
    n = A.shape[0]
    t_dft, r = best_of(lambda: fourier_cca(A, B, layout="nhwc"), repeat)
    t_flat, f = best_of(lambda: svcca.cca(A.reshape(n, -1), B.reshape(n, -1)), 1)
    diff = np.abs(r.correlations - f.correlations).max()
    print(f"  fourier_cca                      {t_dft:8.3f} s")
    print(f"  cca on all h*w*c neurons         {t_flat:8.3f} s   {t_flat / t_dft:6.0f}x slower")
    print(f"  max |difference| of correlations {diff:8.1e}  (score {r.score:.6f})")
    print("not translation invariant (same sizes, the maps without their shifts):")
    A, B = shifted(n, h, w, c1, c2, rng, invariant=False)
    r = fourier_cca(A, B, layout="nhwc")
    f = svcca.cca(A.reshape(n, -1), B.reshape(n, -1))
    diff = np.abs(r.correlations - f.correlations).max()
    print(
        f"  max |difference| of correlations {diff:8.3f}  "
        f"(score: fourier {r.score:.4f}, flattened {f.score:.4f})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = ap.parse_args()
    if args.quick:
        speed_case(200, (8, 8, 16), (8, 8, 16), 1, True)
        speed_case(200, (16, 16, 16), (8, 8, 16), 1, True)
        flatten_case(10, 6, 6, 4, 3, 1)
        return
    speed_case(1000, (16, 16, 64), (16, 16, 64), 4, True)
    speed_case(1000, (32, 32, 128), (16, 16, 128), 3, True)
    flatten_case(40, 8, 8, 16, 12, 2)


if __name__ == "__main__":
    main()
