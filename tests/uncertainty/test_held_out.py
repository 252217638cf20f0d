"""Held-out scores from fold statistics of one pass agree with refitting on the rows."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from conftest import tol
from svcca.stats import BlockMoments, block_of, cross_validate, held_out_score


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5)) + 4
    Y = X[:, :3] @ rng.standard_normal((3, 4)) + rng.standard_normal((n, 4))
    return X, Y


def _centre(A):
    return A - A.mean(axis=0)


def _cca_rows(Xtr, Ytr):
    """CCA directions by QR of the centred training rows (Bjorck & Golub)."""
    mx, my = Xtr.mean(axis=0), Ytr.mean(axis=0)
    Qx, Rx = np.linalg.qr(Xtr - mx)
    Qy, Ry = np.linalg.qr(Ytr - my)
    U, _, Vt = np.linalg.svd(Qx.T @ Qy)
    k = min(Qx.shape[1], Qy.shape[1])
    return np.linalg.solve(Rx, U[:, :k]), np.linalg.solve(Ry, Vt[:k].T)


def _corr_cols(A, B):
    return np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(A.T, B.T, strict=True)])


def _reference(name, Xtr, Ytr, Xte, Yte):
    if name == "cca":
        A, B = _cca_rows(Xtr, Ytr)
        return _corr_cols(Xte @ A, Yte @ B).mean()
    if name == "pwcca":  # weighting side x (rank 5 vs 4: y is smaller) -> y
        A, B = _cca_rows(Xtr, Ytr)
        h = _centre(Ytr) @ B
        h /= np.linalg.norm(h, axis=0)
        alpha = np.abs(h.T @ _centre(Ytr)).sum(axis=1)
        return alpha @ _corr_cols(Xte @ A, Yte @ B) / alpha.sum()
    if name == "procrustes":
        U, _, Vt = np.linalg.svd(_centre(Xtr).T @ _centre(Ytr), full_matrices=False)
        Xc, Yc = _centre(Xte), _centre(Yte)
        return np.trace(Xc.T @ Yc @ (U @ Vt).T) / (np.linalg.norm(Xc) * np.linalg.norm(Yc))

    # regression, both directions, R^2 about the test mean
    def r2(P, T, Pte, Tte):
        D = np.column_stack([np.ones(len(P)), P])
        coef = np.linalg.lstsq(D, T, rcond=None)[0]
        pred = np.column_stack([np.ones(len(Pte)), Pte]) @ coef
        return 1 - np.sum((Tte - pred) ** 2) / np.sum(_centre(Tte) ** 2)

    return 0.5 * (r2(Xtr, Ytr, Xte, Yte) + r2(Ytr, Xtr, Yte, Xte))


@pytest.mark.parametrize("name", ["cca", "pwcca", "regression", "procrustes"])
def test_fold_statistics_give_the_scores_of_refitting_on_the_rows(name):
    X, Y = _data()
    r = cross_validate(X, Y, measure=name, folds=5, seed=3)
    b = block_of(np.arange(300), 5, seed=3)
    want = [_reference(name, X[b != j], Y[b != j], X[b == j], Y[b == j]) for j in range(5)]
    # scores of well-conditioned fits (cond of the whitened blocks < 10) from statistics
    # accurate to ~n eps of their scale: agreement to 10 n eps
    np.testing.assert_allclose(r.fold_scores, want, rtol=0, atol=tol(factor=3000, cond=10))
    assert r.score == pytest.approx(np.average(want, weights=np.bincount(b)), abs=1e-11)


@pytest.mark.parametrize("name", ["cca", "svcca", "pwcca", "regression", "procrustes"])
def test_scored_on_its_own_rows_the_fit_is_the_measure(name):
    X, Y = _data()
    r = cross_validate(X, Y, measure=name, folds=4)
    assert r.in_sample == pytest.approx(
        svcca.MEASURES[name].score(X, Y), abs=tol(factor=3000, cond=10)
    )
    assert r.score < r.in_sample  # fitted on other rows: lower, never inflated


def test_held_out_svcca_keeps_the_training_directions():
    X, Y = _data()
    b = block_of(np.arange(300), 5, seed=0)
    bm = BlockMoments.from_arrays(X, Y, blocks=5, seed=0)
    tr, te = bm.leave_out(0), bm.block(0)
    # keep=2: the top two training principal directions of each side, then CCA on them
    got = held_out_score(tr, te, measure="svcca", keep=2)
    Xtr, Ytr = X[b != 0], Y[b != 0]
    Px = np.linalg.svd(_centre(Xtr), full_matrices=False)[2][:2].T
    Py = np.linalg.svd(_centre(Ytr), full_matrices=False)[2][:2].T
    want = _reference("cca", Xtr @ Px, Ytr @ Py, X[b == 0] @ Px, Y[b == 0] @ Py)
    assert got == pytest.approx(want, abs=tol(factor=3000, cond=10))


def test_independent_layers_score_near_zero_held_out_but_high_in_sample():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((300, 20)), rng.standard_normal((300, 20))
    r = cross_validate(X, Y, measure="cca", folds=5)
    assert r.in_sample > 0.2  # E rho^2 ~ max(p, q) / n in sample
    assert abs(r.score) < 4 * np.sqrt(1 / 60)  # test folds of ~60 rows


def test_held_out_scores_refuse_what_they_cannot_fit():
    X, Y = _data(n=40)
    m = svcca.Moments.from_arrays(X, Y)
    with pytest.raises(ValueError, match="Held-out scores exist for cca"):
        held_out_score(m, m, measure="cka_linear")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Moments of both representations"):
        held_out_score(svcca.Moments.from_arrays(X), m)
    with pytest.raises(ValueError, match="at least 2 training and 2 test rows"):
        held_out_score(m, svcca.Moments.from_arrays(X[:1], Y[:1]))
    with pytest.raises(ValueError, match=r"keep must be a share of variance in \(0, 1\)"):
        held_out_score(m, m, measure="svcca", keep=1.0)
    with pytest.raises(ValueError, match="needs both representations"):
        cross_validate(X)
    with pytest.raises(ValueError, match="every fold needs at least 2 rows"):
        cross_validate(X[:6], Y[:6], folds=5)
    with pytest.raises(ValueError, match="Y must be None"):
        cross_validate(BlockMoments.from_arrays(X, Y, blocks=3), Y)
