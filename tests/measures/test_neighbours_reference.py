"""The neighbourhood measures against the values of their reference implementations.

tests/data/field_neighbours.{npz,json}: three cases of ../shared/reference/field (one X,
three Y: a nonlinear relative, a rotated, scaled and shifted copy, an independent one)
and what platonic-rep's metrics.py and ReSi's repsim/measures returned on them (k = 10,
cosine). The neighbour sets are discrete and, on these inputs, untied, so the scores are
deterministic up to the order of the final sums: 1e-10 relative is loose by six orders.
Two conventions differ from the references by design and are checked as such:
platonic-rep's CKNNA adds 1e-6 to its denominator (``eps=1e-6`` reproduces it), and its
cycle k-NN averages in float32 (its value is ours rounded to float32).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import svcca

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "field_neighbours.json").read_text())
CASES = ("latent", "rotated", "independent")
RTOL = 1e-10


def _inputs(case):
    with np.load(DATA / "field_neighbours.npz", allow_pickle=False) as d:
        X, Y = d["X"], d[f"{case}_Y"]
    for name, a in (("X", X), ("Y", Y)):
        digest = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        assert digest == REF["input_sha256"][f"{case}_{name}"]
    return X, Y


RESI = {
    "jaccard_knn": "JaccardSimilarity",
    "rank_similarity": "RankSimilarity",
    "second_order_cosine": "SecondOrderCosineSimilarity",
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", sorted(RESI))
def test_resi_neighbourhood_measures_match_resi(name, case):
    X, Y = _inputs(case)
    want = REF["resi"][RESI[name]][case]
    got = svcca.MEASURES[name].score(X, Y)  # defaults: k = 10, cosine (ReSi's)
    assert got == pytest.approx(want, rel=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_mutual_knn_matches_platonic_rep(case):
    X, Y = _inputs(case)
    got = svcca.mutual_knn(X, Y)
    assert got.score == pytest.approx(REF["platonic"]["mutual_knn"][case], rel=RTOL)
    # a fraction of the 4000 (point, neighbour) pairs
    assert got.score * 4000 == pytest.approx(round(got.score * 4000), abs=1e-9)
    assert got.k == 10 and got.distance == "cosine" and got.ambiguous == (0, 0)


@pytest.mark.parametrize("case", CASES)
def test_cycle_knn_is_platonic_reps_value_before_its_float32_mean(case):
    X, Y = _inputs(case)
    got = svcca.cycle_knn(X, Y).score
    want = REF["platonic"]["cycle_knn"][case]
    assert float(np.float32(got)) == want  # platonic-rep: .float().mean()
    assert got * 400 == round(got * 400)  # ours: the exact fraction of the 400 points
    assert abs(got - want) <= np.finfo(np.float32).eps * want


@pytest.mark.parametrize("case", CASES)
def test_cknna_reproduces_platonic_rep_with_its_epsilon_and_is_exact_without(case):
    X, Y = _inputs(case)
    want = REF["platonic"]["cknna"][case]
    assert svcca.cknna(X, Y, eps=1e-6).score == pytest.approx(want, rel=RTOL)
    exact = svcca.cknna(X, Y).score  # eps = 0: the exact ratio (its formula is checked
    # against a full-matrix evaluation in test_neighbours_brute.py)
    assert 3e-5 < exact / want - 1 < 2e-4  # 3.6e-5 to 1.2e-4 on these inputs


def test_registry_defaults_are_the_papers_defaults():
    X, Y = _inputs("latent")
    for name in ("mutual_knn", "cycle_knn", "cknna", *RESI):
        direct = getattr(svcca, name)(X, Y, k=10, distance="cosine")
        assert svcca.MEASURES[name].score(X, Y) == direct.score
