"""svcca.plot.heatmap outlines the cells whose interval excludes a value, or that a mask
(e.g. the cells surviving a multiple-comparison correction) names."""

from __future__ import annotations

import numpy as np
import pytest

import svcca

plot = pytest.importorskip("svcca.plot")
pytest.importorskip("matplotlib")


def _layers(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return {
        "a": X,
        "b": np.tanh(X @ rng.standard_normal((5, 4))) + 0.3 * rng.standard_normal((n, 4)),
        "noise": rng.standard_normal((n, 3)),
    }


def _outlined(fig):
    """The (row, col) of each outlined cell."""
    return sorted((round(p.get_y() + 0.42), round(p.get_x() + 0.42)) for p in fig.axes[0].patches)


def test_cells_whose_interval_excludes_the_value_are_outlined():
    res = svcca.pairwise(_layers(), measure="cka_linear", uncertainty="jackknife", blocks=8)
    ab = float(res.values[0, 1])  # "which cells differ from a vs b?"
    want = np.argwhere((res.low > ab) | (res.high < ab)).tolist()
    fig = plot.heatmap(res, excludes=ab)
    assert _outlined(fig) == sorted(map(tuple, want))
    assert [0, 1] not in want and [0, 2] in want  # its own interval holds it; noise's not


def test_a_mask_of_surviving_cells_is_outlined():
    mask = np.array([[True, False], [False, False]])
    fig = plot.heatmap(np.array([[0.9, 0.1], [0.2, 0.8]]), mark=mask)
    assert _outlined(fig) == [(0, 0)]
    adj = svcca.stats.adjust_pvalues(np.array([[0.001, 0.5], [0.2, 0.004]]))
    assert _outlined(plot.heatmap(np.eye(2), mark=adj.rejected)) == [
        tuple(c) for c in np.argwhere(adj.rejected)
    ]


def test_marks_without_what_they_need_are_refused():
    plain = svcca.pairwise(_layers(), measure="cka_linear")
    with pytest.raises(ValueError, match="needs a PairwiseResult with intervals; got one without"):
        plot.heatmap(plain, excludes=0.0)
    with pytest.raises(ValueError, match="got a ndarray. Make it with svcca.pairwise"):
        plot.heatmap(np.eye(2), excludes=0.0)
    with pytest.raises(ValueError, match=r"mark= must be a boolean array of the matrix's shape"):
        plot.heatmap(np.eye(2), mark=np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="adjust_pvalues"):
        plot.heatmap(np.eye(2), mark=np.eye(2))
