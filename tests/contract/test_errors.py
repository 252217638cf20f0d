"""Every bad-input path says what was expected, what came and how to fix it."""

from __future__ import annotations

import numpy as np
import pytest

import svcca
from svcca import compat

rng = np.random.default_rng(0)
X = rng.standard_normal((50, 4))
Y = rng.standard_normal((50, 3))


@pytest.mark.parametrize("f", [svcca.cca, svcca.svcca, svcca.pwcca, svcca.pls])
def test_mismatched_samples(f):
    with pytest.raises(ValueError, match="same datapoints: X has 50 samples .* Y has 49"):
        f(X, Y[:49])


@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (np.zeros(50), ValueError, r"2-D .* got a 1-D .* x.reshape\(-1, 1\)"),
        (np.zeros((50, 2, 2, 3)), ValueError, "svcca.conv"),
        (np.zeros((50, 2, 2)), ValueError, "Reshape it to"),
        (np.zeros((0, 3)), ValueError, "is empty"),
        (np.zeros((50, 0)), ValueError, "is empty"),
        (np.array([["a"] * 3] * 50), TypeError, "real numbers; got dtype <U1"),
        (np.zeros((50, 3), dtype=complex), TypeError, "svcca.conv"),
        ("data.npy", TypeError, "must be an array"),
        (None, TypeError, "compares two representations"),
        ([[1, 2], [3]], TypeError, "could not be converted"),
    ],
)
def test_bad_arrays(bad, exc, match):
    with pytest.raises(exc, match=match):
        svcca.cca(X, bad) if bad is not None else svcca.cca(X)


def test_nan_and_inf_report_rows():
    Z = X.copy()
    Z[[3, 17], 1] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains NaN or inf in 2 of its 50 rows \(first: \[3, 17\]\)"
    ):
        svcca.cca(Z, Y)
    W = Y.copy()
    W[0, 0] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN or inf in 1 of its 50 rows"):
        svcca.svcca(X, W)


def test_too_few_samples():
    with pytest.raises(ValueError, match="At least 2 samples"):
        svcca.cca(X[:1], Y[:1])


@pytest.mark.parametrize(
    ("keep", "exc", "match"),
    [
        (0.0, ValueError, r"keep must be a number in \(0, 1\); got 0.0. Pass a fraction"),
        (1.0, ValueError, r"keep must be a number in \(0, 1\); got 1.0.*use svcca.cca"),
        (1.5, ValueError, r"keep must be a number in \(0, 1\)"),
        (-0.2, ValueError, r"keep must be a number in \(0, 1\)"),
        (0, ValueError, "keep must be an int >= 1; got 0"),
        (True, TypeError, r"keep must be a float in \(0, 1\) or an int >= 1; got True"),
        ("all", TypeError, r"keep must be a float in \(0, 1\) or an int >= 1; got 'all'"),
    ],
)
def test_keep_out_of_range(keep, exc, match):
    with pytest.raises(exc, match=match):
        svcca.svcca(X, Y, keep=keep)


def test_bad_knobs():
    match = "variance must be one of 'explained', 'singular_values'; got"
    with pytest.raises(ValueError, match=match):
        svcca.svcca(X, Y, variance="energy")
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\)"):
        svcca.cca(X, Y, epsilon=-1.0)
    with pytest.raises(TypeError, match=r"epsilon must be a number in \[0, 1\); got 'small'"):
        svcca.pwcca(X, Y, epsilon="small")
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        svcca.cca(X, Y, threshold=2.0)
    with pytest.raises(TypeError, match=r"threshold must be a number in \[0, 1\]"):
        svcca.cca(X, Y, threshold=None)


def test_moments_errors(tmp_path):
    m = svcca.Moments.empty(4, 3)
    with pytest.raises(ValueError, match="X has 5 features but these Moments were built for 4"):
        m.update(np.zeros((3, 5)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Y has 2 features but these Moments were built for 3"):
        m.update(np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="pass the matching Y batch"):
        m.update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="X has 3 rows and Y has 2"):
        m.update(np.zeros((3, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="without a Y representation"):
        svcca.Moments.empty(4).update(np.zeros((3, 4)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Cannot merge Moments of widths"):
        m.merge(svcca.Moments.empty(4, 2))
    with pytest.raises(TypeError, match="merge expects a Moments"):
        m.merge(X)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="p must be at least 1"):
        svcca.Moments.empty(0, 3)
    with pytest.raises(ValueError, match="q must be a non-negative int"):
        svcca.Moments.empty(3, -1)
    with pytest.raises(ValueError, match=r"Moments.sxx must have shape \(2, 2\)"):
        svcca.Moments(
            3, np.zeros(2), np.zeros(1), np.zeros((3, 3)), np.zeros((1, 1)), np.zeros((2, 1))
        )
    with pytest.raises(ValueError, match="from_batches received no batches"):
        svcca.Moments.from_batches([])
    with pytest.raises(ValueError, match=r"X \(batch 1\) has 5 features"):
        svcca.Moments.from_batches(
            [(np.ones((3, 4)), np.ones((3, 2))), (np.ones((3, 5)), np.ones((3, 2)))]
        )
    with pytest.raises(ValueError, match="Covariances need at least 2 samples"):
        _ = m.cov_xx
    with pytest.raises(ValueError, match="swap.. needs Moments with a Y"):
        svcca.Moments.empty(3).swap()
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved Moments file"):
        svcca.Moments.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Could not read Moments"):
        svcca.Moments.load(tmp_path / "junk.npz")


def test_measures_given_moments_errors():
    m1 = svcca.Moments.from_arrays(X)
    with pytest.raises(ValueError, match="has no Y side"):
        svcca.cca(m1)
    with pytest.raises(TypeError, match="either a Moments object alone or two arrays"):
        svcca.cca(svcca.Moments.from_arrays(X, Y), Y)
    with pytest.raises(ValueError, match="holds 1 samples"):
        svcca.cca(svcca.Moments.from_arrays(X[:1], Y[:1]))


def test_transform_width_mismatch():
    r = svcca.cca(X, Y)
    with pytest.raises(ValueError, match="X has 3 features but the fitted representation had 4"):
        r.transform(Y)


def test_compat_errors():
    with pytest.raises(ValueError, match="acts1 and acts2 must describe the same datapoints"):
        compat.get_cca_similarity(X.T, Y[:40].T)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        compat.get_cca_similarity(X.T, Y.T, threshold=1.5)


def test_compat_no_longer_crashes():
    """Each of these raised in google/svcca (see its bug list)."""
    with pytest.raises(ValueError, match=r"epsilon must be a number in \[0, 1\)"):
        compat.get_cca_similarity(X.T, Y.T, epsilon=2.0)  # all pruned: ValueError before
    with pytest.raises(svcca.DegenerateError, match="acts1"):  # constant layer: not 0
        compat.get_cca_similarity(np.ones((4, 50)), Y.T)
    d = compat.get_cca_similarity(X.T, Y.T, compute_coefs=False, compute_dirns=True)  # KeyError
    assert d["cca_dirns1"].shape == (4, 50) and "coef_x" not in d
    d = compat.get_cca_similarity(X.T, Y.T, threshold=0.0)  # NaN mean before
    assert d["mean"][0] == d["cca_coef1"][0]
    d = compat.robust_cca_similarity(X.T, Y.T)  # arguments were shuffled
    np.testing.assert_allclose(d["cca_coef1"], svcca.cca(X, Y).correlations, atol=1e-5)
    assert "cca_dirns1" in d
    with pytest.raises(svcca.DegenerateError, match="acts1"):
        compat.compute_pwcca(np.ones((4, 50)), Y.T)
