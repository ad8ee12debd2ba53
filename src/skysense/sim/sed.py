"""Spectral energy distributions and band fluxes of the simulated objects.

Galaxies: a stellar component plus dust.

* Stars in the galaxy: an old population, a black body of temperature ``t_star_k`` with a
  smooth 4000 A break (flux blueward of 4000 A rest divided by ``d4000``), plus a young
  population, a 20000 K black body carrying the fraction ``young_frac`` of the stellar
  luminosity (it makes star-forming galaxies blue in the rest-frame ultraviolet); zero flux
  below the Lyman limit and the mean intergalactic Lyman-alpha forest transmission
  exp(-0.0036 (1+z)^3.46) between 912 and 1216 A (Madau 1995-like approximation).
* Dust: an optically thin modified black body nu^beta B_nu(T_dust) joined, where its logarithmic
  slope reaches -alpha, to a mid-infrared power law S_nu ~ nu^-alpha (the Casey 2012 form), with
  an exponential cut-off exp(-(3 um / lambda)^2) so that dust does not leak into the optical.
  Its total luminosity (the integral of the cut-off spectrum) is ``l_dust = ratio * l_star``.

The spectrum is redshifted with Planck18 (astropy, no network): S_nu(nu_obs) = (1 + z)
L_nu(nu_obs (1 + z)) / (4 pi d_L^2). Band fluxes are the spectrum at the band's effective
wavelength (monochromatic approximation); the wavelengths are approximate effective/pivot
wavelengths from the SVO filter profile service.

Stars: black bodies of effective temperature ``t_eff_k``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from skysense.photometry import UJY_ZEROPOINT_MAG_3631, flux_ujy_to_mag, mag_to_flux_ujy

__all__ = [
    "BANDS",
    "OPTICAL_BANDS",
    "FIR_BANDS",
    "EFFECTIVE_WAVELENGTH_UM",
    "VEGA_TO_AB",
    "ab_mag_to_ujy",
    "ujy_to_ab_mag",
    "luminosity_distance_m",
    "galaxy_sed_ujy",
    "galaxy_band_fluxes_ujy",
    "star_band_fluxes_ujy",
]

#: Effective wavelengths (um) of the HELP bands simulated here.
EFFECTIVE_WAVELENGTH_UM: dict[str, float] = {
    "megacam_u": 0.3811,
    "megacam_g": 0.4862,
    "megacam_r": 0.6258,
    "suprime_i": 0.7683,
    "ukidss_j": 1.2483,
    "ukidss_k": 2.2010,
    "irac_i1": 3.5573,
    "mips_24": 23.68,
    "pacs_green": 100.0,  # Herschel PACS 100 um (HELP's name; nominal, as SPIRE's)
    "pacs_red": 160.0,  # Herschel PACS 160 um
    "spire_250": 250.0,
    "spire_350": 350.0,
    "spire_500": 500.0,
}
BANDS: tuple[str, ...] = tuple(EFFECTIVE_WAVELENGTH_UM)
OPTICAL_BANDS: tuple[str, ...] = BANDS[:7]
FIR_BANDS: tuple[str, ...] = BANDS[7:]

#: m_AB = m_Vega + offset (Hewett et al. 2006 for UKIDSS J and K).
VEGA_TO_AB: dict[str, float] = {"ukidss_j": 0.938, "ukidss_k": 1.900}

_C_UM_HZ = 2.99792458e14  # speed of light in um Hz
_H_OVER_K = 4.799243073e-11  # h / k_B in K s
_L_SUN_W = 3.828e26
_UJY_SI = 1e-32  # W m^-2 Hz^-1


def ab_mag_to_ujy(mag: np.ndarray) -> np.ndarray:
    """AB magnitude -> flux density in uJy (a zero point of exactly 3631 Jy)."""
    return mag_to_flux_ujy(mag, zeropoint=UJY_ZEROPOINT_MAG_3631)[0]


def ujy_to_ab_mag(flux_ujy: np.ndarray) -> np.ndarray:
    """Flux density in uJy -> AB magnitude (NaN for non-positive fluxes)."""
    return flux_ujy_to_mag(flux_ujy, zeropoint=UJY_ZEROPOINT_MAG_3631)[0]


@functools.lru_cache(maxsize=1)
def _distance_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    z = np.concatenate([np.linspace(0.0, 0.1, 51)[1:], np.linspace(0.1, 10.0, 991)[1:]])
    dl_m = Planck18.luminosity_distance(z).to_value("m")
    return np.log(z), np.log(dl_m)


def luminosity_distance_m(z: np.ndarray) -> np.ndarray:
    """Planck18 luminosity distance (m) for redshifts 0.002 <= z <= 10 (log-log interpolation)."""
    log_z, log_dl = _distance_table()
    return np.exp(np.interp(np.log(np.asarray(z, dtype=float)), log_z, log_dl))


def _planck_shape(x: np.ndarray) -> np.ndarray:
    """x^3 / (e^x - 1), safe for large x."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        return x**3 / np.expm1(np.minimum(x, 700.0))


@functools.lru_cache(maxsize=16)
def _dust_join(beta: float, alpha: float) -> float:
    """x_c = h nu_c / k T where the modified black body's log slope reaches -alpha."""
    from scipy.optimize import brentq

    # Log slope of x^(3+beta) / (e^x - 1) is 3 + beta - x e^x / (e^x - 1); the power law
    # S ~ nu^-alpha joins where it equals -alpha (Wien side).
    def slope_gap(x):
        return 3.0 + beta - x / (-math.expm1(-x)) + alpha

    return brentq(slope_gap, 1e-3, 200.0)


def _dust_shape(x: np.ndarray, beta: float, alpha: float) -> np.ndarray:
    x_c = _dust_join(beta, alpha)
    g_c = x_c ** (3.0 + beta) / math.expm1(x_c)
    with np.errstate(over="ignore"):
        mbb = x ** (3.0 + beta) / np.expm1(np.minimum(x, 700.0))
    return np.where(x < x_c, mbb, g_c * (x / x_c) ** (-alpha))


_T_YOUNG_K = 20000.0


def _bb_lnu_per_lsun(nu_hz: np.ndarray, t_k) -> np.ndarray:
    # The integral of the B_nu shape over nu is (kT/h) pi^4/15.
    return _L_SUN_W * _planck_shape(_H_OVER_K * nu_hz / t_k) * (_H_OVER_K / t_k) * 15.0 / math.pi**4


def _stellar_lnu_per_lsun(
    lam_rest_um: np.ndarray,
    t_star_k: np.ndarray,
    d4000: np.ndarray,
    young_frac: np.ndarray,
    z: np.ndarray,
) -> np.ndarray:
    """Stellar L_nu (W/Hz) per L_sun of black-body luminosity, at rest wavelength."""
    nu = _C_UM_HZ / lam_rest_um
    step = 0.5 * (1.0 + np.tanh((lam_rest_um - 0.4) / 0.01))
    old = _bb_lnu_per_lsun(nu, t_star_k) * (1.0 / d4000 + (1.0 - 1.0 / d4000) * step)
    lnu = (1.0 - young_frac) * old + young_frac * _bb_lnu_per_lsun(nu, _T_YOUNG_K)
    forest = np.exp(-0.0036 * (1.0 + z) ** 3.46)
    lnu = np.where(lam_rest_um < 0.1216, lnu * forest, lnu)
    return np.where(lam_rest_um < 0.0912, 0.0, lnu)


def _dust_lnu_per_lsun(
    lam_rest_um: np.ndarray, t_dust_k: np.ndarray, beta: float, alpha: float
) -> np.ndarray:
    """Dust L_nu (W/Hz) per L_sun of dust luminosity, at rest wavelength."""
    nu = _C_UM_HZ / lam_rest_um
    x = _H_OVER_K * nu / t_dust_k
    norm = _dust_norm(t_dust_k, beta, alpha)
    lnu = _L_SUN_W * _dust_shape(x, beta, alpha) * (_H_OVER_K / t_dust_k) / norm
    # Hot dust fades below a few um rest: keeps the mid-IR power law out of the optical.
    return lnu * np.exp(-((_DUST_CUT_UM / lam_rest_um) ** 2))


_DUST_CUT_UM = 3.0


@functools.lru_cache(maxsize=16)
def _dust_norm_table(beta: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """log T and log of the integral over x of the cut-off dust shape, for 5-300 K."""
    x = np.geomspace(1e-5, 2e3, 20000)
    t = np.geomspace(5.0, 300.0, 240)
    lam_um = _C_UM_HZ / (x[None, :] * t[:, None] / _H_OVER_K)
    integrand = _dust_shape(x, beta, alpha)[None, :] * np.exp(-((_DUST_CUT_UM / lam_um) ** 2))
    # Trapezoid in ln x: integral of f dx = integral of f x d(ln x).
    g = np.trapezoid(integrand * x[None, :], np.log(x), axis=1)
    return np.log(t), np.log(g)


def _dust_norm(t_dust_k, beta: float, alpha: float) -> np.ndarray:
    """Integral over x of the dust shape including the short-wavelength cut-off at T."""
    log_t, log_g = _dust_norm_table(beta, alpha)
    return np.exp(np.interp(np.log(t_dust_k), log_t, log_g))


def galaxy_sed_ujy(
    lam_obs_um: np.ndarray,
    z: np.ndarray,
    l_star_lsun: np.ndarray,
    l_dust_lsun: np.ndarray,
    t_star_k: np.ndarray,
    d4000: np.ndarray,
    young_frac: np.ndarray,
    t_dust_k: np.ndarray,
    beta: float = 1.5,
    alpha: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed stellar and dust flux densities of galaxies.

    Parameters
    ----------
    lam_obs_um : ndarray, um
        Observed wavelengths; broadcast against the per-galaxy arrays (e.g. shape (1, k)
        against (n, 1)).
    z : ndarray, redshift
    l_star_lsun, l_dust_lsun : ndarray, L_sun
        Black-body luminosity of the stars and total dust luminosity.
    t_star_k, d4000, young_frac, t_dust_k : ndarray
        Old-star colour temperature (K), 4000 A break strength (>= 1), fraction of the stellar
        luminosity from young stars (0..1), dust temperature (K).
    beta, alpha : float
        Dust emissivity index and mid-infrared power-law index.

    Returns
    -------
    stellar_ujy, dust_ujy : ndarray, uJy (broadcast shape)
    """
    lam_rest = np.asarray(lam_obs_um, dtype=float) / (1.0 + z)
    scale = (1.0 + z) / (4.0 * math.pi * luminosity_distance_m(z) ** 2) / _UJY_SI
    stellar = scale * l_star_lsun * _stellar_lnu_per_lsun(lam_rest, t_star_k, d4000, young_frac, z)
    dust = scale * l_dust_lsun * _dust_lnu_per_lsun(lam_rest, t_dust_k, beta, alpha)
    return stellar, dust


def galaxy_band_fluxes_ujy(
    i_mag: np.ndarray,
    z: np.ndarray,
    dust_ratio: np.ndarray,
    t_star_k: np.ndarray,
    d4000: np.ndarray,
    young_frac: np.ndarray,
    t_dust_k: np.ndarray,
    beta: float = 1.5,
    alpha: float = 2.0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fluxes of galaxies in every band, normalised so the total suprime_i flux is ``i_mag``.

    The stellar luminosity is solved for exactly: F_i = L_star (s_i + ratio d_i), where s_i and
    d_i are the i-band fluxes per L_sun of the stellar and dust components.

    Parameters
    ----------
    i_mag : ndarray (n,), AB mag
        Total suprime_i magnitude (from the number counts).
    z, dust_ratio, t_star_k, d4000, young_frac, t_dust_k : ndarray (n,)
        Redshift, L_dust / L_star, old-star temperature (K), 4000 A break, young-star
        luminosity fraction, dust temperature (K).

    Returns
    -------
    fluxes : dict band -> ndarray (n,), uJy
    l_star_lsun : ndarray (n,), L_sun
    """
    lam = np.array([EFFECTIVE_WAVELENGTH_UM[b] for b in BANDS])[None, :]
    n = len(i_mag)
    total = np.empty((n, len(BANDS)))
    l_star = np.empty(n)
    i = BANDS.index("suprime_i")
    # Chunks bound the (n, bands) temporaries: memory stays flat for millions of galaxies.
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, min(lo + _CHUNK, n))
        zc = z[sl, None]
        ones = np.ones_like(zc)
        s_unit, d_unit = galaxy_sed_ujy(
            lam,
            zc,
            ones,
            ones,
            t_star_k[sl, None],
            d4000[sl, None],
            young_frac[sl, None],
            t_dust_k[sl, None],
            beta,
            alpha,
        )
        per_lstar = s_unit + dust_ratio[sl, None] * d_unit
        l_star[sl] = ab_mag_to_ujy(i_mag[sl]) / per_lstar[:, i]
        total[sl] = per_lstar * l_star[sl, None]
    return {b: total[:, k] for k, b in enumerate(BANDS)}, l_star


_CHUNK = 65536


def star_band_fluxes_ujy(i_mag: np.ndarray, t_eff_k: np.ndarray) -> dict[str, np.ndarray]:
    """Black-body fluxes of stars in every band, normalised to the suprime_i magnitude.

    Parameters
    ----------
    i_mag : ndarray (n,), AB mag
    t_eff_k : ndarray (n,), K

    Returns
    -------
    dict band -> ndarray (n,), uJy
    """
    lam = np.array([EFFECTIVE_WAVELENGTH_UM[b] for b in BANDS])[None, :]
    shape = _planck_shape(_H_OVER_K * (_C_UM_HZ / lam) / t_eff_k[:, None])
    i = BANDS.index("suprime_i")
    total = shape / shape[:, i : i + 1] * ab_mag_to_ujy(i_mag)[:, None]
    return {b: total[:, k] for k, b in enumerate(BANDS)}
