"""The site's sources cover the package: every public name has an API page, every
markdown page of docs/ is in the user guide, every registered measure is in the table
of "Which measure should I use?".

These read ``docs/`` and ``docs/_ext/svcca_docs.py`` (the build-time pieces), so they
run without Sphinx; where a built site is given (``SVCCA_DOCS_SITE``, as ``.ci/run``
does) its pages are checked too.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

import svcca

DOCS = Path(__file__).resolve().parents[2] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
svcca_docs = importlib.import_module("svcca_docs")
API = (DOCS / "api" / "index.rst").read_text(encoding="utf-8")


def test_public_names_come_from_every_public_all():
    names = svcca_docs.public_names()
    assert len(names) == len(set(names))
    for pkg in svcca_docs.PUBLIC_PACKAGES:
        mod = importlib.import_module(pkg)
        for name in mod.__all__:
            full = f"{pkg}.{name}"
            assert full in names, full
    # Result classes and exceptions are public names like any other.
    for name in ("svcca.CCAResult", "svcca.DegenerateError", "svcca.stats.BootstrapResult"):
        assert name in names


def test_every_public_name_has_an_api_page_and_nothing_else_does():
    listed = svcca_docs.api_entries(API)
    public = set(svcca_docs.public_names())
    assert sorted(public - listed) == [], "add these to docs/api/index.rst"
    assert sorted(listed - public) == [], "docs/api/index.rst lists names that are not public"


def test_api_reference_names_only_public_paths():
    # Internal packages may be renamed (measures/ -> _measures/): the reference and the
    # pages written by hand name only the public paths.
    internal = ("svcca._measures", "svcca._engines", "svcca._moments", "svcca._sources")
    for page in [DOCS / "api" / "index.rst", *sorted((DOCS / "site").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for path in internal:
            assert path + "." not in text, f"{page.name} names {path}"


def test_api_entries_reads_autosummary_blocks():
    source = (
        "Title\n=====\n\n.. autosummary::\n   :toctree: generated\n\n   svcca.a\n   svcca.b\n\n"
        "Text svcca.not_listed.\n\n.. autosummary::\n\n   svcca.c\n"
    )
    assert svcca_docs.api_entries(source) == {"svcca.a", "svcca.b", "svcca.c"}


def test_every_markdown_page_is_in_the_user_guide():
    pages = svcca_docs.guide_pages()
    on_disk = {p.stem for p in DOCS.glob("*.md")} - {"index", "guide"}
    assert sorted(pages) == sorted(on_disk)
    assert pages[:2] == ["inputs", "invariances"]  # the reading order, then the rest
    assert "```{toctree}" in svcca_docs.guide_toctree()


def test_measure_table_has_every_registered_measure_and_its_invariances():
    table = svcca_docs.measure_table()
    rows = {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| `")
    }
    assert set(rows) == {f"`{name}`" for name in svcca.MEASURES}
    for name, m in svcca.MEASURES.items():
        row = rows[f"`{name}`"]
        inv = m.invariances_for()
        for key, label in svcca_docs.INVARIANCE_LABELS.items():
            ignores = row.split("|")[2]
            assert (label in [s.strip() for s in ignores.split(",")]) == (key in inv), (
                name,
                key,
            )
        assert f"({m.kind})" in row
    assert "one pass for all pairs" in rows["`cka_linear`"]
    assert "per pair" in rows["`rsa`"]


@pytest.mark.skipif(
    not os.environ.get("SVCCA_DOCS_SITE"),
    reason="set SVCCA_DOCS_SITE to a built site (python -m sphinx -b html docs DIR)",
)
def test_built_site_has_a_page_with_signature_for_every_public_name():
    root = Path(os.environ["SVCCA_DOCS_SITE"])
    for name in svcca_docs.public_names():
        page = root / "api" / "generated" / f"{name}.html"
        assert page.exists(), name
        text = page.read_text(encoding="utf-8")
        anchor = f'id="module-{name}"' if name in svcca_docs.PUBLIC_PACKAGES else f'id="{name}"'
        assert anchor in text, f"{name}: no object description on its page"
