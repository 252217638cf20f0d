"""Tutorial 1 retold: CCA basics, and how many datapoints a comparison needs.

- Two random layers have canonical correlations far from zero when there are few
  datapoints per neuron: the random baseline shrinks only as n grows.
- Layers that share a low-dimensional signal show that many correlations near 1.
- SVCCA first keeps each layer's top singular directions (99% of the variance), which
  removes the noise directions that inflate plain CCA.

Run: ``python examples/01_cca_basics.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import numpy as np
from _common import parse

import svcca


def main() -> None:
    args = parse(__doc__.splitlines()[0])
    rng = np.random.default_rng(0)
    p, q = 50, 40

    print("Random layers: the mean canonical correlation depends on datapoints per neuron")
    ns = [100, 400, 1600] if args.quick else [100, 200, 400, 800, 1600, 3200, 6400]
    baseline = {}
    for n in ns:
        X, Y = rng.standard_normal((n, p)), rng.standard_normal((n, q))
        r = svcca.cca(X, Y)
        baseline[n] = r.correlations
        print(f"  n = {n:5d} ({n / p:5.1f} per neuron): mean rho = {r.score:.3f}")

    print("Layers sharing a 10-d signal (plus noise):")
    n = ns[-1]
    Z = rng.standard_normal((n, 10))
    X = Z @ rng.standard_normal((10, p)) + 0.5 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((10, q)) + 0.5 * rng.standard_normal((n, q))
    r = svcca.cca(X, Y)
    print(f"  CCA: top 10 correlations {np.round(r.correlations[:10], 3).tolist()}")
    print(f"       the next ones {np.round(r.correlations[10:13], 3).tolist()}; mean {r.score:.3f}")
    s = svcca.svcca(X, Y, keep=0.99)
    print(f"  SVCCA keeps {s.kept_x} and {s.kept_y} directions: mean rho {s.score:.3f}")
    s10 = svcca.svcca(X, Y, keep=10)
    print(f"  SVCCA with the top 10 directions on each side: mean rho {s10.score:.3f}")
    assert np.all(r.correlations[:10] > 0.9) and s10.score > 0.9

    if args.out:
        import svcca.plot as sp

        fig = sp.coefficient_curves(
            {"shared 10-d signal": r.correlations}, baselines={"shared 10-d signal": baseline[n]}
        )
        print("  wrote", sp.save(fig, f"{args.out}/01_coefficients"))


if __name__ == "__main__":
    main()
