"""How results show in a notebook (``_repr_html_``) and a terminal (``repr``).

Every result class carries a compact HTML table (the score, the parameters, what was
kept or pruned); ``PairwiseResult`` a coloured matrix with its labels; ``Moments`` its
shapes, count, precision and device. Each HTML string must parse as balanced HTML,
carry the numbers and labels, and escape every name.
"""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import svcca
import svcca.compat
import svcca.conv
import svcca.stats

VOID = {"br", "hr", "img", "meta", "link", "input", "col", "wbr"}


class Parsed(HTMLParser):
    """Tags (balanced, or an assertion fails), text, and each element's attributes."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[tuple[str, str, dict[str, str | None]]] = []  # (tag, text, attrs)
        self._cell: list | None = None
        self.text: list[str] = []
        self.feed(source)
        self.close()
        assert self.stack == [], f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        if tag in ("td", "th"):
            self._cell = [tag, "", dict(attrs)]

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[1] += data

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def layers(n=300, p=12, q=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = np.tanh(X @ rng.standard_normal((p, q))) + 0.3 * rng.standard_normal((n, q))
    return X, Y


def every_result():
    """One real result of every public result class (computed through the public API)."""
    X, Y = layers()
    Xd = X.copy()
    Xd[:, 4] = 2.0  # a dead neuron: pruned, and the table must say so
    out = [
        svcca.cca(Xd, Y),
        svcca.svcca(X, Y, keep=0.9),
        svcca.pwcca(X, Y),
        svcca.pls(X, Y),
        svcca.pca(X),
        svcca.cka(X, Y),
        svcca.procrustes(X, Y),
        svcca.shape_distance(X, Y, alpha=0.5),
        svcca.regression_fit(X, Y),
        svcca.rsa(X, Y),
        svcca.mutual_knn(X, Y, k=5),
        svcca.Score(score=0.25),
        svcca.stats.bartlett(X, Y),
        svcca.stats.null_baseline(svcca.cca, X, Y, n_repeats=3, seed=0),
        svcca.stats.permutation_test(svcca.cka, X, Y, n_permutations=20, seed=0),
        svcca.stats.bootstrap(svcca.cka, X, Y, n_resamples=20, seed=0),
        svcca.stats.datapoints_curve(svcca.cca, 4, 3, sizes=[20, 40], n_repeats=2, seed=0),
        svcca.stats.interval(X, Y, measure="cka_linear", blocks=5, seed=0),
        svcca.stats.paired_difference((X, Y), (X, np.tanh(Y)), blocks=5, seed=0),
        svcca.stats.adjust_pvalues([0.01, 0.04, 0.2]),
        svcca.stats.cross_validate(X, Y, measure="cca", folds=3),
        svcca.stats.across_runs(
            [
                svcca.pairwise({"x": X, "y": Y + s * X[:, :9]}, uncertainty="jackknife", blocks=5)
                for s in (0.0, 1.0)
            ]
        ),
    ]
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 4, 4, 3))
    out.append(svcca.conv.fourier_cca(A, np.tanh(A), layout="nhwc"))
    return out


RESULTS = every_result()


def public_result_classes():
    found = []
    for mod in (svcca, svcca.stats, svcca.conv):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and name != "Measure":
                found.append(obj)
    return found


def test_every_public_result_class_has_html_and_is_covered_here():
    classes = public_result_classes()
    assert len(classes) >= 15
    covered = {type(r) for r in RESULTS} | {svcca.PairwiseResult, svcca.Pruned}
    for cls in classes:
        assert callable(getattr(cls, "_repr_html_", None)), cls.__name__
        assert cls in covered, f"{cls.__name__} has no example in this test"


@pytest.mark.parametrize("res", RESULTS, ids=lambda r: type(r).__name__)
def test_result_html_parses_and_carries_score_and_fields(res):
    page = Parsed(res._repr_html_())
    assert page.tags[0] == "table"
    assert type(res).__name__ in page.all_text
    headers = [text for tag, text, _ in page.cells if tag == "th"]
    shown = [f.name for f in dataclasses.fields(res) if f.repr]
    assert headers == sorted(headers, key=lambda h: h != "score")  # the score first
    assert set(headers) == set(shown)
    if "score" in shown:
        cells = dict(
            (t, v) for (_, t, _), (_, v, _) in zip(page.cells[::2], page.cells[1::2], strict=True)
        )
        assert float(cells["score"]) == pytest.approx(res.score, rel=1e-5, abs=1e-6)


def test_pruned_features_are_listed_with_their_reason():
    res = RESULTS[0]
    assert res.pruned_x.indices.tolist() == [4]
    text = Parsed(res._repr_html_()).all_text
    assert "1 pruned: 4 (constant)" in text
    assert "none pruned" in text  # Y lost nothing


def test_plain_repr_is_one_short_line_with_the_score():
    X, Y = layers(n=400, p=60, q=50)
    for res in (svcca.pls(X, Y), svcca.cca(X, Y), svcca.pwcca(X, Y), svcca.pca(X)):
        text = repr(res)
        assert "\n" not in text and len(text) < 600, text
        assert text.startswith(type(res).__name__ + "(")
        if hasattr(res, "score"):
            assert f"score={res.score:.6g}" in text
    # A weight matrix is summarised by its shape, never printed.
    assert "weights_x=array(shape=(60, 50), dtype=float64)" in repr(svcca.pls(X, Y))
    # A nested result shows as its score.
    assert re.search(r"cca=CCAResult\(score=[0-9.]+\)", repr(svcca.svcca(X, Y)))


def pairwise_labels():
    X, Y = layers()
    nasty = "<script>alert('x')</script> & co"
    reps = {"conv1": X, nasty: Y, ("run1", "fc<2>"): X[:, :5]}
    return svcca.pairwise(reps, measure="cka_linear"), nasty


def test_pairwise_html_labels_values_and_escaping():
    res, nasty = pairwise_labels()
    source = res._repr_html_()
    page = Parsed(source)
    assert "script" not in page.tags  # escaped, not a tag
    assert "<script>" not in source
    headers = [text for tag, text, _ in page.cells if tag == "th"]
    labels = ["conv1", nasty, "run1 / fc<2>"]
    assert headers == ["", *labels, *labels]  # the corner, the columns, the rows
    tds = [(text, attrs) for tag, text, attrs in page.cells if tag == "td"]
    assert [float(t) for t, _ in tds] == pytest.approx(res.values.ravel(), abs=5e-5)
    assert "cka_linear" in page.all_text and "300 datapoints" in page.all_text


def test_pairwise_html_darker_cell_for_larger_value():
    res, _ = pairwise_labels()
    tds = [(float(t), a["style"]) for tag, t, a in Parsed(res._repr_html_()).cells if tag == "td"]

    def lightness(style):
        r, g, b = (int(h, 16) for h in re.findall(r"background:#(..)(..)(..)", style)[0])
        return r + g + b

    ordered = sorted(tds)
    ls = [lightness(s) for _, s in ordered]
    assert ls == sorted(ls, reverse=True)
    assert ordered[-1][0] == pytest.approx(1.0) and "color:#ffffff" in ordered[-1][1]


def test_pairwise_html_shows_at_most_40_by_40_and_says_so():
    rng = np.random.default_rng(0)
    reps = {f"layer{i}": rng.standard_normal((30, 3)) for i in range(42)}
    res = svcca.pairwise(reps, measure="cka_linear")
    page = Parsed(res._repr_html_())
    assert sum(tag == "td" for tag, _, _ in page.cells) == 40 * 40
    assert "42 x 42 (first 40 x 40 shown)" in page.all_text


def test_moments_html_shapes_count_precision_device():
    X, Y = layers(n=250, p=7, q=5)
    m = svcca.Moments.from_arrays(X, Y, precision="float32")
    page = Parsed(m._repr_html_())
    text = page.all_text
    for part in ("250", "p=7, q=5", "(7,), (5,)", "(7, 7), (5, 5), (7, 5)", "float32", "host"):
        assert part in text, part
    assert repr(m) == "Moments(n=250, p=7, q=5, precision='float32')"


def test_model_summary_html_is_one_row_per_module():
    torch = pytest.importorskip("torch")
    import svcca.torch as st

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    s = st.summary(model, torch.randn(4, 6))
    page = Parsed(s._repr_html_())
    rows = [p for p in page.tags if p == "tr"]
    assert len(rows) == 3 + 1 + len(s.modules)  # model, datapoints, modules; a header
    text = page.all_text
    for m in s.modules:
        assert m.type in text
    assert "\n" not in repr(s) and repr(s).startswith("ModelSummary(model=")
