"""Star flags: HELP's ``flag_gaia`` and the bright-star mask ``flag_starmask``.

``flag_gaia`` (HELP definition): distance to the nearest reference (Gaia) source
  3 -> nearer than 0.6 arcsec ("definitely a Gaia object"),
  2 -> 0.6 to 1.5 arcsec ("probably"), 1 -> 1.5 to 2 arcsec ("possibly"), 0 -> none within 2.

``flag_starmask``: the source lies in the halo of a bright star, where photometry and
detections are unreliable. Each star brighter than ``mag_limit`` cuts a circular hole of radius

    r(G) = min(r_max, max(r_min, a * 10 ** (b * (mag_ref - G))))      [arcsec]

so the radius grows by a factor 10**b per magnitude of brightness (defaults: a = 10 arcsec at
G = mag_ref = 16, b = 0.2, i.e. x1.58 per magnitude; floor r_min = 3 arcsec, cap r_max = 300
arcsec). This has the form of the HELP/HSC bright-star masks (radius ~ 10**(-0.2 G)).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from skysense.catalog.match import pairs_within

__all__ = ["GAIA_FLAG_RADII_ARCSEC", "StarMaskLaw", "gaia_flag", "star_mask"]

GAIA_FLAG_RADII_ARCSEC = (0.6, 1.5, 2.0)


def gaia_flag(
    ra: np.ndarray,
    dec: np.ndarray,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    radii_arcsec: tuple[float, float, float] = GAIA_FLAG_RADII_ARCSEC,
) -> np.ndarray:
    """HELP ``flag_gaia`` from the distance to the nearest reference source.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg
        Survey positions.
    ref_ra, ref_dec : ndarray (m,), deg
        Reference star positions at the survey's epoch.
    radii_arcsec : (float, float, float)
        Limits of flags 3, 2 and 1.

    Returns
    -------
    ndarray (n,), int16
        3, 2, 1 or 0 (int16 like HELP's smallint; FITS and VOTable have no signed byte).
    """
    r3, r2, r1 = radii_arcsec
    flag = np.zeros(len(ra), dtype=np.int16)
    i, _, sep = pairs_within(ra, dec, ref_ra, ref_dec, r1)
    if len(i) == 0:
        return flag
    nearest = np.full(len(ra), np.inf)
    np.minimum.at(nearest, i, sep)
    flag[nearest <= r1] = 1
    flag[nearest <= r2] = 2
    flag[nearest <= r3] = 3
    return flag


class StarMaskLaw(NamedTuple):
    """Hole radius law ``min(r_max, max(r_min, a * 10**(b * (mag_ref - G))))`` (arcsec)."""

    a_arcsec: float = 10.0
    b: float = 0.2
    mag_ref: float = 16.0
    r_min_arcsec: float = 3.0
    r_max_arcsec: float = 300.0
    mag_limit: float = 16.0

    def radius_arcsec(self, mag: np.ndarray) -> np.ndarray:
        """Hole radius (arcsec) for stars of magnitude ``mag`` (n,)."""
        r = self.a_arcsec * 10.0 ** (self.b * (self.mag_ref - np.asarray(mag, dtype=float)))
        return np.clip(r, self.r_min_arcsec, self.r_max_arcsec)


def star_mask(
    ra: np.ndarray,
    dec: np.ndarray,
    star_ra: np.ndarray,
    star_dec: np.ndarray,
    star_mag: np.ndarray,
    law: StarMaskLaw = StarMaskLaw(),
) -> np.ndarray:
    """``flag_starmask``: True for sources inside the hole of a star brighter than the limit.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg
    star_ra, star_dec : ndarray (m,), deg
    star_mag : ndarray (m,), mag (e.g. Gaia G)
    law : StarMaskLaw

    Returns
    -------
    ndarray (n,), bool
    """
    star_mag = np.asarray(star_mag, dtype=float)
    bright = np.flatnonzero(np.isfinite(star_mag) & (star_mag < law.mag_limit))
    mask = np.zeros(len(ra), dtype=bool)
    if len(bright) == 0 or len(ra) == 0:
        return mask
    radius = law.radius_arcsec(star_mag[bright])
    s_ra = np.asarray(star_ra, dtype=float)[bright]
    s_dec = np.asarray(star_dec, dtype=float)[bright]
    # Stars in radius classes: one tree search per class keeps the candidate list small.
    for r_class in np.unique(np.ceil(np.log2(radius))):
        sel = np.ceil(np.log2(radius)) == r_class
        i, j, sep = pairs_within(ra, dec, s_ra[sel], s_dec[sel], float(2.0**r_class))
        inside = sep <= radius[sel][j]
        mask[i[inside]] = True
    return mask
