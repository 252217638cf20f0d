"""BLAS threads for the small dense steps after the cross-products.

The products over the samples (``n x p`` by ``n x q``) are large and use every BLAS
thread. What follows them, eigendecompositions, Cholesky factors and triangular solves
of ``p x p`` blocks, is small: there OpenBLAS's threads cost more in synchronisation
than they save (an eigendecomposition of a 512 x 512 block takes 2x longer on two threads
than on one on a quiet two-core machine), and on a busy machine, where the threads wait
for cores other processes hold, it collapses (10-100x slower). :func:`dense_steps` runs
such a step on one BLAS thread unless the blocks are large *and* the machine is idle.

threadpoolctl (a small pure-Python package) does the switching; without it every step
keeps the default threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SMALL_BLOCK", "dense_steps", "one_thread_pays"]

# Largest block dimension for which one thread is always used. Above it two or more
# threads help a p x p eigendecomposition on an idle machine (benchmarks/bench_threads.py).
SMALL_BLOCK = 2048

_controller: Any = None


def _threadpools() -> Any:
    """The process's ThreadpoolController (created once), or None without threadpoolctl."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - depends on the environment
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller or None


def _busy() -> bool:
    """Whether other work holds the cores (1-minute load average >= the cores we have)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # pragma: no cover - platforms without it
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return load >= (cores or 1)


def one_thread_pays(size: int) -> bool:
    """Whether dense steps on ``size x size`` blocks should run on one BLAS thread."""
    return size <= SMALL_BLOCK or _busy()


@contextmanager
def dense_steps(size: int) -> Iterator[None]:
    """Run the enclosed small dense linear algebra on one BLAS thread when that pays.

    Parameters
    ----------
    size : int
        The largest block dimension the enclosed steps factorise (``max(p, q)``).

    Nested uses are cheap (a few tens of microseconds each) and restore the previous
    limits on exit, errors included.
    """
    pools = _threadpools() if one_thread_pays(size) else None
    if pools is None:
        yield
        return
    with pools.limit(limits=1, user_api="blas"):
        yield
