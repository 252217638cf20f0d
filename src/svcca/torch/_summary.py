"""See before you capture: every module's output on one batch, and how to record it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from svcca._result import result
from svcca.torch._batches import _default_forward, _inspect_batch, _move, check_packed
from svcca.torch._layers import _describe
from svcca.torch._options import CaptureError, CaptureOptions
from svcca.torch._reduce import (
    ConvMarks,
    _is_elementwise,
    check_model_layout,
    is_conv_block,
    is_conv_module,
)

__all__ = ["ModelSummary", "ModuleSummary", "summary"]

_SEQ = "sequence='mean'|'samples'|'last'|'first'|'keep'"
_CONV = "conv='mean'|'flatten'|'keep'"


@result
class ModuleSummary:
    """One module's output on the summarised batch.

    Attributes
    ----------
    name : str
        The ``model.named_modules()`` name (``""``: the model itself).
    type : str
        The module's class name.
    calls : int
        How many times it ran in the forward pass (0: not at all).
    output : str
        The structure of its (first call's) output: tensor shapes, tuple and dict or
        ``ModelOutput`` fields.
    capture : str
        What :func:`svcca.torch.capture` needs to record it with one row per datapoint
        (``select``, ``sequence``, ``time_axis``, ``conv``, call names), ``"ready"`` when
        nothing, or why it cannot be recorded per datapoint.
    """

    name: str
    type: str
    calls: int
    output: str
    capture: str


@result
class ModelSummary:
    """What :func:`summary` saw: one :class:`ModuleSummary` per module, in model order.

    ``str(s)`` (or ``print(s)``) is the table; ``s.modules`` the same as data.
    """

    model: str
    datapoints: int
    modules: tuple[ModuleSummary, ...]

    def __getitem__(self, name: str) -> ModuleSummary:
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(f"No module {name!r} in this summary of {self.model}.")

    def table(self, *, width: int = 60) -> str:
        """The summary as a text table; outputs longer than ``width`` are cut with ``...``."""
        head = ("module", "type", "calls", "output", "capture with")
        rows = [
            (
                m.name or "(model)",
                m.type,
                str(m.calls),
                m.output if len(m.output) <= width else m.output[: width - 3] + "...",
                m.capture,
            )
            for m in self.modules
        ]
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(4)]
        lines = [f"{self.model} on a batch of {self.datapoints} datapoints"]
        for r in [head, *rows]:
            lines.append(
                "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
            )
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def _leaves(obj: Any, path: tuple = (), depth: int = 0) -> Iterator[tuple[tuple, Any]]:
    import torch

    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif depth < 3 and isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k), depth + 1)
    elif depth < 3 and isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i), depth + 1)


def _tensor_advice(t: Any, n: int, time_axis: int, conv_map: bool) -> str | None:
    """What recording this tensor takes, or None when it has no row per datapoint."""
    if t.ndim == 0 or t.ndim > 5:
        return None
    if t.ndim <= 2:
        return "ready" if t.shape[0] == n else None
    if conv_map:
        return _CONV if t.shape[0] == n else None
    if t.ndim >= 4:
        if t.shape[0] != n:
            return None
        perm = "(0, 3, 1, 2)" if t.ndim == 4 else "(0, 4, 1, 2, 3)"
        return (
            f"layout unknown (maybe channels-last): conv_layers=[name] if (n, c, ...), or "
            f"select=lambda t: t.permute{perm} if (n, ..., c); then {_CONV}"
        )
    if time_axis == 1 and t.shape[0] == n:
        return _SEQ
    if t.shape[1] == n:
        return f"time_axis=0, {_SEQ}"
    if t.shape[0] == n:
        return f"time_axis=1, {_SEQ}"
    return None


def _advice(output: Any, module: Any, n: int, time_axis: int, conv_map: bool) -> str:
    import torch

    if isinstance(output, torch.Tensor):
        got = _tensor_advice(output, n, time_axis, conv_map)
        if got is None:
            return f"not per datapoint ({tuple(output.shape)}; the batch has {n})"
        return got
    if isinstance(module, torch.nn.RNNBase):
        seq = _tensor_advice(output[0], n, time_axis, False) or _SEQ
        return f"select=0, {seq}; or select=svcca.torch.rnn_state() for the final state"
    for path, leaf in _leaves(output):
        got = _tensor_advice(leaf, n, time_axis, False)
        if got is not None:
            sel = path[0] if len(path) == 1 else path
            return f"select={sel!r}" + ("" if got == "ready" else f", {got}")
    return "no tensor with a row per datapoint"


def summary(
    model: Any,
    batch: Any,
    *,
    time_axis: int = 1,
    datapoints: Callable[[Any], int] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
) -> ModelSummary:
    """Run one batch and list every module's output and what capturing it needs.

    The model runs once, in ``eval()`` mode under ``torch.no_grad()``, with a forward hook
    on every module (removed afterwards; train/eval modes restored).

    Parameters
    ----------
    model : torch.nn.Module
    batch
        One batch, as :func:`svcca.torch.capture` takes them.
    time_axis, datapoints, forward, device
        As for :func:`svcca.torch.capture`; ``time_axis`` and ``datapoints`` say how many
        datapoints the batch holds.

    Returns
    -------
    ModelSummary
        ``print()`` it for a table; ``.modules`` holds the rows as
        :class:`ModuleSummary` (name, type, calls, output, capture).

    Examples
    --------
    >>> import torch, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.ReLU(),
    ...                           torch.nn.Flatten(), torch.nn.Linear(24, 3))
    >>> s = svcca.torch.summary(net, torch.randn(5, 2, 8))
    >>> print(s)  # doctest: +NORMALIZE_WHITESPACE
    Sequential on a batch of 5 datapoints
    module   type        calls  output           capture with
    (model)  Sequential  1      Tensor(5, 3)     ready
    0        Conv1d      1      Tensor(5, 4, 6)  conv='mean'|'flatten'|'keep'
    1        ReLU        1      Tensor(5, 4, 6)  conv='mean'|'flatten'|'keep'
    2        Flatten     1      Tensor(5, 24)    ready
    3        Linear      1      Tensor(5, 3)     ready
    >>> s["1"].capture
    "conv='mean'|'flatten'|'keep'"
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    opts = CaptureOptions.make([""], time_axis=time_axis, datapoints=datapoints, mask=None)
    check_model_layout(model, opts)  # a time-major model read batch-major miscounts n
    check_packed(batch, 0, opts, forward)
    moved = _move(batch, device)
    n = _inspect_batch(moved, 0, opts).n
    run = forward if forward is not None else _default_forward
    calls: dict[str, int] = {}
    first: dict[str, tuple[str, str]] = {}
    marks = ConvMarks()

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: Any, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            conv_map = False
            if isinstance(output, torch.Tensor) and output.ndim in (3, 4, 5):
                conv_map = is_conv_module(module) or (output.ndim > 3 and is_conv_block(module))
                conv_map = conv_map or (
                    _is_elementwise(module)
                    and bool(args)
                    and isinstance(args[0], torch.Tensor)
                    and args[0] in marks
                    and args[0].shape == output.shape
                )
                if conv_map:
                    marks.add(output)
            if name not in first:
                first[name] = (_describe(output), _advice(output, module, n, time_axis, conv_map))

        return hook

    named = list(model.named_modules())
    modes = {m: m.training for _, m in named}
    handles = []
    try:
        for name, module in named:
            handles.append(module.register_forward_hook(make_hook(name)))
        model.eval()
        with torch.no_grad():
            try:
                run(model, moved)
            except CaptureError:
                raise
            except Exception as exc:
                raise CaptureError(
                    f"{type(model).__name__} failed on the batch ({_describe(batch)}): "
                    f"{type(exc).__name__}: {exc}. Pass forward=lambda model, batch: ... to "
                    "say how a batch is fed to it."
                ) from exc
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    rows = []
    for name, module in named:
        c = calls.get(name, 0)
        out, advice = first.get(name, ("-", "did not run"))
        if c > 1:
            advice = (
                f"ran {c}x: name the calls '{name}#0'..'{name}#{c - 1}' (or calls='each'); {advice}"
            )
        rows.append(ModuleSummary(name, type(module).__name__, c, out, advice))
    return ModelSummary(type(model).__name__, n, tuple(rows))
