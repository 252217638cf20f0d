"""Kornblith et al. 2019, Table 2: can a measure find the corresponding layer?

Train several networks of one architecture from different seeds. For every ordered
pair of networks (A, B) and every layer of A (the query), compare it with every layer of
B (the candidates); the measure is right when the most similar layer of B is the same
layer. The share of right answers over all ordered pairs and layers is the measure's
accuracy (Kornblith et al. 2019, Section 6.1, Table 2).

Protocol choices, as in the paper's Table 2 caption: SVCCA keeps 99% of each layer's
variance; the asymmetric measures (PWCCA and linear regression) are symmetrised as
``S + S^T`` (``s(X, Y) + s(Y, X)``), so every similarity matrix used here satisfies
``S_BA = S_AB^T`` and which side is the query changes nothing but the reading
direction; the logits are not compared; a convolutional layer is its ReLU output
flattened to ``c * h * w`` features (``conv="mean"`` averages over space instead).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import svcca
from svcca._validation import SVCCAWarning, check_int, check_option
from svcca.measures import (
    CCASide,
    ReducedSide,
    cca_of_sides,
    center_gram,
    cka_ratio,
    explained,
    gram_linear,
    gram_rbf,
    prepare_side,
    pwcca_weights,
    reduce_side,
    svcca_from_reduced,
)

__all__ = [
    "MEASURES",
    "PAPER_CIFAR10",
    "SanityResult",
    "identification_accuracy",
    "run_sanity",
    "similarity_matrices",
]

RBF_WIDTHS = (0.2, 0.4, 0.8)

# Measure key (sanity.json) -> name in the table.
MEASURES = {
    "cca": "CCA (mean rho)",
    "cca_r2": "CCA (R^2_CCA, mean rho^2)",
    "svcca": "SVCCA (mean rho)",
    "svcca_r2": "SVCCA (R^2_CCA)",
    "pwcca": "PWCCA",
    "regression": "Linear regression (R^2)",
    "cka_linear": "CKA (linear)",
    "cka_rbf_0.2": "CKA (RBF 0.2)",
    "cka_rbf_0.4": "CKA (RBF 0.4)",
    "cka_rbf_0.8": "CKA (RBF 0.8)",
    "cka_linear_debiased": "CKA (linear, debiased)",
    "procrustes": "Procrustes (1 - d^2/2)",
}

# Kornblith et al. 2019, Table 2 (ten 10-layer CNNs on CIFAR-10), accuracy in %.
PAPER_CIFAR10: dict[str, float | None] = {
    "cca": 1.4,
    "cca_r2": 10.6,
    "svcca": 9.9,
    "svcca_r2": 15.1,
    "pwcca": 11.1,
    "regression": 45.4,
    "cka_linear": 99.3,
    "cka_rbf_0.2": 80.6,
    "cka_rbf_0.4": 99.1,
    "cka_rbf_0.8": 99.3,
    "cka_linear_debiased": None,
    "procrustes": None,
}

Arch = Literal["plain", "deep"]
ConvMode = Literal["flatten", "mean"]


# ------------------------------------------------------------------------ the measures
def _blocks(layers: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred side-by-side layers ``Z``, their mean, and the column offsets."""
    z = np.hstack([np.asarray(X, dtype=np.float64) for X in layers])
    mean = z.mean(axis=0)
    z -= mean
    return z, mean, np.cumsum([0] + [X.shape[1] for X in layers])


@dataclass
class _Net:
    """One network's layers, each side prepared once for all its pairs (the library's
    *prepare a side* steps): the centred joint data, each layer's Gram block, its CCA
    side (``prepare_side``: pruning and whitening) and its SVCCA reduction
    (``reduce_side``: the kept singular directions)."""

    z: np.ndarray
    mean: np.ndarray
    edges: np.ndarray
    gram: list[np.ndarray]
    sides: list[CCASide]
    reduced: list[ReducedSide]

    @classmethod
    def of(cls, layers: Sequence[np.ndarray], keep: float) -> _Net:
        z, mean, e = _blocks(layers)
        gram, sides, reduced = [], [], []
        for i in range(len(layers)):
            zi = z[:, e[i] : e[i + 1]]
            g = zi.T @ zi
            mi = mean[e[i] : e[i + 1]]
            gram.append(g)
            sides.append(prepare_side(g, mi, 0.0, f"layer {i}"))
            reduced.append(reduce_side(g, mi, keep, "explained", f"layer {i}"))
        return cls(z, mean, e, gram, sides, reduced)

    def sl(self, i: int) -> slice:
        return slice(int(self.edges[i]), int(self.edges[i + 1]))


def _moment_matrices(a: _Net, b: _Net, keep: float) -> dict[str, np.ndarray]:
    """The Moments-based measures for every (layer of a, layer of b), from one GEMM of
    the two networks' centred data and the sides prepared in :class:`_Net`; each pair
    is the same *combine* step that the single-pair function ends with."""
    n = a.z.shape[0]
    sab = a.z.T @ b.z
    La, Lb = len(a.gram), len(b.gram)
    keys = ("cca", "cca_r2", "svcca", "svcca_r2", "pwcca", "regression")
    out = {k: np.zeros((La, Lb)) for k in (*keys, "cka_linear", "procrustes")}
    for i in range(La):
        sx, rx = a.sides[i], a.reduced[i]
        for j in range(Lb):
            sy, ry = b.sides[j], b.reduced[j]
            sxy = sab[a.sl(i), b.sl(j)]
            c = cca_of_sides(sx, sy, sxy, n, threshold=0.98, epsilon=0.0)
            out["cca"][i, j], out["cca_r2"][i, j] = c.score, c.mean_squared
            red = rx.directions.T @ sxy @ ry.directions
            v = svcca_from_reduced(n, rx, ry, red, keep=keep, variance="explained", threshold=0.98)
            out["svcca"][i, j], out["svcca_r2"][i, j] = v.score, v.mean_squared
            # PWCCA and regression are asymmetric: s(X, Y) + s(Y, X) (Kornblith's S + S^T).
            U, rho, V = c._solver.svd
            w_xy, _ = pwcca_weights(sx, sy, U, V, rho)
            w_yx, _ = pwcca_weights(sy, sx, V, U, rho)
            out["pwcca"][i, j] = float(w_xy @ rho) + float(w_yx @ rho)
            r2_y, _ = explained(sx, sy, sxy, np.diag(b.gram[j]))
            r2_x, _ = explained(sy, sx, sxy.T, np.diag(a.gram[i]))
            out["regression"][i, j] = r2_x + r2_y
            m = svcca.Moments(n, a.mean[a.sl(i)], b.mean[b.sl(j)], a.gram[i], b.gram[j], sxy)
            out["cka_linear"][i, j] = svcca.cka(m).score
            out["procrustes"][i, j] = svcca.procrustes(m).score
    return out


def _rbf(X: np.ndarray, *, bandwidth: float) -> np.ndarray:
    return gram_rbf(X, bandwidth)[0]


def _gram_matrices(nets: Sequence[Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """RBF CKA (three widths) and debiased linear CKA between every two layers of all
    networks: ``(N L, N L)`` matrices, layer ``l`` of network ``k`` at ``k L + l``.

    Each layer's centred Gram matrix is computed once (the helpers :func:`svcca.cka`
    itself uses: ``gram_rbf``, ``gram_linear``, ``center_gram``); every HSIC is then an
    inner product of two of them, all at once as one ``G G^T``.
    """
    flat = [np.asarray(X, dtype=np.float64) for layers in nets for X in layers]
    n = flat[0].shape[0]
    dims = [X.shape[1] for X in flat]
    kinds: list[tuple[str, Callable[[np.ndarray], np.ndarray], bool]] = [
        (f"cka_rbf_{w}", functools.partial(_rbf, bandwidth=w), False) for w in RBF_WIDTHS
    ]
    kinds.append(("cka_linear_debiased", gram_linear, True))
    out = {}
    for key, gram, unbiased in kinds:
        G = np.empty((len(flat), n * n))
        for k, X in enumerate(flat):
            G[k] = center_gram(gram(X), unbiased=unbiased).ravel()
        H = G @ G.T
        del G
        d = np.diag(H).copy()
        S = np.empty_like(H)
        for u in range(len(flat)):
            for v in range(len(flat)):
                S[u, v] = cka_ratio(H[u, v], d[u], d[v], dims[u], dims[v], ("X", "Y"))
        out[key] = S
    return out


def similarity_matrices(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, keep: float = 0.99
) -> dict[str, np.ndarray]:
    """For two networks' layers, ``{measure key: (L_a, L_b) matrix}`` in :data:`MEASURES`
    order: entry ``(i, j)`` compares layer ``i`` of ``a`` (the query) with layer ``j``
    of ``b`` (the candidate); larger is more similar.

    Each entry is what the single-pair function gives: ``svcca.cca(X, Y).score`` and
    ``.mean_squared``, ``svcca.svcca(X, Y, keep=keep)`` likewise,
    ``pwcca(X, Y).score + pwcca(Y, X).score``, ``regression_fit(X, Y)``'s
    ``r2_x_given_y + r2_y_given_x``, ``cka(X, Y)`` (linear, RBF at 0.2, 0.4 and 0.8 of
    the median distance, linear debiased) and ``procrustes(X, Y).score``; the
    Moments-based ones from :class:`svcca.Moments` blocks of one joint cross-product
    (each layer's Gram block and SVCCA directions computed once), the kernel ones from
    each layer's centred Gram matrix computed once.
    """
    A, B = _Net.of(a, keep), _Net.of(b, keep)
    out = _moment_matrices(A, B, keep)
    La = len(a)
    for key, S in _gram_matrices([a, b]).items():
        out[key] = S[:La, La:]
    return {k: out[k] for k in MEASURES}


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
class _Identification:
    accuracy: dict[str, float]  # % of cases right
    spread: dict[str, float]  # sd of that % over the ordered network pairs
    adjacent: dict[str, float]  # % of the misses that picked a neighbouring layer
    per_layer: dict[str, list[float]]  # % right for queries of each layer
    same_layer_cka: float  # linear CKA of a layer with the same layer of another seed
    neighbour_cka: float  # linear CKA of a layer with the next one, same network


def _identify(
    nets: Sequence[Sequence[np.ndarray]], *, keep: float, progress: bool, t0: float
) -> _Identification:
    """Per measure, over every (ordered network pair, layer) case: how often the same
    layer wins, the spread of that over pairs, and where the misses land."""
    L = len(nets[0])
    prepared = [_Net.of(layers, keep) for layers in nets]
    per_pair: dict[str, list[float]] = {k: [] for k in MEASURES}
    near = {k: 0 for k in MEASURES}
    miss = {k: 0 for k in MEASURES}
    layer_hits = {k: np.zeros(L) for k in MEASURES}
    same: list[float] = []
    neighbour: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SVCCAWarning)
        kernel = _gram_matrices(nets)
        for i in range(len(nets)):
            for j in range(i + 1, len(nets)):
                mats = _moment_matrices(prepared[i], prepared[j], keep)
                for key, S in kernel.items():
                    mats[key] = S[i * L : (i + 1) * L, j * L : (j + 1) * L]
                same.extend(np.diag(mats["cka_linear"]))
                for key in MEASURES:
                    # S_ji = S_ij^T: queries from i read rows, queries from j columns.
                    for Q in (mats[key], mats[key].T):
                        pick = Q.argmax(axis=1)
                        right = pick == np.arange(L)
                        per_pair[key].append(100.0 * np.mean(right))
                        layer_hits[key] += right
                        miss[key] += int(np.sum(~right))
                        near[key] += int(np.sum(np.abs(pick - np.arange(L))[~right] == 1))
            if progress:
                print(
                    f"[{time.perf_counter() - t0:6.1f}s] pairs with network {i} compared",
                    file=sys.stderr,
                )
        for layers in nets:
            within = svcca.pairwise(list(layers), measure="cka_linear").values
            neighbour.extend(np.diag(np.asarray(within), 1))
    return _Identification(
        accuracy={k: float(np.mean(v)) for k, v in per_pair.items()},
        spread={k: float(np.std(v)) for k, v in per_pair.items()},
        adjacent={k: 100.0 * near[k] / miss[k] if miss[k] else float("nan") for k in MEASURES},
        per_layer={k: (100.0 * v / len(per_pair[k])).tolist() for k, v in layer_hits.items()},
        same_layer_cka=float(np.mean(same)),
        neighbour_cka=float(np.mean(neighbour)),
    )


# --------------------------------------------------------------------- the experiment
@dataclass(frozen=True)
class SanityResult:
    """One run of the layer-identification check.

    ``accuracy`` maps each key of :data:`MEASURES` to the % of (ordered network pair,
    layer) cases it gets right; ``spread`` is the standard deviation of that % over
    the ordered pairs; ``adjacent`` the % of its misses that chose a neighbouring
    layer; ``per_layer`` the % right for the queries of each layer. ``same_layer_cka``
    is the mean linear CKA of a layer with the same layer of
    another network, ``neighbour_cka`` that of a layer with the next layer of its own
    network.
    """

    accuracy: dict[str, float]
    spread: dict[str, float]
    adjacent: dict[str, float]
    per_layer: dict[str, list[float]]
    same_layer_cka: float
    neighbour_cka: float
    networks: int
    layers: tuple[str, ...]
    datapoints: int
    test_accuracy: float
    setup: dict[str, Any]
    seconds: float
    markdown: str


def probe_images(arch: Arch, n: int, seed: int = 0) -> np.ndarray:
    """The held-out datapoints: the test split's 449 digits, then shifted copies.

    For ``"plain"``: the digits centred on the 12x12 canvas, then copies of the test
    split at random offsets (up to 2 pixels from the centre; copy ``k`` drawn with seed
    ``seed + k``) until there are ``n``. For ``"deep"``: the 8x8 test digits (at most
    449; an MLP on raw pixels has no notion of a shift).
    """
    from svcca.demo._train import load_digits_split, random_offsets, shifted

    x = load_digits_split().x_test
    if arch == "deep":
        if n > len(x):
            raise ValueError(
                f"n_probe must be at most {len(x)} for arch='deep' (the test split); got {n}. "
                "Shifted copies exist only for the CNN (arch='plain')."
            )
        return x[:n]
    centre = np.full((len(x), 2), 2)
    parts = [shifted(x, centre)]
    k = 1
    while sum(len(p) for p in parts) < n:
        parts.append(shifted(x, random_offsets(len(x), np.random.default_rng(seed + k))))
        k += 1
    return np.concatenate(parts)[:n]


def _defaults(arch: str, quick: bool) -> dict[str, Any]:
    if arch == "plain":
        return {"epochs": 6 if quick else 20, "n_probe": 300 if quick else 1347, "width": 8}
    return {"epochs": 5 if quick else 15, "n_probe": 200 if quick else 449, "width": 256}


def run_sanity(
    out: str | os.PathLike[str] | None = None,
    *,
    seeds: int | None = None,
    quick: bool = False,
    progress: bool = False,
    arch: Arch = "plain",
    depth: int = 8,
    width: int | None = None,
    epochs: int | None = None,
    n_probe: int | None = None,
    conv: ConvMode = "flatten",
    keep: float = 0.99,
) -> SanityResult:
    """Train networks on the digits from several seeds and score each measure
    (Kornblith et al. 2019, Table 2).

    Parameters
    ----------
    out : path, optional
        Folder for ``sanity.json``, ``sanity.md`` and the checkpoints.
    seeds : int, optional
        Networks trained (at least 2); default 5 (3 with ``quick``).
    quick : bool, default False
        Fewer networks, epochs and datapoints (well under a minute on one core) for CI.
    arch : {"plain", "deep"}, default "plain"
        The plain CNN of :func:`svcca.demo._train.make_model` (``depth`` 3x3 conv layers
        starting at ``width`` channels, trained with random shifts) or the deep
        BatchNorm MLP (``depth`` layers of ``width`` units).
    conv : {"flatten", "mean"}, default "flatten"
        A conv layer as its ``c * h * w`` flattened map (Kornblith et al.) or its
        spatial mean (``c`` features).
    n_probe : int, optional
        Held-out datapoints (:func:`probe_images`); default 1347 (300 quick) for the CNN.
    keep : float, default 0.99
        SVCCA's share of each layer's variance (Kornblith et al. follow Raghu et al.).

    Returns
    -------
    SanityResult
    """
    from svcca.demo._run import _pinned_threads

    seeds = 3 if quick and seeds is None else 5 if seeds is None else seeds
    seeds = check_int(seeds, "seeds", minimum=2, fix="Comparing networks needs at least 2.")
    arch = check_option(arch, "arch", ("plain", "deep"))  # type: ignore[assignment]
    conv = check_option(conv, "conv", ("flatten", "mean"))  # type: ignore[assignment]
    depth = check_int(depth, "depth", minimum=2, fix="Identifying a layer needs 2 or more.")
    d = _defaults(arch, quick)
    width = check_int(d["width"] if width is None else width, "width")
    epochs = check_int(d["epochs"] if epochs is None else epochs, "epochs")
    n_probe = check_int(d["n_probe"] if n_probe is None else n_probe, "n_probe", minimum=10)
    t0 = time.perf_counter()
    root = os.fspath(out) if out is not None else "."
    with _pinned_threads(1):
        x = probe_images(arch, n_probe)
        runs = _train_networks(
            arch, os.path.join(root, "checkpoints-sanity"), seeds, depth, width, epochs
        )
        if progress:
            print(f"[{time.perf_counter() - t0:6.1f}s] trained {seeds} networks", file=sys.stderr)
        nets = _capture(runs, arch, depth, x, conv)
        found = _identify(nets, keep=keep, progress=progress, t0=t0)
    setup = {
        "arch": arch,
        "depth": depth,
        "width": width,
        "epochs": epochs,
        "conv": conv if arch == "plain" else None,
        "svcca_keep": keep,
        "features": [int(X.shape[1]) for X in nets[0]],
        "quick": quick,
    }
    res = _result(found, runs, arch, depth, len(x), setup, time.perf_counter() - t0)
    if out is not None:
        _write(root, "sanity", res)
    return res


def _result(
    found: _Identification,
    runs: Sequence[Any],
    arch: str,
    depth: int,
    n: int,
    setup: dict[str, Any],
    seconds: float,
) -> SanityResult:
    from svcca.demo._train import layer_names

    test_acc = float(np.mean([r.test_accuracy[-1] for r in runs]))
    fields = (
        found.accuracy,
        found.spread,
        found.adjacent,
        found.per_layer,
        found.same_layer_cka,
        found.neighbour_cka,
        len(runs),
        tuple(layer_names(arch, depth)),
        n,
        test_acc,
        setup,
        seconds,
    )
    return SanityResult(*fields, _sanity_markdown(SanityResult(*fields, "")))


def _write(root: str, stem: str, res: SanityResult) -> None:
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f"{stem}.md"), "w") as fh:
        fh.write(res.markdown)
    with open(os.path.join(root, f"{stem}.json"), "w") as fh:
        json.dump(_as_json(res), fh, indent=1)


def _train_networks(
    arch: str, ckdir: str, seeds: int, depth: int, width: int, epochs: int
) -> list[Any]:
    """Train ``seeds`` networks (the CNN with random shifts and a cosine schedule)."""
    from svcca.demo._train import load_digits_split, train

    data = load_digits_split()
    plain = arch == "plain"
    return [
        train(
            arch,
            s,
            data,
            ckdir,
            epochs=epochs,
            every_epoch=False,
            width=width,
            depth=depth,
            shifts=plain,
            cosine=plain,
            lr=3e-3 if plain else 1e-3,
            batch_size=32 if plain else 64,
        )
        for s in range(seeds)
    ]


def _capture(
    runs: Sequence[Any], arch: str, depth: int, x: np.ndarray, conv: str
) -> list[list[np.ndarray]]:
    """Each network's compared layers (float64) on the images ``x``."""
    import torch

    from svcca.demo._train import layer_names
    from svcca.torch import capture

    nets = []
    for r in runs:
        acts = capture(
            r.load(),
            list(torch.from_numpy(x).split(512)),
            layer_names(arch, depth),
            conv=conv,  # type: ignore[arg-type]
        )
        nets.append([np.asarray(a, dtype=np.float64) for a in acts.values()])
    return nets


def _as_json(res: SanityResult) -> dict[str, Any]:
    return {
        "accuracy": res.accuracy,
        "spread": res.spread,
        "adjacent_share_of_misses": res.adjacent,
        "per_layer": res.per_layer,
        "same_layer_cka": res.same_layer_cka,
        "neighbour_cka": res.neighbour_cka,
        "networks": res.networks,
        "datapoints": res.datapoints,
        "layers": list(res.layers),
        "test_accuracy": res.test_accuracy,
        "setup": res.setup,
        "seconds": res.seconds,
        "paper_cifar10": PAPER_CIFAR10,
        "names": MEASURES,
    }


def _describe(res: SanityResult) -> str:
    s = res.setup
    L = len(res.layers)
    if s["arch"] == "plain":
        what = (
            f"{res.networks} plain CNNs ({L} conv layers of 3x3, {s['width']} to "
            f"{s['width'] * 8} channels, BatchNorm, ReLU, three stride-2 layers, global "
            f"average pooling) trained on the digits with random shifts ({s['epochs']} epochs)"
        )
        how = "flattened" if s["conv"] == "flatten" else "averaged over space"
    else:
        what = (
            f"{res.networks} MLPs ({L} BatchNorm+ReLU layers of width {s['width']}) trained "
            f"on the digits ({s['epochs']} epochs)"
        )
        how = "as they are"
    return (
        f"{what}; mean test accuracy {res.test_accuracy:.3f}. Layers ({how}; features "
        f"{s['features']}) compared on {res.datapoints} held-out datapoints; accuracy over "
        f"{res.networks * (res.networks - 1) * L} (ordered network pair, layer) cases, "
        f"chance {100 / L:.1f}%; {res.seconds:.0f} s."
    )


def _sanity_markdown(res: SanityResult) -> str:
    lines = [
        "| measure | this run | sd over pairs | misses on a neighbour | Kornblith et al. "
        "2019 (CIFAR-10) |",
        "|---|---|---|---|---|",
    ]
    for key, name in MEASURES.items():
        ref = PAPER_CIFAR10[key]
        adj = res.adjacent[key]
        lines.append(
            f"| {name} | {res.accuracy[key]:.1f}% | {res.spread[key]:.1f} | "
            f"{'—' if adj != adj else f'{adj:.0f}%'} | {'—' if ref is None else f'{ref}%'} |"
        )
    cka = (
        f"Linear CKA of a layer with the same layer of another network: "
        f"{res.same_layer_cka:.3f} on average; with the next layer of its own network: "
        f"{res.neighbour_cka:.3f}. Linear CKA finds each layer ("
        + ", ".join(
            f"{name} {v:.0f}%"
            for name, v in zip(res.layers, res.per_layer["cka_linear"], strict=True)
        )
        + ")."
    )
    return "\n".join(
        [
            "# Kornblith et al. 2019 Table 2 sanity check",
            "",
            _describe(res),
            "",
            *lines,
            "",
            cka,
            "",
        ]
    )


# -------------------------------------------------------------------------- the study
STUDY_MEASURES = ("cka_linear", "cka_rbf_0.4", "procrustes", "regression", "pwcca", "svcca", "cca")


def run_study(
    out: str | os.PathLike[str],
    *,
    seeds: int = 3,
    progress: bool = False,
    depths: Sequence[int] = (4, 6, 10),
    widths: Sequence[int] = (4, 12),
    datapoints: Sequence[int] = (150, 449, 898, 1347),
    base_depth: int = 8,
    base_width: int = 8,
    epochs: int = 20,
    mlp_epochs: int = 15,
    mlp_datapoints: int = 449,
) -> list[SanityResult]:
    """The layer-identification protocol across architectures, depths, widths, numbers
    of datapoints and conv treatments; writes ``study.json``, ``study.md`` and
    ``study.png`` / ``study.svg`` into ``out``.

    The reference is the plain CNN of :func:`run_sanity` (``base_depth``,
    ``base_width``, flattened layers, ``max(datapoints)`` datapoints); each sweep
    changes one thing. Networks are trained once per architecture and reused across
    datapoints and conv treatments; the datapoint sweep takes prefixes of one probe set.
    The MLP row is :func:`run_sanity`'s ``arch="deep"`` (8 layers of 256).
    """
    from svcca.demo._run import _pinned_threads

    seeds = check_int(seeds, "seeds", minimum=2, fix="Comparing networks needs at least 2.")
    root = os.fspath(out)
    ck = os.path.join(root, "checkpoints-study")
    t0 = time.perf_counter()
    results: list[SanityResult] = []
    trained: dict[tuple[str, int, int], list[Any]] = {}

    def one(label: str, arch: str, depth: int, width: int, n: int, conv: str) -> None:
        t = time.perf_counter()
        ep = epochs if arch == "plain" else mlp_epochs
        if (arch, depth, width) not in trained:
            trained[arch, depth, width] = _train_networks(arch, ck, seeds, depth, width, ep)
        runs = trained[arch, depth, width]
        nets = _capture(runs, arch, depth, probe_images(arch, n), conv)  # type: ignore[arg-type]
        found = _identify(nets, keep=0.99, progress=False, t0=t0)
        setup = {
            "label": label,
            "arch": arch,
            "depth": depth,
            "width": width,
            "epochs": ep,
            "conv": conv if arch == "plain" else None,
            "svcca_keep": 0.99,
            "features": [int(X.shape[1]) for X in nets[0]],
            "quick": False,
        }
        results.append(_result(found, runs, arch, depth, n, setup, time.perf_counter() - t))
        if progress:
            acc = results[-1].accuracy
            print(
                f"[{time.perf_counter() - t0:6.1f}s] {label}: linear CKA "
                f"{acc['cka_linear']:.1f}%, SVCCA {acc['svcca']:.1f}%",
                file=sys.stderr,
            )
        _write_study(root, [_as_json(r) for r in results])

    with _pinned_threads(1):
        n_max = max(datapoints)
        for n in sorted(datapoints):
            one(f"datapoints={n}", "plain", base_depth, base_width, n, "flatten")
        one("conv=mean", "plain", base_depth, base_width, n_max, "mean")
        for d in depths:
            one(f"depth={d}", "plain", d, base_width, n_max, "flatten")
        for w in widths:
            one(f"width={w}", "plain", base_depth, w, n_max, "flatten")
        one("MLP", "deep", 8, 256, mlp_datapoints, "flatten")
    rows = [_as_json(r) for r in results]
    study_figure(rows, root)
    return results


def _write_study(root: str, rows: Sequence[dict[str, Any]]) -> None:
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "study.json"), "w") as fh:
        json.dump(list(rows), fh, indent=1)
    with open(os.path.join(root, "study.md"), "w") as fh:
        fh.write(study_table(rows))


def study_table(rows: Sequence[dict[str, Any]]) -> str:
    """The study as a Markdown table (accuracy in % per measure), from ``study.json``."""
    head = "| setting | layers | test acc. | n | "
    head += " | ".join(MEASURES[k] for k in STUDY_MEASURES)
    head += " | same layer, other seed (CKA) | next layer, same net (CKA) |"
    lines = [head, "|" + "---|" * (len(STUDY_MEASURES) + 6)]
    for r in rows:
        cells = " | ".join(f"{r['accuracy'][k]:.1f}" for k in STUDY_MEASURES)
        lines.append(
            f"| {r['setup']['label']} | {len(r['layers'])} | {r['test_accuracy']:.3f} | "
            f"{r['datapoints']} | {cells} | {r['same_layer_cka']:.3f} | "
            f"{r['neighbour_cka']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _x(row: dict[str, Any], what: str) -> int:
    return int(row["datapoints"] if what == "n" else row["setup"][what])


def study_figure(rows: Sequence[dict[str, Any]], root: str) -> list[str]:
    """Draw ``study.png`` and ``study.svg`` from the rows of ``study.json``.

    Three panels sweep depth, width and datapoints around the reference CNN (the
    datapoint sweep's largest row); the fourth compares the MLP and the two conv
    treatments at the reference setting. Returns the files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {r["setup"]["label"]: r for r in rows}
    sweep = [r for r in rows if r["setup"]["label"].startswith("datapoints=")]
    ref = max(sweep, key=lambda r: r["datapoints"])
    panels = [
        ("depth (conv layers)", "depth", "depth="),
        ("width (channels of the first layer)", "width", "width="),
        ("held-out datapoints", "n", "datapoints="),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
    for ax, (title, what, prefix) in zip(axes, panels, strict=False):
        rs = [r for r in rows if r["setup"]["label"].startswith(prefix)]
        rs = sorted(rs + ([ref] if ref not in rs else []), key=lambda r: _x(r, what))
        xs = [_x(r, what) for r in rs]
        for k in STUDY_MEASURES:
            ax.plot(xs, [r["accuracy"][k] for r in rs], "o-", label=MEASURES[k])
        ax.plot(xs, [100 / len(r["layers"]) for r in rs], "k:", label="chance")
        ax.set_xlabel(title)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("corresponding layer found (%)")
    groups = [("MLP", "MLP"), ("conv=mean", "CNN,\nspatial mean")]
    bars = [(by[k], name) for k, name in groups if k in by] + [(ref, "CNN,\nflattened")]
    ax = axes[3]
    w = 0.8 / len(STUDY_MEASURES)
    for m, k in enumerate(STUDY_MEASURES):
        ax.bar(np.arange(len(bars)) + m * w, [b["accuracy"][k] for b, _ in bars], w)
    ax.set_xticks(np.arange(len(bars)) + 0.4 - w / 2, [name for _, name in bars])
    ax.set_xlabel("network, conv treatment")
    ax.grid(alpha=0.3, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center right")
    fig.suptitle("Layer identification across seeds on the digits (Kornblith et al. 2019 protocol)")
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    files = []
    for ext in ("png", "svg"):
        files.append(os.path.join(root, f"study.{ext}"))
        fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files
