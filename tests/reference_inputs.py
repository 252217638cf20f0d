"""Deterministic inputs of the google/svcca reference cases (same seeds and operations).

Arrays are in the original orientation, ``(neurons, datapoints)``; the conv inputs of
case 7 are ``(datapoints, height, width, channels)``. ``peers/test_reference.py`` checks their
SHA-256 before using them.

Bit-identical on every machine: the random streams are PCG64 through
``Generator.standard_normal`` / ``uniform``, and the matrix products (``M @ A``,
``W1 @ Z``, ``Z @ W1``) are built by :func:`matmul_exact`, not BLAS. A BLAS product
rounds differently under another kernel (``OPENBLAS_CORETYPE``, thread count, CPU),
which would change the hashes; elementwise multiplies and adds are each correctly
rounded (IEEE 754), so a fixed order of them gives the same bits everywhere.

The reference outputs in ``tests/data/reference_core.json`` were computed by the
original code on the same seeds and operations with BLAS products on one machine:
inputs that differ from these only by round-off (at most a few ulps of each product
entry). ``peers/test_reference.py`` states how far that, and each path's conditioning, moves
the outputs.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

CASE4_DEAD = (0, 10, 33, 50, 71)
CASE4_CONST = (5, 40, 65)
CASE6C_DEAD = (3, 20, 47)


def matmul_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-d float64 arrays without BLAS, bit-identical on every CPU.

    Accumulates ``out += a[:, k] (outer) b[k, :]`` for ``k = 0, 1, ...`` in that order:
    one correctly rounded multiply and one correctly rounded add per term, no fused
    multiply-add, no blocking or threading that could reorder the sum.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"expected (m, k) and (k, n) arrays, got {a.shape} and {b.shape}")
    out = np.zeros((a.shape[0], b.shape[1]))
    term = np.empty_like(out)
    for k in range(a.shape[1]):
        np.multiply(a[:, k, None], b[None, k, :], out=term)
        np.add(out, term, out=out)
    return out


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
    out["case2_MA"] = matmul_exact(out["case2_M"], out["case1_A"])

    rng = np.random.default_rng(3)
    Z = rng.standard_normal((10, 3000))
    W1 = rng.standard_normal((64, 10))
    W2 = rng.standard_normal((48, 10))
    out["case3_A"] = matmul_exact(W1, Z) + 0.5 * rng.standard_normal((64, 3000))
    out["case3_B"] = matmul_exact(W2, Z) + 0.5 * rng.standard_normal((48, 3000))

    rng = np.random.default_rng(4)
    n = out["case3_A"].shape[1]
    special = {p: np.zeros(n) for p in CASE4_DEAD}
    for p in CASE4_CONST:
        special[p] = rng.uniform(1.0, 5.0) + 1e-7 * rng.standard_normal(n)
    out["case4_A"] = _with_rows(out["case3_A"], special)

    out["case6c_A"] = out["case3_A"][:48].copy()
    out["case6c_B"] = _with_rows(out["case3_B"][:45], {p: np.zeros(n) for p in CASE6C_DEAD})

    rng = np.random.default_rng(7)
    Z = rng.standard_normal((200, 8, 8, 3))
    W1 = rng.standard_normal((3, 6))
    W2 = rng.standard_normal((3, 5))
    Z1 = _channels_exact(Z, W1)
    Z2 = _channels_exact(Z, W2)
    out["case7_conv1"] = Z1 + 0.5 * rng.standard_normal((200, 8, 8, 6))
    out["case7_conv2"] = Z2 + 0.5 * rng.standard_normal((200, 8, 8, 5))
    out["case7_conv2_small"] = _avgpool2(Z2) + 0.5 * rng.standard_normal((200, 4, 4, 5))
    return out


def _channels_exact(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` over the last axis of a ``(d, h, w, c)`` array, without BLAS."""
    flat = matmul_exact(x.reshape(-1, x.shape[-1]), w)
    return flat.reshape(*x.shape[:-1], w.shape[1])


def _avgpool2(x: np.ndarray) -> np.ndarray:
    """2x2 average pooling of ``(d, h, w, c)``, the four adds in a fixed order."""
    return (x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) / 4


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f8").tobytes()).hexdigest()
