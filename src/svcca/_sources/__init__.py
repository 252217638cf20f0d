"""Layer 2, sources: what a user passes, turned into chunks of rows and into :class:`Moments`.

NumPy arrays, memmaps (pages released after each chunk), h5py/zarr-like datasets, dask
arrays, torch tensors and iterators of batches. Sources know nothing of the measures:
they import only the statistic and the validation helpers.

Everything here is *internal* API, for the layers above (measures, engines, stats,
torch, cli); import it from ``svcca._sources``, never from its modules: :class:`Source`
and :func:`as_source` (a chunked reader of any input), :func:`check_same_n`,
:func:`is_dask_array`, :func:`is_streamable`, :func:`load_array`,
:func:`moments_from_sources`, :func:`to_moments`, and the Dask passes of ``pairwise``
(:func:`per_rep_moments_dask`, :func:`cross_products_dask`) and of its intervals per cell
(:func:`block_moments_dask`).
"""

from svcca._sources._dask import block_moments_dask, cross_products_dask, per_rep_moments_dask
from svcca._sources._sources import (
    Source,
    as_source,
    check_same_n,
    is_dask_array,
    is_streamable,
    load_array,
    moments_from_sources,
)
from svcca._sources._to_moments import to_moments

__all__ = [
    "Source",
    "as_source",
    "block_moments_dask",
    "check_same_n",
    "cross_products_dask",
    "is_dask_array",
    "is_streamable",
    "load_array",
    "moments_from_sources",
    "per_rep_moments_dask",
    "to_moments",
]
