"""All-pairs comparisons: every layer with every layer, on one pass of shared work.

A learning-dynamics pane compares hundreds of pairs of the same few dozen
representations. Done pair by pair, each representation is centred, whitened and
decomposed again for every pair it is in, and every pair costs a ``(p + q)^2`` GEMM over
the data. Here each representation gets its Gram matrix and its transform (whitening
factor, or SVCCA's leading singular directions) once, and the cross-products of all
pairs come out of one blocked GEMM per chunk of samples; what is left per pair is a
small ``k x k`` eigenproblem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from svcca._engines._cell_tests import (
    CellTests,
    asymptotic_fields,
    check_test,
    permutation_cells,
)
from svcca._engines._cells import check_uncertainty, refuse_uncertainty
from svcca._engines._cells import with_intervals as _with_intervals
from svcca._engines._cells_rows import per_pair_intervals
from svcca._engines._combine import ONE_PASS_MEASURES, one_pass_settings, warn_inflated
from svcca._engines._pairwise_result import PairwiseResult
from svcca._engines._passes import two_passes
from svcca._engines._passes_device import tensor_device, two_passes_device
from svcca._engines._plan import Plan, plan_of
from svcca._engines._sketch import sketched_svcca
from svcca._measures import Measure, Variance
from svcca._sources import is_dask_array
from svcca._validation import (
    Precision,
    check_epsilon,
    check_int,
    check_keep,
    check_keep_fits,
    check_option,
    check_precision,
)

__all__ = ["PairwiseResult", "pairwise", "served_per_pair"]


def pairwise(
    rows: Mapping[str, Any] | Sequence[Any],
    cols: Mapping[str, Any] | Sequence[Any] | None = None,
    *,
    measure: str = "svcca",
    keep: float | int = 0.99,
    variance: Literal["explained", "singular_values"] = "explained",
    epsilon: float = 0.0,
    chunk_size: int | None = None,
    sketch_size: int | None = None,
    progress: bool | None = False,
    precision: Precision = "float64",
    params: Mapping[str, Any] | None = None,
    uncertainty: Literal["jackknife"] | None = None,
    blocks: int = 20,
    seed: int = 0,
    level: float = 0.95,
    test: Literal["permutation", "asymptotic"] | None = None,
    permutations: int | None = None,
) -> PairwiseResult:
    """Compare every representation with every other (or every row with every column).

    Parameters
    ----------
    rows : mapping of labels to representations, or sequence of representations
        Each representation is ``(n_samples, p_i)``, all on the same datapoints: NumPy
        arrays, ``np.memmap`` files (``np.load(path, mmap_mode="r")``), paths to
        ``.npy`` files, h5py/zarr datasets, torch tensors or dask arrays. The mapping's
        keys are the result's labels as given (a tuple key such as ``("run0", "fc1")``
        stays a tuple, and ``to_pandas()`` makes a MultiIndex of such keys); a
        sequence is labelled ``"0"``, ``"1"``, ...
    cols : same, optional
        Omitted: all pairs of ``rows`` (a square, symmetric matrix for symmetric
        measures). Given: the rectangular matrix ``rows x cols`` (e.g. layers at a
        checkpoint against the final model's layers). An object that appears in both
        is read and decomposed once.
    measure : str, default "svcca"
        Any name of :data:`svcca.MEASURES` (``svcca measures`` lists them). ``"svcca"``,
        ``"cca"``, ``"pwcca"``, ``"pls"`` and ``"cka_linear"`` run the one-pass engine
        below (memory constant in ``n``; ``"pls"`` and ``"cka_linear"`` both give
        linear CKA). Every other measure (Procrustes, shape metrics, regression, RBF
        CKA, RSA, your own registered one) reads each representation into memory once
        and is called on each pair: ``values[i, j]`` is exactly its score, and the
        representations must fit in half the free memory together (else
        :class:`~svcca.DeviceMemoryError`, before anything is read).
    keep, variance
        SVCCA's directions per representation, as in :func:`svcca.svcca`.
    epsilon : float, default 0.0
        Relative variance pruning for ``"cca"`` and ``"pwcca"``, as in :func:`svcca.cca`.
    chunk_size : int, optional
        Samples per chunk of each pass (default: about 64 MiB of float64 per chunk, at
        least 1024 rows). Memory is ``O(chunk_size * sum(p_i) + sum(p_i)^2)``, constant
        in ``n``.
    sketch_size : int, optional
        SVCCA only, for layers too wide for a ``p x p`` Gram matrix: pass one sketches
        each representation with Frequent Directions (``sketch_size`` rows, memory
        ``O(sketch_size * p)``) instead, as :func:`svcca.svcca_two_pass`
        does; pass two gathers the joint moments of all the sketched subspaces, and
        the kept directions are chosen inside them by their exact variances. Results
        approximate the exact ones (to about 1e-5 when the spectrum has a gap after the
        kept directions and ``sketch_size`` is a few times their number). Not for dask
        inputs.
    progress : bool or None, default False
        The library's one progress contract (:mod:`svcca._progress`): ``True`` always
        shows a bar on stderr, ``False`` never, ``None`` only when stderr is a terminal;
        without tqdm, a plain counter and one warning.
    precision : {"float64", "float32"}, default "float64"
        How the products of both passes are taken: ``"float32"`` multiplies float32
        chunks of at most 4096 rows and adds them into float64 sums (about twice the
        float64 rate; scores move by about 1e-8 for CKA and by the whitened blocks'
        condition number times 1e-7 for the CCA family, see :class:`~svcca.Moments`).
        Not with ``sketch_size``.
    params : mapping, optional
        Parameters of a measure called per pair (``{"bandwidth": 0.5}`` for
        ``"cka_rbf"``, ``{"alpha": 0.5}`` for ``"shape_distance"``), checked against its
        declaration; the one-pass measures take ``keep``, ``variance`` and ``epsilon``.
    uncertainty : {None, "jackknife"}, default None
        ``"jackknife"``: an interval for every cell, from one pass over the data, for
        the one-pass measures (``"svcca"``, ``"cca"``, ``"pwcca"``, ``"pls"``,
        ``"cka_linear"``). Separate keywords (``blocks``, ``seed``, ``level``) rather
        than one mapping, as in :func:`svcca.stats.interval`, whose interval each cell
        equals (to round-off) for ``interval(rows[i], cols[j], measure=measure,
        blocks=blocks, seed=seed, level=level)``. The pass keeps, per block of rows,
        the moments of all representations side by side (``blocks + 1`` statistics of
        ``(sum p_i)^2`` float64 entries, planned against half the free memory: else
        :class:`~svcca.DeviceMemoryError` with the size and the fix); each cell's
        leave-one-block-out statistics are slices of them, and the measure is
        evaluated on each through :data:`svcca.MEASURES`. For ``"svcca"`` the kept
        directions are **refitted on every leave-one-block-out statistic**, so the
        jackknife resamples the whole estimator, direction choice included. The
        values are then the measure on the pass's total statistic (this replaces the
        two passes of the default path; they agree to round-off). Every other measure
        (served per pair) gets the block jackknife on the rows, as
        :func:`svcca.stats.interval` gives it: each representation is prepared again
        without each block and every pair combined, ``blocks + 1`` times the cost of
        the call without intervals, in the same memory (a neighbour measure stays
        valid: no row is duplicated). Dask inputs run the block pass on the cluster
        (only block statistics reach the client), tensors on a device on that device.
        Refused, with the reason, for ``sketch_size`` and ``precision="float32"`` (see
        docs/uncertainty.md).
    blocks : int, default 20
        Jackknife blocks ``G``; rows go to blocks by a seeded hash of their global
        index (:func:`svcca.stats.block_of`), so a loader sorted by class puts every
        class in every block.
    seed : int, default 0
        Seed of that hash, and of the permutations of ``test="permutation"``.
    level : float, default 0.95
        Nominal coverage of each cell's interval (not simultaneous over cells).
    test : {None, "permutation", "asymptotic"}, default None
        A p-value against independence for every cell (``.pvalues``; NaN for a
        representation with itself), to adjust over a family of cells with
        :func:`svcca.stats.adjust_pvalues`. ``"permutation"`` shuffles the rows of
        the column representation, one sequence of permutations for all cells (each
        cell's p-value equals ``svcca.stats.permutation_test(measure, rows[i],
        cols[j], n_permutations=B, seed=seed)``'s): every measure, its prepared sides
        reused (a split measure's column side is permuted once per permutation and
        combined with every row side), the representations read into memory (planned
        as for the measures served per pair). ``"asymptotic"``, for the one-pass
        measures, from the moments the scores come from, in the same pass:
        Bartlett's chi-square (Wilks' lambda) for ``"cca"``, ``"pwcca"`` and
        ``"svcca"`` (on its kept directions), and the HSIC null of linear CKA for
        ``"cka_linear"`` and ``"pls"`` (Liu-Tang-Zhang's chi-square); a warning where
        a cell has fewer than ``10 (p + q)`` rows, below which these p-values were
        measured to drift from uniform (docs/uncertainty.md).
    permutations : int, optional
        ``B`` for ``test="permutation"``. Default: enough for the smallest p-value,
        ``1 / (B + 1)``, to pass Holm's first threshold at 5% over the matrix's
        distinct tests (``m`` cells: ``B = max(999, ceil(m / 0.05) - 1)``; a
        symmetric square matrix tests each pair once).

    Returns
    -------
    PairwiseResult
        ``.values[i, j]`` equals ``measure(rows[i], cols[j]).score`` (to round-off),
        with ``.rows``, ``.cols`` and ``.to_pandas()``. With ``uncertainty``, also
        ``.corrected`` (the jackknife's bias-corrected estimate), ``.standard_errors``,
        ``.low`` and ``.high``, each shaped like ``.values``, and ``.uncertainty``
        (method, level, blocks, seed), and ``.replicates`` (each cell without each
        block, for :func:`svcca.stats.cell_difference`). With ``test``, ``.pvalues``
        and ``.test``. :meth:`PairwiseResult.cells_to_pandas` gives every cell's
        numbers as a long table.

    Notes
    -----
    Pass one reads every representation once and accumulates its count, mean and
    Gram matrix :math:`S_{ii}` (mergeable moments). From :math:`S_{ii}` alone comes the
    per-representation transform :math:`T_i`: SVCCA's leading eigenvectors scaled to
    unit variance, :math:`T_i = V_k \\Lambda_k^{-1/2}`; CCA's whitening factor (applied
    after the GEMM); nothing for CKA. Pass two centres each chunk on the exact means
    and accumulates one blocked GEMM, :math:`A^T B` with :math:`A = [X_1 T_1, \\dots]`
    over the row representations and :math:`B` over the columns (:math:`A^T A` in the
    square case). Block :math:`(i, j)` of it is then SVCCA's (or, after whitening,
    CCA's) matrix :math:`M_{ij}`, whose singular values are the canonical correlations;
    for CKA it is :math:`S_{ij}` and the score is
    :math:`\\|S_{ij}\\|_F^2 / (\\|S_{ii}\\|_F \\|S_{jj}\\|_F)`.

    Dask inputs run both passes as block tasks with tree reductions on whatever
    scheduler is active (see docs/dask.md); nothing but moments reaches the client.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((2000, 4))
    >>> reps = {f"layer{i}": np.tanh(Z @ rng.standard_normal((4, 20))) for i in range(3)}
    >>> r = svcca.pairwise(reps, measure="cca")
    >>> r.shape, round(r["layer0", "layer0"], 6)
    ((3, 3), 1.0)
    """
    from svcca._measures import MEASURES as REGISTRY

    measure = check_option(
        measure,
        "measure",
        tuple(REGISTRY),
        fix="svcca measures (or svcca.MEASURES) lists them; svcca.register adds your own.",
    )  # type: ignore[assignment]
    params = dict(params or {})
    unc = None if uncertainty is None else check_uncertainty(uncertainty, blocks, seed, level)
    test = check_test(test, permutations, measure)  # type: ignore[assignment]
    if measure not in ONE_PASS_MEASURES:
        return served_per_pair(
            plan_of(rows, cols), REGISTRY[measure], params, unc, test, permutations, seed, progress
        )
    if params:
        raise TypeError(
            f"params= is for measures called per pair; measure={measure!r} runs the one-pass "
            f"engine and takes keep=, variance=, epsilon= and precision= (got params "
            f"{sorted(params)})."
        )
    keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    epsilon = check_epsilon(epsilon)
    precision = check_precision(precision)
    if sketch_size is not None:
        sketch_size = check_int(sketch_size, "sketch_size")
        if precision != "float64":
            raise ValueError(
                "sketch_size runs Frequent Directions in float64; precision='float32' is "
                "for the exact two passes. Leave one of them out."
            )
        if measure != "svcca":
            raise ValueError(
                f"sketch_size applies to measure='svcca' only (got measure={measure!r}); "
                "CCA, PWCCA and CKA need every feature's full Gram matrix."
            )
    plan = plan_of(rows, cols)
    if measure == "svcca":  # before the passes over the data, not after them
        for s in plan.srcs:
            check_keep_fits(keep, s.p, repr(s.name))
    use_dask = any(is_dask_array(s.obj) for s in plan.srcs)
    if unc is not None:
        refuse_uncertainty(sketch_size, precision)
        out = _with_intervals(
            plan, measure, keep, variance, epsilon, chunk_size, progress, unc, test
        )
        return _with_permutation_test(
            out, plan, REGISTRY[measure], dict(out.settings), test, permutations, seed, progress
        )
    tests = None
    if test == "asymptotic":
        tests = CellTests((len(plan.row_u), len(plan.col_u)), plan.n)
    if sketch_size is not None:
        if use_dask:
            raise ValueError(
                "sketch_size is not supported with dask inputs; compute on the cluster "
                "without it, or pass NumPy arrays / memmaps."
            )
        values, reps = sketched_svcca(
            plan.srcs,
            plan.n,
            plan.row_u,
            plan.col_u,
            keep,
            variance,
            sketch_size,
            chunk_size,
            progress,
            tests,
        )
        settings: dict[str, Any] = {"keep": keep, "variance": variance, "sketch_size": sketch_size}
    else:
        # The device decided once, from the data: torch tensors whose work runs on a
        # device keep their chunks there; everything else takes the host passes.
        dev = tensor_device(plan.srcs)
        if dev is not None:
            values, reps = two_passes_device(
                plan, dev, measure, keep, variance, epsilon, chunk_size, progress, precision, tests
            )
        else:
            values, reps = two_passes(
                plan, measure, keep, variance, epsilon, chunk_size, progress, precision, tests
            )
        settings = one_pass_settings(measure, keep, variance, epsilon)
    warn_inflated(plan.n, plan.names, reps, plan.row_u, plan.col_u, measure)
    tested: dict[str, Any] = {}
    if tests is not None:
        dims = [r.dim for r in reps]
        tested = asymptotic_fields(
            tests, plan.row_u, plan.col_u, plan.square, plan.names, dims, measure
        )
    out = PairwiseResult(
        values=values,
        rows=plan.row_labels,
        cols=plan.col_labels,
        measure=measure,
        settings=settings,
        n_samples=plan.n,
        dims_rows=tuple(reps[u].dim for u in plan.row_u),
        dims_cols=tuple(reps[u].dim for u in plan.col_u),
        **tested,
    )
    return _with_permutation_test(
        out, plan, REGISTRY[measure], dict(settings), test, permutations, seed, progress
    )


def _with_permutation_test(
    out: PairwiseResult,
    plan: Plan,
    measure: Measure,
    params: dict[str, Any],
    test: str | None,
    permutations: int | None,
    seed: int,
    progress: bool | None,
) -> PairwiseResult:
    """``out`` with every cell's permutation p-value, for ``test="permutation"``."""
    if test != "permutation":
        return out
    params = {k: v for k, v in params.items() if k != "sketch_size"}
    pvalues, record = permutation_cells(plan, measure, params, permutations, seed, progress)
    return dataclasses.replace(out, pvalues=pvalues, test=record)


def served_per_pair(
    plan: Plan,
    measure: Measure,
    params: dict[str, Any],
    unc: Mapping[str, Any] | None,
    test: str | None,
    permutations: int | None,
    seed: int,
    progress: bool | None,
) -> PairwiseResult:
    """A registered measure the one-pass engine does not serve, called per pair on the
    plan's representations, with its intervals (``unc``) and tests (``test``);
    ``svcca.torch.compare`` ends here for the activations it keeps."""
    from svcca._engines._per_pair import per_pair_values

    if unc is not None:
        out = per_pair_intervals(plan, measure, params, unc, progress)
    else:
        measure.check_params(params)
        values = per_pair_values(
            plan.srcs, plan.n, plan.row_u, plan.col_u, plan.square, measure, params, progress
        )
        out = PairwiseResult(
            values=values,
            rows=plan.row_labels,
            cols=plan.col_labels,
            measure=measure.name,
            settings=dict(params),
            n_samples=plan.n,
            dims_rows=tuple(plan.srcs[u].p for u in plan.row_u),
            dims_cols=tuple(plan.srcs[u].p for u in plan.col_u),
        )
    return _with_permutation_test(out, plan, measure, params, test, permutations, seed, progress)
