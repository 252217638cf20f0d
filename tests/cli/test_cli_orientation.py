"""``svcca compare`` names a file saved the other way round whichever file it is.

It said so only when the second file was transposed; a transposed first file got the
generic "must hold the same datapoints".
"""

from __future__ import annotations

import numpy as np
import pytest

from svcca._cli import main


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.standard_normal((400, 8)))
    np.save(tmp_path / "b.npy", rng.standard_normal((400, 5)))
    np.save(tmp_path / "at.npy", rng.standard_normal((8, 400)))
    np.save(tmp_path / "bt.npy", rng.standard_normal((5, 400)))
    return tmp_path


@pytest.mark.parametrize(
    ("first", "second", "flipped"),
    [("a.npy", "bt.npy", "bt.npy"), ("at.npy", "b.npy", "at.npy")],
)
def test_either_file_is_named(folder, capsys, first, second, flipped):
    code = main(["compare", str(folder / first), str(folder / second)])
    err = capsys.readouterr().err
    assert code == 2
    assert (
        f"{flipped}' looks saved the other way round: its columns match the 400 datapoints "
        "of the other file, its rows do not." in err
    )


def test_two_files_each_the_others_transpose_name_both(folder, capsys):
    code = main(["compare", str(folder / "a.npy"), str(folder / "at.npy")])
    err = capsys.readouterr().err
    assert code == 2
    assert "One of the files looks saved the other way round: " in err
    assert "a.npy' is (400, 8) and " in err and "at.npy' is (8, 400) as read" in err


def test_in_a_folder_the_odd_file_out_is_named_first_or_not(folder, tmp_path, capsys):
    rng = np.random.default_rng(1)
    d = tmp_path / "layers"
    d.mkdir()
    np.save(d / "layer0.npy", rng.standard_normal((6, 400)))  # sorted first, flipped
    np.save(d / "layer1.npy", rng.standard_normal((400, 6)))
    np.save(d / "layer2.npy", rng.standard_normal((400, 7)))
    code = main(["pairwise", str(d)])
    err = capsys.readouterr().err
    assert code == 2
    assert "layer0.npy' looks saved the other way round" in err
    assert "the 400 datapoints of the other files" in err
