"""A progress bar that costs nothing when off and needs tqdm only when on."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Plain:
    """Fallback when tqdm is not installed: a counter on stderr."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.done = total, desc, 0

    def update(self, k: int) -> None:
        self.done += k
        sys.stderr.write(f"\r{self.desc}: {self.done}/{self.total}")
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        pass


class _Null:
    def update(self, k: int) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def progress_bar(enabled: bool, total: int, desc: str) -> Iterator[Any]:
    """Yield an object with ``update(k)``: tqdm (stderr) when enabled, else a no-op."""
    if not isinstance(enabled, bool):
        raise TypeError(f"progress must be True or False; got {enabled!r}.")
    if not enabled:
        bar: Any = _Null()
    else:
        try:
            from tqdm.auto import tqdm  # optional, imported only when asked for
        except ImportError:  # pragma: no cover - depends on the environment
            bar = _Plain(total, desc)
        else:
            bar = tqdm(total=total, desc=desc, file=sys.stderr)
    try:
        yield bar
    finally:
        bar.close()
