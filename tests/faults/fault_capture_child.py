"""One ``capture_to_disk`` in a child process, for tests/faults/test_capture_faults.py.

Run as a script (``python fault_capture_child.py '<json>'``, a fresh interpreter) or
called in a forked process (:func:`child_main`). ``kill_at=[kind, k]`` makes the child
SIGKILL itself right after its k-th ``os.replace`` (a file renamed into place), its k-th
``os.fsync`` (a temporary file complete, not yet renamed) or its k-th file write (a
temporary file half written): the hook wraps those functions here, in the child, never
in the library. ``count=true`` instead reports how many of each the capture made.
The exit status says how it ended: 0 done, 3 the folder was locked, 4 a ValueError.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import torch

torch.set_num_threads(1)

LAYERS = ["0", "1", "2"]  # Linear(6, 10), ReLU: two layers of one width, Linear(10, 3)


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))


class Batches:
    """``n`` batches of 5 rows, the same on every pass; ``sleep`` seconds per batch."""

    def __init__(self, n: int = 6, sleep: float = 0.0, rows: int = 5, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.data = list(torch.randn(n * rows, 6, generator=g).split(rows))
        self.sleep = sleep

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        for b in self.data:
            if self.sleep:
                time.sleep(self.sleep)
            yield b


def _kill_hooks(kind: str | None, k: int, counts: dict[str, int]) -> None:
    """Wrap os.replace, os.fsync and os.fdopen's writes: count them, die at the k-th."""

    def tick(name: str) -> None:
        counts[name] += 1
        if name == kind and counts[name] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_fsync, real_fdopen = os.replace, os.fsync, os.fdopen

    def replace(*a: Any, **kw: Any) -> None:
        real_replace(*a, **kw)
        tick("replace")

    def fsync(fd: int) -> None:
        real_fsync(fd)
        tick("fsync")

    class Writer:
        def __init__(self, f: Any) -> None:
            self.f = f

        def write(self, data: Any) -> int:
            view = memoryview(data).cast("B")
            if kind == "write" and counts["write"] + 1 == k:
                self.f.write(view[: view.nbytes // 2])  # die in the middle of this write
                self.f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            n = self.f.write(view)
            counts["write"] += 1
            return n

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

        def __enter__(self) -> Writer:
            self.f.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self.f.__exit__(*exc)

    def fdopen(fd: int, mode: str = "r", *a: Any, **kw: Any) -> Any:
        f = real_fdopen(fd, mode, *a, **kw)
        return Writer(f) if "w" in mode else f

    os.replace, os.fsync, os.fdopen = replace, fsync, fdopen  # type: ignore[assignment]


def child_main(cfg: dict[str, Any]) -> int:
    import svcca.torch as st

    counts = {"replace": 0, "fsync": 0, "write": 0}
    kind, k = cfg.get("kill_at") or (None, 0)
    net = model(cfg.get("model_seed", 0))
    batches = Batches(cfg.get("n_batches", 6), cfg.get("sleep", 0.0))
    if cfg.get("ready"):
        open(cfg["ready"], "w").close()
    if cfg.get("go"):  # start together with another child, or when the parent says
        while not os.path.exists(cfg["go"]):
            time.sleep(0.002)
    _kill_hooks(kind, int(k), counts)
    out = cfg.get("out")
    try:
        st.capture_to_disk(net, batches, LAYERS, cfg["dir"], format=cfg.get("format", "npy"))
        status, text = 0, "done"
    except st.CaptureLockedError as exc:
        status, text = 3, str(exc)
    except ValueError as exc:
        status, text = 4, str(exc)
    if out:
        with open(out, "w") as f:
            json.dump({"status": status, "text": text, "counts": counts}, f)
    return status


if __name__ == "__main__":
    sys.exit(child_main(json.loads(sys.argv[1])))
