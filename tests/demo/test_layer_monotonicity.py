"""ReSi's layer-monotonicity scores: analytic matrices, and a tiny run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from svcca._demo._monotonicity import monotonicity_scores, run_monotonicity

L = 5
GAP = np.abs(np.subtract.outer(np.arange(L), np.arange(L))).astype(float)


def test_a_monotone_similarity_scores_one_and_no_violation():
    assert monotonicity_scores(1.0 / (1.0 + GAP)) == (1.0, 0.0)
    # the same ordering given as a distance
    assert monotonicity_scores(GAP, larger_is_more_similar=False) == (1.0, 0.0)


def test_a_reversed_similarity_scores_minus_one_and_violates_every_triple():
    corr, viol = monotonicity_scores(GAP)  # "similarity" grows with the distance
    assert corr == -1.0 and viol == 1.0


def test_one_swapped_pair_counts_its_violations():
    S = 1.0 / (1.0 + GAP)
    S[0, 2], S[0, 3] = S[0, 3], S[0, 2]  # from layer 0, layer 3 beats layer 2
    # triples from source 0 on its right: (1,2) (1,3) (1,4) (2,3) (2,4) (3,4): one
    # violation, (2, 3); every other row is monotone. Triples in all: 2 * sum C(k, 2)
    total = 2 * sum(k * (k - 1) // 2 for k in range(L))
    corr, viol = monotonicity_scores(S)
    assert viol == pytest.approx(1 / total)
    assert 0.9 < corr < 1.0


def test_too_few_layers_are_refused():
    with pytest.raises(ValueError, match="at least 3 layers"):
        monotonicity_scores(np.eye(2))


@pytest.mark.slow
def test_run_monotonicity_tiny_writes_json_and_markdown(tmp_path):
    names = ["cka_linear", "gulp", "rsm_norm_difference"]
    res = run_monotonicity(tmp_path, seeds=1, epochs=1, n_probe=60, measures=names)
    assert set(res.correlation) == set(names)
    for k in names:
        assert -1.0 <= res.correlation[k] <= 1.0 and 0.0 <= res.violation_rate[k] <= 1.0
    saved = json.loads((tmp_path / "monotonicity.json").read_text())
    assert saved["correlation"] == pytest.approx(res.correlation)
    assert "| `cka_linear` |" in (tmp_path / "monotonicity.md").read_text()


def test_bad_settings_are_refused_before_training(tmp_path):
    with pytest.raises(ValueError, match="conv must be one of 'mean', 'flatten'"):
        run_monotonicity(tmp_path, conv="pool")
    with pytest.raises(ValueError, match="measure must be one of"):
        run_monotonicity(tmp_path, measures=["cka_linear", "nonsense"])
    with pytest.raises(ValueError, match="Monotonicity needs 3 or more layers"):
        run_monotonicity(tmp_path, depth=2)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written
