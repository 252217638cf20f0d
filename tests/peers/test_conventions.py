"""Where every peer's number comes from (``docs/conventions.md``): pinned values and recipes.

Independent implementations of the same measure agree with svcca to round-off on
well-posed data and disagree by 0.01-0.3 through *conventions*: centring or not, which
singular values a truncation rule sums, which side PWCCA weights by, which median sets
an RBF width, which HSIC estimator sits in the numerator and which in the denominator.
For every row of the page this file

1. pins the peer's number on one fixed dataset (``tests/data/conventions.npz``), so the
   fast suite needs no peer installed;
2. runs the svcca recipe the page prints for that row and asserts it reproduces the
   pinned number to a tolerance from the mathematics (``conftest.tol``);
3. for peers that are not on PyPI, runs a faithful NumPy port of the peer's source
   (repository, file and commit cited above each port) and asserts it gives the pinned
   number, so the pinned number is the peer's formula, not svcca's.

Peers that are on PyPI (scikit-learn, cca-zoo, ckatorch, repsim, rsatoolbox) are run
for real in ``tests/peers/test_conventions_peers.py`` (``-m slow``, skipped when absent); the
numbers below were recorded from scikit-learn 1.9.1, cca-zoo 4.0.1, ckatorch 1.0.3,
repsim 0.1.5 and rsatoolbox 0.3.2 (NumPy 2.4, torch 2.13 CPU, float64).

The dataset
-----------
:func:`make_case` is how the stored arrays were made (seeds 20261201 and 20261202); the
arrays are stored because a matrix product rounds differently under another BLAS kernel.
``main``: ``n = 200`` datapoints, ``X`` 20 features with a decaying spectrum (0.8^i),
rotated, and non-zero feature means; ``Y`` 15 features, a noisy linear map of the same
latent. ``swapped``: the same pair as ``(Y, X)`` (the first side narrower).
``degenerate``: a second draw where ``X``'s last feature equals its first up to 1e-5
noise (correlation condition number ~3e9) and ``Y``'s last feature is a constant 2 plus
1e-6 noise (variance 1e-12, below svcca's numerical-constant threshold).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import svcca
from conftest import tol

DATA = Path(__file__).parents[1] / "data" / "conventions.npz"


def make_case(seed: int, *, degenerate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The generator of ``conventions.npz`` (kept for the record; the arrays are stored)."""
    n, p, q = 200, 20, 15
    rng = np.random.default_rng(seed)
    scales = 0.8 ** np.arange(p)
    R, _ = np.linalg.qr(rng.standard_normal((p, p)))
    G = rng.standard_normal((n, p)) * scales
    X = G @ R + rng.uniform(-3.0, 3.0, p)
    W = rng.standard_normal((p, q))
    Y = G @ W + 0.5 * rng.standard_normal((n, q)) + rng.uniform(-3.0, 3.0, q)
    if degenerate:
        X[:, -1] = X[:, 0] + 1e-5 * rng.standard_normal(n)
        Y[:, -1] = 2.0 + 1e-6 * rng.standard_normal(n)
    return X, Y


def load_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(DATA, allow_pickle=False) as d:
        X, Y = d["X"], d["Y"]
        Xd, Yd = d["X_degenerate"], d["Y_degenerate"]
    return {"main": (X, Y), "swapped": (Y, X), "degenerate": (Xd, Yd)}


CASES = load_cases()


def cond_corr(A: np.ndarray) -> float:
    """Condition number of the correlation matrix of ``A``'s non-constant features."""
    sd = A.std(axis=0)
    keep = sd > 1e-6 * sd.max()
    return float(np.linalg.cond(np.corrcoef(A[:, keep].T)))


# ============================================================================ ports
# Faithful NumPy ports of peers that are not on PyPI. Each follows the cited source line
# by line (torch.svd -> np.linalg.svd with V = Vt.T); nothing is corrected.


def google_get_cca_similarity(acts1, acts2, epsilon=0.0, threshold=0.98):
    """google/svcca ``cca_core.get_cca_similarity`` (commit 08f8935, ``(neurons, n)``).

    Covariance with ``np.cov``, each block divided by the side's largest entry,
    ``epsilon`` both as a pruning threshold on the rescaled diagonal and as a ridge,
    ``pinv`` then an ``eigh`` square root, SVD. Returns ``(cca_coef1, mean)``.
    """
    numx = acts1.shape[0]
    cov = np.cov(acts1, acts2)
    sxx, sxy = cov[:numx, :numx], cov[:numx, numx:]
    syy = cov[numx:, numx:]
    xmax, ymax = np.max(np.abs(sxx)), np.max(np.abs(syy))
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    xi = np.abs(np.diagonal(sxx)) >= epsilon
    yi = np.abs(np.diagonal(syy)) >= epsilon
    sxx, syy, sxy = sxx[xi][:, xi], syy[yi][:, yi], sxy[xi][:, yi]
    sxx = sxx + epsilon * np.eye(sxx.shape[0])
    syy = syy + epsilon * np.eye(syy.shape[0])

    def sqrtm(a):
        w, v = np.linalg.eigh(a)
        return v @ np.diag(np.sqrt(w)) @ v.T

    ix, iy = sqrtm(np.linalg.pinv(sxx)), sqrtm(np.linalg.pinv(syy))
    u, s, v = np.linalg.svd(ix @ sxy @ iy)
    s = np.abs(s)
    # sum_threshold: None (every coefficient) when no prefix reaches the threshold
    idx = next((i for i in range(len(s)) if np.sum(s[:i]) / np.sum(s) >= threshold), None)
    return dict(cca_coef1=s, mean=float(np.mean(s[:idx])), u=u, v=v, x_idxs=xi, y_idxs=yi)


def google_compute_pwcca(acts1, acts2, epsilon=0.0):
    """google/svcca ``pwcca.compute_pwcca`` (commit 1f9f7ea), indexing bug included."""
    r = google_get_cca_similarity(acts1, acts2, epsilon)
    m1 = acts1.mean(axis=1, keepdims=True)
    m2 = acts2.mean(axis=1, keepdims=True)
    if np.sum(r["x_idxs"]) <= np.sum(r["y_idxs"]):
        dirns = r["u"].T @ (acts1[r["x_idxs"]] - m1) + m1
        acts, idxs = acts1, r["x_idxs"]
    else:  # the original's bug: acts1 indexed with acts2's mask
        dirns = r["v"] @ (acts1[r["y_idxs"]] - m2) + m2
        acts, idxs = acts2, r["y_idxs"]
    P, _ = np.linalg.qr(dirns.T)
    weights = np.sum(np.abs(P.T @ acts[idxs].T), axis=1)
    weights = weights / np.sum(weights)
    return float(np.sum(weights * r["cca_coef1"]))


def google_tutorial_svcca(X, Y, k):
    """google/svcca tutorial 001: SVD of the centred data, top ``k``, epsilon=1e-10, mean."""
    out = []
    for A in (X.T, Y.T):
        c = A - A.mean(axis=1, keepdims=True)
        _, s, V = np.linalg.svd(c, full_matrices=False)
        out.append((s[:k] * np.eye(k)) @ V[:k])
    return float(np.mean(google_get_cca_similarity(*out, epsilon=1e-10)["cca_coef1"]))


def _anatome_cca(x, y):
    # moskomule/anatome anatome/distance.py (commit 015ccc4) cca / cca_by_svd
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    u1, s1, v1t = np.linalg.svd(x, full_matrices=False)
    u2, s2, v2t = np.linalg.svd(y, full_matrices=False)
    u, diag, vt = np.linalg.svd(u1.T @ u2, full_matrices=False)
    a = (v1t.T / s1[None, :]) @ u
    return a, diag


def anatome_svcca_distance(x, y, accept_rate=0.99):
    """anatome ``svcca_distance`` (distance.py, commit 015ccc4): ``1 - mean rho``."""

    def reduction(a):
        _, diag, rt = np.linalg.svd(a, full_matrices=False)  # not centred
        ratio = np.cumsum(np.abs(diag)) / np.abs(diag).sum()  # singular values, not squares
        num = int(np.sum(ratio < accept_rate))  # strictly below: one direction fewer
        return a @ rt.T[:, :num]

    x, y = reduction(x), reduction(y)
    div = min(x.shape[1], y.shape[1])
    _, diag = _anatome_cca(x, y)
    return float(1.0 - diag.sum() / div)


def anatome_pwcca_distance(x, y):
    """anatome ``pwcca_distance`` (distance.py, commit 015ccc4): ``1 - alpha @ rho``."""
    a, diag = _anatome_cca(x, y)
    alpha = np.abs(x @ a).sum(axis=0)  # uncentred x; summed over datapoints
    alpha = alpha / alpha.sum()
    return float(1.0 - alpha @ diag)


def anatome_linear_cka_distance(x, y, reduce_bias):
    """anatome ``linear_cka_distance`` (distance.py, commit 015ccc4)."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    dot = np.linalg.norm(y.T @ x) ** 2
    nx, ny = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if reduce_bias:
        n = x.shape[0]
        rx, ry = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        sx, sy = rx.sum(), ry.sum()

        def deb(z):
            return z - n / (n - 2) * (rx @ ry) + sx * sy / ((n - 1) * (n - 2))

        dot, nx, ny = deb(dot), deb(nx**2), deb(ny**2)
    return float(1.0 - dot / (nx * ny))


def anatome_procrustes_distance(x, y):
    """anatome ``orthogonal_procrustes_distance`` (distance.py, commit 015ccc4)."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    return float(1.0 - np.linalg.norm(x.T @ y, ord="nuc"))


def kornblith_gram_rbf(x, threshold=1.0):
    # google-research representation_similarity/Demo.ipynb (commit 10bf941)
    g = x @ x.T
    sq = np.diag(g)
    d = -2 * g + sq[:, None] + sq[None, :]
    return np.exp(-d / (2 * threshold**2 * np.median(d)))


def kornblith_center_gram(gram, unbiased=False):
    gram = gram.copy()
    if unbiased:
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = np.sum(gram, 0) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
    else:
        means = np.mean(gram, 0)
        means -= np.mean(means) / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def kornblith_cka(gx, gy, debiased=False):
    gx, gy = kornblith_center_gram(gx, debiased), kornblith_center_gram(gy, debiased)
    return float(gx.ravel() @ gy.ravel() / (np.linalg.norm(gx) * np.linalg.norm(gy)))


def kornblith_cca(fx, fy):
    """Kornblith's ``cca``: mean squared correlation of the *uncentred* features."""
    qx, _ = np.linalg.qr(fx)
    qy, _ = np.linalg.qr(fy)
    return float(np.linalg.norm(qx.T @ qy) ** 2 / min(fx.shape[1], fy.shape[1]))


def netrep_linear_metric(X, Y, alpha, score_method="angular"):
    """netrep ``LinearMetric(alpha, score_method).fit_score`` (metrics/linear.py, 3059f54;
    utils.py ``whiten``, 016774f): zero padding, centring, ``preserve_variance=True``,
    eigenvalues of the *unnormalised* ``X^T X`` floored at 1e-7."""
    width = max(X.shape[1], Y.shape[1])
    X = np.pad(X, ((0, 0), (0, width - X.shape[1])))
    Y = np.pad(Y, ((0, 0), (0, width - Y.shape[1])))

    def whiten(A, eigval_tol=1e-7):
        if alpha > 1 - eigval_tol:
            return A, np.eye(A.shape[1])
        lam, V = np.linalg.eigh(A.T @ A)
        lam = np.maximum(lam, eigval_tol)
        d = alpha + (1 - alpha) * lam ** (-1 / 2)
        new_var = np.sum(alpha**2 * lam + 2 * alpha * (1 - alpha) * lam**0.5 + (1 - alpha) ** 2)
        d *= np.sqrt(np.sum(lam) / new_var)
        Z = (V * d[None, :]) @ V.T
        return A @ Z, Z

    mx, my = X.mean(axis=0), Y.mean(axis=0)
    Xw, Zx = whiten(X - mx)
    Yw, Zy = whiten(Y - my)
    U, _, Vt = np.linalg.svd(Xw.T @ Yw)
    tX, tY = (X - mx) @ (Zx @ U), (Y - my) @ (Zy @ Vt.T)
    if score_method == "angular":
        c = tX.ravel() @ tY.ravel() / (np.linalg.norm(tX) * np.linalg.norm(tY))
        return float(np.arccos(np.clip(c, -1.0, 1.0)))
    return float(np.linalg.norm(tX - tY))


def platonic_cka(A, B, kernel_metric="ip", rbf_sigma=1.0, unbiased=False):
    """minyoungg/platonic-rep ``metrics.py`` ``AlignmentMetrics.cka`` (commit 07ef02a)."""
    if kernel_metric == "ip":
        K, L = A @ A.T, B @ B.T
    else:

        def sqd(Z):
            s = np.einsum("ij,ij->i", Z, Z)
            return np.maximum(s[:, None] + s[None, :] - 2 * Z @ Z.T, 0.0)  # cdist(...)**2

        K = np.exp(-sqd(A) / (2 * rbf_sigma**2))
        L = np.exp(-sqd(B) / (2 * rbf_sigma**2))

    def hsic_biased(K, L):
        H = np.eye(K.shape[0]) - 1 / K.shape[0]
        return np.trace(K @ H @ L @ H)

    def hsic_unbiased(K, L):
        m = K.shape[0]
        Kt, Lt = K.copy(), L.copy()
        np.fill_diagonal(Kt, 0)
        np.fill_diagonal(Lt, 0)
        v = np.sum(Kt * Lt.T) + np.sum(Kt) * np.sum(Lt) / ((m - 1) * (m - 2))
        v -= 2 * np.sum(Kt @ Lt) / (m - 2)
        return v / (m * (m - 3))

    f = hsic_unbiased if unbiased else hsic_biased
    return float(f(K, L) / (np.sqrt(f(K, K) * f(L, L)) + 1e-6))


# ========================================================================== recipes
# What docs/conventions.md prints: svcca calls (plus NumPy where svcca has no knob).


def symmetrised(A: np.ndarray) -> np.ndarray:
    """``[A; -A]``: mean zero and cross-products ``2 A^T A``, so every Moments-based
    svcca measure of it is the *uncentred* measure of ``A``."""
    return np.vstack([A, -A])


def gram_features(K: np.ndarray) -> np.ndarray:
    """Features ``F`` with ``F F^T = K``: linear CKA of them is CKA with kernel ``K``."""
    w, V = np.linalg.eigh(K)
    return V * np.sqrt(np.clip(w, 0.0, None))


def sq_dists(A: np.ndarray) -> np.ndarray:
    """Pairwise squared distances (zero diagonal)."""
    Ac = A - A.mean(axis=0)
    s = np.einsum("ij,ij->i", Ac, Ac)
    D = np.maximum(s[:, None] + s[None, :] - 2 * Ac @ Ac.T, 0.0)
    np.fill_diagonal(D, 0.0)
    return D


def pwcca_weighted_by_first(X: np.ndarray, Y: np.ndarray) -> float:
    """Morcos et al.'s PWCCA with the weights taken from ``X``'s neurons, whatever the ranks."""
    r = svcca.cca(X, Y)
    u, _ = r.transform(X)
    h = u / np.linalg.norm(u, axis=0)
    w = np.abs(h.T @ (X - X.mean(axis=0))).sum(axis=1)
    return float(w @ r.correlations / w.sum())


def anatome_svcca_recipe(X: np.ndarray, Y: np.ndarray, accept_rate: float = 0.99) -> float:
    def reduce(A):
        _, s, Vt = np.linalg.svd(A, full_matrices=False)  # anatome does not centre here
        k = int(np.sum(np.cumsum(s) / s.sum() < accept_rate))
        return A @ Vt[:k].T

    return 1.0 - svcca.cca(reduce(X), reduce(Y)).score


def anatome_pwcca_recipe(X: np.ndarray, Y: np.ndarray) -> float:
    r = svcca.cca(X, Y)
    alpha = np.abs(X @ r.weights_x).sum(axis=0)  # uncentred X, summed over datapoints
    return 1.0 - float(alpha @ r.correlations / alpha.sum())


def repsim_song_recipe(X: np.ndarray, Y: np.ndarray) -> float:
    u, b = svcca.cka(X, Y, debiased=True), svcca.cka(X, Y)
    return u.hsic_xy / np.sqrt(b.hsic_xx * b.hsic_yy)


def repsim_lange_recipe(X: np.ndarray, Y: np.ndarray) -> float:
    b = svcca.cka(X, Y)
    n = X.shape[0]
    a = np.sum((X - X.mean(0)) ** 2, axis=1)
    c = np.sum((Y - Y.mean(0)) ** 2, axis=1)
    lange = ((n - 1) ** 2 * b.hsic_xy - a @ c) / (n * (n - 3))
    return lange / np.sqrt(b.hsic_xx * b.hsic_yy)


def upper_median(D: np.ndarray) -> float:
    """repsim's width: the median of the off-diagonal *distances*, squared."""
    return float(np.median(np.sqrt(D[np.triu_indices(D.shape[0], 1)]))) ** 2


def lower_median(D: np.ndarray) -> float:
    return float(np.sort(D, axis=None)[(D.size - 1) // 2])


def rbf_widths(X, Y, width2) -> tuple[float, float]:
    """Absolute per-side RBF widths from a squared-width rule ``width2(D)``."""
    return float(np.sqrt(width2(sq_dists(X)))), float(np.sqrt(width2(sq_dists(Y))))


def rbf_recipe(X, Y, width2, debiased=False):
    """RBF CKA with per-side squared widths ``width2(D)`` (``svcca.cka(sigma=...)``)."""
    sigma = rbf_widths(X, Y, width2)
    return svcca.cka(X, Y, kernel="rbf", sigma=sigma, debiased=debiased).score


def test_rbf_sigma_equals_the_kernel_matrix_written_out():
    """``sigma=`` against the Gram matrix built by hand (an independent code path)."""
    X, Y = CASES["main"]
    for width2 in (lower_median, upper_median):
        Dx, Dy = sq_dists(X), sq_dists(Y)
        Fx = gram_features(np.exp(-Dx / (2.0 * width2(Dx))))
        Fy = gram_features(np.exp(-Dy / (2.0 * width2(Dy))))
        by_hand = svcca.cka(Fx, Fy).score
        assert abs(rbf_recipe(X, Y, width2) - by_hand) <= bound("gram", X, Y, "", 1.0)


def netrep_scaled(X: np.ndarray, Y: np.ndarray, alpha: float) -> float:
    """netrep's partial-whitening angle: each side scaled to ``||X - mean||_F^2 = p``."""
    Xs = X / np.linalg.norm(X - X.mean(0)) * np.sqrt(X.shape[1])
    Ys = Y / np.linalg.norm(Y - Y.mean(0)) * np.sqrt(Y.shape[1])
    return svcca.shape_distance(Xs, Ys, alpha=alpha).distance


def netrep_euclidean_alpha1(X: np.ndarray, Y: np.ndarray) -> float:
    r = svcca.procrustes(X, Y)
    nx, ny = np.linalg.norm(X - X.mean(0)), np.linalg.norm(Y - Y.mean(0))
    return float(np.sqrt(nx**2 + ny**2 - 2 * r.score * nx * ny))


def zscore(A: np.ndarray) -> np.ndarray:
    return (A - A.mean(0)) / A.std(0, ddof=1)


def platonic_recipe(X: np.ndarray, Y: np.ndarray, unbiased: bool = False) -> float:
    """platonic-rep's CKA: unscaled (biased) HSIC plus 1e-6 in the denominator."""
    r = svcca.cka(X, Y, debiased=unbiased)
    s = 1.0 if unbiased else (X.shape[0] - 1) ** 2  # its biased HSIC is trace(KHLH)
    return s * r.hsic_xy / (s * np.sqrt(r.hsic_xx * r.hsic_yy) + 1e-6)


def platonic_rbf_recipe(X: np.ndarray, Y: np.ndarray, sigma: float = 1.0) -> float:
    r = svcca.cka(X, Y, kernel="rbf", sigma=sigma)
    s = (X.shape[0] - 1) ** 2  # its biased HSIC is trace(KHLH)
    return s * r.hsic_xy / (s * np.sqrt(r.hsic_xx * r.hsic_yy) + 1e-6)


def orthonormal_basis(A: np.ndarray) -> np.ndarray:
    """repsim's ``util_ONB``: left singular vectors of the *uncentred* data."""
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    return U[:, s > 1e-12 * s[0]]


def repsim_rbf_song_recipe(X: np.ndarray, Y: np.ndarray) -> float:
    sigma = rbf_widths(X, Y, upper_median)
    u = svcca.cka(X, Y, kernel="rbf", sigma=sigma, debiased=True)
    b = svcca.cka(X, Y, kernel="rbf", sigma=sigma)
    return u.hsic_xy / np.sqrt(b.hsic_xx * b.hsic_yy)


def rdm_cosine(X: np.ndarray, Y: np.ndarray) -> float:
    """rsatoolbox's ``compare(method="cosine")`` of its squared-Euclidean-over-p RDMs."""
    i, j = np.triu_indices(X.shape[0], 1)
    a = (svcca.rdm(X) ** 2 / X.shape[1])[i, j]
    b = (svcca.rdm(Y) ** 2 / Y.shape[1])[i, j]
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def minibatch_cka(X: np.ndarray, Y: np.ndarray, batches: int = 4) -> float:
    m = svcca.MinibatchCKA()
    for xb, yb in zip(np.array_split(X, batches), np.array_split(Y, batches), strict=True):
        m.update(xb, yb)
    return float(np.asarray(m.scores()).ravel()[0])


# ============================================================ pinned peer numbers
# Recorded with tests/peers/test_conventions_peers.py's peers (PyPI) and the ports above.
# Distances are pinned as the peer returns them (anatome and netrep return distances).

PINNED: dict[str, dict[str, float | list[float]]] = {
    "main": {
        "google_cca_coef1": [
            0.9962258009446231,
            0.991277539367746,
            0.9842350829054287,
            0.9657559286816854,
            0.9470737638445238,
            0.9177415407138894,
            0.8630803625569796,
            0.7630282732342254,
            0.738058833007794,
            0.5082510347367798,
            0.4731096944713449,
            0.45692905756541635,
            0.38253881364483244,
            0.2948160292354336,
            0.19092009703508211,
        ],
        "google_cca_mean": 0.7344372682079074,
        "google_tutorial_svcca_k10": 0.8258844204821301,
        "kornblith_cca": 0.6032549961326059,
        "kornblith_cka_linear": 0.8485358718172482,
        "kornblith_cka_linear_debiased": 0.8457362613500439,
        "kornblith_cka_rbf": 0.8510155633508462,
        "kornblith_cka_rbf05_debiased": 0.8002837909097844,
        "anatome_svcca_distance": 0.30227951547988885,
        "anatome_pwcca_distance": 0.39923219803575527,
        "anatome_cka_distance": 0.151464128182752,
        "anatome_cka_distance_debiased": 0.999998878691148,
        "anatome_procrustes_distance": 0.09515080381594188,
        "netrep_angular_alpha0": 0.9214557058296254,
        "netrep_angular_alpha05": 0.4714088206961332,
        "netrep_angular_alpha1": 0.4397709611246556,
        "netrep_angular_alpha05_scaled": 0.6497904537767107,
        "netrep_euclidean_alpha1": 83.50717713653648,
        "platonic_cka_ip": 0.8485358718167518,
        "platonic_cka_ip_unbiased": 0.8457362412521244,
        "platonic_cka_rbf1": 0.43295465755148715,
        "sklearn_cca_corrs": [
            0.9961936572275355,
            0.9912822600316423,
            0.9842571612305574,
            0.9657468865272449,
            0.9470855008768554,
        ],
        "sklearn_plssvd_cov": [
            5.10722866317794,
            3.611391143942832,
            2.252059733376657,
            1.8082352254195058,
            1.0724664676819609,
        ],
        "sklearn_pca_explained_variance": [
            1.137155386599165,
            0.6912145486917235,
            0.4118442631446147,
            0.2656456628331519,
            0.16200608356093357,
        ],
        "ccazoo_cca_score": 0.976913623149918,
        "ckatorch_linear": 0.8485358718172468,
        "ckatorch_linear_unbiased": 0.8457362613500442,
        "ckatorch_rbf": 0.8510145673024035,
        "ckatorch_rbf_unbiased": 0.8443517935626229,
        "ckatorch_linear_hsic_unbiased": 0.8485358718172489,
        "ckatorch_batch_4x50": 0.8397265741640071,
        "repsim_cka_linear_gretton": 0.8485358718172479,
        "repsim_cka_linear_song": 0.8255580907118646,
        "repsim_cka_linear_lange": 0.8257361990519229,
        "repsim_cka_rbf_gretton": 0.851059912257865,
        "repsim_cka_rbf_song": 0.8053029314517965,
        "repsim_cca_yanai": 0.5632125431247308,
        "repsim_cca_pillai": 0.698202790129988,
        "repsim_svcca_yanai": 0.5370110763430523,
        "repsim_svcca_pillai": 0.6636517649863428,
        "repsim_pwcca": 0.8699119969854242,
        "rsatoolbox_euclidean_spearman": 0.8437490680617813,
        "rsatoolbox_euclidean_corr": 0.845147570807456,
        "rsatoolbox_euclidean_cosine": 0.9460561653429893,
        "rsatoolbox_correlation_spearman": 0.7728959998381633,
        "rsatoolbox_correlation_corr": 0.775853877420202,
    },
    "swapped": {
        "google_cca_coef1": [
            0.9962258009446237,
            0.9912775393677448,
            0.9842350829054284,
            0.9657559286816848,
            0.9470737638445236,
            0.9177415407138886,
            0.8630803625569802,
            0.7630282732342244,
            0.7380588330077954,
            0.5082510347367792,
            0.47310969447134454,
            0.4569290575654171,
            0.3825388136448335,
            0.29481602923543404,
            0.1909200970350801,
        ],
        "google_cca_mean": 0.7344372682079074,
        "google_tutorial_svcca_k10": 0.8258844204821305,
        "google_pwcca": 0.8619990338814344,
        "kornblith_cca": 0.6032549961326062,
        "kornblith_cka_linear": 0.8485358718172482,
        "kornblith_cka_linear_debiased": 0.8457362613500439,
        "kornblith_cka_rbf": 0.8510155633508462,
        "kornblith_cka_rbf05_debiased": 0.8002837909097844,
        "anatome_svcca_distance": 0.3022795154798886,
        "anatome_pwcca_distance": 0.4072137757479567,
        "anatome_cka_distance": 0.15146412818275246,
        "anatome_cka_distance_debiased": 0.999998878691148,
        "anatome_procrustes_distance": 0.09515080381594199,
        "netrep_angular_alpha0": 0.9214557058296253,
        "netrep_angular_alpha05": 0.47140882069613343,
        "netrep_angular_alpha1": 0.43977096112465536,
        "netrep_angular_alpha05_scaled": 0.6497904537767107,
        "netrep_euclidean_alpha1": 83.50717713653646,
        "platonic_cka_ip": 0.8485358718167518,
        "platonic_cka_ip_unbiased": 0.8457362412521244,
        "platonic_cka_rbf1": 0.43295465755148727,
        "sklearn_cca_corrs": [
            0.9962083731837158,
            0.9912515604219376,
            0.984275733418684,
            0.9657497808725158,
            0.9470777298677476,
        ],
        "sklearn_plssvd_cov": [
            5.10722866317794,
            3.6113911439428317,
            2.2520597333766528,
            1.808235225419505,
            1.072466467681961,
        ],
        "sklearn_pca_explained_variance": [
            26.508649276827157,
            11.795983493922073,
            6.648159137445135,
            3.3772767475513095,
            2.0421335728424235,
        ],
        "ccazoo_cca_score": 0.9769136231499183,
        "ckatorch_linear": 0.8485358718172468,
        "ckatorch_linear_unbiased": 0.8457362613500442,
        "ckatorch_rbf": 0.8510145673024035,
        "ckatorch_rbf_unbiased": 0.8443517935626229,
        "ckatorch_linear_hsic_unbiased": 0.8485358718172494,
        "ckatorch_batch_4x50": 0.8397265741639977,
        "repsim_cka_linear_gretton": 0.8485358718172479,
        "repsim_cka_linear_song": 0.8255580907118646,
        "repsim_cka_linear_lange": 0.8257361990519229,
        "repsim_cka_rbf_gretton": 0.8510599122578648,
        "repsim_cka_rbf_song": 0.8053029314517965,
        "repsim_cca_yanai": 0.5632125431247307,
        "repsim_cca_pillai": 0.6982027901299889,
        "repsim_svcca_yanai": 0.5370110763430523,
        "repsim_svcca_pillai": 0.6636517649863422,
        "repsim_pwcca": 0.8699119969854242,
        "rsatoolbox_euclidean_spearman": 0.8437490680617813,
        "rsatoolbox_euclidean_corr": 0.8451475708074561,
        "rsatoolbox_euclidean_cosine": 0.9460561653429893,
        "rsatoolbox_correlation_spearman": 0.7728959998381633,
        "rsatoolbox_correlation_corr": 0.775853877420202,
    },
    "degenerate": {
        "google_cca_coef1": [
            0.9941826867331609,
            0.9922903881249371,
            0.9855455556864521,
            0.9553677153098161,
            0.9387411616654653,
            0.9070409777099718,
            0.8535452054838023,
            0.8495473027791518,
            0.7322063432984584,
            0.695926718523927,
            0.49905909536739745,
            0.3406297168370576,
            0.3272929911751791,
            0.20769483540188016,
            0.1765978705016331,
        ],
        "google_cca_mean": 0.7342193352926183,
        "google_tutorial_svcca_k10": 0.8239512415718357,
        "kornblith_cca": 0.6274818880339346,
        "kornblith_cka_linear": 0.9054152383256466,
        "kornblith_cka_linear_debiased": 0.9038265888219201,
        "kornblith_cka_rbf": 0.8984049683623518,
        "kornblith_cka_rbf05_debiased": 0.8389083524827136,
        "anatome_svcca_distance": 0.297490420943028,
        "anatome_pwcca_distance": 0.5859041129339384,
        "anatome_cka_distance": 0.09458476167435359,
        "anatome_cka_distance_debiased": 0.9999986152331463,
        "anatome_procrustes_distance": 0.0865064247423315,
        "netrep_angular_alpha0": 0.8977949070184693,
        "netrep_angular_alpha05": 0.45415617724335083,
        "netrep_angular_alpha1": 0.41900655989745506,
        "netrep_angular_alpha05_scaled": 0.6308238187988849,
        "netrep_euclidean_alpha1": 78.26128946777231,
        "platonic_cka_ip": 0.9054152383249691,
        "platonic_cka_ip_unbiased": 0.9038265613118629,
        "platonic_cka_rbf1": 0.41195441719933945,
        "sklearn_cca_corrs": [
            0.9819499050275197,
            0.993375361162588,
            0.9871073589629097,
            0.9569383517820681,
            0.939665082862955,
        ],
        "sklearn_plssvd_cov": [
            5.353140149946982,
            3.1545405334363967,
            2.735420011584198,
            1.4380096610485962,
            0.6624896114928,
        ],
        "sklearn_pca_explained_variance": [
            1.0981510262062888,
            0.5229147658726442,
            0.4373778417390417,
            0.2467088231323676,
            0.13600711627862322,
        ],
        "ccazoo_cca_score": 0.9732733506985063,
        "ckatorch_linear": 0.9054152383256455,
        "ckatorch_linear_unbiased": 0.9038265888219194,
        "ckatorch_rbf": 0.8984046072422659,
        "ckatorch_rbf_unbiased": 0.8942199938933538,
        "ckatorch_linear_hsic_unbiased": 0.9054152383256491,
        "ckatorch_batch_4x50": 0.9023062173708409,
        "repsim_cka_linear_gretton": 0.9054152383256466,
        "repsim_cka_linear_song": 0.8824277701562223,
        "repsim_cka_linear_lange": 0.8826039948644965,
        "repsim_cka_rbf_gretton": 0.898472395517197,
        "repsim_cka_rbf_song": 0.8545007824519258,
        "repsim_cca_yanai": 0.5719167942860908,
        "repsim_cca_pillai": 0.6970610706046309,
        "repsim_svcca_yanai": 0.5608178605308074,
        "repsim_svcca_pillai": 0.672370481074447,
        "repsim_pwcca": 0.8623289300265486,
        "rsatoolbox_euclidean_spearman": 0.8719116963326065,
        "rsatoolbox_euclidean_corr": 0.8875739326039266,
        "rsatoolbox_euclidean_cosine": 0.9640275065881867,
        "rsatoolbox_correlation_spearman": 0.7229721041122817,
        "rsatoolbox_correlation_corr": 0.7326817522522103,
    },
}


# ================================================================ recipes per row
# key -> (recipe(X, Y), bound): ``bound`` names the error bound below.


def _sklearn_recipe(X, Y):
    return svcca.cca(X, Y).correlations[:5]


RECIPES = {
    # CCA
    "google_cca_coef1": (lambda X, Y: svcca.cca(X, Y).correlations, "cca"),
    "google_cca_mean": (lambda X, Y: svcca.cca(X, Y).thresholded_mean, "cca"),
    "kornblith_cca": (lambda X, Y: svcca.cca(symmetrised(X), symmetrised(Y)).mean_squared, "cca"),
    "repsim_cca_yanai": (
        lambda X, Y: np.sum(svcca.cca(X, Y).correlations ** 2) / min(X.shape[1], Y.shape[1]),
        "cca",
    ),
    "repsim_cca_pillai": (
        lambda X, Y: np.sum(svcca.cca(X, Y).correlations) / min(X.shape[1], Y.shape[1]),
        "cca",
    ),
    "ccazoo_cca_score": (lambda X, Y: svcca.cca(X, Y).correlations[:5].mean(), "cca"),
    "sklearn_cca_corrs": (_sklearn_recipe, "sklearn"),
    "netrep_angular_alpha0": (lambda X, Y: svcca.shape_distance(X, Y, alpha=0.0).distance, "cca"),
    "netrep_angular_alpha1": (lambda X, Y: svcca.shape_distance(X, Y, alpha=1.0).distance, "gram"),
    "netrep_angular_alpha05_scaled": (lambda X, Y: netrep_scaled(X, Y, 0.5), "cca"),
    "netrep_euclidean_alpha1": (netrep_euclidean_alpha1, "gram_abs"),
    # SVCCA
    "google_tutorial_svcca_k10": (lambda X, Y: svcca.svcca(X, Y, keep=10).score, "tutorial"),
    "anatome_svcca_distance": (anatome_svcca_recipe, "cca"),
    "repsim_svcca_yanai": (
        lambda X, Y: (
            np.sum(svcca.svcca(orthonormal_basis(X), orthonormal_basis(Y)).correlations ** 2)
            / min(X.shape[1], Y.shape[1])
        ),
        "cca",
    ),
    "repsim_svcca_pillai": (
        lambda X, Y: (
            np.sum(svcca.svcca(orthonormal_basis(X), orthonormal_basis(Y)).correlations)
            / min(X.shape[1], Y.shape[1])
        ),
        "cca",
    ),
    # PWCCA
    "google_pwcca": (lambda X, Y: svcca.compat.compute_pwcca(X.T, Y.T)[0], "cca"),
    "anatome_pwcca_distance": (anatome_pwcca_recipe, "cca"),
    "repsim_pwcca": (lambda X, Y: svcca.pwcca(X, Y, weight_by="mean").score, "cca"),
    # CKA
    "kornblith_cka_linear": (lambda X, Y: svcca.cka(X, Y).score, "gram"),
    "kornblith_cka_linear_debiased": (lambda X, Y: svcca.cka(X, Y, debiased=True).score, "gram"),
    "kornblith_cka_rbf": (lambda X, Y: svcca.cka(X, Y, kernel="rbf").score, "gram"),
    "kornblith_cka_rbf05_debiased": (
        lambda X, Y: svcca.cka(X, Y, kernel="rbf", bandwidth=0.5, debiased=True).score,
        "gram",
    ),
    "anatome_cka_distance": (lambda X, Y: 1.0 - svcca.cka(X, Y).score, "gram"),
    "ckatorch_linear": (lambda X, Y: svcca.cka(X, Y).score, "gram"),
    "ckatorch_linear_unbiased": (lambda X, Y: svcca.cka(X, Y, debiased=True).score, "gram"),
    "ckatorch_linear_hsic_unbiased": (lambda X, Y: svcca.cka(X, Y).score, "gram"),
    "ckatorch_rbf": (lambda X, Y: rbf_recipe(X, Y, lower_median), "gram"),
    "ckatorch_rbf_unbiased": (lambda X, Y: rbf_recipe(X, Y, lower_median, True), "gram"),
    "ckatorch_batch_4x50": (minibatch_cka, "gram"),
    "repsim_cka_linear_gretton": (lambda X, Y: svcca.cka(X, Y).score, "gram"),
    "repsim_cka_linear_song": (repsim_song_recipe, "gram"),
    "repsim_cka_linear_lange": (repsim_lange_recipe, "gram"),
    "repsim_cka_rbf_gretton": (lambda X, Y: rbf_recipe(X, Y, upper_median), "gram"),
    "repsim_cka_rbf_song": (repsim_rbf_song_recipe, "gram"),
    "platonic_cka_ip": (platonic_recipe, "gram"),
    "platonic_cka_ip_unbiased": (lambda X, Y: platonic_recipe(X, Y, True), "gram"),
    "platonic_cka_rbf1": (platonic_rbf_recipe, "gram"),
    # Procrustes, RSA, PLS, PCA
    "anatome_procrustes_distance": (lambda X, Y: 1.0 - svcca.procrustes(X, Y).score, "gram"),
    "rsatoolbox_euclidean_spearman": (lambda X, Y: svcca.rsa(X, Y).score, "gram"),
    "rsatoolbox_euclidean_corr": (
        lambda X, Y: svcca.compare_rdms(
            svcca.rdm(X) ** 2 / X.shape[1], svcca.rdm(Y) ** 2 / Y.shape[1], compare="pearson"
        ),
        "gram",
    ),
    "rsatoolbox_euclidean_cosine": (rdm_cosine, "gram"),
    "rsatoolbox_correlation_spearman": (
        lambda X, Y: svcca.rsa(X, Y, metric="correlation").score,
        "gram",
    ),
    "rsatoolbox_correlation_corr": (
        lambda X, Y: svcca.rsa(X, Y, metric="correlation", compare="pearson").score,
        "gram",
    ),
    "sklearn_plssvd_cov": (
        lambda X, Y: svcca.pls(zscore(X), zscore(Y)).singular_values[:5],
        "gram_abs",
    ),
    "sklearn_pca_explained_variance": (lambda X, Y: svcca.pca(X).eigenvalues[:5], "gram_abs"),
}

# Rows whose peer keeps a numerically constant neuron that svcca prunes (variance below
# 1e-12 of the layer's largest): on ``degenerate`` the plain recipe differs; for the
# measures invariant to per-feature scale the recipe standardises first (svcca then
# keeps the neuron, as the peer does). The others are not reproduced there (page: why).
STANDARDISE_ON_DEGENERATE = {
    "google_cca_coef1",
    "google_cca_mean",
    "repsim_cca_yanai",
    "repsim_cca_pillai",
    "ccazoo_cca_score",
}
NOT_ON_DEGENERATE = {
    "sklearn_cca_corrs",  # iterative, with the spurious noise direction among its 5
    "netrep_angular_alpha0",  # absolute eigenvalue floor 1e-7
    "netrep_angular_alpha05_scaled",  # the same floor
    "anatome_pwcca_distance",  # keeps the constant neuron; uncentred weights
    "repsim_pwcca",  # keeps the constant neuron
}


def bound(kind: str, X: np.ndarray, Y: np.ndarray, key: str, value) -> float:
    """The error bound for one row (both computations carry their own round-off: 2x).

    ``gram``: CKA, RSA, Procrustes: sums over ``n^2`` Gram entries with no inversion; a
    Gram or distance entry computed from uncentred rows is accurate to ``eps`` times the
    largest squared row norm, amplified relative to the median squared distance.
    ``gram_abs``: the same for an absolute quantity (a distance, singular value or
    variance), scaled by its size. ``cca``: a whitening (CCA, SVCCA, PWCCA, partial
    whitening) is accurate to ``16 (p + q) eps cond`` with ``cond`` the condition
    numbers of the correlation matrices (measures/test_cca.py's bound). ``tutorial``: as ``cca``
    on the reduced sides, plus google/svcca's ridge ``epsilon = 1e-10`` added to the
    max-rescaled covariances, which moves each correlation by up to ``epsilon`` times
    the reduced sides' condition numbers. ``sklearn``: scikit-learn's power iteration
    stops when the squared weight change is below ``tol = 1e-6``: the weights are then
    within ``sqrt(tol) r / (1 - r)`` (``r`` the largest ratio of successive squared
    correlations, its contraction factor) and a correlation, a Rayleigh quotient, within
    the square of that.
    """
    n, p, q = X.shape[0], X.shape[1], Y.shape[1]
    if kind in ("gram", "gram_abs"):
        kappa = max(
            float(np.max(np.sum(A**2, axis=1))) / float(np.median(sq_dists(A))) for A in (X, Y)
        )
        scale = float(np.max(np.abs(value))) if kind == "gram_abs" else 1.0
        return tol(cond=kappa, factor=2 * 2 * n, scale=scale)
    if kind == "cca":
        return tol(cond=cond_corr(X) + cond_corr(Y), factor=2 * 16 * (p + q))
    if kind == "tutorial":
        lam = [svcca.pca(A).eigenvalues for A in (X, Y)]
        c = sum(float(w[0] / w[9]) for w in lam)
        return 1e-10 * c + tol(cond=c, factor=2 * 16 * 20)
    if kind == "sklearn":
        rho = svcca.cca(X, Y).correlations[:6]
        r = float(np.max((rho[1:] / rho[:-1]) ** 2))
        return (np.sqrt(1e-6) * r / (1 - r)) ** 2
    raise AssertionError(kind)


ROWS = [
    pytest.param(case, key, id=f"{case}-{key}")
    for case, values in PINNED.items()
    for key in values
    if key in RECIPES and not (case == "degenerate" and key in NOT_ON_DEGENERATE)
]


@pytest.mark.parametrize(("case", "key"), ROWS)
def test_recipe_reproduces_peer(case, key):
    """The page's svcca call for this row gives the peer's pinned number."""
    X, Y = CASES[case]
    recipe, kind = RECIPES[key]
    if case == "degenerate" and key in STANDARDISE_ON_DEGENERATE:
        X, Y = zscore(X), zscore(Y)
    pinned = np.asarray(PINNED[case][key])
    got = np.asarray(recipe(X, Y), dtype=np.float64)
    assert got.shape == pinned.shape
    assert np.max(np.abs(got - pinned)) <= bound(kind, X, Y, key, pinned)


PORTS = {
    "google_cca_coef1": lambda X, Y: google_get_cca_similarity(X.T, Y.T)["cca_coef1"],
    "google_cca_mean": lambda X, Y: google_get_cca_similarity(X.T, Y.T)["mean"],
    "google_tutorial_svcca_k10": lambda X, Y: google_tutorial_svcca(X, Y, 10),
    "google_pwcca": lambda X, Y: google_compute_pwcca(X.T, Y.T),
    "kornblith_cca": kornblith_cca,
    "kornblith_cka_linear": lambda X, Y: kornblith_cka(X @ X.T, Y @ Y.T),
    "kornblith_cka_linear_debiased": lambda X, Y: kornblith_cka(X @ X.T, Y @ Y.T, True),
    "kornblith_cka_rbf": lambda X, Y: kornblith_cka(kornblith_gram_rbf(X), kornblith_gram_rbf(Y)),
    "kornblith_cka_rbf05_debiased": lambda X, Y: kornblith_cka(
        kornblith_gram_rbf(X, 0.5), kornblith_gram_rbf(Y, 0.5), True
    ),
    "anatome_svcca_distance": anatome_svcca_distance,
    "anatome_pwcca_distance": anatome_pwcca_distance,
    "anatome_cka_distance": lambda X, Y: anatome_linear_cka_distance(X, Y, False),
    "anatome_cka_distance_debiased": lambda X, Y: anatome_linear_cka_distance(X, Y, True),
    "anatome_procrustes_distance": anatome_procrustes_distance,
    "netrep_angular_alpha0": lambda X, Y: netrep_linear_metric(X, Y, 0.0),
    "netrep_angular_alpha05": lambda X, Y: netrep_linear_metric(X, Y, 0.5),
    "netrep_angular_alpha1": lambda X, Y: netrep_linear_metric(X, Y, 1.0),
    "netrep_euclidean_alpha1": lambda X, Y: netrep_linear_metric(X, Y, 1.0, "euclidean"),
    "platonic_cka_ip": platonic_cka,
    "platonic_cka_ip_unbiased": lambda X, Y: platonic_cka(X, Y, unbiased=True),
    "platonic_cka_rbf1": lambda X, Y: platonic_cka(X, Y, "rbf"),
}
PORT_KIND = {k: ("gram" if "cka" in k or "procrustes" in k else "cca") for k in PORTS}
PORT_KIND["netrep_euclidean_alpha1"] = "gram_abs"
PORT_KIND["google_tutorial_svcca_k10"] = "tutorial"
PORT_ROWS = [
    pytest.param(case, key, id=f"{case}-{key}")
    for case, values in PINNED.items()
    for key in values
    if key in PORTS
]


@pytest.mark.parametrize(("case", "key"), PORT_ROWS)
def test_port_gives_pinned_number(case, key):
    """The NumPy port of a non-PyPI peer still computes the pinned number."""
    X, Y = CASES[case]
    pinned = np.asarray(PINNED[case][key])
    got = np.asarray(PORTS[key](X, Y), dtype=np.float64)
    assert got.shape == pinned.shape
    assert np.max(np.abs(got - pinned)) <= bound(PORT_KIND[key], X, Y, key, pinned)


def test_every_pinned_number_has_a_recipe_or_a_stated_reason():
    """Each pinned number is reproduced by a recipe (or a port) or listed as not reproduced."""
    no_recipe = {"anatome_cka_distance_debiased", "netrep_angular_alpha05"}  # page: defects
    for values in PINNED.values():
        for key in values:
            assert key in RECIPES or key in no_recipe, key


# ====================================================== the dataset and the defects


def test_stored_dataset_is_what_make_case_builds():
    """The stored arrays are make_case's, to the round-off of its matrix products."""
    for seed, case, degenerate in ((20261201, "main", False), (20261202, "degenerate", True)):
        X, Y = make_case(seed, degenerate=degenerate)
        Xs, Ys = CASES[case]
        assert X.shape == Xs.shape == (200, 20) and Y.shape == Ys.shape == (200, 15)
        # a length-20 dot product of O(1) entries, plus the O(3) mean added to it
        assert np.max(np.abs(X - Xs)) <= tol(factor=2 * 20, scale=float(np.max(np.abs(Xs))))
        assert np.max(np.abs(Y - Ys)) <= tol(factor=2 * 20, scale=float(np.max(np.abs(Ys))))
    Xd, Yd = CASES["degenerate"]
    assert np.corrcoef(Xd[:, 0], Xd[:, -1])[0, 1] > 1 - 1e-8
    assert Yd[:, -1].var() < 1e-12 * Yd.var(axis=0).max()  # below svcca's constant threshold


def test_google_pwcca_crashes_when_the_first_layer_is_wider():
    """google/svcca's compute_pwcca indexes acts1 with acts2's mask: p > q is an IndexError."""
    X, Y = CASES["main"]
    with pytest.raises(IndexError, match="boolean index did not match"):
        google_compute_pwcca(X.T, Y.T)
    assert "google_pwcca" not in PINNED["main"] and "google_pwcca" in PINNED["swapped"]


def test_svcca_prunes_the_constant_neuron_the_peers_keep():
    """On ``degenerate`` svcca has one correlation fewer than google/svcca; standardising
    keeps the neuron (CCA is invariant to per-feature scale) and recovers the peer's."""
    X, Y = CASES["degenerate"]
    r = svcca.cca(X, Y)
    assert r.pruned_y.indices.tolist() == [14]
    assert r.pruned_y.reasons == ("numerically constant",)
    assert r.correlations.size == 14
    assert len(PINNED["degenerate"]["google_cca_coef1"]) == 15
    assert svcca.cca(zscore(X), zscore(Y)).correlations.size == 15
    assert abs(r.thresholded_mean - PINNED["degenerate"]["google_cca_mean"]) > 0.01


def test_ckatorch_hsic_method_ignores_unbiased():
    """ckatorch's ``method="hsic"`` returns the biased CKA even with ``unbiased=True``."""
    v = PINNED["main"]
    assert abs(v["ckatorch_linear_hsic_unbiased"] - v["ckatorch_linear"]) < 1e-12
    assert abs(v["ckatorch_linear_hsic_unbiased"] - v["ckatorch_linear_unbiased"]) > 1e-3


def test_anatome_debiased_cka_is_not_a_similarity():
    """anatome's debiased linear CKA mixes X's and Y's row norms into each normaliser and
    omits their square roots: the distance is ~1 for similar layers and changes when one
    layer is scaled. svcca cannot reproduce it (and should not)."""
    X, Y = CASES["main"]
    d1 = anatome_linear_cka_distance(X, Y, True)
    d2 = anatome_linear_cka_distance(2.0 * X, Y, True)
    assert d1 > 0.999 and 1.0 - svcca.cka(X, Y, debiased=True).score < 0.2
    assert abs((1 - d2) / (1 - d1) - 1) > 0.5


def test_netrep_partial_whitening_depends_on_scale():
    """netrep's 0 < alpha < 1 angle changes with the data's scale; svcca's does not and
    equals netrep's on data scaled to ``||X - mean||_F^2 = p``."""
    X, Y = CASES["main"]
    assert abs(netrep_linear_metric(3.0 * X, Y, 0.5) - netrep_linear_metric(X, Y, 0.5)) > 1e-3
    a = svcca.shape_distance(X, Y, alpha=0.5).distance
    assert abs(svcca.shape_distance(3.0 * X, Y, alpha=0.5).distance - a) <= bound(
        "cca", X, Y, "", a
    )


# The headline differences of docs/conventions.md ("difference on the fixed data"): the
# peer's default against svcca's default call for the same measure, on ``main``.
DIFFERENCES = [
    ("anatome_svcca_distance", lambda X, Y: 1 - svcca.svcca(X, Y).score, 0.13),
    ("repsim_svcca_yanai", lambda X, Y: svcca.svcca(X, Y).mean_squared, 0.04),
    ("google_tutorial_svcca_k10", lambda X, Y: svcca.svcca(X, Y).score, 0.005),
    ("anatome_pwcca_distance", lambda X, Y: 1 - svcca.pwcca(X, Y).score, 0.25),
    ("repsim_pwcca", lambda X, Y: svcca.pwcca(X, Y).score, 5e-4),
    ("kornblith_cca", lambda X, Y: svcca.cca(X, Y).mean_squared, 0.03),
    ("repsim_cka_linear_song", lambda X, Y: svcca.cka(X, Y, debiased=True).score, 0.015),
    ("ckatorch_rbf", lambda X, Y: svcca.cka(X, Y, kernel="rbf").score, 5e-7),
    ("repsim_cka_rbf_gretton", lambda X, Y: svcca.cka(X, Y, kernel="rbf").score, 3e-5),
    ("platonic_cka_rbf1", lambda X, Y: svcca.cka(X, Y, kernel="rbf").score, 0.3),
    ("rsatoolbox_euclidean_corr", lambda X, Y: svcca.rsa(X, Y, compare="pearson").score, 0.005),
    ("netrep_angular_alpha05", lambda X, Y: svcca.shape_distance(X, Y, alpha=0.5).distance, 0.1),
]


@pytest.mark.parametrize(
    ("key", "default", "at_least"), DIFFERENCES, ids=[d[0] for d in DIFFERENCES]
)
def test_conventions_change_the_number(key, default, at_least):
    """On the fixed data each convention moves the number by at least what the page says."""
    X, Y = CASES["main"]
    assert abs(default(X, Y) - PINNED["main"][key]) >= at_least


# ======================================================== the page's code blocks

PAGE = Path(__file__).parents[2] / "docs" / "conventions.md"

# variable defined by the page's blocks -> the pinned number it must equal (``main``)
PAGE_VALUES = {
    "google_mean": ("google_cca_mean", "cca"),
    "kornblith_r2": ("kornblith_cca", "cca"),
    "repsim_yanai": ("repsim_cca_yanai", "cca"),
    "repsim_pillai": ("repsim_cca_pillai", "cca"),
    "ccazoo_score": ("ccazoo_cca_score", "cca"),
    "netrep_cca_angle": ("netrep_angular_alpha0", "cca"),
    "anatome_svcca": ("anatome_svcca_distance", "cca"),
    "tutorial_svcca": ("google_tutorial_svcca_k10", "tutorial"),
    "repsim_svcca_yanai": ("repsim_svcca_yanai", "cca"),
    "anatome_pwcca": ("anatome_pwcca_distance", "cca"),
    "repsim_pwcca": ("repsim_pwcca", "cca"),
    "ckatorch_rbf": ("ckatorch_rbf", "gram"),
    "repsim_rbf": ("repsim_cka_rbf_gretton", "gram"),
    "repsim_song": ("repsim_cka_linear_song", "gram"),
    "repsim_lange": ("repsim_cka_linear_lange", "gram"),
    "platonic_cka": ("platonic_cka_ip", "gram"),
    "rsatoolbox_corr": ("rsatoolbox_euclidean_corr", "gram"),
}


def page_blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    return [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]


def test_page_code_runs_and_gives_the_pinned_numbers():
    """Every ``python`` block of docs/conventions.md runs, in order, on ``main``, and the
    numbers it computes are the peers' pinned numbers."""
    X, Y = CASES["main"]
    ns: dict = {"X": X, "Y": Y}
    blocks = page_blocks()
    assert len(blocks) >= 6
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), ns)  # noqa: S102 - our own page
    for name, (key, kind) in PAGE_VALUES.items():
        pinned = PINNED["main"][key]
        assert abs(float(ns[name]) - pinned) <= bound(kind, X, Y, key, pinned), name
    assert abs(ns["by_smaller"] - ns["pw"].score) <= bound("cca", X, Y, "", 1.0)
    assert abs(ns["by_first"] - pwcca_weighted_by_first(X, Y)) <= bound("cca", X, Y, "", 1.0)


@pytest.mark.parametrize("case", ["main", "swapped"])
def test_pwcca_weight_by_is_the_written_out_weighting(case):
    X, Y = CASES[case]
    tol = bound("cca", X, Y, "", 1.0)
    first, second = pwcca_weighted_by_first(X, Y), pwcca_weighted_by_first(Y, X)
    assert abs(svcca.pwcca(X, Y, weight_by="x").score - first) <= tol
    assert abs(svcca.pwcca(X, Y, weight_by="y").score - second) <= tol
    mean = svcca.pwcca(X, Y, weight_by="mean")
    assert mean.weighted_by == "mean" and abs(mean.score - 0.5 * (first + second)) <= tol
    default = svcca.pwcca(X, Y)
    assert default.score == svcca.pwcca(X, Y, weight_by=default.weighted_by).score
    with pytest.raises(ValueError, match="weight_by must be one of 'smaller', 'x', 'y', 'mean'"):
        svcca.pwcca(X, Y, weight_by="both")
