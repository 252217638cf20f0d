"""The representations of one ``pairwise`` call: labelled, validated, each read once."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from svcca._sources import Source, as_source, check_same_n

__all__ = ["Plan", "plan_of"]


def _named(reps: Any, what: str) -> list[tuple[Hashable, Any]]:
    if isinstance(reps, Mapping):
        items: list[tuple[Hashable, Any]] = list(reps.items())
    elif isinstance(reps, Sequence) and not isinstance(reps, (str, bytes, np.ndarray)):
        items = [(str(i), v) for i, v in enumerate(reps)]
    else:
        raise TypeError(
            f"{what} must be a mapping of names to representations (e.g. {{'conv1': X1, "
            f"'conv2': X2}}) or a list of representations; got {type(reps).__name__}. To "
            "compare two arrays, call svcca.svcca(X, Y) (or another measure) directly."
        )
    if not items:
        raise ValueError(f"{what} is empty; give at least one representation.")
    return items


@dataclass(frozen=True)
class Plan:
    """The unique representations of a call (a layer in both rows and cols is read once)."""

    srcs: list[Source]
    names: list[Hashable]
    row_u: list[int]
    col_u: list[int]  # the same list object as row_u when the matrix is square
    row_labels: tuple[Hashable, ...]
    col_labels: tuple[Hashable, ...]
    n: int

    @property
    def square(self) -> bool:
        return self.col_u is self.row_u


def plan_of(rows: Any, cols: Any) -> Plan:
    """Validate the representations and deduplicate them by identity."""
    row_items = _named(rows, "rows")
    col_items = row_items if cols is None else _named(cols, "cols")
    objs: list[Any] = []
    names: list[Hashable] = []
    index: dict[int, int] = {}

    def uid(name: Hashable, obj: Any) -> int:
        if id(obj) not in index:
            index[id(obj)] = len(objs)
            objs.append(obj)
            names.append(name)
        return index[id(obj)]

    row_u = [uid(k, v) for k, v in row_items]
    col_u = row_u if cols is None else [uid(k, v) for k, v in col_items]
    srcs = [as_source(o, f"representation {nm!r}") for o, nm in zip(objs, names, strict=True)]
    for s, nm in zip(srcs, names, strict=True):
        s.name = nm  # type: ignore[assignment]  # a label as given; messages show its repr
    n = check_same_n(srcs)
    if n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {n}.")
    labels = (tuple(k for k, _ in row_items), tuple(k for k, _ in col_items))
    return Plan(srcs, names, row_u, col_u, labels[0], labels[1], n)
