"""Galaxies of the simulated sky drawn from the SED model family of :mod:`skysense.sed`.

Each galaxy gets physically consistent parameters and its photometry is the model's, integrated
through the real filter curve of every simulated band:

* **Model grid.** A :class:`skysense.sed.GridConfig` (:func:`sim_grid_config`): delayed-tau
  star-formation histories (7 e-folding times x 12 ages), BC03 stellar populations with nebular
  emission, the modified Charlot & Fall attenuation (9 ISM A_V values, mu = 0.44), Draine & Li
  dust emission by energy balance (7 U_min values, q_PAH = 2.5 %, gamma = 0.02), Inoue et al.
  (2014) IGM, Planck18, on 151 redshift nodes (0.01-1.5 step 0.025, then 0.05 to 6). It is built
  once by :func:`skysense.sed.io.cached_grid` and cached outside the repository
  (``$SKYSENSE_CACHE/sed`` or ``~/.cache/skysense/sed``; ~45 MB, ~10 s to build).
* **Population.** Magnitudes and redshifts come from the number counts (:mod:`skysense.sim.sky`);
  the quiescent flag from the ``red`` draw there. Given those, a star-forming galaxy's specific
  SFR is drawn about the main sequence of Speagle et al. (2014, ApJS 214, 15; 0.3 dex scatter),
  a quiescent one's 1.5 dex below it (0.4 dex scatter); the onset of its star formation is
  drawn uniformly in cosmic time (age 0.1 Gyr to the age of the Universe; quiescent: at least
  half that age). The SFH is the grid's (tau, age) pair nearest both targets (0.1 dex in sSFR
  weighs as 0.3 dex in age). The ISM attenuation of star-forming galaxies rises with stellar
  mass (Garn & Best 2010) as A_V = 0.5 + 0.7 (log M* - 10), 0.3 mag
  scatter, clipped to 0.1-2 mag (quiescent: 0.1-0.3 mag). U_min rises with redshift as
  4 (1 + z)^1.2 (0.15 dex scatter; Magdis et al. 2012, Bethermin et al. 2015), 0.8 for
  quiescent galaxies. The attenuation and U_min relations (:data:`AV_RELATION`,
  :data:`U_RELATION`) are set so that the noiseless SPIRE maps of a field are confused at
  5.7 / 7.0 / 6.4 mJy/beam (250/350/500 um, 5-sigma-clipped rms, 0.2 deg^2, seed 0), near the
  measured 5.8 / 6.3 / 6.8 (Nguyen et al. 2010): an i < 26 sample holds the galaxies of the
  far-infrared background only if the dustiest of them are in it. Continuous draws are
  snapped to the nearest grid node, so a galaxy's parameters are exactly one grid model's.
* **Photometry.** Model fluxes per solar mass formed are interpolated linearly in redshift
  between the two enclosing nodes (every model used is valid, younger than the Universe, at
  both); the normalisation (mass formed) is the one that gives the drawn suprime_i magnitude.
  Stellar mass, SFR and L_dust are the model's per-unit-mass values times that normalisation.
  The mass enters the main-sequence and attenuation relations, so model choice and
  normalisation are iterated (three passes).

Stars are black bodies integrated through the same filter curves
(:func:`star_band_fluxes_filters`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from skysense.sim.sed import ab_mag_to_ujy

__all__ = [
    "SIM_GRID",
    "AV_RELATION",
    "U_RELATION",
    "sim_grid_config",
    "sim_model_grid",
    "main_sequence_log_ssfr",
    "GalaxyModels",
    "draw_galaxy_models",
    "model_fluxes_mjy",
    "star_band_fluxes_filters",
]

#: Parameter nodes of the simulator's model grid (see the module docstring).
SIM_GRID: dict = {
    "redshifts": tuple(
        float(round(v, 4))
        for v in np.concatenate([np.arange(0.01, 1.5, 0.025), np.arange(1.5, 6.0001, 0.05)])
    ),
    "tau_main_gyr": (0.1, 0.3, 0.6, 1.0, 2.0, 4.0, 8.0),
    "age_gyr": tuple(float(round(v, 4)) for v in np.geomspace(0.1, 12.5, 12)),
    "f_burst": (0.0,),
    "av_ism": (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.4, 2.0),
    "mu": (0.44,),
    "umin": (0.5, 1.0, 2.0, 4.0, 7.0, 12.0, 20.0),
    "qpah": (2.5,),
    "gamma": (0.02,),
    "frac_agn": (0.0,),
    "nebular": True,
    "logu": -3.0,
    "cosmology": "Planck18",
    "igm": True,
}
# A_V^ISM = zero + slope (log M* - 10) +- scatter, clipped to [lo, 2] (star-forming galaxies)
AV_RELATION = {"zero": 0.5, "slope": 0.7, "scatter": 0.3, "lo": 0.1}
# U_min = zero (1 + z)^slope, log-normal scatter (dex), star-forming galaxies; quiescent: 0.8
U_RELATION = {"zero": 4.0, "slope": 1.2, "scatter": 0.15}
_LOG_SSFR_FLOOR = -14.0  # log10 yr^-1; quiescent models below it are all "dead"
_CHUNK = 65536


def sim_grid_config(bands):
    """The :class:`skysense.sed.GridConfig` of the simulator for ``bands`` (HELP names)."""
    from skysense.sed import GridConfig

    return GridConfig(bands=tuple(bands), **SIM_GRID)


@functools.lru_cache(maxsize=2)
def sim_model_grid(bands: tuple[str, ...]):
    """The simulator's model grid for ``bands`` (built once, then read from the cache).

    Returns
    -------
    skysense.sed.ModelGrid
    """
    from skysense.sed.io import cached_grid

    return cached_grid(sim_grid_config(bands))


def main_sequence_log_ssfr(log_mstar: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log10 specific SFR (yr^-1) on the star-forming main sequence of Speagle et al. (2014).

    log SFR = (0.84 - 0.026 t) log M* - (6.51 - 0.11 t), t the age of the Universe (Gyr,
    Planck18) at ``z``.
    """
    t = _age_universe_gyr(np.asarray(z, dtype=float))
    log_m = np.asarray(log_mstar, dtype=float)
    return (0.84 - 0.026 * t) * log_m - (6.51 - 0.11 * t) - log_m


@functools.lru_cache(maxsize=1)
def _age_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    z = np.linspace(0.0, 10.0, 2001)
    return z, Planck18.age(z).to_value("Gyr")


def _age_universe_gyr(z: np.ndarray) -> np.ndarray:
    zt, age = _age_table()
    return np.interp(z, zt, age)


class GalaxyModels:
    """The grid model and normalisation of each simulated galaxy.

    Attributes
    ----------
    model : ndarray (n,), int
        Index of the galaxy's model in the grid.
    mass_formed : ndarray (n,), M_sun
        Normalisation (mass of stars formed).
    fluxes_ujy : ndarray (n, n_band), uJy
        True fluxes in the grid's bands.
    properties : dict of str -> ndarray (n,)
        ``mstar_msun``, ``sfr_msun_yr``, ``sfr10_msun_yr``, ``sfr100_msun_yr``,
        ``l_dust_lsun``, ``a_v``, ``a_fuv`` and the model parameters (``tau_main_gyr``,
        ``age_gyr``, ``av_ism``, ``mu``, ``umin``, ``qpah``, ``gamma``, ``f_burst``).
    """

    def __init__(self, model, mass_formed, fluxes_ujy, properties):
        self.model = model
        self.mass_formed = mass_formed
        self.fluxes_ujy = fluxes_ujy
        self.properties = properties


def model_fluxes_mjy(grid, z: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Fluxes per M_sun formed of ``model`` at ``z``, linear between the enclosing z nodes.

    Parameters
    ----------
    grid : skysense.sed.ModelGrid
    z : ndarray (n,)
        Redshifts inside the grid's node range.
    model : ndarray (n,), int

    Returns
    -------
    ndarray (n, n_band), mJy per M_sun formed
    """
    nodes = grid.redshifts
    z = np.clip(np.asarray(z, dtype=float), nodes[0], nodes[-1])
    lo = np.clip(np.searchsorted(nodes, z, side="right") - 1, 0, nodes.size - 2)
    w = ((z - nodes[lo]) / (nodes[lo + 1] - nodes[lo]))[:, None]
    f = grid.fluxes_mjy
    return (1.0 - w) * f[lo, model].astype(float) + w * f[lo + 1, model].astype(float)


def _node_index(values: np.ndarray, nodes: np.ndarray, log: bool = False) -> np.ndarray:
    """Index of the nearest node (in log space when ``log``)."""
    v, n = (np.log(values), np.log(nodes)) if log else (values, nodes)
    i = np.clip(np.searchsorted(n, v), 1, n.size - 1)
    return np.where(np.abs(v - n[i - 1]) <= np.abs(n[i] - v), i - 1, i)


def draw_galaxy_models(
    grid,
    z: np.ndarray,
    i_mag: np.ndarray,
    quiescent: np.ndarray,
    rng: np.random.Generator,
    *,
    i_band: str = "suprime_i",
) -> GalaxyModels:
    """Draw each galaxy's model and normalise it to its suprime_i magnitude.

    Parameters
    ----------
    grid : skysense.sed.ModelGrid
        A grid of :func:`sim_grid_config` (one value each of mu, q_PAH, gamma, f_burst and
        frac_agn).
    z, i_mag : ndarray (n,)
        Redshift (inside the grid's nodes) and total AB magnitude in ``i_band``.
    quiescent : ndarray (n,), bool
    rng : numpy.random.Generator
        Consumed in a fixed order (seven standard draws per galaxy), whatever the grid.

    Returns
    -------
    GalaxyModels
    """
    z = np.asarray(z, dtype=float)
    n = z.size
    quiescent = np.asarray(quiescent, dtype=bool)
    # Every random number first, in a fixed order, so the stream does not depend on the data.
    u_age = rng.uniform(size=n)
    e_ssfr = rng.normal(size=n)
    e_av = rng.normal(size=n)
    u_av_q = rng.uniform(size=n)
    e_u = rng.normal(size=n)
    rng.normal(size=n)  # reserved (burst / metallicity draws), keeps later draws stable
    rng.normal(size=n)

    p = grid.params
    taus, ages = np.unique(p["tau_main_gyr"]), np.unique(p["age_gyr"])
    avs, umins = np.unique(p["av_ism"]), np.unique(p["umin"])
    i_tau = np.searchsorted(taus, p["tau_main_gyr"])
    i_age = np.searchsorted(ages, p["age_gyr"])
    i_av = np.searchsorted(avs, p["av_ism"])
    i_u = np.searchsorted(umins, p["umin"])
    code = ((i_tau * ages.size + i_age) * avs.size + i_av) * umins.size + i_u
    lookup = np.full(taus.size * ages.size * avs.size * umins.size, -1, dtype=np.int64)
    lookup[code] = np.arange(code.size)
    if np.any(lookup < 0):
        raise ValueError("grid is not a full product of tau, age, A_V and U_min nodes")

    # log sSFR of each SFH (tau, age), from any of its models
    sfh_code = i_tau * ages.size + i_age
    first = np.unique(sfh_code, return_index=True)[1]
    props = grid.props
    with np.errstate(divide="ignore"):
        log_ssfr_sfh = np.log10(props["sfr"][first] / props["mstar"][first])
    log_ssfr_sfh = np.maximum(log_ssfr_sfh, _LOG_SSFR_FLOOR)
    log_age_sfh = np.log10(ages[np.arange(first.size) % ages.size])

    # Targets that do not depend on the mass.
    t_univ = _age_universe_gyr(z)
    # onset of star formation uniform in cosmic time (quiescent: in the first half of it)
    lo_age = np.where(quiescent, 0.5 * t_univ, 0.1)
    log_age_t = np.log10(lo_age + u_age * (t_univ - lo_age))
    av_q = 0.1 + 0.2 * u_av_q  # quiescent: some dust (0.1-0.3 mag), never none
    avr = AV_RELATION
    ur = U_RELATION
    log_u = np.where(quiescent, math.log10(0.8),
                     math.log10(ur["zero"]) + ur["slope"] * np.log10(1.0 + z))  # fmt: skip
    log_u = log_u + ur["scatter"] * e_u
    j_u = _node_index(10.0**log_u, umins, log=True)
    # Ages valid at the upper redshift node enclosing z (the flux interpolation uses both).
    nodes = grid.redshifts
    hi = np.clip(np.searchsorted(nodes, np.clip(z, nodes[0], nodes[-1]), side="right"), 1,
                 nodes.size - 1)  # fmt: skip
    t_hi = _age_universe_gyr(nodes[hi])

    i_col = list(grid.bands).index(i_band)
    target_ujy = ab_mag_to_ujy(np.asarray(i_mag, dtype=float))
    log_m = np.full(n, 10.0)
    model = np.zeros(n, dtype=np.int64)
    for _ in range(3):  # mass -> (sSFR, A_V) targets -> model -> mass
        ssfr_t = main_sequence_log_ssfr(log_m, z) + np.where(quiescent, -1.5 + 0.4 * e_ssfr,
                                                             0.3 * e_ssfr)  # fmt: skip
        av_sf = avr["zero"] + avr["slope"] * (log_m - 10.0) + avr["scatter"] * e_av
        av_t = np.where(quiescent, av_q, np.clip(av_sf, avr["lo"], 2.0))
        j_av = _node_index(av_t, avs)
        for lo in range(0, n, _CHUNK):
            sl = slice(lo, min(lo + _CHUNK, n))
            # distance in (log sSFR, log age): 0.1 dex in sSFR weighs as 0.3 dex in age
            cost = ((log_ssfr_sfh[None, :] - ssfr_t[sl, None]) / 0.1) ** 2 + (
                (log_age_sfh[None, :] - log_age_t[sl, None]) / 0.3
            ) ** 2
            too_old = ages[np.arange(first.size) % ages.size][None, :] >= t_hi[sl, None]
            cost[too_old] = np.inf
            best = np.argmin(cost, axis=1)
            model[sl] = lookup[((best * avs.size + j_av[sl]) * umins.size) + j_u[sl]]
        per_mass = np.empty((n, len(grid.bands)))
        for lo in range(0, n, _CHUNK):
            sl = slice(lo, min(lo + _CHUNK, n))
            per_mass[sl] = model_fluxes_mjy(grid, z[sl], model[sl])
        mass_formed = target_ujy / (1e3 * per_mass[:, i_col])
        log_m = np.log10(mass_formed * props["mstar"][model])
    fluxes = per_mass * (1e3 * mass_formed[:, None])
    out = {
        "mstar_msun": mass_formed * props["mstar"][model],
        "sfr_msun_yr": mass_formed * props["sfr"][model],
        "sfr10_msun_yr": mass_formed * props["sfr10"][model],
        "sfr100_msun_yr": mass_formed * props["sfr100"][model],
        "l_dust_lsun": mass_formed * props["l_dust"][model],
        "a_v": props["a_v"][model],
        "a_fuv": props["a_fuv"][model],
    }
    for name in ("tau_main_gyr", "age_gyr", "f_burst", "av_ism", "mu", "umin", "qpah", "gamma"):
        out[name] = p[name][model]
    return GalaxyModels(model, mass_formed, fluxes, out)


@functools.lru_cache(maxsize=2)
def _star_table(bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """log T (K) and log band flux (n_t, n_band) of unit-temperature-normalised black bodies."""
    from skysense.sed.filters import filter_weights
    from skysense.sed.io import load_filters

    lam_aa = np.geomspace(1500.0, 1.2e7, 6000)
    w = filter_weights(lam_aa, load_filters(bands))
    temps = np.geomspace(2500.0, 12000.0, 300)
    x = 1.438776877e8 / (lam_aa[None, :] * temps[:, None])  # h c / (lam k T)
    nu = 2.99792458e18 / lam_aa
    with np.errstate(over="ignore"):
        fnu = nu[None, :] ** 3 / np.expm1(np.minimum(x, 700.0))
    band = fnu @ w
    return np.log(temps), np.log(np.maximum(band, 1e-300))


def star_band_fluxes_filters(
    i_mag: np.ndarray, t_eff_k: np.ndarray, bands: tuple[str, ...], i_band: str = "suprime_i"
) -> dict[str, np.ndarray]:
    """Black-body fluxes of stars through the real filter curves, normalised to ``i_mag``.

    Parameters
    ----------
    i_mag : ndarray (n,), AB mag in ``i_band``
    t_eff_k : ndarray (n,), K (2500-12000)
    bands : tuple of str
        HELP band names (must include ``i_band``).

    Returns
    -------
    dict band -> ndarray (n,), uJy
    """
    log_t, log_band = _star_table(tuple(bands))
    lt = np.log(np.asarray(t_eff_k, dtype=float))
    shape = np.stack([np.interp(lt, log_t, log_band[:, k]) for k in range(len(bands))], axis=1)
    i = list(bands).index(i_band)
    total = (
        np.exp(shape - shape[:, i : i + 1]) * ab_mag_to_ujy(np.asarray(i_mag, dtype=float))[:, None]
    )
    return {b: total[:, k] for k, b in enumerate(bands)}
