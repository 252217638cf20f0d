"""The fingerprint a disk capture records: SHA-256 digests of the model (its module tree
and every ``state_dict`` tensor), of a batch, and of every capture option, so a call
that differs from the capture on disk is refused instead of resumed."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from svcca._validation import is_torch_tensor

__all__ = ["batch_digest", "model_digest", "option_id"]


def _code_digest(code: Any) -> str:
    """SHA-256 of a code object's bytecode and constants (nested code objects recursed)."""
    h = hashlib.sha256(code.co_code)
    for c in code.co_consts:
        h.update((_code_digest(c) if hasattr(c, "co_code") else repr(c)).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:16]


def option_id(v: Any) -> Any:
    """A JSON value standing for a capture option (equal after a round trip through JSON).

    A function is named by its qualified name and a digest of its bytecode, so an edited
    lambda counts as another option; ``functools.partial`` by its function and arguments;
    other callables by their type and repr (e.g. ``RNNState(state='h', layers='last')``),
    or their type alone when the repr is only an address.
    """
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.dtype):
        return v.str
    if isinstance(v, Mapping):
        return {str(k): option_id(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (tuple, list)):
        return [option_id(x) for x in v]
    if isinstance(v, functools.partial):
        return ["partial", option_id(v.func), option_id(list(v.args)), option_id(v.keywords)]
    if callable(v):
        code = getattr(v, "__code__", None)
        if code is not None:  # a function, lambda or method: its name and its code
            name = f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', '')}"
            return f"callable {name} {_code_digest(code)}"
        kind = f"{type(v).__module__}.{type(v).__qualname__}"
        text = repr(v)  # a callable object: its repr, unless that is only an address
        return f"callable {kind}" + ("" if " at 0x" in text else f" {text}")
    return f"{type(v).__qualname__} {v!r}"


def _feed(h: Any, obj: Any) -> None:
    """Hash the structure and bytes of a batch (tensors, arrays, mappings, sequences)."""
    if is_torch_tensor(obj):
        t = obj.detach().cpu()
        if t.layout != _strided():
            t = t.to_dense()
        if t.is_quantized:
            t = t.dequantize()
        t = t.contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(_uint8()).numpy())
    elif isinstance(obj, np.ndarray):
        h.update(f"array {obj.dtype.str} {obj.shape};".encode())
        if obj.dtype.hasobject:
            h.update(repr(obj.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(obj).reshape(-1).view(np.uint8))
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for k, v in obj.items():
            h.update(f"{k!r}:".encode())
            _feed(h, v)
        h.update(b"}")
    elif isinstance(obj, (tuple, list)):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        h.update(f"{type(obj).__name__} {obj!r};".encode())
    else:  # an object whose content we cannot read: its type at least
        h.update(f"object {type(obj).__module__}.{type(obj).__qualname__};".encode())


def _strided() -> Any:
    import torch

    return torch.strided


def _uint8() -> Any:
    import torch

    return torch.uint8


def model_digest(model: Any) -> str:
    """SHA-256 of a model: its module tree (names and types) and every state-dict entry
    (name, dtype, shape and bytes of each tensor: parameters and buffers)."""
    h = hashlib.sha256()
    for name, mod in model.named_modules():
        h.update(f"module {name!r} {type(mod).__module__}.{type(mod).__qualname__};".encode())
    for name, value in model.state_dict().items():
        h.update(f"state {name!r};".encode())
        _feed(h, value)
    return h.hexdigest()


def batch_digest(batch: Any) -> str:
    """SHA-256 of one batch's structure, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    _feed(h, batch)
    return h.hexdigest()
