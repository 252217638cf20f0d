"""The Examples sections of the CKA / shape / RSA / regression / stats docstrings run."""

from __future__ import annotations

import importlib

import pytest

import svcca
import svcca.stats
from conftest import run_examples

# The public names whose docstrings carry Examples (found through the public API, so a
# module moved or renamed inside the package changes nothing here).
EXAMPLES = [
    "svcca.cka",
    "svcca.MinibatchCKA",
    "svcca.procrustes",
    "svcca.shape_distance",
    "svcca.regression_fit",
    "svcca.rdm",
    "svcca.rsa",
    "svcca.stats.bootstrap",
    "svcca.stats.permutation_test",
    "svcca.stats.bartlett",
    "svcca.stats.datapoints_curve",
    "svcca.stats.null_baseline",
]


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples(name):
    namespace, attr = name.rsplit(".", 1)
    obj = getattr(importlib.import_module(namespace), attr)
    result = run_examples(obj)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_stats_namespace_is_explicit():
    public = {name for name in dir(svcca.stats) if not name.startswith("_")}
    assert public == set(svcca.stats.__all__)


def test_measure_modules_import_no_optional_dependency():
    import subprocess
    import sys

    # A fresh interpreter imports the package from disk as it is now: report its stderr
    # (an import error says more than CalledProcessError) and read only the last line.
    code = (
        "import sys, svcca.stats, svcca._measures\n"
        "heavy = ('torch', 'tqdm', 'pandas', 'matplotlib', 'dask', 'sklearn', 'scipy.stats')\n"
        "print('heavy:' + ','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "heavy:", out.stdout
