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

The package is layered; each layer imports only the ones above it in this list::

    _validation, _progress     argument checks, warnings, the progress contract
    _moments/                  Moments: the mergeable sufficient statistic, row blocks
    _sources/                  arrays, memmaps, h5py/zarr, dask, torch tensors -> Moments
    _measures/                 every measure, declared once (MEASURES), prepare + combine
    _engines/, stats/, conv/   pairwise engine, statistics and intervals, DFT-CCA
    compat/, torch/, plot/, _demo/, _cli/   integrations

Underscored packages are internal; the public names are this package's ``__all__`` and
those of ``svcca.torch``, ``svcca.conv``, ``svcca.stats``, ``svcca.plot`` and
``svcca.compat``.

``tests/test_layers.py`` checks this order for every import, lazy ones included.
"""

from svcca import compat, conv, stats  # noqa: E402  (engines and compat, after the core)
from svcca._device import DeviceMemoryError, on_device
from svcca._engines import PairwiseResult, pairwise
from svcca._measures import (
    MEASURES,
    CCAResult,
    CKAResult,
    Measure,
    MinibatchCKA,
    NeighbourResult,
    PCAResult,
    PLSResult,
    ProcrustesResult,
    Pruned,
    PWCCAResult,
    RegressionResult,
    RSAResult,
    Score,
    ShapeResult,
    SVCCAResult,
    cca,
    cka,
    cknna,
    compare_rdms,
    cycle_knn,
    jaccard_knn,
    mutual_knn,
    pca,
    pls,
    procrustes,
    pwcca,
    rank_similarity,
    rdm,
    register,
    regression_fit,
    rsa,
    second_order_cosine,
    shape_distance,
    svcca,
    svcca_two_pass,
)
from svcca._moments import Float32RangeError, Moments
from svcca._sources import load_array
from svcca._validation import DegenerateError, SVCCAWarning
from svcca._version import __version__ as __version__

__all__ = [
    "MEASURES",
    "CCAResult",
    "CKAResult",
    "DegenerateError",
    "DeviceMemoryError",
    "Float32RangeError",
    "Measure",
    "MinibatchCKA",
    "NeighbourResult",
    "Moments",
    "load_array",
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
    "Score",
    "ShapeResult",
    "cca",
    "cka",
    "cknna",
    "compare_rdms",
    "compat",
    "conv",
    "cycle_knn",
    "jaccard_knn",
    "mutual_knn",
    "on_device",
    "pairwise",
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
    "stats",
    "svcca",
    "svcca_two_pass",
]
