"""Files the library opens itself are read by positioned reads: a file that shrinks
during a run gives an error naming it, never a SIGBUS death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import svcca
from svcca._sources import load_array


def _env():
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(svcca.__file__))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def write(path, n=20_000, p=40, seed=0, fortran=False):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p))
    np.save(path, np.asfortranarray(A) if fortran else A)
    return A


@pytest.mark.parametrize("fortran", [False, True])
def test_rows_read_by_positioned_reads_equal_the_array(tmp_path, fortran):
    A = write(tmp_path / "a.npy", n=1000, p=7, fortran=fortran)
    f = load_array(tmp_path / "a.npy")
    assert f.shape == (1000, 7) and f.dtype == np.float64 and f.ndim == 2
    np.testing.assert_array_equal(f[10:333], A[10:333])
    np.testing.assert_array_equal(f[990:2000], A[990:])  # slices clip as NumPy's do
    np.testing.assert_array_equal(f.T[2:5], A.T[2:5])  # rows of the transpose: columns
    np.testing.assert_array_equal(np.asarray(f.T), A.T)
    np.testing.assert_array_equal(np.asarray(f), A)
    np.testing.assert_array_equal(f[3], A[3])
    ref = svcca.cca(A[:, :4], A[:, 4:] + A[:, :3]).score
    B = A[:, 4:] + A[:, :3]
    np.save(tmp_path / "b.npy", B)
    assert svcca.cca(f[:, :4], load_array(tmp_path / "b.npy")).score == pytest.approx(ref)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("transpose", [False, True])
def test_paths_in_pairwise_equal_the_arrays(tmp_path, precision, transpose):
    rng = np.random.default_rng(4)
    arrays = {
        "a": rng.standard_normal((900, 6)).astype(np.float32),
        "b": np.asfortranarray(rng.standard_normal((900, 5))),
        "c": rng.integers(0, 5, (900, 4)).astype(np.int16),
    }
    paths = {}
    for k, A in arrays.items():
        np.save(tmp_path / f"{k}.npy", A.T if transpose else A)
        f = load_array(tmp_path / f"{k}.npy")
        paths[k] = f.T if transpose else f
    for kw in ({}, {"chunk_size": 128}):
        got = svcca.pairwise(paths, measure="cca", precision=precision, **kw).values
        ref = svcca.pairwise(arrays, measure="cca", precision=precision, **kw).values
        # the same rows in the same chunks: the same arithmetic
        np.testing.assert_array_equal(got, ref)


def test_reads_without_preadv_seek_under_a_lock(tmp_path, monkeypatch):
    A = write(tmp_path / "a.npy", n=500, p=6)
    monkeypatch.delattr(os, "preadv", raising=False)  # as on Windows
    f = load_array(tmp_path / "a.npy")
    np.testing.assert_array_equal(f[100:250], A[100:250])
    np.testing.assert_array_equal(f.T[1:3], A.T[1:3])
    os.truncate(tmp_path / "a.npy", 2000)
    with pytest.raises(ValueError, match=r"a\.npy' shrank while it was being read: it ends at"):
        f[100:250]


CHILD = """
import sys
import numpy as np
import svcca
from svcca._sources import load_array
A, B = load_array(sys.argv[1]), load_array(sys.argv[2])
print("opened", flush=True)
sys.stdin.readline()  # the parent truncates A now
try:
    svcca.{call}
except ValueError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
"""


@pytest.mark.parametrize(
    "call",
    [
        "cca(A, B)",  # streamed in chunks
        "cka(A, B, kernel='rbf')",  # read whole by np.asarray
        "pairwise({'a': A, 'b': B}, measure='cca', chunk_size=500)",
    ],
)
def test_a_file_truncated_after_opening_is_a_clear_error(tmp_path, call):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    write(a, n=3000, p=20)
    write(b, n=3000, p=10, seed=1)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.replace("{call}", call), str(a), str(b)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(),
    )  # fmt: skip
    assert child.stdout.readline().strip() == "opened"
    os.truncate(a, os.path.getsize(a) // 2)
    _, err = child.communicate("go\n", timeout=120)
    assert child.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert child.returncode == 3, err
    assert f"{str(a)!r} shrank while it was being read" in err
    assert "Was it truncated or rewritten during the run?" in err


def _cli_race(tmp_path, seed: int) -> subprocess.CompletedProcess:
    """``svcca pairwise`` on two files, one truncated at a random moment (seeded) after
    the CLI has opened it: before the first chunk, or between chunks of either pass."""
    rng = np.random.default_rng(seed)
    a, b = tmp_path / f"a{seed}.npy", tmp_path / f"b{seed}.npy"
    write(a, n=60_000, p=40, seed=seed)
    write(b, n=60_000, p=30, seed=seed + 1)
    cut = int(os.path.getsize(a) * rng.uniform(0.05, 0.95))
    child = subprocess.Popen(
        [sys.executable, "-m", "svcca", "pairwise", str(a), str(b), "--measure", "cca",
         "--chunk-size", "100", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    fds = f"/proc/{child.pid}/fd"
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        try:
            if any(os.path.realpath(os.path.join(fds, f)) == str(a) for f in os.listdir(fds)):
                break
        except OSError:  # the process or one of its descriptors went away meanwhile
            pass
        time.sleep(0.0005)
    time.sleep(rng.uniform(0.0, 0.05))
    os.truncate(a, cut)
    out, err = child.communicate(timeout=120)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _check_race(tmp_path, seeds):
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to see when the CLI has opened the file")
    for seed in seeds:
        r = _cli_race(tmp_path, seed)
        assert r.returncode != -signal.SIGBUS, f"seed {seed}: killed by SIGBUS"
        if r.returncode == 0:  # the run finished before the cut: a right answer
            continue
        assert r.returncode == 2, (seed, r.stderr)
        assert r.stderr.count("\n") == 1 and "a" + str(seed) + ".npy" in r.stderr, r.stderr
        assert "shrank while it was being read" in r.stderr or "is truncated" in r.stderr


@pytest.mark.faults
def test_the_cli_reports_a_file_truncated_under_it(tmp_path):
    _check_race(tmp_path, seeds=[0, 1])


@pytest.mark.faults
@pytest.mark.slow
def test_the_cli_reports_a_file_truncated_under_it_at_many_moments(tmp_path):
    _check_race(tmp_path, seeds=range(2, 14))
