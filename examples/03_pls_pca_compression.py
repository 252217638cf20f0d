"""Tutorial 3 retold: PLS, PCA, and compressing a layer onto its top directions
============================================================================

Train a small MLP on scikit-learn's digits (bundled, no download), record its hidden
layer with :func:`svcca.torch.capture`, then keep only the top-k directions of that
layer (CCA or PLS directions shared with a second network trained from another seed,
or the layer's own PCA directions), run the rest of the network on the compressed
layer, and measure test accuracy against k.

Needs torch and scikit-learn. Run: ``python examples/03_pls_pca_compression.py [--quick]``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from _common import parse
from sklearn.datasets import load_digits

import svcca
import svcca.torch


def train_mlp(seed: int, x: torch.Tensor, y: torch.Tensor, epochs: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net


def main() -> None:
    args = parse(__doc__)
    torch.set_num_threads(1)
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    tr, te = perm[:1300], perm[1300:]
    epochs = 3 if args.quick else 20
    net_a, net_b = (train_mlp(s, x[tr], y[tr], epochs) for s in (0, 1))

    # Hidden layer "1" (after the ReLU) of both networks, on train and test images.
    a_tr = svcca.torch.capture(net_a, [x[tr]], ["1"], dtype=np.float64)["1"]
    b_tr = svcca.torch.capture(net_b, [x[tr]], ["1"], dtype=np.float64)["1"]
    a_te = svcca.torch.capture(net_a, [x[te]], ["1"], dtype=np.float64)["1"]

    pca = svcca.pca(a_tr)
    pls = svcca.pls(a_tr, b_tr)
    cca = svcca.cca(a_tr, b_tr, epsilon=1e-6)
    print(f"PCA: the top 10 directions explain {pca.explained_variance_ratio[:10].sum():.1%}")
    print(f"PLS score (= linear CKA) between the two seeds: {pls.score:.3f}")
    print(
        f"CCA between the two seeds: mean rho {cca.score:.3f}, top 5 "
        f"{np.round(cca.correlations[:5], 3).tolist()}"
    )

    mean = a_tr.mean(axis=0)
    head = net_a[2]

    def accuracy(H: np.ndarray) -> float:
        with torch.no_grad():
            pred = head(torch.tensor(H, dtype=torch.float32)).argmax(1)
        return float((pred == y[te]).float().mean())

    def compressed(W: np.ndarray, k: int) -> np.ndarray:
        """Least-squares reconstruction of the layer from its first k scores."""
        s_tr, s_te = (a_tr - mean) @ W[:, :k], (a_te - mean) @ W[:, :k]
        beta, *_ = np.linalg.lstsq(s_tr, a_tr - mean, rcond=None)
        return mean + s_te @ beta

    full = accuracy(a_te)
    print(f"Test accuracy, full layer: {full:.3f}")
    ks = [1, 2, 4, 8, 16, 32]
    curves = {}
    for name, W in (("CCA", cca.weights_x), ("PLS", pls.weights_x), ("PCA", pca.components)):
        curves[name] = [accuracy(compressed(W, min(k, W.shape[1]))) for k in ks]
        print(
            f"  {name}: "
            + ", ".join(f"k={k} {a:.3f}" for k, a in zip(ks, curves[name], strict=True))
        )
    assert curves["PCA"][-1] > full - 0.05

    if args.out:
        import svcca.plot as sp

        fig = sp.compression_curves(np.array(ks), curves, full=full, chance=0.1)
        written = sp.save(fig, f"{args.out}/03_compression")
        print("wrote", ", ".join(os.path.basename(w) for w in written))


if __name__ == "__main__":
    main()
