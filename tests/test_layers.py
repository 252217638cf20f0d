"""The package is layered: every import, lazy ones included, points down (or sideways).

statistic -> sources -> measures -> engines (pairwise, stats, conv) -> integrations
(compat, torch, plot, demo, cli). The order is the one in ``svcca/__init__.py``'s
docstring; a module may import its own layer and the ones below it, never one above,
and the modules form no import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import svcca

SRC = Path(svcca.__file__).parent

LAYERS: dict[str, int] = {
    "svcca._validation": 0,
    "svcca._progress": 0,
    "svcca._result": 0,
    "svcca._html": 0,
    "svcca._threads": 0,
    "svcca._device": 0,
    "svcca._dense": 0,
    "svcca._version": 0,
    "svcca._moments": 1,
    "svcca._sources": 2,
    "svcca._measures": 3,
    "svcca._engines": 4,
    "svcca.stats": 4,
    "svcca.conv": 4,
    "svcca.compat": 5,
    "svcca.torch": 5,
    "svcca.plot": 5,
    "svcca._demo": 5,
    "svcca._cli": 5,
    "svcca.__main__": 5,
    "svcca": 5,  # the public API as a whole: only integrations may import it
}


def layer_of(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every ``svcca`` module that ``path`` imports, at any depth of its code."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "svcca")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "svcca":
                continue
            for a in node.names:  # "from svcca import conv" imports the module svcca.conv
                sub = f"{base}.{a.name}"
                found.add(sub if (SRC.parent / sub.replace(".", "/")).exists() else base)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}


def test_every_module_has_a_layer():
    for mod in graph():
        layer_of(mod)  # raises ValueError (max of nothing) for a module outside the map


def test_imports_point_down():
    upward = [
        f"{mod} (layer {layer_of(mod)}) imports {dep} (layer {layer_of(dep)})"
        for mod, deps in graph().items()
        for dep in deps
        if layer_of(dep) > layer_of(mod)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    g = graph()

    def resolve(dep: str) -> str:
        while dep not in g and "." in dep:
            dep = dep.rsplit(".", 1)[0]
        return dep

    edges = {m: {resolve(d) for d in ds} - {m} for m, ds in g.items()}
    # A package's __init__ re-exports its own modules; that is not a cycle of logic.
    edges = {m: {d for d in ds if not m.startswith(d + ".")} for m, ds in edges.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def _package_of(module: str) -> str | None:
    """``svcca.torch._capture`` -> ``torch``; a top-level module (``svcca._validation``,
    the shared base layer) -> None."""
    parts = module.split(".")
    if len(parts) >= 2 and (SRC / parts[1] / "__init__.py").exists():
        return parts[1]
    return None


def _exported(package: str, name: str) -> bool:
    mod = __import__(f"svcca.{package}", fromlist=["__all__"])
    return name in getattr(mod, "__all__", ())


def test_no_cross_package_private_imports():
    """Outside a package ``P``, code imports only from ``svcca.P`` (the names its
    ``__init__`` exports, ``__all__``), never from ``svcca.P._module`` and never an
    underscore name; lazy imports inside functions and multi-line imports included."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        here = module_name(path)
        own = _package_of(here)
        rel = path.relative_to(SRC.parent)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for a in node.names:
                    pkg = _package_of(a.name)
                    if pkg and pkg != own and a.name.count(".") > 1:
                        bad.append(
                            f"{rel}:{node.lineno}: import {a.name} -> import svcca.{pkg} "
                            f"(and use the names svcca.{pkg}.__all__ exports)"
                        )
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                pkg = _package_of(node.module)
                if pkg is None or pkg == own:
                    continue
                deep = node.module.count(".") > 1
                names = [a.name for a in node.names]
                private = [n for n in names if n.startswith("_")]
                if deep or private:
                    missing = [n for n in names if not _exported(pkg, n)]
                    fix = f"from svcca.{pkg} import {', '.join(n.lstrip('_') for n in names)}"
                    if missing:
                        fix += (
                            f" (first export {', '.join(missing)} from svcca/{pkg}/__init__.py,"
                            " in __all__ as internal API, without a leading underscore)"
                        )
                    bad.append(
                        f"{rel}:{node.lineno}: from {node.module} import "
                        f"{', '.join(names)} -> {fix}"
                    )
    assert not bad, "Cross-package private imports; import instead:\n" + "\n".join(bad)
