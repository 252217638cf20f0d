"""docs/measures.md runs: its code blocks, in order, in one namespace (the user-defined
measure then works in pairwise, torch.compare and stats, as the page says)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "measures.md"


def test_the_measures_page_runs():
    pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert len(blocks) >= 5
    namespace: dict = {}
    try:
        for block in blocks:
            exec(compile(block, str(PAGE), "exec"), namespace)  # noqa: S102
        import svcca

        assert "cosine_cka" in svcca.MEASURES and "mean_abs_corr" in svcca.MEASURES
    finally:
        from svcca._measures import _registry

        for name in ("cosine_cka", "mean_abs_corr"):
            _registry._REGISTRY.pop(name, None)
