"""Which engines serve a registered measure, and why an engine refuses one.

The one place an engine's refusal of a measure is stated: ``pairwise``, ``stats``,
``conv.compare`` and the CLI raise with the reason given here, the generated table in
docs/invariances.md prints it, and ``tests/contract/test_engine_coverage.py`` checks,
for every measure of :data:`svcca.MEASURES`, that each engine either serves it (equal to
the single call) or refuses it with this reason.
"""

from __future__ import annotations

from svcca.measures._registry import Measure

__all__ = ["ENGINES", "engines_for", "refusal"]

# The engines, as the docs and messages name them.
ENGINES = (
    "call",  # svcca.MEASURES[name](X, Y)
    "pairwise",  # svcca.pairwise
    "torch.compare",  # svcca.torch.compare
    "conv.compare",  # svcca.conv.compare
    "stats",  # svcca.stats: permutation test, bootstrap, null baseline
    "cli compare",  # svcca compare
    "cli pairwise",  # svcca pairwise
)

_WHOLE = (
    "it accumulates over minibatches of a model's outputs, and {engine} compares whole "
    "representations (svcca.torch.compare serves it)"
)
_RESAMPLE = (
    "it accumulates over minibatches of a model's outputs, and a resampling statistic "
    "recomputes the measure on reordered or resampled datapoints of whole "
    "representations (use a whole-data measure such as 'cka_linear_debiased')"
)


def engines_for(measure: Measure) -> dict[str, str | None]:
    """For each engine of :data:`ENGINES`: None where it serves ``measure``, else why not.

    Examples
    --------
    >>> import svcca
    >>> from svcca.measures import engines_for
    >>> engines_for(svcca.MEASURES["cka_rbf"])["pairwise"] is None
    True
    """
    out: dict[str, str | None] = dict.fromkeys(ENGINES)
    if measure.kind == "minibatch":
        for engine in ("pairwise", "conv.compare", "cli pairwise"):
            out[engine] = _WHOLE.format(engine=engine)
        out["stats"] = _RESAMPLE
    return out


def refusal(measure: Measure, engine: str) -> str | None:
    """The message ``engine`` refuses ``measure`` with, or None where it serves it."""
    why = engines_for(measure)[engine]
    if why is None:
        return None
    return f"{engine} cannot serve measure={measure.name!r}: {why}."
