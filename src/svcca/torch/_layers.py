"""Finding the requested modules of a model by name (through ``DataParallel`` and
``torch.compile`` wrappers, ``"<name>#k"`` for the k-th call)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "locate_layers",
    "resolve_layers",
    "wrapper_prefixes",
]


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
