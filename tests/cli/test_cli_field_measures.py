"""The field's measures on the command line: a distance is printed as a distance."""

from __future__ import annotations

import json

import numpy as np
import pytest

import svcca
from svcca._cli import main


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((120, 5))
    B = np.tanh(A[:, :3]) + 0.3 * rng.standard_normal((120, 3))
    np.save(tmp_path / "a.npy", A)
    np.save(tmp_path / "b.npy", B)
    return tmp_path, A, B


@pytest.mark.parametrize(
    ("measure", "word"), [("gulp", "distance"), ("distance_correlation", "similarity")]
)
def test_the_summary_line_says_distance_or_similarity(files, capsys, measure, word):
    d, A, B = files
    assert main(["compare", str(d / "a.npy"), str(d / "b.npy"), "--measure", measure]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{measure} {word}: ")
    assert float(out.split(": ")[1].split()[0]) == pytest.approx(
        svcca.MEASURES[measure].score(A, B), abs=1e-6
    )


def test_params_reach_the_measure(files, capsys):
    d, A, B = files
    args = ["compare", str(d / "a.npy"), str(d / "b.npy"), "--measure", "rsm_norm_difference"]
    assert main([*args, "--param", "norm=triangle", "--param", "block_size=7", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = svcca.MEASURES["rsm_norm_difference"](A, B, norm="triangle").distance
    assert got["score"] == pytest.approx(want, rel=1e-12)
