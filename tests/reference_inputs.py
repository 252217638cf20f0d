"""Deterministic inputs of the google/svcca reference cases (same seeds and operations).

Arrays are in the original orientation, ``(neurons, datapoints)``. The reference
outputs in ``tests/data/reference_core.json`` were computed on exactly these arrays;
``test_reference.py`` checks their SHA-256 before using them.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

CASE4_DEAD = (0, 10, 33, 50, 71)
CASE4_CONST = (5, 40, 65)
CASE6C_DEAD = (3, 20, 47)


def _with_rows(base: np.ndarray, special: dict[int, np.ndarray]) -> np.ndarray:
    """``base``'s rows in order, with ``special`` rows placed at their indices."""
    total = base.shape[0] + len(special)
    rest = iter(base)
    return np.stack([special[r] if r in special else next(rest) for r in range(total)])


@lru_cache(maxsize=1)
def reference_inputs() -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(1)
    out["case1_A"] = rng.standard_normal((100, 2000))
    out["case1_B"] = rng.standard_normal((50, 2000))

    rng = np.random.default_rng(2)
    out["case2_M"] = rng.standard_normal((100, 100))
    out["case2_MA"] = out["case2_M"] @ out["case1_A"]

    rng = np.random.default_rng(3)
    Z = rng.standard_normal((10, 3000))
    W1 = rng.standard_normal((64, 10))
    W2 = rng.standard_normal((48, 10))
    out["case3_A"] = W1 @ Z + 0.5 * rng.standard_normal((64, 3000))
    out["case3_B"] = W2 @ Z + 0.5 * rng.standard_normal((48, 3000))

    rng = np.random.default_rng(4)
    n = out["case3_A"].shape[1]
    special = {p: np.zeros(n) for p in CASE4_DEAD}
    for p in CASE4_CONST:
        special[p] = rng.uniform(1.0, 5.0) + 1e-7 * rng.standard_normal(n)
    out["case4_A"] = _with_rows(out["case3_A"], special)

    out["case6c_A"] = out["case3_A"][:48].copy()
    out["case6c_B"] = _with_rows(out["case3_B"][:45], {p: np.zeros(n) for p in CASE6C_DEAD})
    return out


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f8").tobytes()).hexdigest()
