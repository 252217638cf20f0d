"""Null baselines: what a measure gives when there is nothing to find."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from svcca._progress import Progress, check_progress
from svcca._result import result
from svcca._validation import SVCCAWarning, check_int, check_option, check_real
from svcca.stats._measure import resolve
from svcca.stats._resampling import Measure, check_arrays, permutation_null

__all__ = ["DatapointsCurve", "NullBaseline", "datapoints_curve", "null_baseline"]

NullKind = Literal["gaussian", "shuffle"]


@result
class NullBaseline:
    """A measure on data with no relation between the two sides.

    Attributes
    ----------
    scores : ndarray, shape (n_repeats,)
    mean, std : float
        Their mean and standard deviation (``ddof=1``; 0 for one repeat).
    kind : {"gaussian", "shuffle"}
    shapes : tuple of tuple of int
        ``((n, p), (n, q))``.
    measure : str
        The measure's name (its registered name, or a plain callable's ``__name__``).
    params : mapping
        The parameters it was called with.
    """

    scores: np.ndarray
    mean: float
    std: float
    kind: str
    shapes: tuple[tuple[int, int], tuple[int, int]]
    measure: str
    params: Mapping[str, Any]


@result
class DatapointsCurve:
    """The null level of a measure as the number of datapoints grows.

    Attributes
    ----------
    sizes : ndarray of int, shape (k,)
        Numbers of datapoints tried, ascending.
    mean, std : ndarray, shape (k,)
        Mean and standard deviation of the measure on independent Gaussian data of
        shapes ``(n, p)`` and ``(n, q)`` at each size.
    scores : ndarray, shape (k, n_repeats)
    tolerance : float
    recommended_n : int or None
        The smallest size from which on every mean stays at or below ``tolerance``: the
        fewest datapoints for which unrelated representations score no more than
        ``tolerance``. None when no size tried gets there (try larger ``sizes``).
    n_features : tuple of int
        ``(p, q)``.
    """

    sizes: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    scores: np.ndarray
    tolerance: float
    recommended_n: int | None
    n_features: tuple[int, int]


def null_baseline(
    measure: Measure,
    X: Any,
    Y: Any,
    *,
    kind: NullKind = "gaussian",
    n_repeats: int = 20,
    seed: int | np.random.Generator | None = None,
    progress: bool | None = False,
    params: dict[str, Any] | None = None,
) -> NullBaseline:
    """The measure on unrelated data of the same shapes: what "no similarity" scores.

    Parameters
    ----------
    measure : str, Measure or callable
        A name of :data:`svcca.MEASURES`, a :class:`svcca.Measure`, or ``measure(X, Y)``
        returning a result with ``.score`` (as for :func:`permutation_test`).
    X : array_like, shape (n_samples, p)
    Y : array_like, shape (n_samples, q)
    kind : {"gaussian", "shuffle"}, default "gaussian"
        "gaussian": independent standard normal arrays of the same shapes (the
        tutorials' random baseline; only the shapes of X and Y are used).
        "shuffle": the real X against Y with its rows shuffled, which keeps each side's
        spectrum and breaks only the pairing (the permutation null; vectorised for the
        library's measures).
    n_repeats : int, default 20
    seed : int, Generator or None
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line
        counter). None: only when stderr is a terminal.
    params : dict, optional
        Parameters of a registered measure.

    Returns
    -------
    NullBaseline

    Notes
    -----
    Biased similarity estimators are far from 0 on unrelated data when the number of
    datapoints is not much larger than the number of features (CCA reaches 1 when
    ``n <= p + q``); report scores next to this baseline, or use
    :func:`permutation_test` for a p-value and :func:`datapoints_curve` to choose ``n``.

    Examples
    --------
    >>> import numpy as np, svcca
    >>> X, Y = np.zeros((100, 50)), np.zeros((100, 50))     # only the shapes matter
    >>> base = svcca.stats.null_baseline(svcca.cca, X, Y, n_repeats=3, seed=0)
    >>> bool(base.mean > 0.3)      # 50 + 50 features on 100 datapoints: far from 0
    True
    """
    m = resolve(measure, params, "null_baseline")
    progress = check_progress(progress)
    kind = check_option(kind, "kind", ("gaussian", "shuffle"))  # type: ignore[assignment]
    R = check_int(n_repeats, "n_repeats")
    A, B = check_arrays(X, Y)
    rng = np.random.default_rng(seed)
    n, p, q = A.shape[0], A.shape[1], B.shape[1]
    if kind == "shuffle":
        scores, _ = permutation_null(m, A, B, R, rng, progress=progress)
    else:
        scores = np.empty(R)
        with Progress(progress, R, "null baseline") as bar:
            for r in range(R):
                A_r, B_r = rng.standard_normal((n, p)), rng.standard_normal((n, q))
                # The null measures exactly the inflation the few-samples warning is about.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SVCCAWarning)
                    scores[r] = m.score(A_r, B_r)
                bar.update(1)
    std = float(np.std(scores, ddof=1)) if R > 1 else 0.0
    shapes = ((n, p), (n, q))
    return NullBaseline(scores, float(np.mean(scores)), std, kind, shapes, m.name, m.params)


def datapoints_curve(
    measure: Measure,
    p: int,
    q: int,
    *,
    sizes: Any = None,
    n_repeats: int = 3,
    tolerance: float = 0.1,
    seed: int | np.random.Generator | None = None,
    progress: bool | None = False,
    params: dict[str, Any] | None = None,
) -> DatapointsCurve:
    """How many datapoints do I need? The null level of a measure against ``n``.

    Scores independent Gaussian representations with ``p`` and ``q`` features on a
    growing number of datapoints (the figure of the SVCCA tutorial on baselines) and
    recommends the smallest ``n`` whose null level stays below ``tolerance``.

    Parameters
    ----------
    measure : str, Measure or callable
        A name of :data:`svcca.MEASURES`, a :class:`svcca.Measure`, or ``measure(X, Y)``
        returning a result with ``.score`` (as for :func:`permutation_test`).
    p, q : int
        Numbers of features of the two representations you want to compare.
    sizes : sequence of int, optional
        Numbers of datapoints to try. Default: ``max(p, q)`` times 1, 2, 4, ..., 128
        (at least 8).
    n_repeats : int, default 3
        Independent draws per size.
    tolerance : float, default 0.1
        Largest acceptable score for unrelated data.
    seed : int, Generator or None
    progress : bool or None, default False
        Show a progress bar on stderr (tqdm if installed, else a one-line
        counter). None: only when stderr is a terminal.
    params : dict, optional
        Parameters of a registered measure.

    Returns
    -------
    DatapointsCurve

    Notes
    -----
    The recommendation is about bias, not power: with ``recommended_n`` datapoints, two
    representations that share nothing score at most ``tolerance`` on average. Whether a
    given score is significant is :func:`permutation_test`'s question. Warnings the
    measure raises for too few datapoints are silenced here: small ``n`` is the point.

    Examples
    --------
    >>> import svcca
    >>> curve = svcca.stats.datapoints_curve(svcca.cca, 20, 20, n_repeats=2, seed=0)
    >>> curve.recommended_n          # mean CCA of unrelated 20-d layers <= 0.1
    2560
    """
    m = resolve(measure, params, "datapoints_curve")
    progress = check_progress(progress)
    for name, v in (("p", p), ("q", q)):
        check_int(v, name)
    R = check_int(n_repeats, "n_repeats")
    tol = check_real(tolerance, "tolerance", low=0.0, low_open=True)
    if sizes is None:
        base = max(p, q)
        grid = np.array([base * k for k in (1, 2, 4, 8, 16, 32, 64, 128)])
        grid = np.maximum(grid, 8)
    else:
        grid = np.asarray(sizes)
        if grid.ndim != 1 or grid.size == 0 or grid.dtype.kind not in "iu":
            raise TypeError(
                f"sizes must be a non-empty 1-D sequence of ints (numbers of datapoints); got "
                f"{sizes!r}."
            )
        if grid.min() < 4:
            raise ValueError(f"Every size must be at least 4 datapoints; got {grid.min()}.")
    grid = np.unique(grid.astype(np.int64))
    rng = np.random.default_rng(seed)
    scores = np.empty((grid.size, R))
    with Progress(progress, grid.size * R, "datapoints curve") as bar:
        for i, n in enumerate(grid):
            for r in range(R):
                A = rng.standard_normal((int(n), p))
                B = rng.standard_normal((int(n), q))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    scores[i, r] = m.score(A, B)
                bar.update(1)
    mean = scores.mean(axis=1)
    std = scores.std(axis=1, ddof=1) if R > 1 else np.zeros(grid.size)
    ok = mean <= tol
    rec: int | None = None
    # Smallest size from which on every larger size is also within tolerance.
    if ok[-1]:
        bad = np.flatnonzero(~ok)
        first = 0 if bad.size == 0 else int(bad[-1]) + 1
        rec = int(grid[first])
    return DatapointsCurve(grid, mean, std, scores, tol, rec, (int(p), int(q)))
