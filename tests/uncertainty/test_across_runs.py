"""svcca.stats.across_runs: a comparison's spread across training runs beside its spread
across datapoints, on several seeds of small representations that share a latent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats as sps

import svcca
from svcca.stats import AcrossRuns, across_runs

N = 400  # rows per run: above 20 (p + q) for p = q = 3, where the jackknife covers


def _layers(Z, rng, noise):
    """Three 'layers' reading the shared latent Z through their own maps, plus noise."""
    return {
        "a": Z[:, :3] @ rng.standard_normal((3, 3)) + 0.5 * rng.standard_normal((len(Z), 3)),
        "b": Z[:, 1:4] @ rng.standard_normal((3, 3)) + noise * rng.standard_normal((len(Z), 3)),
        "c": Z[:, 2:5] @ rng.standard_normal((3, 3)) + rng.standard_normal((len(Z), 3)),
    }


def _runs(k, measure, *, same_data, seed=0):
    """k runs. same_data: every run sees the same datapoints but has its own maps and a
    noise level for layer b that depends on the seed (the seed matters); else each run
    draws fresh datapoints from one population (fixed maps): only the sample differs."""
    root = np.random.default_rng(seed)
    Z0 = root.standard_normal((N, 5))
    out = []
    for r in range(k):
        if same_data:
            rng = np.random.default_rng([seed, r])
            reps = _layers(Z0, rng, noise=[0.2, 1.0, 3.0][r % 3])
        else:
            data = np.random.default_rng([seed, 100 + r])
            Z = data.standard_normal((N, 5))
            maps = np.random.default_rng(seed)  # the same maps (and noise draws' law) each run
            reps = _layers(Z, _Shared(maps, data), noise=1.0)
        out.append(svcca.pairwise(reps, measure=measure, uncertainty="jackknife", blocks=20))
    return out


class _Shared:
    """Maps from one generator (fixed over runs), noise from another (fresh per run)."""

    def __init__(self, maps, noise):
        self.maps, self.noise = maps, noise

    def standard_normal(self, shape):
        return (self.maps if shape == (3, 3) else self.noise).standard_normal(shape)


def test_summaries_are_those_of_the_stacked_runs():
    runs = _runs(4, "cka_linear", same_data=True)
    out = across_runs(runs)
    assert isinstance(out, AcrossRuns) and out.values.shape == (4, 3, 3)
    v = np.stack([r.values for r in runs])
    se = np.stack([r.standard_errors for r in runs])
    # the same float64 reductions on the same numbers: a few ulps
    np.testing.assert_allclose(out.mean, v.mean(0), rtol=1e-14)
    np.testing.assert_allclose(out.std, v.std(0, ddof=1), rtol=1e-12, atol=1e-16)
    np.testing.assert_array_equal(out.min, v.min(0))
    np.testing.assert_array_equal(out.max, v.max(0))
    np.testing.assert_allclose(out.within, np.sqrt((se**2).mean(0)), rtol=1e-14)
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(out.ratio[off], (out.std / out.within)[off], rtol=1e-14)
    # a with a: 1 in every run, spreads of round-off only: no ratio, no flag
    assert np.isnan(out.ratio[~off]).all() and not out.flagged[~off].any()
    t = sps.t.ppf(0.975, 3)
    np.testing.assert_allclose(out.high - out.mean, t * out.std / 2, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(out.mean - out.low, t * out.std / 2, rtol=1e-12, atol=1e-16)
    assert out.rows == out.cols == ("a", "b", "c") and out.runs == (0, 1, 2, 3)
    assert out.measure == "cka_linear" and out.level == 0.95


def test_runs_that_differ_by_the_seed_are_flagged():
    out = across_runs(_runs(6, "cca", same_data=True))
    # the across-run interval stays in CCA's range [0, 1] (cut where mean -+ t s / sqrt(k)
    # leaves it), else it is the t interval
    t = sps.t.ppf(0.975, 5) * out.std / np.sqrt(6)
    np.testing.assert_allclose(out.low, np.clip(out.mean - t, 0, 1), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(out.high, np.clip(out.mean + t, 0, 1), rtol=1e-12, atol=1e-16)
    assert out.low.min() >= 0 and out.high.max() <= 1
    # b's noise level is 0.2, 1 or 3 by seed: a-b and b-c move far more than n = 400
    # datapoints explain
    assert out.flagged[0, 1] and out.flagged[1, 2] and out.flagged[1, 0]
    assert out.ratio[0, 1] > 5  # a-b: noise 0.2 vs 3 changes CCA by far more than its SE
    # the across-run interval is wider than one run's: it carries the seed's spread
    one = np.stack([r.high - r.low for r in _runs(6, "cca", same_data=True)]).max(0)
    assert out.high[0, 1] - out.low[0, 1] > one[0, 1]


def test_runs_that_differ_only_by_datapoints_are_not_flagged():
    # Fresh datapoints per run, one population: the across-run SD estimates the within-run
    # SE, ratio near 1 (a little under: the jackknife variance is biased upward, Efron &
    # Stein 1981; ratios of 0.6-1.0 over 40 runs at three seeds when this was written).
    # With k = 12 runs the SD's own relative error is ~ 1/sqrt(22) = 0.21, so a threshold
    # of 2 sits > 4 of those above; observed here: 0.57, 0.69, 0.84.
    out = across_runs(_runs(12, "cca", same_data=False), threshold=2.0)
    off = ~np.eye(3, dtype=bool)
    assert not out.flagged.any()
    assert 0.4 < out.ratio[off].min() and out.ratio[off].max() < 2.0, out.ratio


def test_mapping_labels_runs_and_to_pandas_is_long():
    pd = pytest.importorskip("pandas")
    runs = _runs(3, "cka_linear", same_data=True)
    out = across_runs({"seed0": runs[0], "seed1": runs[1], "seed2": runs[2]})
    assert out.runs == ("seed0", "seed1", "seed2")
    df = out.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 9
    assert list(df.columns) == [
        "row", "col", "mean", "std", "min", "max", "within", "ratio", "flagged", "low", "high"
    ]  # fmt: skip
    line = df[(df.row == "a") & (df.col == "b")].iloc[0]
    assert line["mean"] == out.mean[0, 1] and line["flagged"] == out.flagged[0, 1]
    assert df.attrs["runs"] == ["seed0", "seed1", "seed2"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.threshold = 3.0  # type: ignore[misc]


def _pair(seed, **kw):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((200, 2))
    reps = {"a": Z + 0.3 * rng.standard_normal((200, 2)), "b": Z @ rng.standard_normal((2, 2))}
    reps.update(kw.pop("extra", {}))
    kw.setdefault("measure", "cca")
    return svcca.pairwise(reps, **kw)


def test_mismatched_or_unfit_runs_are_refused_with_the_fix():
    good = _pair(0, uncertainty="jackknife")
    with pytest.raises(ValueError, match=r"at least 2 runs.*got 1"):
        across_runs([good])
    with pytest.raises(TypeError, match=r"sequence.*of PairwiseResult; got ndarray"):
        across_runs(np.zeros((2, 2, 2)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Run 1 is a ndarray, not a PairwiseResult"):
        across_runs([good, good.values])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"Run 1 has no within-run uncertainty.*uncertainty="):
        across_runs([good, _pair(1)])
    with pytest.raises(ValueError, match=r"Run 1 has measure 'cka_linear' but run 0 has 'cca'"):
        across_runs([good, _pair(1, measure="cka_linear", uncertainty="jackknife")])
    rng = np.random.default_rng(2)
    more = _pair(1, uncertainty="jackknife", extra={"c": rng.standard_normal((200, 2))})
    with pytest.raises(ValueError, match=r"Run 'b' has rows \('a', 'b', 'c'\) but run 'a'"):
        across_runs({"a": good, "b": more})
    with pytest.raises(ValueError, match=r"has level 0.9 but run 0 has 0.95.*same level="):
        across_runs([good, _pair(1, uncertainty="jackknife", level=0.9)])
    kept = [_pair(s, measure="svcca", uncertainty="jackknife", keep=s + 1) for s in (0, 1)]
    with pytest.raises(ValueError, match=r"has settings \{'keep': 2.* same settings"):
        across_runs(kept)
    with pytest.raises(ValueError, match=r"threshold must be a positive finite number; got 0"):
        across_runs([good, good], threshold=0)


def test_the_across_run_interval_is_cut_to_the_measures_range():
    # three runs whose noise level is the seed's (0.3, 1.3, 2.3): CCA spreads so wide that
    # mean - t_2 s / sqrt(3) falls below 0, where no population CCA lies
    runs = []
    for seed in range(3):
        r = np.random.default_rng(seed)
        Z = r.standard_normal((400, 5))
        layers = {
            f"l{k}": Z[:, k : k + 3] @ r.standard_normal((3, 3))
            + (0.3 + seed) * r.standard_normal((400, 3))
            for k in range(3)
        }
        runs.append(svcca.pairwise(layers, measure="cca", uncertainty="jackknife"))
    out = across_runs(runs)
    raw = out.mean - sps.t.ppf(0.975, 2) * out.std / np.sqrt(3)
    assert raw[0, 1] < 0 and out.low[0, 1] == 0.0
    assert out.high[0, 1] == pytest.approx(2 * out.mean[0, 1] - raw[0, 1], rel=1e-12)


def test_streamed_compare_results_of_several_seeds():
    """Three trained-from-different-seeds networks (here: initialised from three seeds)
    compared with a reference model by svcca.torch.compare: their per-run results feed
    across_runs as pairwise's do, and the mean equals the mean of the runs' cells."""
    import torch

    import svcca.torch as st

    def net(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6), torch.nn.Tanh()
        ).double()

    x = torch.randn(500, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    batches = list(x.split(128))
    ref = net(100)
    runs = {
        f"seed{s}": st.compare(
            net(s),
            ref,
            batches,
            ["1", "3"],
            measure="cka_linear",
            uncertainty="jackknife",
            blocks=10,
        )  # fmt: skip
        for s in range(3)
    }
    out = across_runs(runs)
    values = np.stack([r.values for r in runs.values()])
    np.testing.assert_allclose(out.mean, values.mean(0), rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.std, values.std(0, ddof=1), rtol=0, atol=1e-15)
    assert out.mean.shape == (2, 2) and (out.within > 0).all()
