"""``svcca pairwise --uncertainty jackknife``: each cell's interval in the CSV and the
JSON, equal to the library's; interval knobs without --uncertainty are refused."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from svcca import pairwise
from svcca._cli import main


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((500, 3))
    d = tmp_path / "reps"
    d.mkdir()
    arrays = {}
    for i, w in enumerate((5, 4)):
        a = Z @ rng.standard_normal((3, w)) + rng.standard_normal((500, w))
        np.save(d / f"layer{i}.npy", a)
        arrays[f"layer{i}"] = a
    return d, arrays


def test_csv_and_json_carry_each_cells_interval(folder, tmp_path):
    d, arrays = folder
    ref = pairwise(arrays, measure="cca", uncertainty="jackknife", blocks=8, seed=1, level=0.9)
    args = ["pairwise", str(d), "--measure", "cca", "--uncertainty", "jackknife"]
    args += ["--blocks", "8", "--seed", "1", "--level", "0.9"]
    assert main([*args, "-o", str(tmp_path / "m.csv")]) == 0
    lines = list(csv.reader(open(tmp_path / "m.csv")))
    assert lines[0][0].endswith("jackknife 0.9, 8 blocks, seed 1")
    assert lines[0][1:] == ["col", "value", "corrected", "se", "low", "high"]
    assert lines[2][:2] == ["layer0", "layer1"]
    got = [float(v) for v in lines[2][2:]]
    want = [ref.values[0, 1], ref.corrected[0, 1], ref.standard_errors[0, 1]]
    want += [ref.low[0, 1], ref.high[0, 1]]
    assert got == want  # repr round-trips float64 exactly
    assert main([*args, "-o", str(tmp_path / "m.json")]) == 0
    d_json = json.load(open(tmp_path / "m.json"))
    assert d_json["uncertainty"]["blocks"] == 8 and d_json["low"] == ref.low.tolist()


def test_interval_knobs_without_uncertainty_are_refused(folder, capsys):
    d, _ = folder
    assert main(["pairwise", str(d), "--measure", "cca", "--blocks", "8"]) == 2
    assert "--blocks sets the intervals of --uncertainty jackknife" in capsys.readouterr().err
