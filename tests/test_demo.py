"""svcca demo: its numbers agree with single library calls, and it writes every figure."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

import svcca  # noqa: E402
from svcca.cli import main  # noqa: E402
from svcca.demo import DemoConfig, run_demo  # noqa: E402
from svcca.demo import _analysis as an  # noqa: E402

rng = np.random.default_rng(0)


def latent_pair(n=600, p=30, q=20, k=5):
    Z = rng.standard_normal((n, k))
    X = Z @ rng.standard_normal((k, p)) + 0.5 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((k, q)) + 0.5 * rng.standard_normal((n, q))
    return X, Y


def multiple_correlation(X, z):
    """Independent reference: the correlation of ``z`` with its least-squares fit from X."""
    Xc, zc = X - X.mean(0), z - z.mean()
    fit = Xc @ np.linalg.lstsq(Xc, zc, rcond=None)[0]
    return float(fit @ zc / (np.linalg.norm(fit) * np.linalg.norm(zc)))


def test_cka_with_final_matches_single_calls():
    X, Y = latent_pair(n=200)
    series = [
        {"a": X + s * rng.standard_normal(X.shape), "b": Y + s * rng.standard_normal(Y.shape)}
        for s in (2.0, 1.0, 0.0)
    ]
    got = an.cka_with_final(series, ["a", "b"])
    ref = np.array(
        [[[svcca.cka(acts[i], series[-1][j]).score for j in "ab"] for i in "ab"] for acts in series]
    )
    np.testing.assert_allclose(got, ref, atol=1e-12)
    np.testing.assert_allclose(got[-1].diagonal(), 1.0, atol=1e-12)
    diag = an.cka_with_final_self(series, ["a", "b"])
    np.testing.assert_allclose(diag, np.diagonal(ref, axis1=1, axis2=2), atol=1e-12)


def test_logit_correlation_is_the_multiple_correlation():
    X, _ = latent_pair()
    X[:, 4] = 0.0  # a dead neuron
    z = X[:, :3] @ [1.0, -2.0, 0.5] + rng.standard_normal(len(X))
    assert an.logit_correlation(X, z) == pytest.approx(multiple_correlation(X, z), abs=1e-10)


def test_spread_keeps_first_and_last():
    assert an._spread(5, 8) == [0, 1, 2, 3, 4]
    s = an._spread(16, 6)
    assert s[0] == 0 and s[-1] == 15 and len(s) == 6


TINY = DemoConfig(
    seeds=2,
    cnn_epochs=2,
    mlp_epochs=2,
    memorise_epochs=5,
    memorise_seeds=2,
    threads=1,
    formats=("png",),
)


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out, config=TINY)


def test_demo_writes_every_figure_with_a_finding(tiny_demo):
    report = tiny_demo
    names = [f.name for f in report.figures]
    assert names == [
        "learning_dynamics_cnn",
        "convergence_cnn",
        "learning_dynamics_mlp",
        "convergence_mlp",
        "class_sensitivity",
        "interpretability",
        "compression",
        "generalising_vs_memorising",
        "coefficients",
    ]
    page = open(report.index).read()
    readme = open(report.readme).read()
    for fg in report.figures:
        for f in fg.files:
            path = os.path.join(report.out, f)
            assert os.path.getsize(path) > 1000, path
        assert f"{fg.name}.png" in page and f"({fg.name}.png)" in readme
        assert fg.finding and any(ch.isdigit() for ch in fg.finding)
        assert fg.finding.split(":")[0] in readme
    saved = json.load(open(os.path.join(report.out, "findings.json")))
    assert [f["name"] for f in saved["figures"]] == names
    ckpts = os.listdir(os.path.join(report.out, "checkpoints"))
    assert "cnn-seed0-epoch002.pt" in ckpts and "cnn-seed1-epoch000.pt" in ckpts
    assert set(report.accuracies) == {"cnn-seed0", "cnn-seed1", "mlp-seed0", "mlp-seed1"}


def test_cli_demo_argument_errors(capsys):
    assert main(["demo", "--seeds", "3"]) == 2
    assert "--seeds applies to --sanity only" in capsys.readouterr().err
    assert main(["demo", "--sanity", "--seeds", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "learning_dynamics_cnn:" in out and "compression:" in out
    assert (tmp_path / "index.html").exists()


def test_class_sensitivity_dft_cca_is_cca_of_the_spatial_mean():
    from svcca.conv import fourier_cca

    A = rng.standard_normal((400, 4, 6, 6))  # (n, c, h, w)
    z = A[:, 1].mean(axis=(1, 2)) + 0.2 * rng.standard_normal(400)
    dft = fourier_cca(A, z[:, None], layout="nchw").score
    ref = multiple_correlation(A.mean(axis=(2, 3)), z)
    assert dft == pytest.approx(ref, abs=1e-9)
    assert an.logit_correlation(A, z) == pytest.approx(ref, abs=1e-9)


def test_identification_accuracy_counts_argmax_hits():
    from svcca.demo._sanity import identification_accuracy

    base = [rng.standard_normal((50, 3)) for _ in range(4)]
    nets = [[b + 0.01 * rng.standard_normal(b.shape) for b in base] for _ in range(3)]
    perfect = identification_accuracy(nets, lambda X, Y: -np.abs(X - Y).sum())
    assert perfect == 1.0
    always_first = identification_accuracy(nets, lambda X, Y: float(Y is nets[0][0]))
    assert always_first == pytest.approx(0.25)  # right only for layer 0


@pytest.mark.slow
def test_run_sanity_tiny(tmp_path):
    from svcca.demo._sanity import PAPER_CIFAR10, run_sanity

    res = run_sanity(tmp_path, seeds=2, epochs=1, n_probe=100, width=16)
    assert set(res.accuracy) == set(PAPER_CIFAR10)
    assert all(0.0 <= v <= 100.0 for v in res.accuracy.values())
    text = (tmp_path / "sanity.md").read_text()
    assert "| CKA (linear) |" in text and "99.3%" in text


def test_run_sanity_needs_two_networks(tmp_path):
    from svcca.demo._sanity import run_sanity

    with pytest.raises(ValueError, match="at least 2"):
        run_sanity(tmp_path, seeds=1)


def test_similarity_matrices_match_single_calls():
    from svcca.demo._sanity import PAPER_CIFAR10, similarity_matrices

    X, Y = latent_pair(n=150, p=6, q=5, k=3)
    U, V = latent_pair(n=150, p=4, q=7, k=2)
    a, b = [X, U], [Y, V]
    mats = similarity_matrices(a, b)
    assert list(mats) == list(PAPER_CIFAR10)
    single = {
        "CCA (mean rho)": lambda P, Q: svcca.cca(P, Q).score,
        "SVCCA (mean rho)": lambda P, Q: svcca.svcca(P, Q, keep=0.99).score,
        "PWCCA": lambda P, Q: svcca.pwcca(P, Q).score,
        "Linear regression": lambda P, Q: svcca.regression_fit(P, Q).r2_x_given_y,
        "CKA (linear)": lambda P, Q: svcca.cka(P, Q).score,
        "CKA (RBF 0.4)": lambda P, Q: svcca.cka(P, Q, kernel="rbf", bandwidth=0.4).score,
        "Procrustes": lambda P, Q: svcca.procrustes(P, Q).score,
    }
    for name, f in single.items():
        ref = np.array([[f(P, Q) for Q in b] for P in a])
        np.testing.assert_allclose(mats[name], ref, atol=1e-8, err_msg=name)
