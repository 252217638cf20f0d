"""Recording the outputs of named modules of a PyTorch model.

Everything here goes through :func:`capture_stream`: it registers forward hooks on the
requested modules, runs the model batch by batch in ``eval()`` mode under
``torch.no_grad()``, hands each batch's activations (detached NumPy arrays, already
reduced to the requested shape) to a callback, and always removes the hooks and restores
every module's train/eval mode in ``finally``. The destinations (memory, disk, moments)
are callbacks on top of it.

The invariant every path keeps: a recorded array has one row per datapoint of the batch
(one per real token with ``sequence="samples"``), or the capture raises
:class:`CaptureError` saying what came, what was expected and which option to change.
The number of datapoints ``n`` of a batch is read from the batch itself (see
:func:`batch_datapoints`); padding marked by an ``attention_mask`` never counts.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from svcca._progress import Progress, check_progress
from svcca._validation import SVCCAWarning, check_option

__all__ = [
    "CaptureError",
    "CaptureOptions",
    "CaptureWarning",
    "RNNState",
    "batch_datapoints",
    "capture",
    "capture_stream",
    "resolve_layers",
    "rnn_state",
]

Sequence_ = Literal["samples", "mean", "last", "first", "keep"]
Conv = Literal["keep", "mean", "flatten"]
Calls = Literal["raise", "each"]
Selector = int | str | tuple | Callable[[Any], Any]
MaskOption = Literal["auto"] | Callable[[Any], Any] | None

_SEQUENCES = ("samples", "mean", "last", "first", "keep")
#: Keys of a mapping batch whose first dimension is the number of datapoints, in order.
BATCH_KEYS = ("input_ids", "inputs_embeds", "pixel_values", "input_values", "input_features")
#: Keys of a mapping batch that feed an encoder-decoder model's decoder.
DECODER_KEYS = ("decoder_input_ids", "decoder_inputs_embeds", "decoder_attention_mask")


class CaptureError(ValueError):
    """The model could not be run on a batch, or a module's output could not be used."""


class CaptureWarning(SVCCAWarning):
    """A capture ran, but its rows may not mean what the caller expects (see the message)."""


@dataclass(frozen=True)
class RNNState:
    """Selector for the final state of an ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``.

    Made by :func:`rnn_state`; see there.
    """

    state: Literal["h", "c"] = "h"
    layers: Literal["last", "all"] = "last"

    def __call__(self, output: Any, module: Any = None) -> Any:
        import torch

        if module is None or not isinstance(module, torch.nn.RNNBase):
            kind = "no module" if module is None else type(module).__name__
            raise CaptureError(
                f"rnn_state() picks the final state of an nn.RNN, nn.LSTM or nn.GRU; it was "
                f"given the output of {kind}. Use it as select= for an RNN module only."
            )
        hidden = output[1]
        if isinstance(hidden, tuple):  # LSTM: (h, c)
            h = hidden[0] if self.state == "h" else hidden[1]
        elif self.state == "c":
            raise CaptureError(
                f"rnn_state(state='c') needs an nn.LSTM (which has a cell state); "
                f"{type(module).__name__} has only h. Use state='h'."
            )
        else:
            h = hidden
        if h.ndim != 3:
            raise CaptureError(
                f"rnn_state() expects the state of a batched {type(module).__name__}, "
                f"(num_layers * directions, n, hidden); got shape {tuple(h.shape)}. Feed "
                "batched inputs (unbatched inputs give 2-D states)."
            )
        dirs = 2 if module.bidirectional else 1
        if self.layers == "last":
            h = h[-dirs:]  # the last layer, both directions if bidirectional
        return h.permute(1, 0, 2).reshape(h.shape[1], -1)


def rnn_state(
    *, state: Literal["h", "c"] = "h", layers: Literal["last", "all"] = "last"
) -> RNNState:
    """A ``select=`` value that records an RNN's final state as ``(n, features)``.

    PyTorch returns an RNN's final state ``h`` as ``(num_layers * directions, n, hidden)``
    whatever ``batch_first`` says, so neither ``select`` paths nor ``sequence=`` can take
    it per datapoint. This selector does.

    Parameters
    ----------
    state : {"h", "c"}, default "h"
        The hidden state, or an ``nn.LSTM``'s cell state.
    layers : {"last", "all"}, default "last"
        ``"last"``: the last layer's state, ``(n, directions * hidden)`` (both directions
        side by side for a bidirectional RNN, forward first); ``"all"``: every layer's,
        ``(n, num_layers * directions * hidden)``, layer by layer.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> lstm = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True)
    >>> net = torch.nn.Sequential()
    >>> net.add_module("rnn", lstm)
    >>> acts = svcca.torch.capture(net, [torch.randn(10, 7, 3)], ["rnn"],
    ...                            forward=lambda m, x: m.rnn(x),
    ...                            select=svcca.torch.rnn_state())
    >>> acts["rnn"].shape
    (10, 5)
    """
    check_option(state, "state", ("h", "c"))
    check_option(layers, "layers", ("last", "all"))
    return RNNState(state, layers)


@dataclass(frozen=True)
class CaptureOptions:
    """How module outputs are picked and shaped (validated once, shared by all paths).

    Every knob of :func:`capture_stream` except the run itself (``forward``, ``device``,
    ``progress``) lives here; :meth:`kwargs` gives them back as keyword arguments, so a
    caller can validate once and forward them: ``capture_stream(..., **opts.kwargs())``.
    """

    layers: tuple[str, ...]
    select: Mapping[str, Selector]
    sequence: Sequence_ | None
    time_axis: int
    conv: Conv
    dtype: np.dtype
    mask: MaskOption = "auto"
    calls: Calls = "raise"
    datapoints: Callable[[Any], int] | None = None
    conv_layers: tuple[str, ...] = ()

    @classmethod
    def make(
        cls,
        layers: Sequence[str] | str,
        *,
        select: Selector | Mapping[str, Selector] | None = None,
        sequence: Sequence_ | None = None,
        time_axis: int = 1,
        conv: Conv = "keep",
        dtype: Any = np.float32,
        mask: MaskOption = "auto",
        calls: Calls = "raise",
        datapoints: Callable[[Any], int] | None = None,
        conv_layers: Sequence[str] = (),
    ) -> CaptureOptions:
        if isinstance(layers, str):
            layers = [layers]
        try:
            layers = tuple(layers)
        except TypeError as exc:
            raise TypeError(
                f"layers must be a list of module names (model.named_modules() names); got "
                f"{type(layers).__name__}."
            ) from exc
        if not layers:
            raise ValueError("layers is empty: name at least one module to record.")
        for name in layers:
            if not isinstance(name, str):
                raise TypeError(f"layer names must be str; got {name!r} ({type(name).__name__}).")
        if len(set(layers)) != len(layers):
            dup = sorted({n for n in layers if layers.count(n) > 1})
            raise ValueError(f"layers lists {dup} more than once; name each module once.")
        if isinstance(select, Mapping):
            unknown = sorted(set(select) - set(layers))
            if unknown:
                raise ValueError(
                    f"select names {unknown}, which are not in layers {list(layers)}; give "
                    "select a key for each recorded layer whose output needs picking."
                )
            sel = dict(select)
        elif select is None:
            sel = {}
        else:
            _check_selector(select)
            sel = {name: select for name in layers}
        for s in sel.values():
            _check_selector(s)
        if sequence is not None and sequence not in _SEQUENCES:
            raise ValueError(
                f"sequence must be one of 'samples', 'mean', 'last', 'first', 'keep' or None; "
                f"got {sequence!r}."
            )
        check_option(conv, "conv", ("keep", "mean", "flatten"))
        if isinstance(time_axis, bool) or time_axis not in (0, 1):
            raise ValueError(
                f"time_axis must be 1 for (batch, time, features) outputs (batch_first=True) "
                f"or 0 for (time, batch, features) (PyTorch's default for nn.LSTM and "
                f"nn.TransformerEncoderLayer); got {time_axis!r}."
            )
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise ValueError(f"dtype must be a floating dtype such as float32; got {dt}.")
        if not (mask is None or mask == "auto" or callable(mask)):
            raise TypeError(
                f"mask must be 'auto' (use a mapping batch's 'attention_mask'), None (count "
                f"every position) or a callable batch -> (n, T) mask; got {mask!r}."
            )
        check_option(
            calls,
            "calls",
            ("raise", "each"),
            "'raise' refuses a module that runs more than once per forward pass; 'each' "
            "records every call as '<name>#0', '<name>#1', ...",
        )
        if datapoints is not None and not callable(datapoints):
            raise TypeError(
                f"datapoints must be a callable batch -> number of datapoints; got {datapoints!r}."
            )
        if isinstance(conv_layers, str):
            conv_layers = [conv_layers]
        conv_names = tuple(conv_layers)
        stray = sorted(set(conv_names) - set(layers))
        if stray:
            raise ValueError(
                f"conv_layers names {stray}, which are not in layers {list(layers)}; list "
                "recorded layers whose outputs are channels-first maps, (n, c, L) or "
                "(n, c, h, w)."
            )
        return cls(layers, sel, sequence, time_axis, conv, dt, mask, calls, datapoints, conv_names)

    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`capture_stream` (all but ``layers``)."""
        return {
            "select": dict(self.select),
            "sequence": self.sequence,
            "time_axis": self.time_axis,
            "conv": self.conv,
            "dtype": self.dtype,
            "mask": self.mask,
            "calls": self.calls,
            "datapoints": self.datapoints,
            "conv_layers": self.conv_layers,
        }


def _check_selector(s: Any) -> None:
    if isinstance(s, (int, str)) or callable(s):
        return
    if isinstance(s, tuple) and all(isinstance(k, (int, str)) for k in s):
        return
    raise TypeError(
        "select must be an int (tuple position), a str (dict key or attribute), a tuple of "
        f"those (a path into nested outputs), svcca.torch.rnn_state() or a callable; got {s!r}."
    )


_CALL = re.compile(r"(.*)#(\d+)")


def _split_call(name: str, modules: Mapping[str, Any]) -> tuple[str, int | None]:
    """``"block#1"`` -> ``("block", 1)`` (the second call); an exact module name wins."""
    if name in modules:
        return name, None
    m = _CALL.fullmatch(name)
    if m and m.group(1) in modules:
        return m.group(1), int(m.group(2))
    return name, None


# Children through which a wrapper runs the model it wraps: DataParallel's and
# DistributedDataParallel's ``module``, torch.compile's ``_orig_mod``.
_WRAPPED = ("module", "_orig_mod")


def wrapper_prefixes(model: Any) -> list[str]:
    """The prefixes wrappers add to the wrapped model's module names, outermost first.

    ``torch.nn.DataParallel(net)`` names ``net``'s ``"fc"`` ``"module.fc"``,
    ``torch.compile(net)`` ``"_orig_mod.fc"``, and nested wrappers both
    (``"_orig_mod.module.fc"``). A wrapper is a module whose only child is one of those.
    """
    out: list[str] = []
    prefix, m = "", model
    while len(out) < 4:
        children = list(m.named_children())
        if len(children) != 1 or children[0][0] not in _WRAPPED:
            break
        prefix += children[0][0] + "."
        out.append(prefix)
        m = children[0][1]
    return out


def locate_layers(model: Any, layers: Sequence[str]) -> dict[str, tuple[str, int | None]]:
    """Each requested name's module name in ``model`` and call (None: every call).

    ``"<name>#<k>"`` names the ``k``-th call (0-based) of a module that runs more than
    once per forward pass. Wrappers are transparent: a name the model does not have is
    followed through any ``DataParallel`` / ``DistributedDataParallel`` (``module``) or
    ``torch.compile`` (``_orig_mod``) on its path, so a wrapped model takes the plain
    model's names (and the prefixed ones). An unknown name's error lists near matches
    and, for a wrapped model, the prefix.
    """
    modules = dict(model.named_modules())
    out: dict[str, tuple[str, int | None]] = {}
    for name in layers:
        base, k = _split_call(name, modules)
        if base not in modules:
            call = _CALL.fullmatch(name)
            tries = [(name, None)] + ([(call.group(1), int(call.group(2)))] if call else [])
            for cand, kk in tries:
                real = _through_wrappers(model, cand)
                if real is not None:
                    base, k = real, kk
                    break
            else:
                raise ValueError(_no_module(model, name, modules, wrapper_prefixes(model)))
        out[name] = (base, k)
    return out


def _through_wrappers(model: Any, name: str) -> str | None:
    """``name``'s module name in ``model`` with the wrappers on its path stepped into
    (``"fc"`` -> ``"module.fc"``), or None when it names no module."""
    path: list[str] = []
    m = model
    for seg in name.split(".") if name else []:
        while True:
            children = dict(m.named_children())
            if seg in children:
                m = children[seg]
                path.append(seg)
                break
            if len(children) == 1 and next(iter(children)) in _WRAPPED:
                ((step, m),) = children.items()
                path.append(step)
                continue
            return None
    return ".".join(path) if path else None


def _no_module(model: Any, name: str, modules: Mapping[str, Any], prefixes: list[str]) -> str:
    names = [n for n in modules if n]
    # near matches among the names as given and as the plain model names them
    plain = {n[len(p) :]: n for p in reversed(prefixes) for n in names if n.startswith(p)}
    near = difflib.get_close_matches(name, [*names, *plain], n=5, cutoff=0.5)
    near = list(dict.fromkeys(plain.get(n, n) for n in near))
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    if prefixes:
        hint += (
            f" The model is wrapped ({type(model).__name__}): the names inside it start "
            f"with {prefixes[-1]!r}, and both the plain and the prefixed names are accepted."
        )
    shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
    return (
        f"{type(model).__name__} has no module named {name!r}.{hint} Names come from "
        f"model.named_modules(): {shown}"
    )


def resolve_layers(model: Any, layers: Sequence[str]) -> dict[str, Any]:
    """Map each requested name to its module (:func:`locate_layers`)."""
    modules = dict(model.named_modules())
    return {name: modules[base] for name, (base, _) in locate_layers(model, layers).items()}


def _describe(obj: Any, depth: int = 0) -> str:
    shape = getattr(obj, "shape", None)
    if shape is not None:
        return f"{type(obj).__name__}{tuple(shape)}"
    if obj is None:
        return "None"
    if depth > 2:
        return type(obj).__name__
    if isinstance(obj, Mapping):
        inner = ", ".join(f"{k!r}: {_describe(v, depth + 1)}" for k, v in list(obj.items())[:6])
        more = ", ..." if len(obj) > 6 else ""
        return f"{type(obj).__name__}{{{inner}{more}}}"
    if isinstance(obj, (tuple, list)):
        inner = ", ".join(_describe(v, depth + 1) for v in obj[:6])
        more = ", ..." if len(obj) > 6 else ""
        return f"{type(obj).__name__}({inner}{more})"
    return type(obj).__name__


# ---------------------------------------------------------------------------- batches


def _is_packed(x: Any) -> bool:
    from torch.nn.utils.rnn import PackedSequence

    return isinstance(x, PackedSequence)


def _packed_in(batch: Any) -> bool:
    """Whether a batch is a PackedSequence, or a tuple / list that starts with one."""
    if _is_packed(batch):
        return True
    return isinstance(batch, (tuple, list)) and bool(batch) and _is_packed(batch[0])


def check_packed(batch: Any, i: int, opts: CaptureOptions, forward: Any) -> None:
    """Refuse a PackedSequence batch that would be fed or counted the namedtuple way."""
    if not _packed_in(batch) or (forward is not None and opts.datapoints is not None):
        return
    what = []
    if forward is None:
        what.append(
            "the default forward would feed the model only its .data, (total tokens, "
            "features), as if it were a batch of that many datapoints"
        )
    if opts.datapoints is None:
        what.append("the number of datapoints (sequences) cannot be read from it")
    raise CaptureError(
        f"Batch {i} is {'' if _is_packed(batch) else 'a tuple that starts with '}a "
        f"torch.nn.utils.rnn.PackedSequence, a namedtuple: {'; '.join(what)}. Pass "
        "forward=lambda m, b: m(b) (or m(b[0]) for a tuple) to feed it whole, "
        "datapoints=lambda b: int(b.batch_sizes[0]) for its number of sequences, and "
        "select=svcca.torch.rnn_state() to record an RNN's final state (its output sequence "
        "is packed too: unpack it in select= with torch.nn.utils.rnn.pad_packed_sequence)."
    )


def _lead_tensor(batch: Any) -> Any:
    """The tensor whose size gives a batch's number of datapoints, or None."""
    import torch

    if _is_packed(batch):
        return None  # its .data is (total tokens, features)
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        for key in BATCH_KEYS:
            if isinstance(batch.get(key), torch.Tensor):
                return batch[key]
        for v in batch.values():
            if isinstance(v, torch.Tensor):
                return v
        return None
    if isinstance(batch, (tuple, list)) and batch:
        return _lead_tensor(batch[0])
    return None


def batch_datapoints(batch: Any, *, time_axis: int = 1) -> int | None:
    """How many datapoints a batch holds, as the capture reads it (None: cannot tell).

    The first dimension of the batch if it is a tensor, of its first element if it is a
    tuple or list (a DataLoader's ``(inputs, labels)``), or of a mapping's
    ``input_ids`` / ``inputs_embeds`` / ``pixel_values`` / ``input_values`` /
    ``input_features`` (the first of those present, else its first tensor value). With
    ``time_axis=0`` the inputs are time-major too, ``(T, n, ...)``, and ``n`` is their
    second dimension. A ``PackedSequence`` (whose ``.data`` is ``(total tokens, ...)``)
    gives None.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> svcca.torch.batch_datapoints((torch.zeros(32, 3, 8, 8), torch.zeros(32)))  # (x, labels)
    32
    >>> svcca.torch.batch_datapoints({"input_ids": torch.zeros(4, 12, dtype=torch.long)})
    4
    >>> svcca.torch.batch_datapoints(torch.zeros(12, 4, 5), time_axis=0)  # (T, n, features)
    4
    """
    t = _lead_tensor(batch)
    if t is None or t.ndim == 0:
        return None
    if time_axis == 0:
        return int(t.shape[1]) if t.ndim >= 2 else None
    return int(t.shape[0])


@dataclass
class _Batch:
    """What the capture knows about the batch being run."""

    index: int
    n: int
    mask: Any  # (n, T) bool tensor or None
    mask_source: str


def _inspect_batch(batch: Any, i: int, opts: CaptureOptions) -> _Batch:
    import torch

    if opts.datapoints is not None:
        n = opts.datapoints(batch)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise CaptureError(
                f"datapoints(batch) must return the batch's number of datapoints, an int >= "
                f"1; got {n!r} on batch {i}."
            )
        n = int(n)
    else:
        got = batch_datapoints(batch, time_axis=opts.time_axis)
        if got is None:
            raise CaptureError(
                f"Cannot tell how many datapoints batch {i} ({_describe(batch)}) holds: it "
                "has no tensor to read it from (a tensor, a tuple whose first element is one, "
                "or a mapping with 'input_ids' or 'pixel_values'). Pass datapoints=lambda "
                "batch: <count> so that every output can be checked for one row per "
                "datapoint."
            )
        if got == 0:
            raise CaptureError(
                f"Batch {i} ({_describe(batch)}) holds no datapoints: there is nothing to "
                "record. Drop empty batches from the data (a filter or sampler that can "
                "yield one)."
            )
        n = got
    if opts.mask is None:
        return _Batch(i, n, None, "")
    if opts.mask == "auto":
        if not isinstance(batch, Mapping):
            return _Batch(i, n, None, "")
        decoder = [k for k in DECODER_KEYS if batch.get(k) is not None]
        if decoder and opts.sequence not in (None, "keep"):
            raise CaptureError(
                f"Batch {i} has decoder inputs ({', '.join(decoder)}) besides the encoder's: "
                "an encoder-decoder model has two sequences, and mask='auto' cannot tell "
                "which one a recorded module's positions belong to (the encoder's "
                "attention_mask would mask decoder outputs of the same length). Say it: "
                "mask=lambda b: b['attention_mask'] for encoder layers, mask=lambda b: "
                "b['decoder_attention_mask'] (or mask=None when the decoder inputs have no "
                "padding) for decoder layers, and capture the two in separate calls."
            )
        if batch.get("attention_mask") is None:
            return _Batch(i, n, None, "")
        raw, source = batch["attention_mask"], "the batch's attention_mask"
    else:
        raw, source = opts.mask(batch), "mask(batch)"
        if raw is None:
            return _Batch(i, n, None, "")
    m = torch.as_tensor(raw)
    if m.ndim != 2 or m.shape[0] != n:
        raise CaptureError(
            f"{source} must be (n, T) = ({n}, T) for batch {i} with {n} datapoints (1 for a "
            f"real token, 0 for padding); got shape {tuple(m.shape)}. Pass mask=None to count "
            "every position, or mask=lambda batch: ... to give it."
        )
    if m.dtype != torch.bool:
        if m.is_floating_point() or m.is_complex():
            raise CaptureError(
                f"{source} on batch {i} is a floating-point mask (dtype {m.dtype}); it is not "
                "read as 0/1 because an additive mask (0 for real tokens, -inf or -1e9 for "
                "padding) is floating point too. Say which: mask=lambda batch: "
                "batch['attention_mask'] > 0 for a 0/1 mask, == 0 for an additive one."
            )
        if bool(((m != 0) & (m != 1)).any()):
            raise CaptureError(
                f"{source} must hold only 0/1 (or bool) values on batch {i}; got dtype "
                f"{m.dtype} with other values. An additive (0 / -inf) mask must be converted "
                "first: mask=lambda batch: batch['mask'] == 0."
            )
        m = m != 0
    empty = (~m.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise CaptureError(
            f"{source} on batch {i} marks no real token for datapoints {empty[:10]} (rows of "
            "the batch): they have nothing to record. Drop them from the data."
        )
    return _Batch(i, n, m, source)


_SHUFFLE_MESSAGE = "batches is a DataLoader that shuffles"


@contextlib.contextmanager
def order_free() -> Iterator[None]:
    """No shuffling-loader warning inside: for results that do not depend on the order.

    Moments accumulated in one pass (every layer of the pass sees each batch together)
    are the same whatever order the datapoints come in.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SHUFFLE_MESSAGE, category=CaptureWarning)
        yield


def _warn_if_shuffled(batches: Any) -> None:
    try:
        from torch.utils.data import DataLoader, RandomSampler
    except ImportError:  # pragma: no cover - torch always has it
        return
    if not isinstance(batches, DataLoader):
        return
    samplers = [batches.sampler, getattr(batches.batch_sampler, "sampler", None)]
    shuffles = any(
        isinstance(s, RandomSampler) or getattr(s, "shuffle", False) is True for s in samplers
    )
    if shuffles:
        warnings.warn(
            f"{_SHUFFLE_MESSAGE} (shuffle=True or a random sampler): every "
            "pass visits the datapoints in another order, so this capture's rows do not line "
            "up with another capture's (another model, layer set or checkpoint), and scores "
            "between them compare unrelated datapoints. Capture with shuffle=False.",
            CaptureWarning,
            stacklevel=4,
        )


# ---------------------------------------------------------------------------- outputs


def _is_rnn_state(picked: Any, output: Any, module: Any) -> bool:
    """Whether ``picked`` is the final state of an RNN module's ``(out, h | (h, c))``."""
    import torch

    if not isinstance(module, torch.nn.RNNBase):
        return False
    if not isinstance(output, tuple) or len(output) != 2:
        return False
    hidden = output[1]
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    return any(picked is p for p in parts)


def _packed_output_error(layer: str, output: Any, selector: Any) -> CaptureError:
    where = "returned" if selector is None else f"gave, through select={selector!r},"
    path = "out" if selector is None else "out[0]" if selector in (0, (0,)) else "..."
    return CaptureError(
        f"Module {layer!r} {where} a PackedSequence (the whole output is "
        f"{_describe(output)}): its .data is (total tokens, features), not one row per "
        "datapoint. Unpack it in select: select={"
        f"{layer!r}: lambda out: torch.nn.utils.rnn.pad_packed_sequence({path}, "
        "batch_first=True)[0]} with sequence='samples'/'mean'/'last' and mask=lambda b: ... "
        "for the real steps, or select=svcca.torch.rnn_state() for an RNN's final state."
    )


def _pick(output: Any, selector: Selector | None, layer: str, module: Any = None) -> Any:
    import torch

    if selector is None:
        if isinstance(output, torch.Tensor):
            return output
        if _is_packed(output):
            raise _packed_output_error(layer, output, None)
        hint = ""
        if isinstance(module, torch.nn.RNNBase):
            hint = (
                f" For this {type(module).__name__}: select=0 for the output sequence (with "
                "sequence=...), select=svcca.torch.rnn_state() for the final hidden state."
            )
        raise CaptureError(
            f"Module {layer!r} returned {_describe(output)}, not one tensor. Choose the "
            f"element to record with select={{{layer!r}: ...}}: an int for a tuple position "
            "(e.g. 0 for an LSTM's output sequence), a str for a dict key or attribute "
            "(e.g. 'last_hidden_state'), a tuple such as (0, 'x') for a nested element, "
            f"svcca.torch.rnn_state() for an RNN's final state, or a callable.{hint}"
        )
    if isinstance(selector, RNNState):
        picked = selector(output, module)
    elif isinstance(output, torch.Tensor) and not callable(selector):
        raise CaptureError(
            f"Module {layer!r} returned a plain tensor {_describe(output)}, so select="
            f"{selector!r} would index its first (batch) dimension and record datapoint "
            f"{selector!r} instead of picking an output. Drop select for this layer (in "
            "transformers 5, GPT2Block and BertLayer return a tensor, not a tuple), or give a "
            "callable to reshape it."
        )
    elif callable(selector) and not isinstance(selector, (str, tuple)):
        picked = selector(output)
    else:
        path = selector if isinstance(selector, tuple) else (selector,)
        picked = output
        for step in path:
            try:
                if isinstance(step, str) and not isinstance(picked, Mapping):
                    picked = getattr(picked, step)
                else:
                    picked = picked[step]
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise CaptureError(
                    f"select={selector!r} does not apply to the output of module {layer!r}, "
                    f"which is {_describe(output)} (failed at {step!r}: {exc})."
                ) from exc
    if _is_packed(picked):
        raise _packed_output_error(layer, output, selector)
    if not isinstance(picked, torch.Tensor):
        raise CaptureError(
            f"select={selector!r} picked {_describe(picked)} from module {layer!r}; it must "
            f"pick a tensor. The whole output is {_describe(output)}."
        )
    if not isinstance(selector, RNNState) and _is_rnn_state(picked, output, module):
        raise CaptureError(
            f"select={selector!r} picked the final state of {type(module).__name__} "
            f"{layer!r}, {_describe(picked)}: (num_layers * directions, n, hidden) whatever "
            "batch_first says, so its first axis is not the datapoints. Use select="
            "svcca.torch.rnn_state() for the last layer's state as (n, hidden), or "
            "rnn_state(layers='all') for every layer's."
        )
    return picked


def is_conv_module(module: Any) -> bool:
    """Whether a module's 3-D output is a channels-first map ``(n, c, L)``, by its type."""
    import torch.nn as nn
    from torch.nn.modules import batchnorm, conv, instancenorm, padding, pooling

    kinds = (
        conv._ConvNd,
        pooling._MaxPoolNd,
        pooling._AvgPoolNd,
        pooling._AdaptiveAvgPoolNd,
        pooling._AdaptiveMaxPoolNd,
        pooling._LPPoolNd,
        pooling._MaxUnpoolNd,
        padding._ConstantPadNd,
        padding._ReflectionPadNd,
        padding._ReplicationPadNd,
        padding._CircularPadNd,
        nn.PixelShuffle,
        nn.PixelUnshuffle,
        batchnorm._BatchNorm,
        instancenorm._InstanceNorm,
        nn.GroupNorm,
        nn.Upsample,
    )
    return isinstance(module, kinds)


def is_conv_block(module: Any) -> bool:
    """Whether a 4-D / 5-D output of ``module`` is a channels-first map, by its type.

    A conv-type module (:func:`is_conv_module`), or a block built of them: a module with
    a conv-type descendant and none that works on the last axis (``Linear``,
    ``LayerNorm``, attention), the way a ResNet block or stage is. A block that has such a
    descendant (a ConvNeXt layer runs its ``Linear`` layers channels-last) is not, nor is
    any other module: its 4-D output may be ``(n, h, w, c)``.
    """
    import torch.nn as nn

    if is_conv_module(module):
        return True
    last_axis = (nn.Linear, nn.Bilinear, nn.LayerNorm, nn.RMSNorm, nn.MultiheadAttention)
    found = False
    for m in module.modules():
        if m is module:
            continue
        if isinstance(m, last_axis):
            return False
        found = found or is_conv_module(m)
    return found


def _is_elementwise(module: Any) -> bool:
    """Activations, dropout and identity keep their input's layout (a conv map stays one)."""
    import torch.nn as nn
    from torch.nn.modules import activation, dropout

    if isinstance(module, (nn.Identity, dropout._DropoutNd, dropout.AlphaDropout)):
        return True
    return type(module).__module__ == activation.__name__ and not isinstance(
        module, (nn.MultiheadAttention, nn.Linear)
    )


class ConvMarks:
    """The tensors of one forward pass known to be conv maps, by identity.

    Weak references, so nothing is kept alive, and a freed tensor whose memory another
    tensor reuses is never mistaken for it (as a ``data_ptr`` key would be).
    """

    def __init__(self) -> None:
        self._refs: dict[int, Any] = {}

    def add(self, t: Any) -> None:
        self._refs[id(t)] = weakref.ref(t)

    def __contains__(self, t: Any) -> bool:
        r = self._refs.get(id(t))
        return r is not None and r() is t

    def clear(self) -> None:
        self._refs.clear()


def _reshaped(selector: Any) -> bool:
    """A callable ``select`` (not :func:`rnn_state`) says the layout of what it returns."""
    return callable(selector) and not isinstance(selector, (str, tuple, RNNState))


def _layout_error(layer: str, module: Any, t: Any) -> CaptureError:
    perm = "(0, 3, 1, 2)" if t.ndim == 4 else "(0, 4, 1, 2, 3)"
    spatial = "h, w" if t.ndim == 4 else "d, h, w"
    return CaptureError(
        f"Module {layer!r} ({type(module).__name__}) returned {_describe(t)}, a {t.ndim}-D "
        f"tensor, but it is not a conv-type module (Conv, pooling, batch/instance/group norm, "
        f"upsampling, or a block made only of those), so its layout is unknown: it may be "
        f"channels-last (n, {spatial}, c), as a Linear or LayerNorm applied to a permuted map "
        f"gives it (ConvNeXt), and conv= would then reduce over the channels. If it is "
        f"channels-first (n, c, {spatial}), say so with conv_layers=[{layer!r}]; if it is "
        f"channels-last, pass select={{{layer!r}: lambda t: t.permute{perm}}}."
    )


def _check_batch_first(module: Any, layer: str, opts: CaptureOptions) -> None:
    """A module that says its layout (``batch_first``) must agree with ``time_axis``."""
    first = getattr(module, "batch_first", None)
    if isinstance(first, bool) and first != (opts.time_axis == 1):
        layout = "(n, T, d)" if first else "(T, n, d)"
        raise CaptureError(
            f"Module {layer!r} ({type(module).__name__}) has batch_first={first}: its "
            f"sequences are {layout}, but time_axis={opts.time_axis} reads them the other "
            f"way round, mixing datapoints with time steps. Pass time_axis="
            f"{1 if first else 0}."
        )


def check_model_layout(model: Any, opts: CaptureOptions) -> None:
    """Every module of ``model`` that says its layout (``batch_first``) must agree with
    ``time_axis``: the datapoints of a batch are counted along the inputs' axis
    ``1 - time_axis``, and a time-major model read batch-major (or the reverse) would make
    the rows time steps. Checked once per capture; ``datapoints=`` takes the count from the
    caller instead (a model that transposes its inputs inside), and the recorded modules'
    own sequences are still checked one by one.
    """
    if opts.datapoints is not None:
        return
    want = opts.time_axis == 1
    wrong = [
        (name or "(the model)", type(m).__name__)
        for name, m in model.named_modules()
        if isinstance(getattr(m, "batch_first", None), bool) and m.batch_first != want
    ]
    if not wrong:
        return
    shown = ", ".join(f"{name!r} ({kind})" for name, kind in wrong[:3])
    more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
    layout = "(n, T, ...)" if not want else "(T, n, ...)"
    raise CaptureError(
        f"Module {shown}{more} of {type(model).__name__} has batch_first={not want}: its "
        f"sequences are {layout}, but time_axis={opts.time_axis} reads the inputs and "
        f"sequence outputs the other way round, so datapoints would be counted along the "
        f"time axis and rows would be time steps. Pass time_axis={0 if want else 1}, or "
        "datapoints=lambda batch: <count> if the model's inputs are laid out as time_axis "
        "says and it transposes them inside."
    )


def _rows_error(
    layer: str, t: Any, n: int, b: _Batch, what: str, fix: str, kind: str = "Module"
) -> CaptureError:
    return CaptureError(
        f"{kind} {layer!r} gave {_describe(t)} on batch {b.index}, but the batch holds {n} "
        f"datapoints: {what}. {fix}"
    )


def _masked_index(mask: Any, which: str) -> Any:
    import torch

    T = mask.shape[1]
    pos = torch.arange(T, device=mask.device)
    if which == "first":
        return torch.where(mask, pos, T).min(dim=1).values
    return torch.where(mask, pos, -1).max(dim=1).values


def _reduce(
    t: Any, layer: str, opts: CaptureOptions, b: _Batch, *, conv_map: bool, kind: str = "Module"
) -> Any:
    """Reduce a picked tensor to what is recorded, checking one row per datapoint."""
    import torch

    n = b.n
    if t.ndim == 0:
        raise _rows_error(
            layer,
            t,
            n,
            b,
            "a scalar has no row per datapoint",
            "Record a module whose output keeps the batch dimension.",
            kind,
        )
    if t.ndim > 5:
        raise CaptureError(
            f"{kind} {layer!r} returned a {t.ndim}-D tensor of shape {tuple(t.shape)}; only "
            "2-D (batch, features), 3-D sequences or (n, c, L) maps, 4-D (n, c, h, w) and 5-D "
            "(n, c, d, h, w) outputs are supported. Use select=callable to reshape it."
        )
    if t.ndim <= 2:
        if t.shape[0] != n:
            raise _rows_error(
                layer,
                t,
                n,
                b,
                f"its first axis has {t.shape[0]}",
                "If the module returns several outputs, select picked one that is not per "
                "datapoint; a module whose output mixes or drops datapoints cannot be "
                "recorded.",
                kind,
            )
        return t.reshape(n, -1)
    if conv_map or t.ndim >= 4:
        if t.shape[0] != n:
            raise _rows_error(
                layer,
                t,
                n,
                b,
                f"its first axis has {t.shape[0]}",
                "Conv maps are recorded channels-first, (n, c, ...) as PyTorch's conv "
                "modules produce them; reshape others with select=callable.",
                kind,
            )
        if opts.conv == "mean":
            return t.sum(dim=tuple(range(2, t.ndim)), dtype=torch.float64) / float(
                np.prod(t.shape[2:])
            )
        if opts.conv == "flatten":
            return t.reshape(n, -1)
        return t
    # a 3-D sequence
    if opts.sequence is None:
        raise CaptureError(
            f"{kind} {layer!r} returned a 3-D tensor of shape {tuple(t.shape)}. Say how to "
            "treat the sequence axis: sequence='samples' (every real token a sample, as in "
            "the SVCCA paper's RNN figures), 'mean' (average over real tokens), 'last' (the "
            "last real token), 'first' (the first, e.g. BERT's CLS) or 'keep'; and "
            "time_axis=1 for (batch, time, features) or 0 for (time, batch, features). If it "
            "is a (n, channels, length) map, as after a Conv1d, name it in conv_layers=[...]."
        )
    batch_axis = 0 if opts.time_axis == 1 else 1
    if t.shape[batch_axis] != n:
        other = 1 - batch_axis
        fix = (
            f"With time_axis={opts.time_axis} the batch is axis {batch_axis}; "
            + (
                f"axis {other} has {n}, so pass time_axis={1 - opts.time_axis}. "
                if t.shape[other] == n
                else ""
            )
            + "If this is an RNN's final state (num_layers * directions, n, hidden), use "
            "select=svcca.torch.rnn_state(); if select picked it from a tuple, pick another "
            "element."
        )
        raise _rows_error(layer, t, n, b, f"axis {batch_axis} has {t.shape[batch_axis]}", fix, kind)
    if opts.time_axis == 0:
        t = t.transpose(0, 1)
    if opts.sequence == "keep":
        return t
    mask = b.mask
    if mask is not None:
        if mask.shape[1] != t.shape[1]:
            raise CaptureError(
                f"{b.mask_source} on batch {b.index} covers {mask.shape[1]} positions, but "
                f"{kind.lower()} {layer!r} gave {t.shape[1]} time steps ({_describe(t)}, "
                "batch-major). Pass mask=None to count every position, or "
                "mask=lambda batch: ... that matches this output."
            )
        mask = mask.to(t.device)
    if opts.sequence == "samples":
        if mask is None:
            return t.reshape(-1, t.shape[-1])
        return t[mask]
    if opts.sequence == "mean":
        if mask is None:
            return t.sum(dim=1, dtype=torch.float64) / t.shape[1]
        w = mask.to(torch.float64)
        return (t.to(torch.float64) * w[:, :, None]).sum(dim=1) / w.sum(dim=1, keepdim=True)
    if mask is None:
        return t[:, -1, :] if opts.sequence == "last" else t[:, 0, :]
    idx = _masked_index(mask, opts.sequence)
    return t[torch.arange(n, device=t.device), idx]


def _default_forward(model: Any, batch: Any) -> Any:
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _move(batch: Any, device: Any) -> Any:
    import torch

    if device is None:
        return batch
    if isinstance(batch, torch.Tensor) or _is_packed(batch):
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: _move(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(v, device) for v in batch)
    return batch


def _total(batches: Any) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


def _train_mode_modules(model: Any) -> list[str]:
    return [n or "(the model)" for n, m in model.named_modules() if m.training]


def _warn_train_mode(model: Any, names: list[str]) -> None:
    shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
    warnings.warn(
        f"forward left {len(names)} module(s) of {type(model).__name__} in train mode during "
        f"the capture ({shown}): dropout and batch norm then change the activations from "
        "run to run. The capture calls model.eval() before the first batch; do not call "
        "model.train() in forward=.",
        CaptureWarning,
        stacklevel=4,
    )


Extract = Callable[[Any, _Batch], dict[str, Any]]


def run_capture(
    model: Any,
    batches: Iterable[Any],
    opts: CaptureOptions,
    callback: Callable[[int, dict[str, np.ndarray]], None],
    *,
    forward: Callable[[Any, Any], Any] | None,
    device: Any,
    skip: int,
    progress: bool | None,
    desc: str,
    extract: Extract | None = None,
    on_device: bool = False,
) -> int:
    """The loop under every capture: hooks on ``opts.layers`` or ``extract(output, batch)``.

    ``callback`` receives NumPy arrays of ``opts.dtype``; with ``on_device`` (a callback
    that accumulates torch tensors) it receives the reduced tensors as they are, on
    their device, whenever the work runs there (:func:`accumulates_on`): GPU outputs,
    or any inside ``svcca.on_device(...)``.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
    if isinstance(batches, (torch.Tensor, np.ndarray)):
        raise TypeError(
            "batches must be an iterable of batches (a DataLoader or a list of tensors), not "
            "one tensor: wrap a single batch as [x], or split it with torch.split(x, 256)."
        )
    show = check_progress(progress)
    run = forward if forward is not None else _default_forward
    _warn_if_shuffled(batches)

    modules: dict[str, Any] = {}
    targets: dict[str, list[tuple[str, int | None]]] = {}  # module name -> (layer, call)
    check_model_layout(model, opts)
    if extract is None:
        named = dict(model.named_modules())
        for layer, (base, k) in locate_layers(model, opts.layers).items():
            modules[base] = named[base]
            targets.setdefault(base, []).append((layer, k))

    state: dict[str, Any] = {"batch": None, "train": []}
    current: dict[str, Any] = {}
    counts: dict[str, int] = {}
    marks = ConvMarks()  # conv-map outputs seen in this forward pass

    def mark_hook(module: Any, args: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor) or output.ndim not in (3, 4, 5):
            return
        if is_conv_module(module) or (output.ndim > 3 and is_conv_block(module)):
            marks.add(output)
        elif args and isinstance(args[0], torch.Tensor) and args[0] in marks:
            if output.shape == args[0].shape:
                marks.add(output)

    def make_hook(base: str) -> Callable[..., None]:
        module = modules[base]

        def hook(mod: Any, args: Any, output: Any) -> None:
            k = counts.get(base, 0)
            counts[base] = k + 1
            if mod.training:
                state["train"].append(base or "(the model)")
            for layer, want in targets[base]:
                if want is not None and want != k:
                    continue
                if want is None and k > 0 and opts.calls == "raise":
                    continue  # reported after the forward pass, with every call counted
                name = layer if want is not None or k == 0 else f"{layer}#{k}"
                selector = opts.select.get(layer)
                picked = _pick(output, selector, layer, module)
                conv_map = picked.ndim in (3, 4, 5) and (
                    layer in opts.conv_layers
                    or is_conv_module(module)
                    or (picked is output and output in marks)
                    or (picked.ndim > 3 and is_conv_block(module))
                    or (picked.ndim > 3 and _reshaped(selector))
                )
                if picked.ndim in (4, 5) and not conv_map:
                    raise _layout_error(layer, module, picked)
                if conv_map and picked is output:
                    marks.add(output)  # activations applied to it stay conv maps
                if picked.ndim == 3 and not conv_map and opts.sequence is not None:
                    _check_batch_first(module, layer, opts)
                got = _reduce(picked.detach(), layer, opts, state["batch"], conv_map=conv_map)
                if got.untyped_storage().data_ptr() == picked.untyped_storage().data_ptr():
                    # a view of the output, which a later in-place module (ReLU(inplace=
                    # True) after a conv or a batch norm) would overwrite before it is read
                    got = got.clone()
                current[name] = got

        return hook

    modes = {m: m.training for m in model.modules()}
    handles = []
    seen = 0
    names: list[str] | None = None
    warned_train = False
    bar = Progress(show, _total(batches), desc)
    try:
        if extract is None:
            if any(_is_elementwise(m) for m in modules.values()):
                for m in model.modules():
                    if is_conv_module(m) or _is_elementwise(m) or is_conv_block(m):
                        handles.append(m.register_forward_hook(mark_hook))
            for base in targets:
                handles.append(modules[base].register_forward_hook(make_hook(base)))
        model.eval()
        with torch.no_grad():
            for i, batch in enumerate(batches):
                seen = i + 1
                bar.update(1)
                if i < skip:
                    continue
                current.clear()
                counts.clear()
                marks.clear()
                state["train"] = []
                check_packed(batch, i, opts, forward)
                moved = _move(batch, device)
                info = _inspect_batch(moved, i, opts)
                state["batch"] = info
                try:
                    output = run(model, moved)
                except CaptureError:
                    raise
                except Exception as exc:
                    raise CaptureError(
                        f"{type(model).__name__} failed on batch {i} ({_describe(batch)}): "
                        f"{type(exc).__name__}: {exc}. Check that the batch has the shape and "
                        "dtype the model expects, or pass forward=lambda model, batch: ... to "
                        "say how a batch is fed to it."
                    ) from exc
                if extract is not None:
                    current.update(extract(output, info))
                    order = list(current)
                else:
                    _check_calls(targets, counts, opts, i)
                    order = _recorded_names(opts, targets, counts, current)
                del output
                left = _train_mode_modules(model) or state["train"]
                if left and not warned_train:
                    _warn_train_mode(model, left)
                    warned_train = True
                if names is None:
                    names = order
                elif order != names:
                    raise CaptureError(
                        f"Batch {i} recorded {order}, but batch 0 recorded {names}: the modules "
                        "ran a different number of times. Record the calls by name "
                        "('<module>#<k>') that every batch makes."
                    )
                if on_device and accumulates_on(current[names[0]]) is not None:
                    arrays = {n: current[n] for n in names}  # no host copy
                else:
                    arrays = {
                        n: current[n].to("cpu", dtype=torch.float64).numpy().astype(opts.dtype)
                        for n in names
                    }
                current.clear()
                _check_rows(arrays, i)
                callback(i, arrays)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        bar.close()
        current.clear()
        marks.clear()
    return seen


def float32_if_exact(x: np.ndarray) -> np.ndarray:
    """A float64 batch as float32 when that loses nothing (a float32 model's outputs).

    Moments in ``precision="float32"`` of captured rows are recorded in float64: a
    float64 layer (a float64 model, or a mean over a map or a sequence) is centred on
    its float64 mean before the cast, as on the device (docs/precision.md: a float64
    neuron at 1e6 + 0.3 stays constant). Rows that float32 holds exactly take the
    float32 path as they are.
    """
    if x.dtype == np.float64:
        x32 = x.astype(np.float32)
        if np.array_equal(x32, x):
            return x32
    return x


def accumulates_on(t: Any) -> Any:
    """The device a capture of ``t`` (a recorded tensor) accumulates on, or None (host).

    ``svcca.on_device``'s device when one is in force (``None`` there: the host), else
    ``t``'s own device unless it is the CPU: a GPU model's activations never travel to
    the host, a CPU model's take the host path (NumPy and SciPy's BLAS).
    """
    from svcca._device import chosen

    return chosen(t.device)


def _recorded_names(
    opts: CaptureOptions,
    targets: Mapping[str, list[tuple[str, int | None]]],
    counts: Mapping[str, int],
    current: dict[str, Any],
) -> list[str]:
    """Names in ``opts.layers`` order; with ``calls="each"`` repeated modules get ``#k``."""
    base_of = {layer: base for base, specs in targets.items() for layer, _ in specs}
    want_of = {layer: want for specs in targets.values() for layer, want in specs}
    order: list[str] = []
    for layer in opts.layers:
        c = counts[base_of[layer]]
        if want_of[layer] is None and c > 1:  # calls == "each" (else _check_calls raised)
            current[f"{layer}#0"] = current.pop(layer)
            order.extend(f"{layer}#{k}" for k in range(c))
        else:
            order.append(layer)
    return order


def _check_calls(
    targets: Mapping[str, list[tuple[str, int | None]]],
    counts: Mapping[str, int],
    opts: CaptureOptions,
    i: int,
) -> None:
    missing = [
        layer for base, specs in targets.items() for layer, _ in specs if not counts.get(base)
    ]
    if missing:
        raise CaptureError(
            f"Modules {missing} did not run in the forward pass on batch {i}; "
            "record modules that the model actually calls."
        )
    for base, specs in targets.items():
        c = counts[base]
        for layer, want in specs:
            if want is not None and want >= c:
                raise CaptureError(
                    f"{layer!r} asks for call {want} (0-based) of module {base!r}, which ran "
                    f"{c} time(s) in the forward pass on batch {i}."
                )
            if want is None and c > 1 and opts.calls == "raise":
                calls = ", ".join(repr(f"{layer}#{k}") for k in range(c))
                raise CaptureError(
                    f"Module {layer!r} ran {c} times in one forward pass (batch {i}), so its "
                    f"name does not say which call to record. Name each call (0-based, in call "
                    f"order): layers=[{calls}], or pass calls='each' to record every call as "
                    f"its own layer {calls}."
                )


def _check_rows(arrays: dict[str, np.ndarray], i: int) -> None:
    rows = {n: a.shape[0] for n, a in arrays.items()}
    if len(set(rows.values())) > 1:
        raise CaptureError(
            f"On batch {i} the recorded layers give different numbers of samples {rows}; "
            "representations compared with each other must share samples. Use the same "
            "sequence option for all of them, or capture them separately."
        )


def capture_stream(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    callback: Callable[[int, dict[str, np.ndarray]], None],
    *,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    skip: int = 0,
    progress: bool | None = False,
    desc: str = "capture",
    device_tensors: bool = False,
) -> int:
    """Run ``model`` over ``batches`` and pass each batch's activations to ``callback``.

    The building block under :func:`capture`, :func:`capture_to_disk` and
    :func:`capture_moments`; use it to feed any accumulator (minibatch CKA, histograms).

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        Batches as a DataLoader yields them: a tensor, a ``(inputs, labels, ...)`` tuple
        (the first element is fed to the model) or a dict (passed as keyword arguments).
    layers : list of str
        Module names from ``model.named_modules()``; ``""`` is the model itself.
    callback : callable ``(batch_index, {layer: ndarray}) -> None``
    select, sequence, time_axis, conv, dtype, mask, calls, datapoints, conv_layers
        As in :func:`capture`.
    forward, device, progress
        As in :func:`capture`.
    skip : int, default 0
        Batches at the start to pass over without running the model (used to resume).
    device_tensors : bool, default False
        For a callback that accumulates torch tensors: when the work runs on a device
        (the outputs are on a GPU, or an ``svcca.on_device(...)`` block names one), it
        receives the reduced outputs as detached tensors on their device, in the model's
        dtype, and nothing is copied to the host; otherwise NumPy arrays as always.

    Returns
    -------
    int
        Number of batches seen (including skipped ones).

    Examples
    --------
    Minibatch CKA between two layers, accumulated while the model runs:

    >>> import torch, svcca, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> acc = svcca.MinibatchCKA()
    >>> seen = svcca.torch.capture_stream(
    ...     net, torch.randn(100, 4).split(25), ["1", "2"],
    ...     lambda i, acts: acc.update(acts["1"], acts["2"]),
    ... )
    >>> seen, acc.scores().shape
    (4, (1, 1))
    """
    opts = CaptureOptions.make(
        layers,
        select=select,
        sequence=sequence,
        time_axis=time_axis,
        conv=conv,
        dtype=dtype,
        mask=mask,
        calls=calls,
        datapoints=datapoints,
        conv_layers=conv_layers,
    )
    return run_capture(
        model,
        batches,
        opts,
        callback,
        forward=forward,
        device=device,
        skip=skip,
        progress=progress,
        desc=desc,
        on_device=device_tensors,
    )


def check_same_shape(name: str, a: np.ndarray, first: np.ndarray, i: int) -> None:
    """Batch ``i`` of layer ``name`` has the per-datapoint shape of its first batch.

    Raised as each batch arrives (a long capture does not fail at its end), naming the
    layer, both shapes and, for sequences (3-D ``(n, L, d)``, from ``sequence="keep"``)
    their lengths, and what to change.
    """
    if a.shape[1:] == first.shape[1:]:
        return
    got, want = tuple(a.shape[1:]), tuple(first.shape[1:])
    head = (
        f"Layer {name!r} gave {got} per datapoint on batch {i}, but {want} on the first "
        "batch: one layer's batches must share every axis but the first."
    )
    if a.ndim == 3 and first.ndim == 3 and got[1:] == want[1:]:
        raise CaptureError(
            f"{head} These are sequences of {got[0]} and {want[0]} time steps, and "
            "sequence='keep' keeps each datapoint's whole sequence, so every batch needs "
            "one length: pad the inputs to one length, or reduce each sequence to rows "
            "with sequence='samples' (every real token), 'mean', 'last' or 'first'."
        )
    raise CaptureError(
        f"{head} Sequences of different lengths need sequence='samples', 'mean', 'last' "
        "or 'first'; conv maps of different sizes need conv='mean'; or pad the inputs to "
        "one size."
    )


def stack(chunks: Mapping[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Join each layer's per-batch arrays along the first axis."""
    if not chunks:
        raise ValueError("batches was empty: there was nothing to run the model on.")
    for n, parts in chunks.items():
        for i, a in enumerate(parts):
            check_same_shape(n, a, parts[0], i)
    return {n: np.concatenate(parts, axis=0) for n, parts in chunks.items()}


def keep_batches(
    chunks: dict[str, list[np.ndarray]],
) -> Callable[[int, dict[str, np.ndarray]], None]:
    """A capture callback appending each layer's batch to ``chunks`` (checked as it comes)."""

    def keep(i: int, arrays: dict[str, np.ndarray]) -> None:
        for n, a in arrays.items():
            parts = chunks.setdefault(n, [])
            if parts:
                check_same_shape(n, a, parts[0], i)
            parts.append(a)

    return keep


def capture(
    model: Any,
    batches: Iterable[Any],
    layers: Sequence[str] | str,
    *,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Conv = "keep",
    dtype: Any = np.float32,
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
    progress: bool | None = False,
) -> dict[str, np.ndarray]:
    """Record the outputs of named modules of a model over a stream of batches.

    Forward hooks are registered on the named modules for the duration of the call and
    always removed (also on error). The model runs in ``eval()`` mode under
    ``torch.no_grad()``; each module's train/eval mode is restored afterwards.

    Every recorded array has one row per datapoint of the batches (one per real token
    with ``sequence="samples"``); an output that does not is refused with
    :class:`CaptureError`. The number of datapoints of a batch is read from the batch
    (:func:`batch_datapoints`), or given by ``datapoints=``.

    Parameters
    ----------
    model : torch.nn.Module
    batches : iterable
        A DataLoader or any iterable of batches: a tensor, a tuple whose first element is
        the input (``(x, y)`` from a DataLoader), or a dict of keyword arguments. A
        shuffling DataLoader warns (:class:`CaptureWarning`): its rows would not line up
        with another capture's.
    layers : list of str
        Names from ``model.named_modules()``, e.g. ``["features.0", "classifier"]``.
        An unknown name raises ``ValueError`` listing near matches. A module that runs
        more than once per forward pass is refused unless each call is named,
        ``"block#0"``, ``"block#1"`` (0-based, in call order), or ``calls="each"``.
    select : int, str, tuple, callable, or dict of them, optional
        How to pick one tensor from a module whose output is a tuple, dict or object:
        an int (tuple position), a str (dict key or attribute, e.g.
        ``"last_hidden_state"``), a tuple path, :func:`rnn_state` for an RNN's final
        state, or a callable. A dict gives a selector per layer. A module that returns a
        plain tensor takes no ``select`` (an int would index the batch): it is an error.
    sequence : {"samples", "mean", "last", "first", "keep"}, optional
        For 3-D sequence outputs: ``"samples"`` makes every real token a sample,
        ``(n_tokens, d)`` (the SVCCA paper's RNN comparisons), ``"mean"`` averages over
        real tokens, ``"last"`` takes the last real token, ``"first"`` the first (BERT's
        and ViT's CLS), ``"keep"`` returns ``(n, T, d)`` with padding left in. Required
        when a recorded output is a 3-D sequence.
    time_axis : {1, 0}, default 1
        Where the time axis is: 1 for ``batch_first=True`` modules, 0 for PyTorch's default
        ``(T, n, d)`` layout of ``nn.LSTM`` / ``nn.TransformerEncoderLayer`` (the inputs
        are then read as ``(T, n, ...)`` too, to count datapoints). The result is always
        batch-major. Every module of the model that has a ``batch_first`` attribute
        (RNNs, transformer layers, ``nn.MultiheadAttention``) must agree with it, or the
        capture raises :class:`CaptureError` (unless ``datapoints=`` gives the count).
    conv : {"keep", "mean", "flatten"}, default "keep"
        For channels-first maps, 3-D ``(n, c, L)``, 4-D ``(n, c, h, w)`` and 5-D
        ``(n, c, d, h, w)`` outputs of conv-type modules (convolutions, pooling, padding,
        batch/instance/group norm, upsampling, activations or dropout applied to one of
        those; for 4-D and 5-D also blocks built only of such modules, as in a ResNet):
        keep them for :mod:`svcca.conv` (layout ``"nchw"``), average over space to
        ``(n, c)``, or flatten to ``(n, c * ...)``. Reduced per batch, on the fly. A 4-D
        or 5-D output of another module (a ``Linear`` or ``LayerNorm`` may give
        channels-last ``(n, h, w, c)``, as in ConvNeXt) is refused unless ``conv_layers``
        names it or a callable ``select`` returns it (permuted to channels-first).
    dtype : numpy dtype, default float32
        Storage dtype of the recorded arrays.
    mask : "auto", None or callable, default "auto"
        Which positions of a sequence are real tokens, for ``sequence="samples"``,
        ``"mean"``, ``"last"`` and ``"first"``. ``"auto"``: a mapping batch's
        ``attention_mask`` (the HuggingFace convention), if it has one (a batch with
        decoder inputs, ``decoder_input_ids`` / ``decoder_inputs_embeds`` /
        ``decoder_attention_mask``, is refused: say which mask with a callable); a callable
        ``batch -> (n, T)`` 0/1 or bool mask for other conventions; ``None`` counts every
        position.
    calls : {"raise", "each"}, default "raise"
        A named module that runs more than once per forward pass: refuse it, or record
        every call as ``"<name>#0"``, ``"<name>#1"``, ... (a module called once keeps its
        name).
    datapoints : callable ``batch -> int``, optional
        The batch's number of datapoints, when it cannot be read from the batch (e.g. a
        custom ``forward`` on batches that are not tensors).
    conv_layers : list of str, optional
        Recorded layers whose outputs are channels-first maps, ``(n, c, L)`` or
        ``(n, c, h, w)``, although their module type does not say so (e.g. a custom
        residual block of ``Conv1d`` layers, a ConvNeXt layer).
    forward : callable ``(model, batch) -> output``, optional
        How to run the model on a batch (default: ``model(x)`` for a tensor, the first
        element of a tuple, ``model(**batch)`` for a dict). It must leave the model in
        eval mode (a :class:`CaptureWarning` says when it does not).
    device : torch.device or str, optional
        Move each batch there before running the model.
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line counter;
        ``None``: only when stderr is a terminal).

    Returns
    -------
    dict of str to ndarray
        For each layer, in the order given, its activations over all batches stacked
        along the first axis, ``(n_samples, n_features)`` (or ``(n, c, ...)``, or
        ``(n, T, d)``, when kept).

    Raises
    ------
    ValueError
        For an unknown layer name (with near matches). :class:`CaptureError` (a
        ``ValueError``) when the model fails on a batch, naming the batch and its shape,
        when an output needs ``select``/``sequence``, or has no row per datapoint.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> acts = svcca.torch.capture(net, torch.randn(100, 4).split(25), ["1", "2"])
    >>> acts["1"].shape, acts["2"].shape
    ((100, 8), (100, 3))
    """
    chunks: dict[str, list[np.ndarray]] = {}
    capture_stream(
        model,
        batches,
        layers,
        keep_batches(chunks),
        select=select,
        sequence=sequence,
        time_axis=time_axis,
        conv=conv,
        dtype=dtype,
        mask=mask,
        calls=calls,
        datapoints=datapoints,
        conv_layers=conv_layers,
        forward=forward,
        device=device,
        progress=progress,
    )
    return stack(chunks)


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_stem(layer: str) -> str:
    """A file-name-safe stem for a module name (``""`` is the model itself)."""
    return _SAFE.sub("_", layer) if layer else "_model_"
