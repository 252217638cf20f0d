"""The SVCCA paper's figures of neurons and directions: class sensitivity,
interpretability, compression, group similarity and coefficient curves (matplotlib,
imported only when a function runs; the shared helpers live in :mod:`._figures`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from svcca.plot._figures import _figure, _label_text, _labels, _matrix, _wrap, heatmap

__all__ = [
    "class_sensitivity",
    "coefficient_curves",
    "compression_curves",
    "group_similarity",
    "interpretability",
]


def class_sensitivity(
    matrix: Any,
    *,
    layers: Sequence[str] | None = None,
    classes: Sequence[Any] | None = None,
    title: str = "Similarity of each class's logit to each layer",
    cbar_label: str = "canonical correlation",
) -> Any:
    """Layer x class heatmap of how strongly each layer carries each class's logit.

    Parameters
    ----------
    matrix : array_like, shape (L, C)
        Entry ``(l, c)``: similarity (e.g. the canonical correlation) between layer ``l``
        and the output logit of class ``c``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, svcca.plot
    >>> matrix = np.random.default_rng(0).uniform(0.5, 1.0, (2, 10))  # 2 layers, 10 classes
    >>> fig = svcca.plot.class_sensitivity(matrix, layers=["conv1", "conv2"])
    >>> fig.axes[0].images[0].get_array().shape
    (2, 10)
    """
    M = _matrix(matrix, "matrix")
    return heatmap(
        M,
        row_labels=layers,
        col_labels=classes,
        title=title,
        xlabel="class",
        ylabel="layer",
        vmin=None,
        vmax=None,
        cbar_label=cbar_label,
        cmap="magma",
        annotate=True,
    )


def _sorted_by_class(labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    order = np.argsort(labels, kind="stable")
    s = labels[order]
    boundaries = [int(i) for i in np.flatnonzero(s[1:] != s[:-1]) + 1]
    return order, boundaries


def interpretability(
    networks: Mapping[str, tuple[Any, Any]],
    labels: Any,
    *,
    k: int = 3,
    smooth: int = 1,
    class_names: Sequence[Any] | None = None,
    directions_label: str = "top CCA directions",
    neuron_labels: Mapping[str, Sequence[Any]] | None = None,
) -> Any:
    """Raw neurons against the top CCA directions, over datapoints sorted by class.

    The SVCCA paper's interpretability picture: for networks trained from different
    seeds, the first few raw neurons of a layer look unrelated across runs, while the
    top canonical directions (computed between the runs) trace the same curve. Class
    boundaries are dotted vertical lines.

    Parameters
    ----------
    networks : dict of str to (raw, directions)
        For each network, its raw activations ``(n, p)`` and canonical variates
        ``(n, k')`` on the same ``n`` datapoints.
    labels : array_like, shape (n,)
        Class of each datapoint; columns are drawn in the order of a stable sort by it.
    k : int, default 3
        Neurons and directions drawn per pane.
    smooth : int, default 1
        Width of a moving average along the datapoints (1: none), for readability.
    directions_label : str, default "top CCA directions"
        What the directions are (e.g. ``"top SVCCA directions"``): the right-hand
        panes' title; each line is labelled "direction i" in the legend.
    neuron_labels : dict of str to sequence, optional
        For each network, the names of its raw columns in the legend (e.g. the
        neurons' indices in the layer); default "neuron 1", "neuron 2", ...

    Returns
    -------
    matplotlib.figure.Figure
        A grid with one row per network and two columns (raw neurons, directions);
        line ``i`` of each pane has y-data ``A[order, i]`` (smoothed), ``order`` the
        class sort, and a legend entry.

    Examples
    --------
    >>> import numpy as np, svcca, svcca.plot
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat(np.arange(3), 50)
    >>> shared = np.eye(3)[labels] + 0.1 * rng.standard_normal((150, 3))
    >>> A = shared @ rng.standard_normal((3, 8))  # two runs: the same signal, other neurons
    >>> B = shared @ rng.standard_normal((3, 6))
    >>> u, v = svcca.cca(A, B).transform(A, B)
    >>> fig = svcca.plot.interpretability({"run 1": (A, u), "run 2": (B, v)}, labels, k=2)
    >>> len(fig.axes)  # one row per run: raw neurons, directions
    4
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class per datapoint); got shape {y.shape}.")
    if not networks:
        raise ValueError("networks is empty: give at least one name -> (raw, directions).")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int; got {k!r}.")
    order, bounds = _sorted_by_class(y)
    fig = _figure(11, 1.9 * len(networks) + 0.6)
    grid = fig.subplots(len(networks), 2, squeeze=False, sharex=True)
    for r, (name, (raw, dirs)) in enumerate(networks.items()):
        panes = (
            (raw, "raw neurons", _neuron_names(neuron_labels, name, raw, k), "activation"),
            (dirs, directions_label, None, "canonical variate"),
        )
        for c, (A, what, line_names, ylabel) in enumerate(panes):
            A = _matrix(A, f"{what} of {name!r}")
            if A.shape[0] != y.size:
                raise ValueError(
                    f"{what} of {name!r} has {A.shape[0]} datapoints but labels has {y.size}."
                )
            ax = grid[r][c]
            for i in range(min(k, A.shape[1])):
                label = line_names[i] if line_names else f"direction {i + 1}"
                ax.plot(_moving_average(A[order, i], smooth), lw=0.9, label=label)
            for b in bounds:
                ax.axvline(b - 0.5, color="0.4", ls=":", lw=0.8)
            ax.set_title(f"{name}: {what}", fontsize=9)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    centres = np.r_[0, bounds] + np.diff(np.r_[0, bounds, y.size]) / 2
    names = _labels(class_names, len(centres), "class_names") if class_names else None
    if names is None:
        names = [str(v) for v in np.unique(y)]
    smoothed = f"; each line a moving average over {smooth} datapoints" if smooth > 1 else ""
    for ax in grid[-1]:
        ax.set_xticks(centres, names, fontsize=8)
        ax.set_xlabel(f"datapoints, sorted by class{smoothed}", fontsize=8)
    return fig


def _neuron_names(
    neuron_labels: Mapping[str, Sequence[Any]] | None, name: str, raw: Any, k: int
) -> list[str]:
    """Legend names of the ``min(k, p)`` raw columns drawn for network ``name``."""
    drawn = min(k, np.shape(raw)[1]) if np.ndim(raw) == 2 else 0
    given = None if neuron_labels is None else neuron_labels.get(name)
    if given is None:
        return [f"neuron {i + 1}" for i in range(drawn)]
    if len(given) < drawn:
        raise ValueError(
            f"neuron_labels[{name!r}] has {len(given)} names for the {drawn} raw columns "
            "drawn; give one per column."
        )
    return [f"neuron {_label_text(g)}" for g in given[:drawn]]


def _moving_average(v: np.ndarray, w: int) -> np.ndarray:
    if w <= 1:
        return v
    kernel = np.ones(w) / w
    return np.convolve(np.pad(v, (w // 2, w - 1 - w // 2), mode="edge"), kernel, mode="valid")


def compression_curves(
    ks: Any,
    curves: Mapping[str, Any],
    *,
    full: float | None = None,
    chance: float | None = None,
    title: str = "Accuracy after projecting onto the top-k directions",
    xlabel: str = "k (directions kept)",
) -> Any:
    """Accuracy (or any score) against the number of directions kept, one line a method.

    Parameters
    ----------
    ks : array_like, shape (m,)
    curves : dict of str to array_like, shape (m,)
        E.g. ``{"CCA": acc_cca, "PLS": acc_pls, "PCA": acc_pca}``.
    full, chance : float, optional
        Horizontal reference lines: the uncompressed network and chance level.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import svcca.plot
    >>> ks = [1, 2, 4, 8]
    >>> fig = svcca.plot.compression_curves(
    ...     ks, {"CCA": [0.5, 0.7, 0.9, 0.95], "PCA": [0.3, 0.5, 0.8, 0.94]}, full=0.96, chance=0.1
    ... )
    >>> len(fig.axes[0].lines)  # two curves, two reference lines
    4
    """
    x = _matrix(ks, "ks", 1)
    fig = _figure(5.2, 3.4)
    ax = fig.add_subplot()
    for name, v in curves.items():
        v = _matrix(v, f"curve {name!r}", 1)
        if v.shape != x.shape:
            raise ValueError(f"curve {name!r} has {v.size} points but ks has {x.size}.")
        ax.plot(x, v, marker="o", ms=3, label=name)
    if full is not None:
        ax.axhline(full, color="k", ls="--", lw=0.8, label="uncompressed")
    if chance is not None:
        ax.axhline(chance, color="0.5", ls=":", lw=0.8, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(x, [f"{v:g}" for v in x])  # every k drawn, the last one included
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy")
    ax.set_title(_wrap(title, 4.6), fontsize=10)
    ax.legend(fontsize=8)
    return fig


def group_similarity(
    layers: Sequence[str],
    groups: Mapping[str, Any],
    *,
    title: str = "Similarity within each group of networks",
    ylabel: str = "similarity",
) -> Any:
    """Per layer, the mean (and spread) of pairwise similarities within each group.

    Morcos et al. (2018): networks trained on true labels (generalising) converge to more
    similar representations than networks trained on shuffled labels (memorising).

    Parameters
    ----------
    layers : sequence of L names
    groups : dict of str to array_like, shape (n_pairs, L)
        Pairwise similarities inside each group, one row per pair of networks. The plot
        shows the mean over pairs with error bars of one standard deviation.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, svcca.plot
    >>> rng = np.random.default_rng(0)
    >>> groups = {
    ...     "true labels": rng.uniform(0.8, 0.9, (3, 2)),  # 3 pairs of networks, 2 layers
    ...     "shuffled labels": rng.uniform(0.4, 0.6, (3, 2)),
    ... }
    >>> fig = svcca.plot.group_similarity(["fc1", "fc2"], groups)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['fc1', 'fc2']
    """
    fig = _figure(5.2, 3.4)
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    for name, vals in groups.items():
        V = _matrix(vals, f"group {name!r}")
        if V.shape[1] != len(layers):
            raise ValueError(f"group {name!r} has {V.shape[1]} columns for {len(layers)} layers.")
        sd = V.std(axis=0) if V.shape[0] > 1 else np.zeros(V.shape[1])
        ax.errorbar(x, V.mean(axis=0), yerr=sd, marker="o", capsize=3, label=name)
    ax.set_xticks(x, list(layers))
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title, 4.6), fontsize=10)
    ax.legend(fontsize=8)
    return fig


def coefficient_curves(
    curves: Mapping[str, Any],
    *,
    baselines: Mapping[str, Any] | None = None,
    title: str = "Canonical correlation coefficients",
) -> Any:
    """Sorted canonical correlations, each with an optional random baseline (dashed).

    Tutorial 001's picture: the coefficients of two real layers against those of
    random matrices of the same shapes, so one sees how many directions are shared
    beyond chance.

    Parameters
    ----------
    curves : dict of str to array_like, shape (k,)
        Correlations, drawn against their index ``0..k-1``.
    baselines : dict of str to array_like, optional
        Drawn dashed in the colour of the curve with the same key.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, svcca, svcca.plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 20))
    >>> Y = X[:, :10] + 0.5 * rng.standard_normal((500, 10))
    >>> noise = svcca.cca(rng.standard_normal((500, 20)), rng.standard_normal((500, 10)))
    >>> fig = svcca.plot.coefficient_curves(
    ...     {"layers": svcca.cca(X, Y).correlations}, baselines={"layers": noise.correlations}
    ... )
    >>> len(fig.axes[0].lines)
    2
    """
    fig = _figure(7.4, 3.4)
    ax = fig.add_subplot()
    baselines = dict(baselines or {})
    for name, v in curves.items():
        v = _matrix(v, f"curve {name!r}", 1)
        (line,) = ax.plot(np.arange(v.size), v, lw=1.6, label=name)
        if name in baselines:
            b = _matrix(baselines.pop(name), f"baseline {name!r}", 1)
            ax.plot(
                np.arange(b.size),
                b,
                ls="--",
                lw=1.2,
                color=line.get_color(),
                label=f"{name}: random baseline",
            )
    for name, b in baselines.items():
        b = _matrix(b, f"baseline {name!r}", 1)
        ax.plot(np.arange(b.size), b, ls="--", lw=1.2, label=f"{name} (random)")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("CCA direction (sorted)")
    ax.set_ylabel("canonical correlation")
    ax.set_title(_wrap(title, 4.6), fontsize=10)
    # Outside the axes: the curves run from the top left to the bottom right and the
    # baselines along the bottom, so no corner inside is free on every run.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig
