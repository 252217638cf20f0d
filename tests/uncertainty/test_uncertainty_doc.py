"""The Python blocks of docs/uncertainty.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "uncertainty.md"


def test_the_examples_of_the_uncertainty_page_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/uncertainty.md lost its example"
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation
    assert "(" in capsys.readouterr().out
