"""Which engines serve a registered measure, and why an engine refuses one.

The reasons are declared on the measure (:meth:`svcca.Measure.engines`, from its kind);
``pairwise``, ``stats``, ``conv.compare`` and the CLI raise with the reason read here,
the generated table in docs/invariances.md prints it, and
``tests/contract/test_engine_coverage.py`` checks, for every measure of
:data:`svcca.MEASURES`, that each engine either serves it (equal to the single call) or
refuses it with this reason.
"""

from __future__ import annotations

from svcca._measures._registry import ENGINES, Measure

__all__ = ["ENGINES", "engines_for", "refusal"]


def engines_for(measure: Measure) -> dict[str, str | None]:
    """For each engine of :data:`ENGINES`: None where it serves ``measure``, else why not.

    Examples
    --------
    >>> import svcca
    >>> from svcca._measures import engines_for
    >>> engines_for(svcca.MEASURES["cka_rbf"])["pairwise"] is None
    True
    """
    return measure.engines()


def refusal(measure: Measure, engine: str) -> str | None:
    """The message ``engine`` refuses ``measure`` with, or None where it serves it."""
    why = engines_for(measure)[engine]
    if why is None:
        return None
    return f"{engine} cannot serve measure={measure.name!r}: {why}."
