"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``.

Nothing is fetched while building (no intersphinx, no remote images, no downloads in the
gallery's examples). The pages that come from the code are made at build time by
``docs/_ext/svcca_docs.py``: the measure table from ``svcca.MEASURES`` and a check that
every public name has an API page.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
# The gallery's examples import their shared helpers (examples/_common.py) by name.
sys.path.insert(0, str(ROOT / "examples"))
# The gallery runs every example in its quick mode (small data: the build stays short).
os.environ.setdefault("SVCCA_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import svcca  # noqa: E402

project = "svcca"
author = "svcca contributors"
copyright = "the svcca contributors"  # noqa: A001
release = svcca.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
    "svcca_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated",
    "_templates",
    "_ext",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.json",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "**/.ipynb_checkpoints",
]
templates_path = ["_templates"]

# --- MyST: the user guide is the repository's markdown pages as they are.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# --- API reference: autosummary pages, numpydoc docstrings.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the signatures show them; numpydoc's Parameters say the rest
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# --- The gallery: every example in examples/ runs at build time, in quick mode.
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/\d\d_",
    "ignore_pattern": r"(__init__|_common)\.py",
    "within_subsection_order": "FileNameSortKey",
    "reset_argv": "svcca_docs.gallery_argv",
    "image_scrapers": ("svcca_docs.saved_figures",),
    "reset_modules": (),
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "show_signature": False,
    "min_reported_time": 1,
    "write_computation_times": False,
    "capture_repr": ("_repr_html_", "__repr__"),
    # Each API page lists the gallery examples that call it.
    "doc_module": ("svcca",),
    "backreferences_dir": "_generated/backreferences",
    "inspect_global_variables": False,
}

# --- Nothing from the network: no intersphinx, internal links only in linkcheck.
linkcheck_ignore = [r"https?://.*", r"mailto:.*"]
linkcheck_anchors = False

# --- HTML.
html_theme = "pydata_sphinx_theme"
html_title = f"svcca {release}"
html_static_path = ["_static"]
html_css_files = ["svcca.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "navbar_align": "left",
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "check_switcher": False,
}
html_context = {"default_mode": "light"}
# Pages outside the user guide and the API have no section to navigate: no left sidebar
# (the measure table needs the width).
html_sidebars = {"index": [], "guide": [], "site/*": []}
