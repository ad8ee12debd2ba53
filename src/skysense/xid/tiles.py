"""Pure tiling of a prior catalogue for XID+ (no files, no Dask): HEALPix cells or RA/Dec boxes.

A large field is cut into NESTED HEALPix cells. Each tile is fitted with the sources of its
cell plus a buffer ring (sources and pixels within ``buffer_arcsec`` of the cell), so that
sources near the edge are de-blended against their neighbours; only the cell's own sources
are kept in the joined catalogue, so every prior source is reported once.

By default the tiles adapt to the source density (:func:`adaptive_tiles`): a cell is split
into its four children while it holds more than the target (about 600 prior sources for
SPIRE), then runs of sibling cells are joined again into the groups closest to the target
(in ratio), so tiles hold from about half to 1.5 times the target wherever the field is
covered. One fixed order cannot do this: cells grow by factors of 4 from one order to the
next, and a dense patch and a sparse one need different orders.

Boxes (``make_tiles(..., shape="box")``, :func:`box_tiles`; the default of
:func:`skysense.xid.engine.fit_tiles`) are Dec strips of equal counts cut in RA into boxes of
equal counts. A map's pixel grid is aligned with RA/Dec and the confusion field is drawn by
FFTs over the bounding box of a tile's pixels, which a box fills and a HEALPix cell (a
diamond at low latitude) only half fills.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np

from skysense.errors import InputError

__all__ = [
    "Tile",
    "adaptive_cells",
    "adaptive_tiles",
    "choose_order",
    "box_moc",
    "box_tiles",
    "make_tiles",
    "tile_moc",
    "cells_moc",
    "cell_size_arcsec",
]

#: finest tile order (cells of about 26 arcsec): below that a buffer ring dwarfs the cell
MAX_ORDER = 13


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile: one or more NESTED HEALPix cells (siblings of one parent).

    Attributes
    ----------
    order, pixel : int - the first (or only) cell of the tile
    own : ndarray (n_own,), int - prior rows inside the tile's cells (kept in the output)
    fit : ndarray (n_fit,), int - prior rows fitted (own + buffer), ``own`` first
    buffer_arcsec : float
    cells : tuple of (order, pixel), all cells of the tile (default: the one cell)
    """

    order: int
    pixel: int
    own: np.ndarray
    fit: np.ndarray
    buffer_arcsec: float
    cells: tuple = ()
    #: box tiles (:func:`box_tiles`): (ra_min, ra_max, dec_min, dec_max) of the own region, deg
    #: (``order`` is -1 and ``pixel`` the tile's index; ``cells`` empty)
    box: tuple | None = None

    @property
    def all_cells(self) -> tuple:
        return self.cells or ((self.order, self.pixel),)

    @property
    def name(self) -> str:
        if self.box is not None:
            # the index and a digest of the box: a restart skips tiles by name, and the index
            # alone would name another box after the tiling changed (another sources_per_tile
            # or prior), whose stale file would then be joined (sources twice or missing)
            edges = ",".join(f"{v:.9f}" for v in self.box)
            return f"b{self.pixel}_" + hashlib.sha1(edges.encode()).hexdigest()[:8]
        n = len(self.all_cells)
        return f"o{self.order}_p{self.pixel}" + (f"_n{n}" if n > 1 else "")

    def moc(self, buffer_arcsec: float | None = None):
        """mocpy MOC of the tile's cells (or box) grown by the buffer ring (``buffer_arcsec``,
        default the tile's own: a narrower ring for the pixels of a band with a small beam)."""
        buf = self.buffer_arcsec if buffer_arcsec is None else buffer_arcsec
        if self.box is not None:
            return box_moc(self.box, buf)
        return cells_moc(self.all_cells, buf)


def cell_size_arcsec(order: int) -> float:
    """Typical side of a HEALPix cell of ``order``, arcsec."""
    return math.sqrt(4 * math.pi / (12 * 4**order)) * 180 / math.pi * 3600


def _cells(ra_deg, dec_deg, order):
    import astropy.units as u
    from cdshealpix.nested import lonlat_to_healpix

    return np.asarray(
        lonlat_to_healpix(np.asarray(ra_deg) * u.deg, np.asarray(dec_deg) * u.deg, order)
    ).astype(np.int64)


def adaptive_cells(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    sources_per_tile: int = 600,
    *,
    max_order: int = MAX_ORDER,
) -> tuple[np.ndarray, np.ndarray]:
    """The (order, pixel) of the leaf cell of every source: split while above the target.

    A source's leaf is its cell at the coarsest order where that cell holds at most
    ``sources_per_tile`` sources. The cells are nested, so all sources of one leaf get the
    same order and leaves never overlap. Deterministic.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray (n,), deg
    sources_per_tile : int - target number of sources per tile
    max_order : int - never split below this order

    Returns
    -------
    order, pixel : ndarray (n,), int - NESTED HEALPix leaf cell of each source
    """
    if sources_per_tile < 1:
        raise InputError(f"sources_per_tile must be >= 1, got {sources_per_tile}")
    n = np.size(ra_deg)
    order = np.full(n, -1, dtype=np.int64)
    pixel = np.zeros(n, dtype=np.int64)
    for o in range(0, max_order + 1):
        todo = np.flatnonzero(order < 0)
        if todo.size == 0:
            break
        cells = _cells(np.asarray(ra_deg)[todo], np.asarray(dec_deg)[todo], o)
        _, inv, counts = np.unique(cells, return_inverse=True, return_counts=True)
        done = (counts[inv] <= sources_per_tile) | (o == max_order)
        order[todo[done]] = o
        pixel[todo[done]] = cells[done]
    return order, pixel


def _best_partition(counts: list[int], target: float) -> list[list[int]]:
    """Split a run of counts into contiguous groups minimising sum (log(size / target))^2."""
    m = len(counts)
    best, best_cost = None, math.inf
    for mask in range(2 ** (m - 1)):  # m <= 4 siblings: at most 8 partitions
        groups, cur = [], [0]
        for i in range(1, m):
            if mask >> (i - 1) & 1:
                groups.append(cur)
                cur = [i]
            else:
                cur.append(i)
        groups.append(cur)
        cost = sum(math.log(sum(counts[i] for i in g) / target) ** 2 for g in groups)
        if cost < best_cost - 1e-12:
            best, best_cost = groups, cost
    return best


def adaptive_tiles(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    sources_per_tile: int = 600,
    *,
    max_order: int = MAX_ORDER,
) -> np.ndarray:
    """Density-adapted tiles: the tile index of every source (and the cells of each tile).

    Leaves from :func:`adaptive_cells` (at most ``sources_per_tile`` each); then each run
    of sibling leaves (cells of one parent, in NESTED order, not interrupted by a sibling
    that was split further) is cut into the contiguous groups whose sizes are closest to the
    target in the least-squares log-ratio sense: one tile of 1.1 x target stays one, 1.6 x
    becomes two of 0.8.

    Returns
    -------
    tile : ndarray (n,), int - tile index of each source
    cells : list of tuple of (order, pixel) - the cells of each tile
    """
    order, pixel = adaptive_cells(ra_deg, dec_deg, sources_per_tile, max_order=max_order)
    leaf_keys, inv, counts = np.unique(
        np.stack([order, pixel], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    inv = inv.ravel()
    leaves = {(int(o), int(p)): int(c) for (o, p), c in zip(leaf_keys, counts)}
    internal = set()  # ancestors of leaves: cells that were split
    for o, p in leaves:
        for k in range(o):
            internal.add((k, p >> (2 * (o - k))))
    parents: dict = {}
    for o, p in leaves:
        parents.setdefault((o - 1, p >> 2) if o > 0 else (-1, p), []).append((o, p))
    groups_of_leaf = {}
    tiles_cells = []
    for (po, pp), kids in sorted(parents.items()):
        if po < 0:  # order-0 cells have no parent
            runs = [[k] for k in kids]
        else:
            runs, cur = [], []
            for c in range(4):
                cell = (po + 1, 4 * pp + c)
                if cell in leaves:
                    cur.append(cell)
                elif cell in internal and cur:  # a split sibling separates the runs
                    runs.append(cur)
                    cur = []
            if cur:
                runs.append(cur)
        for run in runs:
            for g in _best_partition([leaves[c] for c in run], float(sources_per_tile)):
                cells = tuple(run[i] for i in g)
                for c in cells:
                    groups_of_leaf[c] = len(tiles_cells)
                tiles_cells.append(cells)
    leaf_tile = np.array([groups_of_leaf[(int(o), int(p))] for o, p in leaf_keys])
    return leaf_tile[inv], tiles_cells


def choose_order(ra_deg: np.ndarray, dec_deg: np.ndarray, sources_per_tile: int = 600) -> int:
    """The finest order whose occupied cells hold at least ``sources_per_tile`` on average.

    Falls back to order 0... at worst; capped at order 13 (about 26 arcsec cells).
    """
    best = 0
    for order in range(0, 14):
        _, counts = np.unique(_cells(ra_deg, dec_deg, order), return_counts=True)
        if counts.mean() >= sources_per_tile:
            best = order
        else:
            break
    return best


def cells_moc(cells, buffer_arcsec: float):
    """mocpy MOC of the union of ``cells`` ((order, pixel) pairs) grown by ``buffer_arcsec``."""
    moc = None
    for o, p in cells:
        m = tile_moc(int(o), int(p), buffer_arcsec)
        moc = m if moc is None else moc.union(m)
    return moc


def tile_moc(order: int, pixel: int, buffer_arcsec: float):
    """mocpy MOC of a cell grown by ``buffer_arcsec`` (to within a quarter of the buffer)."""
    from mocpy import MOC

    if buffer_arcsec <= 0:
        return MOC.from_healpix_cells(np.array([pixel]), np.array([order]), max_depth=order)
    # grow in steps of cells of about a quarter of the buffer, never coarser than the tile
    depth = order
    while cell_size_arcsec(depth) > buffer_arcsec / 4 and depth < 29:
        depth += 1
    moc = MOC.from_healpix_cells(np.array([pixel]), np.array([order]), max_depth=depth)
    for _ in range(max(1, math.ceil(buffer_arcsec / cell_size_arcsec(depth)))):
        moc = moc.add_neighbours()
    return moc


def _grown_box(box, buffer_arcsec: float):
    """A box (ra_min, ra_max, dec_min, dec_max, deg) grown by ``buffer_arcsec`` on every side
    (in RA by the buffer over cos(dec) at the box's edge nearest a pole)."""
    ra0, ra1, de0, de1 = box
    b = buffer_arcsec / 3600.0
    cos = math.cos(math.radians(min(max(abs(de0), abs(de1)) + b, 89.9)))
    return ra0 - b / cos, ra1 + b / cos, max(de0 - b, -90.0), min(de1 + b, 90.0)


def box_moc(box, buffer_arcsec: float):
    """mocpy MOC of an RA/Dec box (ra_min, ra_max, dec_min, dec_max, deg) grown by
    ``buffer_arcsec``, to within a quarter of the buffer (or a 16th of the box's side)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from mocpy import MOC

    ra0, ra1, de0, de1 = _grown_box(box, buffer_arcsec)
    side = min((ra1 - ra0) * math.cos(math.radians(0.5 * (de0 + de1))), de1 - de0) * 3600.0
    step = buffer_arcsec / 4.0 if buffer_arcsec > 0 else side / 16.0
    depth = 0
    while cell_size_arcsec(depth) > max(step, 0.5) and depth < 20:
        depth += 1
    # RA unwrapped about the field, back to 0..360: from_zone takes a zone across RA 0 as
    # min > max, but loses cells of a zone that starts at RA 0 exactly (mocpy 0.21)
    lo, hi = max(ra0 % 360.0, 1e-9), ra1 % 360.0
    corners = SkyCoord([lo, hi] * u.deg, [de0, de1] * u.deg)
    return MOC.from_zone(corners, max_depth=depth)


def _splits(values: np.ndarray, k: int, lo: float, hi: float) -> np.ndarray:
    """k + 1 edges cutting ``values`` into k runs of (nearly) equal counts, from lo to hi:
    each inner edge half-way between the two values it separates."""
    v = np.sort(values)
    edges = [lo]
    for j in range(1, k):
        i = int(round(j * v.size / k))
        edges.append(0.5 * (v[i - 1] + v[i]) if 0 < i < v.size else edges[-1])
    edges.append(hi)
    return np.asarray(edges, float)


def box_tiles(ra_deg: np.ndarray, dec_deg: np.ndarray, sources_per_tile: int = 600):
    """RA/Dec boxes of about ``sources_per_tile`` sources each: the tile index of every
    source and the box of each tile.

    ``round(n / sources_per_tile)`` tiles: Dec strips of equal counts, each cut in RA into
    boxes of equal counts, their numbers chosen so that the boxes are near-square on the sky.
    Why boxes: a map's pixel grid is aligned with RA/Dec, and the confusion field of a tile
    is drawn by FFTs over the bounding box of its pixels. A HEALPix cell at low latitude is a
    diamond in RA/Dec and fills half of its bounding box; a box fills it all, so the same
    sources cost about half the pixels in the field's FFTs. RA is unwrapped about the
    sources' circular mean; ``None`` when the sources span 180 deg of RA or come within 10
    deg of a pole (the caller then uses HEALPix tiles).
    """
    ra = np.asarray(ra_deg, float)
    dec = np.asarray(dec_deg, float)
    if sources_per_tile < 1:
        raise InputError(f"sources_per_tile must be >= 1, got {sources_per_tile}")
    a = np.radians(ra)
    ra_c = math.degrees(math.atan2(np.sin(a).mean(), np.cos(a).mean()))
    ra_u = ra_c + (ra - ra_c + 180.0) % 360.0 - 180.0
    if np.abs(dec).max() > 80.0 or np.ptp(ra_u) > 180.0:
        return None
    eps = 1e-7  # deg: the top and right edges are exclusive, so the extremes sit inside
    ra0, ra1, de0, de1 = ra_u.min(), ra_u.max() + eps, dec.min(), dec.max() + eps
    k = max(1, int(round(ra.size / sources_per_tile)))
    width = (ra1 - ra0) * math.cos(math.radians(0.5 * (de0 + de1)))
    height = de1 - de0
    ny = max(1, min(k, int(round(math.sqrt(k * height / max(width, 1e-9))))))
    de_edges = _splits(dec, ny, de0, de1)
    tile_of = np.full(ra.size, -1, dtype=np.int64)
    boxes = []
    for j in range(ny):
        strip = np.flatnonzero((dec >= de_edges[j]) & (dec < de_edges[j + 1]))
        nx = max(1, int(round((k - len(boxes)) / (ny - j))))
        ra_edges = _splits(ra_u[strip], nx, ra0, ra1) if strip.size else np.array([ra0, ra1])
        for i in range(len(ra_edges) - 1):
            inside = (ra_u[strip] >= ra_edges[i]) & (ra_u[strip] < ra_edges[i + 1])
            tile_of[strip[inside]] = len(boxes)
            boxes.append((ra_edges[i], ra_edges[i + 1], de_edges[j], de_edges[j + 1]))
    return tile_of, boxes, ra_u


def make_tiles(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    *,
    order: int | None = None,
    sources_per_tile: int = 600,
    buffer_arcsec: float = 60.0,
    shape: str = "healpix",
) -> list[Tile]:
    """Tiles covering every prior source; each source is ``own`` in exactly one tile.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray (n,), deg
    order : int, optional
        One HEALPix order for every tile (one cell each); default: tiles adapted to the
        source density (:func:`adaptive_tiles`), near ``sources_per_tile`` each.
    sources_per_tile : int - target of the adaptive tiling
    buffer_arcsec : float - width of the ring of neighbours fitted with each tile
    shape : ``"healpix"`` (cells, the default) or ``"box"`` (RA/Dec boxes of equal counts,
        :func:`box_tiles`; HEALPix where boxes cannot be used; ``order`` must be None)

    Returns
    -------
    list of Tile, in a deterministic order (restarts find the same tiles)
    """
    import astropy.units as u

    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    if ra.shape != dec.shape or ra.ndim != 1:
        raise InputError("ra and dec must be 1-D arrays of the same length")
    if ra.size == 0:
        return []
    if shape not in ("healpix", "box"):
        raise InputError(f"tile shape must be 'healpix' or 'box', got {shape!r}")
    if shape == "box" and order is not None:
        raise InputError("a fixed HEALPix order needs shape='healpix'")
    found = box_tiles(ra, dec, sources_per_tile) if shape == "box" else None
    if found is not None:
        return _box_tiles(ra, dec, *found, buffer_arcsec)
    if order is None:
        tile_of, tile_cells = adaptive_tiles(ra, dec, sources_per_tile)
    else:
        if not 0 <= order <= 20:
            raise InputError(f"tile order must be within 0..20, got {order}")
        pix = _cells(ra, dec, order)
        upix, tile_of = np.unique(pix, return_inverse=True)
        tile_cells = [((order, int(p)),) for p in upix]
    tile_of = np.asarray(tile_of).ravel()
    members = np.argsort(tile_of, kind="stable")
    bounds = np.searchsorted(tile_of[members], np.arange(len(tile_cells) + 1))
    tiles = []
    for t, cells in enumerate(tile_cells):
        own = members[bounds[t] : bounds[t + 1]]
        moc = cells_moc(cells, buffer_arcsec)
        inside = np.asarray(moc.contains_lonlat(ra * u.deg, dec * u.deg))
        inside[own] = False
        buf = np.flatnonzero(inside)
        o, p = cells[0]
        extra = cells if len(cells) > 1 else ()
        tiles.append(Tile(o, p, own, np.concatenate([own, buf]), buffer_arcsec, extra))
    return tiles


def _box_tiles(ra, dec, tile_of, boxes, ra_u, buffer_arcsec: float) -> list[Tile]:
    """Tiles of :func:`box_tiles`: own sources in the box, fitted ones in the grown box."""
    tiles = []
    for t, box in enumerate(boxes):
        own = np.flatnonzero(tile_of == t)
        g0, g1, h0, h1 = _grown_box(box, buffer_arcsec)
        inside = (ra_u >= g0) & (ra_u < g1) & (dec >= h0) & (dec < h1)
        inside[own] = False
        fit = np.concatenate([own, np.flatnonzero(inside)])
        tiles.append(Tile(-1, t, own, fit, buffer_arcsec, (), tuple(float(v) for v in box)))
    return [t for t in tiles if t.own.size]
