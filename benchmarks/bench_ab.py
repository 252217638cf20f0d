"""Side by side: the same calls timed on two checkouts, in alternating subprocesses.

Run ``python benchmarks/bench_ab.py OLD_SRC NEW_SRC [--rounds 3]`` with the ``src``
folders of two worktrees (``git worktree add /tmp/base <commit>``); each round runs one
subprocess per side, alternating, each printing its best of 5 timings as JSON; the
summary gives each call's best over the rounds and the ratio new / old. Between rounds
this 2-core machine's timings swing by 10-30%: a ratio inside that band is noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, time, numpy as np, torch, svcca, svcca.torch as st
torch.set_num_threads(2)
rng = np.random.default_rng(0)
n, p = 20000, 512
X = rng.standard_normal((n, p))
Y = X[:, :256] @ rng.standard_normal((256, 384)) + rng.standard_normal((n, 384))
Z, Z32 = np.hstack([X, Y]), np.hstack([X, Y]).astype(np.float32)
reps = {f"l{i}": X[:, i * 64 : (i + 1) * 64 + 64] for i in range(6)}
def mlp(seed):
    torch.manual_seed(seed)
    mods = []
    for d in (128,) + (256,) * 7:
        mods += [torch.nn.Linear(d, 256), torch.nn.Tanh()]
    return torch.nn.Sequential(*mods).eval()
A, B = mlp(0), mlp(1)
layers = [str(2 * i + 1) for i in range(8)]
inputs = torch.randn(8192, 128, generator=torch.Generator().manual_seed(2))
batches = list(inputs.split(512))
def forward():
    with torch.no_grad():
        for xb in batches:
            A(xb); B(xb)
def compare_gemms():
    # what compare cannot avoid beyond the forward passes: per batch, each layer's Gram
    # and the one cross GEMM of A's 8 layers against B's, in float64
    with torch.no_grad():
        for xb in batches:
            sides = []
            for net in (A, B):
                h, cols = xb, []
                for m in net:
                    h = m(h)
                    if isinstance(m, torch.nn.Tanh):
                        c = h.double()
                        c = c - c.mean(0)
                        c.T @ c
                        cols.append(c)
                sides.append(torch.cat(cols, 1))
            sides[0].T @ sides[1]
def best(f, k=5):
    t = []
    for _ in range(k):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    return min(t)
print(json.dumps({
    "floor: [X Y]^T [X Y] float64": best(lambda: Z.T @ Z),
    "floor: [X Y]^T [X Y] float32": best(lambda: Z32.T @ Z32),
    "Moments.from_arrays 20000 x (512 + 384)": best(lambda: svcca.Moments.from_arrays(X, Y)),
    "cca 20000 x (512, 384)": best(lambda: svcca.cca(X, Y)),
    "cka linear float64": best(lambda: svcca.cka(X, Y)),
    "cka linear float32": best(lambda: svcca.cka(X, Y, precision="float32")),
    "pairwise cca, 6 x 128 wide": best(lambda: svcca.pairwise(reps, measure="cca")),
    "pairwise cka_linear, 6 x 128": best(lambda: svcca.pairwise(reps, measure="cka_linear")),
    "floor: forward passes, 2 x 8-layer MLP, 8192": best(forward, 3),
    "floor: forward + compare's GEMMs": best(compare_gemms, 3),
    "torch.compare cka_linear, 8 x 8 layers": best(
        lambda: st.compare(A, B, batches, layers, measure="cka_linear"), 3),
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for side in ("old", "new"):
            env = {**os.environ, "PYTHONPATH": getattr(args, side)}
            out = subprocess.run(
                [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
            )
            runs[side].append(json.loads(out.stdout))
    print(f"{'call':48s} {'old s':>8s} {'new s':>8s} {'new/old':>8s}")
    for key in runs["old"][0]:
        old = min(r[key] for r in runs["old"])
        new = min(r[key] for r in runs["new"])
        print(f"{key:48s} {old:8.3f} {new:8.3f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
