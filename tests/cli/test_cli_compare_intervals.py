"""``svcca compare A.npy B.npy --uncertainty {jackknife,bootstrap}``: the interval of
``svcca.stats.interval`` on the same arrays, in the text and the JSON; every knob checked
as the library checks it, and every refusal one line with the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import svcca
from svcca._cli import main


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(3)
    A = rng.standard_normal((300, 4))
    B = np.tanh(A @ rng.standard_normal((4, 3))) + 0.3 * rng.standard_normal((300, 3))
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    return tmp_path, A, B


def compare(capsys, d, *args):
    code = main(["compare", str(d / "a.npy"), str(d / "b.npy"), *args])
    out, err = capsys.readouterr()
    return code, out, err


FIELDS = ("estimate", "corrected", "bias", "standard_error", "low", "high")


@pytest.mark.parametrize(
    ("flags", "measure", "kwargs"),
    [
        (["--measure", "cca", "--epsilon", "0.01"], "cca", {"params": {"epsilon": 0.01}}),
        (["--keep", "2"], "svcca", {"params": {"keep": 2, "variance": "explained"}}),
        (["--measure", "cka_linear"], "cka_linear", {}),
        (["--measure", "cka_rbf", "--param", "sigma=2"], "cka_rbf", {"params": {"sigma": 2}}),
    ],
)
def test_jackknife_json_equals_the_library(files, capsys, flags, measure, kwargs):
    d, A, B = files
    code, out, _ = compare(
        capsys, d, *flags, "--uncertainty", "jackknife", "--blocks", "7", "--seed", "3",
        "--level", "0.9", "--json",
    )  # fmt: skip
    assert code == 0
    got = json.loads(out)
    want = svcca.stats.interval(A, B, measure=measure, blocks=7, seed=3, level=0.9, **kwargs)
    for f in FIELDS:
        assert got[f] == getattr(want, f), f  # the same call on the same arrays, exactly
    assert got["uncertainty"] == {
        "method": "jackknife", "level": 0.9, "seed": 3, "blocks": 7,
        "transform": want.transform, "blocks_used": want.blocks,
    }  # fmt: skip
    assert got["score"] == pytest.approx(want.estimate, rel=1e-12)


def test_defaults_are_the_librarys(files, capsys):
    d, A, B = files
    for method in ("jackknife", "bootstrap"):
        code, out, _ = compare(capsys, d, "--measure", "pls", "--uncertainty", method, "--json")
        assert code == 0
        got = json.loads(out)
        want = svcca.stats.interval(A, B, measure="pls", method=method)  # its defaults
        assert [got[f] for f in FIELDS] == [getattr(want, f) for f in FIELDS], method
        assert got["uncertainty"]["level"] == want.level and got["uncertainty"]["seed"] == 0


def test_bootstrap_takes_replicates(files, capsys):
    d, A, B = files
    code, out, _ = compare(
        capsys, d, "--measure", "cka_linear", "--uncertainty", "bootstrap", "--replicates",
        "30", "--seed", "5", "--json",
    )  # fmt: skip
    assert code == 0
    got = json.loads(out)
    want = svcca.stats.interval(
        A, B, measure="cka_linear", method="bootstrap", replicates=30, seed=5
    )
    assert [got[f] for f in FIELDS] == [getattr(want, f) for f in FIELDS]
    assert got["uncertainty"]["replicates"] == 30 and "blocks" not in got["uncertainty"]


def test_text_prints_estimate_corrected_se_and_interval(files, capsys):
    d, A, B = files
    code, out, _ = compare(capsys, d, "--measure", "cca", "--uncertainty", "jackknife")
    assert code == 0
    r = svcca.stats.interval(A, B, measure="cca")
    first, second = out.splitlines()
    assert first.startswith("cca similarity: ")
    assert second == (
        f"95% interval for the population value (jackknife, {r.blocks} blocks, seed 0): "
        f"estimate {r.estimate:.6f}, corrected {r.corrected:.6f}, standard error "
        f"{r.standard_error:.6f}, [{r.low:.6f}, {r.high:.6f}]"
    )
    code, out, _ = compare(capsys, d, "--measure", "cca", "--uncertainty", "bootstrap")
    assert "(bootstrap, 200 replicates, seed 0)" in out


def test_without_uncertainty_the_output_is_unchanged(files, capsys):
    d, _, _ = files
    code, out, _ = compare(capsys, d, "--measure", "cca", "--json")
    assert code == 0
    got = json.loads(out)
    assert "uncertainty" not in got and "low" not in got


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--blocks", "5"], "--blocks sets the intervals of --uncertainty jackknife; add "
         "--uncertainty jackknife, or leave it out."),
        (["--replicates", "5"], "--replicates sets the intervals of --uncertainty bootstrap"),
        (["--level", "0.9"], "--level sets the intervals of --uncertainty jackknife"),
        (["--seed", "1"], "--seed sets the intervals of --uncertainty jackknife"),
        (["--uncertainty", "bootstrap", "--blocks", "5"], "--blocks is a setting of the "
         "jackknife; --uncertainty bootstrap takes --replicates instead. Drop --blocks, or "
         "use --uncertainty jackknife."),
        (["--uncertainty", "jackknife", "--replicates", "5"], "--replicates is a setting of "
         "the bootstrap; --uncertainty jackknife takes --blocks instead."),
        (["--uncertainty", "jackknife", "--blocks", "1"], "--blocks must be an int >= 2; got 1."),
        (["--uncertainty", "jackknife", "--blocks", "x"], "--blocks must be an int >= 2; got 'x'."),
        (["--uncertainty", "bootstrap", "--replicates", "1.5"], "--replicates must be an int >= 2"),
        (["--uncertainty", "jackknife", "--level", "1"], "--level must be a number in (0, 1)"),
        (["--uncertainty", "jackknife", "--seed", "-1"], "--seed must be a non-negative int"),
        (["--measure", "cka_rbf", "--uncertainty", "bootstrap"], "Measure 'cka_rbf' is a "
         "samples measure: the bootstrap duplicates rows"),
    ],
)  # fmt: skip
def test_refusals_name_the_fix(files, capsys, args, message):
    d, _, _ = files
    code, out, err = compare(capsys, d, *args)
    assert code == 2 and out == ""
    assert err.startswith("svcca compare: error: ") and err.count("\n") == 1
    assert message in err


def test_bootstrap_of_a_samples_measure_names_the_cli_fix(files, capsys):
    d, _, _ = files
    for m in ("cka_rbf", "mutual_knn", "rsa"):
        code, _, err = compare(capsys, d, "--measure", m, "--uncertainty", "bootstrap")
        assert code == 2
        assert "Use --uncertainty jackknife" in err and "method=" not in err, err


def test_too_few_datapoints_is_refused_with_the_fix(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.array([[0.0, 1.0], [1.0, 0.5]]))
    np.save(tmp_path / "b.npy", np.array([[1.0, 0.0], [0.2, 1.0]]))
    code, _, err = compare(
        capsys, tmp_path, "--measure", "cka_linear", "--uncertainty", "jackknife"
    )
    assert code == 2
    assert "--uncertainty needs at least 3 datapoints; the files hold 2" in err, err


def test_real_command_reports_a_refusal_in_one_line(files):
    d, _, _ = files
    p = subprocess.run(
        [sys.executable, "-m", "svcca", "compare", str(d / "a.npy"), str(d / "b.npy"),
         "--measure", "rsa", "--uncertainty", "bootstrap"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("svcca compare: error: Measure 'rsa' is a samples measure")
    assert "Use --uncertainty jackknife" in p.stderr and "Traceback" not in p.stderr


def test_pairwise_shares_the_knobs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(tmp_path / f"l{i}.npy", rng.standard_normal((50, 3)))
    base = ["pairwise", str(tmp_path), "--measure", "cca", "--uncertainty", "jackknife"]
    assert main([*base, "--blocks", "x"]) == 2
    assert "--blocks must be an int >= 2; got 'x'." in capsys.readouterr().err
    assert main([*base, "--level", "2"]) == 2
    assert "--level must be a number in (0, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # pairwise offers the jackknife only: no --replicates
        main([*base, "--replicates", "5"])
    assert "unrecognized arguments: --replicates" in capsys.readouterr().err
