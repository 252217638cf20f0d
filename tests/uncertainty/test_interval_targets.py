"""What an interval is for, where the usual answer (a population value) does not hold.

- A measure whose value depends on the number of datapoints (``Measure.depends_on_n``:
  unnormalised distances, fixed-k neighbourhoods) has no n-free population value: its
  intervals cover the expected value at this n, centred on the estimate, without the
  jackknife's bias correction (which would extrapolate the n-dependence).
- The CCA family's intervals undercover where a population canonical correlation is 0
  (docs/uncertainty.md): they warn, naming the cells, when Bartlett's test does not tell
  a correlation from 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import svcca

DECLARED = sorted(m.name for m in svcca.MEASURES.values() if m.depends_on_n)


_MAPS = np.random.default_rng(1234)
A, B = _MAPS.standard_normal((4, 6)), _MAPS.standard_normal((4, 5))


def _population(n, seed):
    """n rows of one population (the maps A, B fixed), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 4))
    return Z @ A + 0.5 * rng.standard_normal((n, 6)), Z @ B + 0.5 * rng.standard_normal((n, 5))


def test_the_declared_measures_are_those_whose_value_moves_with_n():
    assert DECLARED == sorted([
        "cknna", "cycle_knn", "jaccard_knn", "mutual_knn", "rank_similarity",
        "second_order_cosine", "permutation_procrustes", "procrustes_size_shape",
        "rsm_norm_difference",
    ])  # fmt: skip


@pytest.mark.parametrize("name", DECLARED)
def test_a_declared_measure_moves_with_n(name):
    """The same population at 150 and 1200 rows (the maps fixed by the seed): the mean
    over three draws moves by far more than the draws' spread."""
    m = svcca.MEASURES[name]
    small = [m.score(*_population(150, s)) for s in range(3)]
    large = [m.score(*_population(1200, s)) for s in range(3)]
    spread = max(np.std(small), np.std(large), 1e-12)
    assert abs(np.mean(large) - np.mean(small)) > 5 * spread, (small, large)


@pytest.mark.parametrize("name", ["permutation_procrustes", "mutual_knn", "rsm_norm_difference"])
def test_intervals_of_a_declared_measure_are_centred_on_the_estimate(name):
    X, Y = _population(300, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        r = svcca.stats.interval(X, Y, measure=name, blocks=10)
        cells = svcca.pairwise({"x": X, "y": Y}, measure=name, uncertainty="jackknife", blocks=10)
    assert r.corrected == r.estimate and r.bias == 0.0
    assert r.low <= r.estimate <= r.high and r.standard_error > 0
    assert cells.corrected[0, 1] == cells.values[0, 1]
    assert cells.low[0, 1] == pytest.approx(r.low, rel=1e-12)
    d = svcca.stats.cell_difference(cells, ("x", "y"), ("y", "x"))
    assert d.corrected == d.difference


def test_a_population_measure_keeps_its_bias_correction():
    X, Y = _population(300, 0)
    r = svcca.stats.interval(X, Y, measure="cka_linear", blocks=10)
    assert r.corrected != r.estimate


# ---------------------------------------------------------------- zero correlations
def _with_a_null_direction(n, seed=0):
    """X and Y share two directions (correlations 0.9 and 0.6); X's third is independent
    of Y: a population canonical correlation of 0."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((n, 3))
    V = np.column_stack([
        0.9 * U[:, 0] + np.sqrt(1 - 0.81) * rng.standard_normal(n),
        0.6 * U[:, 1] + 0.8 * rng.standard_normal(n),
        rng.standard_normal(n),
    ])  # fmt: skip
    return U @ rng.standard_normal((3, 3)), V @ rng.standard_normal((3, 3))


@pytest.mark.parametrize("measure", ["cca", "pwcca"])
def test_an_interval_resting_on_a_null_correlation_warns(measure):
    X, Y = _with_a_null_direction(2000)
    with pytest.warns(
        svcca.SVCCAWarning, match=r"does not tell from 0 \(\(X, Y\): 1 of 3\)"
    ) as rec:
        svcca.stats.interval(X, Y, measure=measure)
    assert __file__ in [w.filename for w in rec]


def test_strong_correlations_do_not_warn_and_linear_cka_never_does():
    rng = np.random.default_rng(1)
    U = rng.standard_normal((2000, 3))
    X, Y = U, U + 0.3 * rng.standard_normal((2000, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", svcca.SVCCAWarning)
        svcca.stats.interval(X, Y, measure="cca")
        svcca.stats.interval(*_with_a_null_direction(2000), measure="cka_linear")


def test_pairwise_names_the_cells_resting_on_null_correlations():
    X, Y = _with_a_null_direction(2000)
    rng = np.random.default_rng(2)
    W = X + 0.3 * rng.standard_normal(X.shape)  # X and W share every direction
    with pytest.warns(
        svcca.SVCCAWarning, match=r"does not tell from 0 .*\('x', 'y'\): 1 of 3"
    ) as rec:
        svcca.pairwise({"x": X, "y": Y, "w": W}, measure="cca", uncertainty="jackknife")
    message = next(str(w.message) for w in rec if "tell from 0" in str(w.message))
    assert "('x', 'w')" not in message
    assert __file__ in [w.filename for w in rec if "tell from 0" in str(w.message)]
