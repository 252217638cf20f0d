"""The demo pipeline: train, analyse, draw, write the index."""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from svcca._demo import _analysis as an
from svcca._demo._train import Digits, Run
from svcca._demo._uncertain import Claim, fmt_p, iv

__all__ = ["DemoConfig", "DemoReport", "Figure", "run_demo"]


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo (``quick`` for CI)."""

    seeds: int = 5
    cnn_epochs: int = 15
    mlp_epochs: int = 15
    dynamics_per_class: int = 100
    memorise_epochs: int = 150
    memorise_seeds: int = 5
    memorise_n_train: int = 300
    threads: int = 1
    formats: tuple[str, ...] = ("png", "svg")

    @classmethod
    def make(cls, quick: bool) -> DemoConfig:
        if quick:
            return cls(
                seeds=3,
                cnn_epochs=5,
                mlp_epochs=6,
                dynamics_per_class=50,
                memorise_epochs=120,
                memorise_seeds=3,
            )
        return cls()


@dataclass(frozen=True)
class Figure:
    """One figure of the demo: where it is, and the measured finding under it."""

    name: str
    title: str
    files: tuple[str, ...]
    finding: str
    # the finding's comparisons (svcca._demo._uncertain.Claim.as_dict, plus "quantity")
    claims: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DemoReport:
    """What :func:`run_demo` produced."""

    out: str
    figures: tuple[Figure, ...]
    index: str
    readme: str
    seconds: float
    accuracies: dict[str, float] = field(default_factory=dict)


def _log(progress: bool, msg: str, t0: float) -> None:
    if progress:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def run_demo(
    out: str | os.PathLike[str] = "svcca-demo",
    *,
    quick: bool = False,
    progress: bool = False,
    config: DemoConfig | None = None,
) -> DemoReport:
    """Train the demo networks and write the figures and ``index.html`` into ``out``.

    Parameters
    ----------
    out : path, default "svcca-demo"
        Output directory (created). Checkpoints go to ``out/checkpoints``.
    quick : bool, default False
        Fewer epochs (CI: under a minute on two cores); the full run takes a few minutes.
    progress : bool, default False
        Print stage timings to stderr.
    config : DemoConfig, optional
        Override the sizes.

    Returns
    -------
    DemoReport
        Figures with their findings, and the paths of ``index.html`` and ``README.md``.
    """
    _check_extras()
    from svcca._demo._train import load_digits_split

    cfg = config or DemoConfig.make(quick)
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    figures = _Figures(out, cfg.formats, progress, time.perf_counter())
    with _pinned_threads(cfg.threads):
        data = load_digits_split()
        nets = _train_all(data, os.path.join(out, "checkpoints"), cfg, figures.log)
        _draw_all(nets, data, cfg, figures)
    seconds = time.perf_counter() - figures.t0
    accuracies = {r.name: r.test_accuracy[-1] for r in nets.cnn + nets.mlp}
    report = DemoReport(out, tuple(figures.done), "", "", seconds, accuracies)
    index, readme = _write_index(report, cfg, quick)
    report = replace(report, index=index, readme=readme)
    _write_findings(report, cfg, quick)
    figures.log(f"wrote {index}")
    return report


def _check_extras() -> None:
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"svcca demo needs torch, matplotlib and scikit-learn ({exc}); install them with "
            "pip install 'svcca[torch,plot,sklearn]'."
        ) from exc


@contextmanager
def _pinned_threads(n: int) -> Iterator[None]:
    """Torch and BLAS on ``n`` threads for the duration, restored afterwards.

    BLAS threads spinning on a small shared machine cost far more than they give here
    (measured 40x slower on 2 busy cores): the demo's matrices are small.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    limits = limit_blas_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        limits.restore_original_limits()


class _Figures:
    """Saves each figure of the demo and keeps its :class:`Figure` record, in order."""

    def __init__(self, out: str, formats: tuple[str, ...], progress: bool, t0: float) -> None:
        self.out, self.formats, self.progress, self.t0 = out, formats, progress, t0
        self.done: list[Figure] = []

    def log(self, msg: str) -> None:
        _log(self.progress, msg, self.t0)

    def add(
        self,
        name: str,
        title: str,
        f: Any,
        finding: str,
        claims: Sequence[tuple[str, Sequence[Claim]]] = (),
    ) -> None:
        import svcca.plot as sp

        files = sp.save(f, os.path.join(self.out, name), formats=self.formats)
        rows = tuple({"quantity": q, **c.as_dict()} for q, group in claims for c in group)
        base = tuple(os.path.basename(p) for p in files)
        self.done.append(Figure(name, title, base, finding, rows))
        # The finding itself is the CLI's output (stdout); progress only says where it is.
        self.log(f"figure {name}: {', '.join(os.path.basename(p) for p in files)}")


# ---------------------------------------------------------------------------- training


@dataclass(frozen=True)
class _Networks:
    cnn: list[Run]
    mlp: list[Run]
    true_labels: list[Run]  # small MLPs on a few true labels: they generalise
    shuffled_labels: list[Run]  # the same on shuffled labels: they memorise


def _train_all(data: Digits, ckdir: str, cfg: DemoConfig, log: Callable[[str], None]) -> _Networks:
    from svcca._demo._train import train

    cnn = [train("cnn", s, data, ckdir, epochs=cfg.cnn_epochs) for s in range(cfg.seeds)]
    log(f"trained {len(cnn)} CNNs")
    mlp = [train("mlp", s, data, ckdir, epochs=cfg.mlp_epochs) for s in range(cfg.seeds)]
    log(f"trained {len(mlp)} MLPs")
    true_runs, shuf_runs = _train_memorising(data, os.path.join(ckdir, "memorise"), cfg)
    log("trained the true-label and shuffled-label MLPs")
    return _Networks(cnn, mlp, true_runs, shuf_runs)


def _train_memorising(data: Digits, ckdir: str, cfg: DemoConfig) -> tuple[list[Run], list[Run]]:
    """MLPs on ``cfg.memorise_n_train`` digits, with true and with shuffled labels."""
    from svcca._demo._train import train

    n = cfg.memorise_n_train
    true_runs: list[Run] = []
    shuf_runs: list[Run] = []
    for s in range(cfg.memorise_seeds):
        for shuffled, bucket in ((False, true_runs), (True, shuf_runs)):
            bucket.append(
                train(
                    "mlp",
                    100 + s,
                    data,
                    ckdir,
                    epochs=cfg.memorise_epochs,
                    shuffled=shuffled,
                    n_train=n,
                    batch_size=n,
                    lr=1e-2,
                    every_epoch=False,
                )
            )
    return true_runs, shuf_runs


# ---------------------------------------------------------------------------- figures


def _draw_all(nets: _Networks, data: Digits, cfg: DemoConfig, figures: _Figures) -> None:
    """Every experiment and its figure, in the order of the index."""
    probe = data.x_all  # all 1797 digits: representations are compared on these
    for runs, arch in ((nets.cnn, "CNN"), (nets.mlp, "MLP")):
        _learning_dynamics(runs, arch, data, cfg, figures)
    _class_sensitivity(nets.cnn, probe, figures)
    _interpretability(nets.cnn, data, figures)
    _compression(nets.cnn, data, figures)
    _generalising_vs_memorising(nets, data, cfg, figures)
    _coefficients(nets.cnn, probe, figures)


def _learning_dynamics(
    runs: list[Run], arch: str, data: Digits, cfg: DemoConfig, figures: _Figures
) -> None:
    import svcca.plot as sp

    ld = an.learning_dynamics(
        runs, data.x_all[_per_class_subset(data.y_all, cfg.dynamics_per_class)]
    )
    last = len(runs[0].checkpoints) - 1
    figures.add(
        f"learning_dynamics_{arch.lower()}",
        f"Learning dynamics ({arch}, {runs[0].name})",
        sp.learning_dynamics(
            ld.panes,
            steps=[f"epoch {e}" for e in ld.epochs],
            layers=ld.layers,
            final_label=f"epoch {last} (final)",
            cbar_label="linear CKA",
            title=f"{arch} ({runs[0].name}): linear CKA of each layer during "
            "training (rows) with each layer at the end (columns)",
        ),
        ld.finding,
    )
    ep = np.arange(ld.to_final.shape[1])
    figures.add(
        f"convergence_{arch.lower()}",
        f"Each layer's similarity to its final self ({arch}, {len(runs)} seeds)",
        sp.convergence_curves(
            ep,
            {n: ld.to_final[:, :, i].mean(0) for i, n in enumerate(ld.layers)},
            spread={n: ld.to_final[:, :, i].std(0) for i, n in enumerate(ld.layers)},
            threshold=ld.threshold,
            title=f"{arch}: each layer vs itself at the end (mean ± sd, {len(runs)} seeds)",
            ylabel=f"linear CKA with epoch {last}",
        ),
        ld.convergence_finding,
        [
            (f"linear CKA with its final self after epoch {min(1, last)}", ld.falls),
            (f"epoch its CKA first reaches {ld.threshold}", ld.crossings),
        ],
    )


def _class_sensitivity(cnn: list[Run], probe: np.ndarray, figures: _Figures) -> None:
    import svcca.plot as sp

    cs = an.class_sensitivity(cnn, probe)
    figures.add(
        "class_sensitivity",
        "Class sensitivity (CNN)",
        sp.class_sensitivity(
            cs.matrix,
            layers=cs.layers,
            classes=cs.classes,
            title=f"CNN: DFT-CCA of each digit's logit with each conv layer "
            f"(mean of {len(cnn)} seeds)",
        ),
        cs.finding,
        [
            (f"DFT-CCA of a digit's logit with {n}", (c,))
            for n, c in zip(cs.layers, cs.extremes, strict=True)
        ],
    )


def _interpretability(cnn: list[Run], data: Digits, figures: _Figures) -> None:
    import svcca.plot as sp

    sel = _per_class_subset(data.y_all, 40)
    it = an.interpretability(cnn, data.x_all[sel], data.y_all[sel])
    figures.add(
        "interpretability",
        f"Interpretability across runs (CNN, {it.layer})",
        sp.interpretability(
            {n: (it.raw[n], it.directions[n]) for n in it.raw},
            it.labels,
            k=3,
            smooth=5,
            directions_label="top SVCCA directions",
            neuron_labels={n: v.tolist() for n, v in it.neurons.items()},
        ),
        it.finding,
    )


def _compression(cnn: list[Run], data: Digits, figures: _Figures) -> None:
    import svcca.plot as sp

    co = an.compression(cnn, data)
    figures.add(
        "compression",
        "Compression onto top-k directions (CNN, fc1)",
        sp.compression_curves(
            co.ks,
            co.accuracy,
            full=co.full,
            chance=0.1,
            title=f"CNN {co.layer}: project onto top-k directions, run the rest",
        ),
        co.finding,
    )


def _generalising_vs_memorising(
    nets: _Networks, data: Digits, cfg: DemoConfig, figures: _Figures
) -> None:
    import svcca.plot as sp

    n_mem = cfg.memorise_n_train
    unseen = np.concatenate([data.x_train[n_mem:], data.x_test])[:800]
    gm = an.generalising_vs_memorising(
        {"true labels": nets.true_labels, "shuffled labels": nets.shuffled_labels}, unseen
    )
    figures.add(
        "generalising_vs_memorising",
        "Generalising vs memorising networks (MLP)",
        sp.group_similarity(
            gm.layers,
            gm.groups,
            title=f"MLPs on {n_mem} digits: PWCCA between pairs of seeds",
            ylabel="PWCCA",
        ),
        gm.finding,
        [
            (f"PWCCA between two networks at {n}", (c,))
            for n, c in zip(gm.layers, gm.claims, strict=True)
        ],
    )


def _coefficients(cnn: list[Run], probe: np.ndarray, figures: _Figures) -> None:
    import svcca.plot as sp

    cf = an.coefficients(cnn, probe)
    figures.add(
        "coefficients",
        "SVCCA coefficients with a random baseline (CNN)",
        sp.coefficient_curves(
            cf.curves,
            baselines=cf.baselines,
            title="CNN, two seeds: SVCCA coefficients (dashed: Gaussian data)",
        ),
        cf.finding,
    )


# ---------------------------------------------------------------------------- output


def _write_findings(report: DemoReport, cfg: DemoConfig, quick: bool) -> None:
    with open(os.path.join(report.out, "findings.json"), "w") as f:
        json.dump(
            {
                "seconds": report.seconds,
                "quick": quick,
                "config": asdict(cfg),
                "test_accuracy": report.accuracies,
                "figures": [asdict(fg) for fg in report.figures],
            },
            f,
            indent=1,
        )


class _NoLimits:
    def restore_original_limits(self) -> None:
        pass


def limit_blas_threads(n: int) -> Any:
    """Pin BLAS/OpenMP pools to ``n`` threads (threadpoolctl, shipped with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        return _NoLimits()
    return threadpool_limits(limits=n)


def _per_class_subset(y: np.ndarray, per_class: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])


def _write_index(report: DemoReport, cfg: DemoConfig, quick: bool) -> tuple[str, str]:
    """Write ``index.html`` and ``README.md`` (intro, then each figure and its finding)."""
    intro = _intro(report, cfg, quick)
    index = os.path.join(report.out, "index.html")
    readme = os.path.join(report.out, "README.md")
    with open(index, "w") as f:
        f.write(_index_html(intro, report.figures) + "\n")
    with open(readme, "w") as f:
        f.write(_readme_md(intro, report.figures))
    return index, readme


def _intro(report: DemoReport, cfg: DemoConfig, quick: bool) -> str:
    acc_line = ", ".join(f"{k} {v:.3f}" for k, v in report.accuracies.items())
    return (
        f"Small CNN and MLP trained on scikit-learn's 8x8 digits (1797 images; 1348 train, "
        f"449 test) from {cfg.seeds} seeds each, checkpoint every epoch "
        f"({'quick run' if quick else 'full run'}, {report.seconds:.0f} s). Representations "
        f"are compared on all 1797 images with SVCCA (singular directions explaining 99% of "
        f"the variance, then CCA), except: learning dynamics use linear CKA on "
        f"{10 * cfg.dynamics_per_class} images ({cfg.dynamics_per_class} per digit), class "
        f"sensitivity uses DFT-CCA for conv layers, interpretability uses 400 images (40 per "
        f"digit), generalising vs memorising uses PWCCA "
        f"on 800 images none of those networks trained on, and compression fits directions "
        f"on the training split and scores on the test split. Final test accuracy: "
        f"{acc_line}."
    )


def _png_svg(fg: Figure) -> tuple[str, str | None]:
    png = next(f for f in fg.files if f.endswith(".png"))
    return png, next((f for f in fg.files if f.endswith(".svg")), None)


def _readme_md(intro: str, figures: tuple[Figure, ...]) -> str:
    md = ["# svcca demo", "", intro, ""]
    for fg in figures:
        md += [f"## {fg.title}", "", f"![{fg.title}]({_png_svg(fg)[0]})", "", fg.finding, ""]
    return "\n".join(md)


def _index_html(intro: str, figures: tuple[Figure, ...]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>svcca demo</title>",
        # A phone lays the page out at its own width (not 980 px, zoomed out); the text
        # keeps a margin there; each figure links to its full-size PNG, as the panes of
        # a wide figure are too small to read at a phone's width.
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em}img{max-width:100%;border:1px solid #ddd}"
        "p.finding{font-size:1.05em}table.claims{border-collapse:collapse;font-size:.9em;"
        "margin-bottom:1em}table.claims td,table.claims th{border:1px solid #ddd;"
        "padding:.2em .5em;text-align:left}td.holds{color:#176317}td.fails{color:#9a3412}"
        "</style>",
        "</head><body><h1>svcca demo</h1>",
        f"<p>{html.escape(intro)}</p>",
    ]
    for fg in figures:
        png, svg = _png_svg(fg)
        link = f" (<a href='{svg}'>SVG</a>)" if svg else ""
        parts += [
            f"<h2>{html.escape(fg.title)}</h2>",
            f"<a href='{png}'><img src='{png}' alt='{html.escape(fg.title)}'></a>",
            f"<p class='finding'>{html.escape(fg.finding)}{link}</p>",
        ]
        if fg.claims:
            parts.append(_claims_table(fg.claims))
    parts.append("</body></html>")
    return "\n".join(parts)


def _claims_table(claims: Sequence[dict[str, Any]]) -> str:
    """The finding's comparisons as a table: each number with its 95% interval across
    runs, the difference, and whether it holds (with the largest adjusted p-value)."""
    head = (
        "<table class='claims'><tr><th>quantity</th><th>first [95% interval across runs]"
        "</th><th>second</th><th>difference</th><th>holds? (largest adjusted p)</th></tr>"
    )

    def ends(v: list[float | None]) -> tuple[float, float, float]:
        a, b, c = (float("nan") if x is None else x for x in v)
        return a, b, c

    rows = []
    for c in claims:
        digits = 1 if c["quantity"].startswith("epoch") else 2
        cell = [
            c["quantity"],
            f"{c['first']} {iv(ends(c['first_interval']), digits)}",
            f"{c['second']} {iv(ends(c['second_interval']), digits)}",
            iv(ends(c["difference_interval"]), digits),
        ]
        worst = max(c["adjusted"]) if c["adjusted"] else float("nan")
        verdict = "holds" if c["holds"] else f"does not hold: {c['why']}"
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(v)}</td>" for v in cell)
            + f"<td class='{'holds' if c['holds'] else 'fails'}'>{html.escape(verdict)} "
            f"({fmt_p(worst)})</td></tr>"
        )
    return head + "".join(rows) + "</table>"


RunDemo = Callable[..., DemoReport]
