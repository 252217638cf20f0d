"""The progress contract, in one place: every function with ``progress=`` uses it.

``progress`` takes three values, everywhere (``svcca.pairwise``, every function of
``svcca.stats`` that runs long, ``svcca.torch``'s captures, the CLI):

- ``False`` (the default of library functions): no bar, nothing written.
- ``True``: a bar on stderr.
- ``None``: a bar only when stderr is a terminal, as tqdm's ``disable=None`` (so logs
  and CI output stay clean).

Anything else is a TypeError. The bar is tqdm's (imported only when a bar is shown);
without tqdm a one-line counter goes to stderr instead and a single warning per process
says so: a missing optional package never stops a computation.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any, TextIO

import numpy as np

__all__ = ["Progress", "check_progress"]

# Set once the "tqdm is not installed" warning has been given (one per process).
_warned_no_tqdm = False

# The plain counter rewrites its line at most this often (seconds).
_PLAIN_INTERVAL = 0.1


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # None, closed or replaced streams
        return False


def check_progress(value: Any, name: str = "progress") -> bool:
    """Whether to show a bar: ``True``/``False`` as given, ``None`` when stderr is a tty.

    Raises TypeError for anything else (``"yes"``, ``1``), in the form of the other
    argument checks of :mod:`svcca._validation`.
    """
    if value is None:
        return _is_terminal(sys.stderr)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be True or False, or None (a bar only when stderr is a "
            f"terminal); got {value!r}. Pass progress=True to show a bar on stderr."
        )
    return bool(value)


def _tqdm_class() -> Any:
    """tqdm's class, or None (with the one warning per process) when it is missing."""
    global _warned_no_tqdm
    try:
        from tqdm.auto import tqdm  # optional: imported only when a bar is shown
    except ImportError:
        if not _warned_no_tqdm:
            _warned_no_tqdm = True
            warnings.warn(
                "Progress bars need tqdm, which is not installed; showing a plain counter "
                "on stderr instead (pip install tqdm for a bar). This warning is shown "
                "once per process.",
                UserWarning,
                stacklevel=4,
            )
        return None
    return tqdm


class _Plain:
    """A one-line counter on stderr, rewritten in place (the fallback without tqdm)."""

    def __init__(self, total: int | None, desc: str, file: TextIO) -> None:
        self.total, self.desc, self.file = total, desc, file
        self.done = 0
        self._last = 0.0
        self._width = 0

    def _write(self) -> None:
        of = "" if self.total is None else f"/{self.total}"
        line = f"{self.desc}: {self.done}{of}"
        self._width = max(self._width, len(line))
        self.file.write("\r" + line)
        self.file.flush()
        self._last = time.monotonic()

    def update(self, k: int) -> None:
        self.done += k
        if self.done == self.total or time.monotonic() - self._last >= _PLAIN_INTERVAL:
            self._write()

    def refresh(self) -> None:
        self._write()

    def close(self) -> None:
        if self._width:  # clear the line, as tqdm(leave=False) does
            self.file.write("\r" + " " * self._width + "\r")
            self.file.flush()


class Progress:
    """A progress bar on stderr that costs nothing when off.

    Parameters
    ----------
    progress : bool or None
        ``True``: show it; ``False``: don't; ``None``: only when stderr is a terminal.
        Anything else raises TypeError.
    total : int or None
        Number of steps (None when unknown, e.g. an iterator of batches).
    desc : str
        Label in front of the bar.

    Use it as a context manager, or call :meth:`close` in a ``finally``.
    """

    def __init__(self, progress: Any, total: int | None, desc: str) -> None:
        self.enabled = check_progress(progress)
        self.total = total
        self.desc = desc
        self._bar: Any = None
        if not self.enabled:
            return
        stream = sys.stderr
        tqdm = _tqdm_class()
        if tqdm is None:
            self._bar = _Plain(total, desc, stream)
        else:
            self._bar = tqdm(total=total, desc=desc, file=stream, leave=False, disable=False)

    def update(self, k: int = 1) -> None:
        """Advance by ``k`` steps."""
        if self._bar is not None:
            self._bar.update(k)

    def retotal(self, total: int | None) -> None:
        """Change the number of steps once it is known better."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def close(self) -> None:
        """Remove the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
