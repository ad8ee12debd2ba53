"""HEALPix (NESTED) index helpers for positional queries, built on :mod:`cdshealpix` (pure).

A published table carries a hidden BIGINT column with the NESTED HEALPix index of its (ra, dec)
at ``index_order`` (14 by default, 12.9 arcsec cells). A cone or polygon is turned into a short
list of inclusive ``[lo, hi]`` ranges of that index that together cover the region: the ranges
may include extra cells (an exact test follows in SQL) but never miss a covered point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
import cdshealpix.nested as _nested
import numpy as np
from astropy.coordinates import Latitude, Longitude

from skysense._check import check_positions
from skysense.errors import InputError
from skysense.healpix import nested_index

__all__ = [
    "MAX_ORDER",
    "hpx_index",
    "cone_ranges",
    "polygon_ranges",
    "circle_cells",
    "circle_cell_keys",
    "neighbour_depth",
    "merge_ranges",
    "cap_ranges",
    "depth_for_radius",
    "cell_size_deg",
    "BLOCK_ORDER",
    "BLOCK_COLUMN",
    "BlockIndex",
    "block_seq_base",
]

try:  # the compiled module of cdshealpix (see _cone_cells); absent in other layouts
    from cdshealpix.cdshealpix import cone_search as _raw_cone_search
except ImportError:  # pragma: no cover - depends on the cdshealpix build
    _raw_cone_search = None

#: Deepest order cdshealpix supports.
MAX_ORDER = 29

#: Sqrt of the HEALPix order-0 cell area in degrees (sqrt(4 pi / 12) rad).
_SIZE0_DEG = math.degrees(math.sqrt(4 * math.pi / 12))


def _flat_positions(ra_arr, dec_arr) -> tuple[np.ndarray, np.ndarray]:
    """``ra_arr``, ``dec_arr`` as flat float64 arrays of one shape (deg)."""
    ra = np.asarray(ra_arr, dtype=np.float64).ravel()
    dec = np.asarray(dec_arr, dtype=np.float64).ravel()
    if ra.shape != dec.shape:
        raise InputError(f"ra_arr and dec_arr differ in shape: {ra.shape} vs {dec.shape}")
    return ra, dec


def _check_order(order: int, name: str = "index_order") -> int:
    if isinstance(order, bool) or not isinstance(order, int | np.integer):
        raise InputError(f"{name} must be an integer, got {order!r}")
    if not 0 <= int(order) <= MAX_ORDER:
        raise InputError(f"{name} must be in [0, {MAX_ORDER}], got {order}")
    return int(order)


def cell_size_deg(order: int) -> float:
    """Nominal size (square root of the area) of a HEALPix cell at ``order``, in degrees."""
    return _SIZE0_DEG / 2.0 ** _check_order(order, "order")


def hpx_index(ra_deg, dec_deg, order: int = 14) -> np.ndarray:
    """NESTED HEALPix index of positions.

    Parameters
    ----------
    ra_deg, dec_deg : array_like (n,), deg
        ICRS positions. RA is wrapped into [0, 360); Dec must be in [-90, 90] and finite.
    order : int
        HEALPix order (depth), 0..29.

    Returns
    -------
    ndarray (n,), int64
        Cell indices.

    Raises
    ------
    InputError
        On shape mismatch, non-finite values or |Dec| > 90.
    """
    order = _check_order(order, "order")
    ra, dec = check_positions(
        np.atleast_1d(ra_deg), np.atleast_1d(dec_deg), columns=("ra_deg", "dec_deg")
    )
    return nested_index(ra, dec, order)


def merge_ranges(ranges: np.ndarray) -> np.ndarray:
    """Sort inclusive ``[lo, hi]`` ranges and merge overlapping or adjacent ones.

    Parameters
    ----------
    ranges : ndarray (n, 2), int64

    Returns
    -------
    ndarray (m, 2), int64, m <= n
    """
    r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if len(r) == 0:
        return r.copy()
    r = r[np.argsort(r[:, 0], kind="stable")]
    # A new group starts where lo exceeds the running maximum of hi (+1 for adjacency).
    run_hi = np.maximum.accumulate(r[:, 1])
    start = np.ones(len(r), dtype=bool)
    start[1:] = r[1:, 0] > run_hi[:-1] + 1
    groups = np.cumsum(start) - 1
    lo = r[start, 0]
    hi = np.zeros(len(lo), dtype=np.int64)
    np.maximum.at(hi, groups, r[:, 1])
    return np.stack([lo, hi], axis=1)


def cap_ranges(ranges: np.ndarray, max_ranges: int) -> np.ndarray:
    """Reduce sorted, merged ranges to at most ``max_ranges`` by closing the smallest gaps.

    The result covers a superset of the input (no covered index is lost).
    """
    r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if max_ranges < 1:
        raise InputError("max_ranges must be >= 1")
    if len(r) <= max_ranges:
        return r
    gaps = r[1:, 0] - r[:-1, 1]
    # Keep the (max_ranges - 1) largest gaps; close all the others.
    keep = np.zeros(len(gaps), dtype=bool)
    keep[np.argsort(gaps, kind="stable")[len(gaps) - (max_ranges - 1) :]] = True
    start = np.concatenate([[True], keep])
    end = np.concatenate([keep, [True]])
    return np.stack([r[start, 0], r[end, 1]], axis=1)


def depth_for_radius(radius_deg: float, index_order: int) -> int:
    """Search depth whose cells are about as large as ``radius_deg`` (at most ``index_order``)."""
    if radius_deg <= _SIZE0_DEG * 2.0**-60:
        # Far below the finest order (and a subnormal radius would overflow the ratio).
        return index_order
    d = int(math.floor(math.log2(_SIZE0_DEG / radius_deg))) + 1
    return max(0, min(index_order, d))


def _cells_to_ranges(ipix: np.ndarray, depth: np.ndarray, index_order: int) -> np.ndarray:
    ipix = np.asarray(ipix, dtype=np.int64)
    shift = 2 * (index_order - np.asarray(depth, dtype=np.int64))
    if ipix.size <= _SMALL:
        # A cone search gives a dozen cells: plain Python beats a dozen NumPy calls on tiny
        # arrays (~20 us against ~150 us); the result is the same as merge_ranges'.
        pairs = sorted((p << k, ((p + 1) << k) - 1) for p, k in zip(ipix.tolist(), shift.tolist()))
        merged: list[list[int]] = []
        for lo, hi in pairs:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return np.array(merged, dtype=np.int64).reshape(-1, 2)
    lo = ipix << shift
    hi = ((ipix + 1) << shift) - 1
    return merge_ranges(np.stack([lo, hi], axis=1))


_SMALL = 64


def _full_sky(index_order: int) -> np.ndarray:
    return np.array([[0, 12 * 4**index_order - 1]], dtype=np.int64)


def cone_ranges(
    ra: float, dec: float, radius_deg: float, index_order: int = 14, *, max_ranges: int = 48
) -> np.ndarray:
    """Index ranges covering a cone.

    Parameters
    ----------
    ra, dec : float, deg
        Centre (ICRS).
    radius_deg : float, deg
        Radius; >= 180 covers the whole sky, < 0 covers nothing.
    index_order : int
        Order of the indexed column.
    max_ranges : int
        At most this many ranges are returned (small gaps are closed to stay below it).

    Returns
    -------
    ndarray (n, 2), int64
        Inclusive ``[lo, hi]`` ranges at ``index_order``, sorted and disjoint.
    """
    index_order = _check_order(index_order)
    ra, dec, radius_deg = float(ra), float(dec), float(radius_deg)
    if not (math.isfinite(ra) and math.isfinite(dec) and math.isfinite(radius_deg)):
        raise InputError("cone centre and radius must be finite")
    if abs(dec) > 90:
        raise InputError(f"cone centre dec {dec} outside [-90, 90]")
    if radius_deg < 0:
        return np.zeros((0, 2), dtype=np.int64)
    if radius_deg >= 90:
        # A cap of half the sky or more gains nothing from an index (and cdshealpix' cone
        # coverage is not reliable for such caps): the whole sky.
        return _full_sky(index_order)
    # cdshealpix refines to depth + 2 (below) and panics past order 29 (a Rust panic, a
    # BaseException that took the server down): tiny cones on an order-29 index (HATS'
    # _healpix_29) stop two orders short, a superset of the same cells.
    depth = min(depth_for_radius(radius_deg, index_order), MAX_ORDER - 2)
    # cdshealpix' cone coverage is approximate. For small cones it errs outwards (a tiny
    # margin guards against rounding at the edge), but a cone of many degrees can lose a cell
    # it clips by tenths of a degree (cdshealpix 0.9: r = 17.8 deg at (8, 12.5) misses depth-2
    # cell 10 up to r = 18.4 deg). A 5% margin on cones over 1 deg costs little next to their
    # own size and leaves the hot small-cone path as it was.
    pad_rel = 0.05 if radius_deg > 1.0 else 1e-9
    radius_pad = radius_deg * (1 + pad_rel) + 1e-9
    try:
        ipix, depths = _cone_cells(ra % 360.0, dec, radius_pad, depth)
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise InputError(f"cannot cover the cone ({ra}, {dec}, r={radius_deg} deg)") from None
    return cap_ranges(_cells_to_ranges(ipix, depths, index_order), max_ranges)


def _is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic of cdshealpix: pyo3's PanicException is a
    BaseException that no ``except Exception`` of the server catches (one odd region took
    the server's event loop down), so region code turns it into an InputError."""
    return type(exc).__name__ == "PanicException"


def _cone_cells(ra: float, dec: float, radius_deg: float, depth: int):
    """cdshealpix' cone coverage (MOC cells and their depths) of one cone, in degrees."""
    if _raw_cone_search is not None:
        # The compiled function behind cdshealpix.nested.cone_search, called with the same
        # arguments (radians, depth_delta=2, flat=False) without building astropy angles and
        # quantities first (~95 us of a ~270 us cone translation).
        ipix, depths, _ = _raw_cone_search(
            np.uint8(depth),
            np.uint8(2),
            np.float64(math.radians(ra)),
            np.float64(math.radians(dec)),
            np.float64(math.radians(radius_deg)),
            False,
        )
        return ipix, depths
    ipix, depths, _ = _nested.cone_search(
        Longitude(ra, u.deg), Latitude(dec, u.deg), radius_deg * u.deg, depth
    )
    return ipix, depths


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra = np.radians(ra_deg)
    dec = np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def bounding_cone(ra_vertices, dec_vertices) -> tuple[float, float, float]:
    """A cone (ra, dec, radius_deg) containing a spherical polygon that fits in a hemisphere.

    Centre: the normalised mean of the vertex unit vectors; radius: the largest vertex distance.
    A cap of radius < 90 deg is geodesically convex, so containing the vertices it contains
    the great-circle edges and the polygon.
    """
    v = _unit_vectors(np.asarray(ra_vertices, float), np.asarray(dec_vertices, float))
    c = v.sum(axis=0)
    norm = np.linalg.norm(c)
    if norm < 1e-12:
        return 0.0, 90.0, 180.0
    c /= norm
    cos_r = np.clip(v @ c, -1, 1).min()
    radius = math.degrees(math.acos(cos_r))
    ra_c = math.degrees(math.atan2(c[1], c[0])) % 360.0
    dec_c = math.degrees(math.asin(np.clip(c[2], -1, 1)))
    return ra_c, dec_c, radius


def polygon_ranges(
    ra_vertices, dec_vertices, index_order: int = 14, *, max_ranges: int = 48
) -> np.ndarray:
    """Index ranges covering a spherical polygon (great-circle edges).

    The polygon is the smaller of the two regions its edges bound (either vertex orientation).

    Parameters
    ----------
    ra_vertices, dec_vertices : array_like (k,), deg
        Vertices, k >= 3.
    index_order : int
        Order of the indexed column.
    max_ranges : int
        At most this many ranges.

    Returns
    -------
    ndarray (n, 2), int64
        Inclusive ``[lo, hi]`` ranges at ``index_order``, sorted and disjoint.
    """
    index_order = _check_order(index_order)
    ra_v = np.asarray(ra_vertices, dtype=np.float64).ravel()
    dec_v = np.asarray(dec_vertices, dtype=np.float64).ravel()
    if ra_v.shape != dec_v.shape or ra_v.size < 3:
        raise InputError("a polygon needs at least 3 vertices with both ra and dec")
    ra_v, dec_v = check_positions(ra_v, dec_v, label="polygon vertex")
    ra_c, dec_c, radius = bounding_cone(ra_v, dec_v)
    # The bounding cone is a safe cover whatever the polygon. For small polygons the polygon
    # coverage of cdshealpix is tighter, but it is approximate (for large polygons it was seen
    # to miss cells): it is only used below _POLY_SEARCH_MAX_DEG, grown by one ring of
    # neighbouring cells, and intersected with the cone.
    cone = cone_ranges(ra_c, dec_c, radius, index_order, max_ranges=10_000)
    if radius >= _POLY_SEARCH_MAX_DEG:
        return cap_ranges(cone, max_ranges)
    depth = depth_for_radius(radius, index_order) + 1
    depth = min(depth, index_order)
    try:
        ipix, _, _ = _nested.polygon_search(
            Longitude(np.mod(ra_v, 360.0), u.deg), Latitude(dec_v, u.deg), depth, flat=True
        )
    except (ValueError, IndexError, RuntimeError):
        return cap_ranges(cone, max_ranges)
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        return cap_ranges(cone, max_ranges)
    cells = np.asarray(ipix, dtype=np.uint64)
    if cells.size == 0:
        return cap_ranges(cone, max_ranges)
    ring = np.asarray(_nested.neighbours(cells, depth), dtype=np.int64).ravel()
    cells = np.unique(np.concatenate([cells.astype(np.int64), ring[ring >= 0]]))
    poly = _cells_to_ranges(cells, np.full(cells.shape, depth), index_order)
    return cap_ranges(_intersect_ranges(cone, poly), max_ranges)


#: Largest bounding-cone radius (deg) for which cdshealpix' polygon coverage is used.
_POLY_SEARCH_MAX_DEG = 5.0


def _intersect_ranges(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted disjoint inclusive range lists."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return merge_ranges(np.array(out, dtype=np.int64).reshape(-1, 2))


def circle_cells(
    ra_arr, dec_arr, radius_deg: float, index_order: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index ranges covering a circle around each of many positions (upload cross-matches).

    Parameters
    ----------
    ra_arr, dec_arr : array_like (n,), deg
        Circle centres; rows with non-finite values get no ranges.
    radius_deg : float, deg
        Common radius.
    index_order : int
        Order of the indexed column.

    Returns
    -------
    row, lo, hi : ndarray (m,), int64
        For each output range: the 0-based input row and the inclusive index range. Ranges of
        one row are disjoint, so an indexed point falls in at most one range per row.
    """
    index_order = _check_order(index_order)
    ra, dec = _flat_positions(ra_arr, dec_arr)
    radius_deg = float(radius_deg)
    if not math.isfinite(radius_deg):
        raise InputError("radius_deg must be finite")
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    rows_ok = np.flatnonzero(ok)
    empty = np.zeros(0, dtype=np.int64)
    if radius_deg < 0 or rows_ok.size == 0:
        return empty, empty.copy(), empty.copy()
    depth = neighbour_depth(radius_deg, index_order)
    if depth is None:
        return _circle_cells_loop(ra, dec, rows_ok, radius_deg, index_order)
    row, cell = _neighbour_cells(ra, dec, rows_ok, depth)
    shift = 2 * (index_order - depth)
    lo = cell << shift
    hi = ((cell + 1) << shift) - 1
    # Merge per row (rows are sorted, cells sorted within a row): join adjacent ranges.
    start = np.ones(len(row), dtype=bool)
    start[1:] = (row[1:] != row[:-1]) | (lo[1:] > hi[:-1] + 1)
    grp = np.cumsum(start) - 1
    out_hi = np.zeros(int(grp[-1]) + 1 if len(grp) else 0, dtype=np.int64)
    np.maximum.at(out_hi, grp, hi)
    return row[start].astype(np.int64), lo[start], out_hi


def circle_cell_keys(
    ra_arr, dec_arr, radius_deg: float, index_order: int = 14
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """HEALPix cells at one depth covering a circle around each of many positions.

    The equality-join form of :func:`circle_cells` for upload cross-matches: an indexed point
    at ``index_order`` lies in a row's circle only if its index shifted right by
    ``2 * (index_order - depth)`` bits is one of that row's cells, so the database can hash-join
    on cell equality instead of testing index ranges.

    Parameters
    ----------
    ra_arr, dec_arr : array_like (n,), deg
        Circle centres; rows with non-finite values or |dec| > 90 get no cells.
    radius_deg : float, deg
        Common radius, >= 0.
    index_order : int
        Order of the indexed column.

    Returns
    -------
    (row, cell, depth) or None
        ``row`` (m,) int64 0-based input rows, sorted; ``cell`` (m,) int64 NESTED cells at
        ``depth`` (distinct within a row); ``depth`` <= ``index_order``. None when the circle is
        too large for the 3x3 neighbourhood cover (:func:`neighbour_depth` is None).
    """
    index_order = _check_order(index_order)
    ra, dec = _flat_positions(ra_arr, dec_arr)
    radius_deg = float(radius_deg)
    if not math.isfinite(radius_deg) or radius_deg < 0:
        raise InputError("radius_deg must be finite and >= 0")
    depth = neighbour_depth(radius_deg, index_order)
    if depth is None:
        return None
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    row, cell = _neighbour_cells(ra, dec, np.flatnonzero(ok), depth)
    return row, cell, depth


def _neighbour_cells(ra, dec, rows_ok, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, cell): each row's centre cell at ``depth`` and its neighbours, sorted, distinct.

    At a depth from :func:`neighbour_depth` the circle stays inside the 3x3 block of cells
    around its centre cell (the radius is well below the narrowest cell width), so these cells
    cover it.
    """
    if rows_ok.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    centre = hpx_index(ra[rows_ok], dec[rows_ok], depth).astype(np.uint64)
    nb = np.asarray(_nested.neighbours(centre, depth), dtype=np.int64)  # (n, 9), -1 = none
    row = np.repeat(rows_ok.astype(np.int64), nb.shape[1])
    cell = nb.ravel()
    keep = cell >= 0
    row, cell = row[keep], cell[keep]
    order = np.lexsort((cell, row))
    row, cell = row[order], cell[order]
    # Near the corners of the 12 base cells a neighbour can repeat; keep each cell once.
    first = np.ones(len(row), dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (cell[1:] != cell[:-1])
    return row[first], cell[first]


# Ratio between the nominal cell size and the radius that keeps a circle inside the 3x3
# neighbourhood of its centre cell everywhere on the sphere (HEALPix cells are never thinner
# than about half their nominal size; a factor 4 leaves a wide margin).
_NEIGHBOUR_FACTOR = 4.0


def neighbour_depth(radius_deg: float, index_order: int) -> int | None:
    """Depth at which a circle of ``radius_deg`` lies inside the 3x3 cells around its centre.

    None for circles too large for that cover (radius above about 2 deg); otherwise at most
    ``index_order``.
    """
    if radius_deg <= _SIZE0_DEG * 2.0**-60:
        # Far below the finest order (and a subnormal radius would overflow the ratio).
        return index_order
    d = int(math.floor(math.log2(_SIZE0_DEG / (_NEIGHBOUR_FACTOR * radius_deg))))
    if d < 3:
        return None  # large circles: per-row cone coverage
    return min(index_order, d)


def _circle_cells_loop(ra, dec, rows_ok, radius_deg, index_order):
    rows, los, his = [], [], []
    for i in rows_ok:
        r = cone_ranges(ra[i], dec[i], radius_deg, index_order, max_ranges=64)
        rows.append(np.full(len(r), i, dtype=np.int64))
        los.append(r[:, 0])
        his.append(r[:, 1])
    return np.concatenate(rows), np.concatenate(los), np.concatenate(his)


#: HEALPix order of the blocks of an incrementally published table: 3.4 arcmin cells, some 450
#: rows at HELP's density, 300,000 blocks for 1,000 deg^2. Measured on 8 interleaved fields:
#: order 8 blocks left a cone a median 2 row groups (cells shared by neighbouring fields),
#: orders 9, 10 and 12 one.
BLOCK_ORDER = 10

#: The hidden column of a row's block identifier (:func:`block_seq_base`).
BLOCK_COLUMN = "_blk"


def block_seq_base(seq: int) -> int:
    """The first block identifier of publish number ``seq``.

    A block is the rows of one publish (one field) in one :data:`BLOCK_ORDER` cell; its
    identifier is ``seq * 2**32 + cell + 1`` (``seq * 2**32`` for rows without a position;
    12 * 4**14 cells fit in 32 bits), so identifiers grow with the physical order of an
    append-only table whose fields are each stored sorted by the HEALPix index.
    """
    return int(seq) << 32


@dataclass(frozen=True)
class BlockIndex:
    """The blocks of a table (identifier and the ``[lo, hi]`` of their HEALPix index).

    Why: a table published field by field is sorted within each field only. A field's
    footprint is not one interval of the NESTED index, so a row group of one field that
    straddles a gap of its own index spans other fields' cells, and a cone there reads it
    (at 100M rows in 20 fields, a median 10 row groups per cone). Block identifiers grow
    along the physical order, so the row groups' min/max of the block column never overlap;
    a cone asks only for the blocks that hold rows in its ranges and reads only the row
    groups that store those rows.

    Chosen over the alternatives: cutting each field's row groups at the gaps of its index
    cannot be done on DuckDB (an insert does not choose its row-group boundaries, and a
    checkpoint merges small groups), and rewriting the table into one global order (one row
    group per cone too; 178 s for 100M rows) rewrites every field at every publish, or
    leaves cones slow until a separate compaction runs. Blocks cost a BIGINT column and a
    small index table, and keep publishing incremental.

    Parameters
    ----------
    ids, lo, hi : ndarray (n,), int64
        Block identifiers and the smallest and largest HEALPix index of their rows (any
        order; identifiers may repeat).
    """

    ids: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self):
        ids = np.asarray(self.ids, dtype=np.int64).ravel()
        lo = np.asarray(self.lo, dtype=np.int64).ravel()
        hi = np.asarray(self.hi, dtype=np.int64).ravel()
        if not (ids.shape == lo.shape == hi.shape):
            raise InputError("block ids, lo and hi differ in length")
        order = np.argsort(lo, kind="stable")
        object.__setattr__(self, "lo", lo[order])
        object.__setattr__(self, "hi", hi[order])
        object.__setattr__(self, "ids", ids[order])
        object.__setattr__(self, "_sorted_ids", np.unique(ids))
        width = int((hi - lo).max()) if len(lo) else 0
        object.__setattr__(self, "_width", max(width, 0))

    def __len__(self) -> int:
        return len(self._sorted_ids)

    def block_ranges(self, ranges: np.ndarray, max_ranges: int = 16) -> np.ndarray:
        """Inclusive ``[first, last]`` block-identifier ranges holding every row whose index
        falls in ``ranges``.

        Blocks that are neighbours among the table's identifiers merge into one range (no
        other block lies between them); beyond ``max_ranges`` the ranges with the fewest
        blocks between them are joined (:func:`cap_ranges`), which only adds blocks.

        Parameters
        ----------
        ranges : ndarray (m, 2), int64
            Inclusive HEALPix index ranges (e.g. :func:`cone_ranges`).
        max_ranges : int
            At most this many ranges are returned.

        Returns
        -------
        ndarray (k, 2), int64
            Empty when no block has a row in ``ranges``.
        """
        r = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
        if len(r) == 0 or len(self.lo) == 0:
            return np.zeros((0, 2), dtype=np.int64)
        # Candidates: lo in [a - width, b] (no block is wider than width); keep hi >= a.
        i0 = np.searchsorted(self.lo, r[:, 0] - self._width, side="left")
        i1 = np.searchsorted(self.lo, r[:, 1], side="right")
        counts = np.maximum(i1 - i0, 0)
        total = int(counts.sum())
        if total == 0:
            return np.zeros((0, 2), dtype=np.int64)
        starts = np.cumsum(counts) - counts
        idx = np.arange(total) - np.repeat(starts, counts) + np.repeat(i0, counts)
        hit = self.hi[idx] >= np.repeat(r[:, 0], counts)
        pos = np.unique(np.searchsorted(self._sorted_ids, self.ids[idx[hit]]))
        if len(pos) == 0:
            return np.zeros((0, 2), dtype=np.int64)
        runs = merge_ranges(np.stack([pos, pos], axis=1))
        runs = cap_ranges(runs, max_ranges)
        return np.stack([self._sorted_ids[runs[:, 0]], self._sorted_ids[runs[:, 1]]], axis=1)
