"""Layer 1, the statistic: :class:`Moments`, the mergeable sufficient statistic.

Counts, means and centred cross-product sums of two representations, accumulated in
float64 in one pass and merged exactly (Chan et al.). Imports nothing above it.

Public: :class:`Moments` and :class:`Float32RangeError` (re-exported by :mod:`svcca`).
The other names of ``__all__`` are the package's *internal* API, for the layers above
(sources, measures, engines, torch); import them from ``svcca._moments``, never from
its modules:

- :class:`Accumulator` (host NumPy) and :class:`TorchAccumulator` (a torch device):
  the one accumulation algorithm of each backend (shifted data, float64 sums), and
  :class:`CrossMoments`, which runs one of them per layer and the cross blocks of
  row layers against column layers by the same algorithm;
- :func:`raise_bad_chunk`: what a host chunk loop raises when a chunk's sums are not
  finite; :func:`chunk_rows`, ``FLOAT32_CHUNK_ROWS``: the rows of a chunk;
- :func:`release_rows`: hand back a memmap's pages once read;
- :func:`column_means`, :func:`scale_for`, :func:`top_of`: the sums' power-of-two units;
- :func:`moments_of_tensor_pair`, :func:`register_dask_moments`: the tensor and Dask
  paths of :meth:`Moments.from_arrays`;
- :class:`BlockMoments`, :class:`PoissonMoments`, :func:`block_of`,
  :func:`poisson_weights`, :func:`subtract_moments` (public through :mod:`svcca.stats`)
  and :func:`plan_statistics`, :func:`check_count`, :func:`check_seed`: the per-block
  statistics of one pass that every interval is made of, here so that the engines
  (``pairwise``'s intervals per cell) and ``svcca.stats`` share them.
"""

from svcca._moments._accumulator import Accumulator, raise_bad_chunk, release_rows
from svcca._moments._blocks import (
    BlockMoments,
    PoissonMoments,
    block_of,
    check_count,
    check_seed,
    jackknife_blocks,
    plan_statistics,
    poisson_weights,
    statistic_bytes,
    subtract_moments,
)
from svcca._moments._chunks import FLOAT32_CHUNK_ROWS, chunk_rows
from svcca._moments._cross import CrossMoments, cross_moments
from svcca._moments._moments import Moments
from svcca._moments._paths import register_dask_moments
from svcca._moments._torch_moments import TorchAccumulator, moments_of_tensor_pair
from svcca._moments._units import Float32RangeError, column_means, scale_for, top_of

__all__ = [
    # public
    "Float32RangeError",
    "Moments",
    # internal (see the docstring)
    "FLOAT32_CHUNK_ROWS",
    "Accumulator",
    "BlockMoments",
    "PoissonMoments",
    "block_of",
    "jackknife_blocks",
    "check_count",
    "check_seed",
    "plan_statistics",
    "poisson_weights",
    "statistic_bytes",
    "subtract_moments",
    "CrossMoments",
    "TorchAccumulator",
    "chunk_rows",
    "column_means",
    "cross_moments",
    "moments_of_tensor_pair",
    "raise_bad_chunk",
    "register_dask_moments",
    "release_rows",
    "scale_for",
    "top_of",
]
