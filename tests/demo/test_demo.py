"""svcca demo: its numbers agree with single library calls, and it writes every figure."""

from __future__ import annotations

import io
import json
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from conftest import tol

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import svcca  # noqa: E402
from svcca._cli import main  # noqa: E402
from svcca._demo import DemoConfig  # noqa: E402

# private: the demo's analysis steps on tiny data (`svcca demo` runs them all, below)
from svcca._demo import _analysis as an  # noqa: E402
from svcca._demo import _claims as cl  # noqa: E402
from svcca._demo import _uncertain as un  # noqa: E402

rng = np.random.default_rng(0)


def latent_pair(n=600, p=30, q=20, k=5):
    Z = rng.standard_normal((n, k))
    X = Z @ rng.standard_normal((k, p)) + 0.5 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((k, q)) + 0.5 * rng.standard_normal((n, q))
    return X, Y


def multiple_correlation(X, z):
    """Independent reference: the correlation of ``z`` with its least-squares fit from X."""
    Xc, zc = X - X.mean(0), z - z.mean()
    fit = Xc @ np.linalg.lstsq(Xc, zc, rcond=None)[0]
    return float(fit @ zc / (np.linalg.norm(fit) * np.linalg.norm(zc)))


def test_cka_with_final_matches_single_calls():
    X, Y = latent_pair(n=200)
    series = [
        {"a": X + s * rng.standard_normal(X.shape), "b": Y + s * rng.standard_normal(Y.shape)}
        for s in (2.0, 1.0, 0.0)
    ]
    got = an.cka_with_final(series, ["a", "b"])
    ref = np.array(
        [[[svcca.cka(acts[i], series[-1][j]).score for j in "ab"] for i in "ab"] for acts in series]
    )
    np.testing.assert_allclose(got, ref, atol=1e-12)
    np.testing.assert_allclose(got[-1].diagonal(), 1.0, atol=1e-12)
    diag = an.cka_with_final_self(series, ["a", "b"])
    np.testing.assert_allclose(diag, np.diagonal(ref, axis1=1, axis2=2), atol=1e-12)


def test_logit_correlation_is_the_multiple_correlation():
    X, _ = latent_pair()
    X[:, 4] = 0.0  # a dead neuron
    z = X[:, :3] @ [1.0, -2.0, 0.5] + rng.standard_normal(len(X))
    assert an.logit_correlation(X, z) == pytest.approx(multiple_correlation(X, z), abs=1e-10)


def test_spread_keeps_first_and_last():
    assert an._spread(5, 8) == [0, 1, 2, 3, 4]
    s = an._spread(16, 6)
    assert s[0] == 0 and s[-1] == 15 and len(s) == 6


TINY = DemoConfig(
    seeds=2,
    cnn_epochs=2,
    mlp_epochs=2,
    memorise_epochs=5,
    memorise_seeds=2,
    threads=1,
    formats=("png",),
)


@dataclass
class TinyDemo:
    report: Any  # DemoReport
    stdout: str
    stderr: str
    figures: dict[str, Any]  # name -> the matplotlib Figure the demo saved


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """``svcca demo`` through the CLI at TINY sizes: report, output and every Figure."""
    import svcca._demo
    import svcca.plot

    out = tmp_path_factory.mktemp("demo")
    figures: dict[str, Any] = {}
    reports = []
    real_save, real_run = svcca.plot.save, svcca._demo.run_demo

    def save(fig, path, **kw):
        figures[os.path.basename(os.fspath(path))] = fig
        return real_save(fig, path, **kw)

    def run(*args, **kw):
        reports.append(real_run(*args, **kw))
        return reports[-1]

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DemoConfig, "make", classmethod(lambda cls, quick: TINY))
        mp.setattr(svcca.plot, "save", save)
        mp.setattr(svcca._demo, "run_demo", run)
        with redirect_stdout(stdout), redirect_stderr(stderr):
            rc = main(["demo", "--quick", "--out", str(out)])
    assert rc == 0, stderr.getvalue()[-2000:]
    return TinyDemo(reports[0], stdout.getvalue(), stderr.getvalue(), figures)


NAMES = [
    "learning_dynamics_cnn",
    "convergence_cnn",
    "learning_dynamics_mlp",
    "convergence_mlp",
    "class_sensitivity",
    "interpretability",
    "compression",
    "generalising_vs_memorising",
    "coefficients",
]


def test_demo_writes_every_figure_with_a_finding(tiny_demo):
    report = tiny_demo.report
    names = [f.name for f in report.figures]
    assert names == NAMES
    assert sorted(tiny_demo.figures) == sorted(NAMES)
    page = open(report.index).read()
    readme = open(report.readme).read()
    for fg in report.figures:
        for f in fg.files:
            path = os.path.join(report.out, f)
            assert os.path.getsize(path) > 1000, path
        assert f"{fg.name}.png" in page and f"({fg.name}.png)" in readme
        assert fg.finding in readme
    saved = json.load(open(os.path.join(report.out, "findings.json")))
    assert [f["name"] for f in saved["figures"]] == names
    assert [f["finding"] for f in saved["figures"]] == [f.finding for f in report.figures]
    ckpts = os.listdir(os.path.join(report.out, "checkpoints"))
    assert "cnn-seed0-epoch002.pt" in ckpts and "cnn-seed1-epoch000.pt" in ckpts
    assert set(report.accuracies) == {"cnn-seed0", "cnn-seed1", "mlp-seed0", "mlp-seed1"}


def test_captions_are_distinct_and_each_holds_a_measured_number(tiny_demo):
    figures = tiny_demo.report.figures
    findings = [fg.finding for fg in figures]
    assert len(set(findings)) == len(findings)
    assert len({fg.title for fg in figures}) == len(figures)
    for fg in figures:
        assert re.search(r"\d\.\d", fg.finding), fg.finding  # a measured value, not a count


def test_cli_prints_each_finding_once(tiny_demo):
    out, err = tiny_demo.stdout, tiny_demo.stderr
    for fg in tiny_demo.report.figures:
        assert f"{fg.name}: {fg.finding}" in out.splitlines()
        assert (out + err).count(fg.finding) == 1, fg.name
    assert "index.html" in err  # progress still says what was written


COMPARING = {  # the figures whose findings compare numbers: how many claims each makes
    "convergence_cnn": 6,  # 3 steps after epoch 1, 3 steps of the crossings
    "convergence_mlp": 6,
    "class_sensitivity": 2,  # most vs least correlated digit, per drawn layer
    "generalising_vs_memorising": 4,  # per layer
}


def test_findings_that_compare_numbers_state_intervals_and_verdicts(tiny_demo):
    """Each comparison's numbers, interval and verdict are in its finding, in
    findings.json and in the HTML table; a difference that does not hold says so."""
    report = tiny_demo.report
    saved = json.load(open(os.path.join(report.out, "findings.json")))  # strict JSON
    page = open(report.index).read()
    for fg, js in zip(report.figures, saved["figures"], strict=True):
        if fg.name not in COMPARING:
            assert fg.claims == () and js["claims"] == []
            continue
        assert len(fg.claims) == COMPARING[fg.name], fg.name
        assert js["claims"] == [dict(c) for c in fg.claims]
        assert "[95% interval" in fg.finding
        for c in fg.claims:
            assert len(c["values"]) == (
                TINY.seeds if fg.name != "generalising_vs_memorising" else 1
            )
            digits = 1 if c["quantity"].startswith("epoch") else 2
            ends = tuple(float("nan") if v is None else v for v in c["difference_interval"])
            assert un.iv(ends, digits) in fg.finding  # the stated interval is the claim's
            if c["holds"]:
                assert c["why"] == "" and max(c["adjusted"]) <= 0.05
            else:
                assert f"does not hold: {c['why']}" in fg.finding
        assert "Holm over" in fg.finding
    assert page.count("<table class='claims'>") == len(COMPARING)
    conv = next(f for f in report.figures if f.name == "convergence_cnn")
    for c in conv.claims[:3]:  # the epoch-1 steps: each names its difference
        assert f"{c['first']} minus {c['second']} " in conv.finding
    # one pair of seeds per group at TINY size: no interval across pairs, said so
    gm = next(f for f in report.figures if f.name == "generalising_vs_memorising")
    assert all(c["difference_interval"][1] is None for c in gm.claims)
    assert all(not c["holds"] for c in gm.claims)


def test_generalising_vs_memorising_needs_two_matching_groups():
    with pytest.raises(ValueError, match="two groups of as many runs"):
        an.generalising_vs_memorising({"a": [None, None], "b": [None]}, np.zeros((2, 64)))


def _colorbars(fig):
    return [ax for ax in fig.axes if not ax.images and not ax.lines and not ax.containers]


def _labelled_lines(ax):
    return [ln for ln in ax.lines if not ln.get_label().startswith("_")]


def test_every_figure_labels_its_axes_and_lines(tiny_demo):
    for name, fig in tiny_demo.figures.items():
        for ax in fig.axes:
            if ax in _colorbars(fig):
                assert ax.get_ylabel(), f"{name}: colour bar without a label"
                continue
            assert ax.get_title() or fig.get_suptitle(), name
            if ax.lines or ax.containers:  # line plots: y axis and legend
                assert ax.get_ylabel(), name
                if len(_labelled_lines(ax)) > 1:
                    assert ax.get_legend() is not None, name
        assert any(ax.get_xlabel() for ax in fig.axes) or fig.get_supxlabel(), name


def test_learning_dynamics_panes_say_the_final_epoch_once(tiny_demo):
    for arch in ("cnn", "mlp"):
        fig = tiny_demo.figures[f"learning_dynamics_{arch}"]
        panes = [ax for ax in fig.axes if ax.images]
        assert [ax.get_xlabel() for ax in panes] == [""] * len(panes)
        assert f"epoch {TINY.cnn_epochs}" in fig.get_supxlabel()
        assert len({ax.get_title() for ax in panes}) == len(panes)
        (cbar,) = _colorbars(fig)
        assert "CKA" in cbar.get_ylabel()


def test_class_sensitivity_leaves_out_the_layer_the_logits_are_linear_in(tiny_demo):
    ax = tiny_demo.figures["class_sensitivity"].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conv1", "conv2"]
    finding = next(f.finding for f in tiny_demo.report.figures if f.name == "class_sensitivity")
    assert "fc1" in finding  # the caption says why the row is missing


def test_interpretability_panes_name_svcca_and_their_lines(tiny_demo):
    fig = tiny_demo.figures["interpretability"]
    finding = next(f.finding for f in tiny_demo.report.figures if f.name == "interpretability")
    assert "SVCCA" in finding
    titles = [ax.get_title() for ax in fig.axes]
    assert sum("SVCCA" in t for t in titles) == 2 and sum("raw" in t for t in titles) == 2
    for ax in fig.axes:
        assert ax.get_ylabel() and ax.get_legend() is not None
        assert len(ax.get_legend().get_texts()) == 3


def test_compression_ticks_reach_the_last_k(tiny_demo):
    ax = tiny_demo.figures["compression"].axes[0]
    ks = next(iter(ln for ln in ax.lines if ln.get_label().startswith("CCA"))).get_xdata()
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{k:g}" for k in ks]


def _renderer(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def test_coefficient_legend_covers_no_curve(tiny_demo):
    fig = tiny_demo.figures["coefficients"]
    renderer = _renderer(fig)
    ax = fig.axes[0]
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_no_title_or_label_is_cut_off(tiny_demo):
    for name, fig in tiny_demo.figures.items():
        renderer = _renderer(fig)
        texts = [fig._suptitle, fig._supxlabel] + [
            t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)
        ]
        for t in texts:
            if t is None or not t.get_text():
                continue
            box = t.get_window_extent(renderer)
            inside = box.x0 >= -1 and box.y0 >= -1
            inside = inside and box.x1 <= fig.bbox.x1 + 1 and box.y1 <= fig.bbox.y1 + 1
            assert inside, f"{name}: {t.get_text()!r} runs off the figure"


def test_logits_are_linear_in_the_last_hidden_layer():
    """Why class sensitivity leaves fc1 out: a logit W h + b correlates 1 with h."""
    X, _ = latent_pair()
    X[:, 3] = 0.0  # a dead ReLU unit
    z = X @ rng.standard_normal(X.shape[1]) + 0.3
    assert an.logit_correlation(X, z) == pytest.approx(1.0, abs=tol(factor=100 * X.shape[1]))


def test_own_row_epochs():
    # Layer 0 peaks on its diagonal from step 0; layer 1 from step 2 (step 1 misses); the
    # last pane is the final network against itself.
    P = np.array(
        [
            [[0.9, 0.5], [0.6, 0.4]],
            [[0.9, 0.5], [0.7, 0.8]],
            [[0.9, 0.5], [0.2, 0.3]],
            [[1.0, 0.5], [0.5, 1.0]],
        ]
    )
    P[1, 1] = [0.9, 0.8]  # step 1: layer 1 closer to final layer 0
    np.testing.assert_array_equal(an.own_row_epochs(P), [0, 2])


def test_dynamics_finding_states_what_the_runs_show():
    layers = ("a", "b", "c")
    k = 5

    def falls(ok):  # "a > b", "b > c" after epoch 1, each with 5 runs' paired p-values
        claims = []
        for first, second, good in (("a", "b", ok[0]), ("b", "c", ok[1])):
            d = 0.05 if good else 0.0
            v = np.stack([0.9 + d + 0.01 * np.arange(k), 0.9 + 0.01 * np.arange(k)], axis=1)
            p = np.full(k, 1e-8 if good else 0.5)
            claims.append(un.claim(first, second, v, pvalues=p, bounds=(0, 1)))
        return un.settle(claims)

    def crossings(order):
        c = np.tile(np.asarray(order, float), (k, 1))
        return cl.crossing_claims(layers, c, 6)

    both = cl.dynamics_finding(layers, falls((1, 1)), crossings([0, 1, 2]), 0.9, 1)
    late = cl.dynamics_finding(layers, falls((1, 1)), crossings([0, 2, 1]), 0.9, 1)
    rise = cl.dynamics_finding(layers, falls((1, 0)), crossings([0, 1, 2]), 0.9, 1)
    neither = cl.dynamics_finding(layers, falls((1, 0)), crossings([0, 2, 1]), 0.9, 1)
    verdicts = [f.split(". ")[-1] for f in (both, late, rise, neither)]
    assert len(set(verdicts)) == 4
    assert "every step holding" in both and "does not hold" not in both
    for f in (late, neither):  # the crossing out of order is named, with its numbers
        assert "c after b by -1.0" in f and "c after b" in f.split(". ")[-1]
    for f in (rise, neither):  # and the step that does not hold at epoch 1
        assert "b minus c 0.00" in f and "b > c" in f.split(". ")[-1]
    assert "Holm over 10 tests" in both  # 2 steps x 5 seeds
    assert "a minus b 0.05 [0.05, 0.05], holds in each of 5 seeds" in both


def test_cli_demo_argument_errors(capsys):
    assert main(["demo", "--seeds", "3"]) == 2
    assert "--seeds applies to --sanity and --monotonicity only" in capsys.readouterr().err
    assert main(["demo", "--sanity", "--seeds", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert main(["demo", "--sanity", "--monotonicity"]) == 2
    assert "two runs: give one of them" in capsys.readouterr().err
    assert main(["demo", "--monotonicity", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_monotonicity_quick(tmp_path, capsys):
    out = tmp_path / "mono"
    assert (
        main(["demo", "--monotonicity", "--quick", "--quiet", "--seeds", "1", "--out", str(out)])
        == 0
    )
    table = capsys.readouterr().out
    assert "cka_linear" in table and "mutual_knn" in table
    assert (out / "monotonicity.json").is_file() and (out / "monotonicity.md").is_file()


@pytest.mark.slow
def test_cli_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "learning_dynamics_cnn:" in out and "compression:" in out
    assert (tmp_path / "index.html").exists()


def test_class_sensitivity_dft_cca_is_cca_of_the_spatial_mean():
    from svcca.conv import fourier_cca

    A = rng.standard_normal((400, 4, 6, 6))  # (n, c, h, w)
    z = A[:, 1].mean(axis=(1, 2)) + 0.2 * rng.standard_normal(400)
    dft = fourier_cca(A, z[:, None], layout="nchw").score
    ref = multiple_correlation(A.mean(axis=(2, 3)), z)
    assert dft == pytest.approx(ref, abs=1e-9)
    assert an.logit_correlation(A, z) == pytest.approx(ref, abs=1e-9)
