"""Layer 1, the statistic: :class:`Moments`, the mergeable sufficient statistic.

Counts, means and centred cross-product sums of two representations, accumulated in
float64 in one pass and merged exactly (Chan et al.). Imports nothing above it.
"""

from svcca.statistic import _torch_moments  # noqa: F401  (registers the tensor-batch path)
from svcca.statistic._moments import Moments
from svcca.statistic._units import Float32RangeError

__all__ = ["Float32RangeError", "Moments"]
