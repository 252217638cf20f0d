"""ReSi's layer-monotonicity test: does similarity fall with the distance between layers?

Within one network, a layer should be more similar to its neighbour than to a layer
further away (Klabunde et al., ICLR 2025, "layer monotonicity"; Ding et al. 2021's
ordering intuition). For every registered measure and every trained network, the
``L x L`` matrix of layer similarities gives ReSi's two scores:

- **correlation**: for each layer and each direction (the layers after it, the layers
  before it), the Spearman correlation between the similarity to those layers and their
  distance in layers, negated for a similarity (so +1 is perfect: the further, the
  less similar; for a distance, the correlation itself); the mean over layers and both
  directions;
- **violation rate**: over all triples of a source layer and two target layers on the
  same side of it, the share where the further target is the more similar one.

The networks are the sanity check's CNNs (the plain CNN on the digits with random
shifts, :mod:`svcca._demo._train`); each network's layers are compared by
:func:`svcca.pairwise` with every registered measure.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import svcca
from svcca._validation import check_int, check_option

__all__ = ["MonotonicityResult", "monotonicity_scores", "run_monotonicity"]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two short vectors (NaN when either is constant)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb / den) if den > 0 else float("nan")


def monotonicity_scores(S: Any, *, larger_is_more_similar: bool = True) -> tuple[float, float]:
    """ReSi's two layer-monotonicity scores of one network's layer-similarity matrix.

    Parameters
    ----------
    S : array_like, shape (L, L)
        ``S[i, j]``: the measure between layer ``i`` and layer ``j`` (in network order).
    larger_is_more_similar : bool, default True
        False for a distance.

    Returns
    -------
    correlation : float
        Mean over source layers and both directions of the Spearman correlation between
        the score and the layer distance, sign-adjusted so that +1 is monotone (NaN
        entries, from a direction with fewer than 2 layers or constant scores, are
        left out, as ReSi's ``nanmean`` does).
    violation_rate : float
        Share of triples ``(i, j, k)``, ``j`` strictly between ``i`` and ``k`` on one
        side of ``i``, where layer ``k`` (further) is strictly more similar to ``i``
        than ``j``.

    Examples
    --------
    >>> import numpy as np
    >>> from svcca._demo._monotonicity import monotonicity_scores
    >>> S = 1.0 / (1.0 + np.abs(np.subtract.outer(np.arange(4), np.arange(4))))
    >>> monotonicity_scores(S)
    (1.0, 0.0)
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] < 3:
        raise ValueError(
            f"S must be a square matrix of at least 3 layers (the scores between every "
            f"pair of one network's layers); got shape {S.shape}."
        )
    L = S.shape[0]
    sign = -1.0 if larger_is_more_similar else 1.0
    corrs: list[float] = []
    violations = total = 0
    for i in range(L):
        for targets in (range(i + 1, L), range(i - 1, -1, -1)):  # nearest first
            t = list(targets)
            if len(t) >= 2:
                corrs.append(sign * _spearman(S[i, t], np.abs(np.array(t) - i)))
            for a in range(len(t)):
                for b in range(a + 1, len(t)):
                    near, far = S[i, t[a]], S[i, t[b]]
                    total += 1
                    violations += int(far > near if larger_is_more_similar else far < near)
    finite = [c for c in corrs if np.isfinite(c)]
    corr = float(np.mean(finite)) if finite else float("nan")
    return corr, violations / total


@dataclass(frozen=True)
class MonotonicityResult:
    """Layer monotonicity of every measure on the sanity check's networks.

    Attributes
    ----------
    correlation, violation_rate : dict of str to float
        Per measure, the mean over networks of :func:`monotonicity_scores` (NaN where
        the measure failed on a network: :attr:`errors` says why).
    errors : dict of str to str
        The first error of each measure that failed.
    networks, layers, datapoints : int
    setup : dict
    seconds : float
    """

    correlation: dict[str, float]
    violation_rate: dict[str, float]
    errors: dict[str, str]
    networks: int
    layers: int
    datapoints: int
    setup: dict[str, Any]
    seconds: float


def _score_network(
    layers: Sequence[np.ndarray], names: Sequence[str]
) -> dict[str, tuple[float, float] | str]:
    reps = {f"layer{i}": X for i, X in enumerate(layers)}
    out: dict[str, tuple[float, float] | str] = {}
    for name in names:
        m = svcca.MEASURES[name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", svcca.SVCCAWarning)
                S = svcca.pairwise(reps, measure=name).values  # type: ignore[arg-type]
            out[name] = monotonicity_scores(S, larger_is_more_similar=m.larger_is_more_similar)
        except (ValueError, TypeError, FloatingPointError) as exc:  # refused on this data
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


def run_monotonicity(
    out: str | os.PathLike[str] | None = None,
    *,
    seeds: int = 2,
    quick: bool = False,
    depth: int = 8,
    width: int = 8,
    epochs: int | None = None,
    n_probe: int | None = None,
    conv: str = "mean",
    measures: Sequence[str] | None = None,
    progress: bool = False,
) -> MonotonicityResult:
    """Train the sanity check's CNNs and score every measure's layer monotonicity.

    Parameters
    ----------
    out : path, optional
        Folder for ``monotonicity.json``, ``monotonicity.md`` and the checkpoints.
    seeds : int, default 2
        Networks trained (each scored on its own layers; the scores are averaged).
    quick : bool, default False
        Fewer epochs and datapoints (for CI).
    depth, width : int, default 8, 8
        The plain CNN of :func:`svcca._demo._train.make_model`, as the sanity check.
    epochs, n_probe : int, optional
        Default 20 and 1347 (6 and 300 with ``quick``), as the sanity check.
    conv : {"mean", "flatten"}, default "mean"
        A conv layer as its spatial mean (``c`` features) or its flattened map. The
        mean keeps the every-measure sweep affordable (the flattened maps have up to
        ``c h w = 1152`` features for ``n_probe`` datapoints).
    measures : sequence of str, optional
        Registered measures to score; default every one that :func:`svcca.pairwise`
        serves (not the minibatch ones).

    Returns
    -------
    MonotonicityResult
    """
    import torch

    from svcca._demo._sanity import probe_images
    from svcca._demo._train import layer_names, load_digits_split, train
    from svcca.torch import capture

    seeds = check_int(seeds, "seeds", minimum=1)
    depth = check_int(depth, "depth", minimum=3, fix="Monotonicity needs 3 or more layers.")
    width = check_int(width, "width")
    conv = check_option(conv, "conv", ("mean", "flatten"))
    epochs = check_int((6 if quick else 20) if epochs is None else epochs, "epochs")
    n_probe = check_int((300 if quick else 1347) if n_probe is None else n_probe, "n_probe")
    names = (
        [n for n, m in svcca.MEASURES.items() if m.kind != "minibatch"]
        if measures is None
        else [check_option(n, "measure", tuple(svcca.MEASURES)) for n in measures]
    )
    t0 = time.perf_counter()
    root = os.fspath(out) if out is not None else "."
    x = probe_images("plain", n_probe)
    data = load_digits_split()
    per_net = []
    for s in range(seeds):
        run = train(
            "plain",
            s,
            data,
            os.path.join(root, "checkpoints-monotonicity"),
            epochs=epochs,
            every_epoch=False,
            width=width,
            depth=depth,
            shifts=True,
            cosine=True,
            lr=3e-3,
            batch_size=32,
        )
        acts = capture(
            run.load(),
            list(torch.from_numpy(x).split(512)),
            layer_names("plain", depth),
            conv=conv,  # type: ignore[arg-type]
        )
        layers = [np.asarray(a, dtype=np.float64) for a in acts.values()]
        per_net.append(_score_network(layers, names))
        if progress:
            print(f"[{time.perf_counter() - t0:6.1f}s] network {s} scored", file=sys.stderr)
    corr: dict[str, float] = {}
    viol: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        got = [r[name] for r in per_net]
        ok = [g for g in got if isinstance(g, tuple)]
        bad = [g for g in got if isinstance(g, str)]
        if bad:
            errors[name] = bad[0]
        corr[name] = float(np.mean([c for c, _ in ok])) if ok else float("nan")
        viol[name] = float(np.mean([v for _, v in ok])) if ok else float("nan")
    setup = {"arch": "plain", "depth": depth, "width": width, "epochs": epochs, "conv": conv}
    res = MonotonicityResult(
        corr,
        viol,
        errors,
        seeds,
        len(layer_names("plain", depth)),
        len(x),
        setup,
        time.perf_counter() - t0,
    )
    if out is not None:
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "monotonicity.json"), "w", encoding="utf-8") as f:
            json.dump(
                {
                    "correlation": corr,
                    "violation_rate": viol,
                    "errors": errors,
                    "networks": seeds,
                    "layers": res.layers,
                    "datapoints": res.datapoints,
                    "setup": setup,
                    "seconds": res.seconds,
                },
                f,
                indent=1,
            )
        with open(os.path.join(root, "monotonicity.md"), "w", encoding="utf-8") as f:
            f.write(monotonicity_markdown(res))
    return res


def monotonicity_markdown(res: MonotonicityResult) -> str:
    """The result as a Markdown table, best correlation first."""
    rows = sorted(
        res.correlation,
        key=lambda k: -res.correlation[k] if np.isfinite(res.correlation[k]) else np.inf,
    )
    lines = [
        f"Layer monotonicity (ReSi) on {res.networks} plain CNNs, {res.layers} layers, "
        f"{res.datapoints} held-out digits (conv layers: {res.setup['conv']}).",
        "",
        "| measure | correlation (1 = monotone) | violation rate |",
        "|---|---|---|",
    ]
    for k in rows:
        c, v = res.correlation[k], res.violation_rate[k]
        cell = "failed" if not np.isfinite(c) else f"{c:.3f}"
        lines.append(f"| `{k}` | {cell} | {v:.3f} |")
    for k, e in res.errors.items():
        lines.append(f"\n`{k}` failed on at least one network: {e}")
    return "\n".join(lines) + "\n"
