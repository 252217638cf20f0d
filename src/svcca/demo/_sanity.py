"""Kornblith et al. 2019, Table 2: can a measure find the corresponding layer?

Train several networks of one architecture from different seeds. For every ordered
pair of networks (A, B) and every layer of A, compare it with every layer of B; the
measure is right when the most similar layer of B is the same layer. The accuracy over
all pairs and layers is the score of the measure (Kornblith et al. 2019, Section 6.1).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

import svcca
from svcca.demo._train import Digits, Run

__all__ = [
    "PAPER_CIFAR10",
    "SanityResult",
    "identification_accuracy",
    "run_sanity",
    "similarity_matrices",
]

# Kornblith et al. 2019, Table 2, CIFAR-10 column (accuracy in %).
PAPER_CIFAR10 = {
    "CCA (mean rho)": 1.4,
    "SVCCA (mean rho)": 9.9,
    "PWCCA": 11.1,
    "Linear regression": 45.4,
    "CKA (linear)": 99.3,
    "CKA (RBF 0.4)": 99.1,
    "Procrustes": None,
}


def similarity_matrices(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, np.ndarray]:
    """For two networks' layers, ``{measure: (L, L) matrix}``: entry ``(i, j)`` compares
    layer ``i`` of ``a`` (the query) with layer ``j`` of ``b`` (the candidate).

    CCA, SVCCA, PWCCA and linear CKA go through :func:`svcca.pairwise` (each layer's
    transform computed once); Procrustes and linear regression through
    :class:`svcca.Moments` blocks of one joint cross-product; RBF CKA through
    :func:`svcca.cka` pair by pair (``svcca.pairwise`` has no RBF kernel).
    """
    rows = {f"a{i}": X for i, X in enumerate(a)}
    cols = {f"b{j}": Y for j, Y in enumerate(b)}
    out = {}
    pairs: tuple[tuple[str, Literal["cca", "svcca", "pwcca", "cka_linear"]], ...] = (
        ("CCA (mean rho)", "cca"),
        ("SVCCA (mean rho)", "svcca"),
        ("PWCCA", "pwcca"),
        ("CKA (linear)", "cka_linear"),
    )
    for name, measure in pairs:
        out[name] = np.asarray(svcca.pairwise(rows, cols, measure=measure, keep=0.99).values)
    n = a[0].shape[0]
    za = np.hstack(a)
    zb = np.hstack(b)
    ma, mb = za.mean(0), zb.mean(0)
    za, zb = za - ma, zb - mb
    saa, sbb, sab = za.T @ za, zb.T @ zb, za.T @ zb
    ea = np.cumsum([0] + [X.shape[1] for X in a])
    eb = np.cumsum([0] + [Y.shape[1] for Y in b])
    L = len(a)
    proc, reg = np.zeros((L, L)), np.zeros((L, L))
    for i in range(L):
        si = slice(ea[i], ea[i + 1])
        for j in range(L):
            sj = slice(eb[j], eb[j + 1])
            m = svcca.Moments(n, ma[si], mb[sj], saa[si, si], sbb[sj, sj], sab[si, sj])
            proc[i, j] = svcca.procrustes(m).score
            # Kornblith's R^2_LR: the share of the query's variance the candidate explains.
            reg[i, j] = svcca.regression_fit(m).r2_x_given_y
    out["Linear regression"] = reg
    out["Procrustes"] = proc
    out["CKA (RBF 0.4)"] = np.array(
        [[svcca.cka(X, Y, kernel="rbf", bandwidth=0.4).score for Y in b] for X in a]
    )
    return {k: out[k] for k in PAPER_CIFAR10}


def identification_accuracy(nets: list[list[np.ndarray]], measure: Callable[..., float]) -> float:
    """Share of (network pair, layer) cases where the same layer is the most similar.

    ``nets[i][l]`` is layer ``l`` of network ``i``, shape ``(n, p_l)``; ``measure(X, Y)``
    is a similarity (larger: closer). The reference implementation of the rule that
    :func:`run_sanity` applies to the matrices of :func:`similarity_matrices`.
    """
    hits = total = 0
    for i, a in enumerate(nets):
        for j, b in enumerate(nets):
            if i == j:
                continue
            for li, X in enumerate(a):
                sims = [measure(X, Y) for Y in b]
                hits += int(np.argmax(sims) == li)
                total += 1
    return hits / total


@dataclass(frozen=True)
class SanityResult:
    accuracy: dict[str, float]  # measure -> % correct
    seeds: int
    layers: tuple[str, ...]
    n_samples: int
    seconds: float
    markdown: str


def run_sanity(
    out: str | os.PathLike[str] | None = None,
    *,
    seeds: int = 5,
    quick: bool = False,
    progress: bool = False,
    epochs: int | None = None,
    n_probe: int | None = None,
    width: int = 256,
) -> SanityResult:
    """Train ``seeds`` deep MLPs on digits and score each measure (Kornblith Table 2).

    Writes ``sanity.md`` into ``out`` when given. Returns the table as Markdown too.
    """
    from svcca.demo._run import _per_class_subset, _pinned_threads
    from svcca.demo._train import LAYERS, load_digits_split

    if seeds < 2:
        raise ValueError(f"seeds must be at least 2 to compare networks; got {seeds}.")
    epochs = epochs if epochs is not None else (5 if quick else 15)
    n_probe = n_probe if n_probe is not None else (200 if quick else 500)
    t0 = time.perf_counter()
    ckdir = os.path.join(os.fspath(out) if out is not None else ".", "checkpoints-sanity")
    layers = tuple(LAYERS["deep"])
    with _pinned_threads(1):
        data = load_digits_split()
        x = data.x_test[_per_class_subset(data.y_test, n_probe // 10)]
        runs, nets = _train_deep(data, x, ckdir, seeds=seeds, epochs=epochs, width=width)
        if progress:
            print(f"[{time.perf_counter() - t0:6.1f}s] trained {seeds} networks", file=sys.stderr)
        acc = _identification(nets, len(layers), progress, t0)
    seconds = time.perf_counter() - t0
    test_acc = float(np.mean([r.test_accuracy[-1] for r in runs]))
    note = (
        f"{seeds} MLPs with {len(layers)} BatchNorm+ReLU layers of width {width} trained on the "
        f"digits "
        f"({epochs} epochs, mean test accuracy {test_acc:.3f}); layers compared on {len(x)} "
        f"held-out test images; accuracy over {seeds * (seeds - 1) * len(layers)} "
        f"(network pair, layer) cases; {seconds:.0f} s."
    )
    md = _sanity_markdown(acc, note)
    if out is not None:
        os.makedirs(os.fspath(out), exist_ok=True)
        with open(os.path.join(os.fspath(out), "sanity.md"), "w") as fh:
            fh.write(md)
    return SanityResult(acc, seeds, layers, len(x), seconds, md)


def _train_deep(
    data: Digits, x: np.ndarray, ckdir: str, *, seeds: int, epochs: int, width: int
) -> tuple[list[Run], list[list[np.ndarray]]]:
    """Train ``seeds`` deep MLPs; each one's layers (float64) on the probe images ``x``."""
    from svcca.demo._analysis import final_activations
    from svcca.demo._train import LAYERS, train

    runs = [
        train("deep", s, data, ckdir, epochs=epochs, every_epoch=False, width=width)
        for s in range(seeds)
    ]
    nets = []
    for r in runs:
        acts = final_activations(r, x)
        nets.append([acts[n].astype(np.float64) for n in LAYERS["deep"]])
    return runs, nets


def _identification(
    nets: list[list[np.ndarray]], n_layers: int, progress: bool, t0: float
) -> dict[str, float]:
    """Per measure, the % of (ordered network pair, layer) cases where the same layer wins."""
    hits = {name: 0 for name in PAPER_CIFAR10}
    cases = 0
    for i, a in enumerate(nets):
        for j, b in enumerate(nets):
            if i == j:
                continue
            for name, M in similarity_matrices(a, b).items():
                hits[name] += int(np.sum(M.argmax(axis=1) == np.arange(n_layers)))
            cases += n_layers
        if progress:
            print(
                f"[{time.perf_counter() - t0:6.1f}s] queries from network {i} done",
                file=sys.stderr,
            )
    return {name: 100.0 * h / cases for name, h in hits.items()}


def _sanity_markdown(acc: dict[str, float], note: str) -> str:
    lines = [
        "| measure | this run (digits, deep MLP) | Kornblith et al. 2019 (CIFAR-10) |",
        "|---|---|---|",
    ]
    for name, v in acc.items():
        ref = PAPER_CIFAR10.get(name)
        lines.append(f"| {name} | {v:.1f}% | {'—' if ref is None else f'{ref}%'} |")
    return "\n".join(["# Kornblith et al. 2019 Table 2 sanity check", "", note, "", *lines, ""])
