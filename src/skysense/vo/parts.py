"""Tables served over their partitioned Parquet files (HATS), without a copy (pure).

A HATS catalogue stores its rows in ``dataset/Norder=k/Dir=d/Npix=p.parquet`` files, each
holding the rows of one NESTED HEALPix cell, sorted by the ``_healpix_29`` index. Published
"over its files" (:func:`skysense.vo.publish.publish_hats_files`), a table is a DuckDB view
over those files, and a query with a region constraint reads only the files whose
``_healpix_29`` range meets the region's ranges: :class:`PartitionIndex` says which, and
writes the ``read_parquet`` of those files that the ADQL translation puts in the view's
place. The paths come from the database (written at publish time), never from a query.

Why restrict the files instead of leaving it to DuckDB: a view over every file opens and
checks each file's footer for each query (280 ms for a 0.05 deg cone over the 183 files of
the 39.4M-object masterlist, against 4-20 ms for the one file under the cone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from skysense.errors import InputError

__all__ = ["PartitionIndex", "HPX29_ORDER", "pixel_range29", "files_sql"]

#: HEALPix order of HATS' ``_healpix_29`` column (the index a file-served table is queried on).
HPX29_ORDER = 29


def pixel_range29(order: int, pixel: int) -> tuple[int, int]:
    """The inclusive ``_healpix_29`` range of NESTED cell ``pixel`` at ``order``."""
    if not 0 <= order <= HPX29_ORDER or not 0 <= pixel < 12 * 4**order:
        raise InputError(f"no HEALPix cell {pixel} at order {order}")
    shift = 2 * (HPX29_ORDER - order)
    return pixel << shift, ((pixel + 1) << shift) - 1


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def files_sql(paths: Sequence[str]) -> str:
    """A SQL list literal of file paths (``['a', 'b']``)."""
    return "[" + ", ".join(_sql_string(p) for p in paths) + "]"


@dataclass(frozen=True)
class PartitionIndex:
    """The Parquet files behind a table served over its files.

    Parameters
    ----------
    paths : sequence of str
        The files (absolute paths).
    lo, hi : ndarray (n,), int64
        Inclusive ``_healpix_29`` range of each file's rows.
    group : ndarray (n,), int
        Each file's group (one publish, e.g. a field): an index into ``selects``.
    selects : sequence of str
        Per group, the SQL ``SELECT`` of the published columns with ``{files}`` where the
        ``read_parquet`` file list goes.
    """

    paths: tuple[str, ...]
    lo: np.ndarray
    hi: np.ndarray
    group: np.ndarray
    selects: tuple[str, ...]
    _order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        lo = np.asarray(self.lo, dtype=np.int64).ravel()
        hi = np.asarray(self.hi, dtype=np.int64).ravel()
        group = np.asarray(self.group, dtype=np.int64).ravel()
        if not (len(self.paths) == len(lo) == len(hi) == len(group)):
            raise InputError("partition paths, ranges and groups differ in length")
        if len(group) and (group.min() < 0 or group.max() >= len(self.selects)):
            raise InputError("partition group without a SELECT")
        object.__setattr__(self, "paths", tuple(self.paths))
        object.__setattr__(self, "selects", tuple(self.selects))
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)
        object.__setattr__(self, "group", group)

    def __len__(self) -> int:
        return len(self.paths)

    def touched(self, ranges: np.ndarray) -> np.ndarray:
        """Which files hold rows whose ``_healpix_29`` may fall in ``ranges``.

        Parameters
        ----------
        ranges : ndarray (m, 2), int64
            Sorted, disjoint inclusive ranges at order 29 (e.g. :func:`skysense.vo.hpx.cone_ranges`).

        Returns
        -------
        ndarray (n,), bool
        """
        r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
        if len(r) == 0 or len(self.lo) == 0:
            return np.zeros(len(self.lo), dtype=bool)
        # The last range starting at or before a file's end; ranges are disjoint and sorted,
        # so if that one ends before the file starts, no range meets the file.
        k = np.searchsorted(r[:, 0], self.hi, side="right") - 1
        return (k >= 0) & (r[np.maximum(k, 0), 1] >= self.lo)

    def from_sql(self, mask: np.ndarray | None = None) -> str:
        """The SQL relation of the files in ``mask`` (all when None): one ``SELECT`` per
        group, joined by ``UNION ALL``; an empty relation of the same columns when no file
        is selected."""
        keep = np.ones(len(self.paths), dtype=bool) if mask is None else np.asarray(mask, bool)
        parts = []
        for g, select in enumerate(self.selects):
            idx = np.flatnonzero(keep & (self.group == g))
            if len(idx):
                parts.append(_with_files(select, [self.paths[i] for i in idx]))
        if not parts:
            # Same columns, no rows: the first file, filtered away (its footer is all that
            # is read).
            first = int(np.argmax(self.group == 0)) if len(self.group) else 0
            select = self.selects[int(self.group[first])] if len(self.group) else self.selects[0]
            return _with_files(select, [self.paths[first]]) + " LIMIT 0"
        return parts[0] if len(parts) == 1 else " UNION ALL ".join(f"({p})" for p in parts)


def _with_files(select: str, paths: Sequence[str]) -> str:
    """``select`` with its ``{files}`` (the last one: the FROM's) replaced by the list of
    ``paths`` (not str.format: a field name or column with braces in the SELECT, e.g.
    ``'COSMOS {north}'``, is text)."""
    head, mark, tail = select.rpartition("{files}")
    if not mark:
        raise InputError("a partition SELECT without {files}")
    return head + files_sql(paths) + tail
