"""How a measure with its parameters is named in tables, CSV headers and legends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["measure_label"]


def measure_label(
    name: str, params: Mapping[str, Any] | None = None, field: str | None = None
) -> str:
    """The registry's name, its parameters in parentheses, the result field in brackets.

    Examples
    --------
    >>> from svcca._measures import measure_label
    >>> measure_label("cka_rbf", {"bandwidth": 0.4})
    'cka_rbf (bandwidth=0.4)'
    >>> measure_label("cca", field="mean_squared")
    'cca [mean_squared]'
    """
    out = name
    if params:
        out += " (" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
    if field:
        out += f" [{field}]"
    return out
