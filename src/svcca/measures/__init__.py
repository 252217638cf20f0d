"""Layer 3, measures: each written once as *prepare a side* and *combine a cross block*.

CCA, SVCCA (exact and two-pass), PWCCA, PLS, PCA, the CKA family, Procrustes and shape
metrics, regression fit and RSA. The engines (pairwise, stats, conv) and the
integrations call these functions; nothing here imports an engine or an integration.
"""

from svcca.measures._cca import CCAResult, cca
from svcca.measures._cka import CKAResult, cka
from svcca.measures._linalg import Pruned
from svcca.measures._minibatch import MinibatchCKA
from svcca.measures._neighbours import cknna, cycle_knn, mutual_knn
from svcca.measures._neighbours_resi import jaccard_knn, rank_similarity, second_order_cosine
from svcca.measures._neighbours_side import NeighbourResult
from svcca.measures._pca import PCAResult, pca
from svcca.measures._pls import PLSResult, pls
from svcca.measures._pwcca import PWCCAResult, pwcca
from svcca.measures._registry import MEASURES, Measure, Score, register
from svcca.measures._regression import RegressionResult, regression_fit
from svcca.measures._rsa import RSAResult, compare_rdms, rdm, rsa
from svcca.measures._shape import ProcrustesResult, ShapeResult, procrustes, shape_distance
from svcca.measures._svcca import SVCCAResult, svcca
from svcca.measures._two_pass import svcca_two_pass

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
]
