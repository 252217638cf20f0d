"""BLAS threads where they pay: the large products on the free cores, small steps on one.

Two kinds of work follow each other in every measure. The products over the samples
(``n x p`` by ``n x q``) are large; what follows them, eigendecompositions, Cholesky
factors and triangular solves of ``p x p`` blocks, is small. Measured on the project's
2-core machine with OpenBLAS (``benchmarks/bench_threads.py``):

- on small blocks OpenBLAS's threads cost more in synchronisation than they save (an
  eigendecomposition of a 512 x 512 block is 2x slower on two threads than on one);
- when another process keeps one core busy, a multi-threaded BLAS call waits for a
  core it cannot have and collapses: a ``syrk`` of 8192 x 256 took 260 ms on two
  threads against 26 ms on one, an ``eigh`` of 64 x 64 60 ms against 2 ms.

So :func:`dense_steps` runs the small steps on one thread, and :func:`products` gives a
product at most as many threads as there are idle cores (the runnable tasks of other
processes at the time of the call, from ``/proc``), and one thread when the
product is too small to gain from more. Without threadpoolctl (a small pure-Python
package) or on platforms without ``/proc/loadavg``, the defaults are kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SMALL_BLOCK", "SMALL_PRODUCT", "dense_steps", "free_cores", "products"]

# Largest block dimension of a dense step that always runs on one thread. Above it more
# threads help a p x p eigendecomposition on an idle machine (bench_threads.py).
SMALL_BLOCK = 2048
# Multiply-adds of one BLAS call below which one thread is as fast as two (a few ms).
SMALL_PRODUCT = 2e7

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


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - platforms without affinity


def _running_here() -> int:
    """Threads of this process that are runnable now (BLAS workers still spinning too)."""
    n = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # pragma: no cover - not Linux
        return 1
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/stat") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        n += stat[stat.rindex(")") + 2] == "R"
    return max(n, 1)


def free_cores() -> int:
    """Cores not taken by other processes' runnable tasks right now (at least 1).

    The runnable tasks of the whole machine (``/proc/loadavg``) minus this process's own
    (``/proc/self/task``: its BLAS workers spin for a while after each call and must not
    count as other work); where those files do not exist every core counts as free.
    """
    cores = _cores()
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return cores
    return max(1, cores - max(running - _running_here(), 0))


@contextmanager
def _limit(threads: int) -> Iterator[None]:
    pools = _threadpools()
    if pools is None:
        yield
        return
    # The BLAS threads now (not when the controller was made: that may have been inside
    # another limit, e.g. a caller's threadpool_limits(1), and would then never limit).
    now = max((p.num_threads for p in pools.lib_controllers if p.user_api == "blas"), default=1)
    if threads >= now:
        yield
        return
    with pools.limit(limits=threads, user_api="blas"):
        yield


@contextmanager
def dense_steps(size: int, device: Any = None) -> Iterator[None]:
    """Run the enclosed small dense linear algebra on one BLAS thread, or on a device.

    Parameters
    ----------
    size : int
        The largest block dimension the enclosed steps factorise (``max(p, q)``); above
        :data:`SMALL_BLOCK` they get the free cores (:func:`free_cores`).
    device : str or torch.device, optional
        Where the statistic was accumulated (``Moments.device``). Its cubic kernels
        (:mod:`svcca._dense`) run on the device :func:`svcca._device.chosen` picks: an
        ``svcca.on_device`` block's, else ``device`` unless it is the CPU (omitted: the
        enclosing block's).

    Nested uses are cheap (tens of microseconds) and restore the previous limits on
    exit, errors included.
    """
    from svcca._dense import dense_on, device_in_use
    from svcca._device import chosen

    where = chosen(device_in_use() if device is None else device)
    with _limit(1 if size <= SMALL_BLOCK else free_cores()), dense_on(where):
        yield


@contextmanager
def products(work: float) -> Iterator[None]:
    """Run the enclosed BLAS products on the idle cores, or one thread when small.

    Parameters
    ----------
    work : float
        Multiply-adds of the largest single BLAS call inside (e.g. ``rows * p * q`` of
        one chunk); below :data:`SMALL_PRODUCT` one thread is used.
    """
    with _limit(1 if work < SMALL_PRODUCT else free_cores()):
        yield
