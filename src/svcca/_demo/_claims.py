"""The claims of each demo finding that compares numbers (:mod:`svcca._demo._uncertain`).

Each builder takes what the finding measured in every run and returns its settled
claims: the numbers with intervals across runs, each run's paired test over the images,
Holm over the finding's tests, and the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import svcca
from svcca._demo._uncertain import LEVEL, Claim, FewRows, claim, iv, method, say, settle

__all__ = [
    "chain_claims",
    "crossing_claims",
    "dynamics_finding",
    "extreme_claims",
    "fisher_interval",
    "group_claims",
]


def _bounds(measure: str) -> tuple[float, float]:
    lo, hi = svcca.MEASURES[measure].range
    return float(lo), float(hi)


def chain_claims(
    labels: Sequence[str], cells: Sequence[Sequence[Any]], *, measure: str, few: FewRows
) -> list[Claim]:
    """ "Cell ``i`` exceeds cell ``i + 1``" for each step of a chain, in every run.

    ``cells[r][i]`` holds the block statistics (:class:`svcca.stats.BlockMoments`, the
    same blocks and seed throughout) of cell ``i`` in run ``r``. Each cell gets
    :func:`svcca.stats.interval`, each step :func:`svcca.stats.paired_difference`;
    Holm runs over the ``(L - 1) x runs`` tests.
    """
    L = len(labels)
    ivs = [
        [
            few.run(labels[i], svcca.stats.interval, run[i], measure=measure, level=LEVEL)
            for i in range(L)
        ]
        for run in cells
    ]
    out = []
    for i in range(L - 1):
        pds = [
            few.run(
                labels[i],
                svcca.stats.paired_difference,
                run[i],
                run[i + 1],
                measure=measure,
                level=LEVEL,
            )
            for run in cells
        ]
        out.append(
            claim(
                labels[i],
                labels[i + 1],
                [[iv[i].estimate, iv[i + 1].estimate] for iv in ivs],
                standard_errors=[[iv[i].standard_error, iv[i + 1].standard_error] for iv in ivs],
                pvalues=[d.pvalue for d in pds],
                bounds=_bounds(measure),
            )
        )
    return settle(out)


def crossing_claims(labels: Sequence[str], crossing: np.ndarray, last: int) -> list[Claim]:
    """ "Layer ``i + 1`` reaches the threshold later than layer ``i``", across runs.

    ``crossing`` (runs, L) holds each run's crossing epochs. A crossing epoch is a
    discrete statistic of the images (the jackknife does not apply to it), so each step
    is tested across runs only: a t-test of the per-run differences, its spread floored
    at what the rounding to whole epochs gives (:func:`~svcca._demo._uncertain.claim`'s
    ``resolution``), Holm over the ``L - 1`` steps.
    """
    c = np.asarray(crossing, dtype=np.float64)
    return settle(
        [
            claim(
                labels[i + 1],
                labels[i],
                c[:, [i + 1, i]],
                bounds=(0.0, float(last)),
                resolution=1.0,
            )
            for i in range(len(labels) - 1)
        ]
    )


def extreme_claims(
    layers: Sequence[str],
    cells: Sequence[Sequence[Mapping[int, Any]]],
    means: np.ndarray,
    *,
    measure: str,
    few: FewRows,
) -> list[Claim]:
    """Per layer, "the most correlated class exceeds the least correlated one".

    ``cells[r][l][c]`` holds the block statistics of layer ``l`` against class ``c`` in
    run ``r`` (at least for the two classes picked); ``means`` (L, C) the mean over runs
    the two classes are picked from. They
    are picked from the ``C (C - 1) / 2`` pairs of classes, so each run's p-value is
    multiplied by that number (Bonferroni) before Holm over layers x runs.
    """
    C = means.shape[1]
    out = []
    for li, name in enumerate(layers):
        hi, lo = int(means[li].argmax()), int(means[li].argmin())
        vals, ses, ps = [], [], []
        for run in cells:
            a = few.run(name, svcca.stats.interval, run[li][hi], measure=measure, level=LEVEL)
            b = few.run(name, svcca.stats.interval, run[li][lo], measure=measure, level=LEVEL)
            d = few.run(
                name,
                svcca.stats.paired_difference,
                run[li][hi],
                run[li][lo],
                measure=measure,
                level=LEVEL,
            )
            vals.append([a.estimate, b.estimate])
            ses.append([a.standard_error, b.standard_error])
            ps.append(d.pvalue)
        out.append(
            claim(
                f"digit {hi}",
                f"digit {lo}",
                vals,
                standard_errors=ses,
                pvalues=ps,
                selection=C * (C - 1) // 2,
                bounds=_bounds(measure),
            )
        )
    return settle(out)


def group_claims(
    layers: Sequence[str],
    first: Sequence[Sequence[Any]],
    second: Sequence[Sequence[Any]],
    pairs: Sequence[tuple[int, int]],
    *,
    measure: str,
    few: FewRows,
    names: tuple[str, str] = ("first group", "second group"),
) -> tuple[list[Claim], np.ndarray, np.ndarray]:
    """Per layer, "networks of the first group are more alike than those of the second".

    ``first[m][l]`` / ``second[m][l]`` hold the block statistics of the ``m``-th pair
    of seeds (``pairs[m]``) at layer ``l`` in each group, on the same images. Each pair
    is tested with :func:`svcca.stats.paired_difference`, Holm over layers x pairs; the
    intervals over pairs come from the leave-one-seed-out jackknife. ``names`` label the
    two groups in each claim. Also returns the two groups' scores, each ``(pairs, L)``.
    """
    L = len(layers)
    diffs = [
        [
            few.run(
                layers[li],
                svcca.stats.paired_difference,
                a[li],
                b[li],
                measure=measure,
                level=LEVEL,
            )
            for li in range(L)
        ]
        for a, b in zip(first, second, strict=True)
    ]
    g1 = np.array([[d.first for d in row] for row in diffs])
    g2 = np.array([[d.second for d in row] for row in diffs])
    out = [
        claim(
            names[0],
            names[1],
            np.stack([g1[:, li], g2[:, li]], axis=1),
            unit="pair of seeds",
            pvalues=[row[li].pvalue for row in diffs],
            pairs=pairs,
            bounds=_bounds(measure),
        )
        for li in range(L)
    ]
    return settle(out), g1, g2


def fisher_interval(r: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Fisher's z interval for a Pearson correlation of ``n`` pairs: ``tanh(atanh(r) -+
    z_{(1 + level) / 2} / sqrt(n - 3))``; NaN ends for ``n <= 3`` or ``|r| = 1``."""
    from scipy.stats import norm

    if n <= 3 or not abs(r) < 1:
        return float("nan"), float("nan")
    half = float(norm.ppf((1 + level) / 2)) / np.sqrt(n - 3)
    return float(np.tanh(np.arctanh(r) - half)), float(np.tanh(np.arctanh(r) + half))


def dynamics_finding(
    layers: tuple[str, ...],
    falls: Sequence[Claim],
    crossings: Sequence[Claim],
    threshold: float,
    e1: int,
) -> str:
    """The convergence finding: each order's numbers, each step's test, the verdict."""
    k = falls[0].runs if falls else crossings[0].runs
    at1 = [c.first_interval for c in falls] + [falls[-1].second_interval] if falls else []
    cross = [c.second_interval for c in crossings] + [crossings[-1].first_interval]
    fall_text = "; ".join(say(c, lead=f"{c.first} minus {c.second}") for c in falls)
    cross_text = "; ".join(
        say(c, lead=f"{c.first} after {c.second} by", noun="epochs", digits=1) for c in crossings
    )
    bad_falls = [f"{c.first} > {c.second}" for c in falls if not c.holds]
    bad_cross = [f"{c.first} after {c.second}" for c in crossings if not c.holds]

    def missing(bad: list[str]) -> str:
        return f"{' and '.join(bad)} {'does' if len(bad) == 1 else 'do'} not hold"

    if not bad_falls and not bad_cross:
        verdict = (
            "Both orders are bottom-up with every step holding (no layer settles before "
            "the one below it): the paper's finding."
        )
    elif not bad_falls:
        verdict = (
            f"The epoch-{e1} similarity falls with depth at every step (bottom-up, as in the "
            f"paper), but the crossings' depth order is not established: "
            f"{missing(bad_cross)}."
        )
    elif not bad_cross:
        verdict = (
            f"The crossings are in depth order at every step (bottom-up, as in the paper), "
            f"but the fall of the epoch-{e1} similarity with depth is not established: "
            f"{missing(bad_falls)}."
        )
    else:
        verdict = (
            f"Bottom-up is not established at every step on these runs: the epoch-{e1} "
            f"similarity falls with depth at {len(falls) - len(bad_falls)} of {len(falls)} "
            f"steps ({missing(bad_falls)}), the crossings are in depth order at "
            f"{len(crossings) - len(bad_cross)} of {len(crossings)} ({missing(bad_cross)})."
        )
    return (
        f"Mean over {k} seeds [95% interval across seeds], each layer's linear CKA with "
        f"its final self after epoch {e1}: "
        + ", ".join(f"{n} {iv(v)}" for n, v in zip(layers, at1, strict=True))
        + f". Step by step down the layers ({method(falls)}): {fall_text}. "
        + _spread_clause(falls)
        + f"The epoch at which it first reaches {threshold}: "
        + ", ".join(f"{n} {iv(v, 1)}" for n, v in zip(layers, cross, strict=True))
        + f"; step by step ({method(crossings)}; a crossing is known to the epoch): "
        + f"{cross_text}. {verdict}"
    )


def _spread_clause(claims: Sequence[Claim]) -> str:
    """Spread across datapoints (within a run) beside spread across runs, for the values."""
    if not claims:
        return ""
    vals = np.concatenate([claims[0].values[:, :1]] + [c.values[:, 1:] for c in claims], 1)
    ses = np.concatenate(
        [claims[0].standard_errors[:, :1]] + [c.standard_errors[:, 1:] for c in claims], 1
    )
    if vals.shape[0] < 2 or np.isnan(ses).all():
        return ""
    within = np.sqrt(np.nanmean(ses**2, axis=0))
    across = vals.std(axis=0, ddof=1)
    return (
        f"Within a seed the images move these values by a standard error of "
        f"{within.min():.3f} to {within.max():.3f}; across seeds they vary by sd "
        f"{across.min():.3f} to {across.max():.3f}. "
    )
