"""Gaussian populations whose similarity is known in closed form (shared by the
uncertainty tests; imported as a sibling module)."""

from __future__ import annotations

import numpy as np

RHO = np.array([0.9, 0.6, 0.3])


def population(rho: np.ndarray = RHO, seed: int = 12345) -> tuple[np.ndarray, np.ndarray]:
    """Mixing maps ``Ax``, ``Ay`` (k x k) of a population with canonical correlations ``rho``.

    ``X = U Ax``, ``Y = V Ay`` where the pairs ``(U_i, V_i)`` are standard Gaussian with
    correlation ``rho_i`` and independent across ``i``: CCA is invariant to the maps, so
    the population canonical correlations are ``rho``.
    """
    rng = np.random.default_rng(seed)
    k = rho.shape[0]
    Ax = rng.standard_normal((k, k)) + 2 * np.eye(k)
    Ay = rng.standard_normal((k, k)) + 2 * np.eye(k)
    return Ax, Ay


def draw(n: int, rng: np.random.Generator, rho: np.ndarray = RHO) -> tuple[np.ndarray, np.ndarray]:
    Ax, Ay = population(rho)
    U = rng.standard_normal((n, rho.shape[0]))
    V = rho * U + np.sqrt(1 - rho**2) * rng.standard_normal((n, rho.shape[0]))
    return U @ Ax, V @ Ay


def population_cka(rho: np.ndarray = RHO) -> float:
    """Linear CKA of the population covariances:
    ``||S_xy||_F^2 / (||S_xx||_F ||S_yy||_F)`` with ``S_xx = Ax^T Ax``,
    ``S_yy = Ay^T Ay``, ``S_xy = Ax^T diag(rho) Ay``."""
    Ax, Ay = population(rho)
    sxx, syy, sxy = Ax.T @ Ax, Ay.T @ Ay, Ax.T @ np.diag(rho) @ Ay
    return float(np.sum(sxy**2) / (np.linalg.norm(sxx) * np.linalg.norm(syy)))


def population_cca(rho: np.ndarray = RHO) -> float:
    """Mean canonical correlation of the population."""
    return float(rho.mean())
