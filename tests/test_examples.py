"""The example scripts run, in quick mode, and reach their own checks.

They are also the site's gallery (docs/conf.py runs every one of them at build time,
with ``--quick --out DIR``): the scripts run here are exactly those the gallery runs,
and each has the title sphinx-gallery needs.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
NEEDS = {
    "03_pls_pca_compression.py": ("torch", "sklearn"),
    "04_open_questions.py": ("torch", "sklearn"),
    "05_transformers_layer_by_layer.py": ("torch", "transformers"),
    "06_learning_dynamics.py": ("torch", "sklearn"),
}


def test_the_tutorials_and_gallery_examples_are_there():
    assert SCRIPTS == [
        "01_cca_basics.py",
        "02_conv_layers.py",
        "03_pls_pca_compression.py",
        "04_open_questions.py",
        "05_transformers_layer_by_layer.py",
        "06_learning_dynamics.py",
    ]


def gallery_conf() -> dict:
    """``sphinx_gallery_conf``'s literal entries, read from docs/conf.py (not imported:
    importing it sets the build's environment)."""
    tree = ast.parse((ROOT / "docs" / "conf.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "sphinx_gallery_conf"
        ):
            return {
                k.value: v.value
                for k, v in zip(node.value.keys, node.value.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
            }
    raise AssertionError("docs/conf.py has no sphinx_gallery_conf")


def test_the_gallery_runs_exactly_these_scripts():
    conf = gallery_conf()
    run = sorted(
        p.name
        for p in EXAMPLES.glob("*.py")
        if re.search(conf["filename_pattern"], str(p))
        and not re.search(conf["ignore_pattern"], str(p))
    )
    assert run == SCRIPTS
    # The gallery gives every example --quick --out DIR (docs/_ext/svcca_docs.py).
    assert conf["reset_argv"] == "svcca_docs.gallery_argv"


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_has_a_gallery_title(script):
    doc = ast.get_docstring(ast.parse((EXAMPLES / script).read_text(encoding="utf-8")))
    title, underline = doc.splitlines()[:2]
    assert title and set(underline) == {"="} and len(underline) >= len(title), script


# The two longest (7-8 s each) run by default only in the docs build, which CI runs with
# abort_on_example_error (docs/conf.py); `-m slow` runs them here too, so the README's
# test command stays under two minutes on two cores.
_DOCS_BUILD_RUNS = {"05_transformers_layer_by_layer.py", "06_learning_dynamics.py"}


@pytest.mark.parametrize(
    "script",
    [pytest.param(s, marks=pytest.mark.slow) if s in _DOCS_BUILD_RUNS else s for s in SCRIPTS],
)
def test_example_runs_in_quick_mode(script, tmp_path):
    for mod in NEEDS.get(script, ()):
        pytest.importorskip(mod)
    env = {**os.environ, "SVCCA_QUICK": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(out.stdout.splitlines()) >= 4


def test_example_with_figures_writes_png_and_svg(tmp_path):
    pytest.importorskip("matplotlib")
    env = {**os.environ, "SVCCA_QUICK": "1"}
    subprocess.run(
        [sys.executable, str(EXAMPLES / "01_cca_basics.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert (tmp_path / "01_coefficients.png").stat().st_size > 1000
    assert (tmp_path / "01_coefficients.svg").exists()
