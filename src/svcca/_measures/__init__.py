"""Layer 3, measures: each written once as *prepare a side* and *combine a cross block*.

CCA, SVCCA (exact and two-pass), PWCCA, PLS, PCA, the CKA family, Procrustes and shape
metrics, regression fit and RSA, each declared once in :data:`MEASURES`. The engines
(pairwise, stats, conv) and the integrations call these functions; nothing here imports
an engine or an integration.

The names after ``# internal`` in ``__all__`` are the package's *internal* API, for the
engines and integrations (the prepare/combine steps, the Gram and rank helpers the
resampling kernels reuse, the engine coverage); import them from ``svcca._measures``,
never from its modules.
"""

# The declarations register the measures on import, in the registry's order.
from svcca._measures._cca import (
    FLOAT32_COND_LIMIT,
    CCAResult,
    CCASide,
    canonical_correlations,
    cca,
    cca_from_moments,
    cca_of_sides,
    cross_label,
    prepare_side,
    roundoff_bound,
    svd_of_cross,
    thresholded_mean,
    with_offset,
)
from svcca._measures._cka import CKAResult, check_bandwidth, cka, cka_ratio, debiased_linear_hsic
from svcca._measures._engines import ENGINES, engines_for, refusal
from svcca._measures._gram import center_gram, gram_linear, gram_rbf, unit_scaled
from svcca._measures._label import measure_label
from svcca._measures._linalg import EPS, NUMERICAL_RTOL, Pruned, clip_roundoff, rank_rtol
from svcca._measures._minibatch import MinibatchCKA
from svcca._measures._neighbours import cknna, cycle_knn, mutual_knn
from svcca._measures._neighbours_resi import jaccard_knn, rank_similarity, second_order_cosine
from svcca._measures._neighbours_side import NeighbourResult
from svcca._measures._pca import PCAResult, pca
from svcca._measures._pls import PLSResult, pls
from svcca._measures._pwcca import PWCCAResult, pwcca, pwcca_weights
from svcca._measures._registry import MEASURES, Measure, Score, invariance_table, register
from svcca._measures._regression import RegressionResult, explained, regression_fit
from svcca._measures._rsa import RSAResult, compare_rdms, rdm, rdm_unchecked, rsa
from svcca._measures._shape import (
    ProcrustesResult,
    ShapeResult,
    partial_whitening,
    procrustes,
    shape_distance,
)
from svcca._measures._svcca import (
    ReducedSide,
    SVCCAResult,
    Variance,
    n_directions,
    reduce_side,
    svcca,
    svcca_from_reduced,
)
from svcca._measures._two_pass import FrequentDirections, ritz_side, svcca_two_pass

# isort: off
# The declarations register the measures on import, in the registry's order.
from svcca._measures import _declared  # noqa: F401
from svcca._measures import _declared_neighbours  # noqa: F401
from svcca._measures import _declared_field  # noqa: F401

# isort: on

from svcca._measures._independence import (
    ASYMPTOTIC_TESTS,
    BOUNDARY_MEASURES,
    FEW_ROWS_TEST,
    PowerTraces,
    bartlett_pvalue,
    bartlett_statistics,
    cca_of,
    hsic_linear_pvalue,
    null_correlations,
    warn_null_correlations,
)
from svcca._measures._permuters import fast_scorer, permutation_batches
from svcca._measures._replicates import (
    FEW_ROWS_RATIO,
    bootstrap_summary,
    check_level,
    choose_scale,
    jackknife_of_blocks,
    jackknife_summary,
    measure_summary,
    on_scale,
    quiet_scores,
)

__all__ = [
    "MEASURES",
    "CCAResult",
    "CKAResult",
    "Measure",
    "MinibatchCKA",
    "NeighbourResult",
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
    "cknna",
    "compare_rdms",
    "cycle_knn",
    "jaccard_knn",
    "mutual_knn",
    "pca",
    "pls",
    "procrustes",
    "pwcca",
    "rank_similarity",
    "rdm",
    "register",
    "regression_fit",
    "rsa",
    "second_order_cosine",
    "shape_distance",
    "svcca",
    "svcca_two_pass",
    # internal (see the docstring)
    "fast_scorer",
    "permutation_batches",
    "ASYMPTOTIC_TESTS",
    "BOUNDARY_MEASURES",
    "null_correlations",
    "PowerTraces",
    "bartlett_pvalue",
    "warn_null_correlations",
    "FEW_ROWS_TEST",
    "bartlett_statistics",
    "cca_of",
    "hsic_linear_pvalue",
    "FEW_ROWS_RATIO",
    "bootstrap_summary",
    "check_level",
    "choose_scale",
    "jackknife_of_blocks",
    "jackknife_summary",
    "measure_summary",
    "on_scale",
    "quiet_scores",
    "ENGINES",
    "CCASide",
    "EPS",
    "FLOAT32_COND_LIMIT",
    "FrequentDirections",
    "NUMERICAL_RTOL",
    "ReducedSide",
    "Variance",
    "canonical_correlations",
    "cca_from_moments",
    "cca_of_sides",
    "center_gram",
    "check_bandwidth",
    "cka_ratio",
    "clip_roundoff",
    "cross_label",
    "debiased_linear_hsic",
    "engines_for",
    "explained",
    "gram_linear",
    "gram_rbf",
    "invariance_table",
    "measure_label",
    "n_directions",
    "partial_whitening",
    "prepare_side",
    "pwcca_weights",
    "rank_rtol",
    "rdm_unchecked",
    "reduce_side",
    "refusal",
    "ritz_side",
    "roundoff_bound",
    "svcca_from_reduced",
    "svd_of_cross",
    "thresholded_mean",
    "unit_scaled",
    "with_offset",
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
    "refusal",
    "svcca_from_reduced",
    "canonical_correlations",
    "check_bandwidth",
    "center_gram",
    "clip_roundoff",
    "engines_for",
    "explained",
    "invariance_table",
    "measure_label",
    "measure_label",
    "gram_linear",
    "partial_whitening",
    "prepare_side",
    "refusal",
    "roundoff_bound",
    "svd_of_cross",
    "unit_scaled",
]
