"""``svcca demo``: train small networks on the bundled digits and redraw the paper.

:func:`run_demo` trains a small CNN and an MLP on scikit-learn's 8x8 digits (shipped
with scikit-learn: no download) from several seeds, saving a ``state_dict`` checkpoint
after every epoch, then recomputes the SVCCA paper's examples on them (learning
dynamics, class sensitivity, interpretability across runs, compression onto top-k
CCA/PLS/PCA directions, generalising vs memorising networks, coefficient curves with a
random baseline) and writes the figures (PNG and SVG) with ``index.html`` and
``README.md`` stating one measured finding under each.

Needs the extras torch, matplotlib and scikit-learn.

:func:`run_sanity` and :func:`run_study` (the sanity table of every measure) are
*internal* API, for the ``svcca demo`` command.
"""

from svcca.demo._run import DemoConfig, DemoReport, Figure, run_demo
from svcca.demo._sanity import run_sanity, run_study

__all__ = [
    "DemoConfig",
    "DemoReport",
    "Figure",
    "run_demo",
    # internal (see the docstring)
    "run_sanity",
    "run_study",
]
