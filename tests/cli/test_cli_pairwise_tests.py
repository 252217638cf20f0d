"""``svcca pairwise --test``: each cell's p-value in the CSV and the JSON, equal to the
library's; the test's knobs without --test are refused."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from svcca import pairwise
from svcca._cli import main


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((300, 2))
    d = tmp_path / "reps"
    d.mkdir()
    arrays = {
        "a": Z @ rng.standard_normal((2, 4)) + rng.standard_normal((300, 4)),
        "b": Z @ rng.standard_normal((2, 3)) + rng.standard_normal((300, 3)),
        "c": rng.standard_normal((300, 3)),
    }
    for k, a in arrays.items():
        np.save(d / f"{k}.npy", a)
    return d, arrays


def test_asymptotic_pvalues_in_the_csv(folder, tmp_path):
    d, arrays = folder
    ref = pairwise(arrays, measure="cca", test="asymptotic")
    assert main(["pairwise", str(d), "--measure", "cca", "--test", "asymptotic",
                 "-o", str(tmp_path / "m.csv")]) == 0  # fmt: skip
    lines = list(csv.reader(open(tmp_path / "m.csv")))
    assert lines[0][0].endswith("asymptotic bartlett test")
    assert lines[0][1:] == ["col", "value", "pvalue"]
    assert lines[1][:2] == ["a", "a"] and math.isnan(float(lines[1][3]))
    assert lines[2][:2] == ["a", "b"] and float(lines[2][3]) == ref.pvalues[0, 1]


def test_permutation_pvalues_with_intervals_in_the_json(folder, tmp_path):
    d, arrays = folder
    ref = pairwise(arrays, measure="cka_rbf", test="permutation", permutations=49, seed=2,
                   uncertainty="jackknife", blocks=5)  # fmt: skip
    args = ["pairwise", str(d), "--measure", "cka_rbf", "--test", "permutation"]
    args += ["--permutations", "49", "--seed", "2", "--uncertainty", "jackknife", "--blocks", "5"]
    assert main([*args, "-o", str(tmp_path / "m.json")]) == 0
    got = json.load(open(tmp_path / "m.json"))
    assert got["test"] == {"method": "permutation", "permutations": 49, "seed": 2, "family_size": 3}
    assert got["pvalues"][0][0] is None and got["pvalues"][0][2] == ref.pvalues[0, 2]
    assert got["uncertainty"]["blocks"] == 5 and got["low"][0][1] == ref.low[0, 1]


def test_test_knobs_without_the_test_are_refused(folder, capsys):
    d, _ = folder
    assert main(["pairwise", str(d), "--permutations", "9"]) == 2
    assert "--permutations sets the permutations of --test permutation" in capsys.readouterr().err
    assert main(["pairwise", str(d), "--seed", "3", "--test", "asymptotic"]) == 2
    assert "--seed sets the intervals of --uncertainty jackknife (or the permutations of" in (
        capsys.readouterr().err
    )
