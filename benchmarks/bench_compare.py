"""svcca.torch.compare, model against model, against the cost of running the models.

Two 6-layer MLPs (``--inputs`` features in, ``--width`` units per layer, tanh after each
linear map; default width 256, so ``compare`` keeps 6 x 256 features per model), the
six tanh outputs of each model compared, every layer of model A against every layer of
model B (36 pairs), ``--measure`` (default linear CKA), over ``--n`` inputs in batches of
``--batch``. Timings, interleaved (a, b, b', c, a, b, b', c, ...), best of ``--repeat``:

- ``(a) forward``: both models run on every batch, nothing recorded.
- ``(b) floor``: the same forward passes layer by layer, each layer's output taken to
  float64 NumPy, and one ``svcca.Moments`` pass over the captured layers: per batch,
  ``Moments.update(X, Y)`` with ``X`` model A's six layers side by side and ``Y`` model
  B's (the issue's floor: forward passes plus one Moments pass).
- ``(b') products``: the same forward passes plus only the products ``compare`` needs:
  per batch, each layer centred, its Gram matrix, and the one cross GEMM of A's layers
  against B's (no merges, no measure): the arithmetic floor of ``compare`` itself.
- ``(c) compare``: ``svcca.torch.compare(model_a, model_b, batches, layers)``.

Printed per ``n``: the times, ``(c)/(b)`` (the issue's target: at most 1.3x),
``(c)/(b')``, and the peak memory of one ``compare`` call, both NumPy's (tracemalloc)
and the whole process's (``VmHWM`` after resetting it through ``/proc/self/clear_refs``,
Linux only), which must not grow with ``n``. At the first ``n`` the result is also
checked against ``svcca.pairwise`` of ``svcca.torch.capture``'d arrays.

Run: ``python benchmarks/bench_compare.py [--n 10000 20000] [--width 256] [--repeat 2]``
(about 30 s on 2 cores at the defaults; ``--width 512`` is about 4x that);
``--quick`` for a smoke test with tiny sizes (its timings mean nothing).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

import numpy as np
import torch

import svcca
import svcca.torch as st
from svcca._moments._moments import Moments

nn = torch.nn


def mlp(inputs: int, width: int, depth: int, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    d = inputs
    for _ in range(depth):
        mods += [nn.Linear(d, width), nn.Tanh()]
        d = width
    return nn.Sequential(*mods).eval()


def layer_outputs(net: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The tanh outputs, by running the layers one by one (no hooks)."""
    out = []
    for m in net:
        x = m(x)
        if isinstance(m, nn.Tanh):
            out.append(x)
    return out


def run_forward(a, b, batches) -> None:
    with torch.no_grad():
        for xb in batches:
            a(xb)
            b(xb)


def run_floor(a, b, batches) -> Moments:
    m: Moments | None = None
    with torch.no_grad():
        for xb in batches:
            X = np.concatenate([t.double().numpy() for t in layer_outputs(a, xb)], axis=1)
            Y = np.concatenate([t.double().numpy() for t in layer_outputs(b, xb)], axis=1)
            if m is None:
                m = Moments.empty(X.shape[1], Y.shape[1])
            m.update(X, Y)
    assert m is not None
    return m


def run_products(a, b, batches) -> np.ndarray:
    total = None
    with torch.no_grad():
        for xb in batches:
            sides = []
            for net in (a, b):
                cols = []
                for t in layer_outputs(net, xb):
                    x = t.double().numpy()
                    x -= x.mean(axis=0)
                    x.T @ x  # the layer's Gram matrix
                    cols.append(x)
                sides.append(np.concatenate(cols, axis=1))
            part = sides[0].T @ sides[1]
            total = part if total is None else total + part
    assert total is not None
    return total


def run_compare(a, b, batches, layers, measure):
    return st.compare(a, b, batches, layers, measure=measure)


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mib() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def memory_of_compare(a, b, batches, layers, measure) -> tuple[float, float | None]:
    """Peak NumPy memory (tracemalloc) and peak process RSS above the start, in MiB."""
    can_reset = reset_peak_rss()
    before = rss_mib()
    tracemalloc.start()
    tracemalloc.reset_peak()
    run_compare(a, b, batches, layers, measure)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    hwm = peak_rss_mib()
    extra = None if not can_reset or hwm is None or before is None else hwm - before
    return peak, extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10000, 20000])
    ap.add_argument("--inputs", type=int, default=128)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--measure", default="cka_linear")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test, no timing)")
    args = ap.parse_args()
    if args.quick:
        args.n, args.width, args.inputs, args.batch, args.repeat = [600, 1200], 16, 8, 200, 1

    a = mlp(args.inputs, args.width, args.depth, seed=0)
    b = mlp(args.inputs, args.width, args.depth, seed=1)
    layers = [str(2 * i + 1) for i in range(args.depth)]  # the tanh modules
    print(
        f"# {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cpus, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy "
        f"{np.__version__}; two MLPs {args.inputs} -> {args.depth} x {args.width} (tanh), "
        f"{len(layers)} x {len(layers)} pairs, measure={args.measure}, batch {args.batch}, "
        f"best of {args.repeat}"
    )
    print(
        "| n | (a) forward | (b) floor | (b') products | (c) compare | (c)/(b) | (c)/(b') "
        "| peak NumPy | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for k, n in enumerate(args.n):
        g = torch.Generator().manual_seed(n)
        batches = list(torch.randn(n, args.inputs, generator=g).split(args.batch))
        if k == 0:
            r = run_compare(a, b, batches, layers, args.measure)
            ref = svcca.pairwise(
                st.capture(a, batches, layers),
                st.capture(b, batches, layers),
                measure=args.measure,
            )
            print(
                f"# n={n}: compare vs capture + pairwise, max |diff| = "
                f"{np.abs(r.values - ref.values).max():.1e}"
            )
        best = {"a": np.inf, "b": np.inf, "p": np.inf, "c": np.inf}
        jobs = {
            "a": lambda bs=batches: run_forward(a, b, bs),
            "b": lambda bs=batches: run_floor(a, b, bs),
            "p": lambda bs=batches: run_products(a, b, bs),
            "c": lambda bs=batches: run_compare(a, b, bs, layers, args.measure),
        }
        for _ in range(args.repeat):
            for key, job in jobs.items():
                t = time.perf_counter()
                job()
                best[key] = min(best[key], time.perf_counter() - t)
        peak, rss = memory_of_compare(a, b, batches, layers, args.measure)
        rss_text = "n/a" if rss is None else f"{rss:.0f} MiB"
        print(
            f"| {n} | {best['a']:.2f} s | {best['b']:.2f} s | {best['p']:.2f} s | "
            f"{best['c']:.2f} s | {best['c'] / best['b']:.2f}x | {best['c'] / best['p']:.2f}x "
            f"| {peak:.0f} MiB | {rss_text} |"
        )


if __name__ == "__main__":
    main()
