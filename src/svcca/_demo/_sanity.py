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

import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

import svcca
from svcca._demo._sanity_measures import (
    PAPER_CIFAR10,
    RBF_WIDTHS,
    _gram_matrices,
    _moment_matrices,
    _Net,
    identification_accuracy,
    label,
    registry_matrices,
    registry_rows,
    rows,
    similarity_matrices,
)
from svcca._validation import SVCCAWarning, check_int, check_option

__all__ = [
    "PAPER_CIFAR10",
    "RBF_WIDTHS",
    "SanityResult",
    "identification_accuracy",
    "label",
    "registry_rows",
    "rows",
    "run_sanity",
    "similarity_matrices",
]

Arch = Literal["plain", "deep"]
ConvMode = Literal["flatten", "mean"]


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
    keys = rows()
    prepared = [_Net.of(layers, keep) for layers in nets]
    per_pair: dict[str, list[float]] = {k: [] for k in keys}
    near = {k: 0 for k in keys}
    miss = {k: 0 for k in keys}
    layer_hits = {k: np.zeros(L) for k in keys}
    same: list[float] = []
    neighbour: list[float] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SVCCAWarning)
        kernel = {**_gram_matrices(nets), **registry_matrices(nets)}
    for w in caught:  # only the refusals: the measures' own advice is noise here
        if str(w.message).startswith("sanity check:"):
            warnings.warn(w.message, SVCCAWarning, stacklevel=3)
    refused = {k for k, S in kernel.items() if np.isnan(S).any()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SVCCAWarning)
        for i in range(len(nets)):
            for j in range(i + 1, len(nets)):
                mats = _moment_matrices(prepared[i], prepared[j], keep)
                for key, S in kernel.items():
                    mats[key] = S[i * L : (i + 1) * L, j * L : (j + 1) * L]
                same.extend(np.diag(mats["cka_linear"]))
                for key in keys:
                    if key in refused:
                        continue
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
    nan = float("nan")  # a refused measure (warned above) has no numbers
    return _Identification(
        accuracy={k: float(np.mean(v)) if v else nan for k, v in per_pair.items()},
        spread={k: float(np.std(v)) if v else nan for k, v in per_pair.items()},
        adjacent={k: 100.0 * near[k] / miss[k] if miss[k] else nan for k in keys},
        per_layer={
            k: (100.0 * v / len(per_pair[k])).tolist() if per_pair[k] else [nan] * L
            for k, v in layer_hits.items()
        },
        same_layer_cka=float(np.mean(same)),
        neighbour_cka=float(np.mean(neighbour)),
    )


# --------------------------------------------------------------------- the experiment
@dataclass(frozen=True)
class SanityResult:
    """One run of the layer-identification check.

    ``accuracy`` maps each row of :func:`rows` (a registered measure's name, with its
    parameters where they differ from the defaults) to the % of (ordered network pair,
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
    from svcca._demo._train import load_digits_split, random_offsets, shifted

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
        The plain CNN of :func:`svcca._demo._train.make_model` (``depth`` 3x3 conv layers
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
    from svcca._demo._run import _pinned_threads

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
    from svcca._demo._train import layer_names

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
    from svcca._demo._train import load_digits_split, train

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

    from svcca._demo._train import layer_names
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


def _percent(v: float) -> str:
    """A table cell: the %, or "refused" for a measure that refused the activations."""
    return "refused" if v != v else f"{v:.1f}%"


def _sanity_markdown(res: SanityResult) -> str:
    lines = [
        "| measure | this run | sd over pairs | misses on a neighbour | Kornblith et al. "
        "2019 (CIFAR-10) |",
        "|---|---|---|---|---|",
    ]
    for key in res.accuracy:
        ref = PAPER_CIFAR10.get(key)
        adj = res.adjacent[key]
        lines.append(
            f"| {key} | {_percent(res.accuracy[key])} | {res.spread[key]:.1f} | "
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
STUDY_MEASURES = (
    "cka_linear",
    label("cka_rbf", {"bandwidth": 0.4}),
    "procrustes",
    "regression",
    "pwcca",
    "svcca",
    "cca",
)


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
    from svcca._demo._run import _pinned_threads

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
    head += " | ".join(STUDY_MEASURES)
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
            ax.plot(xs, [r["accuracy"][k] for r in rs], "o-", label=k)
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
