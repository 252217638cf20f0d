"""The two passes of ``pairwise`` on a torch device: the tensors' chunks never leave it."""

from __future__ import annotations

from typing import Any

import numpy as np

from svcca._engines._cell_tests import CellTests
from svcca._engines._combine import Rep, prepare_all, scores
from svcca._engines._passes import centred_cross
from svcca._engines._plan import Plan
from svcca._measures import Variance
from svcca._moments import FLOAT32_CHUNK_ROWS
from svcca._progress import Progress as _Progress  # the one progress contract
from svcca._sources import Source
from svcca._threads import dense_steps
from svcca._validation import Precision, check_chunk_size

__all__ = ["tensor_device", "two_passes_device"]


def tensor_device(srcs: list[Source]) -> Any:
    """The device both passes run on: torch tensors all on one device whose work runs
    there (a GPU, or any inside ``svcca.on_device``); None for the host passes."""
    from svcca._device import data_device

    return data_device([s.obj for s in srcs], [f"Representation {s.name!r}" for s in srcs])


def two_passes_device(
    plan: Plan,
    dev: Any,
    measure: str,
    keep: float | int,
    variance: Variance,
    epsilon: float,
    chunk_size: int | None,
    progress: bool | None,
    precision: Precision,
    tests: CellTests | None = None,
) -> tuple[np.ndarray, list[Rep]]:
    """:func:`two_passes` with the tensors' chunks never leaving their device.

    Pass one is one :class:`~svcca._moments._torch_moments.TorchAccumulator` per
    representation; pass two the same blocked ``A^T B`` as :func:`_cross_block`, its
    chunks centred on the exact float64 means before any cast, summed in float64 on the
    device. Between and after them the prepare and combine steps are the host ones,
    their cubic kernels on ``dev`` (:mod:`svcca._dense`).
    """
    import torch

    from svcca._device import exact_products, format_bytes, plan_rows
    from svcca._moments import TorchAccumulator

    srcs, n = plan.srcs, plan.n
    most = check_chunk_size(chunk_size)
    accs: list[TorchAccumulator] = []
    for s in srcs:  # all held at once: each plans beside the sums made before it
        held = sum(a.sums_bytes for a in accs)
        names = (f"Representation {s.name!r}", "")
        accs.append(TorchAccumulator(s.p, 0, dev, precision, names, held=held))
    rows1 = min(a.rows for a in accs) if most is None else min(most, *(a.rows for a in accs))
    bar = _Progress(progress, total=-(-n // rows1), desc="pairs")
    try:
        for start in range(0, n, rows1):
            stop = min(start + rows1, n)
            queued = [(a, a.queue(s.obj[start:stop])) for a, s in zip(accs, srcs, strict=True)]
            for acc, checks in queued:  # one synchronisation per chunk, not per representation
                acc.verify(checks)
            bar.update(1)
        moms = [acc.finish() for acc in accs]
        del accs
        reps = prepare_all(plan.names, moms, measure, keep, variance, epsilon)
        f32 = precision == "float32"
        work = torch.float32 if f32 else torch.float64
        transforms = [
            None if r.transform is None else torch.from_numpy(r.transform).to(dev, work)
            for r in reps
        ]
        means = [torch.from_numpy(m.mean_x).to(dev) for m in moms]
        inv_scales = [1.0 / m.scale_x for m in moms]
        widths = [s.p if T is None else T.shape[1] for T, s in zip(transforms, srcs, strict=True)]
        wr = sum(widths[u] for u in plan.row_u)
        wc = wr if plan.square else sum(widths[u] for u in plan.col_u)
        size = 4 if f32 else 8
        rows2 = plan_rows(
            fixed=(12 if f32 else 8) * wr * wc,  # float64 sums, a float32 product block
            per_row=(8 + size) * sum(s.p for s in srcs) + size * (wr + wc),
            device=dev,
            what=f"pairwise's cross blocks ({wr} x {wc}) in {precision}",
            lower=(
                f"They take {format_bytes(8 * wr * wc)}: compare fewer or narrower "
                "representations per call (rows and cols), or run on the host: with "
                "svcca.on_device(None): ..."
            ),
            most=FLOAT32_CHUNK_ROWS if f32 else (most or 1 << 16),
            least=min(256, n),
        )
        if most is not None:
            rows2 = min(rows2, most)
        bar.retotal(-(-n // rows1) + -(-n // rows2) + len(plan.row_u) * len(plan.col_u))
        # [[C, sa], [sb^T, 0]] as on the host (_cross_block, centred_cross).
        C = torch.zeros((wr + 1, wc + 1), dtype=torch.float64, device=dev)
        need = list(dict.fromkeys([*plan.row_u, *plan.col_u]))
        with torch.no_grad(), exact_products(dev):
            for start in range(0, n, rows2):
                stop = min(start + rows2, n)
                part = {}
                for u in need:
                    b = srcs[u].obj[start:stop].detach().to(torch.float64) - means[u]
                    if inv_scales[u] != 1.0:
                        b *= inv_scales[u]
                    b = b.to(work)
                    T = transforms[u]
                    part[u] = b if T is None else b @ T
                A = torch.cat([part[u] for u in plan.row_u], dim=1)
                B = A if plan.square else torch.cat([part[u] for u in plan.col_u], dim=1)
                if f32:
                    C[:-1, :-1] += A.mT @ B
                else:
                    C[:-1, :-1].addmm_(A.mT, B)
                C[:-1, -1] += A.sum(dim=0, dtype=torch.float64)
                C[-1, :-1] += B.sum(dim=0, dtype=torch.float64)
                bar.update(1)
        host = centred_cross(np.asarray(C.cpu().numpy()), n)
        del C
        with dense_steps(max(widths), dev):
            values = scores(
                host, reps, widths, plan.row_u, plan.col_u, measure, plan.square, bar, tests
            )
    finally:
        bar.close()
    return values, reps
