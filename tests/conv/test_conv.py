"""svcca.conv.fourier_cca: exactness, agreement with independent code paths, invariances."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import svcca

# private: the chunk size is a memory knob with no public setting; shrunk, small data
# take the chunked path
import svcca.conv._grid as grid_module
from svcca.conv import fourier_cca as _fourier_cca

# Every map built in this module is (n, h, w, c): name that layout once (fourier_cca and
# compare require it for 4-D maps; a call may still pass layout="nchw").
fourier_cca = partial(_fourier_cca, layout="nhwc")


def conv_layer(rng, m: int, h: int, w: int, c1: int, c2: int):
    """A random conv-like pair: ReLU maps and a noisy circular 3x3 convolution of them."""
    A = np.maximum(rng.standard_normal((m, h, w, c1)), 0.0) + 0.3 * rng.standard_normal(
        (m, h, w, c1)
    )
    K = rng.standard_normal((3, 3, c1, c2))
    B = 0.5 * rng.standard_normal((m, h, w, c2))
    for dy in range(3):
        for dx in range(3):
            B += np.roll(A, (dy - 1, dx - 1), axis=(1, 2)) @ K[dy, dx]
    return A, B


def all_shifts(*maps):
    """Every cyclic spatial shift of every map (the same shift on both layers)."""
    h, w = maps[0].shape[1:3]
    shifts = [(sy, sx) for sy in range(h) for sx in range(w)]
    return tuple(np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts]) for x in maps)


def flat(x):
    return x.reshape(x.shape[0], -1)


def per_location_qr_cca(A, B):
    """Independent reference: full FFT, crop as google/svcca, QR-based complex CCA per location."""
    H, W = min(A.shape[1], B.shape[1]), min(A.shape[2], B.shape[2])
    out = np.full((H, W, min(A.shape[3], B.shape[3])), np.nan)

    def spectrum(x):
        f = np.fft.fft2(x, axes=(1, 2))
        rows = np.rint(np.fft.fftfreq(H) * H).astype(int) % x.shape[1]
        cols = np.rint(np.fft.fftfreq(W) * W).astype(int) % x.shape[2]
        f = f[:, rows][:, :, cols]
        return f - f.mean(axis=0)

    FA, FB = spectrum(A), spectrum(B)
    for i in range(H):
        for j in range(W):
            qa, _ = np.linalg.qr(FA[:, i, j])
            qb, _ = np.linalg.qr(FB[:, i, j])
            s = np.linalg.svd(qa.conj().T @ qb, compute_uv=False)
            out[i, j, : s.size] = s
    return out


@pytest.mark.parametrize("hw", [(4, 6), (5, 3), (4, 4)])
def test_exact_on_translation_invariant_data(hw):
    """Raghu et al. Sec. 3: DFT-CCA equals CCA on all h*w*c neurons for shift-closed data."""
    rng = np.random.default_rng(sum(hw))
    A, B = all_shifts(*conv_layer(rng, 20, *hw, 3, 2))
    r = fourier_cca(A, B)
    f = svcca.cca(flat(A), flat(B))
    assert r.correlations.size == f.correlations.size == hw[0] * hw[1] * 2
    np.testing.assert_allclose(r.correlations, f.correlations, rtol=0, atol=1e-8)
    assert r.score == pytest.approx(f.score, abs=1e-10)
    assert r.thresholded_mean == pytest.approx(f.thresholded_mean, abs=1e-10)


def test_svcca_truncation_exact_on_translation_invariant_data():
    rng = np.random.default_rng(11)
    A, B = all_shifts(*conv_layer(rng, 20, 4, 6, 4, 3))
    # A keep fraction that lands between distinct eigenvalues on both sides, so the
    # flattened SVCCA does not have to split a degenerate (mirror-frequency) pair.
    shares = []
    for x in (A, B):
        ev = np.sort(np.linalg.eigvalsh(np.cov(flat(x).T)))[::-1]
        share = np.cumsum(ev) / ev.sum()
        gaps = np.flatnonzero(ev[:-1] > ev[1:] * (1 + 1e-6))
        shares.append((share, gaps))
    for t in range(30, 60):
        if all(t - 1 in gaps for _, gaps in shares):
            break
    else:
        pytest.fail("no keep fraction separates distinct eigenvalues on both sides")
    keep = float(max(shares[0][0][t - 1], shares[1][0][t - 1]) - 1e-9)
    s = svcca.svcca(flat(A), flat(B), keep=keep)
    r = fourier_cca(A, B, keep=keep)
    assert r.correlations.size == s.correlations.size
    np.testing.assert_allclose(r.correlations, s.correlations, rtol=0, atol=1e-8)
    assert r.variance_kept_x == pytest.approx(s.variance_kept_x, abs=1e-12)
    assert r.variance_kept_y == pytest.approx(s.variance_kept_y, abs=1e-12)


def test_not_exact_without_translation_invariance():
    """On ordinary data the frequencies are coupled: the DFT result is an approximation."""
    rng = np.random.default_rng(3)
    A, B = conv_layer(rng, 600, 4, 4, 3, 2)
    r, f = fourier_cca(A, B), svcca.cca(flat(A), flat(B))
    assert r.correlations.size == f.correlations.size
    assert np.abs(r.correlations - f.correlations).max() > 1e-3


@pytest.mark.parametrize(
    "sa,sb",
    [
        ((6, 4, 5), (6, 4, 3)),  # equal, non-square
        ((8, 6, 4), (4, 3, 3)),  # cropped: even and odd shared sizes
        ((5, 7, 3), (5, 4, 2)),  # one axis cropped
        ((3, 3, 2), (6, 5, 3)),  # the second map is the larger one
    ],
)
def test_every_location_matches_independent_per_location_cca(sa, sb):
    rng = np.random.default_rng(5)
    A = rng.standard_normal((150, *sa))
    B = rng.standard_normal((150, *sb))
    hm, wm = min(sa[0], sb[0]), min(sa[1], sb[1])
    B[:, :hm, :wm, 0] += A[:, :hm, :wm, 0]
    B[:, :hm, :wm, -1] += 2 * A[:, :hm, :wm, -1]
    r = fourier_cca(A, B)
    ref = per_location_qr_cca(A, B)
    assert r.frequency_correlations.shape == ref.shape
    np.testing.assert_allclose(r.frequency_correlations, ref, rtol=0, atol=1e-12)
    pooled = np.sort(ref[~np.isnan(ref)])[::-1]
    np.testing.assert_allclose(r.correlations, pooled, atol=1e-12)
    H, W = ref.shape[:2]
    assert r.frequencies_h.tolist() == np.rint(np.fft.fftfreq(H) * H).astype(int).tolist()
    assert r.frequencies_w.tolist() == np.rint(np.fft.fftfreq(W) * W).astype(int).tolist()
    np.testing.assert_allclose(r.frequency_scores, np.nanmean(ref, axis=-1), atol=1e-12)


def test_nchw_layout_gives_the_same_result():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((100, 6, 4, 3)), rng.standard_normal((100, 6, 4, 2))
    r1 = fourier_cca(A, B)
    r2 = fourier_cca(A.transpose(0, 3, 1, 2), B.transpose(0, 3, 1, 2), layout="nchw")
    np.testing.assert_array_equal(r1.frequency_correlations, r2.frequency_correlations)
    assert r2.layout == "nchw" and r2.shape_x == (6, 4, 3)


def test_invariances():
    rng = np.random.default_rng(1)
    A, B = conv_layer(rng, 300, 6, 6, 4, 3)
    base = fourier_cca(A, B)
    # Self-similarity is 1.
    assert fourier_cca(A, A).score == pytest.approx(1.0, abs=1e-10)
    # Any invertible 1x1 convolution (channel mixing) of either side.
    mixed = fourier_cca(A @ rng.standard_normal((4, 4)), 3.0 * B + 1.0)
    np.testing.assert_allclose(
        mixed.frequency_correlations, base.frequency_correlations, atol=1e-10
    )
    # The same cyclic shift of every datapoint of one layer only changes phases.
    shifted = fourier_cca(np.roll(A, (2, 1), axis=(1, 2)), B)
    np.testing.assert_allclose(
        shifted.frequency_correlations, base.frequency_correlations, atol=1e-10
    )
    # Swapping the layers.
    swapped = fourier_cca(B, A)
    np.testing.assert_allclose(
        swapped.frequency_correlations, base.frequency_correlations, atol=1e-10
    )


def test_mirror_frequencies_share_correlations():
    rng = np.random.default_rng(2)
    r = fourier_cca(rng.standard_normal((80, 6, 5, 3)), rng.standard_normal((80, 6, 5, 2)))
    rho = r.frequency_correlations
    mirror = rho[(-np.arange(6)) % 6][:, (-np.arange(5)) % 5]
    np.testing.assert_array_equal(rho, mirror)


def test_conv_against_single_neuron_and_dense_layer():
    """A 1x1 layer (or a dense one) is compared with the DC component: the spatial mean."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((400, 5, 6, 4))
    y = A.mean(axis=(1, 2)) @ rng.standard_normal(4) + rng.standard_normal(400)
    expect = svcca.cca(A.mean(axis=(1, 2)), y[:, None]).correlations
    for other in (y[:, None, None, None], y[:, None]):
        r = fourier_cca(A, other)
        assert r.frequency_correlations.shape == (1, 1, 1)
        np.testing.assert_allclose(r.correlations, expect, atol=1e-12)
    D = rng.standard_normal((400, 7))
    r = fourier_cca(D, A)
    np.testing.assert_allclose(
        r.correlations, svcca.cca(D, A.mean(axis=(1, 2))).correlations, atol=1e-12
    )


def test_weights_and_transform_give_the_canonical_variates():
    rng = np.random.default_rng(6)
    A, B = conv_layer(rng, 400, 4, 6, 3, 3)
    r = fourier_cca(A, B)
    u, v = r.transform(A, B)
    assert u.shape == v.shape == (400, 4, 6, 3)
    # Complex correlation of paired variates equals the canonical correlation; unit variance.
    uc, vc = u - u.mean(axis=0), v - v.mean(axis=0)
    cross = np.sum(np.conj(uc) * vc, axis=0) / (400 - 1)
    np.testing.assert_allclose(np.real(cross), r.frequency_correlations, atol=1e-10)
    np.testing.assert_allclose(np.imag(cross), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.sum(np.abs(uc) ** 2, axis=0) / 399, 1.0, atol=1e-10)
    # Variates of different index at the same location are uncorrelated.
    gram = np.einsum("nijk,nijl->ijkl", np.conj(uc), uc) / 399
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-10)
    # Spatial-domain weights reproduce the variates from the centred activations.
    centred = flat(A - A.mean(axis=0))
    for i, j in [(0, 0), (1, 2), (3, 5), (2, 3)]:
        Wsp = r.spatial_weights(i, j)
        assert Wsp.shape == (4, 6, 3, 3)
        np.testing.assert_allclose(centred @ Wsp.reshape(-1, 3), u[:, i, j], atol=1e-10)
        Wy = r.spatial_weights(i, j, side="y")
        np.testing.assert_allclose(
            flat(B - B.mean(axis=0)) @ Wy.reshape(-1, 3), v[:, i, j], atol=1e-10
        )
    # Mirror locations hold conjugate weights.
    np.testing.assert_allclose(r.weights_x[1, 2], np.conj(r.weights_x[3, 4]), atol=1e-14)


def test_spatial_weights_are_flattened_canonical_directions_when_invariant():
    """On shift-closed data the real part of a spatial map is a real canonical direction."""
    rng = np.random.default_rng(8)
    A, B = all_shifts(*conv_layer(rng, 20, 4, 4, 3, 2))
    r = fourier_cca(A, B)
    for i, j in [(1, 0), (1, 3), (0, 1)]:
        a = flat(A) @ np.real(r.spatial_weights(i, j).reshape(-1, 2))
        b = flat(B) @ np.real(r.spatial_weights(i, j, side="y").reshape(-1, 2))
        corr = [np.corrcoef(a[:, m], b[:, m])[0, 1] for m in range(2)]
        np.testing.assert_allclose(corr, r.frequency_correlations[i, j], atol=1e-10)


def test_transform_new_data_and_nchw_maps():
    rng = np.random.default_rng(9)
    A, B = rng.standard_normal((120, 3, 5, 4)), rng.standard_normal((120, 3, 5, 2))
    r = fourier_cca(A.transpose(0, 3, 1, 2), B.transpose(0, 3, 1, 2), layout="nchw")
    u, v = r.transform(A[:10].transpose(0, 3, 1, 2))
    assert u.shape == (10, 3, 5, 2) and v is None
    assert r.spatial_weights(1, 1).shape == (4, 3, 5, 2)


def test_pruning_dead_and_spatially_constant_channels():
    rng = np.random.default_rng(10)
    A = rng.standard_normal((200, 4, 4, 4))
    A[..., 1] = 0.0  # dead channel
    A[..., 2] = rng.standard_normal((200, 1, 1))  # constant over space: DC only
    B = rng.standard_normal((200, 4, 4, 3))
    r = fourier_cca(A, B)
    counts = r.n_correlations
    assert counts[0, 0] == 3 and (counts.ravel()[1:] == 2).all()
    assert np.isnan(r.frequency_correlations[1, 1, 2])
    assert r.correlations.size == counts.sum()
    assert np.isfinite(r.frequency_scores).all() and np.isfinite(r.correlations).all()
    # epsilon prunes relative to each frequency's strongest channel.
    A[..., 3] *= 1e-4
    assert (fourier_cca(A, B, epsilon=1e-6).n_correlations.ravel()[1:] == 1).all()


def test_rank_deficient_channels_fall_back_to_eigendecomposition():
    rng = np.random.default_rng(12)
    A = rng.standard_normal((150, 4, 4, 3))
    A = np.concatenate([A, A[..., :1] + A[..., 1:2]], axis=-1)  # 4th channel = sum of two
    B = rng.standard_normal((150, 4, 4, 3))
    B[..., 0] += A[..., 0]
    r = fourier_cca(A, B)
    assert (r.n_correlations == 3).all()
    np.testing.assert_allclose(
        r.frequency_correlations, per_location_qr_cca(A[..., :3], B), atol=1e-10
    )
    # More channels than samples: every frequency is rank deficient.
    few = fourier_cca(rng.standard_normal((6, 2, 2, 8)), rng.standard_normal((6, 2, 2, 8)))
    assert (few.n_correlations <= 5).all() and np.all(np.abs(few.correlations - 1) < 1e-8)


def test_float32_and_chunked_transform_agree(monkeypatch):
    rng = np.random.default_rng(13)
    A = rng.standard_normal((90, 5, 4, 3)).astype(np.float32)
    B = rng.standard_normal((90, 5, 4, 2)).astype(np.float32)
    ref = fourier_cca(A.astype(np.float64), B.astype(np.float64))
    np.testing.assert_allclose(
        fourier_cca(A, B).frequency_correlations, ref.frequency_correlations, atol=1e-12
    )
    monkeypatch.setattr(grid_module, "_CHUNK_BYTES", 1000)  # a few samples per chunk
    chunked = fourier_cca(A, B)
    np.testing.assert_allclose(
        chunked.frequency_correlations, ref.frequency_correlations, atol=1e-12
    )
    u, _ = chunked.transform(A)
    u_ref, _ = ref.transform(A.astype(np.float64))
    np.testing.assert_allclose(u, u_ref, atol=1e-10)


def test_result_fields():
    rng = np.random.default_rng(14)
    r = fourier_cca(rng.standard_normal((60, 4, 4, 3)), rng.standard_normal((60, 4, 4, 2)))
    assert r.n_samples == 60 and r.shape_x == (4, 4, 3) and r.shape_y == (4, 4, 2)
    assert r.keep is None and r.variance_kept_x == 1.0 and r.epsilon == 0.0
    assert r.score == pytest.approx(r.correlations.mean())
    assert r.mean_squared == pytest.approx(np.mean(r.correlations**2))
    assert np.all(np.diff(r.correlations) <= 0)
    k = fourier_cca(rng.standard_normal((60, 4, 4, 3)), rng.standard_normal((60, 4, 4, 2)), keep=2)
    assert k.keep == 2 and 0 < k.variance_kept_x < 1
    with pytest.raises(AttributeError):
        r.score = 0.0  # frozen


def test_constant_layer_is_refused():
    rng = np.random.default_rng(15)
    B = rng.standard_normal((50, 4, 4, 2))
    for kw in ({}, {"keep": 0.9}):
        with pytest.raises(svcca.DegenerateError, match=r"Representation A \(48 features\)"):
            fourier_cca(np.ones((50, 4, 4, 3)), B, **kw)
