"""Which measure a statistic resamples: a registry name, a ``Measure``, or a callable.

Every statistic of :mod:`svcca.stats` takes ``measure`` as a name of
:data:`svcca.MEASURES` (``"cka_rbf"``), a :class:`svcca.Measure` (registered or not), or
a callable ``measure(X, Y)`` returning a result with ``.score``. A callable that is one
of the library's functions, alone or as a keyword-only ``functools.partial``
(``partial(svcca.cka, kernel="rbf")``), is read as the registered measure it is
(``cka_rbf``), so it gets that measure's fast paths; any other callable is called as it
is. A measure a statistic cannot serve is refused with the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from svcca._measures import MEASURES, Measure, refusal

__all__ = ["Resolved", "resolve"]

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A measure ready for resampling: ``score(A, B)`` is its headline number."""

    name: str
    measure: Measure | None  # None: a plain callable, called as it is
    call: Callable[..., Any]
    params: Mapping[str, Any]

    def score(self, A: Any, B: Any) -> float:
        if self.measure is not None:
            return self.measure.score(A, B, **self.params)
        out = self.call(A, B)
        s = getattr(out, "score", None)
        if s is None:
            raise TypeError(
                f"measure {self.name} returned a {type(out).__name__} without a .score; wrap "
                "it so it returns an object whose .score is the similarity (larger = more "
                "similar), or register it: svcca.register(f, name=..., ...)."
            )
        return float(s)


def _unwrap(fn: Any) -> tuple[Any, dict[str, Any]] | None:
    """``(function, keyword arguments)`` for a function or a keyword-only partial."""
    kwargs: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        if fn.args:
            return None
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    return fn, kwargs


def registered_as(fn: Any) -> tuple[Measure, dict[str, Any]] | None:
    """The registered measure a library function (or keyword partial of one) computes,
    and the parameters left once that measure's fixed options are taken out; None for
    any other callable. The measure fixing the most options wins (``cka`` with
    ``kernel="rbf", debiased=True`` is ``cka_rbf_debiased``, not ``cka_rbf``)."""
    un = _unwrap(fn)
    if un is None:
        return None
    func, kw = un
    try:
        defaults = {
            k: p.default
            for k, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
    except (TypeError, ValueError):
        return None
    given = {**defaults, **kw}
    best: tuple[Measure, dict[str, Any]] | None = None
    for m in MEASURES.values():
        if m.function is not func:
            continue
        if any(given.get(k, _MISSING) != v for k, v in m.fixed.items()):
            continue
        rest = {k: v for k, v in kw.items() if k not in m.fixed}
        if not set(rest) <= set(m.params):
            continue
        if best is None or len(m.fixed) > len(best[0].fixed):
            best = (m, rest)
    return best


def resolve(measure: Any, params: Mapping[str, Any] | None, statistic: str) -> Resolved:
    """The measure ``statistic`` (a function of :mod:`svcca.stats`) resamples, checked."""
    params = dict(params or {})
    if isinstance(measure, str):
        if measure not in MEASURES:
            raise ValueError(
                f"measure must be one of the registered measures ({', '.join(MEASURES)}) or "
                f"a callable; got {measure!r}. `svcca measures` lists them."
            )
        measure = MEASURES[measure]
    if isinstance(measure, Measure):
        why = refusal(measure, "stats")
        if why is not None:
            raise ValueError(f"svcca.stats.{statistic}: {why}")
        measure.check_params(params)
        return Resolved(measure.name, measure, measure, MappingProxyType(params))
    if not callable(measure):
        raise TypeError(
            "measure must be a registered measure's name (svcca.MEASURES), a svcca.Measure, "
            "or a function (X, Y) -> result with a .score, such as svcca.cka or "
            f"functools.partial(svcca.cka, kernel='rbf'); got {type(measure).__name__}."
        )
    found = registered_as(measure)
    if found is not None:
        m, kw = found
        return resolve(m, {**kw, **params}, statistic)
    name = getattr(measure, "__name__", repr(measure))
    if params:
        raise TypeError(
            f"params= is for registered measures (a name of svcca.MEASURES or a "
            f"svcca.Measure); {name} is a plain callable: bind its options with "
            "functools.partial."
        )
    return Resolved(name, None, measure, MappingProxyType({}))
