"""``svcca pairwise``: files in, matrix out, errors in one line, no half-written outputs."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

import svcca
from svcca import pairwise
from svcca._cli import main


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((600, 4))
    d = tmp_path / "reps"
    d.mkdir()
    arrays = {}
    for i, w in enumerate((6, 8, 5)):
        a = np.tanh(Z @ rng.standard_normal((4, w))) + 0.1 * rng.standard_normal((600, w))
        np.save(d / f"layer{i}.npy", a)
        arrays[f"layer{i}"] = a
    return d, arrays


def read_csv(path):
    rows = list(csv.reader(open(path)))
    return rows[0], {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}


def test_folder_to_csv_and_json_match_the_library(folder, tmp_path):
    d, arrays = folder
    ref = pairwise(arrays, measure="cca")
    assert main(["pairwise", str(d), "--measure", "cca", "-o", str(tmp_path / "m.csv")]) == 0
    header, body = read_csv(tmp_path / "m.csv")
    # the corner records the measure, its settings and the library version
    corner = f"cca (epsilon=0.0); svcca {svcca.__version__}"
    assert header == [corner, "layer0", "layer1", "layer2"]
    np.testing.assert_allclose([body[k] for k in ref.rows], ref.values, rtol=0, atol=1e-15)
    assert main(["pairwise", str(d), "--measure", "cca", "-o", str(tmp_path / "m.json")]) == 0
    data = json.loads((tmp_path / "m.json").read_text())
    np.testing.assert_allclose(data["values"], ref.values, atol=1e-15)
    assert data["rows"] == list(ref.rows) and data["n_samples"] == 600


def test_file_list_rectangular_npz_and_stdout(folder, tmp_path, capsys):
    d, arrays = folder
    files = [str(d / "layer0.npy"), str(d / "layer2.npy")]
    assert main(["pairwise", *files, "--cols", str(d / "layer1.npy"), "--keep", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"] == ["layer0", "layer2"] and data["cols"] == ["layer1"]
    ref = svcca.svcca(arrays["layer2"], arrays["layer1"], keep=3).score
    assert data["values"][1][0] == pytest.approx(ref, abs=1e-12)
    np.savez(tmp_path / "all.npz", **arrays)
    assert main(["pairwise", str(tmp_path / "all.npz"), "--measure", "pls"]) == 0
    header, body = read_csv_text(capsys.readouterr().out)
    assert body["layer1"][2] == pytest.approx(svcca.pls(arrays["layer1"], arrays["layer2"]).score)
    # (neurons, datapoints) files
    np.save(tmp_path / "t0.npy", arrays["layer0"].T)
    np.save(tmp_path / "t1.npy", arrays["layer1"].T)
    assert (
        main(["pairwise", str(tmp_path / "t0.npy"), str(tmp_path / "t1.npy"), "--transpose"]) == 0
    )
    _, body = read_csv_text(capsys.readouterr().out)
    assert body["t0"][1] == pytest.approx(svcca.svcca(arrays["layer0"], arrays["layer1"]).score)


def read_csv_text(text):
    rows = list(csv.reader(text.splitlines()))
    return rows[0], {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}


def test_sketch_size_option(folder, tmp_path, capsys):
    d, arrays = folder
    assert main(["pairwise", str(d), "--keep", "3", "--sketch-size", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["settings"]["sketch_size"] == 5
    ref = pairwise(arrays, measure="svcca", keep=3, sketch_size=5)
    np.testing.assert_allclose(data["values"], ref.values, atol=1e-15)
    assert main(["pairwise", str(d), "--measure", "cca", "--sketch-size", "5"]) == 2
    assert "--sketch-size applies to --measure svcca only, not to cca" in capsys.readouterr().err
    assert main(["pairwise", str(d), "--sketch-size", "0"]) == 2
    assert "error: --sketch-size must be an int >= 1; got 0." in capsys.readouterr().err


def test_heatmap_png(folder, tmp_path):
    pytest.importorskip("matplotlib")
    d, _ = folder
    out = tmp_path / "heat.png"
    assert main(["pairwise", str(d), "--heatmap", str(out), "-o", str(tmp_path / "m.csv")]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("hello"), r"bad\.npy' is not a NumPy \.npy file"),
        (lambda p: p.write_bytes(b""), r"bad\.npy' is empty \(0 bytes\), not a NumPy \.npy"),
        (lambda p: np.save(p, np.zeros(600)), r"bad\.npy': expected a 2-D array"),
        (
            lambda p: np.save(p, np.zeros((599, 3))),
            r"same datapoints in the same order: '.*layer0\.npy' has 600 rows and "
            r"'.*bad\.npy' has 599",
        ),
        (
            lambda p: np.save(p, np.array([None, 1], dtype=object), allow_pickle=True),
            r"bad\.npy' holds Python objects \(dtype object\).* pickles are never loaded",
        ),
        (lambda p: np.save(p, np.ones((600, 2), "U3")), r"bad\.npy' holds values of dtype <U3"),
    ],
)
def test_bad_files_are_named(folder, tmp_path, capsys, make, message):
    d, _ = folder
    make(tmp_path / "bad.npy")
    assert main(["pairwise", str(d / "layer0.npy"), str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("svcca pairwise: error:") and len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_truncated_file_is_named(folder, tmp_path, capsys):
    d, _ = folder
    raw = (d / "layer1.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) - 100])
    assert main(["pairwise", str(d / "layer0.npy"), str(tmp_path / "cut.npy")]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"cut\.npy' is truncated: .*\(38400 bytes of data\), but the file holds 38300", err
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "m.txt"], "--output must end in .csv or .json"),
        (["--heatmap", "m.jpg"], "--heatmap must name a .png"),
        (["--keep", "lots"], "--keep must be a float in (0, 1) or an int >= 1; got 'lots'."),
        (["--keep", "1.0"], "--keep must be a number in (0, 1); got 1.0."),
        (["--variance", "all"], "--variance must be one of 'explained', 'singular_values'"),
        (["--measure", "cca", "--epsilon", "-1"], "--epsilon must be a number in [0, 1); got -1."),
        (["--epsilon", "0.1"], "--epsilon applies to --measure cca or pwcca only, not to svcca"),
        (["--measure", "pls", "--keep", "3"], "--keep applies to --measure svcca only, not to pls"),
        (["--chunk-size", "0"], "--chunk-size must be an int >= 1; got 0. Omit --chunk-size"),
        (["--chunk-size", "1.5"], "--chunk-size must be an int >= 1; got 1.5."),
        (["--measure", "bogus"], "--measure must be one of 'svcca', 'cca', 'pwcca', 'pls', "),
        (
            ["--measure", "cka_rbf", "--param", "alpha=1"],
            "Measure 'cka_rbf' takes no parameter 'alpha'; it takes: bandwidth, sigma. (see "
            "svcca measures)",
        ),
        (["--measure", "rsa", "--param", "metric"], "--param expects KEY=VALUE"),
        (["--measure", "cka_rbf", "--param", "bandwidth=2"], "is given as --bandwidth 2"),
        (
            ["--measure", "rsa", "--param", "metric=euclidean", "--param", "metric=x"],
            "--param metric is given twice",
        ),
        (["--measure", "cca", "--param", "threshold=0.9"], "takes its knobs as flags"),
        (["--output", "nowhere/m.csv"], "does not exist"),
    ],
)
def test_bad_options(folder, tmp_path, capsys, monkeypatch, args, message):
    d, _ = folder
    monkeypatch.chdir(tmp_path)
    assert main(["pairwise", str(d), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("svcca pairwise: error: ") and len(err.splitlines()) == 1
    assert message in err


def test_bad_inputs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["pairwise", str(tmp_path / "empty")]) == 2
    assert "folder holds no .npy files" in capsys.readouterr().err
    np.savez(tmp_path / "a.npz", x=np.zeros((5, 2)))
    assert main(["pairwise", str(tmp_path / "a.npz"), str(tmp_path / "a.npz")]) == 2
    assert "pass a single .npz alone" in capsys.readouterr().err
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04garbage")
    assert main(["pairwise", str(tmp_path / "broken.npz")]) == 2
    assert "broken.npz' is not a readable .npz archive" in capsys.readouterr().err
    np.savez(tmp_path / "flat.npz", x=np.zeros(5))
    assert main(["pairwise", str(tmp_path / "flat.npz")]) == 2
    assert "array 'x' has shape (5,)" in capsys.readouterr().err
    np.savez(tmp_path / "none.npz")
    assert main(["pairwise", str(tmp_path / "none.npz")]) == 2
    assert "holds no arrays" in capsys.readouterr().err
    assert main(["pairwise", str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    assert main(["pairwise", str(tmp_path / "x.npy"), str(tmp_path / "x.npy")]) == 2
    assert "given twice" in capsys.readouterr().err


def test_settings_reach_the_engine(folder, capsys):
    d, arrays = folder
    for args, kwargs in [
        (
            ["--keep", "0.9", "--variance", "singular_values"],
            {"keep": 0.9, "variance": "singular_values"},
        ),
        (["--measure", "pwcca", "--epsilon", "0.05"], {"measure": "pwcca", "epsilon": 0.05}),
        (["--measure", "cka_linear"], {"measure": "cka_linear"}),
    ]:
        assert main(["pairwise", str(d), "--json", *args]) == 0
        data = json.loads(capsys.readouterr().out)
        ref = pairwise(arrays, **kwargs)
        assert data["settings"] == dict(ref.settings)
        np.testing.assert_allclose(data["values"], ref.values, rtol=0, atol=1e-15)


def test_transposed_files_point_to_transpose(folder, tmp_path, capsys):
    d, arrays = folder
    t = tmp_path / "t"
    t.mkdir()
    for name, a in arrays.items():
        np.save(t / f"{name}.npy", a.T)
    assert main(["pairwise", str(t)]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"'.*layer0\.npy' has 6 rows and '.*layer1\.npy' has 8, but every file has 600 columns", err
    )
    assert (
        "if the files are (neurons, datapoints), as google/svcca saves them, pass --transpose."
        in err
    )
    assert "svcca.compat" not in err
    assert main(["pairwise", str(d), "--transpose"]) == 2
    assert "if the files are (datapoints, neurons), drop --transpose." in capsys.readouterr().err
    # the columns are checked with the rows
    assert main(["pairwise", str(d / "layer0.npy"), "--cols", str(t / "layer1.npy")]) == 2
    assert "layer1.npy' looks saved the other way round" in capsys.readouterr().err


def test_bad_npz_members(tmp_path, capsys):
    ok = np.zeros((5, 2))
    np.savez(tmp_path / "obj.npz", x=ok, y=np.array([None, 2], dtype=object))
    assert main(["pairwise", str(tmp_path / "obj.npz")]) == 2
    err = capsys.readouterr().err
    assert "obj.npz': array 'y' holds Python objects (dtype object)" in err
    assert "pickles are never loaded" in err and "allow_pickle" not in err
    np.savez(tmp_path / "cplx.npz", x=ok, y=ok.astype(complex))
    assert main(["pairwise", str(tmp_path / "cplx.npz")]) == 2
    assert "array 'y' holds values of dtype complex128" in capsys.readouterr().err


def test_a_constant_layer_exits_2(folder, capsys):
    d, _ = folder
    np.save(d / "const.npy", np.zeros((600, 4)))
    for measure in ("svcca", "cca", "pls"):
        assert main(["pairwise", str(d), "--measure", measure]) == 2
        err = capsys.readouterr().err
        assert err.startswith("svcca pairwise: error: Representation 'const' (4 features) has ")
        assert "nothing to compare" in err and len(err.splitlines()) == 1


def test_warnings_are_one_plain_line(folder, tmp_path, capsys):
    _, arrays = folder
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a[:12])
    assert main(["pairwise", *(str(tmp_path / f"{k}.npy") for k in arrays)]) == 0
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("svcca pairwise: warning: ") and "too few samples" in line
    assert "SVCCAWarning" not in line and ".py:" not in line


def test_interrupted_run_leaves_no_output_files(folder, tmp_path, monkeypatch):
    d, _ = folder

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    # interrupted while drawing: the CSV is complete, the PNG never appears
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda self, fh, **kw: (fh.write(b"half"), explode())
    )
    assert (
        main(
            [
                "pairwise",
                str(d),
                "-o",
                str(tmp_path / "m.csv"),
                "--heatmap",
                str(tmp_path / "h.png"),
            ]
        )
        == 130
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "reps"]
    # interrupted while writing the matrix (in the csv module): nothing is left behind
    import csv

    monkeypatch.setattr(csv, "writer", explode)
    assert main(["pairwise", str(d), "-o", str(tmp_path / "n.csv")]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "reps"]
    # (a half-written file never appears: the heatmap above was interrupted mid-write)


def test_every_registered_measure_with_its_parameters_and_the_version_recorded(folder, capsys):
    d, arrays = folder
    code = main(["pairwise", str(d), "--measure", "shape_distance", "--param", "alpha=0.5",
                 "--json"])
    assert code == 0
    got = json.loads(capsys.readouterr().out)
    assert got["measure"] == "shape_distance"
    assert got["settings"] == {"alpha": 0.5}  # the measure's parameters
    assert got["svcca_version"] == svcca.__version__
    a, b = arrays["layer0"], arrays["layer2"]
    assert got["values"][0][2] == pytest.approx(
        svcca.shape_distance(a, b, alpha=0.5).score, abs=1e-12
    )
    assert main(["pairwise", str(d), "--measure", "cka_rbf", "--bandwidth", "0.5", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["settings"] == {"bandwidth": 0.5}
    want = svcca.cka(a, b, kernel="rbf", bandwidth=0.5).score
    assert got["values"][0][2] == pytest.approx(want, abs=1e-12)
