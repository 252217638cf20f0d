"""ReSi's measures of distance matrices, matching, subspaces and one side, declared
beside the library's own (docs/field_measures.md; registered on import, last).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcca._measures._declared import _CCA, _LINEAR_CKA
from svcca._measures._matching import (
    aligned_cosine,
    correlation_match,
    permutation_procrustes,
    procrustes_size_shape,
)
from svcca._measures._one_side import (
    _concentricity_combine,
    _uniformity_combine,
    concentricity,
    concentricity_difference,
    magnitude_difference,
    uniformity,
    uniformity_difference,
)
from svcca._measures._registry import Measure, register
from svcca._measures._rsm import (
    distance_correlation,
    distance_correlation_combine,
    distance_correlation_prepare,
    rsm_norm_combine,
    rsm_norm_difference,
    rsm_prepare,
)
from svcca._measures._subspace import eigenspace_overlap, gulp

_EUCLIDEAN_GEOMETRY = frozenset({"orthogonal", "translation", "permutation"})
_CORRELATIONS = frozenset(
    {"isotropic_scaling", "per_feature_scaling", "translation", "permutation"}
)
_COLUMN_SPACE = frozenset(
    {"orthogonal", "isotropic_scaling", "per_feature_scaling", "invertible_linear", "permutation"}
)
_INF = float("inf")


def _gulp_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """ridge = 0 is a function of the canonical correlations (every invertible map);
    ridge > 0 of each side's covariance scaled to unit trace (rotations and scale)."""
    return _CCA if float(params.get("ridge", 0.0)) == 0.0 else _LINEAR_CKA


for _m in (
    Measure(
        "rsm_norm_difference",
        rsm_norm_difference,
        "samples",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_EUCLIDEAN_GEOMETRY,
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        params=("norm", "block_size", "tol"),
        prepare=rsm_prepare,
        combine=rsm_norm_combine,
        depends_on_n=True,  # a norm of an n x n matrix: grows like n
        description="norm of the difference of the Euclidean distance matrices (ReSi; "
        "norm: spectral, frobenius, triangle)",
    ),
    Measure(
        "distance_correlation",
        distance_correlation,
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("block_size",),
        prepare=distance_correlation_prepare,
        combine=distance_correlation_combine,
        description="distance correlation of the Euclidean distance matrices (blocked)",
    ),
    Measure(
        "hard_correlation_match",
        correlation_match,
        "moments",
        fixed={"mode": "hard"},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_CORRELATIONS,
        description="mean correlation of neurons matched one to one (assignment problem)",
    ),
    Measure(
        "soft_correlation_match",
        correlation_match,
        "moments",
        fixed={"mode": "soft"},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_CORRELATIONS,
        description="mean correlation of each neuron with its best match, both ways",
    ),
    Measure(
        "permutation_procrustes",
        permutation_procrustes,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=frozenset({"permutation"}),
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        depends_on_n=True,  # an unnormalised Frobenius distance: grows like sqrt(n)
        description="||XP - Y||_F over permutations P of the raw data (ReSi)",
    ),
    Measure(
        "procrustes_size_shape",
        procrustes_size_shape,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_EUCLIDEAN_GEOMETRY,
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        depends_on_n=True,  # an unnormalised Frobenius distance: grows like sqrt(n)
        description="Procrustes size-and-shape distance: centred, rotated, not scaled",
    ),
    Measure(
        "aligned_cosine",
        aligned_cosine,
        "samples",
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=frozenset({"orthogonal", "isotropic_scaling", "permutation"}),
        description="mean cosine of datapoints after the Procrustes rotation (raw data)",
    ),
    Measure(
        "eigenspace_overlap",
        eigenspace_overlap,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_COLUMN_SPACE,
        description="overlap of the raw column spaces, ||U_x^T U_y||_F^2 / max(p, q)",
    ),
    Measure(
        "gulp",
        gulp,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_gulp_invariances,
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        params=("ridge",),
        description="GULP distance of ridge predictors (ridge: lambda, 0 as ReSi)",
    ),
    Measure(
        "magnitude_difference",
        magnitude_difference,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=frozenset({"orthogonal", "permutation"}),
        larger_is_more_similar=False,
        score_field="distance",
        description="| ||mean X|| - ||mean Y|| | (ReSi)",
    ),
    Measure(
        "concentricity_difference",
        concentricity_difference,
        "samples",
        symmetric=True,
        range=(0.0, 2.0),
        invariances=frozenset({"orthogonal", "isotropic_scaling", "permutation"}),
        larger_is_more_similar=False,
        score_field="distance",
        prepare=concentricity,
        combine=_concentricity_combine,
        description="difference of the mean cosines of datapoints to their mean (ReSi)",
    ),
    Measure(
        "uniformity_difference",
        uniformity_difference,
        "samples",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_EUCLIDEAN_GEOMETRY,
        larger_is_more_similar=False,
        score_field="distance",
        params=("t", "block_size"),
        prepare=uniformity,
        combine=_uniformity_combine,
        description="difference of the log mean Gaussian potentials (ReSi; blocked)",
    ),
):
    register(_m)
del _m
