"""``svcca compare``: every measure, the shared vocabulary, and one message per error.

Most checks call ``svcca._cli.main`` in-process (capsys); a few run the real console
command in a subprocess, for its exit status and its stderr as a user sees it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import svcca
from conftest import independent_pair
from svcca._cli import main


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


def compare(capsys, d, *args):
    """``svcca compare d/a.npy d/b.npy *args`` in-process: (status, stdout, stderr)."""
    code = main(["compare", str(d / "a.npy"), str(d / "b.npy"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def library(measure, A, B):
    """The library call each measure name stands for (a registered measure without a
    top-level function: the registry's call)."""
    calls = {
        "svcca": lambda: svcca.svcca(A, B),
        "cca": lambda: svcca.cca(A, B),
        "pwcca": lambda: svcca.pwcca(A, B),
        "pls": lambda: svcca.pls(A, B),
        "cka_linear": lambda: svcca.cka(A, B),
        "cka_linear_debiased": lambda: svcca.cka(A, B, debiased=True),
        "cka_rbf": lambda: svcca.cka(A, B, kernel="rbf"),
        "cka_rbf_debiased": lambda: svcca.cka(A, B, kernel="rbf", debiased=True),
        "procrustes": lambda: svcca.procrustes(A, B),
        "regression": lambda: svcca.regression_fit(A, B),
        "rsa": lambda: svcca.rsa(A, B),
        "shape_distance": lambda: svcca.shape_distance(A, B),
    }
    return calls.get(measure, lambda: svcca.MEASURES[measure](A, B))()


# ---------------------------------------------------------------------- results
@pytest.mark.parametrize("measure", tuple(svcca.MEASURES))
def test_every_measure_matches_the_library(files, capsys, measure):
    d, A, B = files
    code, out, err = compare(capsys, d, "--measure", measure, "--json")
    assert code == 0, err
    assert err == ""
    got = json.loads(out)
    assert got["measure"] == measure
    want = getattr(library(measure, A, B), svcca.MEASURES[measure].score_field)
    assert got["score"] == pytest.approx(want, abs=1e-12)
    assert got["n_samples"] == 400


def test_settings_reach_the_library(files, capsys):
    d, A, B = files
    code, out, _ = compare(capsys, d, "--keep", "0.9", "--variance", "singular_values", "--json")
    assert code == 0
    got = json.loads(out)
    ref = svcca.svcca(A, B, keep=0.9, variance="singular_values")
    assert got["settings"] == {"keep": 0.9, "variance": "singular_values"}
    assert got["score"] == pytest.approx(ref.score, abs=1e-12)
    assert (got["kept_a"], got["kept_b"]) == (ref.kept_x, ref.kept_y)
    code, out, _ = compare(capsys, d, "--measure", "pwcca", "--epsilon", "0.05", "--json")
    assert code == 0
    assert json.loads(out)["score"] == pytest.approx(svcca.pwcca(A, B, epsilon=0.05).score)
    code, out, _ = compare(capsys, d, "--measure", "cka_rbf", "--bandwidth", "0.5", "--json")
    assert code == 0
    ref_rbf = svcca.cka(A, B, kernel="rbf", bandwidth=0.5)
    assert json.loads(out)["score"] == pytest.approx(ref_rbf.score, abs=1e-12)


def test_text_output_keep_and_transpose(files):
    d, A, B = files
    out = run("compare", str(d / "at.npy"), str(d / "bt.npy"), "--transpose", "--keep", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("svcca similarity: ")
    assert "kept 3 and 3 directions" in out.stdout
    assert float(out.stdout.split()[2]) == pytest.approx(svcca.svcca(A, B, keep=3).score, abs=1e-6)


def test_text_output_of_the_other_measures(files, capsys):
    d, A, B = files
    _, out, _ = compare(capsys, d, "--measure", "procrustes")
    assert re.fullmatch(r"procrustes similarity: [\d.]+  \(distance [\d.]+\)\n", out)
    _, out, _ = compare(capsys, d, "--measure", "regression")
    assert "(R^2 of B from A " in out


# ---------------------------------------------------------------------- one vocabulary
def test_one_vocabulary_for_both_commands(capsys):
    # private: which measures the engine streams in one pass is internal; the CLI must agree
    from svcca._cli._options import MEASURES, PAIRWISE_MEASURES
    from svcca._engines import ONE_PASS_MEASURES as ENGINE_MEASURES

    assert set(PAIRWISE_MEASURES) == set(ENGINE_MEASURES)
    assert tuple(MEASURES) == tuple(svcca.MEASURES)  # the registry's names, in both
    helps = {}
    for command in ("compare", "pairwise"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        helps[command] = capsys.readouterr().out
    for option in ("--measure", "--keep", "--variance", "--epsilon", "--transpose", "--json"):
        assert option in helps["compare"] and option in helps["pairwise"], option
    for name in svcca.MEASURES:
        assert f"{name}:" in helps["compare"] and f"{name}:" in helps["pairwise"]
    assert "--method" not in helps["compare"]


def test_the_pre_release_alias_method_is_gone(files, capsys):
    d, _, _ = files
    with pytest.raises(SystemExit) as exc:  # argparse's own refusal, exit 2
        compare(capsys, d, "--method", "cca", "--json")
    assert exc.value.code == 2
    assert "unrecognized arguments: --method cca" in capsys.readouterr().err
    code, out, _ = compare(capsys, d, "--measure", "cca", "--json")
    assert code == 0 and "method" not in json.loads(out)  # nor the JSON key


# ---------------------------------------------------------------------- errors
def save_raw(path, data):
    path.write_bytes(data)


CASES = {
    # name: (how to make bad.npy, extra args, message)
    "missing": (None, (), r"missing\.npy': no such file\."),
    "text": (
        lambda p: p.write_text("0.1 0.2\n0.3 0.4\n"),
        (),
        r"bad\.npy' is not a NumPy \.npy file: it starts with b'0\.1 0\.', not the \.npy "
        r"signature",
    ),
    "garbage": (
        lambda p: save_raw(p, bytes(range(7, 256)) * 4),
        (),
        r"bad\.npy' is not a NumPy \.npy file",
    ),
    "empty file": (lambda p: save_raw(p, b""), (), r"bad\.npy' is empty \(0 bytes\)"),
    "object array": (
        lambda p: np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True),
        (),
        r"bad\.npy' holds Python objects \(dtype object\).* pickles are never loaded",
    ),
    "complex": (
        lambda p: np.save(p, np.ones((400, 2), dtype=complex)),
        (),
        r"bad\.npy' holds complex numbers; the measures need real numbers",
    ),
    "1-D": (
        lambda p: np.save(p, np.zeros(400)),
        (),
        r"bad\.npy': expected a 2-D array \(n_samples, n_features\); got shape \(400,\)",
    ),
    "no rows": (lambda p: np.save(p, np.zeros((0, 3))), (), r"is empty \(shape \(0, 3\)\)"),
    "other datapoints": (
        lambda p: np.save(p, np.zeros((300, 3))),
        (),
        r"must hold the same datapoints in the same order: '.*a\.npy' has 400 rows and "
        r"'.*bad\.npy' has 300",
    ),
    "one file transposed": (
        lambda p: np.save(p, np.ones((3, 400))),
        (),
        r"bad\.npy' looks saved the other way round: its columns match the 400 datapoints",
    ),
    "npz": (
        lambda p: np.savez(str(p) + ".npz", x=np.zeros((400, 2))),
        (),
        r"bad\.npy\.npz' is an \.npz archive .* run: svcca pairwise .*bad\.npy\.npz",
    ),
    "NaN": (
        lambda p: np.save(p, np.where(np.eye(400, 3) > 0, np.nan, np.arange(400.0)[:, None])),
        (),
        r"contains NaN or inf",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_files_name_the_real_cause(files, capsys, case):
    d, *_ = files
    make, extra, message = CASES[case]
    bad = d / ("missing.npy" if make is None else "bad.npy")
    if make is not None:
        make(bad)
    if case == "npz":
        bad = d / "bad.npy.npz"
    code = main(["compare", str(d / "a.npy"), str(bad), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("svcca compare: error: ") and len(err.splitlines()) == 1, err
    assert re.search(message, err), err
    assert "allow_pickle" not in err and "svcca.compat" not in err


def test_truncated_files_say_truncated(files, capsys):
    d, *_ = files
    raw = (d / "b.npy").read_bytes()  # 128 bytes of header, 400 x 5 float64
    (d / "cut.npy").write_bytes(raw[:-100])
    assert main(["compare", str(d / "a.npy"), str(d / "cut.npy")]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"cut\.npy' is truncated: its header promises a float64 array of shape \(400, 5\) "
        r"\(16000 bytes of data\), but the file holds 15900 bytes after the header",
        err,
    ), err
    (d / "cut.npy").write_bytes(raw[:50])
    assert main(["compare", str(d / "a.npy"), str(d / "cut.npy")]) == 2
    err = capsys.readouterr().err
    assert "cut.npy' is truncated: its .npy header needs 128 bytes, the file has 50." in err
    (d / "cut.npy").write_bytes(raw[:4])
    assert main(["compare", str(d / "a.npy"), str(d / "cut.npy")]) == 2
    assert "cut.npy' is truncated: it ends inside the .npy signature" in capsys.readouterr().err


def test_a_folder_points_to_pairwise(files, capsys):
    d, *_ = files
    assert main(["compare", str(d / "a.npy"), str(d)]) == 2
    err = capsys.readouterr().err
    assert f"'{d}' is a folder; svcca compare takes two .npy files" in err
    assert f"run: svcca pairwise {d}" in err


def test_transposed_files_point_to_transpose(files, capsys):
    d, *_ = files
    assert main(["compare", str(d / "at.npy"), str(d / "bt.npy")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"'.*at\.npy' has 8 rows and '.*bt\.npy' has 5, but every file has 400", err)
    assert "if the files are (neurons, datapoints), as google/svcca saves them, pass " in err
    assert "--transpose." in err and "svcca.compat" not in err
    assert main(["compare", str(d / "a.npy"), str(d / "b.npy"), "--transpose"]) == 2
    err = capsys.readouterr().err
    assert "has 8 columns and" in err and "if the files are (datapoints, neurons), drop" in err


def test_a_constant_layer_exits_2(files, capsys):
    d, *_ = files
    np.save(d / "const.npy", np.full((400, 3), 7.0))
    for measure in ("svcca", "cca", "pwcca", "cka_linear", "procrustes"):
        assert main(["compare", str(d / "a.npy"), str(d / "const.npy"), "--measure", measure]) == 2
        err = capsys.readouterr().err
        assert err.startswith("svcca compare: error: Representation Y (3 features) has nothing")
        assert err.rstrip().endswith(f"(X is '{d / 'a.npy'}', Y is '{d / 'const.npy'}'.)")


def library_message(call, **knob):
    """The message the library's function raises for this knob (on data it accepts)."""
    X, Y = independent_pair(50, 4, 3)
    with pytest.raises((TypeError, ValueError)) as info:
        call(X, Y, **knob)
    return str(info.value)


def test_knob_messages_are_the_librarys(files, capsys):
    def keep_message(value):  # the CLI names --measure cca where Python names svcca.cca
        return "--" + library_message(svcca.svcca, keep=value).replace("svcca.cca", "--measure cca")

    def rbf(X, Y, **knob):
        return svcca.cka(X, Y, kernel="rbf", **knob)

    d, *_ = files
    for args, want in [
        (("--keep", "1.5"), keep_message(1.5)),
        (("--keep", "most"), keep_message("most")),
        (("--measure", "cca", "--epsilon", "1"), "--" + library_message(svcca.cca, epsilon=1)),
        (
            ("--measure", "cca", "--epsilon", "nan"),
            "--" + library_message(svcca.cca, epsilon=np.nan),
        ),
        (
            ("--measure", "cca", "--epsilon", "tiny"),
            "--" + library_message(svcca.cca, epsilon="tiny"),
        ),
        (("--measure", "cka_rbf", "--bandwidth", "-1"), "--" + library_message(rbf, bandwidth=-1)),
    ]:
        code, _, err = compare(capsys, d, *args)
        assert code == 2
        assert err == f"svcca compare: error: {want}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--keep", "1.0"), "--keep must be a number in (0, 1); got 1.0. Pass a fraction"),
        (("--keep", "1.0"), "to keep every direction, use --measure cca (CCA of the whole"),
        (("--keep", "0"), "--keep must be an int >= 1; got 0."),
        (("--keep", "most"), "--keep must be a float in (0, 1) or an int >= 1; got 'most'."),
        (
            ("--variance", "bogus"),
            "--variance must be one of 'explained', 'singular_values'; got 'bogus'.",
        ),
        (("--measure", "bogus"), "--measure must be one of 'svcca', 'cca', 'pwcca', 'pls', "),
        (
            ("--measure", "cca", "--keep", "5"),
            "--keep applies to --measure svcca only, not to cca; drop --keep or change",
        ),
        (("--variance", "explained", "--measure", "pls"), "--variance applies to --measure svcca"),
        (("--epsilon", "0.1"), "--epsilon applies to --measure cca or pwcca only, not to svcca"),
        (
            ("--measure", "cka_linear", "--bandwidth", "2"),
            "--bandwidth applies to --measure cka_rbf",
        ),
    ],
)
def test_bad_options(files, capsys, args, message):
    d, *_ = files
    code, out, err = compare(capsys, d, *args)
    assert code == 2 and out == ""
    assert err.startswith("svcca compare: error: ") and len(err.splitlines()) == 1
    assert message in err


# ---------------------------------------------------------------------- warnings
def test_warnings_are_one_plain_line(files):
    d, A, B = files
    np.save(d / "a10.npy", A[:10])
    np.save(d / "b10.npy", B[:10])
    out = run("compare", str(d / "a10.npy"), str(d / "b10.npy"), "--measure", "cca")
    assert out.returncode == 0
    assert out.stdout.startswith("cca similarity: ")
    (line,) = out.stderr.splitlines()
    assert line.startswith("svcca compare: warning: 10 samples for 8 and 5 dimensions")
    assert "p + q >= n - 1" in line and "inflated" in line
    assert "SVCCAWarning" not in line and ".py:" not in line


def test_warnings_in_process(files, capsys):
    d, A, B = files
    np.save(d / "a10.npy", A[:10])
    np.save(d / "b10.npy", B[:10])
    for _ in range(2):  # every run says it, not only the first in a process
        assert main(["compare", str(d / "a10.npy"), str(d / "b10.npy")]) == 0
        err = capsys.readouterr().err
        assert err.startswith("svcca compare: warning: ") and "p + q >= n - 1" in err
        assert len(err.splitlines()) == 1


# ---------------------------------------------------------------------- the console
def test_console_errors_exit_2_without_traceback(files):
    d, *_ = files
    (d / "notnpy.npy").write_text("hello")
    for args, message in [
        ((str(d / "a.npy"), str(d / "notnpy.npy")), "is not a NumPy .npy file"),
        ((str(d / "a.npy"), str(d / "b.npy"), "--keep", "1.5"), "--keep must be a number"),
    ]:
        out = run("compare", *args)
        assert out.returncode == 2
        assert out.stderr.startswith("svcca compare: error: ") and message in out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1


def test_help_and_no_command():
    assert run("--help").returncode == 0
    assert "compare" in run("compare", "--help").stdout
    assert run().returncode == 2


# ---------------------------------------------------------------------- svcca demo
def test_demo_out_must_not_be_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["demo", "--out", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"svcca demo: error: --out '{tmp_path / 'taken'}' is an existing file")
    assert "Pass a folder (new or existing) instead." in err
    assert main(["demo", "--sanity", "--seeds", "1"]) == 2
    assert "--seeds must be an int >= 2; got 1." in capsys.readouterr().err
