"""How results look: a short one-line ``repr`` for a terminal, HTML tables for notebooks.

Every result class (``svcca._result.result``) gets :func:`short_repr` as its ``repr``
and :func:`result_html` as its ``_repr_html_``: the score first, then the parameters and
sizes, then what was kept or pruned, then the arrays (shape and a few values, never the
whole array) and nested results (their score). :func:`pairwise_html` shows a
:class:`svcca.PairwiseResult` as a matrix with its labels, each cell coloured by its
value; :func:`moments_html` shows a :class:`svcca.Moments`'s shapes, count, precision
and device. Every label and string is HTML-escaped; the styles are inline, so the
tables look the same in Jupyter, JupyterLab, VS Code and a sphinx-gallery page.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["moments_html", "pairwise_html", "result_html", "short_repr"]

# Arrays with at most this many entries are shown whole; longer 1-D arrays by their
# first and last entries.
_SHOW_WHOLE = 8
_EDGE = 3
# A PairwiseResult's table shows at most this many rows and columns.
_MAX_CELLS = 40
_TABLE = (
    "border-collapse:collapse;font-size:0.85em;font-family:system-ui,sans-serif;margin:0.25em 0"
)
_TD = "padding:0.15em 0.6em;border:1px solid #d0d7de;text-align:left;vertical-align:top"
_TH = _TD + ";background:#f6f8fa;font-weight:600"
_CAPTION = "caption-side:top;text-align:left;font-weight:600;padding:0.2em 0"


# ---------------------------------------------------------------- plain values
def _num(v: Any, digits: int = 6) -> str:
    """A float in at most ``digits`` significant digits, still reading as a float
    (``0.0``, not ``0``; ``nan`` and ``inf`` as such)."""
    text = f"{float(v):.{digits}g}"
    return text + ".0" if text.lstrip("-").isdigit() else text


def _entries(a: np.ndarray) -> str:
    """The entries of a small array as a (nested) list, floats in 4 digits."""
    if a.ndim == 0:
        return _num(a, 4) if a.dtype.kind == "f" else str(a.item())
    return "[" + ", ".join(_entries(x) for x in a) + "]"


def _is_result(v: Any) -> bool:
    return dataclasses.is_dataclass(v) and not isinstance(v, type)


def _array_text(a: np.ndarray) -> str:
    """``array([0.991, 0.975, ..., 0.273])`` or ``array(shape=(10, 8), dtype=float64)``."""
    if a.size <= _SHOW_WHOLE and a.size > 0:
        return f"array({_entries(a)})"
    if a.ndim == 1 and a.size > 0:
        head = ", ".join(_entries(x) for x in a[:_EDGE])
        tail = ", ".join(_entries(x) for x in a[-_EDGE:])
        return f"array([{head}, ..., {tail}], size={a.size})"
    return f"array(shape={a.shape}, dtype={a.dtype})"


def _pruned_text(p: Any) -> str:
    """``none`` or ``2: [3, 7]`` (the indices of the pruned features)."""
    idx = np.asarray(p.indices)
    if idx.size == 0:
        return "none"
    shown = ", ".join(str(int(i)) for i in idx[:_SHOW_WHOLE])
    more = ", ..." if idx.size > _SHOW_WHOLE else ""
    return f"{idx.size}: [{shown}{more}]"


def _value_text(v: Any) -> str:
    """One field's value in a line."""
    if isinstance(v, np.ndarray):
        return _array_text(v)
    if type(v).__name__ == "Pruned" and hasattr(v, "indices"):
        return f"Pruned({_pruned_text(v)})"
    if _is_result(v):
        if hasattr(v, "score"):
            inner = f"score={_num(v.score)}"
        else:  # its first field names it (a ModuleSummary by its module's name)
            first = dataclasses.fields(v)[0].name
            inner = f"{first}={getattr(v, first)!r}"
        return f"{type(v).__name__}({inner})"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return _num(v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k!r}: {_value_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)) and len(v) > _SHOW_WHOLE:
        shown = ", ".join(_value_text(x) for x in v[:_EDGE])
        return f"({shown}, ... {len(v)} items)"
    return repr(v)


def _ordered_fields(obj: Any) -> list[tuple[str, Any]]:
    """Fields in display order: the score, plain values (parameters and sizes), what was
    kept or pruned, arrays, nested results."""

    def rank(item: tuple[str, Any]) -> int:
        name, v = item
        if name == "score":
            return 0
        if name.startswith(("pruned", "kept", "variance_kept", "rank")):
            return 2
        if isinstance(v, np.ndarray):
            return 3
        if _is_result(v):
            return 4
        return 1

    items = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr]
    return sorted(items, key=rank)  # stable: the class's order within each group


def short_repr(obj: Any) -> str:
    """``CCAResult(score=0.807324, n_samples=200, ..., correlations=array([...]))``: one
    line, arrays summarised, nested results by their score."""
    body = ", ".join(f"{n}={_value_text(v)}" for n, v in _ordered_fields(obj))
    return f"{type(obj).__name__}({body})"


# ---------------------------------------------------------------- HTML
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _row(name: str, value: str, *, strong: bool = False) -> str:
    cell = f"<strong>{value}</strong>" if strong else value
    return f'<tr><th style="{_TH}">{_e(name)}</th><td style="{_TD}">{cell}</td></tr>'


def result_html(obj: Any) -> str:
    """A result as a two-column HTML table: the score (bold) first, then parameters and
    sizes, what was kept or pruned (with the reason of each pruned feature), arrays
    (shape and a few values) and nested results."""
    rows = []
    for name, v in _ordered_fields(obj):
        if type(v).__name__ == "Pruned" and hasattr(v, "indices") and len(v.indices):
            reasons = getattr(v, "reasons", ())
            text = "; ".join(
                f"{int(i)} ({r})" for i, r in zip(v.indices[:_SHOW_WHOLE], reasons, strict=False)
            )
            more = (
                f"; ... {len(v.indices) - _SHOW_WHOLE} more" if len(v.indices) > _SHOW_WHOLE else ""
            )
            cell = f"{len(v.indices)} pruned: {_e(text)}{more}"
        elif type(v).__name__ == "Pruned" and hasattr(v, "indices"):
            cell = "none pruned"
        elif isinstance(v, (tuple, list)) and v and all(_is_result(x) for x in v):
            cell = _records_html(v)
        else:
            cell = _e(_value_text(v))
        rows.append(_row(name, cell, strong=name == "score"))
    return (
        f'<table class="svcca-result" style="{_TABLE}">'
        f'<caption style="{_CAPTION}">{_e(type(obj).__name__)}</caption>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _records_html(items: Any) -> str:
    """A sequence of results (a ModelSummary's modules) as a table, one row each."""
    names = [f.name for f in dataclasses.fields(items[0]) if f.repr]
    head = "".join(f'<th style="{_TH}">{_e(n)}</th>' for n in names)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="{_TD}">{_e(_value_text(getattr(x, n, "")))}</td>' for n in names)
        + "</tr>"
        for x in items[:_MAX_CELLS]
    )
    more = len(items) - _MAX_CELLS
    tail = f"<tr><td colspan={len(names)}>... {more} more</td></tr>" if more > 0 else ""
    return f'<table style="{_TABLE}"><tr>{head}</tr>{body}{tail}</table>'


def _label(x: Any) -> str:
    """A row or column label: tuples joined by `` / ``."""
    if isinstance(x, tuple):
        return " / ".join(str(p) for p in x)
    return str(x)


def _colour(v: float, lo: float, hi: float) -> tuple[str, str]:
    """Background and text colour for ``v`` on a white-to-blue scale over ``[lo, hi]``."""
    if not math.isfinite(v):
        return "#eeeeee", "#666666"
    t = 0.0 if hi <= lo else min(max((v - lo) / (hi - lo), 0.0), 1.0)
    white, blue = (255, 255, 255), (8, 48, 107)  # matplotlib's "Blues" ends
    r, g, b = (round(w + t * (c - w)) for w, c in zip(white, blue, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}", ("#ffffff" if t > 0.55 else "#1f2328")


def pairwise_html(res: Any) -> str:
    """A :class:`svcca.PairwiseResult` as an HTML matrix: labelled rows and columns,
    each cell its value (4 decimals) on a colour scale over ``[min(0, lowest),
    max(1, highest)]``; the caption names the measure, its settings and the datapoints.
    At most 40 rows and columns are shown (the caption says how many there are)."""
    values = np.asarray(res.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = max(1.0, float(finite.max())) if finite.size else 1.0
    rows, cols = list(res.rows)[:_MAX_CELLS], list(res.cols)[:_MAX_CELLS]
    settings = ", ".join(f"{k}={_value_text(v)}" for k, v in dict(res.settings).items())
    caption = f"{res.measure}" + (f" ({settings})" if settings else "")
    caption += f", {res.n_samples} datapoints, {len(res.rows)} x {len(res.cols)}"
    if len(res.rows) > _MAX_CELLS or len(res.cols) > _MAX_CELLS:
        caption += f" (first {len(rows)} x {len(cols)} shown)"
    head = "".join(f'<th style="{_TH}">{_e(_label(c))}</th>' for c in cols)
    body = []
    for i, r in enumerate(rows):
        cells = []
        for j in range(len(cols)):
            v = float(values[i, j])
            bg, fg = _colour(v, lo, hi)
            text = "nan" if math.isnan(v) else f"{v:.4f}"
            cells.append(
                f'<td style="{_TD};text-align:right;background:{bg};color:{fg}">{text}</td>'
            )
        body.append(f'<tr><th style="{_TH}">{_e(_label(r))}</th>{"".join(cells)}</tr>')
    return (
        f'<table class="svcca-pairwise" style="{_TABLE}">'
        f'<caption style="{_CAPTION}">PairwiseResult: {_e(caption)}</caption>'
        f'<thead><tr><th style="{_TH}"></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def moments_html(m: Any) -> str:
    """A :class:`svcca.Moments` as an HTML table: the datapoints counted, the shapes of
    its means and sums, the precision of its products, its device and scales."""
    p, q = m.p, m.q
    rows = [
        _row("n (datapoints)", _e(m.n), strong=True),
        _row("features", _e(f"p={p}, q={q}")),
        _row("mean_x, mean_y", _e(f"({p},), ({q},)")),
        _row("sxx, syy, sxy", _e(f"({p}, {p}), ({q}, {q}), ({p}, {q})")),
        _row("precision", _e(f"{m.precision} products, float64 sums")),
        _row("device", _e("host" if m.device is None else m.device)),
    ]
    for side in ("x", "y"):
        scale = getattr(m, f"scale_{side}")
        if scale != 1.0:
            rows.append(_row(f"scale_{side}", _e(f"2**{math.frexp(scale)[1] - 1}")))
    return (
        f'<table class="svcca-moments" style="{_TABLE}">'
        f'<caption style="{_CAPTION}">Moments</caption>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
