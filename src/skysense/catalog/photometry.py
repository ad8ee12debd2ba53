"""Magnitudes and fluxes in HELP conventions (pure functions on arrays).

HELP stores AB magnitudes and fluxes in microjansky. With the AB zero point of 3631 Jy,

    f [uJy] = 10 ** ((23.9 - m_AB) / 2.5),      m_AB = 23.9 - 2.5 log10(f [uJy])

(3631 Jy = 10**(23.9/2.5) uJy to 4e-5 mag). Errors propagate to first order:
``ferr = f * merr * ln(10) / 2.5`` and ``merr = 2.5 / ln(10) * ferr / f``.
Negative or zero fluxes have no magnitude (NaN) but keep their flux and error.
"""

from __future__ import annotations

import numpy as np

from skysense.errors import ConfigError

__all__ = [
    "AB_ZEROPOINT_JY",
    "UJY_ZEROPOINT_MAG",
    "FLUX_UNITS",
    "mag_to_flux_ujy",
    "flux_ujy_to_mag",
    "flux_to_ujy",
    "vega_to_ab",
    "sentinels_to_nan",
]

AB_ZEROPOINT_JY = 3631.0
# m_AB of 1 uJy: 2.5 log10(3631e6) = 23.9000 (to 4e-5 mag); HELP uses 23.9 exactly.
UJY_ZEROPOINT_MAG = 23.9
_K = 2.5 / np.log(10.0)
# Factor from each accepted flux unit to microjansky.
FLUX_UNITS: dict[str, float] = {
    "nJy": 1e-3,
    "uJy": 1.0,
    "mJy": 1e3,
    "Jy": 1e6,
    "erg/s/cm2/Hz": 1e29,
}


def mag_to_flux_ujy(
    mag: np.ndarray, mag_err: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """AB magnitudes to fluxes in uJy.

    Parameters
    ----------
    mag : ndarray (n,), AB mag
    mag_err : ndarray (n,), mag, optional

    Returns
    -------
    flux_ujy, flux_err_ujy : ndarray (n,), uJy
        The error is NaN when ``mag_err`` is not given.
    """
    mag = np.asarray(mag, dtype=np.float64)
    flux = 10.0 ** ((UJY_ZEROPOINT_MAG - mag) / 2.5)
    if mag_err is None:
        return flux, np.full_like(flux, np.nan)
    return flux, flux * np.asarray(mag_err, dtype=np.float64) / _K


def flux_ujy_to_mag(
    flux_ujy: np.ndarray, flux_err_ujy: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fluxes in uJy to AB magnitudes; non-positive fluxes give NaN.

    Parameters
    ----------
    flux_ujy : ndarray (n,), uJy
    flux_err_ujy : ndarray (n,), uJy, optional

    Returns
    -------
    mag, mag_err : ndarray (n,), AB mag
    """
    flux = np.asarray(flux_ujy, dtype=np.float64)
    positive = flux > 0
    safe = np.where(positive, flux, np.nan)
    mag = UJY_ZEROPOINT_MAG - 2.5 * np.log10(safe)
    if flux_err_ujy is None:
        return mag, np.full_like(mag, np.nan)
    return mag, _K * np.asarray(flux_err_ujy, dtype=np.float64) / safe


def flux_to_ujy(values: np.ndarray, unit: str) -> np.ndarray:
    """Convert fluxes from ``unit`` (a key of ``FLUX_UNITS``) to uJy.

    Raises
    ------
    ConfigError
        Unknown unit (a ``ValueError``).
    """
    try:
        factor = FLUX_UNITS[unit]
    except KeyError:
        raise ConfigError(
            f"unknown flux unit {unit!r}; use one of {', '.join(FLUX_UNITS)}"
        ) from None
    return np.asarray(values, dtype=np.float64) * factor


def vega_to_ab(mag_vega: np.ndarray, offset: float) -> np.ndarray:
    """Vega to AB magnitudes: ``m_AB = m_Vega + offset`` (e.g. +1.900 for 2MASS Ks)."""
    return np.asarray(mag_vega, dtype=np.float64) + float(offset)


def sentinels_to_nan(values: np.ndarray, missing=()) -> np.ndarray:
    """A float copy of ``values`` with the sentinel values in ``missing`` and infinities as NaN."""
    out = np.array(values, dtype=np.float64, copy=True)
    for sentinel in missing:
        out[out == sentinel] = np.nan
    out[~np.isfinite(out)] = np.nan
    return out
