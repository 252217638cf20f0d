"""The CLI's CSV and JSON record the measure, its parameters and the library version."""

from __future__ import annotations

import csv
import json

import numpy as np

import svcca
from svcca._cli import main


def test_csv_and_json_record_measure_parameters_and_version(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(2):
        np.save(tmp_path / f"l{i}.npy", rng.standard_normal((50, 3 + i)))
    files = [str(tmp_path / "l0.npy"), str(tmp_path / "l1.npy")]
    out = tmp_path / "m.csv"
    assert (
        main(["pairwise", *files, "--measure", "cka_rbf", "--bandwidth", "0.5", "-o", str(out)])
        == 0
    )
    header = next(csv.reader(out.open()))
    assert header == [f"cka_rbf (bandwidth=0.5); svcca {svcca.__version__}", "l0", "l1"]
    assert (
        main(["pairwise", *files, "--measure", "rsa", "--param", "metric=correlation", "--json"])
        == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert got["measure"] == "rsa" and got["settings"] == {"metric": "correlation"}
    assert got["svcca_version"] == svcca.__version__
    assert (
        main(["compare", *files, "--measure", "rsa", "--param", "compare=pearson", "--json"]) == 0
    )
    one = json.loads(capsys.readouterr().out)
    assert one["measure"] == "rsa" and one["settings"] == {"params": {"compare": "pearson"}}
    assert one["svcca_version"] == svcca.__version__
