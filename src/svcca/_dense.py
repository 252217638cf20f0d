"""The cubic kernels of the small dense steps, on the host or on a torch device.

Every measure's prepare-a-side and combine steps are written once, in NumPy, on
``p x p`` blocks. Their cost is in a handful of kernels: symmetric eigendecompositions,
SVDs, Cholesky factors, triangular solves and products of ``p x p`` blocks, all
``O(p^3)``; the rest (scaling by standard deviations, pruning rules, sign flips, clipping
round-off) is ``O(p^2)`` glue. The kernels here run on the host (NumPy/LAPACK, exactly
the calls the measures made before) or, inside :func:`dense_on`, on a torch device in
float64: the operands are uploaded, the kernel runs there, the result comes back as a
NumPy array. Read-only operands (the factors of a prepared side, which the pairwise
engine combines with every other side) are uploaded once per block and kept on the
device until it ends.

Outside :func:`dense_on` nothing here imports torch.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from svcca._device import DeviceMemoryError, format_bytes, free_bytes
from svcca._validation import is_torch_tensor

__all__ = [
    "ConvergenceError",
    "cholesky",
    "dense_on",
    "device_in_use",
    "eigh",
    "eigvalsh",
    "factorising",
    "matmul",
    "smaller_gram",
    "solve_lower",
    "svd",
    "svdvals",
]


# Share of the device's free memory (when a block starts) that uploaded read-only
# operands may keep: the rest is for the kernels' own operands and workspaces. Past it
# the operands uploaded longest ago are dropped (and uploaded again if used again).
_CACHE_SHARE = 0.25


class _Device:
    """A torch device and the operands already uploaded to it (by identity)."""

    def __init__(self, dev: Any) -> None:
        import torch

        self.torch = torch
        self.dev = dev
        self.cache: dict[int, tuple[weakref.ref[np.ndarray], Any]] = {}
        self.cached = 0  # bytes held by the cache
        self.budget = int(_CACHE_SHARE * free_bytes(dev))

    def up(self, a: np.ndarray) -> Any:
        """``a`` as a float64 tensor on the device; read-only arrays are uploaded once
        (kept while they fit in :attr:`budget`, the oldest dropped first)."""
        key = id(a)
        hit = self.cache.get(key)
        if hit is not None and hit[0]() is a:
            self.cache[key] = self.cache.pop(key)  # most recently used last
            return hit[1]
        frozen = _frozen(a)
        # torch refuses to wrap read-only memory: those are copied (once, then cached)
        readonly = isinstance(a, np.ndarray) and not a.flags.writeable
        host = np.array(a, dtype=np.float64, order="C", copy=readonly or None)
        t = self.torch.from_numpy(host).to(self.dev)
        if frozen and 8 * a.size <= self.budget:
            if hit is not None:  # a freed array's id, reused: its entry is stale
                self._drop(key)
            while self.cache and self.cached + 8 * a.size > self.budget:
                self._drop(next(iter(self.cache)))
            # freed with the array (a factor of a side no longer used)
            self.cache[key] = (weakref.ref(a, functools.partial(self._forget, key)), t)
            self.cached += 8 * a.size
        return t

    def _drop(self, key: int) -> None:
        _, t = self.cache.pop(key)
        self.cached -= 8 * t.numel()

    def _forget(self, key: int, ref: weakref.ref[np.ndarray]) -> None:
        entry = self.cache.get(key)
        if entry is not None and entry[0] is ref:
            self._drop(key)

    @staticmethod
    def down(t: Any) -> np.ndarray:
        return np.asarray(t.cpu().numpy(), dtype=np.float64)

    def run(self, what: str, shape: tuple[int, ...], fn: Any) -> Any:
        """``fn()``, with a CUDA out-of-memory error turned into what to do about it, and
        torch's ``LinAlgError`` (a ``RuntimeError``) into NumPy's, which the host path
        raises and callers catch."""
        try:
            return fn()
        except self.torch.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(f"{exc} (on {self.dev})") from exc
        except self.torch.cuda.OutOfMemoryError as exc:
            free = free_bytes(self.dev)
            raise DeviceMemoryError(
                f"The {what} of a {' x '.join(map(str, shape))} float64 block ran out of "
                f"memory on {self.dev} ({format_bytes(free)} free after it failed). Free "
                "memory on the device, or run the small steps on the host: "
                "with svcca.on_device(None): ..."
            ) from exc


def _frozen(a: Any) -> bool:
    """Whether ``a`` cannot change: read-only, and so is every array it is a view of (a
    read-only view of a writeable array changes with it), down to memory of its own,
    ``bytes``, or the tensor of a kernel's result (:meth:`_Device.down`); not a
    ``bytearray``, ``mmap`` or other buffer someone can write to."""
    if not isinstance(a, np.ndarray):
        return False
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    if isinstance(a, memoryview):
        a = a.obj
    return a is None or isinstance(a, bytes) or is_torch_tensor(a)


_DENSE: ContextVar[_Device | None] = ContextVar("svcca_dense", default=None)


@contextmanager
def dense_on(device: Any) -> Iterator[None]:
    """Run the kernels inside the block on ``device`` (a ``torch.device``; None: host)."""
    current = _DENSE.get()
    made = None
    if device is None:
        token = _DENSE.set(None)
    elif current is not None and current.dev == device:
        token = _DENSE.set(current)  # nested: keep what is already uploaded
    else:
        made = _Device(device)
        token = _DENSE.set(made)
    try:
        yield
    finally:
        _DENSE.reset(token)
        if made is not None:  # the uploads are the block's: freed with it, not with
            made.cache.clear()  # the arrays (a side a caller keeps would hold them)
            made.cached = 0


def device_in_use() -> Any:
    """The ``torch.device`` the kernels run on now, or None (host)."""
    d = _DENSE.get()
    return None if d is None else d.dev


def _on(*arrays: np.ndarray) -> _Device | None:
    """The device to run on, or None for the host (also for empty operands, and for
    stacks of matrices and complex ones: the device path is for real float64 blocks)."""
    d = _DENSE.get()
    if d is None or any(a.size == 0 or a.ndim != 2 or np.iscomplexobj(a) for a in arrays):
        return None
    return d


# ---------------------------------------------------------------------- factorisations
# LAPACK's fast drivers (divide and conquer: gesdd for the SVD, syevd for symmetric
# eigenproblems, what NumPy and torch call) can fail to converge on rare, nearly
# degenerate blocks: a whitened cross block of two very similar wide layers, every
# singular value within 1e-3 of 1, made gesdd fail on one BLAS thread and converge on
# two. Every factorisation here is therefore retried, on the host, with the QR-iteration
# driver (gesvd, syev): slower, but it converges where the fast one does not. Only when
# that fails too is there an error, naming what was factorised (:func:`factorising`).
_WHAT: ContextVar[str] = ContextVar("svcca_factorising", default="")


class ConvergenceError(np.linalg.LinAlgError):
    """A factorisation that LAPACK's fast driver and its robust driver both failed on."""


@contextmanager
def factorising(what: str) -> Iterator[None]:
    """Name what the factorisations inside the block belong to (e.g. ``"representation
    'conv3'"``), for the :class:`ConvergenceError` raised when one does not converge."""
    token = _WHAT.set(what)
    try:
        yield
    finally:
        _WHAT.reset(token)


def _per_block(fn: Any, A: np.ndarray) -> Any:
    """``fn`` on ``A``, or on each matrix of a stack ``(..., m, n)`` with results stacked."""
    if A.ndim == 2:
        return fn(A)
    flat = A.reshape((-1,) + A.shape[-2:])
    parts = [fn(a) for a in flat]
    if isinstance(parts[0], tuple):
        return tuple(
            np.stack([p[i] for p in parts]).reshape(A.shape[:-2] + parts[0][i].shape)
            for i in range(len(parts[0]))
        )
    return np.stack(parts).reshape(A.shape[:-2] + parts[0].shape)


def _robust(kind: str, A: np.ndarray, fast: Any, robust: Any, drivers: tuple[str, str]) -> Any:
    """``fast()``; if it does not converge ``robust()``; if neither, :class:`ConvergenceError`."""
    try:
        return fast()
    except np.linalg.LinAlgError as first:
        if not np.isfinite(A).all():  # no driver converges on NaN (gesvd may return it)
            raise ConvergenceError(_not_converged(kind, A, drivers, first, None)) from first
        try:
            return robust()
        except np.linalg.LinAlgError as second:
            raise ConvergenceError(_not_converged(kind, A, drivers, first, second)) from second


def _not_converged(
    kind: str,
    A: np.ndarray,
    drivers: tuple[str, str],
    first: Exception,
    second: Exception | None,
) -> str:
    what = _WHAT.get() or "a block"
    shape = " x ".join(map(str, A.shape))
    msg = f"The {kind} of {what} (a {shape} {A.dtype} block) did not converge"
    if second is None:
        msg += f" with LAPACK's {drivers[0]} ({first})."
    else:
        msg += (
            f", neither with LAPACK's {drivers[0]} ({first}) nor with its robust driver "
            f"{drivers[1]} ({second})."
        )
    finite = np.isfinite(A)
    if not finite.all():
        return msg + (
            f" The block holds {int(A.size - finite.sum())} NaN or inf entries: the "
            "statistic it came from is not finite (sums that overflow float64, or a "
            "Moments built with them). Rescale the activations (e.g. divide each layer by "
            "its largest absolute value)."
        )
    return msg + (
        " Its entries are finite: this is LAPACK failing on a nearly degenerate block. "
        "Try another LAPACK (run the step on a GPU, with svcca.on_device('cuda'): ..., or "
        "with another NumPy/SciPy build) or prune nearly collinear features (a larger "
        "epsilon, e.g. 1e-8, where the measure takes one), and please report it with the "
        "shapes of the inputs."
    )


def eigh(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric (Hermitian) ``S``.

    ``S`` may be a stack ``(..., p, p)`` (on the host). Retried with LAPACK's ``syev``
    when ``syevd`` (or the device's driver) does not converge; :class:`ConvergenceError`
    when neither does.
    """
    d = _on(S)
    if d is not None:
        try:
            w, V = d.run("eigendecomposition", S.shape, lambda: d.torch.linalg.eigh(d.up(S)))
            return d.down(w), d.down(V)
        except np.linalg.LinAlgError:
            pass  # the host's drivers take over
    return _robust(  # type: ignore[no-any-return]
        "eigendecomposition",
        S,
        lambda: np.linalg.eigh(S),
        lambda: _per_block(lambda a: sla.eigh(a, driver="ev", check_finite=False), S),
        ("syevd", "syev"),
    )


def eigvalsh(S: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending) of the symmetric (Hermitian) ``S``, robust as :func:`eigh`."""
    d = _on(S)
    if d is not None:
        try:
            return d.down(d.run("eigenvalues", S.shape, lambda: d.torch.linalg.eigvalsh(d.up(S))))
        except np.linalg.LinAlgError:
            pass
    return _robust(  # type: ignore[no-any-return]
        "eigenvalues",
        S,
        lambda: np.linalg.eigvalsh(S),
        lambda: _per_block(
            lambda a: sla.eigh(a, eigvals_only=True, driver="ev", check_finite=False), S
        ),
        ("syevd", "syev"),
    )


def svd(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``M = U diag(s) Vt`` (``M`` may be a stack ``(..., m, n)`` on the host).

    Retried with LAPACK's ``gesvd`` when ``gesdd`` (or the device's driver) does not
    converge; :class:`ConvergenceError` when neither does.
    """
    d = _on(M)
    if d is not None:
        try:
            U, s, Vt = d.run(
                "SVD", M.shape, lambda: d.torch.linalg.svd(d.up(M), full_matrices=False)
            )
            return d.down(U), d.down(s), d.down(Vt)
        except np.linalg.LinAlgError:
            pass
    return _robust(  # type: ignore[no-any-return]
        "SVD",
        M,
        lambda: np.linalg.svd(M, full_matrices=False),
        lambda: _per_block(
            lambda a: sla.svd(a, full_matrices=False, lapack_driver="gesvd", check_finite=False),
            M,
        ),
        ("gesdd", "gesvd"),
    )


def svdvals(M: np.ndarray) -> np.ndarray:
    """Singular values of ``M``, descending (per matrix of a stack), robust as :func:`svd`."""
    d = _on(M)
    if d is not None:
        try:
            return d.down(
                d.run("singular values", M.shape, lambda: d.torch.linalg.svdvals(d.up(M)))
            )
        except np.linalg.LinAlgError:
            pass
    return _robust(  # type: ignore[no-any-return]
        "singular values",
        M,
        lambda: np.linalg.svd(M, compute_uv=False),
        lambda: _per_block(
            lambda a: sla.svd(a, compute_uv=False, lapack_driver="gesvd", check_finite=False),
            M,
        ),
        ("gesdd", "gesvd"),
    )


def cholesky(R: np.ndarray) -> tuple[np.ndarray, int]:
    """Lower Cholesky factor of ``R`` (upper triangle zero) and LAPACK's ``info``.

    ``info > 0``: the leading minor of that order is not positive definite (the factor
    is then unusable).
    """
    d = _on(R)
    if d is None:
        L, info = lapack.dpotrf(R, lower=1, clean=1)
        return L, int(info)
    L, info = d.run("Cholesky factor", R.shape, lambda: d.torch.linalg.cholesky_ex(d.up(R)))
    return d.down(L), int(info.item())


def solve_lower(L: np.ndarray, B: np.ndarray, *, trans: bool = False) -> np.ndarray:
    """``L^{-1} B`` (``L^{-T} B`` with ``trans``) for lower-triangular ``L``."""
    d = _on(L, B)
    if d is None:
        return sla.solve_triangular(
            L, B, lower=True, trans="T" if trans else "N", check_finite=False
        )

    def solve() -> Any:
        Lt, Bt = d.up(L), d.up(B)
        if trans:
            return d.torch.linalg.solve_triangular(Lt.mT, Bt, upper=True)
        return d.torch.linalg.solve_triangular(Lt, Bt, upper=False)

    return d.down(d.run("triangular solve", B.shape, solve))


def smaller_gram(M: np.ndarray) -> np.ndarray:
    """The smaller of ``M M^T`` and ``M^T M`` (on the host, NumPy's ``syrk``)."""
    d = _on(M)
    if d is None:
        return M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M

    def gram() -> Any:
        t = d.up(M)
        return t @ t.mT if M.shape[0] <= M.shape[1] else t.mT @ t

    return d.down(d.run("Gram product", M.shape, gram))


def matmul(*factors: np.ndarray) -> np.ndarray:
    """The product of ``factors`` left to right (``A @ B @ ...``)."""
    d = _on(*factors)
    if d is None:
        out = factors[0]
        for f in factors[1:]:
            out = out @ f
        return out

    def product() -> Any:
        out = d.up(factors[0])
        for f in factors[1:]:
            out = out @ d.up(f)
        return out

    return d.down(d.run("product", factors[0].shape, product))
