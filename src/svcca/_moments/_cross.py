"""Many layers at once: each layer's :class:`Moments` and the cross blocks of row layers
against column layers, by the one accumulation algorithm of each backend.

``svcca.torch.compare`` keeps no activation: per batch it adds every captured layer to
its own accumulator (:class:`~svcca._moments.Accumulator` on the host,
:class:`~svcca._moments.TorchAccumulator` on a device: shifted by the first chunk's
float64 mean, in the layer's power-of-two unit, float64 sums) and the same shifted rows,
side by side, into the cross sums ``C = sum (a - c_a)(b - c_b)^T`` of the row layers
against the column layers (``sum(p_a) x sum(q_b)``, never a Gram matrix of all layers
side by side). :meth:`finish` removes the shifts once, ``C - n d_a d_b^T`` with
``d = mean - c``: the "shifted data" algorithm of every other path, so the cross blocks
and the per-layer blocks agree to round-off with ``Moments.from_arrays`` of the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from svcca._device import exact_products, format_bytes, plan_rows
from svcca._moments._accumulator import Accumulator, add_products, from_upper
from svcca._moments._chunks import FLOAT32_CHUNK_ROWS, chunk_rows
from svcca._moments._moments import Moments
from svcca._moments._torch_moments import TorchAccumulator
from svcca._threads import products
from svcca._validation import Precision, precision_dtype

__all__ = ["CrossMoments", "cross_moments"]


def cross_moments(
    row_keys: list[str],
    col_keys: list[str],
    labels: Mapping[str, str],
    precision: Precision,
    arrays: Mapping[str, Any],
) -> CrossMoments:
    """The accumulator for batches like ``arrays`` (the first batch): on the host for
    NumPy arrays, on their device for tensors (the capture delivers tensors only where
    its work runs on a device: :func:`svcca._device.chosen` decided that)."""
    first = next(iter(arrays.values()))
    device = None if isinstance(first, np.ndarray) else first.device
    widths = {k: int(arrays[k].shape[1]) for k in dict.fromkeys([*row_keys, *col_keys])}
    return CrossMoments(row_keys, col_keys, labels, precision, widths, device)


class CrossMoments:
    """Per-layer moments plus the rows x cols cross blocks, accumulated batch by batch.

    Parameters
    ----------
    row_keys, col_keys : list of str
        The layers of the rows and of the columns (the same list: a square matrix).
    labels : mapping
        How messages name each layer (``"'fc1' of model_a"``).
    precision : {"float64", "float32"}
        As in :class:`Moments`: float32 products of chunks of at most 4096 rows, added
        into float64 sums.
    widths : mapping
        Each layer's features.
    device : torch.device or None
        Where the sums live: None for the host (NumPy batches), else the device of the
        batches' tensors.

    After :meth:`finish`, :attr:`moms` holds each layer's :class:`Moments` and
    :attr:`cross` the centred cross blocks (float64, in the layers' units).
    """

    def __init__(
        self,
        row_keys: list[str],
        col_keys: list[str],
        labels: Mapping[str, str],
        precision: Precision,
        widths: Mapping[str, int],
        device: Any = None,
    ) -> None:
        self.row_keys, self.col_keys, self.labels = row_keys, col_keys, labels
        self.precision: Precision = precision
        self.keys = list(dict.fromkeys([*row_keys, *col_keys]))
        self.square = col_keys == row_keys
        self.device = device
        self.moms: dict[str, Moments] = {}
        self.cross: np.ndarray | None = None
        self.n = 0
        wa = sum(widths[k] for k in row_keys)
        wb = sum(widths[k] for k in col_keys)
        self.widths = dict(widths)
        self.accs: dict[str, Any]
        if device is None:
            self.rows = chunk_rows(sum(widths.values()), None, precision)
            self.accs = {
                k: Accumulator(widths[k], 0, precision, (f"Layer {labels[k]}", ""))
                for k in self.keys
            }
            self.sums: Any = np.zeros((wa, wb), order="F")
            self._scratch: dict[str, np.ndarray] = {}
            self._panels: dict[str, np.ndarray] = {}
            self._done: dict[str, np.ndarray] = {}  # this chunk's row layers, as added
            return
        import torch

        self.torch = torch
        self.work = torch.float32 if precision == "float32" else torch.float64
        size = 4 if precision == "float32" else 8
        self.rows = plan_rows(
            # float64 sums, plus a float32 product block in float32
            fixed=(12 if precision == "float32" else 8) * wa * wb
            + sum(12 * p * p for p in widths.values()),
            per_row=2 * size * (wa + wb),
            device=device,
            what=(
                f"compare's cross blocks ({wa} x {wb} features) and per-layer sums of "
                f"{len(self.keys)} layers in {precision}"
            ),
            lower=(
                f"The cross blocks alone take {format_bytes(8 * wa * wb)}: compare fewer or "
                "narrower layers per call (layers_a / layers_b, or conv='mean' for conv maps), "
                "or run on the host: with svcca.on_device(None): ..."
            ),
            most=FLOAT32_CHUNK_ROWS if precision == "float32" else 1 << 16,
            least=min(256, FLOAT32_CHUNK_ROWS),
        )
        self.accs = {
            k: TorchAccumulator(widths[k], 0, device, precision, (f"Layer {labels[k]}", ""))
            for k in self.keys
        }
        self.sums = torch.zeros((wa, wb), dtype=torch.float64, device=device)

    # ------------------------------------------------------------------ batches
    def add(self, i: int, arrays: Mapping[str, Any]) -> None:
        """Add batch ``i`` (``arrays[k]``: layer ``k``'s rows, NumPy or on the device).

        NaN or inf in a layer, or values float32 cannot hold, raise the errors of the
        backend's accumulator, naming the layer, the batch and the rows.
        """
        if self.device is None:
            self._add_host(i, arrays)
        else:
            self._add_device(i, arrays)

    def _add_host(self, i: int, arrays: Mapping[str, Any]) -> None:
        b = next(iter(arrays.values())).shape[0]
        wa, wb = self.sums.shape
        with products(min(b, self.rows) * wa * wb):
            for s in range(0, b, self.rows):
                e = min(s + self.rows, b)
                A = self._panel("A", self.row_keys, arrays, i, s, e)
                B = A if self.square else self._panel("B", self.col_keys, arrays, i, s, e)
                self.sums = add_products(self.sums, A, B, self._scratch, upper=self.square)
        self.n += b

    def _panel(
        self, key: str, keys: list[str], arrays: Mapping[str, Any], i: int, s: int, e: int
    ) -> np.ndarray:
        """Rows ``s:e`` of layers ``keys`` side by side, as their accumulators added them
        (shifted, in their units, of the working dtype); a layer in both the rows and the
        columns is added to its accumulator once."""
        width = sum(self.widths[k] for k in keys)
        buf = self._panels.get(key)
        if buf is None or buf.shape[0] < e - s or buf.shape[1] != width:
            dtype = precision_dtype(self.precision)
            buf = self._panels[key] = np.empty((e - s, width), dtype=dtype)
        out = buf[: e - s]
        off = 0
        done = self._done if key == "B" else {}
        for k in keys:
            p = self.widths[k]
            if k in done:
                out[:, off : off + p] = done[k]
            else:
                part = self._added(k, arrays[k], i, s, e)
                out[:, off : off + p] = part
                done[k] = out[:, off : off + p]
            off += p
        if key == "A":
            self._done = done
        return out

    def _added(self, k: str, batch: Any, i: int, start: int, stop: int) -> np.ndarray:
        """Add rows ``start:stop`` of layer ``k``'s batch ``i`` to its accumulator; the
        shifted rows it added (messages name the span only when the batch was split)."""
        whole = start == 0 and stop == batch.shape[0]
        xw, _ = self.accs[k].add_rows(
            batch[start:stop],
            start=start,
            stop=None if whole else stop,
            where=f" (batch {i})",
        )
        return xw

    def _add_device(self, i: int, arrays: Mapping[str, Any]) -> None:
        label = f" (batch {i})"
        checks = {k: self.accs[k].queue(arrays[k], label=label) for k in self.keys}
        b = arrays[self.keys[0]].shape[0]
        torch = self.torch
        with torch.no_grad(), exact_products(self.device):
            for s in range(0, b, self.rows):
                A = self._device_panel(self.row_keys, arrays, s)
                B = A if self.square else self._device_panel(self.col_keys, arrays, s)
                if self.work == torch.float64:
                    self.sums.addmm_(A.mT, B)
                else:
                    self.sums += A.mT @ B
        for k, c in checks.items():  # one synchronisation for the whole batch
            self.accs[k].verify(c)
        self.n += b

    def _device_panel(self, keys: list[str], arrays: Mapping[str, Any], s: int) -> Any:
        """Rows ``s:s + rows`` of the layers ``keys`` side by side, shifted as their sums are."""
        parts = []
        for k in keys:
            acc = self.accs[k]
            parts.append(acc._shifted(arrays[k][s : s + self.rows], acc.shift_x, acc.inv_x))
        return self.torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ the end
    def finish(self) -> None:
        """Remove the shifts once: :attr:`moms` and :attr:`cross` on the host."""
        n = float(self.n)
        if self.device is None:
            d = {k: self.accs[k].sum_x / n for k in self.keys}
            da = np.concatenate([d[k] for k in self.row_keys])
            db = np.concatenate([d[k] for k in self.col_keys])
            C = from_upper(self.sums) if self.square else self.sums
            C -= n * np.outer(da, db)
            self.cross = np.ascontiguousarray(C)
        else:
            torch = self.torch
            dt = {k: self.accs[k].sum_x / n for k in self.keys}
            ta = torch.cat([dt[k] for k in self.row_keys])
            tb = torch.cat([dt[k] for k in self.col_keys])
            self.cross = np.asarray((self.sums - n * torch.outer(ta, tb)).cpu().numpy())
        self.moms = {k: acc.finish() for k, acc in self.accs.items()}
