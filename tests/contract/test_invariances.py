"""docs/invariances.md states which transformations each measure ignores; check every cell."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from svcca import cca, cka, procrustes, regression_fit, rsa, shape_distance

DOC = Path(__file__).resolve().parents[2] / "docs" / "invariances.md"

MEASURES = {
    "`cca` (mean canonical correlation)": lambda X, Y: cca(X, Y).score,
    "`cka` linear": lambda X, Y: cka(X, Y).score,
    "`cka` linear, debiased": lambda X, Y: cka(X, Y, debiased=True).score,
    "`cka` rbf": lambda X, Y: cka(X, Y, kernel="rbf").score,
    "`cka` rbf, debiased": lambda X, Y: cka(X, Y, kernel="rbf", debiased=True).score,
    "`procrustes`": lambda X, Y: procrustes(X, Y).score,
    "`shape_distance` alpha=0": lambda X, Y: shape_distance(X, Y, alpha=0.0).score,
    "`shape_distance` alpha=0.5": lambda X, Y: shape_distance(X, Y, alpha=0.5).score,
    "`regression_fit` (symmetrised score)": lambda X, Y: regression_fit(X, Y).score,
    "`regression_fit` R^2 of Y given X": lambda X, Y: regression_fit(X, Y).r2_y_given_x,
    "`rsa` euclidean, spearman": lambda X, Y: rsa(X, Y).score,
    "`rsa` euclidean, pearson": lambda X, Y: rsa(X, Y, compare="pearson").score,
    "`rsa` correlation, spearman": lambda X, Y: rsa(X, Y, metric="correlation").score,
}


def _transforms(p: int) -> dict[str, object]:
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    A = rng.standard_normal((p, p)) + 0.5 * np.eye(p)
    s = np.exp(rng.uniform(-1.5, 1.5, size=p))
    b = rng.standard_normal(p) * 3.0
    perm = rng.permutation(p)
    return {
        "orthogonal": lambda X: X @ Q,
        "isotropic scaling": lambda X: 3.7 * X,
        "translation": lambda X: X + b,
        "feature permutation": lambda X: X[:, perm],
        "per-feature scaling": lambda X: X * s,
        "invertible linear": lambda X: X @ A,
    }


def parse_table() -> tuple[list[str], dict[str, dict[str, str]]]:
    text = DOC.read_text()
    section = text.split("## Table", 1)[1]
    lines = [ln.strip() for ln in section.splitlines() if ln.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[0] == "measure"
    rows: dict[str, dict[str, str]] = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert len(cells) == len(header), ln
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return header[1:], rows


COLUMNS, ROWS = parse_table()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n, p, q = 120, 6, 5
    # Anisotropic, correlated features so that non-invariances are visible.
    X = (
        rng.standard_normal((n, p))
        @ np.diag(np.linspace(0.5, 3.0, p))
        @ rng.standard_normal((p, p))
    )
    Y = np.tanh(X[:, :q] @ rng.standard_normal((q, q))) + 0.5 * rng.standard_normal((n, q))
    return X, Y


def test_table_and_code_cover_the_same_measures():
    assert set(ROWS) == set(MEASURES)
    assert set(COLUMNS) == set(_transforms(3))
    for row in ROWS.values():
        assert set(row.values()) <= {"yes", "no"}


@pytest.mark.parametrize("measure", sorted(MEASURES))
def test_invariances_match_the_docs(data, measure):
    X, Y = data
    f = MEASURES[measure]
    base = f(X, Y)
    for name, transform in _transforms(X.shape[1]).items():
        moved = f(transform(X), Y)
        diff = abs(moved - base)
        if ROWS[measure][name] == "yes":
            assert diff < 1e-8, f"{measure} should be invariant to {name}; moved by {diff:.3g}"
        else:
            assert diff > 1e-3, f"{measure} is listed as not invariant to {name}; moved {diff:.3g}"


def test_every_similarity_is_symmetric_and_one_on_itself(data):
    X, _ = data
    Xb = X @ np.random.default_rng(0).standard_normal((X.shape[1], 4))
    for name, f in MEASURES.items():
        if "R^2 of Y given X" in name:
            continue
        assert abs(f(X, Xb) - f(Xb, X)) < 1e-9, name
        assert abs(f(X, X) - 1.0) < 1e-9, name


def test_docs_mention_each_row_once():
    text = DOC.read_text().split("## Table", 1)[1]  # the parametrised table, not the registry's
    for name in MEASURES:
        assert len(re.findall(re.escape("| " + name + " |"), text)) == 1, name
