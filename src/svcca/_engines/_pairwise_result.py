"""The labelled matrix the pairwise engines return: :class:`PairwiseResult`."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from svcca._result import result

__all__ = ["PairwiseResult"]


@result
class PairwiseResult:
    """A labelled matrix of similarities between named representations.

    Attributes
    ----------
    values : ndarray, shape (n_rows, n_cols)
        ``values[i, j]`` compares representation ``rows[i]`` with ``cols[j]``: the
        measure's ``.score`` (mean canonical correlation for ``"cca"`` and ``"svcca"``,
        the projection-weighted mean for ``"pwcca"`` with ``rows[i]`` as ``X``, linear
        CKA for ``"pls"`` and ``"cka_linear"``).
    rows, cols : tuple
        Labels, in order: the keys of the mappings given to :func:`pairwise`, as given
        (strings, tuples such as ``("run0", "fc1")``, integers, ...), or ``"0"``,
        ``"1"``, ... for a sequence.
    measure : str
        The measure used.
    settings : mapping
        The measure's settings (``keep``, ``variance``, ``epsilon`` as they apply).
    n_samples : int
        Datapoints every representation was measured on.
    dims_rows, dims_cols : tuple of int
        Dimensions each representation entered its comparisons with: directions kept
        (svcca), whitened rank after pruning (cca, pwcca) or features (pls, cka_linear).
    corrected, standard_errors, low, high : ndarray, shape (n_rows, n_cols), or None
        With ``uncertainty=``: each cell's bias-corrected estimate, standard error and
        interval at ``uncertainty["level"]``.
    uncertainty : mapping or None
        How the intervals were made: ``method``, ``level``, ``blocks``, ``seed``,
        ``blocks_used`` and ``block_sizes`` (rows in each block that held rows).
    replicates : ndarray, shape (blocks_used, n_rows, n_cols), or None
        With ``uncertainty=``: each cell's value without each block, which
        :func:`svcca.stats.cell_difference` pairs to test two cells against each other.
    pvalues : ndarray, shape (n_rows, n_cols), or None
        With ``test=``: each cell's p-value against independence (no association
        between the pair beyond chance); NaN for a representation with itself.
        :func:`svcca.stats.adjust_pvalues` adjusts them over a family of cells.
    test : mapping or None
        How: ``method`` (``"permutation"`` or ``"asymptotic"``), ``permutations`` and
        ``seed`` or the asymptotic ``statistic`` (``"bartlett"``, ``"hsic"``), and
        ``family_size`` (the distinct tests: a symmetric square matrix tests each pair
        once).
    """

    values: np.ndarray
    rows: tuple[Hashable, ...]
    cols: tuple[Hashable, ...]
    measure: str
    settings: Mapping[str, Any]
    n_samples: int
    dims_rows: tuple[int, ...]
    dims_cols: tuple[int, ...]
    corrected: np.ndarray | None = None
    standard_errors: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    uncertainty: Mapping[str, Any] | None = None
    replicates: np.ndarray | None = None
    pvalues: np.ndarray | None = None
    test: Mapping[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(len(rows), len(cols))``."""
        return (len(self.rows), len(self.cols))

    def _repr_html_(self) -> str:
        """The matrix as a coloured HTML table with its labels (Jupyter shows this)."""
        from svcca._html import pairwise_html

        return pairwise_html(self)

    def __getitem__(self, key: tuple[Hashable, Hashable]) -> float:
        """``result["conv1", "conv2"]`` (labels) or ``result[0, 1]`` (positions).

        Labels are matched as given: ``result[("run0", "fc1"), ("run1", "fc1")]`` for
        tuple labels. An integer is a position, except on an axis whose labels include
        integers: there it is looked up as a label only (``.values[i, j]`` for
        positions), so ``{3: X, 5: Y}`` is indexed ``result[3, 5]`` and never by a
        position that happens to be a label too.
        """
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(f"Index with a (row, col) pair of labels or positions; got {key!r}.")
        i, j = self.position(*key)
        return float(self.values[i, j])

    def position(self, row: Hashable, col: Hashable) -> tuple[int, int]:
        """The ``(i, j)`` of the cell ``result[row, col]`` names (labels or positions,
        as :meth:`__getitem__` reads them), to index ``.values``, ``.low``,
        ``.pvalues``, ..."""
        return self._index(row, self.rows, "row"), self._index(col, self.cols, "column")

    @staticmethod
    def _index(k: Hashable, labels: tuple[Hashable, ...], what: str) -> int:
        is_int = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
        int_labels = any(isinstance(x, int) and not isinstance(x, bool) for x in labels)
        if is_int and not int_labels:
            pos = int(k)  # type: ignore[call-overload]
            if not -len(labels) <= pos < len(labels):
                raise KeyError(
                    f"A {what} position must be in [-{len(labels)}, {len(labels)}); got {pos}. "
                    f"Use a label ({what}s are {list(labels)}) or a smaller position."
                )
            return pos
        if k in labels:
            return labels.index(k)
        hint = (
            " Integers are labels on this axis (its labels include integers); use "
            ".values[i, j] for positions."
            if is_int
            else ""
        )
        raise KeyError(f"No {what} labelled {k!r}; {what}s are {list(labels)}.{hint}")

    def to_pandas(self) -> Any:
        """The matrix as a ``pandas.DataFrame`` indexed by row and column labels.

        Tuple labels of one length (``("run0", "fc1")``) become a ``pandas.MultiIndex``
        (``df.loc[("run0", "fc1"), ("run1", "fc1")]``); other labels a plain index.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "to_pandas() needs pandas: pip install 'svcca[pandas]'. The values are in "
                ".values, the labels in .rows and .cols."
            ) from exc
        df = pd.DataFrame(
            self.values, index=_pandas_index(self.rows), columns=_pandas_index(self.cols)
        )
        df.attrs["measure"] = self.measure
        df.attrs["settings"] = dict(self.settings)
        for key in self._cell_keys():  # the matrices beside the values, by name
            df.attrs[key] = np.array(getattr(self, key))
        for key in ("uncertainty", "test"):
            if getattr(self, key) is not None:
                df.attrs[key] = dict(getattr(self, key))
        return df

    def _cell_keys(self) -> tuple[str, ...]:
        """The per-cell matrices this result carries beside ``values``."""
        keys: tuple[str, ...] = ()
        if self.uncertainty is not None:
            keys += ("corrected", "standard_errors", "low", "high")
        if self.pvalues is not None:
            keys += ("pvalues",)
        return keys

    def cells_to_pandas(self) -> Any:
        """Every cell as one line of a long ``pandas.DataFrame``, in row-major order.

        Columns ``row``, ``col``, ``value``; with intervals also ``corrected``, ``se``,
        ``low``, ``high``; with tests also ``pvalue`` (NaN for a representation with
        itself).
        """
        import pandas as pd

        r, c = self.shape
        names = {"standard_errors": "se", "pvalues": "pvalue"}
        table: dict[str, Any] = {
            "row": [self.rows[i] for i in range(r) for _ in range(c)],
            "col": [self.cols[j] for _ in range(r) for j in range(c)],
            "value": self.values.ravel(),
        }
        for key in self._cell_keys():
            table[names.get(key, key)] = np.asarray(getattr(self, key)).ravel()
        return pd.DataFrame(table)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types (lists, floats, str, None for NaN), ready for ``json.dump``."""
        from svcca._version import __version__

        out: dict[str, Any] = {
            "measure": self.measure,
            "settings": dict(self.settings),
            "svcca_version": __version__,
            "n_samples": self.n_samples,
            "rows": [_plain_label(x) for x in self.rows],
            "cols": [_plain_label(x) for x in self.cols],
            "dims_rows": list(self.dims_rows),
            "dims_cols": list(self.dims_cols),
            "values": self.values.tolist(),
        }
        for key in ("uncertainty", "test"):
            if getattr(self, key) is not None:
                out[key] = dict(getattr(self, key))
        for key in self._cell_keys():
            a = np.asarray(getattr(self, key), dtype=object)
            a[np.isnan(np.asarray(getattr(self, key)))] = None
            out[key] = a.tolist()
        return out


def _pandas_index(labels: tuple[Hashable, ...]) -> Any:
    import pandas as pd

    if labels and all(isinstance(x, tuple) for x in labels):
        if len({len(x) for x in labels}) == 1 and len(labels[0]) > 0:  # type: ignore[arg-type]
            return pd.MultiIndex.from_tuples(list(labels))
    return pd.Index(list(labels), tupleize_cols=False)


def _plain_label(x: Hashable) -> Any:
    """A label as JSON-ready Python: tuples as lists, NumPy scalars as Python, else str."""
    if isinstance(x, tuple):
        return [_plain_label(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)
