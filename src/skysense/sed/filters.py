"""Filter curves and synthetic photometry (pure).

A band flux is the photon-counting mean of f_nu over the filter, the AB convention that
speclite, sedpy and CIGALE use::

    <f_nu> = int f_nu(lam) T(lam) dlam / lam  /  int T(lam) dlam / lam

Integration is linear in the spectrum, so a set of filters on a wavelength grid becomes one
weight matrix ``W`` (n_wave, n_band): band fluxes of many spectra are ``spectra @ W`` (BLAS).

HELP names its bands ``<camera>_<filter>`` (``megacam_g``, ``irac_i1``, ``spire_250``).
:data:`HELP_TO_SEDPY` maps the HELP names this area can model to the curves shipped by the
maintained package astro-sedpy (loaded by :func:`skysense.sed.io.load_filters`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skysense.errors import InputError

__all__ = ["Filter", "HELP_TO_SEDPY", "IR_MIN_UM", "filter_weights", "band_fluxes"]

# Observed wavelength from which a band belongs to the dust ("IR") half of the energy-balance
# check: MIPS, PACS, SPIRE, WISE W3/W4. UV to IRAC 8 um is the stellar ("optical") half.
IR_MIN_UM = 10.0

# HELP band name -> astro-sedpy filter name. Only names whose curve astro-sedpy ships.
HELP_TO_SEDPY: dict[str, str] = {
    "galex_fuv": "galex_FUV",
    "galex_nuv": "galex_NUV",
    "megacam_u": "cfht_megacam_us_9301",
    "megacam_g": "cfht_megacam_gs_9401",
    "megacam_r": "cfht_megacam_rs_9601",
    "megacam_i": "cfht_megacam_is_9701",
    "megacam_z": "cfht_megacam_zs_9801",
    "sdss_u": "sdss_u0",
    "sdss_g": "sdss_g0",
    "sdss_r": "sdss_r0",
    "sdss_i": "sdss_i0",
    "sdss_z": "sdss_z0",
    "decam_g": "decam_g",
    "decam_r": "decam_r",
    "decam_i": "decam_i",
    "decam_z": "decam_z",
    "decam_y": "decam_Y",
    "gpc1_g": "panstarrs_g",
    "gpc1_r": "panstarrs_r",
    "gpc1_i": "panstarrs_i",
    "gpc1_z": "panstarrs_z",
    "gpc1_y": "panstarrs_y",
    "suprime_g": "hsc_g",
    "suprime_r": "hsc_r",
    "suprime_i": "hsc_i",
    "suprime_z": "hsc_z",
    "suprime_y": "hsc_y",
    "acs_f435w": "acs_wfc_f435w",
    "acs_f606w": "acs_wfc_f606w",
    "acs_f775w": "acs_wfc_f775w",
    "acs_f814w": "acs_wfc_f814w",
    "acs_f850lp": "acs_wfc_f850lp",
    "wfc3_f125w": "wfc3_ir_f125w",
    "wfc3_f140w": "wfc3_ir_f140w",
    "wfc3_f160w": "wfc3_ir_f160w",
    "ukidss_j": "ukirt_wfcam_J",
    "ukidss_h": "ukirt_wfcam_H",
    "ukidss_k": "ukirt_wfcam_K",
    "vista_z": "vista_vircam_Z",
    "vista_y": "vista_vircam_Y",
    "vista_j": "vista_vircam_J",
    "vista_h": "vista_vircam_H",
    "vista_ks": "vista_vircam_Ks",
    "wircam_j": "cfht_wircam_J_8101",
    "wircam_h": "cfht_wircam_H_8201",
    "wircam_ks": "cfht_wircam_Ks_8302",
    "2mass_j": "twomass_J",
    "2mass_h": "twomass_H",
    "2mass_ks": "twomass_Ks",
    "irac_i1": "spitzer_irac_ch1",
    "irac_i2": "spitzer_irac_ch2",
    "irac_i3": "spitzer_irac_ch3",
    "irac_i4": "spitzer_irac_ch4",
    "wise_w1": "wise_w1",
    "wise_w2": "wise_w2",
    "wise_w3": "wise_w3",
    "wise_w4": "wise_w4",
    "mips_24": "spitzer_mips_24",
    "mips_70": "spitzer_mips_70",
    "mips_160": "spitzer_mips_160",
    "pacs_blue": "herschel_pacs_70",
    "pacs_green": "herschel_pacs_100",
    "pacs_red": "herschel_pacs_160",
    "spire_250": "herschel_spire_250",
    "spire_350": "herschel_spire_350",
    "spire_500": "herschel_spire_500",
}


@dataclass(frozen=True)
class Filter:
    """One filter curve.

    Attributes
    ----------
    name : str
        Band name (HELP ``<camera>_<filter>``).
    wavelength_aa : ndarray (n,), Angstrom
        Increasing wavelengths.
    transmission : ndarray (n,)
        Photon response (any normalisation).
    """

    name: str
    wavelength_aa: np.ndarray
    transmission: np.ndarray

    def __post_init__(self) -> None:
        lam = np.asarray(self.wavelength_aa, dtype=float)
        t = np.asarray(self.transmission, dtype=float)
        if lam.ndim != 1 or lam.shape != t.shape or lam.size < 2:
            raise InputError(
                f"filter {self.name!r}: wavelength and transmission must be 1-d, same length >= 2"
            )
        if not (np.all(np.isfinite(lam)) and np.all(np.isfinite(t))):
            raise InputError(f"filter {self.name!r}: non-finite wavelength or transmission")
        if np.any(np.diff(lam) <= 0):
            raise InputError(f"filter {self.name!r}: wavelengths must increase")
        if np.any(t < 0) or not np.any(t > 0):
            raise InputError(f"filter {self.name!r}: transmission must be >= 0 and not all zero")
        object.__setattr__(self, "wavelength_aa", lam)
        object.__setattr__(self, "transmission", t)

    @property
    def pivot_um(self) -> float:
        """Pivot wavelength (micrometres)."""
        lam, t = self.wavelength_aa, self.transmission
        return float(np.sqrt(np.trapezoid(t * lam, lam) / np.trapezoid(t / lam, lam)) / 1e4)


def _trapezoid_weights(x: np.ndarray) -> np.ndarray:
    w = np.empty_like(x)
    dx = np.diff(x)
    w[0], w[-1] = dx[0] / 2, dx[-1] / 2
    w[1:-1] = (dx[:-1] + dx[1:]) / 2
    return w


def filter_weights(wavelength_aa: np.ndarray, filters: Sequence[Filter]) -> np.ndarray:
    """Weight matrix of photon-counting band means on a wavelength grid.

    Parameters
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
        Increasing grid on which spectra are sampled (observed frame).
    filters : sequence of Filter
        The bands.

    Returns
    -------
    ndarray (n_wave, n_band)
        ``fnu @ W`` gives the band means of ``fnu`` (same unit as ``fnu``).

    Raises
    ------
    InputError
        If a filter is not covered by the grid (fewer than 3 grid points inside it).
    """
    lam = np.asarray(wavelength_aa, dtype=float)
    base = _trapezoid_weights(lam) / lam
    out = np.zeros((lam.size, len(filters)))
    for j, f in enumerate(filters):
        t = np.interp(lam, f.wavelength_aa, f.transmission, left=0.0, right=0.0)
        if np.count_nonzero(t) < 3:
            raise InputError(f"band {f.name!r} lies outside the model wavelength grid")
        w = base * t
        out[:, j] = w / w.sum()
    return out


def band_fluxes(
    wavelength_aa: np.ndarray, fnu: np.ndarray, filters: Sequence[Filter]
) -> np.ndarray:
    """Band means of spectra.

    Parameters
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
    fnu : ndarray (..., n_wave)
        Flux densities per unit frequency (any unit).
    filters : sequence of Filter

    Returns
    -------
    ndarray (..., n_band)
        Same unit as ``fnu``.
    """
    return np.asarray(fnu, dtype=float) @ filter_weights(wavelength_aa, filters)
