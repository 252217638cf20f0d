"""Shared test configuration: tolerances, data generators, fixtures, Hypothesis profiles.

Layout
------
Tests are grouped by the behaviour they pin, one folder per part of the library:
``measures/`` (one file per measure: ``test_cca.py``, ``test_svcca.py``, ``test_cka.py``
...), ``engines/`` (pairwise, streaming, two-pass, Dask), ``torch/``, ``stats/``,
``conv/``, ``compat/``, ``cli/``, ``demo/``, ``plot/``, ``sources/`` (what a user may
pass), ``statistic/`` (Moments, float32), ``linalg/``, ``device/``, ``faults/``,
``magnitude/``, ``peers/`` (agreement with other implementations), and ``contract/``
(rules every measure and path keeps). Basenames are unique across the tree (there is no
``tests/__init__.py``). A test uses the public API (``svcca.*``, ``svcca.MEASURES``,
``svcca.torch``, ``svcca.stats``, ``svcca.conv``, ``svcca.compat``, the CLI); a private
import says in one line why nothing public shows the behaviour.

Tolerances
----------
A test that compares two floating-point computations must hold on any CPU, BLAS kernel
(``OPENBLAS_CORETYPE``) and thread count: those change the order of every sum inside a
matrix product, so results differ by round-off. The tolerance is therefore an error
bound from the mathematics, never the difference one run happened to show:
:func:`tol` returns ``factor * eps(dtype) * cond * scale``.

Data generators
---------------
Tests build their data with a few seeded generators (import them: ``from conftest import
latent_pair``), so a reader sees one meaning for "a pair of related layers":
:func:`latent_pair` (two layers driven by shared latent factors, the generic case),
:func:`latent_layers` (several such layers, for ``pairwise``), :func:`linear_pair` (``Y``
a noisy linear function of ``X``'s first features), :func:`correlated_linear_pair` (the
same of all of correlated features), :func:`tanh_pair` (a nonlinear read-out) and
:func:`independent_pair`. Each
draws from ``np.random.default_rng(seed)`` in a fixed order, so a reference value pinned
on its output stays valid: change a generator and every pinned value built on it moves.

Fixtures
--------
``one_blas_thread`` (small matrices on shared cores: extra BLAS threads only contend) and
``dask_client`` (one ``distributed.LocalCluster`` for the whole session).

Hypothesis
----------
``HYPOTHESIS_PROFILE`` selects a profile; otherwise ``CI`` in the environment selects
``"ci"`` (derandomised: the same examples on every run, no deadline, no example
database) and everything else ``"dev"`` (random examples, the default settings).
"""

from __future__ import annotations

import doctest
import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
_default_profile = "ci" if os.environ.get("CI") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or _default_profile)


def tol(dtype=np.float64, cond: float = 1.0, scale: float = 1.0, factor: float = 10.0) -> float:
    """Absolute round-off tolerance ``factor * eps(dtype) * cond * scale``.

    Parameters
    ----------
    dtype
        The precision the compared quantities were computed in: ``eps`` is its machine
        epsilon (2.2e-16 for float64, 1.2e-7 for float32), the relative error of one
        correctly rounded operation. A float32 forward pass is float32 even when the
        activations are then accumulated in float64.
    cond
        The problem's condition number: how much a relative perturbation of the input
        (or a backward error of the algorithm) is amplified in the output. A
        backward-stable SVD or symmetric eigensolver has ``cond = 1`` for singular values
        and eigenvalues *in units of the largest one*; a solve, pinv or inverse square root
        has ``cond`` of the matrix it inverts; canonical correlations, that of the
        (correlation-scaled) covariance blocks that are whitened.
    scale
        The size of the quantity the error is relative to: the largest singular value for
        any singular value (the smallest one is accurate to ``eps * s_max``, not to
        ``eps * s_min``), ``max |x|`` for a sum of terms of that size, 1 for correlations.
    factor
        The constant of the bound: the length of the sums involved (a sum of ``k`` terms
        is accurate to ``k * eps`` in the worst case), the dimension in LAPACK's
        ``O(p) eps`` backward-error bounds, and 2 when both compared values carry their
        own error. Each call site states which.
    """
    return float(factor * np.finfo(dtype).eps * cond * scale)


def covariance_roundoff(X: np.ndarray, Y: np.ndarray) -> float:
    """Round-off difference of two computations of the singular values of ``cov(X, Y)``.

    Each entry is a sum of ``n`` products, accurate to ``n eps`` times the same sum of
    absolute values (``||.||_2 <= ||.||_F`` of that bound for the whole matrix); the SVD
    adds ``(p + q) eps`` of the largest singular value, which that norm exceeds; 2 for
    the two computations. Every singular value, the smallest included, gets this
    absolute error: it is not relative.
    """
    n = X.shape[0]
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    scale = np.linalg.norm(np.abs(Xc).T @ np.abs(Yc)) / (n - 1)
    return tol(np.float64, scale=scale, factor=2 * (n + X.shape[1] + Y.shape[1]))


@pytest.fixture(name="tol")
def _tol_fixture():
    """:func:`tol`, for tests that take it as a fixture."""
    return tol


def run_examples(*objects: Any, optionflags: int = doctest.NORMALIZE_WHITESPACE) -> Any:
    """Run the Examples sections of these objects' docstrings (public names: a function
    or class moved between private modules is still found). Returns doctest's
    ``TestResults(failed, attempted)``, summed over the objects."""
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=optionflags)
    for obj in objects:
        for test in finder.find(obj, getattr(obj, "__qualname__", repr(obj))):
            runner.run(test)
    return runner.summarize(verbose=False)


# ------------------------------------------------------------------ data generators
def latent_pair(
    n: int,
    p: int,
    q: int,
    *,
    seed: int = 0,
    latent: int = 3,
    x_noise: float = 1.0,
    y_noise: float = 1.0,
    x_tanh: bool = False,
    y_tanh: bool = False,
    x_offset: float = 0.0,
    y_offset: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two layers driven by ``latent`` shared factors: the generic related pair.

    ``Z ~ N(0, I)`` of shape ``(n, latent)``, then
    ``X = f(Z W_x) + x_noise * E_x + x_offset`` and ``Y = g(Z W_y) + y_noise * E_y +
    y_offset`` with ``W``, ``E`` standard normal and ``f``, ``g`` the identity or
    ``tanh`` (``x_tanh``, ``y_tanh``). The draws are made in the order ``Z, W_x, E_x, W_y,
    E_y`` from ``np.random.default_rng(seed)``: the same numbers as the local generators
    it replaced, bit for bit (a noise of 1.0 and an offset of 0.0 are exact).

    Returns
    -------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, q)
        float64; ``min(latent, p, q)`` canonical correlations well above the rest.
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, latent))
    X = Z @ rng.standard_normal((latent, p))
    if x_tanh:
        X = np.tanh(X)
    X = X + x_noise * rng.standard_normal((n, p)) + x_offset
    Y = Z @ rng.standard_normal((latent, q))
    if y_tanh:
        Y = np.tanh(Y)
    Y = Y + y_noise * rng.standard_normal((n, q)) + y_offset
    return X, Y


def latent_layers(
    n: int,
    widths: tuple[int, ...],
    *,
    seed: int = 0,
    latent: int = 6,
    noise: float = 0.05,
    offset_step: float = 0.0,
) -> dict[str, np.ndarray]:
    """Layers ``"l0", "l1", ...`` like a network's: a shared latent through ``tanh``.

    ``Z ~ N(0, I)`` of shape ``(n, latent)``; layer ``i`` of width ``widths[i]`` is
    ``tanh(Z W_i) + noise * E_i + i * offset_step`` (``W_i``, ``E_i`` standard normal,
    drawn in that order, layer by layer, from ``np.random.default_rng(seed)``).

    Returns
    -------
    dict of str to ndarray of shape (n, widths[i])
    """
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, latent))
    return {
        f"l{i}": np.tanh(Z @ rng.standard_normal((latent, w)))
        + noise * rng.standard_normal((n, w))
        + i * offset_step
        for i, w in enumerate(widths)
    }


def linear_pair(
    n: int, p: int, q: int, *, seed: int = 0, x_offset: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """``X ~ N(x_offset, I)`` and ``Y = X[:, :q] W + E`` (``q <= p``), ``W`` of shape (q, q).

    Draws ``X, W, E`` in that order from ``np.random.default_rng(seed)``.

    Returns
    -------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, q)
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) + x_offset
    Y = X[:, :q] @ rng.standard_normal((q, q)) + rng.standard_normal((n, q))
    return X, Y


def correlated_linear_pair(
    n: int, p: int, q: int, *, seed: int = 0, noise: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Correlated features ``X = E_1 M`` and a linear read-out ``Y = X W + noise * E_2``.

    ``E_1`` (n, p), ``M`` (p, p), ``W`` (p, q) and ``E_2`` (n, q) standard normal, drawn in
    that order from ``np.random.default_rng(seed)``. ``M`` makes X's features correlated
    and of different scales (generic for the invariance checks).

    Returns
    -------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, q)
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) @ rng.standard_normal((p, p))
    Y = X @ rng.standard_normal((p, q)) + noise * rng.standard_normal((n, q))
    return X, Y


def tanh_pair(
    n: int, p: int, q: int, *, seed: int = 0, noise: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """``X ~ N(0, I)`` and a nonlinear read-out ``Y = tanh(X W) + noise * E``.

    ``X`` (n, p), ``W`` (p, q), ``E`` (n, q) drawn in that order from
    ``np.random.default_rng(seed)``.

    Returns
    -------
    X : ndarray of shape (n, p)
    Y : ndarray of shape (n, q)
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    Y = np.tanh(X @ rng.standard_normal((p, q))) + noise * rng.standard_normal((n, q))
    return X, Y


def independent_pair(n: int, p: int, q: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Independent standard normal ``X`` (n, p) and ``Y`` (n, q): every population
    canonical correlation is 0, so what a score shows is the sample size's inflation."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal((n, q))


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def one_blas_thread():
    """One BLAS thread for the test: small matrices on shared cores only contend (often
    10x slower with more)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def _dask_session_client():
    """The session's one real Dask cluster: 2 worker processes on localhost, 1 thread each.

    Started on first use (about a second), closed at the end of the session. The client is
    not made the default (``set_as_default=False``): Dask work outside :func:`dask_client`
    stays on the local scheduler, so a test that needs no cluster never uses it by chance.
    """
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def dask_client(_dask_session_client):
    """A ``distributed.Client`` of the session's one cluster, Dask's scheduler for the test.

    Every Dask test that needs real worker processes takes this fixture (one cluster per
    session keeps the suite fast); a test that must kill or restart workers starts its own.
    """
    import dask

    with dask.config.set(scheduler=_dask_session_client):
        yield _dask_session_client
