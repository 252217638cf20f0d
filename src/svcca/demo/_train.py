"""Small networks on scikit-learn's bundled digits (no download), with checkpoints."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Digits", "Run", "load_digits_split", "make_model", "train"]

# Layers compared in the demo: post-activation outputs, named as in named_modules().
LAYERS = {
    "cnn": ["conv1", "conv2", "fc1", "logits"],
    "mlp": ["fc1", "fc2", "fc3", "logits"],
    "deep": [f"h{i}" for i in range(1, 9)],
}


@dataclass(frozen=True)
class Digits:
    """The 8x8 digits, scaled to [0, 1], split once with a fixed seed."""

    x_train: np.ndarray  # (n, 1, 8, 8) float32
    y_train: np.ndarray  # (n,) int64
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def x_all(self) -> np.ndarray:
        return np.concatenate([self.x_train, self.x_test])

    @property
    def y_all(self) -> np.ndarray:
        return np.concatenate([self.y_train, self.y_test])


def load_digits_split(test_fraction: float = 0.25, seed: int = 0) -> Digits:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    return Digits(x[tr], y[tr], x[te], y[te])


def make_model(arch: str, seed: int, *, width: int = 64) -> Any:
    """A small CNN or MLP whose compared layers are named in :data:`LAYERS`."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if arch == "cnn":

        class CNN(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv1_lin = nn.Conv2d(1, 8, 3, padding=1)
                self.conv1 = nn.ReLU()
                self.pool = nn.MaxPool2d(2)
                self.conv2_lin = nn.Conv2d(8, 16, 3, padding=1)
                self.conv2 = nn.ReLU()
                self.fc1_lin = nn.Linear(16 * 4 * 4, width)
                self.fc1 = nn.ReLU()
                self.logits = nn.Linear(width, 10)

            def forward(self, x: Any) -> Any:
                h = self.pool(self.conv1(self.conv1_lin(x)))
                h = self.conv2(self.conv2_lin(h))
                return self.logits(self.head_input(h))

            def head_input(self, h: Any) -> Any:
                return self.fc1(self.fc1_lin(h.flatten(1)))

        return CNN()
    if arch == "mlp":

        class MLP(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc1_lin = nn.Linear(64, width)
                self.fc1 = nn.ReLU()
                self.fc2_lin = nn.Linear(width, width)
                self.fc2 = nn.ReLU()
                self.fc3_lin = nn.Linear(width, width)
                self.fc3 = nn.ReLU()
                self.logits = nn.Linear(width, 10)

            def forward(self, x: Any) -> Any:
                h = self.fc1(self.fc1_lin(x.flatten(1)))
                h = self.fc2(self.fc2_lin(h))
                h = self.fc3(self.fc3_lin(h))
                return self.logits(h)

        return MLP()
    if arch == "deep":
        # Kornblith et al.'s sanity check wants many layers of one architecture.
        body: dict[str, Any] = {}
        d_in = 64
        for i in range(1, 9):
            body[f"h{i}_lin"] = nn.Linear(d_in, width)
            body[f"h{i}_bn"] = nn.BatchNorm1d(width)
            body[f"h{i}"] = nn.ReLU()
            d_in = width
        body["logits"] = nn.Linear(width, 10)
        return nn.Sequential(OrderedDict([("flatten", nn.Flatten()), *body.items()]))
    raise ValueError(f"arch must be 'cnn', 'mlp' or 'deep'; got {arch!r}.")


@dataclass(frozen=True)
class Run:
    """One trained network: its checkpoints (epoch 0 = initialisation) and accuracies."""

    arch: str
    seed: int
    checkpoints: tuple[str, ...]
    train_accuracy: tuple[float, ...]
    test_accuracy: tuple[float, ...]
    shuffled: bool = False
    width: int = 64

    @property
    def name(self) -> str:
        return f"{self.arch}{'-shuffled' if self.shuffled else ''}-seed{self.seed}"

    def load(self, epoch: int = -1) -> Any:
        from svcca.torch import load_checkpoint

        model = make_model(self.arch, self.seed, width=self.width)
        return load_checkpoint(model, self.checkpoints[epoch])


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def train(
    arch: str,
    seed: int,
    data: Digits,
    directory: str,
    *,
    epochs: int,
    shuffled: bool = False,
    n_train: int | None = None,
    lr: float = 1e-3,
    batch_size: int = 64,
    every_epoch: bool = True,
    width: int = 64,
) -> Run:
    """Train with Adam, saving ``state_dict`` checkpoints after every epoch.

    With ``every_epoch=False`` only the initial and the final weights are saved.
    """
    import torch

    model = make_model(arch, seed, width=width)
    x, y = data.x_train, data.y_train
    if n_train is not None:
        x, y = x[:n_train], y[:n_train]
    if shuffled:
        y = np.random.default_rng(1000 + seed).permutation(y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    os.makedirs(directory, exist_ok=True)
    stem = f"{arch}{'-shuffled' if shuffled else ''}-seed{seed}"
    paths, tr_acc, te_acc = [], [], []

    def checkpoint(epoch: int) -> None:
        p = os.path.join(directory, f"{stem}-epoch{epoch:03d}.pt")
        torch.save(model.state_dict(), p)
        paths.append(p)
        tr_acc.append(accuracy(model, x, y))
        te_acc.append(accuracy(model, data.x_test, data.y_test))

    checkpoint(0)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        for s in range(0, len(yt), batch_size):
            idx = perm[s : s + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        if every_epoch or epoch == epochs:
            checkpoint(epoch)
    return Run(arch, seed, tuple(paths), tuple(tr_acc), tuple(te_acc), shuffled, width)
