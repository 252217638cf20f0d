"""One call, model against model: every layer of one model with every layer of another.

:func:`compare` runs each batch through both models once and keeps no activation: it
accumulates, in float64, each layer's count, mean and Gram matrix and the cross blocks
of model A's layers against model B's (``sum(p_a) x sum(q_b)``, never a Gram matrix
of all layers side by side), merged batch by batch with the same exact update as
:class:`svcca.Moments`. What is left is the pairwise engine's own finish: each layer's
prepared side (:class:`svcca._engines.Rep`) and every pair's combine step
(:func:`svcca._engines.scores`), so each measure is the one implementation
:func:`svcca.pairwise` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from svcca._engines import (
    ONE_PASS_MEASURES,
    CellTests,
    PairwiseResult,
    asymptotic_fields,
    check_test,
    check_uncertainty,
    one_pass_settings,
    served_per_pair,
    warn_inflated,
)
from svcca._measures import MinibatchCKA, Variance
from svcca._moments import cross_moments
from svcca._progress import check_progress
from svcca._threads import dense_steps
from svcca._validation import (
    Precision,
    check_epsilon,
    check_keep,
    check_option,
    check_precision,
    raise_nonfinite,
)
from svcca.torch._batches import order_free
from svcca.torch._compare_cells import BlockCells, kept_plan
from svcca.torch._compare_finish import Layers, finish_moments, minibatch_result
from svcca.torch._layers import resolve_layers
from svcca.torch._options import Calls, CaptureOptions, MaskOption, Selector, Sequence_
from svcca.torch._run import run_capture

__all__ = ["COMPARE_MEASURES", "compare"]

COMPARE_MEASURES: tuple[str, ...] = (*ONE_PASS_MEASURES, "cka_minibatch")


# ---------------------------------------------------------------------- accumulation
def _check_finite(x: Any, label: str, batch: int) -> None:
    """Refuse a batch with NaN or inf (a tensor is checked on its device)."""
    finite = bool(np.isfinite(x).all()) if isinstance(x, np.ndarray) else bool(x.isfinite().all())
    if not finite:
        raise_nonfinite(x, f"Layer {label}", first_row=0, where=f" (batch {batch})")


# ---------------------------------------------------------------------- inputs
def _layer_list(layers: Any, name: str) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    try:
        out = list(layers)
    except TypeError as exc:
        raise TypeError(
            f"{name} must be a list of module names (model.named_modules() names); got "
            f"{type(layers).__name__}."
        ) from exc
    if not out:
        raise ValueError(f"{name} is empty: name at least one module to compare.")
    for s in out:
        if not isinstance(s, str):
            raise TypeError(f"{name} must hold str module names; got {s!r} ({type(s).__name__}).")
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise ValueError(f"{name} lists {dup} more than once; name each module once.")
    return out


def _captured_names(
    keys: Iterable[Any],
    what: str,
    la: list[str],
    lb: list[str],
    key_a: Callable[[str], str],
    key_b: Callable[[str], str],
) -> dict[Any, list[str]]:
    """The captured names each user key stands for: a layer name means that layer in both
    models (where it is one), ``"a.<name>"`` / ``"b.<name>"`` the layer of one model."""
    out: dict[Any, list[str]] = {}
    for k in keys:
        names = []
        if k in la:
            names.append(key_a(k))
        if k in lb:
            names.append(key_b(k))
        if not names and isinstance(k, str) and k[:2] in ("a.", "b."):
            if k[2:] in (la if k[0] == "a" else lb):
                names.append((key_a if k[0] == "a" else key_b)(k[2:]))
        if not names:
            raise ValueError(
                f"{what} names {k!r}, which is in neither layers_a {la} nor layers_b {lb}; "
                f"key {what} by a layer name (both models) or by 'a.<name>' / 'b.<name>' "
                "(one model)."
            )
        out[k] = list(dict.fromkeys(names))
    return out


def _check_not_shared(model_a: Any, model_b: Any, la: list[str], lb: list[str]) -> None:
    """Hooks on a module that both models call would fire for both: refuse such layers."""
    in_a = {id(m) for m in model_a.modules()}
    in_b = {id(m) for m in model_b.modules()}
    for model, layers, other, which in ((model_a, la, in_b, "a"), (model_b, lb, in_a, "b")):
        for name, mod in resolve_layers(model, layers).items():
            if id(mod) in other:
                raise ValueError(
                    f"Layer {name!r} of model_{which} is a module that model_a and model_b "
                    "share (the same object), so its activations cannot be told apart between "
                    "the two models. Compare models that share no recorded module (e.g. "
                    "copy.deepcopy one of them), or capture each model separately."
                )


# ---------------------------------------------------------------------- public
def compare(
    model_a: Any,
    model_b: Any,
    batches: Iterable[Any],
    layers_a: Sequence[str] | str,
    layers_b: Sequence[str] | str | None = None,
    *,
    measure: str = "cka_linear",
    keep: float | int = 0.99,
    variance: Literal["explained", "singular_values"] = "explained",
    epsilon: float = 0.0,
    select: Selector | Mapping[str, Selector] | None = None,
    sequence: Sequence_ | None = None,
    time_axis: int = 1,
    conv: Literal["mean", "flatten"] = "mean",
    mask: MaskOption = "auto",
    calls: Calls = "raise",
    datapoints: Callable[[Any], int] | None = None,
    conv_layers: Sequence[str] = (),
    forward: Callable[[Any, Any], Any] | None = None,
    device: Any = None,
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
    """Compare every layer of ``model_a`` with every layer of ``model_b``, in one pass.

    Each batch runs through both models once; no activation outlives its batch. The
    result equals ``svcca.pairwise(capture(model_a, ...), capture(model_b, ...))`` (to
    round-off; activations are kept in float64, as ``capture(..., dtype=np.float64)``
    records them) without storing the activations: memory is
    ``O(sum(p_a) sum(q_b) + sum(p_i^2))`` float64 numbers plus one batch, whatever the
    number of inputs.

    Parameters
    ----------
    model_a, model_b : torch.nn.Module
        The two models (e.g. two training seeds, or a model and its fine-tuned copy). The
        same object twice compares a model's layers with each other (each run once).
    batches : iterable
        Batches as :func:`svcca.torch.capture` takes them, iterated once (a one-shot
        iterator is fine); both models see the same batch.
    layers_a : list of str
        Module names of ``model_a`` (``model_a.named_modules()``): the result's rows.
    layers_b : list of str, optional
        Module names of ``model_b``: the columns. Default: the names of ``layers_a``.
    measure : str, default "cka_linear"
        Streamed, keeping no activations: {"cka_linear", "cca", "svcca", "pwcca", "pls",
        "cka_minibatch"}. Any other name of :data:`svcca.MEASURES` (RBF or debiased CKA,
        Procrustes, shape metrics, regression, RSA, your own) keeps the layers'
        activations on the host, within half the free memory (else
        :class:`~svcca.DeviceMemoryError` naming the size), and calls the measure on each
        pair with ``params``. The streamed measures' details:
        The first five are :func:`svcca.pairwise`'s, from the accumulated moments and
        exact; ``"cka_minibatch"`` is :class:`svcca.MinibatchCKA` over the batches as
        given (unbiased HSIC averaged over batches; batches of at least 4 rows).
    keep, variance
        SVCCA's directions per layer, as in :func:`svcca.svcca`.
    epsilon : float, default 0.0
        Relative variance pruning for ``"cca"`` and ``"pwcca"``, as in :func:`svcca.cca`.
    select : selector or dict, optional
        As in :func:`svcca.torch.capture`. A dict keyed by layer name applies to that
        layer in both models; ``"a.<name>"`` / ``"b.<name>"`` keys apply to one model.
    conv_layers : list of str, optional
        As in :func:`svcca.torch.capture`, with names as for ``select``.
    sequence, time_axis, mask, calls, datapoints, forward, device
        As in :func:`svcca.torch.capture` (``forward(model, batch)`` is called for each
        model; with ``calls="each"`` a module that runs ``k`` times gives rows or columns
        ``"<name>#0"`` ... ``"<name>#k-1"``). Errors from the capture name ``model_a``'s
        layers ``"a.<name>"`` and ``model_b``'s ``"b.<name>"``.
    conv : {"mean", "flatten"}, default "mean"
        Conv maps must be reduced to 2-D here (average pool, or flatten).
    progress : bool or None, default False
        A bar over the batches on stderr (the contract of :mod:`svcca._progress`).
    precision : {"float64", "float32"}, default "float64"
        ``"float32"``: activations centred on float64 means, then rounded once to
        float32, their products taken in float32 (chunks of at most 4096 rows) into
        float64 sums, as
        ``pairwise(..., precision="float32")`` does (docs/precision.md). Not for
        ``measure="cka_minibatch"``.
    params : mapping, optional
        Parameters of a measure called per pair (``{"alpha": 0.5}`` for
        ``"shape_distance"``), checked against its declaration.
    uncertainty : {None, "jackknife"}, default None
        ``"jackknife"``: every cell also gets a delete-a-block jackknife interval, as in
        :func:`svcca.pairwise` (docs/uncertainty.md). Batch rows get their global index
        from the batch order (the rows seen so far) and go to blocks by
        :func:`svcca.stats.block_of` of it, so each cell equals ``pairwise(capture(...),
        uncertainty="jackknife")``'s with the same ``blocks`` and ``seed``, whatever the
        batch size. Streamed measures keep ``blocks + 1`` statistics of ``P^2`` float64
        numbers (``P``: the layers' total width) on the host, planned against half the
        free memory; measures called per pair use the kept rows. Not for
        ``"cka_minibatch"``, ``precision="float32"`` or batches delivered on a device.
    blocks : int, default 20
        Number of blocks ``G`` (at least 2).
    seed : int, default 0
        Seed of the row-to-block hash.
    level : float, default 0.95
        Confidence level of the intervals.
    test : {None, "asymptotic", "permutation"}, default None
        A p-value against independence for every cell, as :func:`svcca.pairwise`
        gives it. The streamed measures' rows are gone once their moments are added,
        so they take ``"asymptotic"`` (Bartlett for ``"cca"``, ``"pwcca"``,
        ``"svcca"``; the HSIC null for ``"cka_linear"``, ``"pls"``), from the same
        pass; ``"permutation"`` is for the measures called per pair on kept
        activations (refused for the streamed ones, with the fix).
    permutations : int, optional
        ``B`` for ``test="permutation"`` (default as in :func:`svcca.pairwise`).

    Returns
    -------
    PairwiseResult
        ``.values[i, j]`` compares ``layers_a[i]`` of ``model_a`` with ``layers_b[j]`` of
        ``model_b``; ``.rows`` and ``.cols`` are the layer names; plot it with
        ``svcca.plot.heatmap(result)``. With ``uncertainty``, also ``.corrected``,
        ``.standard_errors``, ``.low``, ``.high`` (shaped like ``.values``) and
        ``.uncertainty``, as :func:`svcca.pairwise` gives them.

    Raises
    ------
    ValueError
        For a measure that needs the samples themselves (RBF or debiased full-data CKA,
        RSA: capture and call it), ``conv="keep"``, a layer both models share, a
        constant layer (``DegenerateError``) or non-finite activations, and the errors of
        :func:`svcca.torch.capture`.

    Notes
    -----
    One pass accumulates, per layer, :math:`n`, the mean and :math:`S_{ii}`, and the
    cross blocks :math:`S_{ab}` of every row layer against every column layer, each
    batch centred on its own mean and merged exactly (Chan, Golub and LeVeque). The
    pairwise engine then prepares each layer once and combines every pair: for SVCCA
    the cross block is :math:`T_a^T S_{ab} T_b` with :math:`T` the kept directions
    scaled to unit variance, which is what its second pass over the data computes.

    Examples
    --------
    >>> import torch, svcca.torch
    >>> nn = torch.nn
    >>> def net(seed):
    ...     torch.manual_seed(seed)
    ...     return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 4))
    >>> x = torch.randn(400, 5).split(100)
    >>> r = svcca.torch.compare(net(0), net(1), x, ["0", "1", "2"])
    >>> r.shape, r.rows
    ((3, 3), ('0', '1', '2'))
    """
    import torch

    from svcca._measures import MEASURES as REGISTRY

    measure = check_option(  # type: ignore[assignment]
        measure,
        "measure",
        (*COMPARE_MEASURES, *(m for m in REGISTRY if m not in COMPARE_MEASURES)),
        fix="svcca measures (or svcca.MEASURES) lists them; svcca.register adds your own.",
    )
    # The measures compare streams (their moments, or minibatch CKA) keep no activations;
    # every other registered measure is called per pair on activations kept on the host.
    per_pair = None if measure in COMPARE_MEASURES else REGISTRY[measure]
    params = dict(params or {})
    if per_pair is not None:
        per_pair.check_params(params)
    elif params:
        raise TypeError(
            f"params= is for measures called per pair; measure={measure!r} is streamed and "
            f"takes keep=, variance=, epsilon= and precision= (got params {sorted(params)})."
        )
    keep = check_keep(keep)
    variance = check_option(variance, "variance", Variance)  # type: ignore[assignment]
    epsilon = check_epsilon(epsilon)
    precision = check_precision(precision)
    if precision == "float32" and measure == "cka_minibatch":
        raise ValueError(
            "precision='float32' is for the moments-based measures; minibatch CKA "
            "accumulates per-batch HSICs in float64. Leave precision='float64' for it."
        )
    if conv not in ("mean", "flatten"):
        raise ValueError(
            f"conv must be 'mean' or 'flatten' in compare; got {conv!r}. Compare conv maps "
            "as maps by capturing them (conv='keep') and using svcca.conv."
        )
    if sequence == "keep":
        raise ValueError(
            "sequence='keep' gives each datapoint a whole (length, features) sequence; "
            "compare accumulates (datapoints, features) statistics. Use sequence='samples' "
            "(every real token a datapoint), 'mean', 'last' or 'first', or capture the "
            "sequences with svcca.torch.capture(..., sequence='keep')."
        )
    check_progress(progress)
    unc = None if uncertainty is None else check_uncertainty(uncertainty, blocks, seed, level)
    test = check_test(test, permutations, measure, streamed=per_pair is None)  # type: ignore[assignment]
    if unc is not None and measure == "cka_minibatch":
        raise ValueError(
            "uncertainty= is not served for measure='cka_minibatch': it averages HSICs over "
            "the loader's own batches, so the rows cannot be regrouped into the blocks of a "
            "row hash. For a streamed interval use measure='cka_linear' (full-data linear "
            "CKA), or leave uncertainty out."
        )
    if unc is not None and precision != "float64":
        raise ValueError(
            "uncertainty= keeps float64 block statistics; precision='float32' is for the "
            "accumulation without intervals. Leave one of them out."
        )
    la = _layer_list(layers_a, "layers_a")
    lb = la if layers_b is None else _layer_list(layers_b, "layers_b")
    for m, nm in ((model_a, "model_a"), (model_b, "model_b")):
        if not isinstance(m, torch.nn.Module):
            raise TypeError(f"{nm} must be a torch.nn.Module; got {type(m).__name__}.")

    same = model_b is model_a
    if same:
        target, run = model_a, forward

        def key_a(s: str) -> str:
            return s

        key_b = key_a
    else:
        from svcca.torch._stream import _two_models

        _check_not_shared(model_a, model_b, la, lb)  # also: unknown names, per model
        if forward is None:
            from svcca.torch._batches import _default_forward

            forward = _default_forward
        target = _two_models(model_a, model_b, forward, ("model_a", "model_b"))
        run = _run_pair

        def key_a(s: str) -> str:
            return f"a.{s}" if s else "a"

        def key_b(s: str) -> str:
            return f"b.{s}" if s else "b"

    row_req = [key_a(s) for s in la]
    col_req = [key_b(s) for s in lb]
    wanted = list(dict.fromkeys([*row_req, *col_req]))
    user = {key_a(s): (s, "model_a") for s in la}
    user.update({key_b(s): (s, "model_b") for s in lb})
    sel: Any = select
    if isinstance(select, Mapping):
        where = _captured_names(select, "select", la, lb, key_a, key_b)
        sel = {c: select[k] for k, cs in where.items() for c in cs}
    cl = [conv_layers] if isinstance(conv_layers, str) else list(conv_layers)
    where = _captured_names(cl, "conv_layers", la, lb, key_a, key_b)
    cl = [c for cs in where.values() for c in cs]

    mb = MinibatchCKA() if measure == "cka_minibatch" else None
    plan: dict[str, Any] = {}

    def setup(arrays: dict[str, np.ndarray]) -> None:
        # With calls="each" a module that runs k times gives "<name>#0" ... "<name>#k-1".
        rows, cols = _expand(row_req, arrays, user), _expand(col_req, arrays, user)
        labels = {k: (repr(nm) if same else f"{nm!r} of {which}") for k, nm, which in rows + cols}
        plan.update(rows=rows, cols=cols, labels=labels)
        keys = ([k for k, _, _ in rows], [k for k, _, _ in cols])
        if per_pair is not None:
            from svcca._engines import KeptLayers

            plan["acc"] = KeptLayers(list(dict.fromkeys([*keys[0], *keys[1]])), per_pair)
            plan["keys"] = keys
        elif mb is not None:  # minibatch CKA keeps its own sums: only the layers' names
            plan["acc"] = Layers(*keys, labels)
        elif unc is not None:  # per block, every layer side by side (pairwise's pass)
            widths = {k: int(arrays[k].shape[1]) for k in dict.fromkeys([*keys[0], *keys[1]])}
            first = next(iter(arrays.values()))
            plan["acc"] = BlockCells(*keys, labels, widths, unc, _check_finite, first)
        else:
            plan["acc"] = cross_moments(*keys, labels, precision, arrays)

    def callback(i: int, arrays: dict[str, np.ndarray]) -> None:
        if not plan:
            setup(arrays)
        if per_pair is not None:
            for k in plan["acc"].keys:
                _check_finite(arrays[k], plan["labels"][k], i)
        if mb is None:
            plan["acc"].add(i, arrays)
            return
        for k in plan["acc"].keys:
            _check_finite(arrays[k], plan["labels"][k], i)
        rows = next(iter(arrays.values())).shape[0]
        if rows < 4:
            raise ValueError(
                f"Batch {i} holds {rows} datapoints; minibatch CKA's unbiased HSIC needs at "
                "least 4 in every batch. A last batch this small is usually the remainder "
                "of the dataset: DataLoader(..., drop_last=True) leaves it out."
            )
        mb.update([arrays[k] for k, _, _ in plan["rows"]], [arrays[k] for k, _, _ in plan["cols"]])

    # Both models see each batch together, so a shuffling loader cannot misalign their
    # rows, and moments do not depend on the order: that warning is for captures compared
    # with other captures, not for this one.
    with order_free():
        opts = CaptureOptions.make(
            wanted,
            select=sel,
            sequence=sequence,
            time_axis=time_axis,
            conv=conv,
            # float64 rows: the accumulator centres them on float64 means, then casts
            dtype=np.float64,
            mask=mask,
            calls=calls,
            datapoints=datapoints,
            conv_layers=cl,
        )
        run_capture(
            target,
            batches,
            opts,
            callback,
            forward=run,
            device=device,
            progress=progress,
            desc="compare",
            skip=0,
            on_device=True,
        )
    if not plan:
        raise ValueError("batches was empty: there was nothing to run the models on.")
    acc = plan["acc"]
    if mb is None and per_pair is None and unc is None:
        acc.finish()
    row_names = tuple(nm for _, nm, _ in plan["rows"])
    col_names = tuple(nm for _, nm, _ in plan["cols"])
    n = mb.n_samples if mb is not None else acc.n
    if n < 2:
        raise ValueError(f"At least 2 samples are needed to compare representations; got {n}.")
    if mb is not None:
        return minibatch_result(mb, row_names, col_names, acc)
    if per_pair is not None and (unc is not None or test is not None):
        kept = kept_plan(acc, plan["rows"], plan["cols"])
        return served_per_pair(kept, per_pair, params, unc, test, permutations, seed, progress)
    if unc is not None:
        return acc.result(row_names, col_names, measure, keep, variance, epsilon, test)
    if per_pair is not None:
        rk, ck = plan["keys"]
        widths = {k: acc.parts[k][0].shape[1] for k in acc.keys}
        return PairwiseResult(
            values=acc.values(rk, ck, params, progress),
            rows=row_names,
            cols=col_names,
            measure=measure,
            settings=dict(params),
            n_samples=n,
            dims_rows=tuple(widths[k] for k in rk),
            dims_cols=tuple(widths[k] for k in ck),
        )
    tests = None if test is None else CellTests((len(row_names), len(col_names)), n)
    with dense_steps(max(m.p for m in acc.moms.values()), acc.device):
        values, reps, row_u, col_u = finish_moments(acc, measure, keep, variance, epsilon, tests)
    names: list[Hashable] = list(acc.keys)  # "a.<name>" / "b.<name>", as capture errors say
    warn_inflated(n, names, reps, row_u, col_u, measure)
    tested: dict[str, Any] = {}
    if tests is not None:
        dims = [r.dim for r in reps]
        tested = asymptotic_fields(tests, row_u, col_u, col_u is row_u, names, dims, measure)
    settings: dict[str, Any] = one_pass_settings(measure, keep, variance, epsilon)
    return PairwiseResult(
        values=values,
        rows=row_names,
        cols=col_names,
        measure=measure,
        settings=settings,
        n_samples=n,
        dims_rows=tuple(reps[u].dim for u in row_u),
        dims_cols=tuple(reps[u].dim for u in col_u),
        **tested,
    )


def _expand(
    requested: list[str], arrays: Mapping[str, np.ndarray], user: Mapping[str, tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """``(captured key, layer name as the result shows it, model)`` for each output."""
    out = []
    for k in requested:
        name, which = user[k]
        if k in arrays:
            out.append((k, name, which))
            continue
        calls = sorted(
            (int(x[len(k) + 1 :]), x)
            for x in arrays
            if x.startswith(k + "#") and x[len(k) + 1 :].isdigit()
        )
        if not calls:  # pragma: no cover - capture_stream raises for a module that did not run
            raise ValueError(f"The capture gave no output for {k!r}; it gave {list(arrays)}.")
        out.extend((x, f"{name}#{c}", which) for c, x in calls)
    return out


def _run_pair(model: Any, batch: Any) -> Any:
    return model(batch)
