"""Round-off clipping: a correlation a hair outside [0, 1] is clipped, anything larger raises.

The helpers are private: a correlation outside [0, 1] by more than round-off would be a
bug, so no public input can produce one to show the refusal.
"""

from __future__ import annotations

import numpy as np
import pytest

# private: no public input reaches these helpers with a value out of range
from svcca._measures._cca import canonical_correlations
from svcca._measures._linalg import clip_roundoff


def test_round_off_is_clipped_and_anything_larger_raises():
    np.testing.assert_array_equal(
        clip_roundoff(np.array([1 + 1e-15, -1e-16, 0.5]), 0.0, 1.0, 1e-12, "x"), [1.0, 0.0, 0.5]
    )
    with pytest.raises(FloatingPointError, match=r"A squared canonical correlation came out as"):
        canonical_correlations(np.array([[1.2]]), tol=1e-12)
    assert canonical_correlations(np.array([[1.0 + 1e-14]]), tol=1e-12)[0] == 1.0
