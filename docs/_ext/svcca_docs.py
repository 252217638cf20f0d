"""The parts of the site that come from the code, made at build time.

- ``_generated/measures.md``: the table of every registered measure (``svcca.MEASURES``):
  kind, symmetry, range, the transformations it ignores (its declared invariances, which
  ``tests/contract/`` checks both ways), the engines that serve it, and its description.
  ``site/choosing.md`` includes it, so the page can never disagree with the registry.
- A check that every public name (``svcca.__all__`` and the ``__all__`` of each public
  subpackage) is listed in ``api/index.rst``: a name without a page is a build warning,
  and ``-W`` makes it an error.
- The gallery's hooks: every example runs as ``example.py --quick --out DIR``, and the
  figures it saves into ``DIR`` (``svcca.plot.save``: the figures are built without
  pyplot, so matplotlib's own scraper would not see them) are shown under its code.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]  # docs/
GALLERY_OUT = HERE / "_build" / "gallery_out"
PUBLIC_PACKAGES = (
    "svcca",
    "svcca.torch",
    "svcca.conv",
    "svcca.stats",
    "svcca.plot",
    "svcca.compat",
)

# Display names of the invariances, in the order of docs/invariances.md's table.
INVARIANCE_LABELS = {
    "orthogonal": "rotations",
    "isotropic_scaling": "global scale",
    "translation": "shifts",
    "permutation": "neuron order",
    "per_feature_scaling": "per-neuron scale",
    "invertible_linear": "any invertible linear map",
}


# ------------------------------------------------------------------ public names
def public_names() -> list[str]:
    """Every public name, fully qualified: ``svcca.X`` for ``svcca.__all__`` (the
    subpackages among them as modules) and ``svcca.sub.X`` for each public subpackage."""
    names: list[str] = []
    for pkg in PUBLIC_PACKAGES:
        mod = importlib.import_module(pkg)
        if pkg != "svcca":
            names.append(pkg)
        for name in mod.__all__:
            full = f"{pkg}.{name}"
            if full in PUBLIC_PACKAGES:
                continue  # the subpackage itself: listed once, as a module
            names.append(full)
    return names


def api_entries(api_source: str) -> set[str]:
    """The fully qualified names listed under the ``autosummary`` directives of
    ``api/index.rst`` (one indented name a line)."""
    entries: set[str] = set()
    in_block = False
    for line in api_source.splitlines():
        if line.startswith(".. autosummary::"):
            in_block = True
            continue
        if in_block:
            stripped = line.strip()
            if not line.startswith(" ") and stripped:
                in_block = False
            elif stripped and not stripped.startswith(":"):
                entries.add(stripped)
    return entries


def _check_api(app: Any) -> None:
    from sphinx.util import logging  # here: the rest of this module needs no Sphinx

    logger = logging.getLogger(__name__)
    listed = api_entries((HERE / "api" / "index.rst").read_text(encoding="utf-8"))
    for name in public_names():
        if name not in listed:
            logger.warning("public name %s has no API page: add it to docs/api/index.rst", name)
    for name in sorted(listed - set(public_names())):
        logger.warning("docs/api/index.rst lists %s, which is not a public name", name)


# ------------------------------------------------------------------ measure table
def _pairwise_one_pass() -> tuple[str, ...]:
    """The measures svcca.pairwise computes in its one blocked pass (the rest per pair)."""
    from svcca._engines import ONE_PASS_MEASURES

    return tuple(ONE_PASS_MEASURES)


def measure_table() -> str:
    """The registry as a Markdown table and a list of descriptions."""
    import svcca

    one_pass = set(_pairwise_one_pass())
    head = ["measure", "ignores", "range", "symmetric", "metric", "`svcca.pairwise` (kind)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in svcca.MEASURES.values():
        inv = m.invariances_for()
        ignores = ", ".join(lab for key, lab in INVARIANCE_LABELS.items() if key in inv)
        lo, hi = m.range
        if m.name in one_pass:
            engine = "one pass for all pairs"
        elif m.kind == "minibatch":
            engine = "no: `svcca.torch.compare`"
        else:
            engine = "per pair" + (", each side prepared once" if m.prepare else "")
        cells = [
            f"`{m.name}`",
            ignores or "nothing declared",
            f"[{lo:g}, {hi:g}]",
            "yes" if m.symmetric else "no",
            "yes" if m.is_metric else "no",
            f"{engine} ({m.kind})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    lines = ["\n".join(rows), ""]
    for m in svcca.MEASURES.values():
        params = ", ".join(f"`{p}`" for p in m.params) or "none"
        text = m.description.strip().rstrip(".")
        text = text[:1].upper() + text[1:]
        lines.append(f"`{m.name}`\n: {text}. Parameters: {params}.\n")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the user guide
# The user guide is every markdown page at the top of docs/ (those of the repository,
# linked from the README), in this order, then any other in alphabetical order: a page
# added there is in the guide without editing anything here.
GUIDE_ORDER = (
    "inputs",
    "invariances",
    "conventions",
    "precision",
    "torch",
    "gpu",
    "dask",
    "cli",
    "demo",
    "sanity",
)
NOT_GUIDE = {"index", "guide"}


def guide_pages() -> list[str]:
    """The user guide's pages (docnames), in reading order."""
    pages = {p.stem for p in HERE.glob("*.md")} - NOT_GUIDE
    first = [p for p in GUIDE_ORDER if p in pages]
    return first + sorted(pages - set(first))


def guide_toctree() -> str:
    return "```{toctree}\n:maxdepth: 2\n\n" + "\n".join(guide_pages()) + "\n```\n"


def _write(path: Path, text: str) -> None:
    """Write only on change (Sphinx rebuilds what includes a changed file)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _write_generated(app: Any) -> None:
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    _write(out / "measures.md", measure_table())
    _write(out / "guide_toctree.md", guide_toctree())


# ------------------------------------------------------------------ gallery hooks
_reported: dict[str, set[str]] = {}


def _out_dir(src_file: str) -> Path:
    return GALLERY_OUT / re.sub(r"\W", "_", Path(src_file).stem)


def gallery_argv(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """``sys.argv[1:]`` for an example: quick mode, figures into a fresh folder."""
    out = _out_dir(script_vars["src_file"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _reported[str(out)] = set()
    return ["--quick", "--out", str(out)]


def saved_figures(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """Image scraper: the PNGs the example wrote into its ``--out`` folder since the
    last code block, shown below that block."""
    from sphinx_gallery.scrapers import figure_rst

    out = _out_dir(block_vars["src_file"])
    seen = _reported.setdefault(str(out), set())
    new = sorted(
        (p for p in out.glob("*.png") if p.name not in seen), key=lambda p: p.stat().st_mtime
    )
    paths = []
    targets = block_vars["image_path_iterator"]
    for png in new:
        target = next(targets)
        shutil.copyfile(png, target)
        seen.add(png.name)
        paths.append(target)
    return figure_rst(paths, gallery_conf["src_dir"])


# ------------------------------------------------------------------ signatures
def public_signature(obj: Any) -> str | None:
    """A result class's signature without its private fields (``_solver``): results are
    made by the library, and what a reader needs is their public fields."""
    import dataclasses
    import inspect

    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        return None
    sig = inspect.signature(obj)
    params = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in sig.parameters.values()
        if not p.name.startswith("_")
    ]
    if len(params) == len(sig.parameters):
        return None
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _signature(app: Any, what: str, name: str, obj: Any, options: Any, sig: Any, ret: Any):
    if what == "class":
        public = public_signature(obj)
        if public is not None:
            return public, ret
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _signature)
    app.connect("builder-inited", _write_generated)
    app.connect("builder-inited", _check_api)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
