"""Tutorial 2 retold: comparing convolutional layers
=================================================

A conv layer is ``(n, h, w, c)``: as many "neurons" as ``h*w*c``, usually more than the
datapoints. The SVCCA paper's answer is DFT-CCA: the 2-D Fourier transform over space
splits the comparison into one small CCA per spatial frequency, and it is exact when the
dataset is translation invariant. Cheaper alternatives: average-pool over space, or
treat every position as a datapoint. Layers of different spatial size are compared on
the frequencies both have.

Run: ``python examples/02_conv_layers.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import os

import numpy as np
from _common import parse

import svcca
from svcca.conv import compare, fourier_cca


def shifts(A: np.ndarray) -> np.ndarray:
    """Every cyclic spatial shift of every datapoint: a translation-invariant dataset."""
    h, w = A.shape[1:3]
    return np.concatenate([np.roll(A, (i, j), axis=(1, 2)) for i in range(h) for j in range(w)])


def conv(A: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cyclic 3x3 convolution (n, h, w, c_in) -> (n, h, w, c_out), then tanh."""
    out = np.zeros((*A.shape[:3], kernel.shape[-1]))
    for di in range(3):
        for dj in range(3):
            out += np.roll(A, (di - 1, dj - 1), axis=(1, 2)) @ kernel[di, dj]
    return np.tanh(out)


def main() -> None:
    args = parse(__doc__)
    rng = np.random.default_rng(0)
    n, h, c = (40, 6, 3) if args.quick else (200, 8, 4)
    images = shifts(rng.standard_normal((n, h, h, c)))  # n*h*h datapoints
    A = conv(images, rng.standard_normal((3, 3, c, 5)) / 3)
    B = conv(A, rng.standard_normal((3, 3, 5, 6)) / 3)
    print(f"Layers {A.shape[1:]} and {B.shape[1:]} on {len(A)} translation-invariant datapoints")

    dft = fourier_cca(A, B, layout="nhwc")
    flat = svcca.cca(A.reshape(len(A), -1), B.reshape(len(B), -1))
    print(f"  DFT-CCA mean rho {dft.score:.6f}; CCA of the flattened layers {flat.score:.6f}")
    top_d, top_f = np.sort(dft.correlations)[::-1][:5], flat.correlations[:5]
    print(
        f"  top correlations agree: {np.round(top_d, 6).tolist()} vs {np.round(top_f, 6).tolist()}"
    )
    assert np.allclose(np.sort(dft.correlations)[::-1], flat.correlations, atol=1e-6)

    for strategy in ("avgpool", "flatten"):
        r = compare(A, B, strategy=strategy, measure="cca", layout="nhwc")
        print(f"  strategy {strategy!r:10s}: mean rho {r.score:.3f}")

    small = B[:, ::2, ::2]  # a layer with half the spatial resolution
    r = fourier_cca(A, small, layout="nhwc")
    print(
        f"  {A.shape[1:3]} vs {small.shape[1:3]} maps: compared on shared frequencies, "
        f"mean rho {r.score:.3f}"
    )

    if args.out:
        import svcca.plot as sp

        rows, cols = np.argsort(dft.frequencies_h), np.argsort(dft.frequencies_w)  # -f..f
        fig = sp.heatmap(
            dft.frequency_scores[np.ix_(rows, cols)],
            row_labels=dft.frequencies_h[rows].tolist(),
            col_labels=dft.frequencies_w[cols].tolist(),
            title="DFT-CCA: mean canonical correlation at each spatial frequency",
            ylabel="vertical frequency",
            xlabel="horizontal frequency",
            cbar_label="mean rho",
        )
        written = sp.save(fig, os.path.join(args.out, "02_frequencies"))
        print("  wrote", ", ".join(os.path.basename(w) for w in written))


if __name__ == "__main__":
    main()
