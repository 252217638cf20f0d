"""The SVCCA paper's figures, drawn from matrices computed elsewhere.

Every function takes the numbers it draws (similarity matrices, correlations, accuracy
curves) and returns a :class:`matplotlib.figure.Figure`; nothing is computed here beyond
sorting and averaging, so a test can check that what is drawn equals what was computed.
Figures are built with ``matplotlib.figure.Figure`` directly: no pyplot state, no
backend switch, nothing shown on screen. matplotlib is imported only when a function
runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["convergence_curves", "heatmap", "learning_dynamics", "save"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _wrap(title: str, width: float, fontsize: float = 10) -> str:
    """``title`` broken into lines that fit ``width`` inches at ``fontsize`` points."""
    import textwrap

    chars = max(20, int(width * 72 / (0.55 * fontsize)))  # about 0.55 em per character
    return "\n".join(textwrap.fill(line, chars) for line in title.split("\n"))


def _matrix(a: Any, name: str, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array; got shape {arr.shape}.")
    return arr


def _label_text(label: Any) -> str:
    """A label as drawn: a tuple key (e.g. ``("e0", "fc1")``) reads ``"e0/fc1"``."""
    if isinstance(label, tuple):
        return "/".join(_label_text(part) for part in label)
    return str(label)


def _labels(labels: Sequence[Any] | None, n: int, name: str) -> list[str]:
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [_label_text(s) for s in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} labels for {n} rows/columns.")
    return labels


def _draw_heatmap(
    ax: Any,
    M: np.ndarray,
    rows: list[str],
    cols: list[str],
    *,
    vmin: float | None,
    vmax: float | None,
    cmap: str,
    annotate: bool,
) -> Any:
    im = ax.imshow(M, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(map(len, cols)) > 3 else 0)
    ax.set_yticks(range(len(rows)), rows)
    if annotate and M.size <= 400:
        lo = np.nanmin(M) if vmin is None else vmin
        hi = np.nanmax(M) if vmax is None else vmax
        mid = (lo + hi) / 2
        for (i, j), v in np.ndenumerate(M):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v < mid else "black",
            )
    return im


def heatmap(
    matrix: Any,
    *,
    row_labels: Sequence[Any] | None = None,
    col_labels: Sequence[Any] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    cbar_label: str | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    cmap: str = "viridis",
    annotate: bool = True,
    excludes: float | None = None,
    mark: Any = None,
) -> Any:
    """A labelled similarity matrix (e.g. layers x layers), with the values written in.

    Parameters
    ----------
    matrix : array_like, shape (r, c), or PairwiseResult
        A :class:`svcca._engines.PairwiseResult` (what :func:`svcca.pairwise` returns)
        brings its own ``values``, row and column labels and measure name. Tuple labels
        (keys such as ``("e0", "fc1")``) are drawn joined by ``/``: ``"e0/fc1"``.
    row_labels, col_labels : sequence, optional
        Tick labels; for a PairwiseResult they replace its own.
    cbar_label : str, optional
        Label of the colour bar; for a PairwiseResult its measure by default.
    excludes : float, optional
        Outline the cells whose interval excludes this value (a PairwiseResult made with
        ``uncertainty=``: ``low > excludes`` or ``high < excludes``), e.g. ``0`` for
        "similar beyond chance" or a reference cell's value.
    mark : array_like of bool, shape (r, c), optional
        Outline these cells too, e.g. ``svcca.stats.adjust_pvalues(p).rejected``: the
        cells that survive a multiple-comparison correction.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes[0].images[0].get_array()`` is ``matrix``; ``fig.axes[1]`` is the
        colour bar; each outlined cell is one rectangle in ``fig.axes[0].patches``.

    Examples
    --------
    >>> import numpy as np, svcca, svcca.plot
    >>> fig = svcca.plot.heatmap(np.eye(3), row_labels=["a", "b", "c"])
    >>> np.array_equal(fig.axes[0].images[0].get_array(), np.eye(3))
    True
    >>> rng = np.random.default_rng(0)
    >>> reps = {("e0", "fc1"): rng.standard_normal((50, 4)),
    ...         ("e1", "fc1"): rng.standard_normal((50, 3))}
    >>> fig = svcca.plot.heatmap(svcca.pairwise(reps, measure="cka_linear"))
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['e0/fc1', 'e1/fc1']
    >>> fig.axes[1].get_ylabel()
    'cka_linear'
    """
    M, row_labels, col_labels, measure = _unpack_pairwise(matrix, row_labels, col_labels)
    if cbar_label is None:
        cbar_label = measure
    rows = _labels(row_labels, M.shape[0], "row_labels")
    cols = _labels(col_labels, M.shape[1], "col_labels")
    fig = _figure(1.6 + 0.55 * M.shape[1], 1.6 + 0.45 * M.shape[0])
    ax = fig.add_subplot()
    im = _draw_heatmap(ax, M, rows, cols, vmin=vmin, vmax=vmax, cmap=cmap, annotate=annotate)
    marked = _marked_cells(matrix, M.shape, excludes, mark)
    if marked is not None:
        from matplotlib.patches import Rectangle

        for i, j in zip(*np.nonzero(marked), strict=True):
            ax.add_patch(
                # inset, so that two marked neighbours read as two marks
                Rectangle((j - 0.42, i - 0.42), 0.84, 0.84, fill=False, edgecolor="red", lw=1.5)
            )
    ax.set_title(_wrap(title, fig.get_figwidth() - 1.4), fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    cbar = fig.colorbar(im, ax=ax, shrink=0.8)
    cbar.set_label(cbar_label)
    return fig


def _marked_cells(
    matrix: Any, shape: tuple[int, ...], excludes: float | None, mark: Any
) -> np.ndarray | None:
    """The cells to outline: an interval excluding ``excludes``, or ``mark`` (or both)."""
    out = None
    if excludes is not None:
        low, high = getattr(matrix, "low", None), getattr(matrix, "high", None)
        if low is None or high is None:
            raise ValueError(
                "excludes= outlines the cells whose interval excludes a value, so it needs "
                "a PairwiseResult with intervals; got "
                + (
                    "one without them"
                    if hasattr(matrix, "low")
                    else f"a {type(matrix).__name__}"
                )
                + ". Make it with svcca.pairwise(..., uncertainty='jackknife')."
            )
        out = (np.asarray(low) > excludes) | (np.asarray(high) < excludes)
    if mark is not None:
        m = np.asarray(mark)
        if m.dtype != bool or m.shape != tuple(shape):
            raise ValueError(
                f"mark= must be a boolean array of the matrix's shape {tuple(shape)}; got "
                f"dtype {m.dtype} and shape {m.shape}. For p-values, pass "
                "svcca.stats.adjust_pvalues(p).rejected."
            )
        out = m if out is None else out | m
    return out


def _unpack_pairwise(
    matrix: Any, row_labels: Sequence[Any] | None, col_labels: Sequence[Any] | None
) -> tuple[np.ndarray, Sequence[Any] | None, Sequence[Any] | None, str]:
    """``(values, row labels, column labels, measure)`` of a PairwiseResult or an array."""
    from svcca._engines import PairwiseResult

    if isinstance(matrix, PairwiseResult):
        rows = matrix.rows if row_labels is None else row_labels
        cols = matrix.cols if col_labels is None else col_labels
        return _matrix(matrix.values, "matrix"), rows, cols, matrix.measure
    return _matrix(matrix, "matrix"), row_labels, col_labels, ""


def learning_dynamics(
    panes: Any,
    *,
    steps: Sequence[Any] | None = None,
    layers: Sequence[str] | None = None,
    final_label: str = "final",
    title: str = "",
    cbar_label: str = "similarity",
    cmap: str = "viridis",
) -> Any:
    """A row of heatmap panes: every layer at step t against every layer at the end.

    The SVCCA paper's Figure 4 layout: pane ``t`` has entry ``(i, j)`` = similarity of
    layer ``i`` at step ``t`` with layer ``j`` of the final model. Layers that have
    reached their final representation light up on the diagonal; the paper found lower
    layers do so first ("bottom-up" convergence).

    Parameters
    ----------
    panes : array_like, shape (T, L, L)
    steps : sequence of T labels (e.g. epochs), optional
        Pane titles.
    layers : sequence of L names, optional
    final_label : str, default "final"
        What the columns are compared with (e.g. ``"epoch 15"``): written once, under
        the row of panes.
    cbar_label : str, default "similarity"
        The measure, written on the colour bar.

    Returns
    -------
    matplotlib.figure.Figure
        Axis ``t`` holds pane ``t`` as ``axes[t].images[0]``; the last axis is the
        colour bar.

    Examples
    --------
    >>> import numpy as np, svcca.plot
    >>> panes = np.random.default_rng(0).random((4, 3, 3))
    >>> fig = svcca.plot.learning_dynamics(panes, steps=[0, 1, 2, 3])
    >>> len([ax for ax in fig.axes if ax.images])
    4
    """
    P = _matrix(panes, "panes", 3)
    if P.shape[1] != P.shape[2]:
        raise ValueError(f"Each pane must be square (L x L); got panes of shape {P.shape}.")
    T, L = P.shape[0], P.shape[1]
    names = _labels(layers, L, "layers")
    step_labels = _labels(steps, T, "steps")
    fig = _figure(0.9 + 1.55 * T, 2.5 + 0.08 * L)
    axes = fig.subplots(1, T, squeeze=False)[0]
    im = None
    for t, ax in enumerate(axes):
        im = ax.imshow(P[t], vmin=0.0, vmax=1.0, cmap=cmap, interpolation="nearest")
        ax.set_title(f"{step_labels[t]}", fontsize=9)
        ax.set_xticks(range(L), names if T <= 6 or L <= 6 else [], rotation=90, fontsize=7)
        ax.set_yticks(range(L), names if t == 0 else [], fontsize=7)
    axes[0].set_ylabel("layer at the pane's step", fontsize=8)
    fig.supxlabel(f"layer at {final_label}", fontsize=9)
    cbar = fig.colorbar(im, ax=list(axes), shrink=0.8)
    cbar.set_label(cbar_label, fontsize=8)
    if title:
        fig.suptitle(_wrap(title, fig.get_figwidth()), fontsize=10)
    return fig


def convergence_curves(
    steps: Any,
    curves: Mapping[str, Any],
    *,
    spread: Mapping[str, Any] | None = None,
    threshold: float | None = None,
    title: str = "Similarity of each layer to its final self",
    xlabel: str = "epoch",
    ylabel: str = "similarity to final",
) -> Any:
    """One line per layer: its similarity to the final network's same layer over time.

    Parameters
    ----------
    steps : array_like, shape (T,)
    curves : dict of str to array_like, shape (T,)
    spread : dict of str to array_like, shape (T,), optional
        Half-width of a shaded band around each curve (e.g. one standard deviation).
    threshold : float, optional
        A dotted horizontal line (the level whose crossing time is reported).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import svcca.plot
    >>> fig = svcca.plot.convergence_curves(
    ...     [0, 1, 2, 3],
    ...     {"conv1": [0.8, 0.95, 0.99, 1.0], "fc1": [0.4, 0.7, 0.9, 1.0]},
    ...     threshold=0.9,
    ... )
    >>> fig.axes[0].get_xlabel()
    'epoch'
    """
    x = _matrix(steps, "steps", 1)
    fig = _figure(5.2, 3.4)
    ax = fig.add_subplot()
    for name, v in curves.items():
        v = _matrix(v, f"curve {name!r}", 1)
        if v.shape != x.shape:
            raise ValueError(f"curve {name!r} has {v.size} points but steps has {x.size}.")
        (line,) = ax.plot(x, v, marker="o", ms=3, label=name)
        if spread is not None and name in spread:
            s = _matrix(spread[name], f"spread {name!r}", 1)
            ax.fill_between(x, v - s, v + s, color=line.get_color(), alpha=0.2, lw=0)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", ls=":", lw=0.8, label=f"level {threshold:g}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title, 4.6), fontsize=10)
    ax.legend(fontsize=8)
    return fig


def save(
    fig: Any,
    path: str | os.PathLike[str],
    *,
    formats: Sequence[str] = ("png", "svg"),
    dpi: int = 130,
) -> list[str]:
    """Save ``fig`` as ``path.<format>`` for each format (default PNG and SVG).

    ``path`` is the file name without extension; its directory is created. Returns the
    paths written.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np, svcca.plot
    >>> fig = svcca.plot.heatmap(np.eye(3))
    >>> with tempfile.TemporaryDirectory() as out:
    ...     paths = svcca.plot.save(fig, os.path.join(out, "figures", "identity"))
    ...     [os.path.basename(p) for p in paths if os.path.getsize(p) > 0]
    ['identity.png', 'identity.svg']
    """
    base = os.fspath(path)
    root, ext = os.path.splitext(base)
    if ext.lower().lstrip(".") in ("png", "svg", "pdf"):
        base = root
    for f in formats:
        if f not in ("png", "svg", "pdf"):
            raise ValueError(f"formats may hold 'png', 'svg', 'pdf'; got {f!r}.")
    os.makedirs(os.path.dirname(base) or ".", exist_ok=True)
    out = []
    engine = fig.get_layout_engine()
    try:
        for i, f in enumerate(formats):
            p = f"{base}.{f}"
            fig.savefig(p, dpi=dpi, metadata={"Date": None} if f == "svg" else None)
            out.append(p)
            if i == 0:
                # The layout is settled by the first save; reuse it for the others.
                fig.set_layout_engine("none")
    finally:
        fig.set_layout_engine(engine)
    return out
