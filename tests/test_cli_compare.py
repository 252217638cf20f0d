"""The ``svcca compare`` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import svcca


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svcca", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((400, 8))
    B = np.tanh(A @ rng.standard_normal((8, 5))) + 0.1 * rng.standard_normal((400, 5))
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    np.save(tmp_path / "bt.npy", B.T)
    np.save(tmp_path / "at.npy", A.T)
    return tmp_path, A, B


@pytest.mark.parametrize("method", ["cca", "svcca", "pwcca"])
def test_compare_json_matches_library(files, method):
    d, A, B = files
    out = run("compare", str(d / "a.npy"), str(d / "b.npy"), "--method", method, "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = {"cca": svcca.cca, "svcca": svcca.svcca, "pwcca": svcca.pwcca}[method](A, B).score
    assert got["score"] == pytest.approx(want, abs=1e-12)
    assert got["n_samples"] == 400


def test_compare_text_keep_and_transpose(files):
    d, A, B = files
    out = run("compare", str(d / "at.npy"), str(d / "bt.npy"), "--transpose", "--keep", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("svcca similarity: ")
    assert "kept 3 and 3 directions" in out.stdout
    assert float(out.stdout.split()[2]) == pytest.approx(svcca.svcca(A, B, keep=3).score, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("missing.npy", "b.npy"), "missing.npy: no such file"),
        (("a.npy", "bt.npy"), "same datapoints"),
        (("a.npy", "b.npy", "--keep", "1.5"), "keep must be a number in (0, 1)"),
        (("a.npy", "b.npy", "--keep", "most"), "--keep must be a fraction"),
        (("a.npy", "notnpy.txt"), "not a NumPy .npy array"),
        (("a.npy", "arch.npz"), "archive"),
    ],
)
def test_compare_bad_input_exits_2_without_traceback(files, args, message):
    d, *_ = files
    (d / "notnpy.txt").write_text("hello")
    np.savez(d / "arch.npz", x=np.zeros(3))
    out = run("compare", *[str(d / a) if a.endswith((".npy", ".txt", ".npz")) else a for a in args])
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_help_and_no_command():
    assert run("--help").returncode == 0
    assert "compare" in run("compare", "--help").stdout
    assert run().returncode == 2
