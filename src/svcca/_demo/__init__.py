"""``svcca demo``: train small networks on the bundled digits and redraw the paper.

:func:`run_demo` trains a small CNN and an MLP on scikit-learn's 8x8 digits (shipped
with scikit-learn: no download) from several seeds, saving a ``state_dict`` checkpoint
after every epoch, then recomputes the SVCCA paper's examples on them (learning
dynamics, class sensitivity, interpretability across runs, compression onto top-k
CCA/PLS/PCA directions, generalising vs memorising networks, coefficient curves with a
random baseline) and writes the figures (PNG and SVG) with ``index.html`` and
``README.md`` stating one measured finding under each.

Needs the extras torch, matplotlib and scikit-learn.

:func:`run_sanity`, :func:`run_study` (the sanity table of every measure) and
:func:`run_monotonicity` (ReSi's layer-monotonicity test) serve ``svcca demo --sanity``
and ``svcca demo --monotonicity``.
"""

from svcca._demo._monotonicity import monotonicity_markdown, run_monotonicity
from svcca._demo._run import DemoConfig, DemoReport, Figure, run_demo
from svcca._demo._sanity import run_sanity, run_study

__all__ = [
    "DemoConfig",
    "DemoReport",
    "Figure",
    "monotonicity_markdown",
    "run_demo",
    "run_monotonicity",
    "run_sanity",
    "run_study",
]
