"""The one accumulation algorithm of :class:`Moments`, run on a torch device.

:class:`TorchAccumulator` is :class:`svcca._moments._accumulator.Accumulator` with the
data left where they are (a GPU, or the CPU under ``svcca.on_device("cpu")``): each
chunk is shifted by the first chunk's float64 mean, its products are taken on the
device (float64, or float32 products of at most 4096 rows added into float64 sums;
never TF32) and added into float64 sums held there. Only :meth:`finish` copies anything
to the host: the ``(p + q)^2`` sums, once.

Device memory is planned when the accumulator is made: the sums plus a chunk must fit
in the free memory (:func:`svcca._device.plan_rows`), else
:class:`~svcca.DeviceMemoryError` says what was needed and how to need less. Batches
larger than the planned chunk are split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NoReturn

import numpy as np

from svcca._device import exact_products, format_bytes, plan_rows
from svcca._moments import _paths
from svcca._moments._chunks import FLOAT32_CHUNK_ROWS
from svcca._moments._moments import Moments
from svcca._moments._paths import split_batch
from svcca._moments._units import (
    Float32RangeError,
    Units,
    check_float32_top,
    raise_overflow,
    scale_for,
)
from svcca._validation import (
    Precision,
    check_chunk_size,
    check_precision,
    is_torch_tensor,
    nonfinite_error,
    precision_eps,
    tensor_representation,
)

__all__ = ["TorchAccumulator"]


class TorchAccumulator(Units):
    """Cross-product sums of ``(x, y)`` batches (torch tensors) on their device.

    Parameters
    ----------
    p, q : int
        Features of X and of Y (``q = 0``: X alone).
    device : torch.device
        Where the sums live and every batch must be.
    precision : {"float64", "float32"}
        float64 products, or float32 products of chunks of at most 4096 rows into
        float64 sums (``Moments`` Notes).
    names : (str, str)
        How messages name X and Y.
    held : int
        Bytes the caller already holds on ``device`` for the same call (other
        accumulators' :attr:`sums_bytes`), planned with these (``SVCCA_DEVICE_MEMORY``).
    """

    def __init__(
        self,
        p: int,
        q: int,
        device: Any,
        precision: Precision = "float64",
        names: tuple[str, str] = ("X", "Y"),
        held: int = 0,
    ) -> None:
        import torch

        self.torch = torch
        self.p, self.q, self.device = p, q, torch.device(device)
        self.precision: Precision = check_precision(precision)
        self.names = names
        self.failed: str | None = None  # the error that stopped the accumulation
        self._label = ""
        f32 = precision == "float32"
        self.work = torch.float32 if f32 else torch.float64
        size = 4 if f32 else 8
        blocks = p * p + q * q + p * q
        self.sums_bytes = 8 * (blocks + 2 * (p + q))  # what it holds between batches
        # float64 sums, float32 scratch products, and per row of a chunk its shifted
        # copies (and the float64 intermediate of a float64 input).
        self.rows = plan_rows(
            fixed=self.sums_bytes + (4 * blocks if f32 else 0),
            per_row=(size + 8) * (p + q),
            device=self.device,
            what=f"Moments of {p}{f' + {q}' if q else ''} features in {precision}",
            lower=(
                "Compare fewer or narrower layers per call (each pair's sums are "
                f"{format_bytes(8 * blocks)}), use precision='float32' for smaller "
                "chunks, or accumulate on the host: with svcca.on_device(None): ..."
            ),
            most=FLOAT32_CHUNK_ROWS if f32 else 1 << 16,
            least=min(256, FLOAT32_CHUNK_ROWS),
            held=held,
        )
        z: dict[str, Any] = {"dtype": torch.float64, "device": self.device}
        self.n = 0
        self.shift_x: Any = None
        self.shift_y: Any = None
        # Each side's power-of-two scale (Moments.scale_x), decided as on the host by
        # the first chunk with any spread: one synchronisation, once.
        self.scale_x: float | None = None
        self.scale_y: float | None = None
        self.sum_x = torch.zeros(p, **z)
        self.sum_y = torch.zeros(q, **z)
        self.sxx = torch.zeros((p, p), **z)
        self.syy = torch.zeros((q, q), **z)
        self.sxy = torch.zeros((p, q), **z)

    def add(self, xb: Any, yb: Any = None, *, label: str = "") -> None:
        """Add a batch: ``xb`` (rows, p) and ``yb`` (rows, q) tensors on :attr:`device`.

        ``label`` ends messages (``" (layer pair ('a', 'b'), batch 3)"``).
        """
        self.verify(self.queue(xb, yb, label=label))

    def queue(self, xb: Any, yb: Any = None, *, label: str = "") -> list[tuple]:
        """:meth:`add` without its finiteness check: the products are queued on the
        device and the checks returned, for :meth:`verify` once every accumulator of a
        batch is queued (one synchronisation per batch, however many accumulators)."""
        for t, name in ((xb, self.names[0]), (yb, self.names[1])):
            if t is not None and t.device != self.device:
                raise ValueError(
                    f"{name} is on {t.device}, but these moments accumulate on {self.device}"
                    f"{label}; move the model (or the tensors) to one device, or name it "
                    "with svcca.on_device(...)."
                )
        self._refuse_if_failed()
        self._label = label  # how messages end (the rows are numbered in the data)
        checks = []
        try:
            with self.torch.no_grad(), exact_products(self.device):
                for start in range(0, xb.shape[0], self.rows):
                    stop = min(start + self.rows, xb.shape[0])
                    xc = xb[start:stop].detach()
                    yc = None if yb is None else yb[start:stop].detach()
                    first = self.n
                    where = f" in rows {first}:{first + stop - start}{label}"
                    checks.append((self._chunk(xc, yc, where), xc, yc, where, first))
        except Exception as exc:
            self.failed = str(exc)
            raise
        return checks

    def verify(self, checks: list[tuple]) -> None:
        """Raise for the first chunk of :meth:`queue`'s ``checks`` with NaN or inf.

        One synchronisation, after the products are queued: the device never waits for
        the host between chunks. A chunk with NaN or inf has then been added too, but the
        error ends the accumulation.
        """
        if not checks:
            return
        flags = self.torch.stack([c[0] for c in checks])  # (chunks, 2): X's, Y's sums
        if not bool(flags.all()):
            k, side = (int(i) for i in self.torch.nonzero(~flags)[0])
            _, xc, yc, where, first = checks[k]
            try:
                self._raise_bad(yc if side else xc, self.names[side], where, first)
            except Exception as exc:
                self.failed = str(exc)
                raise

    def _refuse_if_failed(self) -> None:
        """An accumulation an error stopped holds part of a batch (NaN, inf, or a chunk's
        shift without its products): it is never added to or read again."""
        if self.failed is not None:
            raise RuntimeError(
                f"These moments were stopped by an earlier error and hold part of that "
                f"batch: {self.failed} Start a new accumulation once the data are fixed."
            )

    def _shifted(self, a: Any, shift: Any, inv: float = 1.0) -> Any:
        """``(a - shift) * inv`` in the working dtype: shifted (and divided by the side's
        power-of-two unit, exactly) in float64 before a cast to float32."""
        torch = self.torch
        if self.work == torch.float32 and a.dtype in (torch.float32, torch.float16, torch.bfloat16):
            # exact in float32 (shift is float32-representable): rounded once, by the minus
            out = a.to(torch.float32) - shift.to(torch.float32)
            return out if inv == 1.0 else out.mul_(inv)
        out = a.to(torch.float64) - shift
        return (out if inv == 1.0 else out.mul_(inv)).to(self.work)

    def _first_scale(self, a: Any, shift: Any, name: str) -> float | None:
        """The unit from the first chunk as given (before a cast to float32 could flush
        it to zero): one synchronisation, once."""
        torch = self.torch
        top = float((a.to(torch.float64) - shift).abs().max()) if a.numel() else 0.0
        if not np.isfinite(top) or top == 0.0:
            return None  # NaN/inf: reported by verify; no spread yet: decided later
        if self.work == torch.float32 and a.dtype != torch.float64:
            check_float32_top(top, name)  # float32 (or narrower) data at 1e-35 lost digits
        return scale_for(top, self.precision)

    def _first_shift(self, a: Any, name: str, where: str) -> Any:
        torch = self.torch
        shift = a.to(torch.float64).mean(dim=0)
        if not bool(torch.isfinite(shift).all()) and bool(torch.isfinite(a).all()):
            # finite values whose column sums overflowed (near 1e300 over many rows)
            top = float(a.to(torch.float64).abs().max())
            unit = math.ldexp(1.0, math.frexp(top)[1] - 1)  # top / unit in [1, 2)
            shift = (a.to(torch.float64) / unit).mean(dim=0) * unit
        if not bool(torch.isfinite(shift).all()):
            self._raise_bad(a, name, where, self.n)
        if self.work == torch.float32 and a.dtype != torch.float64:
            shift = shift.to(torch.float32).to(torch.float64)  # what _shifted subtracts
        return shift

    def _chunk(self, xc: Any, yc: Any, where: str) -> Any:
        """Add one chunk; returns the (device) flags that X's and Y's column sums are
        finite."""
        torch = self.torch
        nx, ny = self.names
        if self.shift_x is None:
            self.shift_x = self._first_shift(xc, nx, where)
            self.scale_x = self._first_scale(xc, self.shift_x, f"{nx}{where}")
            if yc is not None:
                self.shift_y = self._first_shift(yc, ny, where)
                self.scale_y = self._first_scale(yc, self.shift_y, f"{ny}{where}")
        xs = self._shifted(xc, self.shift_x, self.inv_x)
        ys = None if yc is None else self._shifted(yc, self.shift_y, self.inv_y)
        if self.scale_x is None:
            self.scale_x = self._scale(xs, f"{nx}{where}")
        if ys is not None and self.scale_y is None:
            self.scale_y = self._scale(ys, f"{ny}{where}")
        sx = xs.sum(dim=0, dtype=torch.float64)
        sy = None if ys is None else ys.sum(dim=0, dtype=torch.float64)
        ok = torch.ones((), dtype=torch.bool, device=self.device)
        finite = torch.stack(
            [torch.isfinite(sx).all(), torch.isfinite(sy).all() if sy is not None else ok]
        )
        self._product(self.sxx, xs, xs)
        self.sum_x += sx
        if ys is not None:
            assert sy is not None
            self._product(self.syy, ys, ys)
            self._product(self.sxy, xs, ys)
            self.sum_y += sy
        self.n += xs.shape[0]
        return finite

    def _scale(self, a: Any, name: str) -> float | None:
        """Decide an undecided side's unit from a shifted chunk ``a`` (the first chunk had
        no spread; later overflow shows in the sums' finiteness at finish); divide ``a``."""
        top = float(a.abs().max()) if a.numel() else 0.0
        if not np.isfinite(top) or top == 0.0:
            return None  # NaN/inf: reported by verify; still no spread: decided later
        if self.work == self.torch.float32:
            check_float32_top(top, name)
        scale = scale_for(top, self.precision)
        if scale != 1.0:
            a.mul_(1.0 / scale)  # a fresh shifted copy: exact, in place
        return scale

    def _raise_bad(self, a: Any, name: str, where: str, first: int) -> NoReturn:
        """A chunk ``a`` (as given) made a non-finite sum: name its rows, or the range."""
        torch = self.torch
        rows = torch.nonzero(~torch.isfinite(a).reshape(a.shape[0], -1).all(dim=1))
        if rows.numel() == 0 and self.work == torch.float32:
            # finite values that float32 cannot hold (a float64 input beyond ~3e38)
            raise Float32RangeError(
                f"{name} has values beyond float32's range{where}. Use precision='float64', "
                "or rescale the activations."
            )
        if rows.numel() == 0:
            raise ValueError(
                f"{name}'s sums overflowed float64{where} (values near 1e308). Rescale the "
                "activations."
            )
        raise nonfinite_error(
            name,
            (rows.flatten()[:5] + first).tolist(),
            within=(first, first + a.shape[0]),
            where=self._label,
        )

    def _product(self, S: Any, a: Any, b: Any) -> None:
        """``S += a^T b`` (float64 ``S``; float32 ``a``, ``b`` multiply in float32)."""
        if a.dtype == self.torch.float64:
            S.addmm_(a.mT, b)
        else:
            S += a.mT @ b

    def finish(self) -> Moments:
        """The :class:`Moments` of everything added, copied to the host once."""
        self._refuse_if_failed()
        torch = self.torch
        device = str(self.device)
        if self.n == 0 or self.shift_x is None:
            return Moments.empty(self.p, self.q, precision=self.precision)
        for name, S in ((self.names[0], self.sxx), (self.names[1], self.syy)):
            if not bool(torch.isfinite(S).all()):
                raise_overflow(name, self.precision)
        sx, sy = self.scale_x or 1.0, self.scale_y or 1.0
        n = float(self.n)

        def host(t: Any) -> np.ndarray:
            return np.asarray(t.cpu().numpy(), dtype=np.float64)

        def gram(S: Any, d: Any) -> Any:
            S = S - n * torch.outer(d, d)
            return 0.5 * (S + S.mT)  # a GEMM's a^T a is symmetric only to round-off

        dx = self.sum_x / n  # in the sums' units
        mean_x = host(self.shift_x + dx * sx)
        sxx = host(gram(self.sxx, dx))
        if self.q == 0:
            return Moments(
                self.n,
                mean_x,
                np.zeros(0),
                sxx,
                np.zeros((0, 0)),
                np.zeros((self.p, 0)),
                precision=self.precision,
                device=device,
                scale_x=sx,
            )
        dy = self.sum_y / n
        return Moments(
            self.n,
            mean_x,
            host(self.shift_y + dy * sy),
            sxx,
            host(gram(self.syy, dy)),
            host(self.sxy - n * torch.outer(dx, dy)),
            precision=self.precision,
            device=device,
            scale_x=sx,
            scale_y=sy,
        )

    @property
    def eps(self) -> float:
        return precision_eps(self.precision)


def moments_of_tensor_batches(batches: Iterable[Any], precision: Precision, device: Any) -> Moments:
    """:meth:`Moments.from_batches` of tensor batches on ``device`` (decided from the first
    batch by :func:`svcca._device.data_device`), by the device accumulator.

    A batch is split by ``Moments.from_batches``'s own rule (a 2-tuple is ``(x, y)``).
    """
    acc: Any = None
    for i, batch in enumerate(batches):
        xb, yb = split_batch(batch)
        for t, name in ((xb, "X"), (yb, "Y")):
            if t is not None and not is_torch_tensor(t):
                raise TypeError(
                    f"{name} of batch {i} must be a torch tensor, as batch 0 was (on "
                    f"{acc.device if acc is not None else 'a device'}); got "
                    f"{type(t).__name__}. Give every batch as tensors "
                    "(torch.as_tensor(a, device=...)), or every batch as arrays."
                )
            if t is not None:  # as the host path checks its arrays
                tensor_representation(t, f"{name} of batch {i}")
        if yb is not None and yb.shape[0] != xb.shape[0]:
            raise ValueError(
                f"Batch {i} has {xb.shape[0]} rows of X but {yb.shape[0]} of Y; both must "
                "hold the same datapoints."
            )
        q = 0 if yb is None else yb.shape[1]
        if acc is None:
            acc = TorchAccumulator(xb.shape[1], q, device, precision)
        elif (xb.shape[1], q) != (acc.p, acc.q):
            raise ValueError(
                f"Batch {i} has {xb.shape[1]} features of X and {q} of Y, but batch 0 had "
                f"{acc.p} and {acc.q}; every batch of a representation must have the same "
                "width."
            )
        acc.add(xb, yb, label=f" (batch {i})")
    return acc.finish()


def moments_of_tensor_pair(
    X: Any, Y: Any, device: Any, chunk_size: int | None, precision: Precision
) -> Moments:
    """The Moments of two whole tensors (checked by the caller) on ``device``, in the
    accumulator's planned chunks of at most ``chunk_size`` rows (``Y`` may be None).

    Read, never differentiated through; any dtype (bfloat16 included) is cast chunk by
    chunk on the device.
    """
    acc = TorchAccumulator(X.shape[1], 0 if Y is None else Y.shape[1], device, precision)
    most = check_chunk_size(chunk_size)
    if most is not None:
        acc.rows = max(1, min(acc.rows, most))
    acc.add(X.detach(), None if Y is None else Y.detach())
    return acc.finish()


_paths.tensor_batches = moments_of_tensor_batches
_paths.tensor_pair = moments_of_tensor_pair
