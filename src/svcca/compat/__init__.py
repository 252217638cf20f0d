"""Drop-ins for the google/svcca functions, in its ``(neurons, datapoints)`` orientation.

Change ``import cca_core`` to ``from svcca import compat as cca_core`` (and likewise for
``pwcca``, ``numpy_pls``, ``numpy_pca``): the arguments, the dict keys and the numbers
are the original's, except where the original crashed or was wrong; each function's
docstring lists those differences.
"""

from svcca.compat._cca_core import (
    compute_pwcca,
    get_cca_similarity,
    get_pca,
    get_pls_similarity,
    robust_cca_similarity,
    sum_threshold,
)
from svcca.compat._dft_ccas import fourier_ccas

__all__ = [
    "compute_pwcca",
    "fourier_ccas",
    "get_cca_similarity",
    "get_pca",
    "get_pls_similarity",
    "robust_cca_similarity",
    "sum_threshold",
]
