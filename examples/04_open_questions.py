"""Tutorial 4 retold: open questions, with the tools to chase them
===============================================================

The original tutorial closed with questions. Each is a few lines here:

1. When does each layer settle during training? Capture every checkpoint with
   :func:`svcca.torch.capture_checkpoints` and compare all layers at all times with
   :func:`svcca.pairwise` (the paper's Figure 4; ``svcca demo`` draws it).
2. Do networks that generalise converge to more similar representations than networks
   that memorise? (Morcos et al. 2018; ``svcca demo`` measures it with PWCCA.)
3. Which measure finds the corresponding layer of another network? (Kornblith et al.
   2019, Table 2; ``svcca demo --sanity``.)
4. What if the activations do not fit in memory? Accumulate :class:`svcca.Moments`
   while the model runs (:func:`svcca.torch.capture_moments`); every linear measure
   takes them in place of arrays.

Needs torch and scikit-learn. Run:
``python examples/04_open_questions.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch
from _common import parse
from sklearn.datasets import load_digits

import svcca
import svcca.torch


def make_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 48),
        torch.nn.ReLU(),
        torch.nn.Linear(48, 48),
        torch.nn.ReLU(),
        torch.nn.Linear(48, 10),
    )


def main() -> None:
    args = parse(__doc__)
    torch.set_num_threads(1)
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    epochs = 3 if args.quick else 10
    layers = ["1", "3", "4"]
    batches = list(x.split(500))

    with tempfile.TemporaryDirectory() as tmp:
        net = make_net(0)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        paths = []
        for epoch in range(epochs + 1):
            if epoch:
                for idx in torch.randperm(len(y)).split(64):
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
                    opt.step()
            paths.append(os.path.join(tmp, f"epoch{epoch}.pt"))
            torch.save(net.state_dict(), paths[-1])
        series = svcca.torch.capture_checkpoints(make_net(0), paths, batches, layers)

    final = series[f"epoch{epochs}"]
    print("1. Linear CKA of each layer with itself at the end of training:")
    curves: dict[str, list[float]] = {f"layer {k}": [] for k in layers}
    for label, acts in series.items():
        res = svcca.pairwise(
            {f"{k}@{label}": v for k, v in acts.items()},
            {f"{k}@end": v for k, v in final.items()},
            measure="cka_linear",
        )
        diag = np.diag(res.values)
        for k, v in zip(layers, diag, strict=True):
            curves[f"layer {k}"].append(float(v))
        print(
            f"   {label:>7s}: "
            + ", ".join(f"layer {k} {v:.3f}" for k, v in zip(layers, diag, strict=True))
        )

    if args.out:
        import svcca.plot as sp

        fig = sp.convergence_curves(
            list(range(epochs + 1)),
            curves,
            threshold=0.9,
            title="Each layer against itself at the end of training",
            ylabel=f"linear CKA with epoch {epochs}",
        )
        written = sp.save(fig, os.path.join(args.out, "04_convergence"))
        print("   wrote", ", ".join(os.path.basename(w) for w in written))

    print("4. Streaming: moments of layer pairs while the model runs, no activations kept")
    moments = svcca.torch.capture_moments(net, batches, [("1", "3")], other=make_net(1))
    m = moments[("1", "3")]
    print(
        f"   {m}: SVCCA of the trained layer 1 with an untrained network's layer 3: "
        f"{svcca.svcca(m).score:.3f}"
    )
    stored = svcca.torch.capture(net, batches, ["1"], dtype=np.float64)["1"]
    other = svcca.torch.capture(make_net(1), batches, ["3"], dtype=np.float64)["3"]
    same = svcca.svcca(stored, other).score
    print(f"   the same from stored arrays: {same:.3f}")
    assert abs(same - svcca.svcca(m).score) < 1e-8
    print("2., 3.: run `svcca demo` and `svcca demo --sanity`.")


if __name__ == "__main__":
    main()
