"""Results are immutable snapshots: one decorator for every result class.

``@result`` makes a class a frozen dataclass with ``eq=False`` (NumPy fields make a
field-wise ``==`` ambiguous, so ``r == r`` is identity, as for any object) and, after
``__init__``, replaces every NumPy array field by a read-only copy: a result never
shares memory with the caller's arrays or statistics, so nothing done to them later
changes it, and nothing done to it changes them. It also gives the class a short
one-line ``repr`` (arrays summarised, nested results by their score: readable in a
terminal) and a ``_repr_html_`` (a compact table of the score, the parameters and what
was kept or pruned: how Jupyter shows it), both from ``svcca._html``, unless the class
defines its own.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from svcca._html import result_html, short_repr

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    try:
        from typing import dataclass_transform
    except ImportError:  # Python 3.10: only type checkers need it

        def dataclass_transform(**_: Any) -> Any:
            return lambda f: f


__all__ = ["readonly", "result"]

T = TypeVar("T")


def readonly(a: np.ndarray) -> np.ndarray:
    """A read-only copy of ``a`` (a copy, so the caller's array stays writeable)."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


@dataclass_transform(frozen_default=True, eq_default=False)
def result(cls: type[T]) -> type[T]:
    """Class decorator: a frozen, ``eq=False`` dataclass whose arrays are read-only copies,
    with a short ``repr`` and an HTML table for notebooks (``_repr_html_``)."""
    user_post = cls.__dict__.get("__post_init__")
    own = set(cls.__dict__)

    def __post_init__(self: Any) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                object.__setattr__(self, f.name, readonly(v))
        if user_post is not None:
            user_post(self)

    cls.__post_init__ = __post_init__  # type: ignore[attr-defined]
    out = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
    if "__repr__" not in own:
        out.__repr__ = short_repr  # type: ignore[assignment]
    if "_repr_html_" not in own:
        out._repr_html_ = result_html  # type: ignore[attr-defined]
    return out
