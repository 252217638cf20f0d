"""The PyPI peers of ``docs/conventions.md``, run for real (slow; each skipped when absent).

``tests/peers/test_conventions.py`` pins these peers' numbers so the fast suite needs none of
them; this file recomputes each pinned number with the peer itself, so a new release
of a peer that changes its convention shows up here. Install them in an environment of
their own (they pull in their own torch)::

    python -m venv /tmp/peers
    /tmp/peers/bin/pip install torch numpy scipy scikit-learn ckatorch repsim rsatoolbox \\
        cca-zoo pytest hypothesis threadpoolctl
    PYTHONPATH=src /tmp/peers/bin/python -m pytest -m slow tests/peers/test_conventions_peers.py

Recorded with scikit-learn 1.9.1, cca-zoo 4.0.1, ckatorch 1.0.3, repsim 0.1.5 and
rsatoolbox 0.3.2.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_conventions import CASES, PINNED, bound

pytestmark = pytest.mark.slow


def check(case: str, key: str, got, kind: str) -> None:
    X, Y = CASES[case]
    pinned = np.asarray(PINNED[case][key])
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == pinned.shape, key
    assert np.max(np.abs(got - pinned)) <= bound(kind, X, Y, key, pinned), key


@pytest.mark.parametrize("case", list(CASES))
def test_scikit_learn(case):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    from sklearn.cross_decomposition import CCA, PLSSVD
    from sklearn.decomposition import PCA

    X, Y = CASES[case]
    u, v = CCA(n_components=5).fit(X, Y).transform(X, Y)
    corrs = [np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(5)]
    check(case, "sklearn_cca_corrs", corrs, "sklearn")
    u, v = PLSSVD(n_components=5).fit(X, Y).transform(X, Y)
    check(
        case, "sklearn_plssvd_cov", [np.cov(u[:, i], v[:, i])[0, 1] for i in range(5)], "gram_abs"
    )
    check(case, "sklearn_pca_explained_variance", PCA().fit(X).explained_variance_[:5], "gram_abs")


@pytest.mark.parametrize("case", list(CASES))
def test_cca_zoo(case):
    czl = pytest.importorskip("cca_zoo.linear", reason="cca-zoo is not installed")
    X, Y = CASES[case]
    check(case, "ccazoo_cca_score", czl.CCA(n_components=5).fit([X, Y]).score([X, Y]), "cca")


@pytest.mark.parametrize("case", list(CASES))
def test_ckatorch(case):
    pytest.importorskip("ckatorch", reason="ckatorch is not installed")
    import torch
    from ckatorch.core import cka_base, cka_batch

    X, Y = CASES[case]
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    got = {
        "ckatorch_linear": cka_base(x, y),
        "ckatorch_linear_unbiased": cka_base(x, y, unbiased=True),
        "ckatorch_rbf": cka_base(x, y, kernel="rbf"),
        "ckatorch_rbf_unbiased": cka_base(x, y, kernel="rbf", unbiased=True),
        "ckatorch_linear_hsic_unbiased": cka_base(x, y, unbiased=True, method="hsic"),
        "ckatorch_batch_4x50": cka_batch(x.reshape(4, 50, -1), y.reshape(4, 50, -1)),
    }
    for key, value in got.items():
        check(case, key, float(value), "gram")


@pytest.mark.parametrize("case", list(CASES))
def test_repsim(case):
    repsim = pytest.importorskip("repsim", reason="repsim is not installed")
    X, Y = CASES[case]
    for kernel in ("linear", "rbf"):
        for est in ("gretton", "song", "lange"):
            key = f"repsim_cka_{kernel}_{est}"
            if key in PINNED[case]:
                got = repsim.cka([X, Y], kernel_type=kernel, estimator=est)[0, 1]
                check(case, key, got, "gram")
    for s in ("yanai", "pillai"):
        check(case, f"repsim_cca_{s}", repsim.cca([X, Y], summary_type=s)[0, 1], "cca")
        check(case, f"repsim_svcca_{s}", repsim.svcca([X, Y], summary_type=s)[0, 1], "cca")
    check(case, "repsim_pwcca", repsim.pwcca([X, Y])[0, 1], "cca")


@pytest.mark.parametrize("case", list(CASES))
def test_rsatoolbox(case):
    pytest.importorskip("rsatoolbox", reason="rsatoolbox is not installed")
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare

    X, Y = CASES[case]
    for method in ("euclidean", "correlation"):
        rx, ry = calc_rdm(Dataset(X), method=method), calc_rdm(Dataset(Y), method=method)
        for how in ("spearman", "corr", "cosine"):
            key = f"rsatoolbox_{method}_{how}"
            if key in PINNED[case]:
                check(case, key, compare(rx, ry, method=how)[0, 0], "gram")
