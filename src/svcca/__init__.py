"""svcca: compare the representations of neural networks.

Every linear measure here (CCA, SVCCA, PWCCA, PLS, PCA) is computed from one mergeable
sufficient statistic, :class:`Moments`, so the same code serves whole arrays, batches
streamed from disk, and partial results merged from elsewhere.

Arrays are ``(n_samples, n_features)``; two representations share ``n_samples``. The
original google/svcca API, in its ``(neurons, datapoints)`` orientation, lives in
:mod:`svcca.compat`.
"""

from svcca._cca import CCAResult, cca
from svcca._linalg import Pruned
from svcca._moments import Moments
from svcca._pca import PCAResult, pca
from svcca._pls import PLSResult, pls
from svcca._pwcca import PWCCAResult, pwcca
from svcca._svcca import SVCCAResult, svcca
from svcca._validation import SVCCAWarning

__version__ = "0.1.0"

__all__ = [
    "CCAResult",
    "Moments",
    "PCAResult",
    "PLSResult",
    "PWCCAResult",
    "Pruned",
    "SVCCAResult",
    "SVCCAWarning",
    "cca",
    "pca",
    "pls",
    "pwcca",
    "svcca",
]
