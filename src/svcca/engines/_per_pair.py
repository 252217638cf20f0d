"""``pairwise`` for the registered measures its blocked passes do not compute.

The blocked passes serve the measures whose sides are prepared from ``Moments`` and
combined per cross block (SVCCA, CCA, PWCCA, PLS, linear CKA: one pass over the data for
all pairs). Every other measure of :data:`svcca.MEASURES` (Procrustes and shape metrics,
regression, the sample measures such as RBF CKA and RSA, and a user's own) is served
here: each representation is read into memory once, in float64, and the measure is
called on each pair, so ``values[i, j]`` is exactly ``measure(rows[i], cols[j]).score``.
The representations must fit in the free memory together (planned before anything is
read, else :class:`svcca.DeviceMemoryError` says how much they need). A minibatch
measure accumulates over batches of a model's outputs: ``svcca.torch.compare`` serves
it, not ``pairwise``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from svcca._device import DeviceMemoryError, format_bytes, free_bytes
from svcca._progress import Progress
from svcca.measures import Measure
from svcca.sources import Source

__all__ = ["KeptLayers", "per_pair_values", "score_pairs"]

# Of the free memory, what the representations may take (the measure's own work, an
# n x n Gram matrix or RDM per side for sample measures, needs the rest).
_SHARE = 0.5


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
    """``measure.score(rep_i, rep_j, **params)`` for every (row, column) pair."""
    if measure.kind == "minibatch":
        raise ValueError(
            f"measure={measure.name!r} accumulates over minibatches of a model's outputs; "
            "pairwise compares whole representations. Use svcca.torch.compare(..., "
            f"measure={measure.name!r}), or a whole-data measure such as 'cka_linear'."
        )
    need = sum(8 * n * s.p for s in srcs)
    free = free_bytes(None)
    if need > _SHARE * free:
        raise DeviceMemoryError(
            f"pairwise with measure={measure.name!r} calls the measure on whole "
            f"representations, read into memory once: they take {format_bytes(need)} in "
            f"float64, and {format_bytes(free)} is free (half of it may hold them). Compare "
            "fewer representations per call (rows and cols), or use a measure the one-pass "
            "engine serves (svcca, cca, pwcca, pls, cka_linear), whose memory is constant "
            "in the number of datapoints."
        )
    arrays = [s.read(0, n) for s in srcs]
    return score_pairs(arrays, row_u, col_u, square, measure, params, progress)


def score_pairs(
    arrays: list[Any],
    row_u: list[int],
    col_u: list[int],
    square: bool,
    measure: Measure,
    params: Mapping[str, Any],
    progress: bool | None,
) -> np.ndarray:
    """``measure.score(arrays[i], arrays[j], **params)`` for the rows x cols pairs (a
    symmetric measure's square matrix is mirrored). A measure split into prepare and
    combine prepares each representation once."""
    used = sorted(set(row_u) | set(col_u))
    sides = {u: measure.prepare_side(arrays[u], **params) for u in used}
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
    compute), within half the free memory (else :class:`svcca.DeviceMemoryError` as
    soon as a batch would pass it, naming the size)."""

    def __init__(self, keys: list[str], measure: Measure) -> None:
        self.keys, self.measure = keys, measure
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        self.bytes = 0
        self.n = 0

    def add(self, i: int, arrays: Mapping[str, Any]) -> None:
        from svcca._validation import tensor_to_numpy

        batch = {k: np.array(tensor_to_numpy(arrays[k]), dtype=np.float64) for k in self.keys}
        self.bytes += sum(a.nbytes for a in batch.values())
        free = free_bytes(None)
        if self.bytes > _SHARE * free:
            raise DeviceMemoryError(
                f"compare with measure={self.measure.name!r} keeps the activations of "
                f"{len(self.keys)} layers to call the measure on each pair: by batch {i} they "
                f"take {format_bytes(self.bytes)}, and {format_bytes(free)} is free (half of "
                "it may hold them). Compare fewer layers or datapoints per call, or use a "
                "measure compare streams (cka_linear, cca, svcca, pwcca, pls, cka_minibatch)."
            )
        for k, a in batch.items():
            self.parts[k].append(a)
        self.n += next(iter(batch.values())).shape[0]

    def values(
        self, rows: list[str], cols: list[str], params: Mapping[str, Any], progress: bool | None
    ) -> np.ndarray:
        index = {k: u for u, k in enumerate(self.keys)}
        arrays = [np.concatenate(self.parts[k]) for k in self.keys]
        self.parts.clear()
        square = rows == cols
        return score_pairs(
            arrays, [index[k] for k in rows], [index[k] for k in cols], square, self.measure,
            params, progress,
        )
