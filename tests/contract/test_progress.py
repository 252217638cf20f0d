"""One progress contract everywhere: None = only on a terminal, True, False; tqdm optional.

Every long-running function (``svcca.pairwise``, ``svcca.stats``, ``svcca.torch``'s
captures) goes through ``svcca._progress``. Terminals are simulated by replacing
``sys.stderr`` with a text buffer whose ``isatty`` says what the test wants; a missing
tqdm by ``sys.modules["tqdm"] = None``, which makes ``import tqdm`` raise ImportError.
"""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest

import svcca

# private: the one helper every function reports through (its contract is also checked
# through every public function below)
import svcca._progress as prog
from svcca import stats


class FakeStderr(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def stderr(monkeypatch):
    """``stderr(tty)`` installs a fake stderr and returns it."""

    def install(tty: bool) -> FakeStderr:
        fake = FakeStderr(tty)
        monkeypatch.setattr(sys, "stderr", fake)
        return fake

    return install


@pytest.fixture
def no_tqdm(monkeypatch):
    """tqdm not installed, and the once-per-process warning not yet given."""
    for name in [m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")] + ["tqdm"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(prog, "_warned_no_tqdm", False)


def _pair(n=40, p=4, q=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    return X, X[:, :q] + 0.5 * rng.standard_normal((n, q))


def _net_and_batches():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    return net, list(torch.randn(20, 4).split(5))


# Every public function with ``progress=``: a call, and the label its bar carries.
def _pairwise(progress):
    X, Y = _pair()
    return svcca.pairwise({"a": X, "b": Y}, measure="cca", progress=progress).values


def _permutation(progress):
    X, Y = _pair()
    r = stats.permutation_test(svcca.cka, X, Y, n_permutations=9, seed=0, progress=progress)
    return r.null_distribution


def _bootstrap(progress):
    X, Y = _pair()
    r = stats.bootstrap(svcca.cka, X, Y, n_resamples=5, seed=0, progress=progress)
    return r.distribution


def _null_baseline(progress):
    X, Y = _pair()
    return stats.null_baseline(svcca.cka, X, Y, n_repeats=3, seed=0, progress=progress).scores


def _datapoints_curve(progress):
    curve = stats.datapoints_curve(
        svcca.cka, 2, 2, sizes=[8, 16], n_repeats=2, seed=0, progress=progress
    )
    return curve.scores


def _capture(progress):
    net, batches = _net_and_batches()
    import svcca.torch as st

    return st.capture(net, batches, ["1"], progress=progress)["1"]


def _capture_moments(progress):
    net, batches = _net_and_batches()
    import svcca.torch as st

    return st.capture_moments(net, batches, [("0", "1")], progress=progress)[("0", "1")].sxy


CALLS = {
    "pairwise": (_pairwise, "pairs"),
    "permutation_test": (_permutation, "permutations"),
    "bootstrap": (_bootstrap, "bootstrap"),
    "null_baseline": (_null_baseline, "null baseline"),
    "datapoints_curve": (_datapoints_curve, "datapoints curve"),
    "torch.capture": (_capture, "capture"),
    "torch.capture_moments": (_capture_moments, "moments"),
}


# ---------------------------------------------------------------------- the contract
@pytest.mark.parametrize(
    ("value", "tty", "shown"),
    [
        (None, True, True),
        (None, False, False),
        (True, False, True),
        (True, True, True),
        (False, True, False),
        (False, False, False),
        (np.bool_(True), False, True),
    ],
)
def test_check_progress(stderr, value, tty, shown):
    stderr(tty)
    assert prog.check_progress(value) is shown


def test_none_without_a_usable_stderr_shows_nothing(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)  # pythonw, some daemons
    assert prog.check_progress(None) is False


@pytest.mark.parametrize("bad", ["yes", "auto", 1, 0, 1.0, [], "True"])
def test_check_progress_refuses_other_values(bad):
    with pytest.raises(TypeError, match=r"progress must be True or False, or None .*got"):
        prog.check_progress(bad)


def test_progress_class_reports_and_clears(stderr, no_tqdm):
    fake = stderr(False)
    with pytest.warns(UserWarning, match="need tqdm"):
        bar = prog.Progress(True, 3, "work")
    for _ in range(3):
        bar.update(1)
    bar.retotal(4)
    bar.update(1)
    bar.close()
    bar.close()  # idempotent
    out = fake.getvalue()
    assert "work: 3/3" in out and "work: 4/4" in out
    assert out.endswith("\r")  # the counter's line is cleared, as tqdm(leave=False) does


def test_plain_counter_with_unknown_total(stderr, no_tqdm):
    fake = stderr(False)
    with pytest.warns(UserWarning), prog.Progress(True, None, "batches") as bar:
        bar.update(2)
        bar.retotal(None)
    assert "batches: 2" in fake.getvalue()


# ---------------------------------------------------------------------- every function
@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize(
    ("value", "tty", "shown"),
    [(None, True, True), (None, False, False), (True, False, True), (False, True, False)],
)
def test_every_function_follows_the_contract(stderr, name, value, tty, shown):
    call, label = CALLS[name]
    fake = stderr(tty)
    out = call(value)
    written = fake.getvalue()
    if shown:
        assert label in written
    else:
        assert written == ""
    stderr(False)
    np.testing.assert_array_equal(out, call(False))  # a bar never changes a number


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("bad", ["yes", 1])
def test_every_function_refuses_bad_progress(name, bad):
    call, _ = CALLS[name]
    with pytest.raises(TypeError, match="progress must be True or False"):
        call(bad)


def test_capture_to_disk_refuses_bad_progress_even_when_finished(tmp_path):
    net, batches = _net_and_batches()
    import svcca.torch as st

    st.capture_to_disk(net, batches, ["1"], tmp_path)
    with pytest.raises(TypeError, match="progress must be True or False"):
        st.capture_to_disk(net, batches, ["1"], tmp_path, progress="yes")


# ---------------------------------------------------------------------- tqdm missing
def test_without_tqdm_one_warning_per_process_and_no_crash(stderr, no_tqdm):
    pytest.importorskip("torch")
    fake = stderr(False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the once-only is ours, not the registry's
        results = {name: call(True) for name, (call, _) in CALLS.items()}
    mine = [w for w in caught if "tqdm" in str(w.message)]
    assert len(mine) == 1, [str(w.message) for w in mine]
    assert issubclass(mine[0].category, UserWarning)
    assert "pip install tqdm" in str(mine[0].message)
    written = fake.getvalue()
    for _, label in CALLS.values():
        assert label in written  # the plain counter stands in for the bar
    stderr(False)
    for name, (call, _) in CALLS.items():
        np.testing.assert_array_equal(results[name], call(False))


def test_without_tqdm_progress_false_or_off_terminal_warns_nothing(stderr, no_tqdm):
    stderr(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _pairwise(False)
        _bootstrap(None)
    assert prog._warned_no_tqdm is False
