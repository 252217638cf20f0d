"""The paper's experiments on the demo networks: numbers first, figures from them.

Each experiment returns a frozen dataclass holding exactly the matrices the figure
draws, plus a one-line finding with the measured numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

import svcca
from svcca.demo._train import LAYERS, Digits, Run

__all__ = [
    "Reduced",
    "class_sensitivity",
    "coefficients",
    "compression",
    "generalising_vs_memorising",
    "interpretability",
    "learning_dynamics",
    "reduce",
    "svcca_score",
]

KEEP = 0.99  # SVCCA: keep the singular directions explaining 99% of the variance.


@dataclass(frozen=True)
class Reduced:
    """A representation reduced to its top singular directions, whitened.

    ``q`` has orthonormal columns spanning the kept directions of the centred data, so
    the canonical correlations of two reduced representations are the singular values
    of ``a.q.T @ b.q``: SVCCA with the per-representation work done once.
    """

    q: np.ndarray  # (n, k), orthonormal columns
    k: int


def reduce(A: np.ndarray, keep: float = KEEP) -> Reduced:
    """Whitened coordinates of ``A`` in the singular directions explaining ``keep``."""
    A = np.asarray(A, dtype=np.float64)
    A = A.reshape(A.shape[0], -1)
    Ac = A - A.mean(axis=0)
    w, V = np.linalg.eigh(Ac.T @ Ac)
    w, V = w[::-1], V[:, ::-1]
    good = w > max(w[0], 0.0) * 1e-12
    w, V = w[good], V[:, good]
    if w.size == 0:
        return Reduced(np.zeros((A.shape[0], 0)), 0)
    share = np.cumsum(w) / w.sum()
    k = min(int(np.searchsorted(share, keep - 1e-12, side="left")) + 1, w.size)
    return Reduced((Ac @ V[:, :k]) / np.sqrt(w[:k]), k)


def correlations(a: Reduced, b: Reduced) -> np.ndarray:
    if a.k == 0 or b.k == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(a.q.T @ b.q, compute_uv=False), 0.0, 1.0)


def svcca_score(a: Reduced, b: Reduced) -> float:
    """Mean canonical correlation of two reduced representations (= ``svcca(...).score``)."""
    rho = correlations(a, b)
    return float(rho.mean()) if rho.size else 0.0


def _capture_series(run: Run, x: np.ndarray, epochs: Sequence[int]) -> list[dict[str, Any]]:
    import torch

    from svcca.demo._train import make_model
    from svcca.torch import capture_checkpoints

    model = make_model(run.arch, run.seed, width=run.width)
    batches = list(torch.from_numpy(x).split(512))
    ckpts = {str(e): run.checkpoints[e] for e in epochs}
    series = capture_checkpoints(model, ckpts, batches, LAYERS[run.arch], conv="flatten")
    return [series[str(e)] for e in epochs]


def final_activations(run: Run, x: np.ndarray, **kw: Any) -> dict[str, np.ndarray]:
    import torch

    from svcca.torch import capture

    return capture(run.load(), list(torch.from_numpy(x).split(512)), LAYERS[run.arch], **kw)


# ---------------------------------------------------------------------------- 1. dynamics


def centred_gram(A: np.ndarray) -> np.ndarray:
    """``Xc Xc^T / |Xc Xc^T|_F``: the centred linear kernel, scaled to unit norm."""
    A = np.asarray(A, dtype=np.float64).reshape(A.shape[0], -1)
    Ac = A - A.mean(axis=0)
    K = Ac @ Ac.T
    norm = np.sqrt(np.vdot(K, K))
    return K / norm if norm > 0 else K


def gram_cka(K: np.ndarray, L: np.ndarray) -> float:
    """Linear CKA from two unit-norm centred Gram matrices: ``<K, L>``."""
    return float(np.vdot(K, L))


@dataclass(frozen=True)
class LearningDynamics:
    layers: tuple[str, ...]
    epochs: tuple[int, ...]
    panes: np.ndarray  # (T', L, L), first run: layer i at epoch t vs layer j at the end
    to_final: np.ndarray  # (runs, T, L): each layer at epoch t vs itself at the end
    crossing: np.ndarray  # (runs, L): first epoch where to_final >= threshold
    threshold: float
    run_names: tuple[str, ...]
    finding: str


def learning_dynamics(
    runs: Sequence[Run], x: np.ndarray, *, threshold: float = 0.9, pane_epochs: int = 8
) -> LearningDynamics:
    """Linear CKA of every layer at every epoch with every layer of the final network.

    Each representation's centred Gram matrix is computed once; every comparison is
    then one inner product. Linear CKA rather than SVCCA here: SVCCA is invariant to
    invertible linear maps, so on these small networks every layer is already SVCCA
    > 0.9 similar to its final self at initialisation and the ordering drowns in noise.
    """
    layers = tuple(LAYERS[runs[0].arch])
    T = len(runs[0].checkpoints)
    epochs = tuple(range(T))
    to_final = np.zeros((len(runs), T, len(layers)))
    panes = np.zeros((T, len(layers), len(layers)))
    for r, run in enumerate(runs):
        grams = [[centred_gram(a[n]) for n in layers] for a in _capture_series(run, x, epochs)]
        final = grams[-1]
        for t in range(T):
            for i in range(len(layers)):
                js = range(len(layers)) if r == 0 else [i]
                for j in js:
                    v = gram_cka(grams[t][i], final[j])
                    if r == 0:
                        panes[t, i, j] = v
                    if i == j:
                        to_final[r, t, i] = v
    above = to_final >= threshold
    crossing = np.where(above.any(axis=1), above.argmax(axis=1), T - 1).astype(float)
    mean_cross = crossing.mean(axis=0)
    at1 = to_final[:, min(1, T - 1)].mean(0)
    cross_ok = bool(np.all(np.diff(mean_cross) >= 0))
    at1_ok = bool(np.all(np.diff(at1) <= 0))
    parts = ", ".join(f"{n} {c:.1f}" for n, c in zip(layers, mean_cross, strict=True))
    if cross_ok:
        verdict = "Lower layers reach it no later than higher ones"
    else:
        late = [
            f"{layers[i]} after {layers[i + 1]}"
            for i in range(len(layers) - 1)
            if mean_cross[i] > mean_cross[i + 1]
        ]
        verdict = f"The crossing order is bottom-up except {', '.join(late)}"
    verdict += (
        f"; after epoch {min(1, T - 1)} the similarity falls with depth at every step "
        "(lower layers are closer to their final state): the paper's bottom-up convergence."
        if at1_ok
        else f"; after epoch {min(1, T - 1)} it does not fall with depth at every step."
    )
    finding = (
        f"Epoch at which each layer's linear CKA with its final self first reaches "
        f"{threshold} (mean over {len(runs)} seeds): {parts}. After epoch {min(1, T - 1)}: "
        + ", ".join(f"{n} {v:.2f}" for n, v in zip(layers, at1, strict=True))
        + f". {verdict}"
    )
    shown = _spread(T, pane_epochs)
    return LearningDynamics(
        layers,
        tuple(shown),
        panes[list(shown)],
        to_final,
        crossing,
        threshold,
        tuple(r.name for r in runs),
        finding,
    )


def _spread(T: int, m: int) -> list[int]:
    if T <= m:
        return list(range(T))
    return sorted({int(round(v)) for v in np.linspace(0, T - 1, m)})


# ---------------------------------------------------------------------------- 2. classes


def multiple_correlation(red: Reduced, z: np.ndarray) -> float:
    """The canonical correlation between a representation and one variable ``z`` (n,).

    With one variable on one side CCA has a single correlation: the multiple
    correlation ``R``, the correlation of ``z`` with its least-squares fit from the
    representation (``red = reduce(A, keep=1.0)``: all of its directions).
    """
    zc = np.asarray(z, dtype=np.float64) - np.mean(z)
    nz = np.linalg.norm(zc)
    if nz == 0 or red.k == 0:
        return 0.0
    return min(float(np.linalg.norm(red.q.T @ (zc / nz))), 1.0)


@dataclass(frozen=True)
class ClassSensitivity:
    layers: tuple[str, ...]
    classes: tuple[int, ...]
    matrix: np.ndarray  # (L, C), mean over runs
    per_run: np.ndarray  # (runs, L, C)
    closest_pair: tuple[int, int]
    finding: str


def class_sensitivity(runs: Sequence[Run], x: np.ndarray) -> ClassSensitivity:
    """Canonical correlation between each class's logit and each layer.

    Conv layers go through DFT-CCA (:func:`svcca.conv.fourier_cca`, as the SVCCA
    README does it); against a single logit only the zero-frequency block can
    correlate, so this is the CCA of the layer's spatial mean with the logit.
    """
    from svcca.conv import fourier_cca

    layers = tuple(LAYERS[runs[0].arch][:-1])
    per_run = np.zeros((len(runs), len(layers), 10))
    for r, run in enumerate(runs):
        acts = final_activations(run, x, conv="keep", dtype=np.float64)
        logits = acts[LAYERS[run.arch][-1]]
        for i, name in enumerate(layers):
            A = acts[name]
            red = reduce(A, keep=1.0) if A.ndim == 2 else None
            for c in range(10):
                if red is None:
                    z = logits[:, [c]]
                    per_run[r, i, c] = fourier_cca(A, z, layout="nchw").score
                else:
                    per_run[r, i, c] = multiple_correlation(red, logits[:, c])
    M = per_run.mean(axis=0)
    # Which two classes have the most alike profile over layers (and over runs)?
    prof = per_run.transpose(2, 0, 1).reshape(10, -1)
    d = np.linalg.norm(prof[:, None] - prof[None], axis=2) + np.eye(10) * 1e9
    a, b = np.unravel_index(np.argmin(d), d.shape)
    first = M[0]
    finding = (
        f"DFT-CCA of a digit's logit with {layers[0]} ranges "
        f"from {first.min():.2f} (digit {int(first.argmin())}) to {first.max():.2f} (digit "
        f"{int(first.argmax())}), mean {first.mean():.2f}; "
        + ", ".join(f"{n} {M[i].mean():.2f}" for i, n in enumerate(layers[1:], 1))
        + f". Digits {min(a, b)} and {max(a, b)} have the most alike profiles across "
        f"layers and seeds."
    )
    return ClassSensitivity(layers, tuple(range(10)), M, per_run, (int(a), int(b)), finding)


# ---------------------------------------------------------------------------- 3. interpret


@dataclass(frozen=True)
class Interpretability:
    layer: str
    labels: np.ndarray  # (n,)
    raw: dict[str, np.ndarray]  # name -> (n, k) the k highest-variance neurons
    directions: dict[str, np.ndarray]  # name -> (n, k) top canonical variates
    top_correlations: np.ndarray
    neuron_match: float
    finding: str


def interpretability(
    runs: Sequence[Run], x: np.ndarray, y: np.ndarray, *, layer: str = "fc1", k: int = 3
) -> Interpretability:
    a_run, b_run = runs[0], runs[1]
    A = final_activations(a_run, x, conv="flatten")[layer].astype(np.float64)
    B = final_activations(b_run, x, conv="flatten")[layer].astype(np.float64)
    res = svcca.svcca(A, B, keep=KEEP)
    u, v = res.transform(A, B)
    if v is None:  # pragma: no cover - transform returns both when given both
        raise RuntimeError("SVCCAResult.transform returned no Y variates.")
    raw = {}
    for name, M in ((a_run.name, A), (b_run.name, B)):
        top = np.argsort(M.var(axis=0))[::-1][:k]
        raw[name] = M[:, top]
    # How well does each neuron of A match its best neuron in B (|Pearson r|)?
    alive_a, alive_b = A[:, A.std(0) > 0], B[:, B.std(0) > 0]
    za = (alive_a - alive_a.mean(0)) / alive_a.std(0)
    zb = (alive_b - alive_b.mean(0)) / alive_b.std(0)
    corr = np.abs(za.T @ zb) / len(za)
    match = float(corr.max(axis=1).mean())
    top = res.correlations[:k]
    finding = (
        f"Between {a_run.name} and {b_run.name} at {layer}, the top {k} SVCCA directions "
        f"correlate {', '.join(f'{c:.3f}' for c in top)}, while a neuron's best match in "
        f"the other network correlates only {match:.2f} on average: the runs share "
        f"directions, not neurons."
    )
    return Interpretability(
        layer,
        np.asarray(y),
        raw,
        {a_run.name: u[:, :k], b_run.name: v[:, :k]},
        top,
        match,
        finding,
    )


# ---------------------------------------------------------------------------- 4. compression


@dataclass(frozen=True)
class Compression:
    layer: str
    ks: np.ndarray
    accuracy: dict[str, np.ndarray]
    full: float
    finding: str


def _reconstruct(
    scores_tr: np.ndarray, A_tr: np.ndarray, mean: np.ndarray, scores_te: np.ndarray
) -> np.ndarray:
    """Least-squares reconstruction of the layer from k scores (fitted on train)."""
    beta, *_ = np.linalg.lstsq(scores_tr, A_tr - mean, rcond=None)
    return mean + scores_te @ beta


def compression(runs: Sequence[Run], data: Digits, *, layer: str = "fc1") -> Compression:
    """Project a layer onto its top-k CCA / PLS / PCA directions, run the rest, score."""
    import torch

    a_run, b_run = runs[0], runs[1]
    model = a_run.load()
    head = model.logits
    A_tr = final_activations(a_run, data.x_train)[layer].astype(np.float64)
    B_tr = final_activations(b_run, data.x_train)[layer].astype(np.float64)
    A_te = final_activations(a_run, data.x_test)[layer].astype(np.float64)
    mean = A_tr.mean(axis=0)
    cca_res = svcca.cca(A_tr, B_tr, epsilon=1e-6)
    pls_res = svcca.pls(A_tr, B_tr)
    pca_res = svcca.pca(A_tr)
    weights = {
        "CCA (shared with another seed)": cca_res.weights_x,
        "PLS (shared with another seed)": pls_res.weights_x,
        "PCA": pca_res.components,
    }
    kmax = min(w.shape[1] for w in weights.values())
    ks = np.array(sorted({min(2**i, kmax) for i in range(12)} | {kmax}))

    def acc(H: np.ndarray) -> float:
        with torch.no_grad():
            pred = head(torch.from_numpy(H.astype(np.float32))).argmax(1).numpy()
        return float((pred == data.y_test).mean())

    full = acc(A_te)
    curves = {}
    for name, W in weights.items():
        vals = []
        for k in ks:
            H = _reconstruct((A_tr - mean) @ W[:, :k], A_tr, mean, (A_te - mean) @ W[:, :k])
            vals.append(acc(H))
        curves[name] = np.array(vals)

    def first_k(v: np.ndarray) -> str:
        hit = np.flatnonzero(v >= 0.95 * full)
        return str(int(ks[hit[0]])) if hit.size else f">{int(ks[-1])}"

    names = list(curves)
    finding = (
        f"{layer} of {a_run.name} (full test accuracy {full:.3f}, {A_tr.shape[1]} neurons) "
        f"keeps 95% of it with k = {first_k(curves[names[0]])} CCA, "
        f"{first_k(curves[names[1]])} PLS and {first_k(curves[names[2]])} PCA directions; "
        f"at k = {int(ks[min(2, len(ks) - 1)])}: "
        + ", ".join(f"{n.split(' ')[0]} {v[min(2, len(ks) - 1)]:.3f}" for n, v in curves.items())
        + "."
    )
    return Compression(layer, ks, curves, full, finding)


# ---------------------------------------------------------------------------- 5. memorising


@dataclass(frozen=True)
class GroupSimilarity:
    layers: tuple[str, ...]
    groups: dict[str, np.ndarray]  # group -> (n_pairs, L) PWCCA
    accuracies: dict[str, tuple[float, float]]  # group -> (train, test) mean
    finding: str


def generalising_vs_memorising(
    groups: Mapping[str, Sequence[Run]], x: np.ndarray
) -> GroupSimilarity:
    """Within each group, PWCCA between every pair of networks, per layer."""
    first = next(iter(groups.values()))[0]
    layers = tuple(LAYERS[first.arch])
    out, accs = {}, {}
    for gname, runs in groups.items():
        acts = [final_activations(r, x) for r in runs]
        rows = []
        for i, j in combinations(range(len(runs)), 2):
            rows.append([svcca.pwcca(acts[i][n], acts[j][n]).score for n in layers])
        out[gname] = np.array(rows)
        accs[gname] = (
            float(np.mean([r.train_accuracy[-1] for r in runs])),
            float(np.mean([r.test_accuracy[-1] for r in runs])),
        )
    names = list(out)
    g, m = out[names[0]].mean(0), out[names[1]].mean(0)
    more = int(np.sum(g > m))
    finding = (
        f"PWCCA within {names[0]} networks (train/test accuracy "
        f"{accs[names[0]][0]:.2f}/{accs[names[0]][1]:.2f}) vs within {names[1]} networks "
        f"({accs[names[1]][0]:.2f}/{accs[names[1]][1]:.2f}), per layer: "
        + ", ".join(f"{n} {a:.2f} vs {b:.2f}" for n, a, b in zip(layers, g, m, strict=True))
        + f"; the generalising group is more alike in {more} of {len(layers)} layers."
    )
    return GroupSimilarity(layers, out, accs, finding)


# ---------------------------------------------------------------------------- coefficients


@dataclass(frozen=True)
class Coefficients:
    curves: dict[str, np.ndarray]
    baselines: dict[str, np.ndarray]
    finding: str


def coefficients(runs: Sequence[Run], x: np.ndarray, *, seed: int = 0) -> Coefficients:
    """SVCCA coefficients between two seeds, against Gaussian data of the same sizes."""
    a = final_activations(runs[0], x, conv="flatten")
    b = final_activations(runs[1], x, conv="flatten")
    rng = np.random.default_rng(seed)
    curves, baselines, parts = {}, {}, []
    for name in LAYERS[runs[0].arch][1:3]:
        ra, rb = reduce(a[name]), reduce(b[name])
        rho = correlations(ra, rb)
        n = ra.q.shape[0]
        base = svcca.cca(rng.standard_normal((n, ra.k)), rng.standard_normal((n, rb.k)))
        key = f"{name} ({ra.k} vs {rb.k} dirs)"
        curves[key], baselines[key] = rho, base.correlations
        above = int(np.sum(rho > base.correlations.max()))
        parts.append(
            f"{name}: mean {rho.mean():.2f} vs {base.correlations.mean():.2f} for random data, "
            f"{above} of {rho.size} coefficients above the largest random one"
        )
    finding = f"SVCCA between {runs[0].name} and {runs[1].name}: " + "; ".join(parts) + "."
    return Coefficients(curves, baselines, finding)
