"""Inputs NumPy would read wrongly: masked arrays, scipy sparse matrices, iterators
where a whole array is needed; boolean arrays, which are data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import svcca
from conftest import linear_pair, tol


def data(n=120, p=5, q=4, seed=0):
    """Y linear in X's first q features, plus noise."""
    return linear_pair(n, p, q, seed=seed)


def same_score(a: float, b: float, X, Y) -> bool:
    """Equal to round-off: the same data in another memory layout go through other BLAS
    kernels; correlations then move by eps times the condition of the whitened blocks."""
    cond = max(np.linalg.cond(np.corrcoef(A, rowvar=False)) for A in (X, Y))
    return abs(a - b) <= tol(cond=cond, factor=100)


def masked(X, rows):
    mask = np.zeros(X.shape, dtype=bool)
    mask[rows, 1] = True
    return np.ma.masked_array(X, mask=mask)


MASK_MSG = r"X'? is a NumPy masked array with 2 masked values in 2 rows \(first: \[3, 17\]\)"


@pytest.mark.parametrize(
    "call",
    [
        lambda A, B: svcca.cca(A, B),
        lambda A, B: svcca.svcca(A, B, keep=3),
        lambda A, B: svcca.pwcca(A, B),
        lambda A, B: svcca.cka(A, B),
        lambda A, B: svcca.cka(A, B, kernel="rbf"),
        lambda A, B: svcca.rsa(A, B),
        lambda A, B: svcca.procrustes(A, B),
        lambda A, B: svcca.regression_fit(A, B),
        lambda A, B: svcca.pairwise({"X": A, "Y": B}),
        lambda A, B: svcca.Moments.from_arrays(A, B),
    ],
)
def test_a_masked_array_with_masked_values_is_refused_with_the_fix(call):
    X, Y = data()
    with pytest.raises(ValueError, match=MASK_MSG + r".*X\[keep\]\.data.*X\.filled"):
        call(masked(X, [3, 17]), Y)


def test_the_fix_in_the_message_gives_the_score_of_the_unmasked_rows():
    X, Y = data()
    mX = masked(X, [3, 17])
    mY = np.ma.masked_array(Y)  # no mask: its data
    keep = ~(np.ma.getmaskarray(mX).any(axis=1) | np.ma.getmaskarray(mY).any(axis=1))
    got = svcca.cca(mX[keep].data, mY[keep].data).score
    ref = svcca.cca(np.delete(X, [3, 17], axis=0), np.delete(Y, [3, 17], axis=0)).score
    assert same_score(got, ref, X, Y)


def test_a_masked_array_with_nothing_masked_is_its_data():
    X, Y = data()
    ref = svcca.cca(X, Y).score
    assert svcca.cca(np.ma.masked_array(X), Y).score == ref  # nomask
    assert svcca.cca(np.ma.masked_array(X, mask=np.zeros(X.shape, bool)), Y).score == ref


def test_masked_batches_name_the_batch():
    X, Y = data()
    batches = [(X[:60], Y[:60]), (masked(X[60:], [5]), Y[60:])]
    with pytest.raises(ValueError, match=r"X of batch 1 is a NumPy masked array .*\[5\]"):
        svcca.Moments.from_batches(batches)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_matrices_are_refused_with_toarray(fmt):
    X, Y = data()
    S = sp.csr_matrix(X).asformat(fmt)
    for call in (svcca.cca, svcca.rsa, svcca.procrustes):
        with pytest.raises(
            TypeError,
            match=r"X is a scipy.sparse .* of shape \(120, 5\).*"
            r"X\.toarray\(\)",
        ):
            call(S, Y)
    with pytest.raises(TypeError, match=r"representation 'a' is a scipy.sparse"):
        svcca.pairwise({"a": S, "b": Y})
    with pytest.raises(TypeError, match="X is a scipy.sparse"):
        svcca.Moments.from_arrays(S)
    # the fix in the message works
    assert same_score(svcca.cca(S.toarray(), Y).score, svcca.cca(X, Y).score, X, Y)


def test_iterators_work_where_promised_and_are_refused_elsewhere():
    X, Y = data()

    def batches(A):
        return (A[i : i + 40] for i in range(0, len(A), 40))

    for f in (svcca.cca, svcca.cka, svcca.procrustes):
        assert same_score(f(batches(X), batches(Y)).score, f(X, Y).score, X, Y), f
    for call, what in (
        (lambda: svcca.cka(batches(X), batches(Y), kernel="rbf"), "X is an iterator"),
        (lambda: svcca.rsa(batches(X), batches(Y)), "X is an iterator"),
        (lambda: svcca.pairwise({"a": batches(X), "b": Y}), "representation 'a' is an it"),
        (lambda: svcca.Moments.from_arrays(batches(X)), "X is an iterator"),
    ):
        with pytest.raises(TypeError, match=what + r".*np\.concatenate\(list\(batches\)\)"):
            call()


def test_boolean_arrays_are_data():
    X, Y = data()
    B = X > 0
    assert svcca.cca(B, Y).score == pytest.approx(svcca.cca(B.astype(float), Y).score, abs=1e-12)
    assert svcca.cka(B, Y, kernel="rbf").score == pytest.approx(
        svcca.cka(B.astype(float), Y, kernel="rbf").score, abs=1e-12
    )
    np.testing.assert_allclose(
        svcca.pairwise({"b": B, "y": Y}).values,
        svcca.pairwise({"b": B.astype(float), "y": Y}).values,
        atol=1e-12,
    )


def test_the_other_boundaries_refuse_masks_too():
    """compat's (neurons, datapoints) inputs and svcca.conv's 4-D maps: the mask is
    checked before any np.asarray could drop it; rows are datapoints."""
    from svcca import compat, conv

    rng = np.random.default_rng(1)
    acts = rng.standard_normal((4, 60))
    m = np.ma.masked_array(acts, mask=np.zeros(acts.shape, dtype=bool))
    m.mask[1, 7] = True  # neuron 1 of datapoint 7
    with pytest.raises(ValueError, match=r"acts1 is a NumPy masked array .*\(first: \[7\]\)"):
        compat.get_cca_similarity(m, acts)
    with pytest.raises(ValueError, match=r"acts is a NumPy masked array .*\(first: \[7\]\)"):
        compat.get_pca(m)
    maps = rng.standard_normal((30, 4, 4, 3))
    mm = np.ma.masked_array(maps, mask=np.zeros(maps.shape, dtype=bool))
    mm.mask[5, 0, 1, 2] = True
    with pytest.raises(ValueError, match=r"A is a NumPy masked array .*\(first: \[5\]\)"):
        conv.fourier_cca(mm, maps, layout="nhwc")
    with pytest.raises(TypeError, match=r"A is an iterator"):
        conv.fourier_cca(iter([maps]), maps, layout="nhwc")
