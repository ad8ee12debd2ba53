"""NESTED HEALPix indices of sky positions, shared by every area (pure; ground floor).

The catalogue's object keys (:mod:`skysense.catalog.masterlist`) and the VO server's sky index
(:mod:`skysense.vo.hpx`) need the same thing: the cell of order ``order`` that holds each
(ra, dec), computed with cdshealpix. Each caller validates its positions at its own boundary.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nested_index"]


def nested_index(ra_deg, dec_deg, order: int) -> np.ndarray:
    """NESTED HEALPix index of positions (no checks: callers validate).

    Parameters
    ----------
    ra_deg, dec_deg : array_like, deg
        Positions, both of one shape. RA may be any real value (it wraps); |Dec| <= 90.
    order : int
        HEALPix order, 0 to 29.

    Returns
    -------
    ndarray, int64
        Cell indices, in the shape of ``ra_deg``.
    """
    import astropy.units as u
    import cdshealpix.nested
    from astropy.coordinates import Latitude, Longitude

    ra = np.mod(np.asarray(ra_deg, dtype=np.float64), 360.0)
    dec = np.asarray(dec_deg, dtype=np.float64)
    if ra.size == 0:
        return np.zeros(ra.shape, dtype=np.int64)
    idx = cdshealpix.nested.lonlat_to_healpix(
        Longitude(ra.ravel(), u.deg), Latitude(dec.ravel(), u.deg), order
    )
    return np.asarray(idx, dtype=np.int64).reshape(ra.shape)
