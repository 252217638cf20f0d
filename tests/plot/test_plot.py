"""svcca.plot: what is drawn equals what was computed (data, not pixels)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import svcca.plot as sp  # noqa: E402
from conftest import run_examples  # noqa: E402

rng = np.random.default_rng(0)


def image_data(ax):
    return np.asarray(ax.images[0].get_array())


def test_import_plot_does_not_import_matplotlib():
    code = "import sys, svcca.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_heatmap_draws_the_matrix_with_labels():
    M = rng.random((3, 4))
    fig = sp.heatmap(M, row_labels=["a", "b", "c"], col_labels=list("wxyz"), title="t")
    ax = fig.axes[0]
    np.testing.assert_array_equal(image_data(ax), M)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("wxyz")
    assert {t.get_text() for t in ax.texts} == {f"{v:.2f}" for v in M.ravel()}
    with pytest.raises(ValueError, match="row_labels has 2 labels for 3"):
        sp.heatmap(M, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="matrix must be a 2-D array"):
        sp.heatmap(np.zeros(3))


def test_heatmap_of_a_pairwise_result_with_tuple_labels(tmp_path):
    import svcca

    reps = {
        ("e0", "fc1"): rng.standard_normal((80, 5)),
        ("e0", "fc2"): rng.standard_normal((80, 4)),
        ("e1", "fc1"): rng.standard_normal((80, 3)),
    }
    res = svcca.pairwise(reps, measure="cka_linear")
    fig = sp.heatmap(res, title="pairwise")
    ax, cbar = fig.axes
    np.testing.assert_array_equal(image_data(ax), res.values)
    want = ["e0/fc1", "e0/fc2", "e1/fc1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == want
    assert [t.get_text() for t in ax.get_xticklabels()] == want
    assert cbar.get_ylabel() == "cka_linear"
    assert {t.get_text() for t in ax.texts} == {f"{v:.2f}" for v in res.values.ravel()}
    # Explicit labels and colour-bar label win over the result's own.
    fig2 = sp.heatmap(res, row_labels="abc", cbar_label="CKA")
    assert [t.get_text() for t in fig2.axes[0].get_yticklabels()] == list("abc")
    assert fig2.axes[1].get_ylabel() == "CKA"
    with pytest.raises(ValueError, match="col_labels has 2 labels for 3"):
        sp.heatmap(res, col_labels=["a", "b"])
    # A real figure: it renders to a PNG.
    (png,) = sp.save(fig, tmp_path / "pairwise", formats=("png",))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # A rectangular result keeps rows and columns apart; plain string keys stay as given.
    rect = svcca.pairwise({"a": reps["e0", "fc1"]}, {"b": reps["e1", "fc1"]}, measure="cca")
    fig3 = sp.heatmap(rect)
    assert [t.get_text() for t in fig3.axes[0].get_yticklabels()] == ["a"]
    assert [t.get_text() for t in fig3.axes[0].get_xticklabels()] == ["b"]
    assert fig3.axes[1].get_ylabel() == "cca"


def test_learning_dynamics_panes():
    P = rng.random((4, 3, 3))
    fig = sp.learning_dynamics(
        P,
        steps=[0, 1, 2, 5],
        layers=["l1", "l2", "l3"],
        final_label="step 5",
        cbar_label="linear CKA",
    )
    panes = [ax for ax in fig.axes if ax.images]
    assert len(panes) == 4
    for t, ax in enumerate(panes):
        np.testing.assert_array_equal(image_data(ax), P[t])
    assert [ax.get_title() for ax in panes] == ["0", "1", "2", "5"]
    # What the columns are is said once, under the row of panes, not under each pane.
    assert [ax.get_xlabel() for ax in panes] == [""] * 4
    assert "step 5" in fig.get_supxlabel()
    assert panes[0].get_ylabel() and not any(ax.get_ylabel() for ax in panes[1:])
    (cbar,) = [ax for ax in fig.axes if not ax.images]
    assert cbar.get_ylabel() == "linear CKA"
    with pytest.raises(ValueError, match="must be square"):
        sp.learning_dynamics(rng.random((2, 3, 4)))
    with pytest.raises(ValueError, match="panes must be a 3-D array"):
        sp.learning_dynamics(rng.random((3, 3)))


def test_class_sensitivity_heatmap():
    M = rng.random((3, 10))
    fig = sp.class_sensitivity(M, layers=["c1", "c2", "fc"], classes=range(10))
    np.testing.assert_array_equal(image_data(fig.axes[0]), M)
    assert fig.axes[0].get_xlabel() == "class"


def test_interpretability_sorts_by_class_and_marks_boundaries():
    labels = np.array([2, 0, 1, 0, 2, 1, 1])
    raw = rng.random((7, 4))
    dirs = rng.random((7, 2))
    fig = sp.interpretability({"net A": (raw, dirs), "net B": (dirs, raw)}, labels, k=3)
    order = np.argsort(labels, kind="stable")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [
        "net A: raw neurons",
        "net A: top CCA directions",
        "net B: raw neurons",
        "net B: top CCA directions",
    ]
    for ax in axes:  # every pane says what its y axis and its lines are
        assert ax.get_ylabel()
        assert ax.get_legend() is not None
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["neuron 1", "neuron 2", "neuron 3"]
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == [
        "direction 1",
        "direction 2",
    ]
    data_lines = [ln for ln in axes[0].lines if ln.get_linestyle() == "-"]
    assert len(data_lines) == 3
    for i, ln in enumerate(data_lines):
        np.testing.assert_array_equal(ln.get_ydata(), raw[order, i])
    dir_lines = [ln for ln in axes[1].lines if ln.get_linestyle() == "-"]
    assert len(dir_lines) == 2  # only two directions exist
    np.testing.assert_array_equal(dir_lines[1].get_ydata(), dirs[order, 1])
    bounds = sorted(ln.get_xdata()[0] for ln in axes[0].lines if ln.get_linestyle() == ":")
    assert bounds == [1.5, 4.5]  # classes 0,0 | 1,1,1 | 2,2
    with pytest.raises(ValueError, match="has 5 datapoints but labels has 7"):
        sp.interpretability({"a": (raw[:5], dirs[:5])}, labels)
    with pytest.raises(ValueError, match="labels must be 1-D"):
        sp.interpretability({"a": (raw, dirs)}, labels[:, None])
    with pytest.raises(ValueError, match="networks is empty"):
        sp.interpretability({}, labels)
    with pytest.raises(ValueError, match="k must be a positive int"):
        sp.interpretability({"a": (raw, dirs)}, labels, k=0)


def test_interpretability_names_directions_and_neurons():
    labels = np.array([0, 0, 1, 1, 2])
    raw, dirs = rng.random((5, 2)), rng.random((5, 2))
    fig = sp.interpretability(
        {"a": (raw, dirs)},
        labels,
        k=2,
        directions_label="top SVCCA directions",
        neuron_labels={"a": [17, 3]},
    )
    assert [ax.get_title() for ax in fig.axes] == ["a: raw neurons", "a: top SVCCA directions"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "neuron 17",
        "neuron 3",
    ]
    with pytest.raises(ValueError, match=r"neuron_labels\['a'\] has 1 names for the 2 raw"):
        sp.interpretability({"a": (raw, dirs)}, labels, k=2, neuron_labels={"a": [17]})


def test_interpretability_smoothing_is_a_moving_average():
    labels = np.zeros(20, dtype=int)
    raw = rng.random((20, 1))
    fig = sp.interpretability({"a": (raw, raw)}, labels, k=1, smooth=5)
    y = fig.axes[0].lines[0].get_ydata()
    padded = np.pad(raw[:, 0], (2, 2), mode="edge")
    np.testing.assert_allclose(y, [padded[i : i + 5].mean() for i in range(20)])


def test_compression_curves():
    ks = np.array([1, 2, 4, 8])
    curves = {"CCA": rng.random(4), "PCA": rng.random(4)}
    fig = sp.compression_curves(ks, curves, full=0.9, chance=0.1)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    for name, v in curves.items():
        np.testing.assert_array_equal(lines[name].get_xdata(), ks)
        np.testing.assert_array_equal(lines[name].get_ydata(), v)
    np.testing.assert_array_equal(lines["uncompressed"].get_ydata(), [0.9, 0.9])
    assert ax.get_xlabel() and ax.get_ylabel()
    # Every k is a tick, the last one included (a log axis alone stops at a power of 2).
    fig = sp.compression_curves(np.array([1, 2, 4, 8, 16, 32, 43]), {"x": rng.random(7)})
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["1", "2", "4", "8", "16", "32", "43"]
    with pytest.raises(ValueError, match="has 3 points but ks has 4"):
        sp.compression_curves(ks, {"x": [1, 2, 3]})


def test_convergence_curves():
    steps = np.arange(5)
    curves = {"l1": rng.random(5), "l2": rng.random(5)}
    fig = sp.convergence_curves(steps, curves, spread={"l1": np.full(5, 0.1)}, threshold=0.9)
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    np.testing.assert_array_equal(lines["l2"].get_ydata(), curves["l2"])
    assert len(fig.axes[0].collections) == 1  # one shaded band
    assert lines["level 0.9"].get_ydata() == [0.9, 0.9]  # the crossing level, in the legend
    assert fig.axes[0].get_ylabel() == "similarity to final"
    fig = sp.convergence_curves(steps, curves, ylabel="linear CKA with the end")
    assert fig.axes[0].get_ylabel() == "linear CKA with the end"
    with pytest.raises(ValueError, match="has 2 points but steps has 5"):
        sp.convergence_curves(steps, {"x": [1, 2]})


def test_group_similarity_means_and_errorbars():
    groups = {"true": rng.random((3, 4)), "shuffled": rng.random((3, 4))}
    fig = sp.group_similarity(["a", "b", "c", "d"], groups)
    ax = fig.axes[0]
    means = [c.lines[0].get_ydata() for c in ax.containers]
    np.testing.assert_allclose(means[0], groups["true"].mean(0))
    np.testing.assert_allclose(means[1], groups["shuffled"].mean(0))
    with pytest.raises(ValueError, match="has 4 columns for 3 layers"):
        sp.group_similarity(["a", "b", "c"], groups)


def test_coefficient_curves_with_baselines():
    rho, base = np.sort(rng.random(6))[::-1], np.sort(rng.random(6))[::-1] * 0.3
    fig = sp.coefficient_curves({"fc1": rho}, baselines={"fc1": base, "extra": base / 2})
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    np.testing.assert_array_equal(lines["fc1"].get_ydata(), rho)
    np.testing.assert_array_equal(lines["fc1: random baseline"].get_ydata(), base)
    assert lines["fc1: random baseline"].get_color() == lines["fc1"].get_color()
    np.testing.assert_array_equal(lines["extra (random)"].get_ydata(), base / 2)


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def test_coefficient_legend_covers_no_curve():
    """Curves run from the top left to the bottom right: the legend sits outside the axes."""
    rho = np.sort(rng.random(36))[::-1]
    fig = sp.coefficient_curves(
        {"conv2": rho, "fc1": rho[:10]}, baselines={"conv2": rho * 0.2, "fc1": rho[:10] * 0.1}
    )
    renderer = _drawn(fig)
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))
    assert legend.x1 <= fig.bbox.x1 + 1  # and inside the figure


def test_save_png_and_svg(tmp_path):
    fig = sp.heatmap(np.eye(2))
    paths = sp.save(fig, tmp_path / "sub" / "eye.png")
    assert [p[-3:] for p in paths] == ["png", "svg"]
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths[1]) as f:
        assert "<svg" in f.read()
    assert fig.get_layout_engine() is not None  # restored after saving
    with pytest.raises(ValueError, match="formats may hold"):
        sp.save(fig, tmp_path / "x", formats=("jpg",))


def test_docstring_examples():
    """The Examples of svcca.plot's public functions run (found through the public names)."""
    import svcca.plot as plot

    result = run_examples(*(getattr(plot, name) for name in plot.__all__))
    assert result.attempted >= 2 and result.failed == 0


def test_long_titles_wrap_inside_the_figure():
    title = "a long title that says exactly what is drawn and on which data " * 3
    for fig, text in (
        (sp.learning_dynamics(rng.random((2, 3, 3)), title=title), lambda f: f._suptitle),
        (sp.compression_curves([1, 2], {"x": [0.1, 0.2]}, title=title), lambda f: f.axes[0].title),
        (sp.heatmap(np.eye(2), title=title), lambda f: f.axes[0].title),
    ):
        renderer = _drawn(fig)
        box = text(fig).get_window_extent(renderer)
        assert "\n" in text(fig).get_text()
        assert box.x0 >= -1 and box.x1 <= fig.bbox.x1 + 1, text(fig).get_text()
