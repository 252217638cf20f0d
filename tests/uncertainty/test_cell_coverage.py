"""Coverage of the per-cell path by simulation: every cell of
``svcca.pairwise({...three representations...}, uncertainty="jackknife")`` covers the
population value of its pair at the nominal 95%.

Population: per coordinate ``i`` of three, ``(U_i, V_i, W_i)`` standard Gaussian with
correlations ``corr(U, V) = RHO = (0.9, 0.6, 0.3)`` (unc_populations.py's pair),
``corr(U, W) = (0.8, 0.5, 0.2)`` and ``corr(V, W) = (0.7, 0.4, 0.1)``, independent across
coordinates; ``X = U A_x``, ``Y = V A_y``, ``Z = W A_z`` with fixed maps (unc_populations's
``A_x``, ``A_y``, and one more). Each pair's cross-covariance of the latents is diagonal
with unit variances, so its population canonical correlations are that pair's three
correlations (CCA is invariant to the maps): mean 0.6, 0.5, 0.4; its population linear
CKA is ``||S_ab||_F^2 / (||S_aa||_F ||S_bb||_F)`` with ``S_aa = A_a^T A_a`` and
``S_ab = A_a^T diag(r_ab) A_b``. ``p + q = 6`` for every pair, ``n = 20 (p + q) = 120``.

The slow version (``-m slow``) runs 2,000 repetitions per measure and tests each cell's
coverage against 0.95 with a two-sided binomial test at the 1% level; the quick one 100
and 30 with a one-sided binomial floor. Measured numbers: docs/uncertainty.md ("Every
cell, measured"): every linear CKA cell covers; of CCA's, the X-Y cell covers and the
two whose populations hold a canonical correlation of 0.2 and 0.1 do not (0.929, 0.895),
kept as strict expected failures.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from scipy.stats import binom, binomtest
from unc_populations import RHO, draw, population

import svcca

K = RHO.shape[0]
# corr(U, V), corr(U, W), corr(V, W) per coordinate; each 3 x 3 correlation matrix is
# positive definite (determinants 0.068, 0.47, 0.87).
R_UV, R_UW, R_VW = RHO, np.array([0.8, 0.5, 0.2]), np.array([0.7, 0.4, 0.1])
AX, AY = population()
AZ = population(seed=54321)[0]
MAPS = {"x": AX, "y": AY, "z": AZ}
CELLS = {(0, 1): R_UV, (0, 2): R_UW, (1, 2): R_VW}  # rows/cols of the matrix: x, y, z
DIMS = 2 * K  # p + q of every pair
LEVEL = 0.95


def _chol() -> np.ndarray:
    """Per coordinate, the Cholesky factor of the latents' 3 x 3 correlation matrix."""
    out = np.empty((K, 3, 3))
    for i in range(K):
        c = np.array([[1.0, R_UV[i], R_UW[i]], [R_UV[i], 1.0, R_VW[i]], [R_UW[i], R_VW[i], 1.0]])
        out[i] = np.linalg.cholesky(c)
    return out


CHOL = _chol()


def draw3(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` rows of ``X``, ``Y``, ``Z``, each ``(n, 3)``."""
    E = rng.standard_normal((n, K, 3))
    L = np.einsum("kab,nkb->nka", CHOL, E)  # L[:, i, :] = (U_i, V_i, W_i)
    return {name: L[:, :, s] @ MAPS[name] for s, name in enumerate("xyz")}


def _cka(A: np.ndarray, B: np.ndarray, r: np.ndarray) -> float:
    saa, sbb, sab = A.T @ A, B.T @ B, A.T @ np.diag(r) @ B
    return float(np.sum(sab**2) / (np.linalg.norm(saa) * np.linalg.norm(sbb)))


NAMES = "xyz"
TRUTH = {
    "cca": {cell: float(r.mean()) for cell, r in CELLS.items()},
    "cka_linear": {(i, j): _cka(MAPS[NAMES[i]], MAPS[NAMES[j]], r) for (i, j), r in CELLS.items()},
}


def _hits(measure: str, n: int, reps: int, seed: int = 2121) -> dict[tuple[int, int], int]:
    """How many of ``reps`` matrices' cells cover their population value."""
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(CELLS, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        for rep in range(reps):
            r = svcca.pairwise(
                draw3(n, rng), measure=measure, uncertainty="jackknife", blocks=20,
                seed=rep, level=LEVEL,
            )  # fmt: skip
            assert r.low is not None and r.high is not None
            for (i, j), truth in TRUTH[measure].items():
                hits[i, j] += bool(r.low[i, j] <= truth <= r.high[i, j])
                # the matrix is symmetric, intervals included
                assert (r.low[j, i], r.high[j, i]) == (r.low[i, j], r.high[i, j])
    return hits


def test_population_values_in_closed_form_match_a_large_sample():
    r_cca = svcca.pairwise(draw3(200_000, np.random.default_rng(0)), measure="cca")
    r_cka = svcca.pairwise(draw3(200_000, np.random.default_rng(1)), measure="cka_linear")
    for (i, j), want in TRUTH["cca"].items():
        # sd of a mean canonical correlation at n = 2e5 is ~ 1e-3
        assert r_cca.values[i, j] == pytest.approx(want, abs=0.005), (i, j)
    for (i, j), want in TRUTH["cka_linear"].items():
        assert r_cka.values[i, j] == pytest.approx(want, abs=0.01), (i, j)
    # distinct cells: a cell that covered another cell's value would not show here
    for values in TRUTH.values():
        v = sorted(values.values())
        assert min(np.diff(v)) > 0.05, v


def _floor(reps: int, alpha: float) -> int:
    """The fewest hits in ``reps`` that Binomial(reps, 0.95) undershoots with probability
    below ``alpha``: ``P(hits < floor) <= alpha`` at the nominal coverage."""
    return int(binom.ppf(alpha, reps, LEVEL))


@pytest.mark.parametrize(("measure", "reps"), [("cka_linear", 100), ("cca", 30)])
def test_every_cell_covers_quick(measure, reps):
    # One-sided, per cell at 1e-3 / 3 (a union bound over the three cells), at the
    # nominal 0.95: of 100 repetitions at least 86 hits (P(fewer) = 1.4e-4), of 30 at
    # least 23 (8.5e-5). (At the measured coverage of the worst CCA cell, 0.895, 30
    # repetitions fall below 23 with probability 0.01; the seed is fixed.)
    floor = _floor(reps, 1e-3 / len(CELLS))
    assert floor == {100: 86, 30: 23}[reps]
    hits = _hits(measure, DIMS * 20, reps)
    assert min(hits.values()) >= floor, hits


@functools.cache
def _slow_hits(measure: str) -> dict[tuple[int, int], int]:
    return _hits(measure, DIMS * 20, SLOW_REPS)


SLOW_REPS = 2000
# Measured (docs/uncertainty.md, "Every cell, measured"): at n = 20 (p + q) CCA's cells
# whose population holds a small canonical correlation (0.2, 0.1) cover 0.929 and 0.895;
# the sample canonical correlation of a population one near 0 is biased by
# O(n^-1/2), not the O(1/n) the jackknife removes. Kept as strict expected failures:
# a fix that makes them cover turns them into errors to update here and in the docs.
_SHORT = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="CCA cells with a canonical correlation of 0.1-0.2 undercover at n = 120",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("measure", "cell"),
    [
        pytest.param("cca", (0, 1), id="cca-X-Y"),
        pytest.param("cca", (0, 2), marks=_SHORT, id="cca-X-Z"),
        pytest.param("cca", (1, 2), marks=_SHORT, id="cca-Y-Z"),
        pytest.param("cka_linear", (0, 1), id="cka_linear-X-Y"),
        pytest.param("cka_linear", (0, 2), id="cka_linear-X-Z"),
        pytest.param("cka_linear", (1, 2), id="cka_linear-Y-Z"),
    ],
)
def test_every_cell_covers_at_its_level(measure, cell):
    h = _slow_hits(measure)[cell]
    assert binomtest(h, SLOW_REPS, LEVEL).pvalue > 0.01, (cell, h / SLOW_REPS)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="a population canonical correlation of 0: CCA's intervals cover 0.86-0.88 at every n",
)
def test_a_cca_cell_with_a_zero_canonical_correlation_covers():
    # docs/uncertainty.md, "A canonical correlation near or at 0": 0.860 at n = 1920
    # (320 (p + q)) over 400 repetitions; more rows do not help (the bias is O(n^-1/2)).
    rho = np.array([0.9, 0.6, 0.0])
    rng = np.random.default_rng(11)
    reps, hits = 400, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        for rep in range(reps):
            X, Y = draw(1920, rng, rho)
            r = svcca.pairwise({"x": X, "y": Y}, measure="cca", uncertainty="jackknife", seed=rep)
            assert r.low is not None and r.high is not None
            hits += bool(r.low[0, 1] <= rho.mean() <= r.high[0, 1])
    assert binomtest(hits, reps, LEVEL).pvalue > 0.01, hits / reps
