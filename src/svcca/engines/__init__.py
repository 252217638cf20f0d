"""Layer 4, engines: many comparisons on shared work.

The pairwise engine lives here (every representation prepared once, every cross block
from one blocked GEMM); :mod:`svcca.stats` (permutation tests, bootstrap, null
baselines) and :mod:`svcca.conv` (DFT-CCA) are the other engines, public subpackages
of their own. Engines call the measures' prepare/combine steps; they never reimplement
a measure.
"""

from svcca.engines._pairwise import PairwiseResult, pairwise

__all__ = ["PairwiseResult", "pairwise"]
