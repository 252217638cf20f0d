"""The similarity matrices of the layer-identification check (Kornblith et al. 2019).

A row of the table is a registered measure, named as :data:`svcca.MEASURES` names it,
with its parameters where they differ from the defaults (``cka_rbf (bandwidth=0.4)``)
and a result field where the row reads one other than the score (``cca
[mean_squared]``, Kornblith's R²_CCA). The paper's rows are computed by fast paths (one
joint cross-product per pair of networks, each layer's Gram matrix once); every other
registered measure that can run on whole activations (:func:`svcca._measures.engines_for`)
is a row too, through :func:`svcca.pairwise`, so a measure registered later is scored
without a change here.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import svcca
from svcca._measures import (
    CCASide,
    ReducedSide,
    cca_of_sides,
    center_gram,
    cka_ratio,
    engines_for,
    explained,
    gram_linear,
    gram_rbf,
    measure_label,
    prepare_side,
    pwcca_weights,
    reduce_side,
    svcca_from_reduced,
)
from svcca._validation import SVCCAWarning

__all__ = [
    "PAPER_CIFAR10",
    "RBF_WIDTHS",
    "identification_accuracy",
    "label",
    "registry_rows",
    "rows",
    "similarity_matrices",
]

RBF_WIDTHS = (0.2, 0.4, 0.8)


def label(name: str, params: dict[str, Any] | None = None, field: str | None = None) -> str:
    """A row's name: the registry's name, its non-default parameters, the field read
    (:func:`svcca._measures.measure_label`).

    >>> label("cka_rbf", {"bandwidth": 0.4})
    'cka_rbf (bandwidth=0.4)'
    """
    return measure_label(name, params, field)


def rbf_key(width: float) -> str:
    return label("cka_rbf", {"bandwidth": width})


CCA_R2 = label("cca", field="mean_squared")
SVCCA_R2 = label("svcca", field="mean_squared")

# The rows of Kornblith et al.'s Table 2 (plus debiased linear CKA and Procrustes), with
# the table's accuracy on ten 10-layer CNNs on CIFAR-10, in % (None: not in the paper).
PAPER_CIFAR10: dict[str, float | None] = {
    "cca": 1.4,
    CCA_R2: 10.6,
    "svcca": 9.9,
    SVCCA_R2: 15.1,
    "pwcca": 11.1,
    "regression": 45.4,
    "cka_linear": 99.3,
    rbf_key(0.2): 80.6,
    rbf_key(0.4): 99.1,
    rbf_key(0.8): 99.3,
    "cka_linear_debiased": None,
    "procrustes": None,
}
# The registered measures those rows compute (by their fast paths).
_PAPER_MEASURES = frozenset(
    {
        "cca",
        "svcca",
        "pwcca",
        "regression",
        "cka_linear",
        "cka_rbf",
        "cka_linear_debiased",
        "procrustes",
    }
)


def registry_rows() -> list[str]:
    """The registered measures beyond the paper's rows that the check scores: every one
    :func:`svcca.pairwise` serves (not a minibatch estimator), in registration order."""
    return [
        name
        for name, m in svcca.MEASURES.items()
        if name not in _PAPER_MEASURES and engines_for(m)["pairwise"] is None
    ]


def rows() -> list[str]:
    """Every row of the table, in order: the paper's, then the other registered measures."""
    return [*PAPER_CIFAR10, *registry_rows()]


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
    keys = ("cca", CCA_R2, "svcca", SVCCA_R2, "pwcca", "regression")
    out = {k: np.zeros((La, Lb)) for k in (*keys, "cka_linear", "procrustes")}
    for i in range(La):
        sx, rx = a.sides[i], a.reduced[i]
        for j in range(Lb):
            sy, ry = b.sides[j], b.reduced[j]
            sxy = sab[a.sl(i), b.sl(j)]
            c = cca_of_sides(sx, sy, sxy, n, threshold=0.98, epsilon=0.0)
            out["cca"][i, j], out[CCA_R2][i, j] = c.score, c.mean_squared
            red = rx.directions.T @ sxy @ ry.directions
            v = svcca_from_reduced(n, rx, ry, red, keep=keep, variance="explained", threshold=0.98)
            out["svcca"][i, j], out[SVCCA_R2][i, j] = v.score, v.mean_squared
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
        (rbf_key(w), functools.partial(_rbf, bandwidth=w), False) for w in RBF_WIDTHS
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


def registry_matrices(nets: Sequence[Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """Every other registered measure (:func:`registry_rows`) between every two layers
    of all networks, through :func:`svcca.pairwise` (each layer's side prepared once):
    ``(N L, N L)`` matrices as :func:`_gram_matrices`'s, an asymmetric measure
    symmetrised (``S + S^T``), one where smaller is more similar negated."""
    flat = [X for layers in nets for X in layers]
    out = {}
    for name in registry_rows():
        m = svcca.MEASURES[name]
        try:
            S = np.array(svcca.pairwise(flat, measure=name).values)
        except (ValueError, svcca.DegenerateError) as err:
            # a measure that refuses these activations (cosine neighbours of an all-zero
            # ReLU row) scores nothing here: its matrix is NaN, and the check reports it
            # as refused with this reason rather than ranking NaNs
            warnings.warn(
                f"sanity check: {name} refused these activations, so its row is left out: "
                f"{err}",
                SVCCAWarning,
                stacklevel=2,
            )
            out[name] = np.full((len(flat), len(flat)), np.nan)
            continue
        if not m.symmetric:
            S = S + S.T
        out[name] = S if m.larger_is_more_similar else -S
    return out


def similarity_matrices(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, keep: float = 0.99
) -> dict[str, np.ndarray]:
    """For two networks' layers, ``{row: (L_a, L_b) matrix}`` in :func:`rows` order:
    entry ``(i, j)`` compares layer ``i`` of ``a`` (the query) with layer ``j`` of ``b``
    (the candidate); larger is more similar.

    Each entry is what the single-pair function gives: ``svcca.cca(X, Y).score`` and
    ``.mean_squared``, ``svcca.svcca(X, Y, keep=keep)`` likewise,
    ``pwcca(X, Y).score + pwcca(Y, X).score``, ``regression_fit(X, Y)``'s
    ``r2_x_given_y + r2_y_given_x``, ``cka(X, Y)`` (linear, RBF at 0.2, 0.4 and 0.8 of
    the median distance, linear debiased), ``procrustes(X, Y).score``, and every other
    registered measure's ``svcca.MEASURES[name].score(X, Y)``; the Moments-based ones
    from :class:`svcca.Moments` blocks of one joint cross-product (each layer's Gram
    block and SVCCA directions computed once), the kernel ones from each layer's centred
    Gram matrix computed once, the others through :func:`svcca.pairwise`.
    """
    A, B = _Net.of(a, keep), _Net.of(b, keep)
    out = _moment_matrices(A, B, keep)
    La = len(a)
    for key, S in {**_gram_matrices([a, b]), **registry_matrices([a, b])}.items():
        out[key] = S[:La, La:]
    return {k: out[k] for k in rows()}


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
