"""Convolutional layers: DFT-CCA and the other ways to compare spatial feature maps.

Activations are ``(n, h, w, c)`` (``layout="nhwc"``) or ``(n, c, h, w)``
(``layout="nchw"``); the layout is an explicit argument, never guessed.

- :func:`fourier_cca`: CCA per spatial frequency (Raghu et al. 2017, Section 3), exact
  for translation-invariant data, vectorised over frequencies.
- :func:`compare`: one entry point for the strategies (``"dft"``, ``"flatten"``,
  ``"avgpool"``, ``"interpolate"``) with any measure of the library.
- :func:`reduce_pair`: the 2-D arrays a spatial strategy produces, for your own measure.

The names imported below with ``as`` and left out of ``__all__`` are *internal* API, for
:mod:`svcca.compat`'s ``fourier_ccas`` (the conv checks, the DFT moments, the grid);
not for users, not documented, free to change.
"""

from svcca.conv._checks import as_conv as as_conv
from svcca.conv._checks import check_same_n as check_same_n
from svcca.conv._checks import raise_nonfinite_conv as raise_nonfinite_conv
from svcca.conv._dft import FourierCCAResult, fourier_cca
from svcca.conv._dft import FourierMoments as FourierMoments
from svcca.conv._dft import fourier_moments as fourier_moments
from svcca.conv._grid import Grid as Grid
from svcca.conv._strategies import compare, reduce_pair

__all__ = [
    "FourierCCAResult",
    "compare",
    "fourier_cca",
    "reduce_pair",
]
