"""Layer 4, engines: many comparisons on shared work.

The pairwise engine lives here (every representation prepared once, every cross block
from one blocked GEMM); :mod:`svcca.stats` (permutation tests, bootstrap, null
baselines) and :mod:`svcca.conv` (DFT-CCA) are the other engines, public subpackages
of their own. Engines call the measures' prepare/combine steps; they never reimplement
a measure.

Public: :func:`pairwise` and :class:`PairwiseResult` (re-exported by :mod:`svcca`). The
rest of ``__all__`` is *internal* API, for :func:`svcca.torch.compare`, which ends as
``pairwise`` does: ``ONE_PASS_MEASURES`` (the measures computed from moments),
:class:`Rep` and :func:`prepare_all` (each side prepared once), :func:`scores` (every
pair combined from the cross blocks), :func:`warn_inflated`, and :class:`KeptLayers`
(the per-pair measures' kept activations), and for ``compare(..., uncertainty=...)``
the per-cell interval path: :func:`check_uncertainty`, :class:`BlockRows` (rows to their
blocks' statistics), :func:`intervals_from_blocks`, :func:`per_pair_intervals`,
:class:`Plan` and :func:`plan_of`; for ``compare(..., test=...)`` the per-cell tests:
:func:`check_test`, :class:`CellTests`, :func:`asymptotic_fields` and
:func:`permutation_cells`. Import them from ``svcca._engines``.
"""

from svcca._engines._cell_tests import (
    CellTests,
    asymptotic_fields,
    check_test,
    permutation_cells,
)
from svcca._engines._cells import BlockRows, check_uncertainty, intervals_from_blocks
from svcca._engines._cells_device import DeviceBlocks
from svcca._engines._cells_rows import per_pair_intervals
from svcca._engines._combine import (
    ONE_PASS_MEASURES,
    Rep,
    one_pass_settings,
    prepare_all,
    scores,
    warn_inflated,
)
from svcca._engines._pairwise import pairwise, served_per_pair
from svcca._engines._pairwise_result import PairwiseResult
from svcca._engines._per_pair import KeptLayers
from svcca._engines._plan import Plan, plan_of

__all__ = [
    # public
    "PairwiseResult",
    "pairwise",
    # internal (see the docstring)
    "ONE_PASS_MEASURES",
    "DeviceBlocks",
    "CellTests",
    "asymptotic_fields",
    "check_test",
    "permutation_cells",
    "KeptLayers",
    "Plan",
    "Rep",
    "BlockRows",
    "check_uncertainty",
    "intervals_from_blocks",
    "per_pair_intervals",
    "plan_of",
    "one_pass_settings",
    "prepare_all",
    "scores",
    "served_per_pair",
    "warn_inflated",
]
