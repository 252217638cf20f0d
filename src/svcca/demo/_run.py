"""The demo pipeline: train, analyse, draw, write the index."""

from __future__ import annotations

import html
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

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
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import torch
    except ImportError as exc:
        raise ImportError(
            f"svcca demo needs torch, matplotlib and scikit-learn ({exc}); install them with "
            "pip install 'svcca[torch,plot,sklearn]'."
        ) from exc
    import svcca.plot as sp
    from svcca.demo import _analysis as an
    from svcca.demo._train import Run, load_digits_split, train

    cfg = config or DemoConfig.make(quick)
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    ckdir = os.path.join(out, "checkpoints")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    # BLAS threads spinning on a small shared machine cost far more than they give here
    # (measured 40x slower on 2 busy cores): the demo's matrices are small.
    limits = limit_blas_threads(cfg.threads)
    t0 = time.perf_counter()
    figures: list[Figure] = []

    def fig(name: str, title: str, f: Any, finding: str) -> None:
        files = sp.save(f, os.path.join(out, name), formats=cfg.formats)
        figures.append(Figure(name, title, tuple(os.path.basename(p) for p in files), finding))
        _log(progress, f"figure {name}: {finding}", t0)

    try:
        data = load_digits_split()
        probe = data.x_all  # all 1797 digits: representations are compared on these
        cnn = [train("cnn", s, data, ckdir, epochs=cfg.cnn_epochs) for s in range(cfg.seeds)]
        _log(progress, f"trained {len(cnn)} CNNs", t0)
        mlp = [train("mlp", s, data, ckdir, epochs=cfg.mlp_epochs) for s in range(cfg.seeds)]
        _log(progress, f"trained {len(mlp)} MLPs", t0)
        n_mem = cfg.memorise_n_train
        true_runs: list[Run] = []
        shuf_runs: list[Run] = []
        for s in range(cfg.memorise_seeds):
            for shuffled, bucket in ((False, true_runs), (True, shuf_runs)):
                bucket.append(
                    train(
                        "mlp",
                        100 + s,
                        data,
                        os.path.join(ckdir, "memorise"),
                        epochs=cfg.memorise_epochs,
                        shuffled=shuffled,
                        n_train=n_mem,
                        batch_size=n_mem,
                        lr=1e-2,
                        every_epoch=False,
                    )
                )
        _log(progress, "trained the true-label and shuffled-label MLPs", t0)

        for runs, arch in ((cnn, "CNN"), (mlp, "MLP")):
            ld = an.learning_dynamics(
                runs, probe[_per_class_subset(data.y_all, cfg.dynamics_per_class)]
            )
            fig(
                f"learning_dynamics_{arch.lower()}",
                f"Learning dynamics ({arch})",
                sp.learning_dynamics(
                    ld.panes,
                    steps=[f"epoch {e}" for e in ld.epochs],
                    layers=ld.layers,
                    final_label=f"epoch {len(runs[0].checkpoints) - 1}",
                    title=f"{arch} ({runs[0].name}): linear CKA of each layer during "
                    "training (rows) with each layer at the end (columns)",
                ),
                ld.finding,
            )
            ep = np.arange(ld.to_final.shape[1])
            fig(
                f"convergence_{arch.lower()}",
                f"Each layer's similarity to its final self ({arch})",
                sp.convergence_curves(
                    ep,
                    {n: ld.to_final[:, :, i].mean(0) for i, n in enumerate(ld.layers)},
                    spread={n: ld.to_final[:, :, i].std(0) for i, n in enumerate(ld.layers)},
                    threshold=ld.threshold,
                    title=f"{arch}: linear CKA with the final layer, mean ± sd over "
                    f"{len(runs)} seeds",
                ),
                ld.finding,
            )

        cs = an.class_sensitivity(cnn, probe)
        fig(
            "class_sensitivity",
            "Class sensitivity (CNN)",
            sp.class_sensitivity(
                cs.matrix,
                layers=cs.layers,
                classes=cs.classes,
                title=f"CNN: (DFT-)CCA of each digit's logit with each layer "
                f"(mean over {len(cnn)} seeds)",
            ),
            cs.finding,
        )

        sel = _per_class_subset(data.y_all, 40)
        it = an.interpretability(cnn, probe[sel], data.y_all[sel])
        fig(
            "interpretability",
            "Interpretability across runs (CNN, fc1)",
            sp.interpretability(
                {n: (it.raw[n], it.directions[n]) for n in it.raw}, it.labels, k=3, smooth=5
            ),
            it.finding,
        )

        co = an.compression(cnn, data)
        fig(
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

        unseen = np.concatenate([data.x_train[n_mem:], data.x_test])[:800]
        gm = an.generalising_vs_memorising(
            {"true labels": true_runs, "shuffled labels": shuf_runs}, unseen
        )
        fig(
            "generalising_vs_memorising",
            "Generalising vs memorising networks (MLP)",
            sp.group_similarity(
                gm.layers,
                gm.groups,
                title=f"MLPs on {n_mem} digits: PWCCA between pairs of seeds",
                ylabel="PWCCA",
            ),
            gm.finding,
        )

        cf = an.coefficients(cnn, probe)
        fig(
            "coefficients",
            "SVCCA coefficients with a random baseline (CNN)",
            sp.coefficient_curves(
                cf.curves,
                baselines=cf.baselines,
                title="CNN, two seeds: SVCCA coefficients (dashed: Gaussian data)",
            ),
            cf.finding,
        )
    finally:
        torch.set_num_threads(threads)
        limits.restore_original_limits()

    seconds = time.perf_counter() - t0
    accuracies = {r.name: r.test_accuracy[-1] for r in cnn + mlp}
    report = DemoReport(out, tuple(figures), "", "", seconds, accuracies)
    index, readme = _write_index(report, cfg, quick)
    report = DemoReport(out, tuple(figures), index, readme, seconds, accuracies)
    with open(os.path.join(out, "findings.json"), "w") as f:
        json.dump(
            {
                "seconds": seconds,
                "quick": quick,
                "config": asdict(cfg),
                "test_accuracy": accuracies,
                "figures": [asdict(fg) for fg in figures],
            },
            f,
            indent=1,
        )
    _log(progress, f"wrote {index}", t0)
    return report


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
    accs = report.accuracies
    acc_line = ", ".join(f"{k} {v:.3f}" for k, v in accs.items())
    intro = (
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
    md = ["# svcca demo", "", intro, ""]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>svcca demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "img{max-width:100%;border:1px solid #ddd}p.finding{font-size:1.05em}</style>",
        "</head><body><h1>svcca demo</h1>",
        f"<p>{html.escape(intro)}</p>",
    ]
    for fg in report.figures:
        png = next(f for f in fg.files if f.endswith(".png"))
        svg = next((f for f in fg.files if f.endswith(".svg")), None)
        md += [f"## {fg.title}", "", f"![{fg.title}]({png})", "", fg.finding, ""]
        link = f" (<a href='{svg}'>SVG</a>)" if svg else ""
        parts += [
            f"<h2>{html.escape(fg.title)}</h2>",
            f"<img src='{png}' alt='{html.escape(fg.title)}'>",
            f"<p class='finding'>{html.escape(fg.finding)}{link}</p>",
        ]
    parts.append("</body></html>")
    index = os.path.join(report.out, "index.html")
    readme = os.path.join(report.out, "README.md")
    with open(index, "w") as f:
        f.write("\n".join(parts) + "\n")
    with open(readme, "w") as f:
        f.write("\n".join(md))
    return index, readme


RunDemo = Callable[..., DemoReport]
