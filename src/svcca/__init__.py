"""svcca: compare the representations of neural networks.

Every linear measure here (CCA, SVCCA, PWCCA, PLS, PCA, linear CKA, Procrustes,
regression) is computed from one mergeable sufficient statistic, :class:`Moments`, so
the same code serves whole arrays, batches streamed from disk, and partial results
merged from elsewhere.

Arrays are ``(n_samples, n_features)``; two representations share ``n_samples``. The
original google/svcca API, in its ``(neurons, datapoints)`` orientation, lives in
:mod:`svcca.compat`; convolutional layers in :mod:`svcca.conv`; null baselines,
permutation tests and confidence intervals in :mod:`svcca.stats`. PyTorch activation
capture (:mod:`svcca.torch`) and plots (:mod:`svcca.plot`) are imported on demand.
"""

from svcca import compat, conv, stats
from svcca._cca import CCAResult, cca
from svcca._cka import CKAResult, cka
from svcca._linalg import Pruned
from svcca._minibatch import MinibatchCKA
from svcca._moments import Moments
from svcca._pairwise import PairwiseResult, pairwise
from svcca._pca import PCAResult, pca
from svcca._pls import PLSResult, pls
from svcca._pwcca import PWCCAResult, pwcca
from svcca._regression import RegressionResult, regression_fit
from svcca._rsa import RSAResult, compare_rdms, rdm, rsa
from svcca._shape import ProcrustesResult, ShapeResult, procrustes, shape_distance
from svcca._streaming import svcca_two_pass
from svcca._svcca import SVCCAResult, svcca
from svcca._validation import SVCCAWarning

__version__ = "0.1.0"

__all__ = [
    "CCAResult",
    "CKAResult",
    "MinibatchCKA",
    "Moments",
    "PCAResult",
    "PLSResult",
    "PWCCAResult",
    "PairwiseResult",
    "ProcrustesResult",
    "Pruned",
    "RSAResult",
    "RegressionResult",
    "SVCCAResult",
    "SVCCAWarning",
    "ShapeResult",
    "cca",
    "cka",
    "compare_rdms",
    "compat",
    "conv",
    "pairwise",
    "pca",
    "pls",
    "procrustes",
    "pwcca",
    "rdm",
    "regression_fit",
    "rsa",
    "shape_distance",
    "stats",
    "svcca",
    "svcca_two_pass",
]
