"""Seeded toy confusion-limited maps with known fluxes (tests, calibration, benchmarks).

Sources with power-law (Euclidean-like) fluxes are dropped at random on a TAN grid,
convolved with a Gaussian beam (peak 1 per mJy, so the map is in mJy/beam) and white
instrumental noise is added. Pure: returns arrays, writes nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from skysense.xid.model import GaussianBeam, pointing_matrix
from skysense.xid.skymap import SkyMap

__all__ = ["SimulatedField", "simulate_field", "tan_wcs"]


def tan_wcs(nx: int, ny: int, pixel_arcsec: float, ra_deg: float = 150.0, dec_deg: float = 2.0):
    """A celestial TAN WCS centred on (ra, dec) with square pixels."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.cdelt = [-pixel_arcsec / 3600.0, pixel_arcsec / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w


@dataclasses.dataclass
class SimulatedField:
    """A simulated map, its catalogue of every injected source, and the truth."""

    sky: SkyMap
    sources: pd.DataFrame  # id, ra, dec, flux_true (mJy), x, y (pixels)
    background_mjy: float


def simulate_field(
    n_sources: int,
    *,
    band: str = "spire_250",
    size_pix: int = 100,
    pixel_arcsec: float = 6.0,
    fwhm_arcsec: float = 18.15,
    noise_mjy: float = 2.0,
    flux_min_mjy: float = 1.0,
    flux_max_mjy: float = 100.0,
    slope: float = 1.5,
    background_mjy: float = 0.0,
    margin_pix: int = 0,
    random_state=None,
) -> SimulatedField:
    """Simulate one band.

    Parameters
    ----------
    n_sources : int
    size_pix : int - the map is ``size_pix`` x ``size_pix``
    flux_min_mjy, flux_max_mjy, slope : float
        Fluxes follow dN/dS ~ S^-(slope+1) between the limits (slope 1.5 is Euclidean).
    margin_pix : int - keep sources at least this far from the edge
    random_state : seed

    Returns
    -------
    SimulatedField
    """
    rng = np.random.default_rng(random_state)
    u = rng.random(n_sources)
    a, b = flux_min_mjy**-slope, flux_max_mjy**-slope
    flux = (a - u * (a - b)) ** (-1.0 / slope)
    x = rng.uniform(margin_pix - 0.5, size_pix - 0.5 - margin_pix, n_sources)
    y = rng.uniform(margin_pix - 0.5, size_pix - 0.5 - margin_pix, n_sources)
    wcs = tan_wcs(size_pix, size_pix, pixel_arcsec)
    ra, dec = wcs.pixel_to_world_values(x, y)
    yy, xx = np.mgrid[0:size_pix, 0:size_pix]
    amat = pointing_matrix(
        x, y, xx.ravel(), yy.ravel(), GaussianBeam(fwhm_arcsec), pixel_arcsec, min_fraction=1e-6
    )
    clean = (amat @ flux).reshape(size_pix, size_pix) + background_mjy
    noise = np.full((size_pix, size_pix), float(noise_mjy))
    image = clean + noise * rng.standard_normal(clean.shape)
    sky = SkyMap(band, image, noise, wcs, fwhm_arcsec, None)
    sources = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n_sources)],
            "ra": np.asarray(ra),
            "dec": np.asarray(dec),
            "flux_true": flux,
            "x": x,
            "y": y,
        }
    )
    return SimulatedField(sky, sources, background_mjy)
