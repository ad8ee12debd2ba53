"""HEALPix cell tables of positional joins between any two tables (pure; issue #23).

A positional join ``DISTANCE(a, b) <= r`` is answered with a hash join on HEALPix cells: for
each row of the *circle side* ``a`` the backend builds the NESTED cells at one ``depth`` that
cover its circle of radius ``r`` (:class:`JoinCells`, a per-query temporary table), and the
SQL joins the *probe side* ``b`` on ``(b.<hpx> >> 2 * (index_order - depth)) = cell``, then
applies the exact spherical test. Each probe row falls in exactly one cell of a given circle
row, so no pair is produced twice.

Cells of one row:

- the row's centre cell at ``depth`` and its 8 neighbours when the radius is at most
  :func:`neighbour_radius_deg` (the 3x3 block covers the circle,
  :func:`skysense.vo.hpx.neighbour_depth`);
- otherwise (a radius column whose value exceeds what the depth was chosen for) every cell at
  ``depth`` that meets the circle, from :func:`skysense.vo.hpx.cone_ranges` at the index
  order. The cover stays exact; only the number of cells grows, and a query whose cells would
  exceed ``max_cells`` is refused.

Rows with a NULL or non-finite position, or a NULL, negative or non-finite radius, get no
cells (the exact test could never accept them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skysense.errors import QueryError
from skysense.vo import hpx

__all__ = [
    "JoinCells",
    "COLUMN_RADIUS_BOUND_DEG",
    "join_cells",
    "neighbour_radius_deg",
    "radius_depth",
]

#: Radius (deg) the cell depth of a join whose radius is a column is chosen for, when nothing
#: better is known (the catalog records no column maxima): 10 arcsec, above typical position
#: errors. Rows with larger radii get every cell their circle meets at that depth (exact, more
#: cells); see :func:`join_cells`.
COLUMN_RADIUS_BOUND_DEG = 10.0 / 3600.0


@dataclass(frozen=True)
class JoinCells:
    """A helper table of a positional join the backend creates before running the SQL.

    Parameters
    ----------
    name : str
        Temporary table name.
    source_sql : str
        A SELECT (written by the translator) returning the circle side's rows as columns
        ``k`` (a row key; only when ``keyed``), ``ra``, ``dec`` (deg) and, for a radius from a
        column, ``r`` (deg).
    keyed : bool
        True: the table has rows ``(k BIGINT, cell BIGINT)`` and the SQL links ``k`` to the
        row's key (DuckDB's ``rowid``, an upload's ``_rowid``). False: rows ``(ra DOUBLE, dec
        DOUBLE, cell BIGINT)``, one set of cells per distinct position (covering the largest
        radius at that position), linked on the position itself.
    index_order : int
        HEALPix order of the probe side's index column.
    depth : int
        Order of the cells (<= ``index_order``).
    radius_deg : float or None
        The constant radius (deg), or None when ``source_sql`` gives a per-row ``r``.
    max_cells : int
        Largest number of cells the table may hold (else :class:`QueryError`).
    """

    name: str
    source_sql: str
    keyed: bool
    index_order: int
    depth: int
    radius_deg: float | None
    max_cells: int = 50_000_000

    def rows(self, fetch: Callable[[str], pa.Table]) -> pa.Table:
        """The table's rows, reading the circle side through ``fetch(sql) -> pa.Table``."""
        src = fetch(self.source_sql)
        ra = _floats(src, "ra")
        dec = _floats(src, "dec")
        r = np.full(len(ra), self.radius_deg) if self.radius_deg is not None else _floats(src, "r")
        if self.keyed:
            key = pc.cast(src.column("k"), pa.int64()).to_numpy(zero_copy_only=False)
            row, cell = join_cells(ra, dec, r, self.index_order, self.depth, self.max_cells)
            return pa.table({"k": pa.array(key[row]), "cell": pa.array(cell)})
        ok = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(r)
        pos = np.stack([ra[ok], dec[ok]], axis=1)
        rr = r[ok]
        if len(pos):
            # One set of cells per distinct position, for the largest radius there: a link on
            # the position then gives every row of that position each covering cell once.
            uniq, inverse = np.unique(pos, axis=0, return_inverse=True)
            rmax = np.full(len(uniq), -np.inf)
            np.maximum.at(rmax, inverse.ravel(), rr)
        else:
            uniq, rmax = pos.reshape(0, 2), rr
        row, cell = join_cells(
            uniq[:, 0], uniq[:, 1], rmax, self.index_order, self.depth, self.max_cells
        )
        return pa.table(
            {"ra": pa.array(uniq[row, 0]), "dec": pa.array(uniq[row, 1]), "cell": pa.array(cell)}
        )


def _floats(src: pa.Table, name: str) -> np.ndarray:
    col = pc.cast(src.column(name), pa.float64())
    return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def neighbour_radius_deg(depth: int) -> float:
    """Largest radius (deg) whose circle the 3x3 cells around its centre cell cover at
    ``depth`` (the inverse of :func:`skysense.vo.hpx.neighbour_depth`)."""
    return hpx.cell_size_deg(0) / (4.0 * 2.0**depth)


def join_cells(
    ra, dec, radius, index_order: int, depth: int, max_cells: int = 50_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Cells at ``depth`` covering a circle around each position.

    Parameters
    ----------
    ra, dec : array_like (n,), deg
        Circle centres.
    radius : array_like (n,), deg
        Radius of each circle.
    index_order : int
        Order of the indexed column the cells are joined with.
    depth : int
        Order of the cells, 0 <= depth <= index_order.
    max_cells : int
        Refuse (QueryError) when more cells would be needed.

    Returns
    -------
    row, cell : ndarray (m,), int64
        0-based input row and NESTED cell at ``depth``; the cells of a row are distinct, rows
        ascending.
    """
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    radius = np.asarray(radius, dtype=np.float64).ravel()
    if not 0 <= depth <= index_order:
        raise ValueError(f"depth {depth} outside [0, {index_order}]")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90) & (radius >= 0)
        ok &= np.isfinite(radius)
    small = ok & (radius <= neighbour_radius_deg(depth))
    large = np.flatnonzero(ok & ~small)
    rows_s = np.flatnonzero(small)
    n_cells = 9 * len(rows_s)
    if n_cells > max_cells:
        raise _too_many(max_cells)
    row_a, cell_a = _neighbours(ra, dec, rows_s, depth)
    rows, cells = [row_a], [cell_a]
    shift = 2 * (index_order - depth)
    total = len(cell_a)
    for i in large:
        # Few rows in practice (radii above the bound the depth was chosen for).
        rng = hpx.cone_ranges(
            float(ra[i]), float(dec[i]), min(float(radius[i]), 180.0), index_order, max_ranges=64
        )
        lo, hi = rng[:, 0] >> shift, rng[:, 1] >> shift
        count = int(np.sum(hi - lo + 1))
        total += count
        if total > max_cells:
            raise _too_many(max_cells)
        c = np.unique(np.concatenate([np.arange(a, b + 1, dtype=np.int64) for a, b in zip(lo, hi)]))
        rows.append(np.full(len(c), i, dtype=np.int64))
        cells.append(c)
    row = np.concatenate(rows)
    cell = np.concatenate(cells)
    if len(large):
        order = np.argsort(row, kind="stable")
        row, cell = row[order], cell[order]
    return row, cell


def _neighbours(ra, dec, rows, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's centre cell and its neighbours at ``depth``, distinct per row."""
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    import cdshealpix.nested as nested

    centre = hpx.hpx_index(ra[rows], dec[rows], depth).astype(np.uint64)
    nb = np.sort(np.asarray(nested.neighbours(centre, depth), dtype=np.int64), axis=1)
    # Near the corners of the 12 base cells a neighbour is missing (-1) or repeats; each row's
    # 9 values are sorted, so a repeat sits beside its twin.
    keep = nb >= 0
    keep[:, 1:] &= nb[:, 1:] != nb[:, :-1]
    row = np.broadcast_to(rows.astype(np.int64)[:, None], nb.shape)[keep]
    return row, nb[keep]


def _too_many(max_cells: int) -> QueryError:
    return QueryError(
        f"the positional join needs more than {max_cells:,} HEALPix cells (radii too large "
        "for the index); use a smaller radius or restrict the tables first"
    )


def radius_depth(radius_deg: float, index_order: int) -> int:
    """The cell depth of a positional join of radius ``radius_deg`` (deg): the deepest whose
    3x3 neighbourhood covers such a circle, at least 0 and at most ``index_order``."""
    d = hpx.neighbour_depth(max(float(radius_deg), 0.0), index_order)
    if d is not None:
        return d
    if radius_deg <= 0 or not math.isfinite(radius_deg):
        return index_order
    return max(0, int(math.floor(math.log2(hpx.cell_size_deg(0) / (4.0 * radius_deg)))))
