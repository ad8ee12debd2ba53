"""Astrometric correction of a survey against a reference catalogue such as Gaia.

1. The reference is moved to the survey's epoch with its proper motions
   (:func:`propagate_positions`): the motion ``(pmra, pmdec)`` is a vector in the tangent
   plane (``pmra`` is mu_alpha* = dRA/dt cos(dec)), the position moves along it in 3-D and is
   re-normalised, which is exact spherical arithmetic with the RA shift growing as 1/cos(dec)
   (the same model as ERFA's ``pmsafe`` / astropy's ``apply_space_motion`` without radial
   velocity).
2. Survey and reference are matched one-to-one (:mod:`skysense.catalog.match`).
3. The offset is the sigma-clipped median of ``(dRA cos dec, dDec)`` = reference - survey, in
   arcsec; it is re-measured once after a first correction so that an offset comparable to
   the match radius is still recovered.
4. :func:`apply_offset` shifts the survey: ``dec + dDec``, ``ra + dRA cos(dec) / cos(dec)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from skysense.catalog.clipping import clip_mask, clipped_median
from skysense.catalog.match import greedy_one_to_one, pairs_within

__all__ = [
    "AstrometricOffset",
    "propagate_positions",
    "match_offsets",
    "measure_offset",
    "apply_offset",
]

_MAS_TO_RAD = np.pi / (180.0 * 3600.0 * 1000.0)


class AstrometricOffset(NamedTuple):
    """Measured offset reference - survey.

    Attributes
    ----------
    dra_cosdec_arcsec, ddec_arcsec : float
        Sigma-clipped median offsets (arcsec); add them to the survey to correct it.
    dra_err_arcsec, ddec_err_arcsec : float
        Standard errors ``1.2533 * std / sqrt(n)``.
    n_matches : int
        Pairs used after clipping.
    radius_arcsec : float
        Match radius.
    """

    dra_cosdec_arcsec: float
    ddec_arcsec: float
    dra_err_arcsec: float
    ddec_err_arcsec: float
    n_matches: int
    radius_arcsec: float


def propagate_positions(
    ra_deg: np.ndarray,
    dec_deg: np.ndarray,
    pmra_masyr: np.ndarray,
    pmdec_masyr: np.ndarray,
    from_epoch: float,
    to_epoch: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Move positions with their proper motions from ``from_epoch`` to ``to_epoch``.

    Parameters
    ----------
    ra_deg, dec_deg : ndarray (n,), deg
    pmra_masyr : ndarray (n,), mas/yr
        mu_alpha* = dRA/dt * cos(dec). NaN counts as 0 (no measured motion).
    pmdec_masyr : ndarray (n,), mas/yr
    from_epoch, to_epoch : float
        Decimal years.

    Returns
    -------
    ra_deg, dec_deg : ndarray (n,), deg
    """
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    dt = float(to_epoch) - float(from_epoch)
    mua = np.nan_to_num(np.asarray(pmra_masyr, dtype=np.float64)) * _MAS_TO_RAD * dt
    mud = np.nan_to_num(np.asarray(pmdec_masyr, dtype=np.float64)) * _MAS_TO_RAD * dt
    sa, ca, sd, cd = np.sin(ra), np.cos(ra), np.sin(dec), np.cos(dec)
    # Position p + t * (pmra * east + pmdec * north), with the unit vectors
    # east = (-sin a, cos a, 0) and north = (-sin d cos a, -sin d sin a, cos d).
    x = cd * ca + mua * (-sa) + mud * (-sd * ca)
    y = cd * sa + mua * ca + mud * (-sd * sa)
    z = sd + mud * cd
    norm = np.sqrt(x * x + y * y + z * z)
    ra_new = np.degrees(np.arctan2(y, x)) % 360.0
    dec_new = np.degrees(np.arcsin(np.clip(z / norm, -1.0, 1.0)))
    return ra_new, dec_new


def match_offsets(
    ra: np.ndarray,
    dec: np.ndarray,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    radius_arcsec: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matches and their offsets reference - survey.

    Returns
    -------
    i_survey, i_ref : ndarray (m,), int64
    dra_cosdec_arcsec, ddec_arcsec : ndarray (m,), arcsec
    """
    i1, i2, sep = pairs_within(ra, dec, ref_ra, ref_dec, radius_arcsec)
    i1, i2, _ = greedy_one_to_one(i1, i2, sep)
    ra_s, dec_s = np.asarray(ra, dtype=float)[i1], np.asarray(dec, dtype=float)[i1]
    dra = (np.asarray(ref_ra, dtype=float)[i2] - ra_s + 180.0) % 360.0 - 180.0
    dra_cosdec = dra * np.cos(np.radians(dec_s)) * 3600.0
    ddec = (np.asarray(ref_dec, dtype=float)[i2] - dec_s) * 3600.0
    return i1, i2, dra_cosdec, ddec


def measure_offset(
    ra: np.ndarray,
    dec: np.ndarray,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    radius_arcsec: float = 1.0,
    *,
    nsigma: float = 3.0,
    iterations: int = 2,
    min_matches: int = 5,
) -> AstrometricOffset:
    """Sigma-clipped median offset (reference - survey) of one-to-one matches.

    Parameters
    ----------
    ra, dec : ndarray (n,), deg
        Survey positions.
    ref_ra, ref_dec : ndarray (m,), deg
        Reference positions at the survey's epoch.
    radius_arcsec : float
        Match radius.
    nsigma : float
        Clipping threshold, applied to both axes (a pair clipped on either is dropped).
    iterations : int
        Match-measure-shift rounds; the offsets add up.
    min_matches : int
        Fewer matches give a zero offset with NaN errors (nothing is applied).

    Returns
    -------
    AstrometricOffset
    """
    total_dra = total_ddec = 0.0
    ra_c, dec_c = np.asarray(ra, dtype=float), np.asarray(dec, dtype=float)
    err_ra = err_dec = np.nan
    n_used = 0
    for _ in range(max(1, iterations)):
        _, _, dra, ddec = match_offsets(ra_c, dec_c, ref_ra, ref_dec, radius_arcsec)
        if len(dra) < min_matches:
            if n_used == 0:
                return AstrometricOffset(0.0, 0.0, np.nan, np.nan, int(len(dra)), radius_arcsec)
            break
        mask = clip_mask(dra, nsigma) & clip_mask(ddec, nsigma)
        est_ra, est_dec = clipped_median(dra[mask]), clipped_median(ddec[mask])
        n_used, err_ra, err_dec = est_ra.n, est_ra.error, est_dec.error
        total_dra += est_ra.median
        total_ddec += est_dec.median
        ra_c, dec_c = apply_offset(ra, dec, total_dra, total_ddec)
    return AstrometricOffset(total_dra, total_ddec, err_ra, err_dec, n_used, radius_arcsec)


def apply_offset(
    ra_deg: np.ndarray, dec_deg: np.ndarray, dra_cosdec_arcsec: float, ddec_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Shift positions by ``(dRA cos dec, dDec)`` arcsec; the RA shift divides by cos(dec).

    Returns
    -------
    ra_deg, dec_deg : ndarray (n,), deg
    """
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    ra_new = (ra + dra_cosdec_arcsec / 3600.0 / np.cos(np.radians(dec))) % 360.0
    dec_new = np.clip(dec + ddec_arcsec / 3600.0, -90.0, 90.0)
    return ra_new, dec_new
