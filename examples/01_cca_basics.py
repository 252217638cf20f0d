"""Tutorial 1 retold: CCA basics, and how many datapoints a comparison needs
=========================================================================

- Two random layers have canonical correlations far from zero when there are few
  datapoints per neuron: the random baseline shrinks only as n grows.
- Layers that share a low-dimensional signal show that many correlations near 1; the
  remaining (noise) correlations pull plain CCA's mean down.
- SVCCA keeps each layer's top singular directions explaining 99% of the variance. That
  drops the noise directions only when together they hold under 1% of the variance.
  Here the noise holds about 2%, so the 99% cut keeps most of them and the mean stays
  far below the shared signal's correlations; a cut below the signal's share (95%), or
  keeping the signal's 10 directions, removes them. The script prints the shares and
  checks each of these statements on its own numbers.

Run: ``python examples/01_cca_basics.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import os

import numpy as np
from _common import parse

import svcca


def main() -> None:
    args = parse(__doc__)
    rng = np.random.default_rng(0)
    p, q, d = 50, 40, 10

    print("Random layers: the mean canonical correlation depends on datapoints per neuron")
    ns = [100, 400, 1600] if args.quick else [100, 200, 400, 800, 1600, 3200, 6400]
    baseline = {}
    for n in ns:
        X, Y = rng.standard_normal((n, p)), rng.standard_normal((n, q))
        r = svcca.cca(X, Y)
        baseline[n] = r.correlations
        print(f"  n = {n:5d} ({n / p:5.1f} per neuron): mean rho = {r.score:.3f}")
    means = [float(baseline[n].mean()) for n in ns]
    assert bool(np.all(np.diff(means) < 0)), means

    print(f"Layers sharing a {d}-d signal (plus noise):")
    n = ns[-1]
    Z = rng.standard_normal((n, d))
    X = Z @ rng.standard_normal((d, p)) + 0.5 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((d, q)) + 0.5 * rng.standard_normal((n, q))
    r = svcca.cca(X, Y)
    print(f"  CCA: top {d} correlations {np.round(r.correlations[:d], 3).tolist()}")
    print(
        f"       the next ones {np.round(r.correlations[d : d + 3], 3).tolist()}; "
        f"mean of all {r.correlations.size}: {r.score:.3f}"
    )
    s_sig = svcca.svcca(X, Y, keep=d)
    noise_x, noise_y = 1 - s_sig.variance_kept_x, 1 - s_sig.variance_kept_y
    print(
        f"  The top {d} singular directions explain {s_sig.variance_kept_x:.1%} of X's and "
        f"{s_sig.variance_kept_y:.1%} of Y's variance: the rest ({noise_x:.1%}, "
        f"{noise_y:.1%}) is noise."
    )
    for keep in (0.99, 0.95):
        s = svcca.svcca(X, Y, keep=keep)
        extra_x, extra_y = s.kept_x - d, s.kept_y - d
        what = (
            f"{extra_x} and {extra_y} of them noise directions"
            if max(extra_x, extra_y) > 0
            else "no noise direction"
        )
        print(
            f"  SVCCA keep={keep}: {s.kept_x} and {s.kept_y} directions ({what}), "
            f"mean rho {s.score:.3f}"
        )
    print(f"  SVCCA keep={d} (the signal's dimension): mean rho {s_sig.score:.3f}")

    # The docstring's claims, checked on this run's numbers.
    s99, s95 = svcca.svcca(X, Y, keep=0.99), svcca.svcca(X, Y, keep=0.95)
    assert np.all(r.correlations[:d] > 0.9) and r.score < 0.5
    assert min(noise_x, noise_y) > 0.01  # the noise holds more than the 99% cut drops
    assert s99.kept_x > d and s99.kept_y > d and s99.score < 0.6
    assert (s95.kept_x, s95.kept_y) == (d, d) and s95.score > 0.9 and s_sig.score > 0.9

    if args.out:
        import svcca.plot as sp

        fig = sp.coefficient_curves(
            {f"shared {d}-d signal": r.correlations},
            baselines={f"shared {d}-d signal": baseline[n]},
        )
        written = sp.save(fig, f"{args.out}/01_coefficients")
        print("  wrote", ", ".join(os.path.basename(w) for w in written))


if __name__ == "__main__":
    main()
