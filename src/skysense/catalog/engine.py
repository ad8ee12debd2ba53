"""The tiled merge on Dask: the same result as the single-machine merge, exactly.

The only catalogue module that imports Dask. The inputs are HATS catalogues (file inputs are
staged as HATS once, with their row number ``_row``); the sky is cut into HEALPix tiles of
order ``K``, and one Dask task per tile reads, from each catalogue's HATS partitions, the rows
within a cap around the tile (the tile plus a margin of at least 5 times the largest radius).

Why the result is exact. Let R be the largest merge radius (at least 0.1 arcsec). Join every
two input rows (of any catalogues) closer than R: at every merge step, candidate pairs join an
object's position (some input row) to an input row within the step radius <= R, so candidate
pairs never cross the connected components of this graph, and the merge of a union of whole
components is the restriction of the global merge (objects keep their global order because
rows are processed in global row order). A tile's task finds the components among its loaded
rows; a component all of whose rows lie at least R inside the loaded cap is complete (no row
outside the cap can touch it). The tile merges its complete components and emits the objects
whose position lies in the tile (the owner-tile rule): each object is emitted exactly once, by
one tile, with the values the global merge gives. Identifiers that depend on neighbours
(``object_key`` counters, ``help_id`` suffixes) only involve objects closer than R, hence in
the same component. If a component with a row inside the tile is incomplete (a chain of close
sources longer than the margin), the tile is rerun with a doubled margin, until complete.

Each task holds only its cap: memory is bounded by the densest tile, not by the catalogues.
On a cluster the tile size also respects the workers' memory limit (``dask worker
--memory-limit``): by a deliberately pessimistic estimate of the bytes a tile's row costs
(:data:`BYTES_PER_CELL` per input column and row), a tile holds at most half of the smallest
worker's limit. Tasks write their partition and association files themselves (a shared file
system is needed on a cluster), each to a file named by its tile, atomically (write, then
rename): a tile recomputed after its worker died (Dask reschedules its tasks) rewrites the
same bytes, so nothing is duplicated or lost, and the output is byte-identical to a local run
with the same tile order. Inputs given as HATS catalogues are read in place, and file
inputs are converted to HATS first in a streaming pass (VOTable and ECSV tables, read whole,
are staged as HATS here). The driver never loads positions either: one task per partition
checks an input's positions and returns its row count and occupied cells (for the tiles and
the coverage), and one task per tile counts the separation histograms of the merge plan
(radii, Bayesian priors) for the pairs whose later row lies in the tile; the driver sums
these fixed-size arrays, which equal the in-memory plan's histograms exactly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from skysense._atomic import atomic_path
from skysense._dask import (
    compute_with_progress,
    dask_client,
    resolve_scheduler,
    worker_memory_limit,
)
from skysense.catalog.hats_io import (
    SPATIAL_INDEX_COLUMN,
    finalize_hats,
    spatial_index,
    write_hats,
    write_partition,
)
from skysense.catalog.masterlist import build_objects
from skysense.catalog.match import angular_sep_arcsec, self_pairs, separation_counts
from skysense.catalog.merge import Prepared, StepPlan, associate
from skysense.catalog.radius import N_BINS, separation_edges

__all__ = [
    "MARGIN_FACTOR",
    "BYTES_PER_CELL",
    "LOCAL_MEMORY_BYTES",
    "TileJob",
    "choose_tile_order",
    "tile_rows_for_memory",
    "process_tile",
    "tile_histograms",
    "merge_tiled",
]

MARGIN_FACTOR = 5.0
#: Bytes a tile task uses per input row and column, a pessimistic figure (the cap's frames,
#: their concatenation, the pair graph and the merged objects all hold copies).
BYTES_PER_CELL = 64
#: Bytes the tiles of a merge on the local scheduler may use together (they run in the
#: driver's process, one per thread).
LOCAL_MEMORY_BYTES = 1_500_000_000
_ROWS_PER_TILE = 200_000
_MIN_GRAPH_RADIUS_ARCSEC = 0.1
_SKYMAP_ORDER = 8


@dataclasses.dataclass(frozen=True)
class TileJob:
    """Everything a tile task needs (plain data, cheap to ship to a worker)."""

    order: int
    pixel: int
    margin_arcsec: float
    graph_radius_arcsec: float
    hats_dirs: tuple[str, ...]
    partitions: tuple[tuple[tuple[int, int], ...], ...]
    surveys: tuple[str, ...]
    radii_arcsec: tuple[float, ...]
    # For inputs read in place (HATS given by the user): first global row of each partition,
    # the position columns, and the position-error column or constant; None for staged inputs.
    direct: tuple[tuple | None, ...] = ()


def choose_tile_order(n_rows: int, n_cells10: int, rows_per_tile: int = 200_000) -> int:
    """Tile order giving about ``rows_per_tile`` rows per tile.

    Parameters
    ----------
    n_rows : int
        Rows of all inputs.
    n_cells10 : int
        Occupied order-10 HEALPix cells (measures the covered area).
    """
    rows_per_cell10 = max(n_rows / max(n_cells10, 1), 1e-9)
    # A tile at order K holds 4**(10-K) order-10 cells.
    k = 10 - math.log(max(rows_per_tile / rows_per_cell10, 1.0), 4)
    return int(min(max(math.floor(k), 0), 10))


def tile_rows_for_memory(memory_limit: int | None, n_columns: int) -> int:
    """Rows per tile such that a tile's task stays below half of ``memory_limit``.

    Parameters
    ----------
    memory_limit : int or None
        Bytes a worker may use (None: unlimited; the default of 200 000 rows).
    n_columns : int
        Columns of all inputs together (a merged row carries them all).
    """
    if not memory_limit:
        return _ROWS_PER_TILE
    rows = memory_limit // 2 // (BYTES_PER_CELL * max(int(n_columns), 1))
    return int(min(max(rows, 1000), _ROWS_PER_TILE))


def _local_threads() -> int:
    """Threads of Dask's local threaded scheduler (its default pool: one per core)."""
    import dask
    from dask.system import CPU_COUNT

    return max(int(dask.config.get("num_workers", None) or CPU_COUNT), 1)


def _tile_cap(order: int, pixel: int) -> tuple[float, float, float]:
    """Centre (deg) and a radius (arcsec) of a cap around a HEALPix cell."""
    import astropy.units as u
    import cdshealpix.nested

    # One thread: a call costs microseconds, and waking a pool of threads on a loaded
    # machine cost a millisecond each (once per tile and edge point before).
    lon, lat = cdshealpix.nested.healpix_to_lonlat(np.array([pixel]), order, num_threads=1)
    ra_c, dec_c = float(lon.to_value(u.deg)[0]), float(lat.to_value(u.deg)[0])
    # 16 points along each edge, in one call.
    lons, lats = cdshealpix.nested.vertices(np.array([pixel]), order, step=16, num_threads=1)
    sep = angular_sep_arcsec(ra_c, dec_c, lons.to_value(u.deg)[0], lats.to_value(u.deg)[0])
    # Cell edges bow out between the sampled points; 2% covers it (exactness does not
    # depend on it, only how often a tile must be rerun).
    return ra_c, dec_c, float(sep.max()) * 1.02 + 1e-3


def _partitions_in_cap(partitions, ra_c, dec_c, radius_arcsec):
    """Partitions (order, pixel) of a catalogue that may hold rows within the cap (a superset)."""
    import astropy.units as u
    import cdshealpix.nested

    if radius_arcsec >= 90 * 3600:
        return list(partitions)
    depth = max(o for o, _ in partitions)
    # Keep the cone's cell list small: no finer than cells about a tenth of the radius.
    while depth > 0 and 12 * 4**depth * (radius_arcsec / 3600) ** 2 / 41253 > 400:
        depth -= 1
    cells = cdshealpix.nested.cone_search(
        ra_c * u.deg, dec_c * u.deg, radius_arcsec * u.arcsec, depth, flat=True
    )[0].astype(np.int64)
    cells = np.unique(cells)
    out = []
    for o, p in partitions:
        if o >= depth:
            hit = (p >> (2 * (o - depth))) in set(cells.tolist())
        else:
            hit = np.any((cells >> (2 * (depth - o))) == p)
        if hit:
            out.append((o, p))
    return out


def _cap_ranges(
    order: int, pixel: int, ra_c, dec_c, radius_arcsec
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted disjoint ``[lo, hi)`` ranges of ``_healpix_29`` covering the cap and the tile."""
    import astropy.units as u
    import cdshealpix.nested

    depth = min(order + 3, 29)
    cells = cdshealpix.nested.cone_search(
        ra_c * u.deg, dec_c * u.deg, (radius_arcsec * 1.01 + 1.0) * u.arcsec, depth, flat=True
    )[0].astype(np.int64)
    shift = 2 * (29 - depth)
    tile = np.arange(pixel << (2 * (depth - order)), (pixel + 1) << (2 * (depth - order)))
    cells = np.unique(np.concatenate([cells, tile]))
    # Merge runs of consecutive cells into one range each.
    breaks = np.flatnonzero(np.diff(cells) != 1) + 1
    first = cells[np.concatenate([[0], breaks])]
    last = cells[np.concatenate([breaks - 1, [len(cells) - 1]])]
    return first << shift, (last + 1) << shift


def _read_row_groups(path, ranges, columns=None) -> tuple[pa.Table, np.ndarray]:
    """The row groups of a partition file that may hold rows in ``ranges`` (by their
    ``_healpix_29`` statistics), as an Arrow table (``columns``: default all), and each row's
    position in the file."""
    pf = pq.ParquetFile(path)
    md = pf.metadata
    col = pf.schema_arrow.get_field_index(SPATIAL_INDEX_COLUMN)
    lo, hi = ranges
    groups, local, start = [], [], 0
    for g in range(md.num_row_groups):
        n = md.row_group(g).num_rows
        st = md.row_group(g).column(col).statistics if col >= 0 else None
        keep = st is None or not st.has_min_max
        if not keep:
            i = np.searchsorted(hi, st.min, side="right")
            keep = i < len(lo) and lo[i] <= st.max
        if keep:
            groups.append(g)
            local.append(np.arange(start, start + n, dtype=np.int64))
        start += n
    # No Arrow thread pool: tiles run in parallel already, and waking its threads for a
    # row group or two costs more than it saves on a loaded machine.
    if len(groups) == md.num_row_groups:
        table = pf.read(columns=columns, use_threads=False)
    elif groups:
        table = pf.read_row_groups(groups, columns=columns, use_threads=False)
    else:
        table = pf.schema_arrow.empty_table()
        if columns is not None:
            table = table.select(columns)
    rows = np.concatenate(local) if local else np.empty(0, dtype=np.int64)
    return table, rows


def _positions(table: pa.Table, direct: tuple | None) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (deg, float64) of an Arrow table's rows, as the merge reads them."""
    ra_col, dec_col = ("_ra", "_dec") if direct is None else direct[1]
    pos = table.select([ra_col, dec_col]).to_pandas(use_threads=False)
    return (
        pos[ra_col].to_numpy(dtype=np.float64),
        pos[dec_col].to_numpy(dtype=np.float64),
    )


def _read_cap(job: TileJob, k: int, ra_c, dec_c, cap_arcsec) -> pd.DataFrame:
    """The rows of input ``k`` within the cap or in the tile, in global row order. Only the
    row groups whose ``_healpix_29`` range meets the cap are read (partitions are sorted by
    it), so a tile smaller than the input's partitions reads little more than its cap; the
    rows outside the cap are dropped in Arrow, before the (costly) conversion to pandas."""
    import hats.io
    from hats.pixel_math import HealpixPixel

    shift = 2 * (29 - job.order)
    direct = job.direct[k] if job.direct else None
    ranges = _cap_ranges(job.order, job.pixel, ra_c, dec_c, cap_arcsec)
    frames = []
    for o, p in _partitions_in_cap(job.partitions[k], ra_c, dec_c, cap_arcsec):
        file = hats.io.paths.pixel_catalog_file(Path(job.hats_dirs[k]), HealpixPixel(o, p))
        table, local = _read_row_groups(file.path, ranges)
        ra, dec = _positions(table, direct)
        sep = angular_sep_arcsec(ra_c, dec_c, ra, dec)
        hpx = table.column(SPATIAL_INDEX_COLUMN).to_numpy()
        keep = (sep <= cap_arcsec) | ((hpx >> shift) == job.pixel)
        frame = table.filter(pa.array(keep)).to_pandas(use_threads=False)
        # Arrow restores the stored ``attrs`` (units, descriptions) and pandas deep-copies
        # them on every column access and operation: a third of a tile's CPU time. The
        # tiles never use them (the masterlist's metadata comes from the plan).
        frame.attrs = {}
        if direct is not None:
            frame = _with_helpers(frame, direct, (o, p), local[keep])
        frames.append(frame)
    if not frames:
        schema = pq.read_schema(Path(job.hats_dirs[k]) / "dataset" / "_common_metadata")
        empty = schema.empty_table().to_pandas()
        empty.attrs = {}
        if direct is not None:
            empty = _with_helpers(empty, direct, None)
        return empty
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("_row", kind="stable").reset_index(drop=True)


def _cap_positions(job: TileJob, k: int, ra_c, dec_c, cap_arcsec):
    """RA, Dec (deg) and ``_healpix_29`` of the rows of input ``k`` within the cap or in the
    tile, reading only those three columns (in no particular order)."""
    import hats.io
    from hats.pixel_math import HealpixPixel

    shift = 2 * (29 - job.order)
    direct = job.direct[k] if job.direct else None
    columns = [*(("_ra", "_dec") if direct is None else direct[1]), SPATIAL_INDEX_COLUMN]
    ranges = _cap_ranges(job.order, job.pixel, ra_c, dec_c, cap_arcsec)
    ra, dec, hpx = [np.empty(0)], [np.empty(0)], [np.empty(0, dtype=np.int64)]
    for o, p in _partitions_in_cap(job.partitions[k], ra_c, dec_c, cap_arcsec):
        file = hats.io.paths.pixel_catalog_file(Path(job.hats_dirs[k]), HealpixPixel(o, p))
        table, _ = _read_row_groups(file.path, ranges, columns)
        r, d = _positions(table, direct)
        h = table.column(SPATIAL_INDEX_COLUMN).to_numpy()
        keep = (angular_sep_arcsec(ra_c, dec_c, r, d) <= cap_arcsec) | ((h >> shift) == job.pixel)
        ra.append(r[keep])
        dec.append(d[keep])
        hpx.append(h[keep])
    return np.concatenate(ra), np.concatenate(dec), np.concatenate(hpx)


def tile_histograms(job: TileJob, search_radius_arcsec: float, edges_arcsec) -> np.ndarray:
    """Separation histograms of every merge step, counted for the rows of one tile.

    Row ``k`` counts the pairs within ``search_radius_arcsec`` between the rows of input
    ``k`` lying in the tile and all rows of the inputs before it: every pair is counted by
    exactly one tile (that of its row of input ``k``), so the tiles' histograms sum to
    :func:`skysense.catalog.merge.plan_steps`'s, whose separations are the same numbers
    (:func:`skysense.catalog.match.pairs_within` decides each pair alone).

    Returns
    -------
    ndarray (k, b), int64
        Pairs per bin of ``edges_arcsec`` for each input (row 0 is zero).
    """
    with _one_numba_thread():
        ra_c, dec_c, rho = _tile_cap(job.order, job.pixel)
        # The cap must hold every partner of every tile row: reread wider in the (rare) case
        # a tile row lies beyond rho (cell edges bow out between the sampled points).
        pad = search_radius_arcsec * (1.0 + 1e-6) + 1e-3
        cap = rho + pad
        shift = 2 * (29 - job.order)
        for _ in range(2):
            pos = [_cap_positions(job, k, ra_c, dec_c, cap) for k in range(len(job.surveys))]
            reach = max(
                (float(angular_sep_arcsec(ra_c, dec_c, r[m], d[m]).max()) + pad
                 for r, d, h in pos if (m := (h >> shift) == job.pixel).any()),
                default=0.0,
            )  # fmt: skip
            if reach <= cap:
                break
            cap = reach
        counts = np.zeros((len(job.surveys), len(edges_arcsec) - 1), dtype=np.int64)
        for k in range(1, len(pos)):
            r, d, h = pos[k]
            core = (h >> shift) == job.pixel
            if core.any():
                counts[k] = separation_counts(r[core], d[core], [p[:2] for p in pos[:k]],
                                              search_radius_arcsec, edges_arcsec)  # fmt: skip
        return counts


def _scan_partition(path: str, columns, order: int, label: str, source, first_row: int):
    """Check a partition file's positions; its row count and occupied cells of ``order``.

    ``source`` and ``first_row`` name the input and the partition's first row in errors."""
    from skysense._check import check_positions

    table = pq.read_table(path, columns=list(columns), use_threads=False).to_pandas()
    values = [
        pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        for c in columns
    ]
    rows = np.arange(first_row, first_row + len(table), dtype=np.int64)
    ra, dec = check_positions(*values, path=source, columns=tuple(columns), label=label, rows=rows)
    return len(ra), _occupied_cells(ra, dec, order)


def _scan_inputs(client, inputs, dirs, direct, order: int):
    """Check every input's positions partition by partition on Dask; set each input's
    ``n_rows`` and (when it has none) its coverage MOC at order 10; return the occupied
    cells of ``order`` of each input. The driver holds cells, never positions."""
    import dask
    from mocpy import MOC

    from skysense.catalog.hats_io import hats_files
    from skysense.errors import InputError

    tasks, owner = [], []
    for k, p in enumerate(inputs):
        cols = ("_ra", "_dec") if direct[k] is None else direct[k][1]
        start = 0
        for f in hats_files(dirs[k]):
            tasks.append(dask.delayed(_scan_partition)(str(f), cols, order, p.survey,
                                                       p.path or dirs[k], start))  # fmt: skip
            owner.append(k)
            start += pq.ParquetFile(f).metadata.num_rows
    out = _compute(tasks, "checking positions", client, False)
    cells = []
    for k, p in enumerate(inputs):
        mine = [r for r, o in zip(out, owner) if o == k]
        n = sum(r[0] for r in mine)
        if n == 0:
            raise InputError("empty catalogue", path=p.path)
        p.n_rows = n
        c = np.unique(np.concatenate([r[1] for r in mine]))
        cells.append(c)
        if p.moc is None:
            # The same cells as coverage_moc(ra, dec) (order 10) of the whole input.
            c10 = np.unique(c >> (2 * (order - 10)))
            p.moc = MOC.from_healpix_cells(c10, np.full(len(c10), 10, dtype=np.uint8), 10)
    return cells


def _with_helpers(table: pd.DataFrame, direct: tuple, pixel, local=None) -> pd.DataFrame:
    """Add ``_row``, ``_ra``, ``_dec`` (and ``_pos_err``) to a partition of a HATS input read
    in place; ``_row`` numbers rows as :func:`~skysense.catalog.hats_io.read_hats_table` does
    (``local``: each row's position in its partition file, default all rows in order)."""
    offsets, (ra_col, dec_col), err = direct
    # ``table`` is a fresh frame of this tile's own (no copy needed to add columns).
    start = offsets[pixel] if pixel is not None else 0
    if local is None:
        local = np.arange(len(table), dtype=np.int64)
    table["_row"] = start + np.asarray(local, dtype=np.int64)
    table["_ra"] = table[ra_col].to_numpy(dtype=np.float64)
    table["_dec"] = table[dec_col].to_numpy(dtype=np.float64)
    if isinstance(err, str):
        table["_pos_err"] = pd.to_numeric(table[err], errors="coerce").to_numpy(dtype=np.float64)
    elif err is not None:
        table["_pos_err"] = float(err)
    return table


def process_tile(job: TileJob, out_ml: str, out_assoc: str, build) -> dict:
    """Merge one tile; write its masterlist partition and association rows.

    Parameters
    ----------
    job : TileJob
    out_ml, out_assoc : str
        HATS catalogue directory and association directory to write into.
    build : callable
        ``build(assoc, frames) -> (masterlist, associations)`` (closes over the merge options).

    Returns
    -------
    dict
        ``{"pixel", "rerun": bool, "n": rows written, "histogram": {cell: count}}``.
    """
    with _one_numba_thread():
        return _process_tile(job, out_ml, out_assoc, build)


@contextlib.contextmanager
def _one_numba_thread():
    """Run this thread's Numba parallel loops on one thread. A tile's searches are small
    (thousands of rows) and tiles already run in parallel; a pool of threads per search
    only adds a barrier each, which on a loaded machine waits for a descheduled thread:
    pairs_within on 9000 rows took 17 ms on one thread and 160-220 ms on two at load 10.
    (Numba's thread count is per calling thread.)"""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _process_tile(job: TileJob, out_ml: str, out_assoc: str, build) -> dict:
    ra_c, dec_c, rho = _tile_cap(job.order, job.pixel)
    cap = rho + job.margin_arcsec
    frames = [_read_cap(job, k, ra_c, dec_c, cap) for k in range(len(job.surveys))]
    sizes = [len(f) for f in frames]
    result = {"pixel": job.pixel, "rerun": False, "n": 0, "histogram": {}}
    if sum(sizes) == 0:
        return result
    shift = 2 * (29 - job.order)
    ra = np.concatenate([f["_ra"].to_numpy() for f in frames if len(f)])
    dec = np.concatenate([f["_dec"].to_numpy() for f in frames if len(f)])
    hpx = np.concatenate([f[SPATIAL_INDEX_COLUMN].to_numpy() for f in frames if len(f)])
    in_core = (hpx >> shift) == job.pixel
    # Components of the "closer than R" graph among the loaded rows.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(ra)
    i, j, _ = self_pairs(ra, dec, job.graph_radius_arcsec)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # Rows whose R-neighbourhood lies inside the cap (1e-6 arcsec covers rounding).
    interior = angular_sep_arcsec(ra_c, dec_c, ra, dec) + job.graph_radius_arcsec <= cap - 1e-6
    incomplete = np.zeros(label.max() + 1, dtype=bool)
    incomplete[label[~interior]] = True
    if (incomplete[label] & in_core).any():
        result["rerun"] = True
        return result
    keep = ~incomplete[label]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    sub = [
        frames[k][keep[offsets[k] : offsets[k + 1]]].reset_index(drop=True)
        for k in range(len(frames))
    ]
    if sum(len(s) for s in sub) == 0:
        return result
    assoc = associate(
        [(s["_ra"].to_numpy(), s["_dec"].to_numpy()) for s in sub],
        list(job.radii_arcsec),
        list(job.surveys),
    )
    ml, at = build(assoc, sub)
    # Owner-tile rule: an object belongs to the tile holding its position.
    origin_hpx = np.empty(len(assoc), dtype=np.int64)
    for k, s in enumerate(sub):
        m = assoc.origin == k
        if m.any():
            origin_hpx[m] = s[SPATIAL_INDEX_COLUMN].to_numpy()[assoc.rows[m, k]]
    own = (origin_hpx >> shift) == job.pixel
    ml = ml[own].copy()
    at = at[at["object_key"].isin(ml["object_key"])]
    if len(ml) == 0:
        return result
    ml.insert(0, SPATIAL_INDEX_COLUMN, spatial_index(ml["ra"].to_numpy(), ml["dec"].to_numpy()))
    ml = ml.sort_values([SPATIAL_INDEX_COLUMN, "object_key"], kind="stable").reset_index(drop=True)
    write_partition(pa.Table.from_pandas(ml, preserve_index=False), out_ml, job.order, job.pixel)
    with atomic_path(Path(out_assoc) / f"part-{job.order}-{job.pixel}.parquet") as tmp:
        at.to_parquet(tmp, index=False)
    cells, counts = np.unique(
        ml[SPATIAL_INDEX_COLUMN].to_numpy() >> (2 * (29 - _SKYMAP_ORDER)), return_counts=True
    )
    result.update(n=len(ml), histogram=dict(zip(cells.tolist(), counts.tolist())))
    return result


def _occupied_cells(ra: np.ndarray, dec: np.ndarray, order: int, chunk: int = 1 << 20):
    """The NESTED HEALPix cells of ``order`` holding positions, int64, sorted; computed a
    chunk of rows at a time (memory: a chunk's indices, not the catalogue's)."""
    cells = [
        np.unique(spatial_index(ra[s : s + chunk], dec[s : s + chunk]) >> (2 * (29 - order)))
        for s in range(0, len(ra), chunk)
    ]
    return np.unique(np.concatenate(cells)) if cells else np.empty(0, dtype=np.int64)


def _n_columns(p: Prepared) -> int:
    """Columns of an input (of its HATS schema when it is read in place)."""
    if p.hats_dir is not None:
        path = Path(p.hats_dir) / "dataset" / "_common_metadata"
        if path.is_file():
            return len(pq.read_schema(path))
    return len(p.frame.columns)


def _stage_inputs(inputs, stage: Path, partition_rows: int):
    """Write each input as a HATS catalogue with ``_row``, ``_ra``, ``_dec`` columns, except
    HATS inputs read in place (``Prepared.hats_dir``), described instead by their partitions'
    first global rows."""
    import re

    import hats

    from skysense.catalog.hats_io import hats_files

    dirs, parts, direct = [], [], []
    for k, p in enumerate(inputs):
        if p.hats_dir is not None:
            offsets, start = {}, 0
            for f in hats_files(p.hats_dir):
                o, pix = (
                    int(x) for x in re.search(r"Norder=(\d+)/Dir=\d+/Npix=(\d+)", str(f)).groups()
                )
                offsets[(o, pix)] = start
                start += pq.ParquetFile(f).metadata.num_rows
            err = p.error_column if p.error_column is not None else p.error_constant
            dirs.append(str(p.hats_dir))
            parts.append(tuple(offsets))
            direct.append((offsets, p.position_columns, err))
            continue
        frame = p.frame.copy()
        frame["_row"] = np.arange(len(frame), dtype=np.int64)
        frame["_ra"] = p.ra
        frame["_dec"] = p.dec
        if p.position_error_arcsec is not None:
            frame["_pos_err"] = p.position_error_arcsec
        path = stage / f"input_{k}"
        write_hats(frame, path, catalog_name=p.survey, ra_column="_ra", dec_column="_dec",
                   partition_rows=partition_rows)  # fmt: skip
        dirs.append(str(path))
        parts.append(
            tuple((px.order, px.pixel) for px in hats.read_hats(path).get_healpix_pixels())
        )
        direct.append(None)
    return dirs, parts, direct


def _compute(tasks, label: str, client, progress: bool) -> list:
    import dask

    if progress or client is not None:
        return compute_with_progress(tasks, label=label, client=client)
    return list(dask.compute(*tasks))


def merge_tiled(
    inputs: Sequence[Prepared],
    plan: StepPlan | Callable[[list[np.ndarray]], StepPlan],
    ml_path: Path,
    assoc_dir: Path,
    *,
    rule: str,
    bayes_on: bool,
    partition_rows: int = 500_000,
    scheduler: str | None = None,
    tile_order: int | None = None,
    progress: bool = False,
    stage_dir: str | Path | None = None,
    search_radius_arcsec: float = 5.0,
) -> tuple[int, dict]:
    """Run the merge tile by tile on Dask (see the module docstring).

    The driver holds no positions: the inputs' positions are checked, counted and their
    occupied cells found partition by partition, and the separation histograms of the plan
    are counted tile by tile, all on the workers; the driver sums fixed-size arrays.

    Parameters
    ----------
    inputs : sequence of Prepared
        HATS inputs on disk (``hats_dir`` set; ``ra``/``dec`` may be None) or tables in
        memory (staged as HATS here). ``n_rows`` and missing MOCs are filled in.
    plan : StepPlan or callable
        The plan, or ``plan(counts)`` making it from the separation histograms
        (:func:`skysense.catalog.merge.plan_from_counts`), which are then counted here.
    ml_path : Path
        Masterlist HATS directory to create (inside an atomic output directory).
    assoc_dir : Path
        Association table directory to create.
    rule, bayes_on
        As for :func:`skysense.catalog.masterlist.build_objects`.
    scheduler : str, optional
        Dask scheduler address (None: local threads).
    tile_order : int, optional
        HEALPix order of the tiles (default from :func:`choose_tile_order`).
    stage_dir : path-like, optional
        Where the staged HATS inputs go (default a temporary directory; must be visible to
        the workers on a cluster).
    search_radius_arcsec : float, arcsec
        Range of the separation histograms (with a callable ``plan``).

    Returns
    -------
    (n_objects, info) : int, dict
    """
    import dask

    n_columns = sum(_n_columns(p) for p in inputs)
    surveys = tuple(p.survey for p in inputs)
    ml_path.mkdir(parents=True)
    assoc_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=stage_dir) as stage:
        dirs, parts, direct = _stage_inputs(inputs, Path(stage), partition_rows)
        # The tiles read what they need from the staged copies: release the tables here.
        for p in inputs:
            p.frame = p.frame.iloc[:0]
        results = {}
        rounds = 0
        with dask_client(scheduler) as client:
            memory_limit = worker_memory_limit(client)
            # The local scheduler's tasks run in this process, a tile per thread at once:
            # they share LOCAL_MEMORY_BYTES, so the driver stays bounded too.
            budget = memory_limit or LOCAL_MEMORY_BYTES // _local_threads()
            rows_per_tile = tile_rows_for_memory(budget, n_columns)
            # Per input only its occupied cells (order 10, or the tiles' if finer), counted
            # on the workers: not a position or a 64-bit index per row in the driver.
            scan_order = max(10, tile_order or 10)
            cells = _scan_inputs(client, inputs, dirs, direct, scan_order)
            cells10 = np.unique(np.concatenate(cells) >> (2 * (scan_order - 10)))
            n_rows = sum(p.n_rows for p in inputs)
            if tile_order is None:
                tile_order = choose_tile_order(n_rows, len(cells10), rows_per_tile)
            tiles = np.unique(np.concatenate(cells) >> (2 * (scan_order - tile_order)))
            del cells

            def job(t, margin, radii=(), graph_r=0.0):
                return TileJob(tile_order, int(t), margin, graph_r, tuple(dirs), tuple(parts),
                               surveys, radii, tuple(direct))  # fmt: skip

            if callable(plan):
                edges = separation_edges(search_radius_arcsec, N_BINS)
                tasks = [
                    dask.delayed(tile_histograms)(
                        job(t, search_radius_arcsec), search_radius_arcsec, edges
                    )  # fmt: skip
                    for t in tiles
                ]
                hist = _compute(tasks, f"separation histograms of {len(tasks)} tiles", client,
                                progress)  # fmt: skip
                plan = plan(list(np.sum(hist, axis=0)))
            radii = tuple(float(r) for r in plan.radii_arcsec)
            graph_r = max(max(radii[1:], default=0.0), _MIN_GRAPH_RADIUS_ARCSEC)
            margin = MARGIN_FACTOR * graph_r
            mocs = [p.moc for p in inputs]
            build = functools.partial(_build, surveys=surveys, mocs=mocs, rule=rule, plan=plan,
                                      bayes_on=bayes_on)  # fmt: skip
            todo = [int(t) for t in tiles]
            m = margin
            while todo:
                rounds += 1
                tasks = [
                    dask.delayed(process_tile)(
                        job(t, m, radii, graph_r), str(ml_path), str(assoc_dir), build
                    )  # fmt: skip
                    for t in todo
                ]
                out = _compute(tasks, f"merging {len(tasks)} tiles (round {rounds})", client,
                               progress)  # fmt: skip
                todo = []
                for r in out:
                    if r["rerun"]:
                        todo.append(r["pixel"])
                    else:
                        results[r["pixel"]] = r
                # A longer chain than the margin: widen it for those tiles only.
                m *= 2.0
                if m > 360 * 3600 * 4:  # pragma: no cover - the whole sky is loaded long before
                    raise RuntimeError("tiled merge did not converge")
    # A worker killed while writing leaves a temporary file; its tile was written again.
    for leftover in [*ml_path.rglob(".*"), *assoc_dir.glob(".*")]:
        leftover.unlink(missing_ok=True)
    written = [(tile_order, p) for p, r in sorted(results.items()) if r["n"] > 0]
    counts = [results[p]["n"] for _, p in written]
    histogram = np.zeros(12 * 4**_SKYMAP_ORDER, dtype=np.int64)
    for r in results.values():
        for cell, c in r["histogram"].items():
            histogram[cell] += c
    if written:
        finalize_hats(
            ml_path,
            written,
            counts,
            histogram,
            catalog_name=ml_path.name,
            skymap_order=_SKYMAP_ORDER,
        )
    info = {
        "engine": "tiled",
        "tile_order": tile_order,
        "n_tiles": int(len(tiles)),
        "margin_arcsec": margin,
        "graph_radius_arcsec": graph_r,
        "rounds": rounds,
        "scheduler": resolve_scheduler(scheduler) or "local threads",
        "rows_per_tile": rows_per_tile,
        "worker_memory_limit": memory_limit,
    }
    return int(sum(counts)), info


def _build(assoc, frames, *, surveys, mocs, rule, plan, bayes_on):
    """Masterlist and association rows of a tile's merged objects (its frames carry the
    helper columns ``_row``, ``_ra``, ``_dec``, ``_pos_err``)."""
    preps = [
        Prepared(s, f, f["_ra"].to_numpy(), f["_dec"].to_numpy(), None,
                 f["_pos_err"].to_numpy() if "_pos_err" in f.columns else None, moc)
        for s, f, moc in zip(surveys, frames, mocs)
    ]  # fmt: skip
    clean = [
        dataclasses.replace(
            pp,
            frame=pp.frame.drop(
                columns=["_row", "_ra", "_dec", "_pos_err", SPATIAL_INDEX_COLUMN],
                errors="ignore",
            ),
        )
        for pp in preps
    ]
    return build_objects(assoc, clean, rule=rule, plan=plan, bayes_on=bayes_on)
