"""Minibatch CKA (Nguyen et al. 2021): unbiased HSIC averaged over batches, mergeable."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from svcca._device import data_device
from svcca._measures._cka import CKAResult, plan_grams
from svcca._measures._gram import (
    center_gram_inplace,
    centred64,
    check_finite,
    in_data_units,
    namespace,
    unit_of,
)
from svcca._validation import as_representation, tensor_representation

__all__ = ["MinibatchCKA"]


def _layer_list(obj: Any, name: str) -> tuple[list[Any], list[str]]:
    """One batch's layers as a list, and how messages name each."""
    if isinstance(obj, (list, tuple)):
        if len(obj) == 0:
            raise ValueError(f"{name} is an empty sequence; pass at least one layer's batch.")
        return list(obj), [f"{name}[{i}]" for i in range(len(obj))]
    return [obj], [name]


def _centred_grams(layers: Sequence[Any]) -> Any:
    """Unbiased-centred linear Gram matrices of each layer, flattened: ``(L, b*b)``.

    NumPy arrays give a NumPy array; tensors a float64 tensor on their device.
    """
    b = layers[0].shape[0]
    xp = namespace(layers[0])
    if xp is np:
        out = np.empty((len(layers), b * b))
    else:
        out = xp.empty((len(layers), b * b), dtype=xp.float64, device=layers[0].device)
    for i, A in enumerate(layers):
        Ac = centred64(A)
        out[i] = center_gram_inplace(Ac @ Ac.T, True).reshape(-1)
    return out


def _units_for(layers: list[Any], units: list[float | None]) -> list[float]:
    """Each layer's unit after this batch: the larger of its unit so far and the one this
    batch's magnitude asks for (:func:`unit_scaled`'s power of two)."""
    return [
        unit_of(A) if unit is None else max(unit, unit_of(A))
        for A, unit in zip(layers, units, strict=True)
    ]


def _divided(layers: list[Any], units: list[float]) -> list[Any]:
    """Each layer divided by its unit (exact: powers of two)."""
    return [A if u == 1.0 else A * (1.0 / u) for A, u in zip(layers, units, strict=True)]


def _host(a: Any) -> np.ndarray:
    """A small result (``L_x x L_y`` HSICs) as a float64 NumPy array."""
    return a if isinstance(a, np.ndarray) else a.cpu().numpy()


class MinibatchCKA:
    """Accumulate linear CKA over minibatches: constant memory, many layers, mergeable.

    Each batch of ``b`` datapoints contributes the unbiased HSIC (Song et al. 2012) of
    every pair of layers; CKA is the ratio of the batch averages,

    .. math:: \\mathrm{CKA}_{mb} = \\frac{\\frac1k\\sum_i \\mathrm{HSIC}_1(X_i, Y_i)}
       {\\sqrt{\\frac1k\\sum_i \\mathrm{HSIC}_1(X_i, X_i)\\;
       \\frac1k\\sum_i \\mathrm{HSIC}_1(Y_i, Y_i)}}.

    Because each batch term is unbiased, the estimate does not depend on the batch size
    the way biased CKA would (Nguyen et al. 2021): it estimates the same quantity as
    full-data debiased CKA (:func:`~svcca.cka` with ``debiased=True``), equals it exactly
    when one batch holds all the data, and approaches it as batches accumulate. Batches
    are weighted equally, as in the paper.

    ``X`` and ``Y`` passed to :meth:`update` may each be one array or a list of arrays
    (layers, all holding the same ``b`` datapoints); :meth:`scores` then gives the whole
    ``(len(X), len(Y))`` matrix of CKA values. Passing the same list object as ``X`` and
    ``Y`` compares every layer with every other and computes each Gram matrix once.

    Only the linear kernel is offered: an RBF width set per batch by the median heuristic
    would change from batch to batch.

    References
    ----------
    .. [1] T. Nguyen, M. Raghu, S. Kornblith, "Do Wide and Deep Networks Learn the Same
       Things? Uncovering How Neural Network Representations Vary with Width and Depth",
       ICLR 2021, arXiv:2010.15327.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2048, 16))
    >>> Y = X @ rng.standard_normal((16, 8)) + rng.standard_normal((2048, 8))
    >>> acc = svcca.MinibatchCKA()
    >>> for s in range(0, 2048, 256):
    ...     _ = acc.update(X[s:s + 256], Y[s:s + 256])
    >>> abs(acc.result().score - svcca.cka(X, Y, debiased=True).score) < 0.05
    True
    """

    __slots__ = ("n_batches", "n_samples", "sum_xy", "sum_xx", "sum_yy", "widths", "units")

    def __init__(self) -> None:
        self.n_batches = 0
        self.n_samples = 0
        self.sum_xy: np.ndarray | None = None
        self.sum_xx: np.ndarray | None = None
        self.sum_yy: np.ndarray | None = None
        self.widths: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        # Each layer's power-of-two unit (as Moments.scale_x), decided by its first batch
        # with a non-zero value: the HSICs are summed in those units, so layers of any
        # magnitude neither overflow nor underflow (CKA, a ratio, does not depend on them).
        self.units: tuple[list[float | None], list[float | None]] | None = None

    @classmethod
    def from_batches(cls, batches: Iterable[tuple[Any, Any]]) -> MinibatchCKA:
        """Accumulate over an iterable of ``(X, Y)`` batches."""
        acc = cls()
        for i, batch in enumerate(batches):
            if not (isinstance(batch, tuple) and len(batch) == 2):
                raise TypeError(
                    f"from_batches expects (X, Y) pairs; batch {i} is a {type(batch).__name__}."
                )
            acc.update(*batch)
        return acc

    @property
    def shape(self) -> tuple[int, int]:
        """``(number of X layers, number of Y layers)``; ``(0, 0)`` before any update."""
        if self.sum_xy is None:
            return (0, 0)
        return (int(self.sum_xy.shape[0]), int(self.sum_xy.shape[1]))

    def update(self, X: Any, Y: Any) -> MinibatchCKA:
        """Add one batch (in place) and return ``self``.

        Parameters
        ----------
        X : array_like, shape (b, p), or list of such arrays
        Y : array_like, shape (b, q), or list of such arrays
            The same ``b >= 4`` datapoints in every array. Torch tensors on a GPU (or
            any tensors inside ``svcca.on_device(...)``) are kept there: the centred
            ``b x b`` Gram matrices and the HSIC matrix are computed on the device in
            float64 (their memory planned first) and only the ``len(X) x len(Y)`` HSICs
            are added into the float64 NumPy sums. CPU tensors outside such a block take
            the NumPy path.
        """
        same = Y is X
        raw_x, names_x = _layer_list(X, "X")
        raw_y, names_y = (raw_x, names_x) if same else _layer_list(Y, "Y")
        dev = data_device(raw_x + ([] if same else raw_y), names_x + ([] if same else names_y))
        convert = as_representation if dev is None else tensor_representation
        xs: list[Any] = [convert(a, nm) for a, nm in zip(raw_x, names_x, strict=True)]
        ys: list[Any] = (
            xs if same else [convert(a, nm) for a, nm in zip(raw_y, names_y, strict=True)]
        )
        b = xs[0].shape[0]
        for name, layers, names in (("X", xs, names_x), ("Y", ys, names_y)):
            for i, A in enumerate(layers):
                if A.shape[0] != b:
                    raise ValueError(
                        f"Every layer of a batch must hold the same datapoints: X has {b} rows "
                        f"but {name}[{i}] has {A.shape[0]}."
                    )
                check_finite(A, names[i] if len(layers) > 1 else name)
        if b < 4:
            raise ValueError(
                f"A minibatch needs at least 4 datapoints for the unbiased HSIC; this one has "
                f"{b}. Use larger batches (Nguyen et al. use 256)."
            )
        if self.sum_xy is not None and (len(xs), len(ys)) != self.shape:
            raise ValueError(
                f"This accumulator tracks {self.shape[0]} X and {self.shape[1]} Y layers; the "
                f"batch has {len(xs)} and {len(ys)}. Pass the same layers in every batch."
            )
        widths = (tuple(A.shape[1] for A in xs), tuple(A.shape[1] for A in ys))
        if self.widths is not None and widths != self.widths:
            raise ValueError(
                f"Layer widths changed between batches: first {self.widths}, now {widths}. "
                "Every batch must hold the same layers in the same order."
            )
        if dev is not None:  # the b x b Grams of every layer at once, and one being made
            held = len(xs) + (0 if same else len(ys))
            plan_grams(
                b,
                max(A.shape[1] for A in xs + ys),
                dev,
                count=held + 1,
                what=f"Minibatch CKA of {held} layers over batches of {b} ({held + 1} "
                f"{b} x {b} float64 Gram matrices)",
                lower="Use smaller batches, fewer layers per update (one accumulator per "
                "group of layers; each batch's Grams are held at once), or compute on the "
                "host: with svcca.on_device(None): ...",
            )
        if self.units is None:
            self.units = ([None] * len(xs), [None] * len(ys))
        # Each layer's unit is its largest batch's so far: a batch that needs a larger
        # one rescales the sums already made (exactly, by powers of two) before it adds.
        new_x = _units_for(xs, self.units[0])
        new_y = new_x if same else _units_for(ys, self.units[1])
        if self.sum_xy is not None:
            self.sum_xy, self.sum_xx, self.sum_yy = self._sums_in(new_x, new_y)
        self.units = (list(new_x), list(new_x) if same else list(new_y))
        xs = _divided(xs, new_x)
        ys = xs if same else _divided(ys, new_y)
        Gx = _centred_grams(xs)
        Gy = Gx if same else _centred_grams(ys)
        xp = namespace(Gx)
        scale = 1.0 / (b * (b - 3))
        # only these (L_x x L_y) and (L,) HSICs leave a tensor's device
        xy = _host((Gx @ Gy.T) * scale)
        xx = _host(xp.einsum("ij,ij->i", Gx, Gx) * scale)
        yy = xx if same else _host(xp.einsum("ij,ij->i", Gy, Gy) * scale)
        del Gx, Gy
        if self.sum_xy is None:
            self.sum_xy, self.sum_xx, self.sum_yy = xy, xx, np.array(yy)
            self.widths = widths
        else:
            self.sum_xy += xy
            self.sum_xx += xx  # type: ignore[operator]
            self.sum_yy += yy  # type: ignore[operator]
        self.n_batches += 1
        self.n_samples += b
        return self

    def merge(self, other: MinibatchCKA) -> MinibatchCKA:
        """A new accumulator holding the batches of both (neither is changed)."""
        if not isinstance(other, MinibatchCKA):
            raise TypeError(f"merge expects a MinibatchCKA; got {type(other).__name__}.")
        out = MinibatchCKA()
        if self.sum_xy is None or other.sum_xy is None:
            src = other if self.sum_xy is None else self
            if src.sum_xy is not None:
                out.sum_xy = src.sum_xy.copy()
                out.sum_xx = src.sum_xx.copy()  # type: ignore[union-attr]
                out.sum_yy = src.sum_yy.copy()  # type: ignore[union-attr]
            out.n_batches, out.n_samples = src.n_batches, src.n_samples
            out.widths = src.widths
            out.units = None if src.units is None else (list(src.units[0]), list(src.units[1]))
            return out
        if self.widths != other.widths:
            raise ValueError(
                f"Cannot merge accumulators over layers of widths {self.widths} and "
                f"{other.widths}: they must track the same layers."
            )
        out.widths = self.widths
        # Both in each layer's larger unit (rescaled exactly, by powers of two).
        assert self.units is not None and other.units is not None
        ux = [max(a or 1.0, b or 1.0) for a, b in zip(self.units[0], other.units[0], strict=True)]
        uy = [max(a or 1.0, b or 1.0) for a, b in zip(self.units[1], other.units[1], strict=True)]
        a, b = self._sums_in(ux, uy), other._sums_in(ux, uy)
        out.units = (list(ux), list(uy))
        out.sum_xy, out.sum_xx, out.sum_yy = a[0] + b[0], a[1] + b[1], a[2] + b[2]
        out.n_batches = self.n_batches + other.n_batches
        out.n_samples = self.n_samples + other.n_samples
        return out

    def _sums_in(
        self, ux: list[float], uy: list[float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sums expressed in the (larger) units ``ux``, ``uy``: HSIC(X_i, Y_j) is in
        units of ``(u_i v_j)^2``, HSIC(X_i, X_i) of ``u_i^4``."""
        assert self.units is not None and self.sum_xy is not None
        fx = np.array([(u or 1.0) / w for u, w in zip(self.units[0], ux, strict=True)])
        fy = np.array([(u or 1.0) / w for u, w in zip(self.units[1], uy, strict=True)])
        with np.errstate(under="ignore"):  # what underflows is below the sums' round-off
            return (
                self.sum_xy * np.outer(fx * fx, fy * fy),
                self.sum_xx * fx**4,  # type: ignore[operator]
                self.sum_yy * fy**4,  # type: ignore[operator]
            )

    def _check_ready(self) -> None:
        if self.sum_xy is None:
            raise ValueError("No batches yet: call update(X, Y) at least once before scoring.")

    def scores(self) -> np.ndarray:
        """CKA for every (X layer, Y layer) pair, shape ``(len(X), len(Y))``."""
        self._check_ready()
        assert self.sum_xy is not None and self.sum_xx is not None and self.sum_yy is not None
        den = np.sqrt(np.clip(np.outer(self.sum_xx, self.sum_yy), 0.0, None))
        out = np.zeros_like(self.sum_xy)
        np.divide(self.sum_xy, den, out=out, where=den > 0)
        return out

    def result(self, i: int = 0, j: int = 0) -> CKAResult:
        """The :class:`~svcca.CKAResult` of X layer ``i`` against Y layer ``j``."""
        self._check_ready()
        lx, ly = self.shape
        if not (0 <= i < lx and 0 <= j < ly):
            raise IndexError(f"Layer pair ({i}, {j}) is out of range for {lx} x {ly} layers.")
        k = self.n_batches
        xy = float(self.sum_xy[i, j]) / k  # type: ignore[index]
        xx = float(self.sum_xx[i]) / k  # type: ignore[index]
        yy = float(self.sum_yy[j]) / k  # type: ignore[index]
        score = float(self.scores()[i, j])
        assert self.units is not None
        xy, xx, yy = in_data_units(xy, xx, yy, self.units[0][i] or 1.0, self.units[1][j] or 1.0)
        return CKAResult(
            score,
            xy,
            xx,
            yy,
            "linear",
            True,
            None,
            None,
            None,
            "minibatch",
            self.n_samples,
            (self.widths[0][i], self.widths[1][j]),  # type: ignore[index]
        )

    def __repr__(self) -> str:
        lx, ly = self.shape
        return f"MinibatchCKA(layers={lx}x{ly}, batches={self.n_batches}, samples={self.n_samples})"
