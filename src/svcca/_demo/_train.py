"""Small networks on scikit-learn's bundled digits (no download), with checkpoints."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Digits",
    "Run",
    "layer_names",
    "load_digits_split",
    "make_model",
    "shifted",
    "train",
]

# Layers compared in the demo: post-activation outputs, named as in named_modules().
LAYERS = {
    "cnn": ["conv1", "conv2", "fc1", "logits"],
    "mlp": ["fc1", "fc2", "fc3", "logits"],
    "deep": [f"h{i}" for i in range(1, 9)],
    "plain": [f"conv{i}" for i in range(1, 9)],
}

# The plain CNN sees the 8x8 digits on a 12x12 canvas: centred (offset 2, 2) at test
# time, anywhere (offsets 0..4 on each axis) when trained or probed with shifts.
CANVAS = 12
_MAX_SHIFT = CANVAS - 8


def layer_names(arch: str, depth: int = 8) -> list[str]:
    """The compared layers of ``arch``; for ``"plain"`` and ``"deep"`` at ``depth`` layers."""
    if arch == "plain":
        return [f"conv{i}" for i in range(1, depth + 1)]
    if arch == "deep":
        return [f"h{i}" for i in range(1, depth + 1)]
    return list(LAYERS[arch])


def shifted(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Place each 8x8 digit on the 12x12 canvas at its ``(row, col)`` offset in 0..4.

    ``x`` is ``(n, 1, 8, 8)``, ``offsets`` ``(n, 2)`` integers; returns ``(n, 1, 12, 12)``.
    """
    out = np.zeros((len(x), 1, CANVAS, CANVAS), dtype=x.dtype)
    for k, (r, c) in enumerate(np.asarray(offsets)):
        out[k, :, r : r + 8, c : c + 8] = x[k]
    return out


def random_offsets(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 2)`` uniform offsets in 0..4 (shifts of up to 2 pixels from the centre)."""
    return rng.integers(0, _MAX_SHIFT + 1, size=(n, 2))


def _stride_layers(depth: int) -> set[int]:
    """The three layers (1-based) that halve the map: about 1/4, 2/4, 3/4 of the depth."""
    return {int(depth * k / 4 + 0.5) for k in (1, 2, 3)}


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


def make_model(arch: str, seed: int, *, width: int = 64, depth: int = 8) -> Any:
    """A small CNN or MLP whose compared layers are named in :data:`LAYERS`.

    ``"plain"`` is a plain CNN in the spirit of Kornblith et al.'s 10-layer CNN:
    ``depth`` blocks of 3x3 convolution, BatchNorm and ReLU (the ReLU is the compared
    layer, ``conv1`` ... ``conv<depth>``); three of them have stride 2 and double the
    channels, starting from ``width`` channels (so 12x12 -> 6x6 -> 3x3 -> 2x2 maps);
    global average pooling, then the logits. It takes the 8x8 digits (centred on the
    12x12 canvas) or 12x12 canvases (:func:`shifted`). ``depth`` applies to
    ``"plain"`` and ``"deep"`` only.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if arch == "plain":
        return _plain_cnn(width, depth)
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
        for i in range(1, depth + 1):
            body[f"h{i}_lin"] = nn.Linear(d_in, width)
            body[f"h{i}_bn"] = nn.BatchNorm1d(width)
            body[f"h{i}"] = nn.ReLU()
            d_in = width
        body["logits"] = nn.Linear(width, 10)
        return nn.Sequential(OrderedDict([("flatten", nn.Flatten()), *body.items()]))
    raise ValueError(f"arch must be 'cnn', 'mlp', 'deep' or 'plain'; got {arch!r}.")


def _plain_cnn(width: int, depth: int) -> Any:
    from torch import nn

    class PlainCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            strides = _stride_layers(depth)
            c_in, c = 1, width
            for i in range(1, depth + 1):
                s = 2 if i in strides else 1
                if s == 2 and i > 1:
                    c *= 2
                setattr(self, f"conv{i}_lin", nn.Conv2d(c_in, c, 3, stride=s, padding=1))
                setattr(self, f"conv{i}_bn", nn.BatchNorm2d(c))
                setattr(self, f"conv{i}", nn.ReLU())
                c_in = c
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.logits = nn.Linear(c_in, 10)

        def forward(self, x: Any) -> Any:
            if x.shape[-1] == 8:
                pad = _MAX_SHIFT // 2
                x = nn.functional.pad(x, (pad, pad, pad, pad))
            for i in range(1, depth + 1):
                x = getattr(self, f"conv{i}")(
                    getattr(self, f"conv{i}_bn")(getattr(self, f"conv{i}_lin")(x))
                )
            return self.logits(self.pool(x).flatten(1))

    return PlainCNN()


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
    depth: int = 8

    @property
    def name(self) -> str:
        return f"{self.arch}{'-shuffled' if self.shuffled else ''}-seed{self.seed}"

    def load(self, epoch: int = -1) -> Any:
        from svcca.torch import load_checkpoint

        model = make_model(self.arch, self.seed, width=self.width, depth=self.depth)
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
    depth: int = 8,
    shifts: bool = False,
    cosine: bool = False,
) -> Run:
    """Train with Adam, saving ``state_dict`` checkpoints after every epoch.

    With ``every_epoch=False`` only the initial and the final weights are saved.
    ``shifts=True`` (``"plain"`` only) draws every epoch a new random placement of each
    training digit on the 12x12 canvas (:func:`shifted`); accuracies are measured on
    the centred digits. ``cosine=True`` decays the learning rate from ``lr`` to 0 along
    a half cosine over the epochs (a steadier final network than a constant rate).
    """
    import torch

    if shifts and arch != "plain":
        raise ValueError(
            f"shifts=True needs arch='plain' (the CNN on a 12x12 canvas); got arch={arch!r}. "
            "Train the other architectures on the 8x8 digits without shifts."
        )
    model = make_model(arch, seed, width=width, depth=depth)
    x, y = data.x_train, data.y_train
    if n_train is not None:
        x, y = x[:n_train], y[:n_train]
    if shuffled:
        y = np.random.default_rng(1000 + seed).permutation(y)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if cosine else None
    gen = torch.Generator().manual_seed(seed)
    os.makedirs(directory, exist_ok=True)
    stem = f"{arch}{'-shuffled' if shuffled else ''}-seed{seed}"
    if arch in ("plain", "deep") and (depth != 8 or arch == "plain"):
        stem = f"{arch}-d{depth}-w{width}{'-shuffled' if shuffled else ''}-seed{seed}"
    shift_rng = np.random.default_rng(2000 + seed)
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
        if shifts:
            xt = torch.from_numpy(shifted(x, random_offsets(len(x), shift_rng)))
        perm = torch.randperm(len(yt), generator=gen)
        for s in range(0, len(yt), batch_size):
            idx = perm[s : s + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
        if every_epoch or epoch == epochs:
            checkpoint(epoch)
    return Run(arch, seed, tuple(paths), tuple(tr_acc), tuple(te_acc), shuffled, width, depth)
