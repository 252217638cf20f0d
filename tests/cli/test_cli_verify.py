"""``svcca verify PATH``: a capture folder or a saved Moments file, one line per problem;
exit 0 when fine, 1 when something is wrong, 2 for bad usage."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

import svcca
from svcca._cli import main

torch = pytest.importorskip("torch")
import svcca.torch as st  # noqa: E402


def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2))


def batches(n: int = 3) -> list[torch.Tensor]:
    return list(torch.randn(5 * n, 4, generator=torch.Generator().manual_seed(0)).split(5))


def verify(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_a_finished_capture_checks_out_and_damage_is_named(tmp_path, capsys):
    d = tmp_path / "cap"
    st.capture_to_disk(net(), batches(), ["0", "1"], d)
    code, lines, _ = verify(capsys, str(d))
    assert code == 0
    assert lines == [
        f"{d}: a finished capture: 2 layers, 3 batches, 15 rows; the size and SHA-256 of all "
        "2 files match the manifest"
    ]
    raw = bytearray((d / "0.npy").read_bytes())
    raw[-1] ^= 1
    (d / "0.npy").write_bytes(bytes(raw))
    (d / "1.npy").write_bytes(b"x")
    code, lines, _ = verify(capsys, str(d))
    assert code == 1
    assert lines[0] == f"{d}: a finished capture: 2 layers, 3 batches, 15 rows"
    assert "0.npy' does not hold what was written there: its SHA-256 is" in lines[1]
    assert "1.npy' has 1 bytes, but the manifest records" in lines[2]
    assert all(line.startswith(f"{d}: problem: ") for line in lines[1:]) and len(lines) == 3


def test_an_unfinished_capture_resumes_a_damaged_manifest_is_named(tmp_path, capsys):
    d = tmp_path / "cap"

    def stop_after_two():
        yield from batches()[:2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        st.capture_to_disk(net(), stop_after_two(), ["0"], d)
    code, lines, _ = verify(capsys, str(d))
    assert code == 0 and "an unfinished capture: 2 batches done" in lines[0]
    m = json.loads((d / "manifest.json").read_text())
    m["batches_done"] = 1
    (d / "manifest.json").write_text(json.dumps(m))
    code, lines, _ = verify(capsys, str(d))
    assert code == 1
    assert "problem:" in lines[1] and "batches_done is 1, but rows lists 2 batches" in lines[1]
    code, lines, _ = verify(capsys, str(tmp_path / "cap" / "parts"))
    assert code == 1 and lines[1].endswith("problem: holds no capture (no manifest.json)")


def test_a_running_capture_is_reported_and_its_lock_not_broken(tmp_path, capsys):
    d = tmp_path / "cap"
    st.capture_to_disk(net(), batches(), ["0"], d)
    ready = tmp_path / "ready"
    script = (
        "import sys, time\n"
        "from svcca.torch._folder import FolderLock\n"
        "FolderLock(sys.argv[1]).acquire()\n"
        "open(sys.argv[2], 'w').close()\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(d), str(ready)])
    try:
        while not ready.exists():
            assert holder.poll() is None
            time.sleep(0.05)
        code, lines, _ = verify(capsys, str(d))
        assert code == 0 and f"locked by a running capture (pid {holder.pid} on host" in lines[0]
        code, lines, err = verify(capsys, str(d), "--break-lock")
        assert code == 2
        assert err.startswith(f"svcca verify: error: '{d}' is locked by pid {holder.pid} on this")
    finally:
        holder.kill()
        holder.wait()
    code, lines, _ = verify(capsys, str(d), "--break-lock")
    assert code == 0 and lines[0].endswith("was not held by any process; removed it.")


def test_moments_files_and_bad_paths(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "m.npz"
    svcca.Moments.from_arrays(rng.standard_normal((20, 3)), rng.standard_normal((20, 2))).save(path)
    code, lines, _ = verify(capsys, str(path))
    assert code == 0 and lines == [
        f"{path}: a saved statistic, Moments(n=20, p=3, q=2), reads back"
    ]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, lines, _ = verify(capsys, str(bad))
    assert code == 1 and lines[1].startswith(f"{bad}: problem: ") and str(bad) in lines[1][20:]
    code, _, err = verify(capsys, str(tmp_path / "nothing"))
    assert code == 2 and "no such file or folder" in err
    code, _, err = verify(capsys, str(path), "--break-lock")
    assert code == 2 and "--break-lock applies to a capture folder" in err
