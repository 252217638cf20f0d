"""The measure registry: every similarity declared once, with the properties it claims.

``svcca.MEASURES`` maps a name to a :class:`Measure`: the function that computes it, the
keyword arguments that make this variant (``kernel="rbf"``), the parameters a user may
still pass, and what the measure claims: symmetric or not, its range, whether larger
means more similar, whether its distance is a metric, and the transformations of one
side it ignores. The claims are tested both ways by ``tests/contract/`` (each declared
invariance holds on generic data, each one not declared fails there), so a declaration
is a fact, not a hope. ReSi (Klabunde et al., ICLR 2025) declares such properties for
its measures; scikit-learn runs common checks over every estimator; this does both.

The declarations live beside it, one module per family (``_declared.py``: the library's
own; ``_declared_neighbours.py``; ``_declared_field.py``), imported in that order by the
package, which is the registry's order.

The registry's names are the names everywhere: ``svcca compare --measure``, the JSON
and CSV it writes, and :func:`svcca.pairwise`.

Invariances, of one side ``X`` (rows are datapoints, columns features):

- ``"orthogonal"``: ``X Q`` for an orthogonal ``Q``;
- ``"isotropic_scaling"``: ``c X`` for a scalar ``c > 0``;
- ``"per_feature_scaling"``: ``X D`` for a diagonal ``D`` with positive entries;
- ``"translation"``: ``X + 1 b^T``;
- ``"invertible_linear"``: ``X A`` for an invertible ``A``;
- ``"permutation"``: ``X P`` for a permutation ``P`` of the features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

from svcca._result import result

__all__ = [
    "ENGINES",
    "INVARIANCES",
    "MEASURES",
    "Measure",
    "Score",
    "invariance_table",
    "register",
]

Kind = Literal["moments", "samples", "minibatch"]
INVARIANCES = frozenset(
    {
        "orthogonal",
        "isotropic_scaling",
        "per_feature_scaling",
        "translation",
        "invertible_linear",
        "permutation",
    }
)
Invariances = frozenset[str] | Callable[[Mapping[str, Any]], frozenset[str]]


# The engines a measure may be served by, as docs and messages name them.
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


@result
class Score:
    """The result of a registered plain function ``f(X, Y) -> float``."""

    score: float


@dataclasses.dataclass(frozen=True)
class Measure:
    """One similarity measure and what it claims.

    Parameters
    ----------
    name : str
        Its name everywhere (registry key, ``--measure``, JSON/CSV).
    function : callable
        ``function(X, Y, **fixed, **params)`` returns a result with the score in the
        attribute :attr:`score_field` (or a float, for a plain function).
    kind : {"moments", "samples", "minibatch"}
        ``"moments"``: a function of the centred second moments (:class:`svcca.Moments`:
        a side is prepared from its block, a cross block combined); ``"samples"``: it
        needs the datapoints (an ``n x n`` Gram matrix, an RDM); ``"minibatch"``:
        accumulated over batches.
    fixed : mapping
        Keyword arguments that make this variant (``{"kernel": "rbf"}``); not the
        user's to change.
    params : tuple of str
        The keyword parameters a user may pass (validated by ``function``).
    symmetric : bool
        ``score(X, Y) == score(Y, X)``.
    larger_is_more_similar : bool
    is_metric : bool
        Whether the measure's distance form satisfies the triangle inequality.
    range : (float, float)
        Bounds of the score.
    invariances : frozenset of str, or callable
        The transformations of one side (``INVARIANCES``) the score ignores with the
        default parameters; a function of the parameters where they change it.
    description : str
        One line, for ``svcca compare --help`` and ``svcca measures``.
    score_field : str
        The result attribute holding the headline number.
    prepare, combine : callable, optional
        A samples measure split in two, as netrep's ``partial_fit``/``finalize_fit``:
        ``prepare(X, **fixed, **params)`` makes what one side contributes (a centred
        Gram matrix, an RDM, a neighbour list) and ``combine(side_x, side_y, **fixed,
        **params)`` returns the result, equal to ``function(X, Y, ...)``. Engines
        prepare each representation once and combine per pair (20 layers: 20
        preparations, not 400). Give both or neither.
    permute : callable, optional
        ``permute(side, perm)``: the prepared side of ``X[perm]`` from that of ``X``
        without recomputing it (a Gram matrix or RDM becomes ``P K P^T``); a
        permutation test then prepares each side once.
    side_bytes : callable, optional
        ``side_bytes(n, p, **fixed, **params)``: the bytes a prepared side of ``n``
        datapoints and ``p`` features keeps (``8 n^2`` for a float64 Gram matrix), so
        engines plan the sides they keep against free memory before preparing any.
    self_score : float, optional
        The score of any representation against itself, where the range's best end is
        not it: ``None`` (default) means the best end of ``range``; NaN means no fixed
        value (cycle k-NN: a point need not be a neighbour of its neighbours).
    depends_on_n : bool, default False
        The score's expected value depends on the number of datapoints beyond an
        estimator's bias: an unnormalised sum over datapoints (it grows like ``n`` or
        ``sqrt(n)``), or neighbourhoods of a fixed ``k`` (their share of the data
        shrinks as ``k / n``). It has no ``n``-free population value, so an interval
        (:func:`svcca.stats.interval`, ``pairwise(..., uncertainty=...)``) covers its
        expected value **at this n**: centred on the estimate, without the jackknife's
        bias correction (which would extrapolate the ``n``-dependence).
    """

    name: str
    function: Callable[..., Any]
    kind: Kind
    symmetric: bool
    range: tuple[float, float]
    invariances: Invariances
    description: str
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    params: tuple[str, ...] = ()
    larger_is_more_similar: bool = True
    is_metric: bool = False
    score_field: str = "score"
    prepare: Callable[..., Any] | None = None
    combine: Callable[..., Any] | None = None
    permute: Callable[[Any, Any], Any] | None = None
    side_bytes: Callable[..., int] | None = None
    self_score: float | None = None
    depends_on_n: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(
                f"A measure's name must be an identifier-like string (letters, digits, "
                f"underscores), as --measure and JSON keys use it; got {self.name!r}."
            )
        if self.kind not in ("moments", "samples", "minibatch"):
            raise ValueError(
                f"Measure {self.name!r}: kind must be 'moments', 'samples' or 'minibatch'; "
                f"got {self.kind!r}."
            )
        if not callable(self.function):
            raise TypeError(f"Measure {self.name!r}: function must be callable.")
        if (self.prepare is None) != (self.combine is None):
            raise ValueError(
                f"Measure {self.name!r}: give both prepare and combine (a side, then a "
                "pair), or neither."
            )
        if self.prepare is None and (self.permute is not None or self.side_bytes is not None):
            raise ValueError(
                f"Measure {self.name!r}: permute and side_bytes describe a prepared side; "
                "give prepare and combine too."
            )
        lo, hi = self.range
        if not lo < hi:  # also NaN
            raise ValueError(f"Measure {self.name!r}: range must be (low, high) with low < high.")
        if not callable(self.invariances):
            unknown = set(self.invariances) - INVARIANCES
            if unknown:
                raise ValueError(
                    f"Measure {self.name!r}: unknown invariances {sorted(unknown)}; expected "
                    f"a subset of {sorted(INVARIANCES)}."
                )
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        object.__setattr__(self, "params", tuple(self.params))

    def __call__(self, X: Any, Y: Any = None, **params: Any) -> Any:
        """The measure of ``X`` and ``Y``: the same frozen result as its function."""
        self.check_params(params)
        out = self.function(X, Y, **self.fixed, **params)
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            return Score(float(out))
        return out

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Refuse a parameter this measure does not take, naming those it takes."""
        extra = sorted(set(params) - set(self.params))
        if extra:
            takes = ", ".join(self.params) if self.params else "none"
            raise TypeError(
                f"Measure {self.name!r} takes no parameter {', '.join(map(repr, extra))}; it "
                f"takes: {takes}."
            )

    def score(self, X: Any, Y: Any = None, **params: Any) -> float:
        """The headline number of :meth:`__call__`."""
        return float(getattr(self(X, Y, **params), self.score_field))

    def prepare_side(self, X: Any, **params: Any) -> Any:
        """What one side contributes: ``prepare(X)`` where the measure is split, else
        ``X`` itself (the function is then called on the pair)."""
        self.check_params(params)
        if self.prepare is None:
            return X
        return self.prepare(X, **self.fixed, **params)

    def combine_sides(self, side_x: Any, side_y: Any, **params: Any) -> float:
        """The headline number of a pair of :meth:`prepare_side` outputs."""
        if self.combine is None:
            return self.score(side_x, side_y, **params)
        out = self.combine(side_x, side_y, **self.fixed, **params)
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            return float(out)
        return float(getattr(out, self.score_field))

    def permute_side(self, side: Any, perm: Any, **params: Any) -> Any:
        """The prepared side of ``X[perm]`` from that of ``X`` (:attr:`permute`; without
        it the caller prepares the permuted rows)."""
        if self.permute is None:
            raise ValueError(f"Measure {self.name!r} declares no permute for its sides.")
        return self.permute(side, perm)

    def prepared_bytes(self, n: int, p: int, **params: Any) -> int:
        """Bytes one prepared side keeps (:attr:`side_bytes`); a measure that is not
        split keeps the representation itself, ``8 n p`` in float64."""
        if self.side_bytes is None:
            return 8 * n * p
        return int(self.side_bytes(n, p, **self.fixed, **params))

    def engines(self) -> dict[str, str | None]:
        """For each engine of :data:`ENGINES`: None where it serves this measure, else
        why not (the one place an engine's refusal is stated)."""
        out: dict[str, str | None] = dict.fromkeys(ENGINES)
        if self.kind == "minibatch":
            for engine in ("pairwise", "conv.compare", "cli pairwise"):
                out[engine] = _WHOLE.format(engine=engine)
            out["stats"] = _RESAMPLE
        return out

    def invariances_for(self, **params: Any) -> frozenset[str]:
        """The invariances with these parameters (the declaration's, by default)."""
        self.check_params(params)
        inv = self.invariances
        return frozenset(inv(params) if callable(inv) else inv)


_REGISTRY: dict[str, Measure] = {}
MEASURES: Mapping[str, Measure] = MappingProxyType(_REGISTRY)


def register(
    measure: Measure | Callable[[Any, Any], float],
    *,
    name: str | None = None,
    replace: bool = False,
    **declaration: Any,
) -> Measure:
    """Add a measure to :data:`svcca.MEASURES` and return it.

    Parameters
    ----------
    measure : Measure or callable
        A :class:`Measure`, or a plain function ``f(X, Y) -> float`` (registered as a
        ``"samples"`` measure with nothing to prepare: give ``name=`` and its claims as
        keyword arguments of :class:`Measure`, e.g. ``symmetric=True, range=(0, 1),
        invariances=frozenset()``).
    replace : bool, default False
        Replace a measure of the same name (else that is refused).

    Examples
    --------
    >>> import numpy as np, svcca
    >>> def mean_abs_corr(X, Y):
    ...     C = np.corrcoef(X, Y, rowvar=False)[: X.shape[1], X.shape[1]:]
    ...     return float(np.abs(C).mean())
    >>> m = svcca.register(mean_abs_corr, name="mean_abs_corr", symmetric=True,
    ...                    range=(0.0, 1.0), invariances=frozenset({"translation"}),
    ...                    description="mean absolute feature correlation", replace=True)
    >>> X = np.random.default_rng(0).standard_normal((50, 3))
    >>> round(svcca.MEASURES["mean_abs_corr"](X, X).score, 3) > 0.3
    True
    """
    if not isinstance(measure, Measure):
        if not callable(measure):
            raise TypeError(
                f"register expects a Measure or a function f(X, Y) -> float; got "
                f"{type(measure).__name__}."
            )
        fn_name = getattr(measure, "__name__", None)
        declaration.setdefault("kind", "samples")
        declaration.setdefault("description", f"user measure {name or fn_name}")
        missing = [k for k in ("symmetric", "range", "invariances") if k not in declaration]
        if name is None or missing:
            raise TypeError(
                "A plain function is registered with its claims: give name=..., "
                "symmetric=..., range=(low, high) and invariances=frozenset(...) "
                f"(missing: {', '.join((['name'] if name is None else []) + missing)})."
            )
        measure = Measure(name=name, function=measure, **declaration)
    elif name is not None or declaration:
        raise TypeError("Give either a Measure, or a function with name= and its claims.")
    if measure.name in _REGISTRY and not replace:
        raise ValueError(
            f"A measure named {measure.name!r} is registered already; pass replace=True to "
            "replace it, or choose another name."
        )
    _REGISTRY[measure.name] = measure
    return measure


_COLUMNS = (
    ("orthogonal", "orthogonal"),
    ("isotropic_scaling", "isotropic scaling"),
    ("translation", "translation"),
    ("permutation", "feature permutation"),
    ("per_feature_scaling", "per-feature scaling"),
    ("invertible_linear", "invertible linear"),
)


def invariance_table() -> str:
    """The declarations of every registered measure as a Markdown table (default
    parameters), with the engines that serve it (:func:`svcca._measures.engines_for`) and,
    below the table, why an engine refuses one: what ``svcca measures`` prints and
    docs/invariances.md holds."""

    def mark(flag: bool) -> str:
        return "yes" if flag else "no"

    head = ["measure", "kind", "symmetric", "range", *(t for _, t in _COLUMNS), "metric"]
    head.append("engines")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for m in _REGISTRY.values():
        inv = m.invariances_for()
        lo, hi = m.range
        refused = {e: why for e, why in m.engines().items() if why is not None}
        cells = [
            f"`{m.name}`",
            m.kind,
            mark(m.symmetric),
            f"[{lo:g}, {hi:g}]",
            *(mark(k in inv) for k, _ in _COLUMNS),
            mark(m.is_metric),
            "all" if not refused else "all but " + ", ".join(refused),
        ]
        rows.append("| " + " | ".join(cells) + " |")
        for engine, why in refused.items():
            notes.append(f"- `{m.name}` in {engine}: {why}.")
    text = "\n".join(rows) + "\n"
    if notes:
        text += "\nRefused, and why:\n\n" + "\n".join(notes) + "\n"
    return text


def iter_kind(kind: Kind) -> Iterator[Measure]:
    """The registered measures of one kind, in registration order."""
    return (m for m in _REGISTRY.values() if m.kind == kind)
