"""Layer 3, measures: each written once as *prepare a side* and *combine a cross block*.

CCA, SVCCA (exact and two-pass), PWCCA, PLS, PCA, the CKA family, Procrustes and shape
metrics, regression fit and RSA. The engines (pairwise, stats, conv) and the
integrations call these functions; nothing here imports an engine or an integration.
"""

from svcca.measures._cca import (
    CCAResult,
    CCASide,
    canonical_correlations,
    cca,
    cca_of_sides,
    prepare_side,
    roundoff_bound,
    svd_of_cross,
)
from svcca.measures._cka import CKAResult, check_bandwidth, cka, cka_ratio
from svcca.measures._engines import ENGINES, engines_for, refusal
from svcca.measures._gram import center_gram, gram_linear, gram_rbf, unit_scaled
from svcca.measures._label import measure_label
from svcca.measures._linalg import EPS, Pruned, clip_roundoff
from svcca.measures._minibatch import MinibatchCKA
from svcca.measures._pca import PCAResult, pca
from svcca.measures._pls import PLSResult, pls
from svcca.measures._pwcca import PWCCAResult, pwcca, pwcca_weights
from svcca.measures._registry import MEASURES, Measure, Score, invariance_table, register
from svcca.measures._regression import RegressionResult, explained, regression_fit
from svcca.measures._rsa import RSAResult, compare_rdms, rdm, rsa
from svcca.measures._shape import (
    ProcrustesResult,
    ShapeResult,
    partial_whitening,
    procrustes,
    shape_distance,
)
from svcca.measures._svcca import ReducedSide, SVCCAResult, reduce_side, svcca, svcca_from_reduced
from svcca.measures._two_pass import svcca_two_pass

__all__ = [
    "MEASURES",
    "CCAResult",
    "CKAResult",
    "Measure",
    "MinibatchCKA",
    "PCAResult",
    "PLSResult",
    "PWCCAResult",
    "ProcrustesResult",
    "Pruned",
    "RSAResult",
    "RegressionResult",
    "SVCCAResult",
    "Score",
    "ShapeResult",
    "cca",
    "cka",
    "compare_rdms",
    "pca",
    "pls",
    "procrustes",
    "pwcca",
    "rdm",
    "register",
    "regression_fit",
    "rsa",
    "shape_distance",
    "svcca",
    "svcca_two_pass",
]

# The small internal API the engines (stats, conv, pairwise) reach the measures through,
# named here so that no engine imports another package's private module.
__all__ += [
    "ENGINES",
    "EPS",
    "CCASide",
    "ReducedSide",
    "cca_of_sides",
    "cka_ratio",
    "gram_rbf",
    "pwcca_weights",
    "reduce_side",
    "svcca_from_reduced",
    "canonical_correlations",
    "check_bandwidth",
    "center_gram",
    "clip_roundoff",
    "engines_for",
    "explained",
    "invariance_table",
    "measure_label",
    "gram_linear",
    "partial_whitening",
    "prepare_side",
    "refusal",
    "roundoff_bound",
    "svd_of_cross",
    "unit_scaled",
]
