"""Dense steps (factorisations of p x p blocks) on one BLAS thread for small blocks.

Private: the BLAS thread count inside a call is not observable through the public API
(only its speed is); threadpoolctl reads it while the limit is held.
"""

from __future__ import annotations

import os

import pytest

# private: the limit is held only inside library calls; nothing public reads it
from svcca._threads import SMALL_PRODUCT, dense_steps, free_cores, products


def test_dense_steps_run_on_one_thread_for_small_blocks():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with dense_steps(64):
        inside = [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert inside and all(t == 1 for t in inside)
    assert after == before
    with products(SMALL_PRODUCT / 2):
        small = [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]
    assert all(t == 1 for t in small)
    assert 1 <= free_cores() <= (os.cpu_count() or 1)


def test_dense_steps_limit_even_when_first_used_inside_a_callers_limit(monkeypatch):
    """The threads are compared with the BLAS's threads at the time of the call (was:
    with those when the controller was made, so a first use inside a caller's
    threadpool_limits(1) disabled every later limit: an order-dependent flake)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import svcca._threads as threads

    monkeypatch.setattr(threads, "_controller", None)

    def blas():
        info = threadpoolctl.threadpool_info()
        return [i["num_threads"] for i in info if i["user_api"] == "blas"]

    with threadpoolctl.threadpool_limits(1):
        with dense_steps(64):
            pass
    if max(blas(), default=1) < 2:
        pytest.skip("one BLAS thread here: nothing to limit")
    with dense_steps(64):
        assert all(t == 1 for t in blas())
