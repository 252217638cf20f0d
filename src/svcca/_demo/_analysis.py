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
from svcca._demo._claims import (
    chain_claims,
    crossing_claims,
    dynamics_finding,
    extreme_claims,
    fisher_interval,
    group_claims,
)
from svcca._demo._train import LAYERS, Digits, Run
from svcca._demo._uncertain import Claim, FewRows, cell_statistics, iv, method, say

__all__ = [
    "class_sensitivity",
    "cka_with_final",
    "cka_with_final_self",
    "coefficients",
    "compression",
    "generalising_vs_memorising",
    "interpretability",
    "learning_dynamics",
    "logit_correlation",
]

KEEP = 0.99  # SVCCA: keep the singular directions explaining 99% of the variance.


def _capture_series(run: Run, x: np.ndarray, epochs: Sequence[int]) -> list[dict[str, Any]]:
    import torch

    from svcca._demo._train import make_model
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


def cka_with_final(series: Sequence[Mapping[str, np.ndarray]], layers: Sequence[str]) -> np.ndarray:
    """Linear CKA of every layer at every step with every layer at the last step.

    ``out[t, i, j]`` compares ``layers[i]`` at step ``t`` with ``layers[j]`` in
    ``series[-1]``, shape ``(T, L, L)``. One :func:`svcca.pairwise` call: each
    representation is prepared once and every pair is one block of a shared GEMM.
    """
    rows = {f"{t}/{name}": acts[name] for t, acts in enumerate(series) for name in layers}
    cols = {name: series[-1][name] for name in layers}
    values = svcca.pairwise(rows, cols, measure="cka_linear").values
    return np.asarray(values).reshape(len(series), len(layers), len(layers))


def cka_with_final_self(
    series: Sequence[Mapping[str, np.ndarray]], layers: Sequence[str]
) -> np.ndarray:
    """The diagonal of :func:`cka_with_final`, shape ``(T, L)``, without the rest.

    One :func:`svcca.pairwise` call per layer (its steps against its last step): about
    half the work of the full ``(T, L, L)`` when only the diagonal is wanted.
    """
    out = np.zeros((len(series), len(layers)))
    for i, name in enumerate(layers):
        rows = [acts[name] for acts in series]
        out[:, i] = np.asarray(svcca.pairwise(rows, [rows[-1]], measure="cka_linear").values)[:, 0]
    return out


@dataclass(frozen=True)
class LearningDynamics:
    layers: tuple[str, ...]
    epochs: tuple[int, ...]
    panes: np.ndarray  # (T', L, L), first run: layer i at epoch t vs layer j at the end
    to_final: np.ndarray  # (runs, T, L): each layer at epoch t vs itself at the end
    crossing: np.ndarray  # (runs, L): first epoch where to_final >= threshold
    own_row: np.ndarray  # (L,) first run: first epoch from which row i peaks at column i
    threshold: float
    run_names: tuple[str, ...]
    finding: str  # what the first run's panes show
    convergence_finding: str  # what the to_final curves over all runs show
    falls: tuple[Claim, ...] = ()  # layer i above layer i + 1 after epoch 1, each step
    crossings: tuple[Claim, ...] = ()  # layer i + 1 crosses after layer i, each step


def learning_dynamics(
    runs: Sequence[Run], x: np.ndarray, *, threshold: float = 0.9, pane_epochs: int = 8
) -> LearningDynamics:
    """Linear CKA of every layer at every epoch with every layer of the final network.

    The first run's panes come from :func:`cka_with_final`, the other runs' similarity
    to their final selves from :func:`cka_with_final_self`. Linear CKA rather than SVCCA
    here: SVCCA is invariant to invertible linear maps, so on these small networks a
    layer at initialisation already scores high against its final self (0.74 to 0.95 on
    the full run's first CNN, not in depth order) and leaves little room to see an
    ordering; linear CKA starts lower and spreads the layers apart (docs/demo.md).

    Both orders the convergence finding reads are tested step by step: the similarity
    after epoch 1 (each layer with its final self) per run by the paired block jackknife
    over the images (:func:`~svcca._demo._claims.chain_claims`), the crossing epochs
    across runs (:func:`~svcca._demo._claims.crossing_claims`).
    """
    layers = tuple(LAYERS[runs[0].arch])
    T = len(runs[0].checkpoints)
    epochs = tuple(range(T))
    e1 = min(1, T - 1)
    diagonals, cells = [], []
    panes = np.empty((0, 0, 0))
    for r, run in enumerate(runs):
        series = _capture_series(run, x, epochs)
        if r == 0:
            panes = cka_with_final(series, layers)
            diagonals.append(np.diagonal(panes, axis1=1, axis2=2))
        else:
            diagonals.append(cka_with_final_self(series, layers))
        cells.append([cell_statistics(series[e1][n], series[-1][n]) for n in layers])
        del series
    to_final = np.stack(diagonals)  # (runs, T, L)
    above = to_final >= threshold
    crossing = np.where(above.any(axis=1), above.argmax(axis=1), T - 1).astype(float)
    own = own_row_epochs(panes)
    shown = _spread(T, pane_epochs)
    few = FewRows()
    falls = tuple(chain_claims(layers, cells, measure="cka_linear", few=few))
    crossings = tuple(crossing_claims(layers, crossing, T - 1))
    return LearningDynamics(
        layers,
        tuple(shown),
        panes[list(shown)],
        to_final,
        crossing,
        own,
        threshold,
        tuple(r.name for r in runs),
        _panes_finding(runs[0].name, layers, panes, own),
        dynamics_finding(layers, falls, crossings, threshold, e1) + few.note(),
        falls,
        crossings,
    )


def own_row_epochs(panes: np.ndarray) -> np.ndarray:
    """Per layer, the first step from which its row of every pane peaks on the diagonal.

    ``out[i]`` is the smallest ``t`` such that for every step ``s >= t`` layer ``i`` at
    step ``s`` is more similar to its own final self than to any other final layer
    (``panes[s, i, i] > panes[s, i, j]`` for all ``j != i``), shape ``(L,)``. The last
    pane is the final network against itself, so ``out[i] <= T - 1``.
    """
    T, L = panes.shape[0], panes.shape[1]
    diag = np.diagonal(panes, axis1=1, axis2=2)  # (T, L)
    off = np.where(np.eye(L, dtype=bool), -np.inf, panes).max(axis=2)  # (T, L)
    peaks = diag > off
    out = np.full(L, T - 1)
    for i in range(L):
        misses = np.flatnonzero(~peaks[:, i])
        out[i] = 0 if misses.size == 0 else min(int(misses[-1]) + 1, T - 1)
    return out


def _bottom_up(values: np.ndarray, rising: bool) -> bool:
    """Do ``values`` (one per layer, input first) never decrease (``rising``) / increase?"""
    d = np.diff(values)
    return bool(np.all(d >= 0) if rising else np.all(d <= 0))


def _panes_finding(run: str, layers: tuple[str, ...], panes: np.ndarray, own: np.ndarray) -> str:
    """The panes' finding (first run): where each row peaks, and the first pane's diagonal."""
    d0 = np.diagonal(panes[0])
    order = "in depth order" if _bottom_up(own.astype(float), rising=True) else "not in depth order"
    return (
        f"In {run}'s panes, each row's brightest entry is on the diagonal (the layer is "
        f"closer to its own final self than to any other final layer) from this epoch on: "
        + ", ".join(f"{n} {int(e)}" for n, e in zip(layers, own, strict=True))
        + f" ({order} in this one seed, untested; the convergence figure tests the order "
        "over all seeds). At epoch 0 the diagonal reads "
        + ", ".join(f"{n} {v:.2f}" for n, v in zip(layers, d0, strict=True))
        + "."
    )


def _spread(T: int, m: int) -> list[int]:
    if T <= m:
        return list(range(T))
    return sorted({int(round(v)) for v in np.linspace(0, T - 1, m)})


# ---------------------------------------------------------------------------- 2. classes


def logit_correlation(A: np.ndarray, z: np.ndarray) -> float:
    """The canonical correlation between a layer ``A`` and one logit ``z`` (n,).

    A conv map ``(n, c, h, w)`` goes through DFT-CCA (:func:`svcca.conv.fourier_cca`).
    Otherwise CCA with one variable on one side has a single correlation, the multiple
    correlation ``R`` of ``z`` with its least-squares fit from the layer.
    """
    if A.ndim == 2:
        return svcca.cca(A, z[:, None]).score
    from svcca.conv import fourier_cca

    return fourier_cca(A, z[:, None], layout="nchw").score


@dataclass(frozen=True)
class ClassSensitivity:
    layers: tuple[str, ...]  # the layers drawn (the one the logits are linear in left out)
    classes: tuple[int, ...]
    matrix: np.ndarray  # (L, C), mean over runs
    per_run: np.ndarray  # (runs, L, C)
    linear_layer: str  # the layer the logits are an affine function of
    linear_min: float  # its smallest correlation with a logit over classes and runs
    finding: str
    extremes: tuple[Claim, ...] = ()  # per layer: most vs least correlated digit


def _layer_input(A: np.ndarray) -> np.ndarray:
    """What a logit's CCA with a layer sees: a conv map's spatial mean (DFT-CCA's zero
    frequency, :func:`logit_correlation`), else the layer itself; float64, (n, c)."""
    return np.asarray(A.mean(axis=(2, 3)) if A.ndim == 4 else A, dtype=np.float64)


def class_sensitivity(runs: Sequence[Run], x: np.ndarray) -> ClassSensitivity:
    """Canonical correlation between each class's logit and each layer.

    Conv layers go through DFT-CCA (:func:`svcca.conv.fourier_cca`, as the SVCCA
    README does it); against a single logit only the zero-frequency block can
    correlate, so this is the CCA of the layer's spatial mean with the logit. The layer
    just below the logits is measured but not drawn: a logit is an affine function of
    it (``logits = W h + b``), so its correlation is 1 by construction; the finding
    reports the measured value. Per drawn layer the most and the least correlated digit
    (of the mean over runs) are compared in every run by the paired block jackknife
    (:func:`~svcca._demo._claims.extreme_claims`, CCA of the spatial mean).
    """
    names = tuple(LAYERS[runs[0].arch][:-1])
    per_run = np.zeros((len(runs), len(names), 10))
    kept = []  # per run: the drawn layers' CCA inputs and the logits
    for r, run in enumerate(runs):
        acts = final_activations(run, x, conv="keep", dtype=np.float64)
        logits = acts[LAYERS[run.arch][-1]]
        for i, name in enumerate(names):
            for c in range(10):
                per_run[r, i, c] = logit_correlation(acts[name], logits[:, c])
        kept.append(([_layer_input(acts[n]) for n in names[:-1]], logits))
    linear_min = float(per_run[:, -1].min())
    per_run = per_run[:, :-1]
    layers = names[:-1]
    M = per_run.mean(axis=0)
    # Block statistics only for the two digits each layer's claim compares.
    picked = [{int(M[i].argmax()), int(M[i].argmin())} for i in range(len(layers))]
    cells = [
        [
            {c: cell_statistics(inputs[i], logits[:, c : c + 1]) for c in picked[i]}
            for i in range(len(layers))
        ]
        for inputs, logits in kept
    ]
    few = FewRows()
    extremes = tuple(extreme_claims(layers, cells, M, measure="cca", few=few))
    parts = [
        f"{n} from {c.second} {iv(c.second_interval)} to {c.first} "
        f"{iv(c.first_interval)} (mean over digits {M[i].mean():.2f})"
        for i, (n, c) in enumerate(zip(layers, extremes, strict=True))
    ]
    tests = "; ".join(
        say(c, lead=f"{n}, {c.first} minus {c.second}")
        for n, c in zip(layers, extremes, strict=True)
    )
    corr = ""
    if len(layers) >= 2:
        rho = float(np.corrcoef(M[0], M[1])[0, 1])
        lo, hi = fisher_interval(rho, M.shape[1])
        corr = (
            f". Across digits the {layers[0]} and {layers[1]} values correlate r = {rho:.2f} "
            f"[{lo:.2f}, {hi:.2f}] (Fisher's z over {M.shape[1]} digits: "
            + ("excludes 0" if lo > 0 or hi < 0 else "includes 0, so no relation is shown")
            + ")"
        )
    finding = (
        f"Mean over {len(runs)} seeds [95% interval across seeds], a digit's logit "
        f"correlates with "
        + "; with ".join(parts)
        + f". Most minus least correlated digit ({method(extremes)}): {tests}"
        + corr
        + f". {names[-1]} is left out of the figure: every logit is an affine function of "
        f"it, so its correlation is 1 by construction (measured: within "
        f"{max(abs(1 - linear_min), np.finfo(float).eps):.0e} of 1 for every digit and seed)."
        + few.note()
    )
    return ClassSensitivity(
        layers, tuple(range(10)), M, per_run, names[-1], linear_min, finding, extremes
    )


# ---------------------------------------------------------------------------- 3. interpret


@dataclass(frozen=True)
class Interpretability:
    layer: str
    labels: np.ndarray  # (n,)
    raw: dict[str, np.ndarray]  # name -> (n, k) the k highest-variance neurons
    neurons: dict[str, np.ndarray]  # name -> (k,) their indices in the layer
    directions: dict[str, np.ndarray]  # name -> (n, k) top SVCCA canonical variates
    kept: tuple[int, int]  # SVCCA directions kept on each side
    top_correlations: np.ndarray
    neuron_match: float
    finding: str


def interpretability(
    runs: Sequence[Run], x: np.ndarray, y: np.ndarray, *, layer: str = "fc1", k: int = 3
) -> Interpretability:
    """Two seeds' top SVCCA directions at ``layer`` against their highest-variance neurons."""
    a_run, b_run = runs[0], runs[1]
    A = final_activations(a_run, x, conv="flatten")[layer].astype(np.float64)
    B = final_activations(b_run, x, conv="flatten")[layer].astype(np.float64)
    res = svcca.svcca(A, B, keep=KEEP)
    u, v = res.transform(A, B)
    if v is None:  # pragma: no cover - transform returns both when given both
        raise RuntimeError("SVCCAResult.transform returned no Y variates.")
    raw, neurons = {}, {}
    for name, M in ((a_run.name, A), (b_run.name, B)):
        top = np.argsort(M.var(axis=0))[::-1][:k]
        raw[name], neurons[name] = M[:, top], top
    # How well does each neuron of A match its best neuron in B (|Pearson r|)?
    alive_a, alive_b = A[:, A.std(0) > 0], B[:, B.std(0) > 0]
    za = (alive_a - alive_a.mean(0)) / alive_a.std(0)
    zb = (alive_b - alive_b.mean(0)) / alive_b.std(0)
    corr = np.abs(za.T @ zb) / len(za)
    best = corr.max(axis=1)
    match = float(best.mean())
    top = res.correlations[:k]
    beaten = int(np.sum(best >= top[-1]))
    finding = (
        f"Between {a_run.name} and {b_run.name} at {layer} (SVCCA keeps {res.kept_x} and "
        f"{res.kept_y} of {A.shape[1]} directions), the top {k} SVCCA directions correlate "
        f"{', '.join(f'{c:.3f}' for c in top)}; a neuron's best match in the other network "
        f"correlates {match:.2f} on average, and {beaten} of {len(best)} live neurons "
        f"match as well as direction {k}"
        + (
            ": the runs share directions more closely than single neurons."
            if match < top[-1]
            else ": here single neurons match as closely as the directions."
        )
    )
    return Interpretability(
        layer,
        np.asarray(y),
        raw,
        neurons,
        {a_run.name: u[:, :k], b_run.name: v[:, :k]},
        (res.kept_x, res.kept_y),
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
    head_line = f"{layer} of {a_run.name} (full test accuracy {full:.3f}, {A_tr.shape[1]} neurons)"
    available = ", ".join(f"{n.split(' ')[0]} {w.shape[1]}" for n, w in weights.items())
    finding = (
        _compression_finding(head_line, ks, curves, full)
        + f" k runs to {kmax}, the fewest directions a method has ({available})."
    )
    return Compression(layer, ks, curves, full, finding)


def _compression_finding(
    head_line: str, ks: np.ndarray, curves: dict[str, np.ndarray], full: float
) -> str:
    def first_k(v: np.ndarray) -> str:
        hit = np.flatnonzero(v >= 0.95 * full)
        return str(int(ks[hit[0]])) if hit.size else f">{int(ks[-1])}"

    names = list(curves)
    return (
        f"{head_line} "
        f"keeps 95% of it with k = {first_k(curves[names[0]])} CCA, "
        f"{first_k(curves[names[1]])} PLS and {first_k(curves[names[2]])} PCA directions; "
        f"at k = {int(ks[min(2, len(ks) - 1)])}: "
        + ", ".join(f"{n.split(' ')[0]} {v[min(2, len(ks) - 1)]:.3f}" for n, v in curves.items())
        + "."
    )


# ---------------------------------------------------------------------------- 5. memorising


@dataclass(frozen=True)
class GroupSimilarity:
    layers: tuple[str, ...]
    groups: dict[str, np.ndarray]  # group -> (n_pairs, L) PWCCA
    accuracies: dict[str, tuple[float, float]]  # group -> (train, test) mean
    finding: str
    claims: tuple[Claim, ...] = ()  # per layer: first group more alike than the second


def generalising_vs_memorising(
    groups: Mapping[str, Sequence[Run]], x: np.ndarray
) -> GroupSimilarity:
    """Within each group, PWCCA between every pair of networks, per layer.

    The two groups' networks come in matching seeds, so pair ``(i, j)`` of the first
    group is compared with pair ``(i, j)`` of the second on the same images by the paired
    block jackknife, per layer (:func:`~svcca._demo._claims.group_claims`); intervals
    over the pairs drop one seed at a time.
    """
    names = list(groups)
    if len(names) != 2 or len(groups[names[0]]) != len(groups[names[1]]):
        raise ValueError(
            f"generalising_vs_memorising compares two groups of as many runs; got "
            f"{ {k: len(v) for k, v in groups.items()} }."
        )
    layers = tuple(LAYERS[groups[names[0]][0].arch])
    acts = {g: [final_activations(r, x) for r in runs] for g, runs in groups.items()}
    pairs = list(combinations(range(len(groups[names[0]])), 2))
    stats = {
        g: [[cell_statistics(a[i][n], a[j][n]) for n in layers] for i, j in pairs]
        for g, a in acts.items()
    }
    few = FewRows()
    claims, g1, g2 = group_claims(
        layers,
        stats[names[0]],
        stats[names[1]],
        pairs,
        measure="pwcca",
        few=few,
        names=(names[0], names[1]),
    )
    out = {names[0]: g1, names[1]: g2}
    accs = {
        g: (
            float(np.mean([r.train_accuracy[-1] for r in runs])),
            float(np.mean([r.test_accuracy[-1] for r in runs])),
        )
        for g, runs in groups.items()
    }
    held = sum(c.holds for c in claims)
    more = int(np.sum(g1.mean(0) > g2.mean(0)))
    finding = (
        f"PWCCA between pairs of networks trained on {names[0]} (train/test accuracy "
        f"{accs[names[0]][0]:.2f}/{accs[names[0]][1]:.2f}) vs on {names[1]} "
        f"({accs[names[1]][0]:.2f}/{accs[names[1]][1]:.2f}), mean over the {len(pairs)} "
        f"pairs of seeds [95% interval, leaving out one seed at a time], per layer "
        f"({method(claims)}): "
        + "; ".join(
            say(c, lead=f"{n} {iv(c.first_interval)} vs {iv(c.second_interval)}: difference")
            for n, c in zip(layers, claims, strict=True)
        )
        + f". The networks trained on {names[0]} are more alike in {more} of {len(layers)} "
        f"layers, and the difference holds in {held} of them." + few.note()
    )
    return GroupSimilarity(layers, out, accs, finding, tuple(claims))


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
        res = svcca.svcca(a[name], b[name], keep=KEEP)
        rho, ka, kb = res.correlations, res.kept_x, res.kept_y
        n = a[name].shape[0]
        base = svcca.cca(rng.standard_normal((n, ka)), rng.standard_normal((n, kb)))
        key = f"{name} ({ka} vs {kb} dirs)"
        curves[key], baselines[key] = rho, base.correlations
        above = int(np.sum(rho > base.correlations.max()))
        parts.append(
            f"{name} mean {rho.mean():.2f} vs {base.correlations.mean():.2f} for Gaussian data "
            f"of the same sizes, {above} of {rho.size} coefficients above the largest random one"
        )
    finding = f"SVCCA between {runs[0].name} and {runs[1].name}: " + "; ".join(parts) + "."
    return Coefficients(curves, baselines, finding)
