"""A capture folder is a transaction (issue 18): ``kill -9`` at every write and at random
moments, concurrent captures, full and read-only disks, edited or damaged files, names
that lead out of the folder. Each case ends with files byte-identical to an
uninterrupted capture or with a clear error, and nothing outside the folder is read or
removed. The children are real processes: a fresh interpreter (``subprocess``) or a
fork of a fresh forkserver (so that torch is imported once), killed with SIGKILL.
"""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import svcca.torch as st  # noqa: E402
from fault_capture_child import LAYERS, Batches, child_main, model  # noqa: E402

pytestmark = pytest.mark.faults
CHILD = Path(__file__).with_name("fault_capture_child.py")
needs_fork = pytest.mark.skipif(
    "forkserver" not in mp.get_all_start_methods(), reason="needs the forkserver start method"
)


# ----------------------------------------------------------------------------- helpers
def capture(directory: Path, fmt: str = "npy", seed: int = 0, n: int = 6, **kw):
    return st.capture_to_disk(model(seed), Batches(n), LAYERS, directory, format=fmt, **kw)


def layer_files(fmt: str) -> list[str]:
    return [f"{name}.{fmt}" for name in LAYERS]


def assert_same_capture(got: Path, ref: Path, fmt: str) -> None:
    """Byte-identical layer files, the same manifest, nothing else of ours left."""
    for name in layer_files(fmt):
        assert (got / name).read_bytes() == (ref / name).read_bytes(), name
    assert json.loads((got / "manifest.json").read_text()) == json.loads(
        (ref / "manifest.json").read_text()
    )
    assert sorted(os.listdir(got)) == sorted([*layer_files(fmt), "manifest.json"])


def forkserver():
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "svcca.torch", "fault_capture_child"])
    return ctx


def run_forked(cfg: dict, timeout: float = 60) -> tuple[int | None, dict]:
    """Run :func:`child_main` in a forked process; its exit code and its report."""
    p = forkserver().Process(target=_exit_with, args=(cfg,))
    p.start()
    p.join(timeout)
    if p.exitcode is None:  # pragma: no cover - a hang is a failure, not a wait
        p.kill()
        pytest.fail(f"child {cfg} hung")
    out = cfg.get("out")
    report = json.loads(Path(out).read_text()) if out and os.path.exists(out) else {}
    return p.exitcode, report


def _exit_with(cfg: dict) -> None:
    sys.exit(child_main(cfg))


def write_points(tmp_path: Path, fmt: str) -> list[tuple[str, int]]:
    """Every (kind, k) at which a capture writes: counted on an uninterrupted run."""
    out = tmp_path / f"count-{fmt}.json"
    code, report = run_forked(
        {"dir": str(tmp_path / f"count-{fmt}"), "format": fmt, "out": str(out)}
    )
    assert code == 0, report
    counts = report["counts"]
    # the first manifest (before any part), parts and manifests for 6 batches, then one
    # file per layer and the last manifest
    assert counts["replace"] == counts["fsync"] == 1 + 6 + 6 + len(LAYERS) + 1
    return [(kind, k) for kind in ("replace", "fsync", "write") for k in range(1, counts[kind] + 1)]


def kill_and_resume(tmp_path: Path, fmt: str, points: list[tuple[str, int]]) -> None:
    ref = tmp_path / f"ref-{fmt}"
    capture(ref, fmt)
    for kind, k in points:
        d = tmp_path / f"{fmt}-{kind}-{k}"
        code, _ = run_forked({"dir": str(d), "format": fmt, "kill_at": [kind, k]})
        assert code == -signal.SIGKILL, (kind, k, code)
        res = capture(d, fmt)  # the same call resumes (or returns the finished capture)
        assert res.n_batches == 6
        assert_same_capture(d, ref, fmt)


# ----------------------------------------------------------------------------- kill -9
@needs_fork
@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_kill_at_a_sample_of_writes_then_resume_is_byte_identical(tmp_path, fmt):
    pytest.importorskip("safetensors")
    points = write_points(tmp_path, fmt)
    sample = random.Random(18 + len(fmt)).sample(points, 3)
    kill_and_resume(tmp_path, fmt, sample)


@needs_fork
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_kill_at_every_write_then_resume_is_byte_identical(tmp_path, fmt):
    pytest.importorskip("safetensors")
    kill_and_resume(tmp_path, fmt, write_points(tmp_path, fmt))


def kill_at_random_moments(tmp_path: Path, fmt: str, seeds: range) -> int:
    """A fresh interpreter, killed from outside at a random moment of its capture.
    Returns how many kills fell inside the capture (a manifest, not yet complete)."""
    ref = tmp_path / f"ref-{fmt}"
    capture(ref, fmt, n=12)
    inside_capture = 0
    for seed in seeds:
        d = tmp_path / f"{fmt}-{seed}"
        go, ready = tmp_path / f"go-{seed}", tmp_path / f"ready-{seed}"
        cfg = {"dir": str(d), "format": fmt, "n_batches": 12, "sleep": 0.02}
        cfg.update(go=str(go), ready=str(ready))
        child = subprocess.Popen([sys.executable, str(CHILD), json.dumps(cfg)])
        try:
            while not ready.exists():  # the interpreter has started, torch is imported
                assert child.poll() is None
                time.sleep(0.01)
            go.touch()
            time.sleep(random.Random(seed).uniform(0.02, 0.3))  # the capture takes ~0.3 s
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(60)
        manifest = d / "manifest.json"
        inside_capture += manifest.exists() and not json.loads(manifest.read_text())["complete"]
        st.capture_to_disk(model(0), Batches(12), LAYERS, d, format=fmt)
        assert_same_capture(d, ref, fmt)
    return inside_capture


def test_kill_at_a_random_moment_then_resume_is_byte_identical(tmp_path):
    kill_at_random_moments(tmp_path, "npy", range(1))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npy", "safetensors"])
def test_kill_at_random_moments_then_resume_is_byte_identical(tmp_path, fmt):
    pytest.importorskip("safetensors")
    assert kill_at_random_moments(tmp_path, fmt, range(1, 9)) >= 2  # not all before or after


# ----------------------------------------------------------------------------- two captures
@needs_fork
@pytest.mark.parametrize("seeds", [(0, 1), (0, 0)], ids=["different-models", "same-model"])
def test_two_captures_into_one_folder_one_wins_never_merged(tmp_path, seeds):
    d, go = tmp_path / "shared", tmp_path / "go"
    ctx = forkserver()
    procs, outs = [], []
    for i, seed in enumerate(seeds):
        out = tmp_path / f"out{i}.json"
        cfg = {"dir": str(d), "model_seed": seed, "sleep": 0.1, "go": str(go), "out": str(out)}
        p = ctx.Process(target=_exit_with, args=(cfg,))
        p.start()
        procs.append(p)
        outs.append(out)
    time.sleep(0.3)
    go.touch()
    for p in procs:
        p.join(60)
    reports = [json.loads(o.read_text()) for o in outs]
    codes = sorted(p.exitcode for p in procs)
    assert codes == [0, 3], reports  # one capture, one refusal: never both
    winner = next(s for s, r in zip(seeds, reports, strict=True) if r["status"] == 0)
    loser = next(r for r in reports if r["status"] == 3)
    assert (
        "is locked by another capture: expected a free folder, got capture.lock held by pid"
        in (loser["text"])
    )
    ref = tmp_path / "ref"
    capture(ref, seed=winner)
    assert_same_capture(d, ref, "npy")


def test_a_held_lock_is_named_and_only_a_remote_one_can_be_broken(tmp_path):
    d = tmp_path / "cap"
    unfinished(d)
    ready = tmp_path / "ready"
    script = (
        "import json, os, sys, time\n"
        "from svcca.torch._folder import FolderLock\n"
        "lock = FolderLock(sys.argv[1]).acquire()\n"
        "if sys.argv[3] == 'remote':  # what a holder on another machine writes\n"
        "    os.ftruncate(lock._fd, 0)\n"
        "    info = {'pid': 7, 'host': 'far-away', 'since': 0}\n"
        "    os.pwrite(lock._fd, json.dumps(info).encode(), 0)\n"
        "open(sys.argv[2], 'w').close()\n"
        "time.sleep(60)\n"
    )
    for where in ("local", "remote"):
        ready.unlink(missing_ok=True)
        holder = subprocess.Popen([sys.executable, "-c", script, str(d), str(ready), where])
        try:
            while not ready.exists():
                assert holder.poll() is None
                time.sleep(0.05)
            who = f"pid {holder.pid} on host" if where == "local" else "pid 7 on host 'far-away'"
            with pytest.raises(st.CaptureLockedError, match=rf"held by {who}.*--break-lock"):
                capture(d)
            if where == "local":
                with pytest.raises(ValueError, match=r"locked by pid \d+ on this machine.*Stop"):
                    st.break_capture_lock(d)
                with pytest.raises(
                    ValueError, match=rf"is running now \(3 batches done, pid {holder.pid} on host"
                ):
                    st.load_capture(d)
            else:
                assert "held by pid 7 on host 'far-away'" in st.break_capture_lock(d)
                assert capture(d).resumed_from == 3  # a new lock file: the capture resumes
                assert_same_capture(d, _ref(tmp_path), "npy")
        finally:
            holder.kill()
            holder.wait()
    # the local holder is dead: the kernel released its lock, nothing to break
    assert "not locked" in st.break_capture_lock(d)
    (d / "capture.lock").mkdir()
    with pytest.raises(ValueError, match=r"capture.lock' is not a plain file; remove it by hand"):
        capture(d)


def _ref(tmp_path: Path, fmt: str = "npy") -> Path:
    ref = tmp_path / f"ref-{fmt}"
    if not ref.exists():
        capture(ref, fmt)
    return ref


# ----------------------------------------------------------------------------- full disks
def test_full_disk_before_the_join_is_an_error_with_the_numbers_then_resumes(tmp_path, monkeypatch):
    d = tmp_path / "cap"
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100))
    with pytest.raises(
        OSError,
        match=r"Joining the 6 finished batches of .* needs \d+ bytes .*, but 100 bytes .* are "
        r"free there\. Free space and call capture_to_disk again",
    ) as err:
        capture(d)
    assert err.value.errno == errno.ENOSPC
    assert len(os.listdir(d / "parts")) == 6 and not (d / "0.npy").exists()
    monkeypatch.setattr(shutil, "disk_usage", real)  # space was freed
    assert capture(d).resumed_from == 6  # only the join ran
    assert_same_capture(d, _ref(tmp_path), "npy")


@pytest.mark.parametrize("at", [3, 15], ids=["a-part", "the-join"])
def test_enospc_in_a_write_is_a_clear_error_and_the_capture_resumes(tmp_path, monkeypatch, at):
    """An ENOSPC injected into the k-th fsync (a part, or a layer file of the join)."""
    d = tmp_path / "cap"
    real, calls = os.fsync, [0]

    def fsync(fd):
        calls[0] += 1
        if calls[0] == at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(
        OSError,
        match=r"No space left on the device .* free space there and call "
        r"capture_to_disk again with the same arguments",
    ) as err:
        capture(d)
    assert err.value.errno == errno.ENOSPC
    assert not [f for _, _, fs in os.walk(d) for f in fs if f.endswith(".tmp")]
    monkeypatch.setattr(os, "fsync", real)
    capture(d)
    assert_same_capture(d, _ref(tmp_path), "npy")


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MiB tmpfs, or a skip saying why there is none."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_real_full_disk_then_a_read_only_one(tmp_path, tmpfs):
    """A capture whose parts fit on a 2 MiB tmpfs but whose join does not; then the same
    folder read-only: the finished capture is returned, a new one refused."""
    n = 24  # 24 batches of 20 rows, 203 float64 numbers a row: 0.78 MB of parts
    net = torch.nn.Sequential(torch.nn.Linear(6, 100), torch.nn.ReLU(), torch.nn.Linear(100, 3))
    d = tmpfs / "cap"
    batches = Batches(n, rows=20)
    filler = tmpfs / "filler"
    filler.write_bytes(b"\0" * (700 << 10))
    with pytest.raises(OSError, match=r"needs \d+ bytes .* are free there\. Free space") as err:
        st.capture_to_disk(net, batches, LAYERS, d, dtype=np.float64)
    assert err.value.errno == errno.ENOSPC
    filler.unlink()  # space freed: the same call joins
    res = st.capture_to_disk(net, batches, LAYERS, d, dtype=np.float64)
    assert res.resumed_from == n
    ref = st.capture_to_disk(net, batches, LAYERS, tmp_path / "ref", dtype=np.float64)
    for name in LAYERS:
        assert Path(res.files[name]).read_bytes() == Path(ref.files[name]).read_bytes()
    # a part that does not fit: ENOSPC from the write itself
    filler.write_bytes(b"\0" * ((2 << 20) - shutil.disk_usage(tmpfs).used - (40 << 10)))
    with pytest.raises(OSError, match=r"No space left on the device .* free space there"):
        st.capture_to_disk(net, batches, LAYERS, tmpfs / "second", dtype=np.float64)
    assert not [f for _, _, fs in os.walk(tmpfs) for f in fs if f.endswith(".tmp")]
    filler.unlink()
    r = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True)
    if r.returncode:
        pytest.skip("cannot remount the tmpfs read-only")
    again = st.capture_to_disk(net, batches, LAYERS, d, dtype=np.float64)  # no lock needed
    np.testing.assert_array_equal(again.load("2"), ref.load("2"))
    with pytest.raises(OSError, match=r"cannot be written .*choose a writable folder"):
        st.capture_to_disk(net, batches, LAYERS, tmpfs / "new", dtype=np.float64)
    with pytest.raises(OSError, match=r"cannot be written .*choose a writable folder"):
        st.capture_to_disk(net, batches, LAYERS, tmpfs / "second", dtype=np.float64)


def test_read_only_folder_injected(tmp_path, monkeypatch):
    """EROFS injected into every file creation (root ignores chmod)."""
    d = tmp_path / "cap"
    capture(d)
    real = os.open

    def ro_open(path, flags, *a, **kw):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", ro_open)
    assert capture(d).resumed_from == 6  # a finished capture is returned as it is
    with pytest.raises(
        OSError,
        match=r"cannot be written \(Read-only file system\).*choose a "
        r"writable folder",
    ) as err:
        capture(d, overwrite=True)
    assert err.value.errno == errno.EROFS
    (tmp_path / "new").mkdir()
    with pytest.raises(OSError, match="choose a writable folder"):
        capture(tmp_path / "new")


# ----------------------------------------------------------------------------- edited files
class Stop(Exception):
    pass


class Until(Batches):
    """The first ``stop`` batches, then an interruption."""

    def __init__(self, stop: int) -> None:
        super().__init__(6)
        self.stop = stop

    def __iter__(self):
        for i, b in enumerate(self.data):
            if i == self.stop:
                raise Stop
            yield b


def unfinished(d: Path, stop: int = 3) -> None:
    with pytest.raises(Stop):
        st.capture_to_disk(model(0), Until(stop), LAYERS, d)


def edit(d: Path, **changes) -> None:
    path = d / "manifest.json"
    m = json.loads(path.read_text())
    for k, v in changes.items():
        if v is ...:
            del m[k]
        elif callable(v):
            m[k] = v(m[k])
        else:
            m[k] = v
    path.write_text(json.dumps(m))


EDITS_UNFINISHED = [
    ({"batches_done": 2}, r"batches_done is 2, but rows lists 3 batches"),
    ({"batches_done": 5}, r"batches_done is 5, but rows lists 3 batches"),
    ({"rows": lambda r: r[:2]}, r"batches_done is 3, but rows lists 2 batches"),
    ({"rows": lambda r: [*r[:2], -1]}, r"rows is \[5, 5, -1\], expected one row count"),
    ({"parts": lambda p: p[:2]}, r"batches_done is 3, but parts records 2 part files"),
    ({"parts": lambda p: [*p[:2], {"size": 1, "sha256": "x"}]}, r"parts is not a list of"),
    ({"batches_done": True}, r"batches_done is True, expected a count"),
    ({"format": "pickle"}, r"format is 'pickle', expected 'npy' or 'safetensors'"),
    ({"dtype": "<i8"}, r"dtype is '<i8', expected a floating dtype"),
    ({"dtype": "nonsense"}, r"dtype is 'nonsense', expected a NumPy dtype"),
    ({"layers": "0"}, r"layers is '0', expected a list of layer names"),
    ({"complete": "no"}, r"complete is 'no', expected true or false"),
    ({"shapes": {}}, r"shapes is \{\}, expected a shape per layer"),
    ({"version": 2}, r"manifest version 2 \(this version writes 3.*overwrite=True"),
]


@pytest.mark.parametrize(("changes", "message"), EDITS_UNFINISHED)
def test_an_edited_unfinished_manifest_is_refused(tmp_path, changes, message):
    d = tmp_path / "cap"
    unfinished(d)
    edit(d, **changes)
    with pytest.raises(ValueError, match=message):
        capture(d)
    with pytest.raises(ValueError, match=message):
        st.load_capture(d)
    if changes == EDITS_UNFINISHED[0][0]:  # overwrite=True recovers (one case is enough)
        capture(d, overwrite=True)
        assert_same_capture(d, _ref(tmp_path), "npy")


EDITS_FINISHED = [
    ({"batches_done": 0, "rows": []}, r"a complete capture with 0 batches"),
    ({"files": lambda f: {"0": f["0"]}}, r"files is .*, expected one record per layer"),
    ({"files": lambda f: {**f, "2": {"name": "2.npy"}}}, r"the file record of layer '2' is"),
    ({"complete": False}, r"parts is not a list of"),
]


@pytest.mark.parametrize(("changes", "message"), EDITS_FINISHED)
def test_an_edited_finished_manifest_is_refused(tmp_path, changes, message):
    d = tmp_path / "cap"
    capture(d)
    edit(d, **changes)
    for call in (lambda: st.load_capture(d), lambda: capture(d)):
        with pytest.raises(
            ValueError, match=rf"manifest.json' is damaged or was edited: {message}"
        ):
            call()


def test_consistently_lowered_batch_count_recaptures_those_batches(tmp_path):
    """A manifest that says fewer batches are done (counts, rows and parts agreeing)
    recaptures them: the parts it does not record are never joined."""
    d = tmp_path / "cap"
    unfinished(d, stop=4)
    edit(d, batches_done=1, rows=lambda r: r[:1], parts=lambda p: p[:1])
    assert capture(d).resumed_from == 1
    assert_same_capture(d, _ref(tmp_path), "npy")


def test_raised_batch_count_with_a_made_up_part_is_refused(tmp_path):
    d = tmp_path / "cap"
    unfinished(d, stop=2)
    m = json.loads((d / "manifest.json").read_text())
    edit(d, batches_done=3, rows=lambda r: [*r, 5], parts=lambda p: [*p, p[0]])
    with pytest.raises(ValueError, match=r"00000002.npz' is missing; the manifest records it"):
        capture(d)
    assert m["batches_done"] == 2


def test_swapped_or_damaged_parts_are_refused_on_resume(tmp_path):
    d = tmp_path / "cap"
    unfinished(d)
    a, b = d / "parts" / "00000000.npz", d / "parts" / "00000001.npz"
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    with pytest.raises(
        ValueError,
        match=r"00000000.npz' does not hold what was written there: "
        r"its SHA-256 is .* \(a flipped bit, a file swapped",
    ):
        capture(d)
    b_bytes = a.read_bytes()
    a.write_bytes(a_bytes)
    b.write_bytes(b_bytes[:-1])
    with pytest.raises(
        ValueError,
        match=r"00000001.npz' has \d+ bytes, but the manifest "
        r"records \d+: the file was cut off",
    ):
        capture(d)


def test_edited_row_counts_are_refused_at_the_join_and_on_load(tmp_path):
    d = tmp_path / "cap"
    unfinished(d)
    edit(d, rows=[5, 4, 5])
    with pytest.raises(
        ValueError,
        match=r"Part 1 of .* holds layer '0' as float32 \(5, 10\), "
        r"but the manifest records 4 rows",
    ):
        capture(d)
    done = tmp_path / "done"
    capture(done)
    edit(done, rows=lambda r: [*r[:-1], r[-1] + 1])
    with pytest.raises(
        ValueError,
        match=r"holds an array of shape \(30, 10\), but the manifest "
        r"records \(31, 10\)",
    ):
        st.load_capture(done).load("0")


def test_swapped_flipped_or_cut_layer_files_are_refused_on_load(tmp_path):
    d = tmp_path / "cap"
    capture(d)
    relu, lin = d / "1.npy", d / "0.npy"  # two layers of one width: the same size
    good = relu.read_bytes()
    relu.write_bytes(lin.read_bytes())
    with pytest.raises(ValueError, match=r"1.npy' does not hold what was written there"):
        st.load_capture(d)
    assert st.load_capture(d, verify=False).shapes["1"] == (30, 10)  # sizes only
    relu.write_bytes(good)
    cap = st.load_capture(d)
    np.testing.assert_array_equal(cap.load("1"), _ref_arrays()["1"])
    flipped = bytearray(good)
    flipped[-3] ^= 0x10
    time.sleep(0.01)
    relu.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"SHA-256 is .*, the manifest records"):
        cap.load("1")  # hashed again: the file changed since it was checked
    relu.write_bytes(good[:-4])
    with pytest.raises(ValueError, match=r"has \d+ bytes, but the manifest records \d+"):
        cap.load("1", verify=False)
    relu.unlink()
    with pytest.raises(ValueError, match=r"1.npy' is missing"):
        st.load_capture(d, verify=False)
    # resuming a finished capture checks names and sizes too
    with pytest.raises(ValueError, match=r"1.npy' is missing"):
        capture(d)


def _ref_arrays() -> dict[str, np.ndarray]:
    return st.capture(model(0), Batches(6), LAYERS)


def test_a_corrupted_manifest_is_refused_and_overwrite_recovers(tmp_path):
    d = tmp_path / "cap"
    capture(d)
    (d / "notes.txt").write_text("mine")
    (d / "manifest.json").write_text('{"version": 3, "lay')
    with pytest.raises(ValueError, match=r"is not a readable manifest .*overwrite=True"):
        capture(d)
    with pytest.raises(ValueError, match="is not a readable manifest"):
        st.load_capture(d)
    (d / "manifest.json").write_text("[1, 2]")
    with pytest.raises(
        ValueError, match=r"not a capture manifest: expected a JSON object, got list"
    ):
        st.load_capture(d)
    capture(d, overwrite=True)
    assert (d / "notes.txt").read_text() == "mine"  # not ours: it stays
    os.remove(d / "notes.txt")
    assert_same_capture(d, _ref(tmp_path), "npy")


@pytest.mark.parametrize("overwrite", [False, True])
def test_files_a_manifest_does_not_record_are_never_overwritten(tmp_path, overwrite):
    """A folder without a manifest (a user's own), or one whose sound manifest records
    other files: a file of a name this capture writes is theirs, and is refused (was:
    replaced silently, even with overwrite=False)."""
    d = tmp_path / "cap"
    d.mkdir()
    mine = layer_files("npy")[0]
    np.save(d / mine, np.full((3, 3), 42.0))
    before = (d / mine).read_bytes()
    message = rf"already holds '{mine}', which no capture manifest there records"
    with pytest.raises(FileExistsError, match=message):
        capture(d, overwrite=overwrite)
    assert (d / mine).read_bytes() == before
    assert sorted(os.listdir(d)) == [mine]  # nothing left behind: no lock, no parts
    if not overwrite:
        (d / "parts").mkdir()
        (d / "parts" / "00000000.npz").write_bytes(b"mine")
        os.remove(d / mine)
        with pytest.raises(FileExistsError, match=r"already holds 'parts/00000000.npz'"):
            capture(d)
        assert (d / "parts" / "00000000.npz").read_bytes() == b"mine"


def test_overwrite_removes_only_what_the_library_made(tmp_path):
    d = tmp_path / "cap"
    unfinished(d)
    (d / "parts" / "README").write_text("mine")
    (d / "keep.npy").write_text("mine")
    capture(d, overwrite=True)
    assert (d / "parts" / "README").read_text() == "mine"
    assert (d / "keep.npy").read_text() == "mine"
    assert sorted(os.listdir(d / "parts")) == ["README"]


def test_a_safetensors_capture_needs_a_little_endian_float_dtype(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"format='safetensors' stores little-endian float16, "
        r"float32 or float64; got dtype >f4",
    ):
        st.capture_to_disk(
            model(0), Batches(2), LAYERS, tmp_path, format="safetensors", dtype=np.dtype(">f4")
        )


# ----------------------------------------------------------------------------- outside names
@pytest.fixture
def decoy(tmp_path):
    """A file outside every capture folder; its content and mtime must never change."""
    path = tmp_path / "decoy.npy"
    np.save(path, np.full((30, 10), 7.0, dtype=np.float32))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    yield path
    assert path.exists(), "the file outside the folder was removed"
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def _name_of_layer_1(value):
    return lambda files: {**files, "1": {**files["1"], "name": value}}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../decoy.npy", r"is '\.\./decoy\.npy', a path with a folder separator"),
        ("ABS", r"is '.*decoy\.npy', an absolute path"),
        ("..", r"is '\.\.', '\.\.' or '\.'"),
        ("sub/1.npy", r"a path with a folder separator"),
        (7, r"is 7, not a file name"),
        ("1\x00.npy", r"a name with a NUL byte"),
        ("2.npy", r"layer '1' is recorded in '2\.npy', expected '1\.npy'"),
    ],
)
def test_manifest_names_leading_out_are_refused_and_the_outside_untouched(
    tmp_path, decoy, name, message
):
    d = tmp_path / "cap"
    capture(d)
    edit(d, files=_name_of_layer_1(str(decoy) if name == "ABS" else name))
    with pytest.raises(ValueError, match=message):
        st.load_capture(d)
    with pytest.raises(ValueError, match=message):
        capture(d)
    capture(d, overwrite=True)  # the edited manifest is discarded, its names never followed
    assert_same_capture(d, _ref(tmp_path), "npy")


@pytest.mark.parametrize("what", ["layer", "parts", "manifest", "lock"])
def test_symlinks_leading_out_are_refused_and_the_outside_untouched(tmp_path, decoy, what):
    d = tmp_path / "cap"
    if what == "parts":
        unfinished(d)
        outside = tmp_path / "outside"
        shutil.move(d / "parts", outside)
        (d / "parts").symlink_to(outside)
        shutil.copy(decoy, outside / "00000009.npz")  # a file of ours by name, outside
        message = r"'parts' in .* is a symlink \(or lies under one\) that leads out"
    else:
        capture(d)
        name = {"layer": "1.npy", "manifest": "manifest.json", "lock": "capture.lock"}[what]
        (d / name).unlink(missing_ok=True)
        (d / name).symlink_to(decoy)
        message = (
            r"capture.lock' is a symlink; the capture lock is a plain file"
            if what == "lock"
            else rf"'{name}' in .* is a symlink \(or lies under one\) that leads out"
        )
    if what != "lock":
        with pytest.raises(ValueError, match="unfinished" if what == "parts" else message):
            st.load_capture(d)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=message):
            capture(d, overwrite=overwrite)
    if what == "parts":
        assert sorted(os.listdir(tmp_path / "outside"))[-1] == "00000009.npz"


@pytest.mark.parametrize("fingerprint", [-1, 1.5, True, "x", [1e308], None, {"model": 1}])
def test_a_fingerprint_of_the_wrong_type_is_refused_everywhere(tmp_path, fingerprint):
    """load, resume and svcca verify agree (was: raw TypeError/AttributeError on load and
    resume while verify said the capture was fine)."""
    from svcca._cli import main

    d = tmp_path / "cap"
    capture(d)
    edit(d, fingerprint=lambda _: fingerprint)
    message = r"fingerprint is .*, expected \{'model': sha256"
    with pytest.raises(ValueError, match=message):
        st.load_capture(d)
    with pytest.raises(ValueError, match=message):
        capture(d)
    assert main(["verify", str(d)]) == 1


def test_layer_names_too_long_or_clashing_by_case_are_refused_before_any_work(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.ModuleDict({"x" * 300: torch.nn.Linear(6, 4), "A": torch.nn.Linear(6, 4)})
    net.add_module("a", torch.nn.Linear(6, 4))

    def fwd(m, b):
        return [layer(b) for layer in m.values()]

    d = tmp_path / "cap"
    with pytest.raises(ValueError, match=r"makes a file name of 304 bytes; .* NAME_MAX"):
        st.capture_to_disk(net, [torch.randn(4, 6)], ["x" * 300], d, forward=fwd)
    with pytest.raises(ValueError, match=r"differ only in case clash on case-insensitive"):
        st.capture_to_disk(net, [torch.randn(4, 6)], ["A", "a"], d, forward=fwd)
    assert not d.exists() or not any(d.iterdir())  # nothing written, no batch run


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_files_that_are_not_regular_are_refused_without_reading(tmp_path, capsys):
    """A FIFO would block and /dev/zero never end (was: a hang, or memory exhausted)."""
    import svcca
    from svcca._cli import main

    fifo = tmp_path / "stat.npz"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        if not os.path.exists(path):
            continue
        with pytest.raises(ValueError, match="it is not a regular file"):
            svcca.Moments.load(path)
        assert main(["verify", str(path)]) == 1
        assert main(["compare", str(path), str(path)]) == 2
        assert "not a regular file" in capsys.readouterr().err


def test_resuming_with_other_batches_after_the_first_is_refused(tmp_path):
    """Each part records its input batch's SHA-256; a resume checks the batches it skips
    (was: rows of the old batch 1 served beside the new data, silently)."""
    d = tmp_path / "cap"
    unfinished(d, stop=3)
    other = Batches(6)
    other.data[1] = other.data[1] + 1.0  # same first batch and count, another batch 1
    with pytest.raises(ValueError, match=r"batch 1 differs from batch 1 of this call"):
        st.capture_to_disk(model(0), other, LAYERS, d)
    capture(d)  # the same batches resume and finish as an uninterrupted capture does
    assert_same_capture(d, _ref(tmp_path), "npy")
