"""Capturing straight into sufficient statistics, and over a series of checkpoints."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from svcca._moments import Moments
from svcca._validation import Precision, check_precision
from svcca.torch._batches import order_free
from svcca.torch._capture import capture
from svcca.torch._options import (
    Calls,
    CaptureError,
    CaptureOptions,
    Conv,
    MaskOption,
    Selector,
    Sequence_,
)
from svcca.torch._run import float32_if_exact, run_capture

__all__ = ["capture_checkpoints", "capture_moments", "load_checkpoint"]

Pair = tuple[str, str] | str


def _two_models(
    model: Any, other: Any, run: Callable[[Any, Any], Any], names: tuple[str, str]
) -> Any:
    """One module that runs ``model`` then ``other`` on each batch (both see it as it is).

    Two models each wholly on one device, but different devices, are refused by
    ``names``: one of them would fail on every batch, reported as this module failing.
    """
    import torch

    where = [{t.device for t in (*m.parameters(), *m.buffers())} for m in (model, other)]
    if all(len(w) == 1 for w in where) and where[0] != where[1]:
        (da,), (db,) = where
        raise ValueError(
            f"{names[0]} is on {da} and {names[1]} on {db}; both run on the same batches. "
            f"Move one to the other's device first ({names[1]}.to({str(da)!r}))."
        )

    class TwoModels(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = model
            self.b = other

        def forward(self, batch: Any) -> Any:
            return run(self.a, batch), run(self.b, batch)

    return TwoModels()


def capture_moments(
    model: Any,
    batches: Iterable[Any],
    pairs: Sequence[Pair],
    *,
    other: Any = None,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "mean",
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
    precision: Precision = "float64",
) -> dict[Pair, Moments]:
    """Accumulate :class:`svcca.Moments` of layer pairs while the model runs.

    No activation is kept beyond the current batch: memory is ``O((p + q)^2)`` per pair
    whatever the number of samples. Every linear measure (``svcca.cca``, ``svcca.svcca``,
    ``svcca.pwcca``, ``svcca.pls``) accepts the returned statistics in place of arrays.

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        As for :func:`svcca.torch.capture`.
    pairs : list of (str, str) or str
        Layer pairs ``(x_layer, y_layer)``; with ``other``, ``y_layer`` names a module of
        ``other``. A single name gives a one-sided statistic (for ``svcca.pca``).
    other : torch.nn.Module, optional
        A second model run on the same batches (e.g. another training seed).
    conv : {"mean", "flatten"}, default "mean"
        Conv outputs must be reduced to 2-D here ("keep" is not possible).
    select, sequence, time_axis, mask, calls, datapoints, conv_layers, forward, device, progress
        As for :func:`svcca.torch.capture` (``select`` and ``conv_layers`` keys for
        ``other`` are ``"b.<name>"``). With ``calls="each"``, pairs name the calls of a
        repeated module, ``"block#1"``.
    precision : {"float64", "float32"}, default "float64"
        ``"float32"``: activations centred on float64 means, then rounded once to
        float32, their products taken in float32 chunks of at most 4096 rows, added into
        float64 sums
        (:class:`svcca.Moments`, docs/precision.md).

    Returns
    -------
    dict
        ``{pair: Moments}`` in the order given.

    Examples
    --------
    >>> import torch, svcca, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    >>> m = svcca.torch.capture_moments(net, torch.randn(200, 4).split(50), [("0", "1")])
    >>> m[("0", "1")].n
    200
    """
    if conv == "keep":
        raise ValueError(
            "capture_moments needs 2-D activations: use conv='mean' or conv='flatten' (or "
            "capture conv maps with capture() and compare them with svcca.conv)."
        )
    if sequence == "keep":
        raise ValueError(
            "capture_moments needs 2-D activations, and sequence='keep' gives each "
            "datapoint a whole (length, features) sequence: use sequence='samples' (every "
            "real token a datapoint), 'mean', 'last' or 'first'."
        )
    pairs = check_pairs(pairs)
    precision = check_precision(precision)
    run = forward
    target = model
    if other is not None and other is not model:
        from svcca.torch._batches import _default_forward

        target = _two_models(model, other, forward or _default_forward, ("model", "other"))
        run = lambda m, batch: m(batch)  # noqa: E731

        def xname(s: str) -> str:
            return f"a.{s}" if s else "a"

        def yname(s: str) -> str:
            # "fc1" names a module of other; "b.fc1" (select's key form) is taken as is.
            if s == "b" or s.startswith("b."):
                return s
            return f"b.{s}" if s else "b"

        def rename(k: str) -> str:
            return k if k.startswith("b.") or k == "b" else xname(k)

        if isinstance(select, Mapping):
            select = {rename(k): v for k, v in select.items()}
        conv_layers = [
            rename(k) for k in ([conv_layers] if isinstance(conv_layers, str) else conv_layers)
        ]
    else:

        def xname(s: str) -> str:
            return s

        yname = xname
    wanted: list[str] = []
    for p in pairs:
        names = [xname(p)] if isinstance(p, str) else [xname(p[0]), yname(p[1])]
        for n in names:
            if n not in wanted:
                wanted.append(n)
    if calls == "each":
        # the recorded names are only known once the model ran: record every call
        wanted = list(dict.fromkeys(_CALL_SUFFIX.sub("", n) for n in wanted))
    accumulate, stats = pair_accumulator(pairs, xname, yname, precision)
    with order_free():  # moments of one pass do not depend on the order of the datapoints
        opts = CaptureOptions.make(
            wanted,
            select=select,
            sequence=sequence,
            time_axis=time_axis,
            conv=conv,
            # float64 rows: the accumulator centres them on float64 means, then casts
            dtype=np.float64,
            mask=mask,
            calls=calls,
            datapoints=datapoints,
            conv_layers=conv_layers,
        )
        run_capture(
            target,
            batches,
            opts,
            accumulate,
            forward=run,
            device=device,
            progress=progress,
            desc="moments",
            skip=0,
            on_device=True,
        )
    return finished(stats)


_CALL_SUFFIX = re.compile(r"#\d+$")


def check_pairs(pairs: Any) -> list[Pair]:
    """``pairs`` as a list of ``(x, y)`` tuples of str or single str, validated."""
    if isinstance(pairs, (str, tuple)) and not (
        isinstance(pairs, tuple) and all(isinstance(p, tuple) for p in pairs)
    ):
        pairs = [pairs]
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pairs is empty: give at least one (x_layer, y_layer) pair.")
    for p in pairs:
        ok = isinstance(p, str) or (
            isinstance(p, tuple) and len(p) == 2 and all(isinstance(s, str) for s in p)
        )
        if not ok:
            raise TypeError(
                f"Each entry of pairs must be a (x_layer, y_layer) tuple of str or one str; "
                f"got {p!r}."
            )
    return pairs


def pair_accumulator(
    pairs: Sequence[Pair],
    xname: Callable[[str], str] = str,
    yname: Callable[[str], str] = str,
    precision: Precision = "float64",
) -> tuple[Callable[[int, dict[str, Any]], None], dict[Pair, Moments | None]]:
    """A capture callback that updates one :class:`Moments` per pair, and the pairs.

    NumPy batches update host :class:`Moments`; tensor batches (a capture with
    ``device_tensors=True`` whose work runs on a device) one
    :class:`~svcca._moments._torch_moments.TorchAccumulator` per pair on that device,
    finished into :class:`Moments` when the statistics are read (:func:`finished`).
    """
    stats: dict[Pair, Any] = {p: None for p in pairs}

    def get(arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
        if name not in arrays:
            raise CaptureError(
                f"pairs name {name!r}, but the capture recorded {list(arrays)}; name one of "
                "those (a module that ran several times is recorded as '<name>#0', "
                "'<name>#1', ...)."
            )
        return arrays[name]

    def accumulate(i: int, arrays: dict[str, np.ndarray]) -> None:
        queued = []
        for p in pairs:
            if isinstance(p, str):
                x, y = get(arrays, xname(p)), None
            else:
                x, y = get(arrays, xname(p[0])), get(arrays, yname(p[1]))
            m = stats[p]
            label = f" (layer pair {p!r}, batch {i})"
            if m is None:
                q = 0 if y is None else y.shape[1]
                if isinstance(x, np.ndarray):
                    m = Moments.empty(x.shape[1], q, precision=precision)
                else:
                    from svcca._moments import TorchAccumulator

                    # every pair's sums are held at once: planned beside those before it
                    held = sum(a.sums_bytes for a in stats.values() if a is not None)
                    m = TorchAccumulator(x.shape[1], q, x.device, precision, held=held)
                stats[p] = m
            if isinstance(m, Moments):
                if precision == "float32":
                    x = float32_if_exact(x)
                    y = None if y is None else float32_if_exact(y)
                m.update(x, y, _batch_label=label)
            else:
                queued.append((m, m.queue(x, y, label=label)))
        for m, checks in queued:  # one synchronisation for every pair of the batch
            m.verify(checks)

    return accumulate, stats


def finished(stats: dict[Pair, Any]) -> dict[Pair, Moments]:
    """The accumulated statistics (device sums copied to the host once), or the
    empty-batches error."""
    if any(m is None for m in stats.values()):
        raise ValueError("batches was empty: there was nothing to run the model on.")
    return {p: m if isinstance(m, Moments) else m.finish() for p, m in stats.items()}


def load_checkpoint(model: Any, checkpoint: Any, *, key: str | None = None) -> Any:
    """Load a state dict into ``model`` from a path (``torch.load(weights_only=True)``).

    ``checkpoint`` may be a path or a state dict; ``key`` picks the state dict out of a
    saved dict such as ``{"model": state_dict, "epoch": 3}``. Returns ``model``.

    Examples
    --------
    >>> import os, tempfile, torch, svcca.torch
    >>> net = torch.nn.Linear(4, 2)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "epoch3.pt")
    ...     torch.save({"model": net.state_dict(), "epoch": 3}, path)
    ...     fresh = svcca.torch.load_checkpoint(torch.nn.Linear(4, 2), path, key="model")
    >>> bool(torch.equal(fresh.weight, net.weight))
    True
    """
    import torch

    if isinstance(checkpoint, (str, os.PathLike)):
        path = os.fspath(checkpoint)
        if not os.path.exists(path):
            raise ValueError(f"Checkpoint {path!r} does not exist.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Could not load checkpoint {path!r} with torch.load(weights_only=True): {exc}. "
                "Save checkpoints as state dicts (torch.save(model.state_dict(), path)); "
                "pickled whole models are never loaded here."
            ) from exc
    else:
        state = checkpoint
    if key is not None:
        if not isinstance(state, Mapping) or key not in state:
            keys = list(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"Checkpoint has no entry {key!r}; it holds {keys}.")
        state = state[key]
    if not isinstance(state, Mapping):
        raise TypeError(
            f"A checkpoint must hold a state dict (a mapping of tensors); got "
            f"{type(state).__name__}. If the state dict is nested, pass key=..."
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"The checkpoint does not fit {type(model).__name__}: {exc}".strip()
        ) from exc
    return model


def _labelled(checkpoints: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(checkpoints, Mapping):
        yield from ((str(k), v) for k, v in checkpoints.items())
        return
    if isinstance(checkpoints, (str, os.PathLike)):
        raise TypeError(
            "checkpoints must be a list of paths (or a dict label -> path); got one path. "
            "Wrap it in a list."
        )
    for i, c in enumerate(checkpoints):
        if isinstance(c, (str, os.PathLike)):
            yield os.path.splitext(os.path.basename(os.fspath(c)))[0], c
        else:
            yield str(i), c


def capture_checkpoints(
    model: Any,
    checkpoints: Sequence[Any] | Mapping[str, Any],
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    *,
    key: str | None = None,
    **options: Any,
) -> dict[str, dict[str, np.ndarray]]:
    """Capture the same layers at every checkpoint of a training run.

    Each checkpoint is loaded with ``torch.load(..., weights_only=True)`` into ``model``
    (whose own weights are restored afterwards), then :func:`svcca.torch.capture` runs
    over ``batches``, which must therefore be re-iterable (a DataLoader or a list).

    Parameters
    ----------
    model : torch.nn.Module
        The architecture the checkpoints belong to.
    checkpoints : list of paths or state dicts, or dict of label to either
        Labels default to the file names without extension (or the position).
    batches : re-iterable of batches
    layers : list of str
    key : str, optional
        Entry of each saved dict that holds the state dict.
    **options
        Passed to :func:`svcca.torch.capture` (``select``, ``conv``, ``sequence``, ...).

    Returns
    -------
    dict of str to dict of str to ndarray
        ``{checkpoint_label: {layer: activations}}``; flatten it with
        ``{(c, l): a for c, d in out.items() for l, a in d.items()}`` for all-pairs
        comparisons across layers and time.

    Examples
    --------
    >>> import copy, torch, svcca, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh())
    >>> start = copy.deepcopy(net.state_dict())
    >>> with torch.no_grad():
    ...     _ = net[0].weight.add_(0.5 * torch.randn(8, 4))  # "training"
    >>> end = copy.deepcopy(net.state_dict())
    >>> series = svcca.torch.capture_checkpoints(
    ...     net, {"start": start, "end": end}, [torch.randn(200, 4)], ["1"]
    ... )
    >>> list(series), series["end"]["1"].shape
    (['start', 'end'], (200, 8))
    >>> r = svcca.pairwise({t: acts["1"] for t, acts in series.items()}, measure="cka_linear")
    >>> r.shape
    (2, 2)
    """
    if iter(batches) is batches:  # type: ignore[comparison-overlap]
        raise TypeError(
            "batches is a one-shot iterator, but every checkpoint needs another pass; pass a "
            "list of batches or a DataLoader."
        )
    saved = copy.deepcopy(model.state_dict())
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        for label, ckpt in _labelled(checkpoints):
            if label in out:
                raise ValueError(f"Two checkpoints share the label {label!r}; pass a dict.")
            load_checkpoint(model, ckpt, key=key)
            out[label] = capture(model, batches, layers, **options)
    finally:
        model.load_state_dict(saved)
    if not out:
        raise ValueError("checkpoints is empty.")
    return out
