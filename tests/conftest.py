"""Shared test configuration: machine-independent tolerances and Hypothesis profiles.

Tolerances
----------
A test that compares two floating-point computations must hold on any CPU, BLAS kernel
(``OPENBLAS_CORETYPE``) and thread count: those change the order of every sum inside a
matrix product, so results differ by round-off. The tolerance is therefore an error
bound from the mathematics, never the difference one run happened to show:
:func:`tol` returns ``factor * eps(dtype) * cond * scale``.

Hypothesis
----------
``HYPOTHESIS_PROFILE`` selects a profile; otherwise ``CI`` in the environment selects
``"ci"`` (derandomised: the same examples on every run, no deadline, no example
database) and everything else ``"dev"`` (random examples, the default settings).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
_default_profile = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default_profile)


def tol(dtype=np.float64, cond: float = 1.0, scale: float = 1.0, factor: float = 10.0) -> float:
    """Absolute round-off tolerance ``factor * eps(dtype) * cond * scale``.

    Parameters
    ----------
    dtype
        The precision the compared quantities were computed in: ``eps`` is its machine
        epsilon (2.2e-16 for float64, 1.2e-7 for float32), the relative error of one
        correctly rounded operation. A float32 forward pass is float32 even when the
        activations are then accumulated in float64.
    cond
        The problem's condition number: how much a relative perturbation of the input
        (or a backward error of the algorithm) is amplified in the output. A
        backward-stable SVD or symmetric eigensolver has ``cond = 1`` for singular values
        and eigenvalues *in units of the largest one*; a solve, pinv or inverse square root
        has ``cond`` of the matrix it inverts; canonical correlations, that of the
        (correlation-scaled) covariance blocks that are whitened.
    scale
        The size of the quantity the error is relative to: the largest singular value for
        any singular value (the smallest one is accurate to ``eps * s_max``, not to
        ``eps * s_min``), ``max |x|`` for a sum of terms of that size, 1 for correlations.
    factor
        The constant of the bound: the length of the sums involved (a sum of ``k`` terms
        is accurate to ``k * eps`` in the worst case), the dimension in LAPACK's
        ``O(p) eps`` backward-error bounds, and 2 when both compared values carry their
        own error. Each call site states which.
    """
    return float(factor * np.finfo(dtype).eps * cond * scale)


@pytest.fixture(name="tol")
def _tol_fixture():
    """:func:`tol`, for tests that take it as a fixture."""
    return tol
