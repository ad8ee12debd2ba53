"""The candidate search of the radio IDs on Dask, one task per masterlist partition.

The only radio module that imports Dask. The masterlist is a HATS catalogue (or a single
table, one partition); the radio positions (and the random positions of the blank test) are
small and go to every task. Each task reads the columns it needs from its partition, keeps the
query positions that can reach it (a declination band and RA window around the partition's
rows, widened by the radius) and calls :func:`skysense.catalog.match.pairs_within`. Every
masterlist row lies in exactly one partition, so the union of the tasks' pairs is the global
pair set, exactly: no margins and no reruns are needed (unlike the tiled merge, the radio
search joins two different catalogues and never chains). Rows are numbered as
:func:`skysense.catalog.hats_io.read_hats_table` numbers them (partition after partition in
:func:`~skysense.catalog.hats_io.hats_files` order).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from skysense._dask import compute_with_progress, dask_client
from skysense.catalog.match import pairs_within
from skysense.catalog.radio.identify import dense_columns

__all__ = [
    "partition_files",
    "search_partition",
    "pairs_in_table",
    "find_pairs",
    "write_with_columns",
]


def partition_files(path: str | Path) -> list[tuple[str, int]]:
    """The Parquet files of a masterlist and the global row number of each file's first row.

    Parameters
    ----------
    path : path-like
        HATS catalogue directory or a single Parquet file.

    Returns
    -------
    list of (file, first_row)
    """
    from skysense.catalog.hats_io import hats_files

    p = Path(path)
    files = hats_files(p) if p.is_dir() else [p]
    out, start = [], 0
    for f in files:
        out.append((str(f), start))
        start += pq.ParquetFile(f).metadata.num_rows
    return out


def _reach(ra, dec, q_ra, q_dec, radius_arcsec: float) -> np.ndarray:
    """Queries that may have a partition row within the radius (a superset, cheap)."""
    if len(ra) == 0:
        return np.zeros(len(q_ra), dtype=bool)
    r = radius_arcsec / 3600.0
    lo, hi = np.nanmin(dec) - r, np.nanmax(dec) + r
    keep = (q_dec >= lo) & (q_dec <= hi)
    if hi >= 89.0 or lo <= -89.0:
        return keep
    # The RA window of the rows, on the circle (the largest gap between sorted RAs is outside).
    a = np.sort(np.mod(ra, 360.0))
    gaps = np.diff(np.concatenate((a, [a[0] + 360.0])))
    g = int(np.argmax(gaps))
    start, width = a[(g + 1) % len(a)], 360.0 - gaps[g]
    pad = r / np.cos(np.radians(max(abs(lo), abs(hi))))
    if width + 2 * pad >= 360.0:
        return keep
    off = np.mod(q_ra - (start - pad), 360.0)
    return keep & (off <= width + 2 * pad)


def search_partition(file: str, first_row: int, *args) -> pd.DataFrame:
    """:func:`pairs_in_table` on one partition file, reading only the columns needed.

    ``args`` are those of :func:`pairs_in_table` after ``first_row``.
    """
    columns = args[3]
    table = pq.read_table(file, columns=list(dict.fromkeys(["ra", "dec", *columns])))
    return pairs_in_table(table.to_pandas(), first_row, *args)


def pairs_in_table(
    table: pd.DataFrame,
    first_row: int,
    query_ra: np.ndarray,
    query_dec: np.ndarray,
    radius_arcsec: float,
    columns: Sequence[str],
) -> pd.DataFrame:
    """Pairs (query, row of ``table``) within the radius.

    Parameters
    ----------
    table : DataFrame
        Rows with ``ra``, ``dec`` (deg) and ``columns``.
    first_row : int
        Global number of the table's first row.
    query_ra, query_dec : ndarray (n,), deg
    radius_arcsec : float
    columns : sequence of str

    Returns
    -------
    DataFrame
        ``query``, ``opt_row`` (global row), ``sep_arcsec``, ``opt_ra``, ``opt_dec`` and the
        requested ``columns`` of the row.
    """
    ra = table["ra"].to_numpy(np.float64)
    dec = table["dec"].to_numpy(np.float64)
    reach = np.flatnonzero(_reach(ra, dec, query_ra, query_dec, radius_arcsec))
    i1, i2, sep = pairs_within(query_ra[reach], query_dec[reach], ra, dec, radius_arcsec)
    out = {
        "query": reach[i1].astype(np.int64),
        "opt_row": (first_row + i2).astype(np.int64),
        "sep_arcsec": sep,
        "opt_ra": ra[i2],
        "opt_dec": dec[i2],
    }
    for c in columns:
        out[c] = table[c].to_numpy()[i2]
    return pd.DataFrame(out)


def find_pairs(
    masterlist: str | Path | pd.DataFrame,
    query_ra: np.ndarray,
    query_dec: np.ndarray,
    radius_arcsec: float,
    columns: Sequence[str],
    *,
    scheduler: str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Every (query, masterlist row) pair within ``radius_arcsec``, partition by partition.

    Parameters
    ----------
    masterlist : path-like or DataFrame
        HATS directory or Parquet file (searched on Dask, one task per partition), or a table
        in memory (searched here).
    query_ra, query_dec : ndarray (n,), deg
    radius_arcsec : float
    columns : sequence of str
        Masterlist columns to carry into the pairs.
    scheduler : str, optional
        Dask scheduler address (None: local threads).

    Returns
    -------
    DataFrame
        Sorted by (query, sep_arcsec, opt_row); see :func:`search_partition`.
    """
    qra = np.ascontiguousarray(query_ra, dtype=np.float64)
    qdec = np.ascontiguousarray(query_dec, dtype=np.float64)
    if isinstance(masterlist, pd.DataFrame):
        out = pairs_in_table(masterlist, 0, qra, qdec, radius_arcsec, columns)
    else:
        import dask

        files = partition_files(masterlist)
        tasks = [
            dask.delayed(search_partition)(f, start, qra, qdec, radius_arcsec, tuple(columns))
            for f, start in files
        ]
        with dask_client(scheduler) as client:
            if progress:
                parts = compute_with_progress(
                    tasks, label=f"radio candidates in {len(tasks)} partitions", client=client
                )
            else:
                parts = dask.compute(*tasks)
        parts = [p for p in parts if len(p)]
        out = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pairs_in_table(
                pd.DataFrame({"ra": [], "dec": []} | {c: [] for c in columns}),
                0,
                qra,
                qdec,
                radius_arcsec,
                columns,
            )  # fmt: skip
        )
    return out.sort_values(["query", "sep_arcsec", "opt_row"], kind="stable").reset_index(drop=True)


_SKYMAP_ORDER = 8


def _rewrite_partition(file: str, first_row: int, pixel, sparse: pd.DataFrame, dst: str) -> dict:
    """One masterlist partition with the radio columns, written under ``dst``."""
    import pyarrow as pa

    from skysense.catalog.hats_io import SPATIAL_INDEX_COLUMN, write_partition

    table = pq.read_table(file)
    new = dense_columns(sparse, table.num_rows, first_row)
    table = table.drop_columns([c for c in new.columns if c in table.column_names])
    for col in new.columns:
        table = table.append_column(col, pa.Array.from_pandas(new[col]))
    write_partition(table, dst, *pixel)
    cells = table.column(SPATIAL_INDEX_COLUMN).to_numpy() >> (2 * (29 - _SKYMAP_ORDER))
    u, c = np.unique(cells, return_counts=True)
    return {"n": table.num_rows, "histogram": dict(zip(u.tolist(), c.tolist()))}


def write_with_columns(
    src: str | Path,
    dst: str | Path,
    sparse: pd.DataFrame,
    *,
    catalog_name: str = "masterlist",
    scheduler: str | None = None,
    progress: bool = False,
) -> int:
    """Copy a HATS masterlist adding the radio columns, one Dask task per partition.

    Parameters
    ----------
    src : path-like
        The masterlist (HATS directory).
    dst : path-like
        The new HATS directory (created; write it inside an atomic directory).
    sparse : DataFrame
        :func:`skysense.catalog.radio.identify.id_rows` (``row`` numbers the masterlist as
        :func:`partition_files` does).

    Returns
    -------
    int
        Rows written.
    """
    import dask
    import hats.io
    from hats.pixel_math import HealpixPixel

    from skysense.catalog.hats_io import finalize_hats, hats_partitions

    src = Path(src)
    pixels = {
        Path(hats.io.paths.pixel_catalog_file(src, HealpixPixel(o, p)).path).resolve(): (o, p)
        for o, p in hats_partitions(src)
    }
    files = partition_files(src)
    bounds = [start for _, start in files[1:]] + [None]
    tasks, order = [], []
    for (f, start), end in zip(files, bounds):
        rows = sparse["row"].to_numpy()
        sel = (rows >= start) & (rows < end if end is not None else True)
        pix = pixels[Path(f).resolve()]
        order.append(pix)
        tasks.append(dask.delayed(_rewrite_partition)(f, start, pix, sparse[sel].copy(), str(dst)))
    with dask_client(scheduler) as client:
        if progress:
            out = compute_with_progress(tasks, label="radio columns", client=client)
        else:
            out = dask.compute(*tasks)
    histogram = np.zeros(12 * 4**_SKYMAP_ORDER, dtype=np.int64)
    for r in out:
        for cell, c in r["histogram"].items():
            histogram[cell] += c
    counts = [r["n"] for r in out]
    finalize_hats(Path(dst), order, counts, histogram, catalog_name=catalog_name,
                  skymap_order=_SKYMAP_ORDER)  # fmt: skip
    return int(sum(counts))
