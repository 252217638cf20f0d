"""The neighbourhood measures, declared: platonic-rep's mutual k-NN, cycle k-NN and
CKNNA, ReSi's Jaccard k-NN, rank similarity and second-order cosine. Each prepares a side
(its exact k-nearest-neighbour lists, by a blocked search that never holds n x n) and
combines a pair of them (registered on import, after the library's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcca._measures._neighbours import (
    cknna,
    cknna_combine,
    cknna_prepare,
    cycle_knn,
    cycle_knn_combine,
    mutual_knn,
    mutual_knn_combine,
)
from svcca._measures._neighbours_resi import (
    jaccard_knn,
    jaccard_knn_combine,
    rank_similarity,
    rank_similarity_combine,
    second_order_cosine,
    second_order_cosine_combine,
    second_order_prepare,
)
from svcca._measures._neighbours_side import prepare_side
from svcca._measures._registry import Measure, register

_KNN_PARAMS = ("k", "distance", "clip_quantile", "block_bytes")


def _neighbour_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """Ranks of cosine distances or inner products ignore rotations, isotropic scaling and
    feature permutations (cosine: each row's scale too), not translation; Euclidean
    distances ignore translation as well. Clipping at a quantile of the entries acts on
    each entry: it keeps scaling and permutations only."""
    if params.get("clip_quantile") is not None:
        return frozenset({"isotropic_scaling", "permutation"})
    inv = {"orthogonal", "isotropic_scaling", "permutation"}
    if params.get("distance", "cosine") == "euclidean":
        inv.add("translation")
    return frozenset(inv)


for _m in (
    Measure(
        "mutual_knn",
        mutual_knn,
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_neighbour_invariances,
        params=_KNN_PARAMS,
        prepare=prepare_side,
        combine=mutual_knn_combine,
        depends_on_n=True,  # neighbourhoods of a fixed k: their share is k / n
        description="mutual k-NN: mean fraction of shared k nearest neighbours (k=10, cosine)",
    ),
    Measure(
        "cycle_knn",
        cycle_knn,
        "samples",
        symmetric=False,
        range=(0.0, 1.0),
        invariances=_neighbour_invariances,
        params=_KNN_PARAMS,
        prepare=prepare_side,
        combine=cycle_knn_combine,
        self_score=float("nan"),
        depends_on_n=True,  # neighbourhoods of a fixed k: their share is k / n
        description="cycle k-NN: fraction of points a Y-neighbour has among its X-neighbours",
    ),
    Measure(
        "cknna",
        cknna,
        "samples",
        symmetric=False,
        range=(-float("inf"), float("inf")),
        invariances=_neighbour_invariances,
        params=(*_KNN_PARAMS, "eps"),
        prepare=cknna_prepare,
        combine=cknna_combine,
        self_score=1.0,
        depends_on_n=True,  # neighbourhoods of a fixed k: their share is k / n
        description="CKNNA: unbiased CKA restricted to mutual k nearest neighbours (k=10)",
    ),
    Measure(
        "jaccard_knn",
        jaccard_knn,
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_neighbour_invariances,
        params=_KNN_PARAMS,
        prepare=prepare_side,
        combine=jaccard_knn_combine,
        depends_on_n=True,  # neighbourhoods of a fixed k: their share is k / n
        description="Jaccard similarity of the k-nearest-neighbour sets (ReSi; k=10, cosine)",
    ),
    Measure(
        "rank_similarity",
        rank_similarity,
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_neighbour_invariances,
        params=_KNN_PARAMS,
        prepare=prepare_side,
        combine=rank_similarity_combine,
        depends_on_n=True,  # neighbourhoods of a fixed k: their share is k / n
        description="rank similarity of the k-nearest-neighbour lists (ReSi; k=10, cosine)",
    ),
    Measure(
        "second_order_cosine",
        second_order_cosine,
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_neighbour_invariances,
        params=_KNN_PARAMS,
        prepare=second_order_prepare,
        combine=second_order_cosine_combine,
        depends_on_n=True,  # neighbourhoods of a fixed k: their share is k / n
        description="second-order cosine: neighbours' distance profiles (ReSi; k=10, cosine)",
    ),
):
    register(_m)
del _m
