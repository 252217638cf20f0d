"""Figures of the SVCCA paper (matplotlib; imported only when a function runs).

``import svcca`` never imports this package; ``import svcca.plot`` does not import
matplotlib either. Each function takes precomputed numbers and returns a
``matplotlib.figure.Figure`` (built without pyplot, so no window opens and no backend
is switched); :func:`save` writes PNG and SVG. :func:`heatmap` also takes the
:class:`svcca.PairwiseResult` of :func:`svcca.pairwise` as it is (values, labels, measure).
"""

from svcca.plot._curves import (
    class_sensitivity,
    coefficient_curves,
    compression_curves,
    group_similarity,
    interpretability,
)
from svcca.plot._figures import convergence_curves, heatmap, learning_dynamics, save

__all__ = [
    "class_sensitivity",
    "coefficient_curves",
    "compression_curves",
    "convergence_curves",
    "group_similarity",
    "heatmap",
    "interpretability",
    "learning_dynamics",
    "save",
]
