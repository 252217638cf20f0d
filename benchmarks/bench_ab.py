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
import json, time, numpy as np, svcca
rng = np.random.default_rng(0)
n, p = 20000, 512
X = rng.standard_normal((n, p))
Y = X[:, :256] @ rng.standard_normal((256, 384)) + rng.standard_normal((n, 384))
reps = {f"l{i}": X[:, i * 64 : (i + 1) * 64 + 64] for i in range(6)}
def best(f, k=5):
    t = []
    for _ in range(k):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    return min(t)
print(json.dumps({
    "Moments.from_arrays 20000 x (512 + 384)": best(lambda: svcca.Moments.from_arrays(X, Y)),
    "cca 20000 x (512, 384)": best(lambda: svcca.cca(X, Y)),
    "cka linear float64": best(lambda: svcca.cka(X, Y)),
    "cka linear float32": best(lambda: svcca.cka(X, Y, precision="float32")),
    "pairwise cca, 6 x 128 wide": best(lambda: svcca.pairwise(reps, measure="cca")),
    "pairwise cka_linear, 6 x 128": best(lambda: svcca.pairwise(reps, measure="cka_linear")),
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
    print(f"{'call':44s} {'old s':>8s} {'new s':>8s} {'new/old':>8s}")
    for key in runs["old"][0]:
        old = min(r[key] for r in runs["old"])
        new = min(r[key] for r in runs["new"])
        print(f"{key:44s} {old:8.3f} {new:8.3f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
