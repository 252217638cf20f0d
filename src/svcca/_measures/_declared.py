"""The library's own measures, declared: the CCA family, PLS, the CKA family,
Procrustes and shape metrics, regression and RSA (registered on import, in this order).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svcca._measures._cca import cca
from svcca._measures._cka import cka
from svcca._measures._cka_sides import cka_side_bytes, combine_cka, permute_cka, prepare_cka
from svcca._measures._pls import pls
from svcca._measures._pwcca import pwcca
from svcca._measures._registry import Measure, register
from svcca._measures._regression import regression_fit
from svcca._measures._rsa import combine_rsa, permute_rsa, prepare_rsa, rsa, rsa_side_bytes
from svcca._measures._shape import procrustes, shape_distance
from svcca._measures._svcca import svcca

_LINEAR_CKA = frozenset({"orthogonal", "isotropic_scaling", "translation", "permutation"})
_CCA = frozenset(
    {
        "orthogonal",
        "isotropic_scaling",
        "per_feature_scaling",
        "translation",
        "invertible_linear",
        "permutation",
    }
)


def _shape_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """alpha = 0 is CCA (every invertible map); otherwise Procrustes' group."""
    return _CCA if float(params.get("alpha", 1.0)) == 0.0 else _LINEAR_CKA


def _rsa_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """Euclidean RDMs ignore rotations and shifts of the feature space; correlation RDMs
    (patterns of a datapoint across features) do not, but ignore scaling."""
    if params.get("metric", "euclidean") == "correlation":
        return frozenset({"isotropic_scaling", "permutation"})
    return _LINEAR_CKA


def _rbf_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """The median heuristic scales the width with the data; an absolute sigma does not."""
    if params.get("sigma") is not None:
        return frozenset({"orthogonal", "translation", "permutation"})
    return _LINEAR_CKA


for _m in (
    Measure(
        "svcca",
        svcca,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("keep", "variance", "threshold", "precision"),
        description="SVCCA: mean canonical correlation of the leading SVD directions (keep)",
    ),
    Measure(
        "cca",
        cca,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_CCA,
        params=("epsilon", "threshold", "precision"),
        description="mean canonical correlation of the whole layers (epsilon)",
    ),
    Measure(
        "pwcca",
        pwcca,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        # its weights sum |<h_i, x_j>| over the weighting side's neurons x_j: a rotation
        # or a rescaling of those neurons changes them
        invariances=frozenset({"isotropic_scaling", "translation", "permutation"}),
        params=("epsilon", "weight_by", "precision"),
        description="projection-weighted CCA, weighted by the side of smaller rank (epsilon)",
    ),
    Measure(
        "pls",
        pls,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("precision",),
        description="partial least squares; its score is linear CKA",
    ),
    Measure(
        "cka_linear",
        cka,
        "moments",
        fixed={"kernel": "linear"},
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("method", "precision"),
        description="linear CKA",
    ),
    Measure(
        "cka_linear_debiased",
        cka,
        "samples",
        prepare=prepare_cka,
        combine=combine_cka,
        permute=permute_cka,
        side_bytes=cka_side_bytes,
        fixed={"kernel": "linear", "debiased": True},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("method",),
        description="linear CKA, unbiased HSIC estimator",
    ),
    Measure(
        "cka_rbf",
        cka,
        "samples",
        prepare=prepare_cka,
        combine=combine_cka,
        permute=permute_cka,
        side_bytes=cka_side_bytes,
        fixed={"kernel": "rbf"},
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_rbf_invariances,
        params=("bandwidth", "sigma"),
        description="RBF-kernel CKA (bandwidth: times the median distance)",
    ),
    Measure(
        "cka_rbf_debiased",
        cka,
        "samples",
        prepare=prepare_cka,
        combine=combine_cka,
        permute=permute_cka,
        side_bytes=cka_side_bytes,
        fixed={"kernel": "rbf", "debiased": True},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_rbf_invariances,
        params=("bandwidth", "sigma"),
        description="RBF-kernel CKA, unbiased HSIC estimator (bandwidth)",
    ),
    Measure(
        "procrustes",
        procrustes,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        is_metric=True,
        description="orthogonal Procrustes similarity (its distance is a metric)",
    ),
    Measure(
        "shape_distance",
        shape_distance,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_shape_invariances,
        is_metric=True,
        params=("alpha", "kind"),
        description="Williams et al.'s shape metric, partial whitening alpha (1: Procrustes)",
    ),
    Measure(
        "regression",
        regression_fit,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        description="linear regression R^2, averaged over both directions",
    ),
    Measure(
        "rsa",
        rsa,
        "samples",
        prepare=prepare_rsa,
        combine=combine_rsa,
        permute=permute_rsa,
        side_bytes=rsa_side_bytes,
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_rsa_invariances,
        params=("metric", "compare"),
        description="RSA: Spearman correlation of Euclidean dissimilarity matrices",
    ),
):
    register(_m)
del _m
