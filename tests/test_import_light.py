"""``import svcca`` must not drag in the heavy optional dependencies."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "matplotlib", "dask", "distributed", "sklearn", "pandas", "tqdm", "safetensors")


def test_import_svcca_is_light():
    code = (
        "import sys, svcca, svcca.compat, svcca._cli\n"
        "svcca._cli._main._build_parser()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import svcca imported: {out.stdout.strip()}"
