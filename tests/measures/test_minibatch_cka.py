"""Minibatch CKA: equals full-data debiased CKA on one batch, converges with many, merges."""

from __future__ import annotations

import numpy as np
import pytest

from svcca import MinibatchCKA, cka


def _data(n=8192, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 16)) @ rng.standard_normal((16, 16))
    Y = X[:, :8] @ rng.standard_normal((8, 8)) + 2.0 * rng.standard_normal((n, 8))
    Z = rng.standard_normal((n, 5))
    return X, Y, Z


def test_one_batch_is_full_data_debiased_cka():
    X, Y, _ = _data(n=300)
    res = MinibatchCKA().update(X, Y).result()
    full = cka(X, Y, debiased=True)
    assert res.score == pytest.approx(full.score, rel=1e-10)
    assert res.hsic_xy == pytest.approx(full.hsic_xy, rel=1e-10)
    assert res.method == "minibatch" and res.debiased and res.n_features == (16, 8)


def test_converges_to_full_data_debiased_cka():
    X, Y, _ = _data()
    full = cka(X, Y, debiased=True).score
    errors = []
    for batches in (4, 32):
        acc = MinibatchCKA()
        for s in range(0, batches * 256, 256):
            acc.update(X[s : s + 256], Y[s : s + 256])
        errors.append(abs(acc.result().score - full))
    assert errors[1] < 0.01
    # The biased estimator on the same batches would be visibly off (batch-size bias).
    biased = np.mean([cka(X[s : s + 32], Y[s : s + 32]).score for s in range(0, 8192, 32)])
    acc = MinibatchCKA()
    for s in range(0, 8192, 32):
        acc.update(X[s : s + 32], Y[s : s + 32])
    assert abs(acc.result().score - full) < 0.02 < abs(biased - full)


def test_merge_equals_sequential_updates():
    X, Y, _ = _data(n=1024)
    seq = MinibatchCKA()
    a, b = MinibatchCKA(), MinibatchCKA()
    for i, s in enumerate(range(0, 1024, 128)):
        seq.update(X[s : s + 128], Y[s : s + 128])
        (a if i % 2 else b).update(X[s : s + 128], Y[s : s + 128])
    merged = a.merge(b)
    assert merged.n_batches == seq.n_batches == 8 and merged.n_samples == 1024
    assert merged.result().score == pytest.approx(seq.result().score, rel=1e-12)
    assert MinibatchCKA().merge(a).result().score == pytest.approx(a.result().score)
    assert a.merge(MinibatchCKA()).n_batches == a.n_batches


def test_many_layers_at_once():
    X, Y, Z = _data(n=1024)
    layers = [X, Y, Z]
    acc = MinibatchCKA()
    pair = MinibatchCKA()
    for s in range(0, 1024, 256):
        acc.update([A[s : s + 256] for A in layers], [A[s : s + 256] for A in layers])
        pair.update(Y[s : s + 256], Z[s : s + 256])
    S = acc.scores()
    assert S.shape == (3, 3) == (*acc.shape,)
    assert np.allclose(np.diag(S), 1.0)
    assert np.allclose(S, S.T)
    assert S[1, 2] == pytest.approx(pair.result().score, rel=1e-12)
    # The same list object on both sides computes each Gram matrix once: same answer.
    same = MinibatchCKA()
    for s in range(0, 1024, 256):
        batch = [A[s : s + 256] for A in layers]
        same.update(batch, batch)
    assert np.allclose(same.scores(), S, rtol=1e-12, atol=1e-14)
    assert "3x3" in repr(same)


def test_from_batches():
    X, Y, _ = _data(n=512)
    acc = MinibatchCKA.from_batches((X[s : s + 128], Y[s : s + 128]) for s in range(0, 512, 128))
    assert acc.n_batches == 4


def test_errors():
    X, Y, Z = _data(n=64)
    with pytest.raises(ValueError, match="at least 4 datapoints"):
        MinibatchCKA().update(X[:3], Y[:3])
    with pytest.raises(ValueError, match="same datapoints"):
        MinibatchCKA().update(X[:10], Y[:12])
    with pytest.raises(ValueError, match="empty sequence"):
        MinibatchCKA().update([], Y)
    with pytest.raises(ValueError, match="NaN or inf"):
        bad = X.copy()
        bad[0, 0] = np.inf
        MinibatchCKA().update(bad, Y)
    acc = MinibatchCKA().update(X[:32], Y[:32])
    with pytest.raises(ValueError, match="tracks 1 X and 1 Y layers"):
        acc.update([X[:32], Z[:32]], Y[:32])
    with pytest.raises(ValueError, match="widths changed"):
        acc.update(Z[:32], Y[:32])
    other = MinibatchCKA().update(Z[:32], Y[:32])
    with pytest.raises(ValueError, match="Cannot merge"):
        acc.merge(other)
    with pytest.raises(TypeError, match="merge expects a MinibatchCKA"):
        acc.merge(3)
    with pytest.raises(ValueError, match="No batches yet"):
        MinibatchCKA().scores()
    with pytest.raises(ValueError, match="No batches yet"):
        MinibatchCKA().result()
    with pytest.raises(IndexError, match="out of range"):
        acc.result(1, 0)
    with pytest.raises(TypeError, match="expects \\(X, Y\\) pairs"):
        MinibatchCKA.from_batches([X])
    assert MinibatchCKA().shape == (0, 0)
