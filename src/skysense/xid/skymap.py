"""The core data type of XID+: one band's map and noise in mJy/beam with its WCS.

Pure: :class:`SkyMap` holds arrays, :func:`moc_pixel_mask` turns a sky region into a pixel
mask. Reading and writing maps is :mod:`skysense.xid.io`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["SkyMap", "moc_pixel_mask", "pixel_arcsec"]


@dataclasses.dataclass
class SkyMap:
    """One band's map and 1-sigma instrumental noise, in mJy/beam, with its celestial WCS.

    Attributes
    ----------
    band : str
    image_mjy, error_mjy : ndarray (ny, nx), mJy/beam; NaN where not usable
    wcs : astropy.wcs.WCS (celestial)
    fwhm_arcsec : float or None (header key FWHM when present)
    path : str or None
    """

    band: str
    image_mjy: np.ndarray
    error_mjy: np.ndarray
    wcs: object
    fwhm_arcsec: float | None = None
    path: str | None = None

    @property
    def good(self) -> np.ndarray:
        """(ny, nx) bool: finite map and noise with noise > 0."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.image_mjy) & np.isfinite(self.error_mjy) & (self.error_mjy > 0)

    @property
    def pixel_arcsec(self) -> float:
        """Mean pixel side, arcsec."""
        return pixel_arcsec(self.wcs)


def pixel_arcsec(wcs) -> float:
    """Mean pixel side of a celestial WCS, arcsec."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)


def moc_pixel_mask(moc, wcs, shape: tuple[int, int]) -> np.ndarray:
    """Map pixels whose centre lies in a MOC.

    Parameters
    ----------
    moc : mocpy.MOC
    wcs : astropy.wcs.WCS (celestial)
    shape : (ny, nx)

    Returns
    -------
    ndarray (ny, nx), bool
    """
    import astropy.units as u

    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = wcs.pixel_to_world(xx.ravel(), yy.ravel())
    inside = moc.contains_lonlat(sky.ra.deg * u.deg, sky.dec.deg * u.deg)
    return np.asarray(inside).reshape(shape)
