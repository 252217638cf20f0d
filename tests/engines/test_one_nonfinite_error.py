"""NaN or inf in a representation is refused in one wording, whichever path meets it.

Every path (whole arrays, the host chunk loops of ``pairwise`` and ``Moments``, batches,
``svcca.torch.compare``, the torch device accumulator, conv maps, the google/svcca
orientation) names the representation and the offending rows, then says the same thing:
what to do and why.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import svcca

# the one wording: "<name> contains NaN or inf in <where>. Remove or impute those <unit>
# in every representation before comparing: similarity of non-finite values is undefined"
ONE = re.compile(
    r"^(?P<name>.+) contains NaN or inf in (?P<where>.+)\. Remove or impute those "
    r"(?P<unit>\w+) in every representation before comparing: similarity of non-finite "
    r"values is undefined"
)


def _data(n=300, p=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    return X, X @ rng.standard_normal((p, p)) + 0.1 * rng.standard_normal((n, p))


def _message(fn) -> str:
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def _host_cases():
    X, Y = _data()
    bad = X.copy()
    bad[[3, 8], 1] = np.nan
    late = X.copy()
    late[137, 0] = np.inf
    yield "cca", _message(lambda: svcca.cca(bad, Y)), "X", r"2 of its 300 rows \(first: \[3, 8\]\)"
    yield (
        "pairwise chunk",
        _message(lambda: svcca.pairwise({"a": late, "b": Y}, measure="cca", chunk_size=100)),
        "Representation 'a'",
        r"rows \[137\] \(first shown; of rows 100:200\)",
    )
    conv = np.random.default_rng(1).standard_normal((20, 4, 4, 3))
    conv[[3, 7], 1, 2, 0] = np.nan
    yield (
        "conv",
        _message(lambda: svcca.conv.fourier_cca(conv, conv + 1.0, layout="nhwc")),
        ".+",
        r"2 of its 20 samples \(first: \[3, 7\]\)",
    )
    yield (
        "compat",
        _message(lambda: svcca.compat.get_cca_similarity(bad.T, Y.T)),
        ".+",
        r"2 of its 300 datapoints \(first: \[3, 8\]\)",
    )


@pytest.mark.parametrize("case", ["cca", "pairwise chunk", "conv", "compat"])
def test_host_paths_word_it_once(case):
    for name, msg, who, where in _host_cases():
        if name != case:
            continue
        m = ONE.match(msg)
        assert m is not None, msg
        assert re.fullmatch(who, m["name"]), msg
        assert re.fullmatch(where, m["where"]), msg
        return
    raise AssertionError(f"no case {case}")


def test_batches_number_rows_within_their_batch():
    X, Y = _data()
    late = X.copy()
    late[160, 0] = np.nan  # row 10 of batch 1
    msg = _message(
        lambda: svcca.Moments.from_batches([(X[:150], Y[:150]), (late[150:], Y[150:])])
    )
    m = ONE.match(msg)
    assert m is not None, msg
    assert m["name"] == "X (batch 1)" and m["where"] == "1 of its 150 rows (first: [10])", msg


def test_compare_and_the_device_accumulator_word_it_once():
    torch = pytest.importorskip("torch")
    import svcca.torch

    nn = torch.nn
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4))
    b = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4))
    x = list(torch.randn(120, 5).split(40))
    x[1] = x[1].clone()
    x[1][7, 2] = float("nan")
    for measure in ("cca", "cka_linear"):
        msg = _message(lambda m=measure: svcca.torch.compare(a, b, x, ["0"], measure=m))
        m = ONE.match(msg)
        assert m is not None, msg
        assert m["name"] == "Layer '0' of model_a", msg
        assert m["where"] == "rows [7] (first shown) (batch 1)", msg
    X, Y = _data()
    X[250, 3] = -np.inf
    with svcca.on_device("cpu"):
        msg = _message(
            lambda: svcca.Moments.from_arrays(
                torch.from_numpy(X), torch.from_numpy(Y), chunk_size=100
            )
        )
    m = ONE.match(msg)
    assert m is not None, msg
    assert m["name"] == "X" and m["where"].startswith("rows [250] (first shown; of rows 200:"), msg
