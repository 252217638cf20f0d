"""The example scripts run, in quick mode, and reach their own checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
NEEDS = {
    "03_pls_pca_compression.py": ("torch", "sklearn"),
    "04_open_questions.py": ("torch", "sklearn"),
}


def test_the_four_tutorials_are_there():
    assert SCRIPTS == [
        "01_cca_basics.py",
        "02_conv_layers.py",
        "03_pls_pca_compression.py",
        "04_open_questions.py",
    ]


@pytest.mark.parametrize("script", SCRIPTS)
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
