"""svcca demo --sanity (Kornblith et al. 2019, Table 2): the similarity matrices are the
single-pair functions' numbers, the accuracy rule counts argmax hits, the run writes
sanity.json and sanity.md, and bad knobs are refused with a message."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import svcca
from conftest import tol

# private: the sanity check's steps on tiny data (`svcca demo --sanity` runs them all, below)
from svcca._demo import _sanity as sn

rng = np.random.default_rng(0)


def latent_pair(n=150, p=6, q=5, k=3):
    Z = rng.standard_normal((n, k))
    X = Z @ rng.standard_normal((k, p)) + 0.5 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((k, q)) + 0.5 * rng.standard_normal((n, q))
    return X, Y


def single(P, Q):
    """Every measure of the table, each from its public single-pair function."""
    c, v = svcca.cca(P, Q), svcca.svcca(P, Q, keep=0.99)
    r = svcca.regression_fit(P, Q)
    out = {
        "cca": c.score,
        "cca [mean_squared]": c.mean_squared,
        "svcca": v.score,
        "svcca [mean_squared]": v.mean_squared,
        "pwcca": svcca.pwcca(P, Q).score + svcca.pwcca(Q, P).score,
        "regression": r.r2_x_given_y + r.r2_y_given_x,
        "cka_linear": svcca.cka(P, Q).score,
        "cka_linear_debiased": svcca.cka(P, Q, debiased=True).score,
        "procrustes": svcca.procrustes(P, Q).score,
    }
    for w in sn.RBF_WIDTHS:
        out[f"cka_rbf (bandwidth={w})"] = svcca.cka(P, Q, kernel="rbf", bandwidth=w).score
    for name in sn.registry_rows():  # every other registered measure, by its registry call
        m = svcca.MEASURES[name]
        try:
            s = m.score(P, Q) if m.symmetric else m.score(P, Q) + m.score(Q, P)
        except ValueError:  # refused (cosine neighbours of a zero row): NaN in the table
            s = float("nan")
        out[name] = s if m.larger_is_more_similar else -s
    return out


def test_similarity_matrices_match_single_calls():
    X, Y = latent_pair(p=6, q=5)
    U, V = latent_pair(p=4, q=7, k=2)
    W = np.maximum(rng.standard_normal((150, 9)), 0.0)  # ReLU-like, one width more
    W[:, 3] = 0.0  # a dead unit: pruned, as the single calls prune it
    W[0] = 0.0  # a datapoint no unit responds to: cosine neighbours refuse it
    a, b = [X, U, W], [Y, V, W[:, ::-1] + 0.1 * rng.standard_normal((150, 9))]
    with pytest.warns(svcca.SVCCAWarning, match="mutual_knn refused these activations"):
        mats = sn.similarity_matrices(a, b)
    assert list(mats) == list(sn.rows())
    ref = [[single(P, Q) for Q in b] for P in a]
    # Same combine steps on blocks of one joint GEMM instead of per-pair products: the
    # difference is round-off of (p + q)-term sums amplified by the conditioning of the
    # blocks (CCA: first order in cond, Kornblith's kernels: none).
    cond = max(np.linalg.cond(np.cov(M.T)) for M in a + b if M[:, np.ptp(M, 0) > 0].size)
    for key in sn.rows():
        want = np.array([[r[key] for r in row] for row in ref])
        if np.isnan(want).any():  # a layer refused: the check leaves the measure out whole
            assert np.isnan(mats[key]).all(), key
            continue
        np.testing.assert_allclose(
            mats[key], want, rtol=0, atol=tol(cond=cond, factor=200), err_msg=key
        )


def test_similarity_matrices_are_transposes_of_each_other():
    """S_BA = S_AB^T for every measure (the asymmetric ones are symmetrised), so which
    network holds the queries changes nothing."""
    X, Y = latent_pair(p=5, q=8)
    U, V = latent_pair(p=3, q=4, k=2)
    ab, ba = sn.similarity_matrices([X, U], [Y, V]), sn.similarity_matrices([Y, V], [X, U])
    for key in sn.rows():
        np.testing.assert_allclose(ab[key], ba[key].T, rtol=0, atol=tol(cond=1e3), err_msg=key)


def test_identification_accuracy_counts_argmax_hits():
    base = [rng.standard_normal((50, 3)) for _ in range(4)]
    nets = [[b + 0.01 * rng.standard_normal(b.shape) for b in base] for _ in range(3)]
    perfect = sn.identification_accuracy(nets, lambda X, Y: -np.abs(X - Y).sum())
    assert perfect == 1.0
    always_first = sn.identification_accuracy(nets, lambda X, Y: float(Y is nets[0][0]))
    assert always_first == pytest.approx(0.25)  # right only for layer 0


def test_identify_agrees_with_the_reference_rule():
    """_identify (matrices, both query directions) == identification_accuracy (the
    plain loop over ordered pairs with the single-pair function)."""
    Z = [rng.standard_normal((120, 3)) for _ in range(3)]
    nets = [
        [np.tanh(z @ rng.standard_normal((3, 6))) + 0.3 * rng.standard_normal((120, 6)) for z in Z]
        for _ in range(3)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", svcca.SVCCAWarning)
        found = sn._identify(nets, keep=0.99, progress=False, t0=0.0)
        for key, f in (
            ("cka_linear", lambda P, Q: svcca.cka(P, Q).score),
            ("svcca", lambda P, Q: svcca.svcca(P, Q, keep=0.99).score),
            ("regression", lambda P, Q: svcca.regression_fit(P, Q).score),
        ):
            got = found.accuracy[key]
            assert got == pytest.approx(100 * sn.identification_accuracy(nets, f)), key
    assert set(found.spread) == set(found.adjacent) == set(sn.rows())
    for key in sn.rows():  # every case is one query of one layer
        assert np.mean(found.per_layer[key]) == pytest.approx(found.accuracy[key]), key
    # the same-layer CKA is the mean diagonal of the cross-network linear CKA
    same = [
        svcca.cka(a[k], b[k]).score
        for i, a in enumerate(nets)
        for b in nets[i + 1 :]
        for k in range(3)
    ]
    assert found.same_layer_cka == pytest.approx(np.mean(same), abs=tol(cond=1e3))
    nxt = [svcca.cka(a[k], a[k + 1]).score for a in nets for k in range(2)]
    assert found.neighbour_cka == pytest.approx(np.mean(nxt), abs=tol(cond=1e3))


def test_svcca_mean_rho_favours_mismatched_dimensions_under_independence():
    """Why SVCCA's mean rho scores 0% on the MLPs: on independent data the mean of the
    min(p, q) canonical correlations is larger for a pair of unequal widths than for
    equal ones (the diagonal of a layer-identification matrix is the equal-width pair)."""
    n = 300
    X = rng.standard_normal((n, 100))
    same = svcca.cca(X, rng.standard_normal((n, 100))).score
    narrow = svcca.cca(X, rng.standard_normal((n, 15))).score
    assert narrow > same + 0.05


pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_probe_images_centre_then_shifted_copies():
    from svcca._demo._train import load_digits_split

    x = load_digits_split().x_test
    p = sn.probe_images("plain", len(x) + 10)
    assert p.shape == (len(x) + 10, 1, 12, 12)
    np.testing.assert_array_equal(p[: len(x), :, 2:10, 2:10], x)
    assert p[: len(x), :, :2].sum() == 0 and p[: len(x), :, 10:].sum() == 0
    # every copy holds the whole digit, somewhere on the canvas
    np.testing.assert_allclose(p[len(x) :].sum(axis=(1, 2, 3)), x[:10].sum(axis=(1, 2, 3)))
    np.testing.assert_array_equal(sn.probe_images("deep", 30), x[:30])


def test_run_sanity_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="seeds must be .*at least 2"):
        sn.run_sanity(tmp_path, seeds=1)
    with pytest.raises(ValueError, match="arch must be one of"):
        sn.run_sanity(tmp_path, arch="resnet")
    with pytest.raises(ValueError, match="conv must be one of"):
        sn.run_sanity(tmp_path, conv="sum")
    with pytest.raises(ValueError, match="depth must be"):
        sn.run_sanity(tmp_path, depth=1)
    with pytest.raises(ValueError, match="n_probe must be at most 449 for arch='deep'"):
        sn.run_sanity(tmp_path, arch="deep", n_probe=500)


def test_train_shifts_needs_the_plain_cnn(tmp_path):
    from svcca._demo._train import load_digits_split, train

    with pytest.raises(ValueError, match="shifts=True needs arch='plain'"):
        train("mlp", 0, load_digits_split(), str(tmp_path), epochs=1, shifts=True)


def test_plain_cnn_shapes_and_centring():
    import torch

    from svcca._demo._train import layer_names, make_model, shifted

    for depth in (4, 8, 10):
        model = make_model("plain", 0, width=4, depth=depth).eval()
        x = torch.rand(3, 1, 8, 8)
        names = layer_names("plain", depth)
        assert len(names) == depth and all(hasattr(model, n) for n in names)
        centred = torch.from_numpy(shifted(x.numpy(), np.full((3, 2), 2)))
        with torch.no_grad():
            assert torch.equal(model(x), model(centred))  # 8x8 input = centred canvas
            assert model(x).shape == (3, 10)


def test_cli_study_flag_errors(capsys):
    from svcca._cli import main

    assert main(["demo", "--study"]) == 2
    assert "--study applies to --sanity only" in capsys.readouterr().err
    assert main(["demo", "--sanity", "--study", "--quick"]) == 2
    assert "--study has no quick mode" in capsys.readouterr().err


@pytest.mark.slow
def test_run_sanity_tiny_writes_json_and_markdown(tmp_path):
    res = sn.run_sanity(tmp_path, seeds=2, epochs=1, n_probe=60, width=2, depth=3)
    assert set(res.accuracy) == set(sn.rows())
    assert all(0.0 <= v <= 100.0 for v in res.accuracy.values())
    saved = json.loads((tmp_path / "sanity.json").read_text())
    assert saved["accuracy"] == pytest.approx(res.accuracy)
    assert saved["networks"] == 2 and saved["datapoints"] == 60
    text = (tmp_path / "sanity.md").read_text()
    assert "| cka_linear |" in text and "99.3%" in text


@pytest.mark.slow
def test_run_study_tiny_writes_table_and_figure(tmp_path):
    pytest.importorskip("matplotlib")
    kw = dict(depths=(3,), widths=(), datapoints=(40, 60), base_depth=2, base_width=2)
    rows = sn.run_study(tmp_path, seeds=2, epochs=1, mlp_epochs=1, mlp_datapoints=40, **kw)
    labels = [r.setup["label"] for r in rows]
    assert labels == ["datapoints=40", "datapoints=60", "conv=mean", "depth=3", "MLP"]
    saved = json.loads((tmp_path / "study.json").read_text())
    assert [r["setup"]["label"] for r in saved] == labels
    table = (tmp_path / "study.md").read_text()
    assert table == sn.study_table(saved) and table.count("\n") == len(rows) + 2
    assert (tmp_path / "study.png").stat().st_size > 1000
    # the datapoint rows share networks: the larger probe set starts with the smaller
    assert rows[0].test_accuracy == rows[1].test_accuracy


@pytest.mark.slow
def test_cli_sanity_quick(tmp_path, capsys):
    from svcca._cli import main

    assert main(["demo", "--sanity", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    assert "| cka_linear |" in capsys.readouterr().out
    saved = json.loads((tmp_path / "sanity.json").read_text())
    assert saved["networks"] == 3 and saved["datapoints"] == 300
    assert set(saved["accuracy"]) == set(sn.rows())
