"""Where the dense work runs: a torch device, its free memory, exact float32 products.

svcca computes where the data live (:func:`data_device`, the one rule every input
boundary follows). GPU tensors are accumulated on their GPU; captures of a model whose
outputs are on a GPU accumulate on that GPU; the small ``p x p`` steps of a statistic
built on a GPU run on that GPU (``svcca._dense``). Work on CPU-resident data, CPU
tensors included, takes the host path (NumPy and SciPy's BLAS, tuned in
``svcca._threads``). :func:`on_device` says explicitly where the dense work runs:
``on_device("cuda:1")``, ``on_device("cpu")`` (the torch code on the CPU: what the test
suite runs where there is no GPU) or ``on_device(None)`` (the host path always).

Device memory is planned, not hoped for: :func:`plan_rows` sizes chunks from the free
memory and raises :class:`DeviceMemoryError` (what was needed, what was free, which
argument lowers it) before an allocation could fail. ``SVCCA_DEVICE_MEMORY`` (bytes,
or with a ``K``/``M``/``G`` suffix) caps what svcca may use of a device, for a GPU shared
with a training job.

Torch is imported only when a device is named or a tensor is met.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from svcca._validation import is_torch_tensor

__all__ = [
    "DeviceMemoryError",
    "chosen",
    "data_device",
    "exact_products",
    "format_bytes",
    "free_bytes",
    "on_device",
    "plan_rows",
    "resolve",
]

_AUTO: Any = object()  # no on_device() in force: work runs where the data live
_WHERE: ContextVar[Any] = ContextVar("svcca_device", default=_AUTO)
# Share of the free memory a plan may fill: the rest covers the allocator's rounding and
# torch's own workspaces (cuBLAS, cuSOLVER) that a plan cannot see.
_USABLE = 0.8


class DeviceMemoryError(MemoryError):
    """The work does not fit in the free memory of its device (raised before allocating)."""


def resolve(device: Any) -> Any:
    """``device`` as a ``torch.device`` (checked: torch installed, CUDA present), or None.

    Accepts ``None``, a string (``"cpu"``, ``"cuda"``, ``"cuda:1"``) or a
    ``torch.device``; a bare ``"cuda"`` means the current CUDA device.
    """
    if device is None:
        return None
    if not isinstance(device, str) and type(device).__name__ != "device":
        raise TypeError(
            f"device must be None, a string such as 'cuda:0' or 'cpu', or a torch.device; "
            f"got {device!r} ({type(device).__name__})."
        )
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"device={device!r} runs the dense work through torch, which is not installed: "
            "pip install 'svcca[torch]', or use on_device(None) for the NumPy path."
        ) from exc
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch knows; write 'cpu', 'cuda' or 'cuda:0'."
        ) from exc
    if dev.type == "meta":
        raise ValueError(
            f"device={str(dev)!r} holds no data (tensors made on torch.device('meta'), e.g. by "
            "a model built with empty weights): load the weights first, onto 'cpu' or 'cuda'."
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for, but torch.cuda.is_available() is False "
                "here: no CUDA device (or a CPU-only torch). Use 'cpu', or None for NumPy."
            )
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        elif dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA "
                f"device(s), numbered from 0."
            )
    return dev


@contextmanager
def on_device(device: Any) -> Iterator[None]:
    """Run svcca's dense work inside the block on ``device``.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cuda"``, ``"cuda:1"``: the moments of tensors and captures are accumulated
        there (activations on another device are refused, not moved silently) and the
        small ``p x p`` steps of every measure (eigendecompositions, Cholesky factors,
        triangular solves, SVDs, Gram products) run there in float64. ``"cpu"``: the same
        torch code on the CPU. ``None``: the NumPy/SciPy path always, whatever the data.

    Without it, work runs where the data live: on the GPU for GPU tensors and for
    statistics accumulated there, on the host path for everything else. Results are the
    same NumPy-backed objects either way.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X = np.random.default_rng(0).standard_normal((500, 6))
    >>> with svcca.on_device(None):
    ...     r = svcca.cca(X, X[:, ::-1])
    >>> round(r.score, 6)
    1.0
    """
    token = _WHERE.set(resolve(device))
    try:
        yield
    finally:
        _WHERE.reset(token)


def chosen(data_at: Any = None) -> Any:
    """The ``torch.device`` the dense work runs on, or None for the host path.

    :func:`on_device`'s device when one is in force; else ``data_at`` (where the
    data live: a tensor's ``.device`` or a statistic's) unless that is the CPU.
    """
    where = _WHERE.get()
    if where is not _AUTO:
        return where
    if data_at is None or _absent(data_at):
        return None
    dev = resolve(data_at)
    return None if dev.type == "cpu" else dev


def _absent(data_at: Any) -> bool:
    """Whether ``data_at`` is a CUDA device this process does not have.

    A statistic recorded on a GPU and unpickled where there is none (another machine, a
    CPU worker) holds NumPy arrays on the host: its small steps run there, rather than
    every measure refusing a device nobody asked for.
    """
    name = str(data_at)
    if not name.startswith("cuda"):
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        return True
    if not torch.cuda.is_available():
        return True
    index = torch.device(name).index
    return index is not None and index >= torch.cuda.device_count()


def data_device(arrays: Sequence[Any], names: Sequence[str]) -> Any:
    """Where the work on ``arrays`` (the inputs of one call) runs: a ``torch.device``, or
    None (the host path). The one rule every input boundary follows.

    Tensors on a GPU run there, and any tensors inside ``svcca.on_device(d)`` on ``d``
    (tensors elsewhere are refused, never moved silently). NumPy arrays, CPU tensors
    outside an ``on_device`` block (the host path, as for every CPU-resident input), and
    everything inside ``on_device(None)`` take the NumPy path. Tensors on two devices are
    refused, and so are arrays mixed with tensors on a device path.
    """
    tensors = [(a, nm) for a, nm in zip(arrays, names, strict=True) if is_torch_tensor(a)]
    if not tensors or host_forced():
        return None
    first, fname = tensors[0]
    for t, tname in tensors[1:]:
        if t.device != first.device:
            raise ValueError(
                f"{fname} is on {first.device} and {tname} on {t.device}; move them to one "
                "device first, or compare on the host inside svcca.on_device(None)."
            )
    dev = chosen(first.device)
    if dev is None:
        return None
    if first.device != dev:
        raise ValueError(
            f"{fname} must be on {dev}, where svcca.on_device({str(dev)!r}) runs the work; "
            f"got a tensor on {first.device}. Tensors are not moved silently: move them "
            f"with .to({str(dev)!r}), or leave the block to compute where they live."
        )
    for a, nm in zip(arrays, names, strict=True):
        if not is_torch_tensor(a):
            raise TypeError(
                f"{nm} must be a torch tensor on {dev}, as {fname} is; got "
                f"{type(a).__name__}. Pass every representation as a tensor on one device "
                f"(torch.as_tensor(array, device={str(dev)!r})), or all as NumPy arrays for "
                "the host path."
            )
    return dev


def host_forced() -> bool:
    """Whether an ``on_device(None)`` block is in force (the host path always)."""
    return _WHERE.get() is None


def format_bytes(b: float) -> str:
    """``1536 -> '1.5 KiB'``: sizes in messages."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024 or unit == "GiB":
            return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
        b /= 1024
    raise AssertionError  # pragma: no cover


def _cap() -> int | None:
    """``SVCCA_DEVICE_MEMORY`` in bytes, or None when unset."""
    raw = os.environ.get("SVCCA_DEVICE_MEMORY", "").strip()
    if not raw:
        return None
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}
    unit = raw[-1].upper()
    try:
        value = float(raw[:-1]) * scale[unit] if unit in scale else float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):  # nan and inf too (int(inf) would overflow)
        raise ValueError(
            f"SVCCA_DEVICE_MEMORY={raw!r} must be a positive number of bytes, optionally "
            "with a K, M or G suffix (e.g. 8G)."
        )
    return int(value)


def free_bytes(device: Any, held: int = 0) -> int:
    """Bytes free on ``device`` now (``torch.cuda.mem_get_info``; the host's available
    memory for the CPU), capped by ``SVCCA_DEVICE_MEMORY`` less ``held``: what svcca
    already holds there for the same call (the free memory has those bytes taken out
    already; the cap has not)."""
    dev = resolve(device)
    if dev is not None and dev.type == "cuda":
        import torch

        free = int(torch.cuda.mem_get_info(dev)[0])
    else:
        free = _host_available()
    cap = _cap()
    return free if cap is None else max(0, min(free, cap - held))


def _host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**40


def plan_rows(
    *,
    fixed: int,
    per_row: int,
    device: Any,
    what: str,
    lower: str,
    most: int | None = None,
    least: int = 1,
    held: int = 0,
) -> int:
    """Rows per chunk that fit on ``device``: at most ``most``, at least ``least``.

    Parameters
    ----------
    fixed : int
        Bytes the work holds whatever the chunk (sums, factors, buffers of ``p x p``).
    per_row : int
        Bytes each row of a chunk adds (its copies in the working dtype).
    what : str
        The work, for the message (``"Moments of 4096 + 4096 features in float32"``).
    lower : str
        Which argument lowers the need (the message's fix).
    held : int
        Bytes svcca already holds on ``device`` for the same call (the sums of the other
        accumulators of a pairwise pass): they count against ``SVCCA_DEVICE_MEMORY``.

    Raises
    ------
    DeviceMemoryError
        When ``fixed + least * per_row`` exceeds the usable share (80%) of the free memory.
    """
    free = free_bytes(device, held)
    usable = int(_USABLE * free)
    need = fixed + least * per_row
    if need > usable:
        also = f", beside {format_bytes(held)} this call holds there already" if held else ""
        raise DeviceMemoryError(
            f"{what} needs {format_bytes(need)} on {resolve(device) or 'the host'} "
            f"({format_bytes(fixed)} held, {format_bytes(per_row)} per row of a chunk of at "
            f"least {least}{also}); {format_bytes(free)} is free there and svcca plans for "
            f"{_USABLE:.0%} of it. {lower}"
        )
    rows = (usable - fixed) // max(per_row, 1)
    return int(rows if most is None else max(least, min(rows, most)))


@contextmanager
def exact_products(device: Any) -> Iterator[None]:
    """float32 products inside the block in full float32, never TF32.

    A user (or a library) may have set ``torch.backends.cuda.matmul.allow_tf32`` or
    ``torch.set_float32_matmul_precision("high")`` for training; TF32 keeps 10 mantissa
    bits (relative error 2^-11, 4000x float32's), which would enter every cross-product
    silently, and at that resolution the rank tolerance of the CCA family
    (``1e3 eps``) would exceed the largest eigenvalue. The previous settings are
    restored when the last block (of any thread) exits, through the API that set them.
    On the CPU, oneDNN's bfloat16
    float32 products (``set_float32_matmul_precision("medium")``) are turned off the same
    way. Once TF32 is asked for with
    torch's ``fp32_precision`` settings (``torch.backends.fp32_precision = "tf32"``,
    torch 2.9 and later) the legacy getters above raise, and only ``fp32_precision``
    is read and set.
    """
    dev = resolve(device)
    if dev is None:
        yield
        return
    # The flags are process-wide: the first block in (of any thread) sets them and the
    # last one out restores them. Each block saving and restoring its own view let a
    # thread leaving its block switch TF32 back on under another thread's products.
    kind = "cuda" if dev.type == "cuda" else "cpu"
    with _HELD_LOCK:
        held = _HELD.get(kind)
        if held is None:
            held = _HELD[kind] = [0, _exact(kind)]
        held[0] += 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            held[0] -= 1
            if held[0] == 0:
                del _HELD[kind]
                held[1]()


_HELD_LOCK = threading.Lock()
_HELD: dict[str, list[Any]] = {}  # "cuda" / "cpu" -> [blocks inside, restore()]


def _exact(kind: str) -> Callable[[], None]:
    """Turn TF32 (``kind="cuda"``) or oneDNN's bfloat16 products (``"cpu"``) off, and
    return what puts the previous settings back, through the API that set them."""
    import torch

    if kind != "cuda":
        # set_float32_matmul_precision("medium") lets oneDNN multiply float32 in bfloat16
        # on CPUs that have it (torch >= 2.9: mkldnn.matmul.fp32_precision = "bf16")
        cpu = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
        if cpu is None or not hasattr(cpu, "fp32_precision"):  # pragma: no cover - old torch
            return lambda: None
        saved_cpu = cpu.fp32_precision
        cpu.fp32_precision = "ieee"

        def restore_cpu() -> None:
            cpu.fp32_precision = saved_cpu

        return restore_cpu
    matmul = torch.backends.cuda.matmul
    try:
        before = (matmul.allow_tf32, torch.get_float32_matmul_precision())
    except RuntimeError:  # "... used mix of the legacy and new APIs ..."
        saved = matmul.fp32_precision
        matmul.fp32_precision = "ieee"

        def restore_new() -> None:
            matmul.fp32_precision = saved

        return restore_new
    matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    def restore() -> None:
        # the precision last: it sets allow_tf32 too, and the reverse order leaves torch
        # >= 2.9 in a "mixed" state after "medium" (its getters then raise)
        matmul.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])

    return restore
