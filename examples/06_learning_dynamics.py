"""Learning dynamics: when does each layer settle?
===============================================

The SVCCA paper's Figure 4: train a network, keep a checkpoint after every epoch, and
compare every layer at every checkpoint with every layer of the final network. A layer
whose diagonal entry reaches 1 has settled into its final representation; Raghu et al.
found that networks converge bottom up, lower layers first.

A small MLP learns scikit-learn's bundled digits (no download);
:func:`svcca.torch.capture_checkpoints` records its hidden layers on held-out digits at
each checkpoint, :func:`svcca.pairwise` compares them with the final ones (linear CKA:
on these small layers SVCCA scores every pair of layers near 1 and shows little), and
:func:`svcca.plot.learning_dynamics` draws the panes.

Needs torch and scikit-learn. Run:
``python examples/06_learning_dynamics.py [--quick] [--out DIR]``.
"""

# %%
# Train, keeping every epoch's weights
# ------------------------------------
from __future__ import annotations

import copy
import os

import numpy as np
import torch
from _common import parse
from sklearn.datasets import load_digits

import svcca
import svcca.torch

args = parse(__doc__)
torch.set_num_threads(1)
digits = load_digits()
x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
train, test = torch.arange(0, 1200), torch.arange(1200, len(y))


def make_net() -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(),
        nn.Linear(32, 10),
    )  # fmt: skip


torch.manual_seed(0)
net = make_net()
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
epochs = 8 if args.quick else 20
checkpoints = {"epoch 0": copy.deepcopy(net.state_dict())}
for epoch in range(1, epochs + 1):
    for idx in train[torch.randperm(len(train))].split(32):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    checkpoints[f"epoch {epoch}"] = copy.deepcopy(net.state_dict())
with torch.no_grad():
    accuracy = (net(x[test]).argmax(1) == y[test]).float().mean().item()
print(f"{epochs} epochs, test accuracy {accuracy:.1%}")

# %%
# Every layer at every checkpoint against every layer at the end
# --------------------------------------------------------------
# The three hidden layers (after each ReLU) on the held-out digits.
layers = ["1", "3", "5"]
series = svcca.torch.capture_checkpoints(make_net(), checkpoints, [x[test]], layers)
final = series[f"epoch {epochs}"]
panes = np.stack(
    [svcca.pairwise(acts, final, measure="cka_linear").values for acts in series.values()]
)
print("Linear CKA of each layer with itself at the end of training:")
for label, pane in zip(series, panes, strict=True):
    print(f"  {label:>8s}: " + "  ".join(f"{v:.3f}" for v in np.diag(pane)))
assert np.allclose(np.diag(panes[-1]), 1.0, atol=1e-8)  # the end against itself
assert np.all((panes >= 0) & (panes <= 1 + 1e-12))

# Where each layer first comes within 0.05 of its final representation.
settled = {
    name: next(lab for lab, v in zip(series, panes[:, i, i], strict=True) if v >= 0.95)
    for i, name in enumerate(layers)
}
print("first within 0.05 of the end:", settled)

# %%
# The paper's figure
# ------------------
import svcca.plot as sp  # noqa: E402

shown = sorted({0, 1, 2, 3, epochs // 2, epochs})
fig = sp.learning_dynamics(
    panes[shown],
    steps=[f"epoch {e}" for e in shown],
    layers=[f"hidden {i}" for i in range(1, len(layers) + 1)],
    final_label=f"epoch {epochs}",
    cbar_label="linear CKA",
    title="Each hidden layer at epoch t (rows) against the final network (columns)",
)
if args.out:
    written = sp.save(fig, os.path.join(args.out, "06_learning_dynamics"))
    print("wrote", ", ".join(os.path.basename(w) for w in written))
