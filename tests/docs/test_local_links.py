"""Every local ``src`` and ``href`` of the demo's report (and of the built site) exists.

A figure the report names but the demo did not write shows as a broken image; a link to
a page that is not there is a dead end. ``.ci/run`` checks the report of its own
``svcca demo --quick`` run (``SVCCA_DEMO_REPORT``) and the site it builds
(``SVCCA_DOCS_SITE``); the same check on a demo of its own, at the smallest sizes, is
slow (20 s) and runs with ``-m slow``.
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ATTRS = {"src", "href", "poster", "data"}


class Refs(HTMLParser):
    """The ``src``/``href``-like attributes of a page, and the ids it defines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ATTRS and value:
                self.refs.append(value)
            if name == "srcset" and value:
                self.refs.extend(part.split()[0] for part in value.split(",") if part.strip())
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value or "")


def parse_page(page: Path) -> Refs:
    parser = Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def local_refs(page: Path) -> list[tuple[str, str]]:
    """``(path, fragment)`` of each reference of ``page`` to a local file or to a place
    in it (no scheme, no host), URL-decoded, without the query; ``path`` is empty for
    a ``#fragment`` of the page itself."""
    out = []
    for ref in parse_page(page).refs:
        parts = urlsplit(ref)
        if parts.scheme or parts.netloc or not (parts.path or parts.fragment):
            continue
        out.append((unquote(parts.path), unquote(parts.fragment)))
    return out


def broken_local_links(root: Path) -> list[tuple[str, str]]:
    """``(page, reference)`` for every local reference of every HTML page under
    ``root`` whose file does not exist, or whose ``#fragment`` names no id of the HTML
    page it points to."""
    ids: dict[Path, set[str]] = {}

    def ids_of(page: Path) -> set[str]:
        if page not in ids:
            ids[page] = parse_page(page).ids
        return ids[page]

    broken = []
    for page in sorted(root.rglob("*.html")):
        for path, fragment in local_refs(page):
            if not path:
                target = page
            elif path.startswith("/"):
                target = root / path.lstrip("/")
            else:
                target = page.parent / path
            ref = path + (f"#{fragment}" if fragment else "")
            if not target.exists():
                broken.append((str(page.relative_to(root)), ref))
            elif fragment and target.suffix == ".html" and fragment not in ids_of(target):
                broken.append((str(page.relative_to(root)), ref))
    return broken


def test_the_check_finds_a_missing_image_and_a_dead_link(tmp_path):
    (tmp_path / "fig.png").write_bytes(b"png")
    (tmp_path / "index.html").write_text(
        '<html><body><img src="fig.png"><img src="gone.png?v=1">'
        '<a href="other.html#top">x</a><a href="#here">y</a><a href="#nowhere">w</a>'
        '<a href="https://example.org/">z</a><a href="mailto:a@b">m</a><a href="#">top</a>'
        '<h2 id="here">h</h2><a href="page.html#sec">ok</a><a href="page.html#gone">no</a>'
        '<img srcset="fig.png 1x, missing%20file.png 2x"></body></html>',
        encoding="utf-8",
    )
    (tmp_path / "page.html").write_text('<p id="sec">s</p>', encoding="utf-8")
    assert broken_local_links(tmp_path) == [
        ("index.html", "gone.png"),
        ("index.html", "other.html#top"),
        ("index.html", "#nowhere"),
        ("index.html", "page.html#gone"),
        ("index.html", "missing file.png"),
    ]


def check_demo_report(out: Path) -> None:
    index = out / "index.html"
    assert index.exists(), f"no index.html in {out}"
    refs = local_refs(index)
    assert sum(path.endswith(".png") for path, _ in refs) >= 5, refs  # the figures
    assert broken_local_links(out) == []


@pytest.mark.slow
def test_demo_report_names_only_files_it_wrote(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    from svcca._demo import DemoConfig, run_demo

    tiny = DemoConfig(
        seeds=2,
        cnn_epochs=2,
        mlp_epochs=2,
        memorise_epochs=5,
        memorise_seeds=2,
        threads=1,
        formats=("png",),
    )
    run_demo(tmp_path, config=tiny)
    check_demo_report(tmp_path)


@pytest.mark.skipif(
    not os.environ.get("SVCCA_DEMO_REPORT"),
    reason="set SVCCA_DEMO_REPORT to the folder of a demo run (svcca demo --quick --out DIR)",
)
def test_given_demo_report_names_only_files_it_wrote():
    check_demo_report(Path(os.environ["SVCCA_DEMO_REPORT"]))


@pytest.mark.skipif(
    not os.environ.get("SVCCA_DOCS_SITE"),
    reason="set SVCCA_DOCS_SITE to a built site (python -m sphinx -b html docs DIR)",
)
def test_built_site_has_no_broken_local_link():
    root = Path(os.environ["SVCCA_DOCS_SITE"])
    assert (root / "index.html").exists(), f"no site at {root}"
    pages = list(root.rglob("*.html"))
    assert len(pages) > 50
    # _static/ holds the theme's files, among them its Jinja macros (not pages).
    broken = [
        (page, ref) for page, ref in broken_local_links(root) if not page.startswith("_static")
    ]
    assert broken == []
