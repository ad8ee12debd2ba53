"""Writing and reading masterlists in the HATS layout (hats, pyarrow; no Dask).

A HATS catalogue is a directory of Parquet files partitioned by adaptive HEALPix pixels
(``dataset/Norder=o/Dir=d/Npix=p.parquet``), each sorted by the ``_healpix_29`` spatial index,
plus ``_metadata``/``_common_metadata``, ``partition_info.csv``, ``hats.properties`` and a
skymap. It is built here with the ``hats`` library's own primitives (spatial index, partition
alignment, paths, metadata writers), so ``lsdb.open_catalog`` and ``hats.read_hats`` read it,
and plain ``pyarrow.dataset`` does too. The whole directory is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skysense._atomic import atomic_dir, atomic_path
from skysense._check import check_positions
from skysense.errors import InputError

__all__ = [
    "SPATIAL_INDEX_COLUMN",
    "ROW_GROUP_ROWS",
    "spatial_index",
    "write_hats",
    "write_partition",
    "parquet_write_options",
    "plan_partitions",
    "destination_keys",
    "finalize_hats",
    "hats_files",
    "read_hats_table",
    "hats_partitions",
]

SPATIAL_INDEX_COLUMN = "_healpix_29"


def spatial_index(ra: np.ndarray, dec: np.ndarray, num_threads: int = 0) -> np.ndarray:
    """The ``_healpix_29`` index (order-29 NESTED HEALPix) of positions in deg, int64 (n,).

    The cdshealpix call hats' ``compute_spatial_index`` makes, without importing hats (the
    simulator's workers never do); ``num_threads=0`` lets cdshealpix use every core, 1 suits
    callers that already run in parallel.
    """
    import cdshealpix.nested
    from astropy.coordinates import Latitude, Longitude

    if len(ra) == 0:
        return np.empty(0, dtype=np.int64)
    lon = Longitude(np.mod(np.asarray(ra, dtype=np.float64), 360.0), unit="deg")
    lat = Latitude(np.asarray(dec, dtype=np.float64), unit="deg")
    hpx = cdshealpix.nested.lonlat_to_healpix(lon, lat, 29, num_threads=num_threads)
    return hpx.astype(np.int64)


def write_hats(
    df: pd.DataFrame,
    path: str | os.PathLike,
    *,
    catalog_name: str | None = None,
    ra_column: str = "ra",
    dec_column: str = "dec",
    partition_rows: int = 500_000,
    highest_order: int = 8,
    properties: dict | None = None,
) -> Path:
    """Write ``df`` as a HATS catalogue directory (atomically).

    Parameters
    ----------
    df : pandas.DataFrame
        The table; positions in deg. A ``_healpix_29`` column is added.
    path : path-like
        The catalogue directory (replaced only once complete).
    catalog_name : str, optional
        Default: the directory name.
    ra_column, dec_column : str
    partition_rows : int
        Maximum rows per partition file (unless one order-``highest_order`` cell holds more).
    highest_order : int
        Finest HEALPix order of a partition.
    properties : dict, optional
        Extra ``hats.properties`` entries (strings or numbers).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InputError
        Missing or invalid position columns, or an empty table.
    """
    path = Path(path)
    for col in (ra_column, dec_column):
        if col not in df.columns:
            raise InputError("position column missing", column=col)
    if len(df) == 0:
        raise InputError("cannot write an empty catalogue as HATS", path=path)
    ra, dec = check_positions(
        df[ra_column].to_numpy(dtype=np.float64),
        df[dec_column].to_numpy(dtype=np.float64),
        columns=(ra_column, dec_column),
    )
    hpx29 = spatial_index(ra, dec)
    shift = 2 * (29 - highest_order)
    cell = hpx29 >> shift
    histogram = np.bincount(cell, minlength=12 * 4**highest_order).astype(np.int64)
    alignment = plan_partitions(histogram, partition_rows, highest_order)
    table = df.drop(columns=[SPATIAL_INDEX_COLUMN], errors="ignore").copy()
    table.insert(0, SPATIAL_INDEX_COLUMN, hpx29)
    order = np.argsort(hpx29, kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    dest_keys = destination_keys(cell[order], alignment)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pixels = []
    counts = []
    with atomic_dir(path) as tmp:
        boundaries = np.flatnonzero(np.diff(dest_keys)) + 1
        starts = np.concatenate([[0], boundaries])
        ends = np.concatenate([boundaries, [len(dest_keys)]])
        for a, b in zip(starts, ends):
            key = int(dest_keys[a])
            order_, pix = key >> 40, key & ((1 << 40) - 1)
            write_partition(arrow.slice(a, b - a), tmp, order_, pix)
            pixels.append((order_, pix))
            counts.append(b - a)
        finalize_hats(
            tmp, pixels, counts, histogram, catalog_name=catalog_name or path.name,
            ra_column=ra_column, dec_column=dec_column, skymap_order=highest_order,
            properties=properties,
        )  # fmt: skip
    return path


def plan_partitions(histogram: np.ndarray, partition_rows: int, highest_order: int):
    """The HATS partition of every order-``highest_order`` cell (``hats`` alignment).

    The alignment of ``hats.pixel_math.partition_stats.generate_alignment`` with
    ``drop_empty_siblings=True`` (going down the orders, a cell collapses into its parent when
    the parent holds at most the threshold and more than one child holds rows), computed with
    array operations: hats loops in Python over every cell of every order, about a second for
    the 786432 cells of order 8 whatever the number of rows.

    Parameters
    ----------
    histogram : ndarray (12 * 4**highest_order,), int64
        Rows per cell.
    partition_rows : int
        Maximum rows per partition (unless one cell holds more).

    Returns
    -------
    alignment
        Indexed by cell: ``(order, pixel, rows)`` of its partition (None for empty cells).
    """
    hist = np.asarray(histogram, dtype=np.int64)
    if hist.shape != (12 * 4**highest_order,):
        raise ValueError("histogram is not the right size")
    # A partition cannot be finer than highest_order: denser cells make larger partitions.
    threshold = max(partition_rows, int(hist.max()))
    sums = [hist]  # rows per cell, order highest_order down to 0
    for _ in range(highest_order):
        sums.append(sums[-1].reshape(-1, 4).sum(axis=1))
    sums.reverse()
    order_map = np.where(hist > 0, highest_order, -1)
    for order in range(highest_order - 1, -1, -1):
        quad_max = sums[order + 1].reshape(-1, 4).max(axis=1)
        collapse = (sums[order] != quad_max) & (sums[order] <= threshold)
        order_map[np.repeat(collapse, 4 ** (highest_order - order))] = order
    alignment = np.empty(len(hist), dtype=object)
    for cell in np.flatnonzero(order_map >= 0).tolist():
        order = int(order_map[cell])
        pixel = cell >> 2 * (highest_order - order)
        alignment[cell] = (order, pixel, int(sums[order][pixel]))
    return alignment


def destination_keys(cells: np.ndarray, alignment) -> np.ndarray:
    """``order * 2**40 + pixel`` of the partition of each row, from its cell (int64 (n,))."""
    dest_cells, inverse = np.unique(cells, return_inverse=True)
    cell_dest = np.array(
        [int(alignment[c][0]) * (1 << 40) + int(alignment[c][1]) for c in dest_cells],
        dtype=np.int64,
    )
    return cell_dest[inverse.reshape(-1)]


#: Rows per Parquet row group in partition files.
ROW_GROUP_ROWS = 32_768


def write_partition(table: pa.Table, base_dir: str | os.PathLike, order: int, pixel: int) -> Path:
    """Write one partition file (rows already sorted by ``_healpix_29``) of a HATS catalogue.

    Atomically (a temporary sibling renamed into place): a task re-run after its worker died
    rewrites the file whole, never leaves half of one.
    """
    import hats.io
    from hats.pixel_math import HealpixPixel

    file = hats.io.paths.new_pixel_catalog_file(
        Path(base_dir), HealpixPixel(order, pixel), create_dirs=True
    )
    with atomic_path(file.path) as tmp:
        # Row groups of ROW_GROUP_ROWS rows (sorted by _healpix_29, so each covers a small
        # patch): a reader of one patch (a tile of the merge) reads only its row groups.
        pq.write_table(
            table, tmp, row_group_size=ROW_GROUP_ROWS, **parquet_write_options(table.schema)
        )
    return Path(file.path)


def parquet_write_options(schema: pa.Schema, unique: Collection[str] = ()) -> dict:
    """``pyarrow.parquet.write_table`` options for partition files of ``schema``.

    zstd at level 1 (smaller than snappy at about its speed); dictionary encoding only for
    strings (on measured floats it never pays and pyarrow's attempt costs most of the write
    time) other than the ``unique`` columns (identifiers: a dictionary of unique values is
    bigger and slower); byte-stream-split for floating columns (their exponent bytes then
    compress well).
    """
    text = [f.name for f in schema if (pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_dictionary(f.type)) and f.name not in unique]  # fmt: skip
    floats = [f.name for f in schema if pa.types.is_floating(f.type)]
    return {
        "compression": "zstd",
        "compression_level": 1,
        "use_dictionary": text,
        "use_byte_stream_split": floats,
    }


def finalize_hats(
    base_dir: str | os.PathLike,
    pixels: list[tuple[int, int]],
    counts: list[int],
    histogram: np.ndarray,
    *,
    catalog_name: str,
    ra_column: str = "ra",
    dec_column: str = "dec",
    skymap_order: int = 8,
    properties: dict | None = None,
) -> None:
    """Write the metadata files of a HATS catalogue whose partitions are written.

    Parameters
    ----------
    base_dir : path-like
        Catalogue directory holding ``dataset/Norder=*/...`` files.
    pixels : list of (order, pixel)
        The partitions written.
    counts : list of int
        Rows in each.
    histogram : ndarray (12 * 4**skymap_order,), int64
        Rows per HEALPix cell at ``skymap_order`` (the skymap).
    """
    import hats.io
    from hats.catalog import PartitionInfo, TableProperties
    from hats.io.skymap import write_skymap
    from hats.pixel_math import HealpixPixel

    base_dir = Path(base_dir)
    hats.io.write_parquet_metadata(base_dir, create_per_partition_stats=False)
    partition_info = PartitionInfo([HealpixPixel(o, p) for o, p in pixels])
    partition_info.write_to_file(base_dir / "partition_info.csv")
    write_skymap(histogram=histogram, catalog_dir=base_dir)
    props = TableProperties(
        catalog_name=catalog_name,
        catalog_type="object",
        total_rows=int(sum(counts)),
        ra_column=ra_column,
        dec_column=dec_column,
        healpix_column=SPATIAL_INDEX_COLUMN,
        healpix_order=29,
        hats_max_rows=int(max(counts)),
        hats_order=int(partition_info.get_highest_order()),
        moc_sky_fraction=f"{partition_info.calculate_fractional_coverage():.5f}",
        skymap_order=skymap_order,
        hats_builder="skysense",
        **{k: str(v) for k, v in (properties or {}).items()},
    )
    props.to_properties_file(base_dir)


def hats_partitions(path: str | os.PathLike) -> list[tuple[int, int]]:
    """The (order, pixel) of every partition of a HATS catalogue."""
    import hats

    catalog = hats.read_hats(Path(path))
    return [(p.order, p.pixel) for p in catalog.get_healpix_pixels()]


def hats_files(path: str | os.PathLike) -> list[Path]:
    """Partition files of a HATS catalogue, in a fixed (name) order: the row order of
    :func:`read_hats_table`.

    Raises
    ------
    InputError
        Not a HATS catalogue, or one without partitions.
    """
    path = Path(path)
    data_dir = path / "dataset"
    if not data_dir.is_dir():
        raise InputError("not a HATS catalogue (no dataset/ directory)", path=path)
    files = sorted((f for f in data_dir.rglob("Npix=*.parquet") if f.is_file()), key=str)
    if not files:
        raise InputError("HATS catalogue has no partition files", path=path)
    return files


def read_hats_table(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a whole HATS catalogue (or a single Parquet file) into pandas with pyarrow.

    Rows come partition by partition in :func:`hats_files` order.

    Raises
    ------
    InputError
        The path is neither a HATS catalogue nor a Parquet file, or lacks a column.
    """
    path = Path(path)
    if path.is_dir():
        files = hats_files(path)
    elif path.is_file():
        files = [path]
    else:
        raise InputError("no such file or directory", path=path)
    try:
        tables = [pq.read_table(f, columns=columns) for f in files]
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, KeyError) as exc:
        raise InputError(f"cannot read: {exc}", path=path) from exc
