"""Layer 2, sources: what a user passes, turned into chunks of rows and into :class:`Moments`.

NumPy arrays, memmaps (pages released after each chunk), h5py/zarr-like datasets, dask
arrays, torch tensors and iterators of batches. Sources know nothing of the measures:
they import only the statistic and the validation helpers.
"""

from svcca.sources import _dask  # noqa: F401  (registers Moments.from_arrays's dask path)
from svcca.sources._sources import Source, as_source, load_array, moments_from_sources
from svcca.sources._to_moments import to_moments

__all__ = ["Source", "as_source", "load_array", "moments_from_sources", "to_moments"]
