"""Converting FITS, CSV and Parquet catalogues to HATS in a streaming pass.

The catalogue is read in chunks (:func:`skysense.tables.iter_table_chunks`), so memory holds
one chunk and one output partition, never the whole table:

1. a first pass reads only the positions, checks them and counts rows per order-
   ``highest_order`` HEALPix cell; the cells are grouped into partitions as
   :func:`skysense.catalog.hats_io.write_hats` groups them
   (:func:`~skysense.catalog.hats_io.plan_partitions`);
2. a second pass splits every chunk by destination partition into shard files;
3. each partition's shards are concatenated (in input order), sorted stably by
   ``_healpix_29`` and written; then the HATS metadata.

The result is the catalogue :func:`~skysense.catalog.hats_io.write_hats` writes from the
whole table: the same partitions and the same rows in the same order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from skysense._atomic import atomic_dir
from skysense._check import checked_positions
from skysense.catalog.hats_io import (
    SPATIAL_INDEX_COLUMN,
    destination_keys,
    finalize_hats,
    parquet_write_options,
    plan_partitions,
    spatial_index,
    write_partition,
)
from skysense.errors import InputError
from skysense.tables import guess_position_columns, iter_table_chunks

__all__ = ["convert_to_hats"]


def convert_to_hats(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str | None = None,
    ra: str | None = None,
    dec: str | None = None,
    chunk_rows: int = 500_000,
    partition_rows: int = 500_000,
    highest_order: int = 8,
    catalog_name: str | None = None,
    pick_positions: Callable[[list[str]], tuple[str, str]] | None = None,
    row_column: str | None = None,
) -> dict:
    """Write the catalogue ``path`` as a HATS directory ``out`` (atomically), streaming.

    Parameters
    ----------
    path : path-like
        FITS, CSV, TSV or Parquet table.
    out : path-like
        HATS catalogue directory (replaced only once complete).
    format : str, optional
        Default from the suffix.
    ra, dec : str, optional
        Position columns (deg); default from :func:`skysense.tables.guess_position_columns`.
    chunk_rows : int
        Rows read at a time.
    partition_rows, highest_order : int
        As for :func:`skysense.catalog.hats_io.write_hats`.
    catalog_name : str, optional
        Default: the directory name.
    pick_positions : callable, optional
        ``pick_positions(column_names) -> (ra, dec)``, called on the first chunk, when the
        position columns depend on the table (a prepared catalogue's ``<survey>_ra``).
    row_column : str, optional
        Also write each row's number in the input (int64, from 0) in this column, so that
        work which depends on the input order (the merge) can restore it.

    Returns
    -------
    dict
        ``rows``, ``partitions``, ``ra``, ``dec``, ``out``.

    Raises
    ------
    InputError
        Unreadable file, missing or invalid positions (naming the row), empty table.
    """
    path, out = Path(path), Path(out)
    shift = 2 * (29 - highest_order)
    histogram = np.zeros(12 * 4**highest_order, dtype=np.int64)
    ra_col = dec_col = None
    n_rows = 0
    for chunk in iter_table_chunks(path, format, chunk_rows=chunk_rows):
        if ra_col is None:
            if pick_positions is not None and ra is None:
                ra_col, dec_col = pick_positions([str(c) for c in chunk.columns])
            else:
                ra_col, dec_col = guess_position_columns(chunk.columns, ra, dec)
            for col, what in ((ra_col, "RA"), (dec_col, "Dec")):
                if col is None or col not in chunk.columns:
                    raise InputError(f"no {what} column found; name it with --ra/--dec",
                                     path=path, column=col)  # fmt: skip
        r, d = checked_positions(chunk, ra_col, dec_col, path, n_rows)
        histogram += np.bincount(spatial_index(r, d) >> shift, minlength=len(histogram))
        n_rows += len(chunk)
    if n_rows == 0:
        raise InputError("cannot write an empty catalogue as HATS", path=path)
    alignment = plan_partitions(histogram, partition_rows, highest_order)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.shards.", dir=out.parent))
    schema = None
    try:
        # Pass 2: shards per destination partition, in input order.
        start = 0
        for k, chunk in enumerate(iter_table_chunks(path, format, chunk_rows=chunk_rows)):
            r, d = checked_positions(chunk, ra_col, dec_col, path, start)
            hpx = spatial_index(r, d)
            frame = chunk.drop(columns=[SPATIAL_INDEX_COLUMN], errors="ignore")
            frame.insert(0, SPATIAL_INDEX_COLUMN, hpx)
            if row_column is not None:
                frame[row_column] = np.arange(start, start + len(frame), dtype=np.int64)
            start += len(chunk)
            table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata()
            schema = (
                table.schema
                if schema is None
                else pa.unify_schemas([schema, table.schema], promote_options="permissive")
            )
            keys = destination_keys(hpx >> shift, alignment)
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            cuts = np.flatnonzero(np.diff(sorted_keys)) + 1
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(keys)]):
                key = int(sorted_keys[a])
                shard = scratch / str(key)
                shard.mkdir(exist_ok=True)
                # Shards in the partition files' encoding: no dictionary attempts on floats
                # (most of a default write's time), zstd (fewer scratch bytes).
                pq.write_table(table.take(order[a:b]), shard / f"{k:08d}.parquet",
                               **parquet_write_options(table.schema))  # fmt: skip
        # Pass 3: one partition at a time.
        pixels, counts = [], []
        with atomic_dir(out) as tmp:
            for shard in sorted(scratch.iterdir(), key=lambda p: int(p.name)):
                key = int(shard.name)
                parts = [pq.read_table(f) for f in sorted(shard.iterdir())]
                table = pa.concat_tables(parts, promote_options="permissive").cast(schema)
                hpx = table.column(SPATIAL_INDEX_COLUMN).to_numpy()
                table = table.take(np.argsort(hpx, kind="stable"))
                order_, pix = key >> 40, key & ((1 << 40) - 1)
                write_partition(table, tmp, order_, pix)
                pixels.append((order_, pix))
                counts.append(table.num_rows)
                shutil.rmtree(shard)
            finalize_hats(tmp, pixels, counts, histogram, catalog_name=catalog_name or out.name,
                          ra_column=ra_col, dec_column=dec_col, skymap_order=highest_order)  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"rows": n_rows, "partitions": len(pixels), "ra": ra_col, "dec": dec_col,
            "out": str(out)}  # fmt: skip
