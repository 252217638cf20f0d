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

import numpy as np

import svcca

__all__ = ["PAPER_CIFAR10", "SanityResult", "measures", "run_sanity", "identification_accuracy"]

# Kornblith et al. 2019, Table 2, CIFAR-10 column (accuracy in %).
PAPER_CIFAR10 = {
    "CCA (mean rho)": 1.4,
    "CCA (R2_CCA)": 10.6,
    "SVCCA (mean rho)": 9.9,
    "SVCCA (R2_CCA)": 15.1,
    "PWCCA": 11.1,
    "Linear regression": 45.4,
    "CKA (linear)": 99.3,
    "CKA (RBF 0.4)": 99.1,
    "Procrustes": None,
}

Measure = Callable[[np.ndarray, np.ndarray], float]


def measures() -> dict[str, Measure]:
    """The measures compared, as ``f(query, candidate) -> similarity`` (larger: closer).

    Measures whose module is not available in this installation are left out.
    """
    out: dict[str, Measure] = {
        "CCA (mean rho)": lambda X, Y: svcca.cca(X, Y).score,
        "CCA (R2_CCA)": lambda X, Y: svcca.cca(X, Y).mean_squared,
        "SVCCA (mean rho)": lambda X, Y: svcca.svcca(X, Y, keep=0.99).score,
        "SVCCA (R2_CCA)": lambda X, Y: svcca.svcca(X, Y, keep=0.99).mean_squared,
        "PWCCA": lambda X, Y: svcca.pwcca(X, Y).score,
    }
    try:
        from svcca._regression import regression_fit

        # Kornblith's R^2_LR: the share of the query's variance the candidate explains.
        out["Linear regression"] = lambda X, Y: regression_fit(X, Y).r2_x_given_y
    except ImportError:  # pragma: no cover - depends on what is installed
        pass
    try:
        from svcca._cka import cka

        out["CKA (linear)"] = lambda X, Y: cka(X, Y).score
        out["CKA (RBF 0.4)"] = lambda X, Y: cka(X, Y, kernel="rbf", bandwidth=0.4).score
    except ImportError:  # pragma: no cover
        pass
    try:
        from svcca._shape import procrustes

        out["Procrustes"] = lambda X, Y: procrustes(X, Y).score
    except ImportError:  # pragma: no cover
        pass
    return out


def identification_accuracy(nets: list[list[np.ndarray]], measure: Measure) -> float:
    """Share of (network pair, layer) cases where the same layer is the most similar.

    ``nets[i][l]`` is layer ``l`` of network ``i``, shape ``(n, p_l)``.
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
    import torch

    from svcca.demo._analysis import final_activations
    from svcca.demo._run import _per_class_subset
    from svcca.demo._train import LAYERS, load_digits_split, train

    if seeds < 2:
        raise ValueError(f"seeds must be at least 2 to compare networks; got {seeds}.")
    epochs = epochs if epochs is not None else (5 if quick else 15)
    n_probe = n_probe if n_probe is not None else (200 if quick else 500)
    t0 = time.perf_counter()
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    limits = threadpool_limits(limits=1)
    ckdir = os.path.join(os.fspath(out) if out is not None else ".", "checkpoints-sanity")
    try:
        data = load_digits_split()
        sel = _per_class_subset(data.y_test, n_probe // 10)
        x = data.x_test[sel]
        runs = [
            train("deep", s, data, ckdir, epochs=epochs, every_epoch=False, width=width)
            for s in range(seeds)
        ]
        layers = tuple(LAYERS["deep"])
        nets = []
        for r in runs:
            acts = final_activations(r, x)
            nets.append([acts[n].astype(np.float64) for n in layers])
        if progress:
            print(f"[{time.perf_counter() - t0:6.1f}s] trained {seeds} networks", file=sys.stderr)
        acc = {}
        for name, f in measures().items():
            acc[name] = 100.0 * identification_accuracy(nets, f)
            if progress:
                print(
                    f"[{time.perf_counter() - t0:6.1f}s] {name}: {acc[name]:.1f}%", file=sys.stderr
                )
    finally:
        torch.set_num_threads(threads)
        limits.restore_original_limits()
    seconds = time.perf_counter() - t0
    test_acc = np.mean([r.test_accuracy[-1] for r in runs])
    lines = [
        "| measure | this run (digits, deep MLP) | Kornblith et al. 2019 (CIFAR-10) |",
        "|---|---|---|",
    ]
    for name, v in acc.items():
        ref = PAPER_CIFAR10.get(name)
        lines.append(f"| {name} | {v:.1f}% | {'—' if ref is None else f'{ref}%'} |")
    missing = [n for n in PAPER_CIFAR10 if n not in acc]
    note = (
        f"{seeds} MLPs with {len(layers)} BatchNorm+ReLU layers of width {width} trained on the "
        f"digits "
        f"({epochs} epochs, mean test accuracy {test_acc:.3f}); layers compared on {len(x)} "
        f"held-out test images; accuracy over {seeds * (seeds - 1) * len(layers)} "
        f"(network pair, layer) cases; {seconds:.0f} s."
        + (f" Not measured (module missing): {', '.join(missing)}." if missing else "")
    )
    md = "\n".join(["# Kornblith et al. 2019 Table 2 sanity check", "", note, "", *lines, ""])
    if out is not None:
        os.makedirs(os.fspath(out), exist_ok=True)
        with open(os.path.join(os.fspath(out), "sanity.md"), "w") as fh:
            fh.write(md)
    return SanityResult(acc, seeds, layers, len(x), seconds, md)
