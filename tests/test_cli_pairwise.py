"""``svcca pairwise``: files in, matrix out, errors in one line, no half-written outputs."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

import svcca
from svcca.cli import main
from svcca.engines._pairwise import pairwise


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
    assert header == ["cca", "layer0", "layer1", "layer2"]
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
    assert "sketch_size applies to measure='svcca' only" in capsys.readouterr().err


def test_heatmap_png(folder, tmp_path):
    pytest.importorskip("matplotlib")
    d, _ = folder
    out = tmp_path / "heat.png"
    assert main(["pairwise", str(d), "--heatmap", str(out), "-o", str(tmp_path / "m.csv")]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("hello"), r"bad\.npy' is not a readable \.npy array"),
        (lambda p: p.write_bytes(b""), r"bad\.npy' is not a readable \.npy array"),
        (lambda p: np.save(p, np.zeros(600)), r"bad\.npy': expected a 2-D array"),
        (lambda p: np.save(p, np.zeros((599, 3))), r"Representation 'bad' has 599 samples"),
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
    assert "cut.npy' is not a readable .npy array" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "m.txt"], "--output must end in .csv or .json"),
        (["--heatmap", "m.jpg"], "--heatmap must name a .png"),
        (["--keep", "lots"], "--keep must be a fraction"),
        (["--chunk-size", "0"], "--chunk-size must be a positive integer"),
        (["--output", "nowhere/m.csv"], "does not exist"),
    ],
)
def test_bad_options(folder, tmp_path, capsys, monkeypatch, args, message):
    d, _ = folder
    monkeypatch.chdir(tmp_path)
    assert main(["pairwise", str(d), *args]) == 2
    assert message in capsys.readouterr().err


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


def test_interrupted_run_leaves_no_output_files(folder, tmp_path, monkeypatch):
    d, _ = folder
    import svcca.cli._pairwise as clip

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
    # interrupted while writing the matrix: nothing is left behind
    monkeypatch.setattr(clip, "_csv_text", explode)
    assert main(["pairwise", str(d), "-o", str(tmp_path / "n.csv")]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "reps"]

    with clip._atomic(str(tmp_path / "ok.csv")) as fh:
        fh.write("fine")
    assert (tmp_path / "ok.csv").read_text() == "fine"
    with pytest.raises(RuntimeError), clip._atomic(str(tmp_path / "no.csv")) as fh:
        fh.write("half")
        raise RuntimeError("stop")
    assert not (tmp_path / "no.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv", "ok.csv", "reps"]
