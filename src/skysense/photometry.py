"""Fluxes and AB magnitudes (pure functions on arrays), shared by every area.

Ground floor (imports no area): the catalogue pipeline, photo-z and the simulator convert with
these functions. HELP stores AB magnitudes and fluxes in microjansky. With the AB zero point
of 3631 Jy,

    f [uJy] = 10 ** ((23.9 - m_AB) / 2.5),      m_AB = 23.9 - 2.5 log10(f [uJy])

(HELP's 23.9, :data:`UJY_ZEROPOINT_MAG`, is astropy's ``u.ABmag``: 48.60 mag in cgs units,
3630.78 Jy; the simulator uses a zero point of exactly 3631 Jy, :data:`UJY_ZEROPOINT_MAG_3631`,
6e-5 mag fainter). Errors propagate to first
order: ``ferr = f * merr * ln(10) / 2.5`` and ``merr = 2.5 / ln(10) * ferr / f``. Non-positive
fluxes have no magnitude (NaN) but keep their flux and error.

Beams of far-infrared maps are Gaussians of sigma = FWHM * :data:`FWHM_TO_SIGMA`.
"""

from __future__ import annotations

import math

import numpy as np

from skysense.errors import ConfigError

__all__ = [
    "AB_ZEROPOINT_JY",
    "UJY_ZEROPOINT_MAG",
    "UJY_ZEROPOINT_MAG_3631",
    "FLUX_UNITS",
    "mag_to_flux_ujy",
    "flux_ujy_to_mag",
    "flux_to_ujy",
    "vega_to_ab",
    "FWHM_TO_SIGMA",
]

AB_ZEROPOINT_JY = 3631.0
#: m_AB of 1 uJy as HELP and astropy's ``u.ABmag`` have it (48.60 mag in cgs units).
UJY_ZEROPOINT_MAG = 23.9
#: m_AB of 1 uJy for a zero point of exactly 3631 Jy (2.5 log10(3631e6) = 23.90006).
UJY_ZEROPOINT_MAG_3631 = 2.5 * math.log10(AB_ZEROPOINT_JY * 1e6)
_K = 2.5 / math.log(10.0)  # 1.0857 mag per unit relative flux error
#: sigma / FWHM of a Gaussian beam, 1 / (2 sqrt(2 ln 2)) = 0.4247 (simulated maps and XID+ beams).
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
#: Factor from each accepted flux unit to microjansky.
FLUX_UNITS: dict[str, float] = {
    "nJy": 1e-3,
    "uJy": 1.0,
    "mJy": 1e3,
    "Jy": 1e6,
    "erg/s/cm2/Hz": 1e29,
}


def mag_to_flux_ujy(
    mag, mag_err=None, *, zeropoint: float = UJY_ZEROPOINT_MAG
) -> tuple[np.ndarray, np.ndarray]:
    """AB magnitudes to fluxes in uJy.

    Parameters
    ----------
    mag : array_like (n,), AB mag
    mag_err : array_like (n,), mag, optional
    zeropoint : float
        m_AB of 1 uJy (default HELP's 23.9).

    Returns
    -------
    flux_ujy, flux_err_ujy : ndarray (n,), uJy
        The error is NaN when ``mag_err`` is not given.
    """
    mag = np.asarray(mag, dtype=np.float64)
    flux = 10.0 ** ((zeropoint - mag) / 2.5)
    if mag_err is None:
        return flux, np.full_like(flux, np.nan)
    return flux, flux * np.asarray(mag_err, dtype=np.float64) / _K


def flux_ujy_to_mag(
    flux_ujy, flux_err_ujy=None, *, zeropoint: float = UJY_ZEROPOINT_MAG
) -> tuple[np.ndarray, np.ndarray]:
    """Fluxes in uJy to AB magnitudes; non-positive fluxes give NaN (magnitude and error).

    Parameters
    ----------
    flux_ujy : array_like (n,), uJy
    flux_err_ujy : array_like (n,), uJy, optional
    zeropoint : float
        m_AB of 1 uJy (default HELP's 23.9).

    Returns
    -------
    mag, mag_err : ndarray (n,), AB mag
        The error is NaN when ``flux_err_ujy`` is not given.
    """
    flux = np.asarray(flux_ujy, dtype=np.float64)
    safe = np.where(flux > 0, flux, np.nan)
    with np.errstate(invalid="ignore"):
        mag = zeropoint - 2.5 * np.log10(safe)
        if flux_err_ujy is None:
            return mag, np.full_like(mag, np.nan)
        return mag, _K * np.asarray(flux_err_ujy, dtype=np.float64) / safe


def flux_to_ujy(values, unit: str) -> np.ndarray:
    """Convert fluxes from ``unit`` (a key of :data:`FLUX_UNITS`) to uJy.

    Raises
    ------
    ConfigError
        Unknown unit (an ``InputError`` and a ``ValueError``).
    """
    try:
        factor = FLUX_UNITS[unit]
    except KeyError:
        raise ConfigError(
            f"unknown flux unit {unit!r}; use one of {', '.join(FLUX_UNITS)}"
        ) from None
    return np.asarray(values, dtype=np.float64) * factor


def vega_to_ab(mag_vega, offset: float) -> np.ndarray:
    """Vega to AB magnitudes: ``m_AB = m_Vega + offset`` (e.g. +1.900 for 2MASS Ks)."""
    return np.asarray(mag_vega, dtype=np.float64) + float(offset)
