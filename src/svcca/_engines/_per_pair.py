"""``pairwise`` for the registered measures its blocked passes do not compute.

The blocked passes serve the measures whose sides are prepared from ``Moments`` and
combined per cross block (SVCCA, CCA, PWCCA, PLS, linear CKA: one pass over the data for
all pairs). Every other measure of :data:`svcca.MEASURES` (Procrustes and shape metrics,
regression, the sample measures such as RBF CKA and RSA, and a user's own) is served
here. A measure split into prepare and combine (RBF and debiased CKA, RSA) has each
representation read and prepared once, one at a time, and keeps only the prepared sides
(a centred Gram matrix, a condensed RDM); any other measure keeps the representations,
in float64, and is called on each pair, so ``values[i, j]`` is
``measure(rows[i], cols[j]).score``. What is kept is planned against the free memory
before anything is read (:func:`planned_bytes`, from the measure's ``side_bytes``), else
:class:`svcca.DeviceMemoryError` says how much it needs. An engine that cannot serve a
measure (a minibatch estimator, here) refuses it with the reason
:func:`svcca._measures.engines_for` states.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from svcca._device import DeviceMemoryError, format_bytes, free_bytes
from svcca._measures import Measure, refusal
from svcca._progress import Progress
from svcca._sources import Source

__all__ = [
    "KeptLayers",
    "combine_pairs",
    "per_pair_values",
    "planned_bytes",
    "read_sides",
    "refuse_unserved",
]

# Of the free memory, what a call may plan to keep (the measure's own work, one side
# being prepared, one pair being combined, needs the rest).
_SHARE = 0.5


def refuse_unserved(measure: Measure, engine: str) -> None:
    """Raise with the reason :func:`svcca._measures.engines_for` states, if any."""
    why = refusal(measure, engine)
    if why is not None:
        raise ValueError(why)


def planned_bytes(measure: Measure, n: int, widths: list[int], params: Mapping[str, Any]) -> int:
    """What a per-pair call keeps for ``n`` datapoints of representations ``widths`` wide.

    A measure split into prepare and combine keeps its prepared sides
    (:meth:`Measure.prepared_bytes`: ``8 n^2`` for a Gram matrix, ``4 n^2`` for a condensed
    RDM), plus the one representation being prepared (``8 n p`` in float64) and one more
    side for that preparation's work; any other measure keeps every representation.
    """
    if not widths:
        return 0
    rows = [8 * n * p for p in widths]
    if measure.prepare is None:
        return sum(rows)
    sides = [measure.prepared_bytes(n, p, **params) for p in widths]
    return sum(sides) + max(rows) + max(sides)


def _refuse_unplanned(measure: Measure, need: int, free: int, n: int, what: str, fix: str) -> None:
    if need > _SHARE * free:
        kept = (
            "its prepared sides (one per representation)"
            if measure.prepare is not None
            else "the representations, in float64"
        )
        raise DeviceMemoryError(
            f"{what} with measure={measure.name!r} keeps {kept} for {n} datapoints: "
            f"{format_bytes(need)}, and {format_bytes(free)} is free (half of it may hold "
            f"them). {fix}"
        )


def per_pair_values(
    srcs: list[Source],
    n: int,
    row_u: list[int],
    col_u: list[int],
    square: bool,
    measure: Measure,
    params: Mapping[str, Any],
    progress: bool | None,
) -> np.ndarray:
    """``measure.score(rep_i, rep_j, **params)`` for every (row, column) pair.

    The representations (or, for a split measure, their prepared sides) are planned
    against the free memory before any is read; a split measure's representations are
    read and prepared one at a time, and only the sides are kept.
    """
    used = sorted(set(row_u) | set(col_u))
    sides = read_sides(srcs, n, used, measure, params)
    return combine_pairs(sides, row_u, col_u, square, measure, params, progress)


def read_sides(
    srcs: list[Source], n: int, used: list[int], measure: Measure, params: Mapping[str, Any]
) -> dict[int, Any]:
    """Each used representation's prepared side (the float64 rows, for a measure not
    split), planned against the free memory before any is read."""
    refuse_unserved(measure, "pairwise")
    need = planned_bytes(measure, n, [srcs[u].p for u in used], params)
    _refuse_unplanned(
        measure,
        need,
        free_bytes(None),
        n,
        "pairwise",
        "Compare fewer representations per call (rows and cols) or fewer datapoints (an "
        "n x n side grows as n^2), or use a measure the one-pass engine serves (svcca, "
        "cca, pwcca, pls, cka_linear), whose memory is constant in the number of "
        "datapoints.",
    )
    return {u: measure.prepare_side(srcs[u].read(0, n), **params) for u in used}


def combine_pairs(
    sides: Mapping[int, Any],
    row_u: list[int],
    col_u: list[int],
    square: bool,
    measure: Measure,
    params: Mapping[str, Any],
    progress: bool | None,
) -> np.ndarray:
    """:meth:`Measure.combine_sides` of the prepared sides for the rows x cols pairs."""
    out = np.zeros((len(row_u), len(col_u)))
    bar = Progress(progress, total=len(row_u) * len(col_u), desc="pairs")
    try:
        for i, ui in enumerate(row_u):
            for j, uj in enumerate(col_u):
                if square and measure.symmetric and j < i:
                    out[i, j] = out[j, i]
                else:
                    out[i, j] = measure.combine_sides(sides[ui], sides[uj], **params)
                bar.update(1)
    finally:
        bar.close()
    return out


class KeptLayers:
    """The activations of captured layers, kept on the host for a measure called per
    pair (``svcca.torch.compare`` of a registered measure its one-pass engine does not
    compute). The rows kept so far and the sides they will be prepared into
    (:func:`planned_bytes`) stay within half the free memory, else
    :class:`svcca.DeviceMemoryError` as soon as a batch would pass it, naming the size,
    before any side is prepared."""

    def __init__(
        self, keys: list[str], measure: Measure, params: Mapping[str, Any] | None = None
    ) -> None:
        self.keys, self.measure = keys, measure
        self.params = dict(params or {})
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        self.widths: dict[str, int] = {}
        self.bytes = 0
        self.n = 0

    def add(self, i: int, arrays: Mapping[str, Any]) -> None:
        from svcca._validation import tensor_to_numpy

        batch = {k: np.array(tensor_to_numpy(arrays[k]), dtype=np.float64) for k in self.keys}
        self.bytes += sum(a.nbytes for a in batch.values())
        n = self.n + next(iter(batch.values())).shape[0]
        self.widths = {k: a.shape[1] for k, a in batch.items()}
        need = self.bytes
        if self.measure.prepare is not None:
            try:
                sides = [
                    self.measure.prepared_bytes(n, p, **self.params) for p in self.widths.values()
                ]
            except TypeError:  # parameters the measure refuses: refused where it is called
                sides = []
            need += sum(sides) + max(sides, default=0)
        free = free_bytes(None)
        if need > _SHARE * free:
            kept = "the activations" + (
                " and the sides they are prepared into" if self.measure.prepare else ""
            )
            raise DeviceMemoryError(
                f"compare with measure={self.measure.name!r} keeps {kept} of "
                f"{len(self.keys)} layers to call the measure on each pair: by batch {i} "
                f"({n} datapoints) they take {format_bytes(need)}, and {format_bytes(free)} "
                "is free (half of it may hold them). Compare fewer layers or datapoints per "
                "call, or use a measure compare streams (cka_linear, cca, svcca, pwcca, pls, "
                "cka_minibatch)."
            )
        for k, a in batch.items():
            self.parts[k].append(a)
        self.n = n

    def values(
        self, rows: list[str], cols: list[str], params: Mapping[str, Any], progress: bool | None
    ) -> np.ndarray:
        """The measure of every (row, column) layer pair: each layer's activations joined
        and prepared in turn (its batches freed as it is), then combined per pair."""
        index = {k: u for u, k in enumerate(self.keys)}
        sides = {}
        for k in self.keys:
            rep = np.concatenate(self.parts.pop(k))
            sides[index[k]] = self.measure.prepare_side(rep, **params)
            del rep
        square = rows == cols
        return combine_pairs(
            sides,
            [index[k] for k in rows],
            [index[k] for k in cols],
            square,
            self.measure,
            params,
            progress,
        )
