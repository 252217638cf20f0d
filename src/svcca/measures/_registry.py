"""The measure registry: every similarity declared once, with the properties it claims.

``svcca.MEASURES`` maps a name to a :class:`Measure`: the function that computes it, the
keyword arguments that make this variant (``kernel="rbf"``), the parameters a user may
still pass, and what the measure claims: symmetric or not, its range, whether larger
means more similar, whether its distance is a metric, and the transformations of one
side it ignores. The claims are tested both ways by ``tests/contract/`` (each declared
invariance holds on generic data, each one not declared fails there), so a declaration
is a fact, not a hope. ReSi (Klabunde et al., ICLR 2025) declares such properties for
its measures; scikit-learn runs common checks over every estimator; this does both.

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
from svcca.measures._cca import cca
from svcca.measures._cka import cka
from svcca.measures._pls import pls
from svcca.measures._pwcca import pwcca
from svcca.measures._regression import regression_fit
from svcca.measures._rsa import rsa
from svcca.measures._shape import procrustes, shape_distance
from svcca.measures._svcca import svcca

__all__ = ["INVARIANCES", "MEASURES", "Measure", "Score", "invariance_table", "register"]

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
    parameters): what ``svcca measures`` prints and docs/invariances.md holds."""

    def mark(flag: bool) -> str:
        return "yes" if flag else "no"

    head = ["measure", "kind", "symmetric", "range", *(t for _, t in _COLUMNS), "metric"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in _REGISTRY.values():
        inv = m.invariances_for()
        lo, hi = m.range
        cells = [
            f"`{m.name}`",
            m.kind,
            mark(m.symmetric),
            f"[{lo:g}, {hi:g}]",
            *(mark(k in inv) for k, _ in _COLUMNS),
            mark(m.is_metric),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def iter_kind(kind: Kind) -> Iterator[Measure]:
    """The registered measures of one kind, in registration order."""
    return (m for m in _REGISTRY.values() if m.kind == kind)


# ---------------------------------------------------------------------- the library's own
_LINEAR_CKA = frozenset({"orthogonal", "isotropic_scaling", "translation", "permutation"})
_CCA = frozenset(
    {
        "orthogonal",
        "isotropic_scaling",
        "per_feature_scaling",
        "translation",
        "invertible_linear",
        "permutation",
    }
)


def _shape_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """alpha = 0 is CCA (every invertible map); otherwise Procrustes' group."""
    return _CCA if float(params.get("alpha", 1.0)) == 0.0 else _LINEAR_CKA


def _rsa_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """Euclidean RDMs ignore rotations and shifts of the feature space; correlation RDMs
    (patterns of a datapoint across features) do not, but ignore scaling."""
    if params.get("metric", "euclidean") == "correlation":
        return frozenset({"isotropic_scaling", "permutation"})
    return _LINEAR_CKA


def _rbf_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """The median heuristic scales the width with the data; an absolute sigma does not."""
    if params.get("sigma") is not None:
        return frozenset({"orthogonal", "translation", "permutation"})
    return _LINEAR_CKA


for _m in (
    Measure(
        "svcca",
        svcca,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("keep", "variance", "threshold", "precision"),
        description="SVCCA: mean canonical correlation of the leading SVD directions (keep)",
    ),
    Measure(
        "cca",
        cca,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_CCA,
        params=("epsilon", "threshold", "precision"),
        description="mean canonical correlation of the whole layers (epsilon)",
    ),
    Measure(
        "pwcca",
        pwcca,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        # its weights sum |<h_i, x_j>| over the weighting side's neurons x_j: a rotation
        # or a rescaling of those neurons changes them
        invariances=frozenset({"isotropic_scaling", "translation", "permutation"}),
        params=("epsilon", "weight_by", "precision"),
        description="projection-weighted CCA, weighted by the side of smaller rank (epsilon)",
    ),
    Measure(
        "pls",
        pls,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("precision",),
        description="partial least squares; its score is linear CKA",
    ),
    Measure(
        "cka_linear",
        cka,
        "moments",
        fixed={"kernel": "linear"},
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("method", "precision"),
        description="linear CKA",
    ),
    Measure(
        "cka_linear_debiased",
        cka,
        "samples",
        fixed={"kernel": "linear", "debiased": True},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("method",),
        description="linear CKA, unbiased HSIC estimator",
    ),
    Measure(
        "cka_rbf",
        cka,
        "samples",
        fixed={"kernel": "rbf"},
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_rbf_invariances,
        params=("bandwidth", "sigma"),
        description="RBF-kernel CKA (bandwidth: times the median distance)",
    ),
    Measure(
        "cka_rbf_debiased",
        cka,
        "samples",
        fixed={"kernel": "rbf", "debiased": True},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_rbf_invariances,
        params=("bandwidth", "sigma"),
        description="RBF-kernel CKA, unbiased HSIC estimator (bandwidth)",
    ),
    Measure(
        "procrustes",
        procrustes,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        is_metric=True,
        description="orthogonal Procrustes similarity (its distance is a metric)",
    ),
    Measure(
        "shape_distance",
        shape_distance,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_shape_invariances,
        is_metric=True,
        params=("alpha", "kind"),
        description="Williams et al.'s shape metric, partial whitening alpha (1: Procrustes)",
    ),
    Measure(
        "regression",
        regression_fit,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        description="linear regression R^2, averaged over both directions",
    ),
    Measure(
        "rsa",
        rsa,
        "samples",
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_rsa_invariances,
        params=("metric", "compare"),
        description="RSA: Spearman correlation of Euclidean dissimilarity matrices",
    ),
):
    register(_m)
del _m


# ------ field measures: matrices, matching, subspaces, one side
# (ReSi's measures beside the library's own; docs/field_measures.md. The imports sit here
# so that this block stays one unit; the modules import nothing from the registry.)
from svcca.measures._matching import (  # noqa: E402
    aligned_cosine,
    correlation_match,
    permutation_procrustes,
    procrustes_size_shape,
)
from svcca.measures._one_side import (  # noqa: E402
    _concentricity_combine,
    _uniformity_combine,
    concentricity,
    concentricity_difference,
    magnitude_difference,
    uniformity,
    uniformity_difference,
)
from svcca.measures._rsm import (  # noqa: E402
    distance_correlation,
    distance_correlation_combine,
    distance_correlation_prepare,
    rsm_norm_combine,
    rsm_norm_difference,
    rsm_prepare,
)
from svcca.measures._subspace import eigenspace_overlap, gulp  # noqa: E402

_EUCLIDEAN_GEOMETRY = frozenset({"orthogonal", "translation", "permutation"})
_CORRELATIONS = frozenset(
    {"isotropic_scaling", "per_feature_scaling", "translation", "permutation"}
)
_COLUMN_SPACE = frozenset(
    {"orthogonal", "isotropic_scaling", "per_feature_scaling", "invertible_linear", "permutation"}
)
_INF = float("inf")


def _gulp_invariances(params: Mapping[str, Any]) -> frozenset[str]:
    """ridge = 0 is a function of the canonical correlations (every invertible map);
    ridge > 0 of each side's covariance scaled to unit trace (rotations and scale)."""
    return _CCA if float(params.get("ridge", 0.0)) == 0.0 else _LINEAR_CKA


for _m in (
    Measure(
        "rsm_norm_difference",
        rsm_norm_difference,
        "samples",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_EUCLIDEAN_GEOMETRY,
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        params=("norm", "block_size", "tol"),
        prepare=rsm_prepare,
        combine=rsm_norm_combine,
        description="norm of the difference of the Euclidean distance matrices (ReSi; "
        "norm: spectral, frobenius, triangle)",
    ),
    Measure(
        "distance_correlation",
        distance_correlation,
        "samples",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_LINEAR_CKA,
        params=("block_size",),
        prepare=distance_correlation_prepare,
        combine=distance_correlation_combine,
        description="distance correlation of the Euclidean distance matrices (blocked)",
    ),
    Measure(
        "hard_correlation_match",
        correlation_match,
        "moments",
        fixed={"mode": "hard"},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_CORRELATIONS,
        description="mean correlation of neurons matched one to one (assignment problem)",
    ),
    Measure(
        "soft_correlation_match",
        correlation_match,
        "moments",
        fixed={"mode": "soft"},
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=_CORRELATIONS,
        description="mean correlation of each neuron with its best match, both ways",
    ),
    Measure(
        "permutation_procrustes",
        permutation_procrustes,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=frozenset({"permutation"}),
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        description="||XP - Y||_F over permutations P of the raw data (ReSi)",
    ),
    Measure(
        "procrustes_size_shape",
        procrustes_size_shape,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_EUCLIDEAN_GEOMETRY,
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        description="Procrustes size-and-shape distance: centred, rotated, not scaled",
    ),
    Measure(
        "aligned_cosine",
        aligned_cosine,
        "samples",
        symmetric=True,
        range=(-1.0, 1.0),
        invariances=frozenset({"orthogonal", "isotropic_scaling", "permutation"}),
        description="mean cosine of datapoints after the Procrustes rotation (raw data)",
    ),
    Measure(
        "eigenspace_overlap",
        eigenspace_overlap,
        "moments",
        symmetric=True,
        range=(0.0, 1.0),
        invariances=_COLUMN_SPACE,
        description="overlap of the raw column spaces, ||U_x^T U_y||_F^2 / max(p, q)",
    ),
    Measure(
        "gulp",
        gulp,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_gulp_invariances,
        larger_is_more_similar=False,
        is_metric=True,
        score_field="distance",
        params=("ridge",),
        description="GULP distance of ridge predictors (ridge: lambda, 0 as ReSi)",
    ),
    Measure(
        "magnitude_difference",
        magnitude_difference,
        "moments",
        symmetric=True,
        range=(0.0, _INF),
        invariances=frozenset({"orthogonal", "permutation"}),
        larger_is_more_similar=False,
        score_field="distance",
        description="| ||mean X|| - ||mean Y|| | (ReSi)",
    ),
    Measure(
        "concentricity_difference",
        concentricity_difference,
        "samples",
        symmetric=True,
        range=(0.0, 2.0),
        invariances=frozenset({"orthogonal", "isotropic_scaling", "permutation"}),
        larger_is_more_similar=False,
        score_field="distance",
        prepare=concentricity,
        combine=_concentricity_combine,
        description="difference of the mean cosines of datapoints to their mean (ReSi)",
    ),
    Measure(
        "uniformity_difference",
        uniformity_difference,
        "samples",
        symmetric=True,
        range=(0.0, _INF),
        invariances=_EUCLIDEAN_GEOMETRY,
        larger_is_more_similar=False,
        score_field="distance",
        params=("t", "block_size"),
        prepare=uniformity,
        combine=_uniformity_combine,
        description="difference of the log mean Gaussian potentials (ReSi; blocked)",
    ),
):
    register(_m)
del _m
