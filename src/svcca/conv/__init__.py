"""Convolutional layers: DFT-CCA and the other ways to compare spatial feature maps.

Activations are ``(n, h, w, c)`` (``layout="nhwc"``) or ``(n, c, h, w)``
(``layout="nchw"``); the layout is an explicit argument, never guessed.

- :func:`fourier_cca`: CCA per spatial frequency (Raghu et al. 2017, Section 3), exact
  for translation-invariant data, vectorised over frequencies.
- :func:`compare`: one entry point for the strategies (``"dft"``, ``"flatten"``,
  ``"avgpool"``, ``"interpolate"``) with any measure of the library.
- :func:`reduce_pair`: the 2-D arrays a spatial strategy produces, for your own measure.

The names after ``# internal`` in ``__all__`` are *internal* API, for
:mod:`svcca.compat`'s ``fourier_ccas`` (the conv checks, the DFT moments, the grid);
not for users.
"""

from svcca.conv._checks import as_conv, check_same_n, raise_nonfinite_conv
from svcca.conv._dft import FourierCCAResult, FourierMoments, fourier_cca, fourier_moments
from svcca.conv._grid import Grid
from svcca.conv._strategies import compare, reduce_pair

__all__ = [
    "FourierCCAResult",
    "compare",
    "fourier_cca",
    "reduce_pair",
    # internal (see the docstring)
    "FourierMoments",
    "Grid",
    "as_conv",
    "check_same_n",
    "fourier_moments",
    "raise_nonfinite_conv",
]
