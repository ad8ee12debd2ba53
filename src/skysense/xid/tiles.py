"""Pure HEALPix tiling of a prior catalogue for XID+ (no files, no Dask).

A large field is cut into NESTED HEALPix cells of one order. Each tile is fitted with the
sources of its cell plus a buffer ring (sources and pixels within ``buffer_arcsec`` of the
cell), so that sources near the edge are de-blended against their neighbours; only the cell's
own sources are kept in the joined catalogue, so every prior source is reported once.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from skysense.errors import InputError

__all__ = ["Tile", "choose_order", "make_tiles", "tile_moc", "cell_size_arcsec"]


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile.

    Attributes
    ----------
    order, pixel : int - the NESTED HEALPix cell
    own : ndarray (n_own,), int - prior rows inside the cell (kept in the output)
    fit : ndarray (n_fit,), int - prior rows fitted (own + buffer), ``own`` first
    buffer_arcsec : float
    """

    order: int
    pixel: int
    own: np.ndarray
    fit: np.ndarray
    buffer_arcsec: float

    @property
    def name(self) -> str:
        return f"o{self.order}_p{self.pixel}"


def cell_size_arcsec(order: int) -> float:
    """Typical side of a HEALPix cell of ``order``, arcsec."""
    return math.sqrt(4 * math.pi / (12 * 4**order)) * 180 / math.pi * 3600


def _cells(ra_deg, dec_deg, order):
    import astropy.units as u
    from cdshealpix.nested import lonlat_to_healpix

    return np.asarray(
        lonlat_to_healpix(np.asarray(ra_deg) * u.deg, np.asarray(dec_deg) * u.deg, order)
    ).astype(np.int64)


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


def make_tiles(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    *,
    order: int | None = None,
    sources_per_tile: int = 600,
    buffer_arcsec: float = 60.0,
) -> list[Tile]:
    """Tiles covering every prior source; each source is ``own`` in exactly one tile.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray (n,), deg
    order : int, optional - default :func:`choose_order`
    buffer_arcsec : float - width of the ring of neighbours fitted with each tile

    Returns
    -------
    list of Tile, sorted by cell
    """
    import astropy.units as u

    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    if ra.shape != dec.shape or ra.ndim != 1:
        raise InputError("ra and dec must be 1-D arrays of the same length")
    if ra.size == 0:
        return []
    if order is None:
        order = choose_order(ra, dec, sources_per_tile)
    if not 0 <= order <= 20:
        raise InputError(f"tile order must be within 0..20, got {order}")
    cells = _cells(ra, dec, order)
    tiles = []
    for pix in np.unique(cells):
        own = np.flatnonzero(cells == pix)
        moc = tile_moc(order, int(pix), buffer_arcsec)
        inside = np.asarray(moc.contains_lonlat(ra * u.deg, dec * u.deg))
        buf = np.flatnonzero(inside & (cells != pix))
        tiles.append(Tile(order, int(pix), own, np.concatenate([own, buf]), buffer_arcsec))
    return tiles
