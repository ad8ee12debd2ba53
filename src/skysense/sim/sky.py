"""The seeded sky: galaxies and stars with their true positions, redshifts, motions and fluxes.

Galaxies follow a broken power-law differential number count in the suprime_i band,
dN/dm = N0 10^(alpha (m - m0)) per deg^2 per mag, with faint slope 0.36 and N0 = 1e4 at
i_AB = 21.5, steepening to 0.55 brighter than i = 19. This approximates published deep i-band
counts (Capak et al. 2004 ApJS 150, 1; Kashikawa et al. 2004 PASJ 56, 1011: faint-end slopes
0.3-0.4, ~2e5 galaxies per deg^2 brighter than i ~ 25). Redshifts follow a Smail et al. (1994)
law p(z|m) ~ z^2 exp(-(z/z0)^1.5) whose median rises with magnitude, z_med = 0.6 10^(0.1 (m -
22.5)) (zCOSMOS-like: 0.6 at i = 22.5, ~0.85 at i = 24).

Each galaxy's SED is, by default (``sed_model="sed"``), a model of :mod:`skysense.sed`'s
family (delayed-tau SFH, BC03 stars with nebular emission, Charlot & Fall attenuation, Draine &
Li dust by energy balance, Inoue 2014 IGM) with physically consistent parameters and true
stellar mass, SFR and dust luminosity, integrated through the real filter curves
(:mod:`skysense.sim.sedmodel`). The galaxy is quiescent ("red") with probability
0.35 exp(-z / 1.2). Half-light radii are ~0.8 arcsec at i = 20, shrinking by 0.08 dex per
magnitude.

``sed_model="blackbody"`` keeps the earlier model (:mod:`skysense.sim.sed`): old stars
4300 +- 300 K with a 4000 A break of 1.9 (red) or 1.25 (star forming); young stars carry 0-3 %
(red) or 15-70 % (star forming) of the stellar light; dust at T = 26 + 4 min(z, 3) +- 3 K,
beta = 1.5, with L_dust / L_star log-normal about 10^-1.3 (red) or 10^ir_ratio_log10 (1 + z)^2
(star forming, 0.35 dex scatter), bands read at effective wavelengths. Its noiseless SPIRE maps'
5-sigma-clipped rms is ~5.9 / 6.8 / 6.1 mJy/beam (250/350/500 um), close to the measured
confusion noise 5.8 / 6.3 / 6.8 mJy/beam (Nguyen et al. 2010).

Stars follow dN/dm ~ 10^(0.12 m) between i = 14 and 24 with a total density set by
``star_density_deg2`` (3000 deg^-2 suits a high-latitude field such as COSMOS, b ~ 42 deg), black
bodies of 3200-6500 K (through the filter curves with the default SED model) and proper motions
with a dispersion that falls with magnitude (25 mas/yr at i = 14, floor 2.5 mas/yr) around a
small reflex-motion mean.

Positions are uniform on the sphere inside the field (no clustering). True positions are at epoch
2016.0 (the Gaia reference epoch).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from skysense.errors import InputError
from skysense.sim._rng import substream
from skysense.sim.geometry import FieldGeometry
from skysense.sim.sed import BANDS, galaxy_band_fluxes_ujy, star_band_fluxes_ujy

__all__ = [
    "NumberCounts",
    "GALAXY_COUNTS",
    "Sky",
    "simulate_sky",
    "TRUTH_EPOCH",
    "truth_table",
    "SED_MODELS",
    "TRUTH_PHYSICS",
]

TRUTH_EPOCH = 2016.0
#: Galaxy SED models: ``"sed"`` (the model family of :mod:`skysense.sed`, through the real filter
#: curves; :mod:`skysense.sim.sedmodel`) and ``"blackbody"`` (the earlier black bodies plus a
#: modified black body read at effective wavelengths; :mod:`skysense.sim.sed`).
SED_MODELS = ("sed", "blackbody")
#: Physical truth of each object in the truth table (NaN for stars; for black-body galaxies
#: only ``l_dust_lsun`` is known).
TRUTH_PHYSICS = ["mstar_msun", "sfr_msun_yr", "l_dust_lsun"]


@dataclasses.dataclass(frozen=True)
class NumberCounts:
    """A broken power-law differential number count dN/dm (deg^-2 mag^-1).

    dN/dm = n0 10^(alpha_faint (m - m0)) for m >= m_break, and continues with slope
    alpha_bright for m < m_break.
    """

    n0: float = 1.0e4
    m0: float = 21.5
    alpha_faint: float = 0.36
    m_break: float = 19.0
    alpha_bright: float = 0.55

    def density(self, mag: np.ndarray) -> np.ndarray:
        """dN/dm at ``mag`` (deg^-2 mag^-1)."""
        mag = np.asarray(mag, dtype=float)
        at_break = self.n0 * 10.0 ** (self.alpha_faint * (self.m_break - self.m0))
        return np.where(
            mag >= self.m_break,
            self.n0 * 10.0 ** (self.alpha_faint * (mag - self.m0)),
            at_break * 10.0 ** (self.alpha_bright * (mag - self.m_break)),
        )

    def cumulative(self, mag: np.ndarray) -> np.ndarray:
        """N(< mag) per deg^2 (integral of dN/dm from -infinity)."""
        mag = np.asarray(mag, dtype=float)
        ln10 = math.log(10.0)
        at_break = self.n0 * 10.0 ** (self.alpha_faint * (self.m_break - self.m0))
        bright_total = at_break / (self.alpha_bright * ln10)
        bright = at_break * 10.0 ** (
            self.alpha_bright * (np.minimum(mag, self.m_break) - self.m_break)
        )
        faint = (self.density(np.maximum(mag, self.m_break)) - at_break) / (self.alpha_faint * ln10)
        return np.where(
            mag < self.m_break, bright / (self.alpha_bright * ln10), bright_total + faint
        )

    def expected(self, m_lo: float, m_hi: float, area_deg2: float) -> float:
        """Expected number of objects with m_lo <= m < m_hi over ``area_deg2``."""
        return float((self.cumulative(m_hi) - self.cumulative(m_lo)) * area_deg2)

    def sample(self, n: int, m_lo: float, m_hi: float, rng: np.random.Generator) -> np.ndarray:
        """``n`` magnitudes drawn from the counts restricted to [m_lo, m_hi) (inverse CDF)."""
        c_lo, c_hi = self.cumulative(m_lo), self.cumulative(m_hi)
        grid = np.linspace(m_lo, m_hi, 4097)
        cdf = (self.cumulative(grid) - c_lo) / (c_hi - c_lo)
        # The CDF is a sum of exponentials; invert piecewise-exactly on a fine grid of log CDF.
        u = rng.uniform(0.0, 1.0, n)
        return np.interp(u, cdf, grid)


GALAXY_COUNTS = NumberCounts()
#: Stellar counts: slope 0.12 per mag; n0 is rescaled to ``star_density_deg2``.
STAR_SLOPE = 0.12
STAR_MAG_RANGE = (14.0, 24.0)


@dataclasses.dataclass
class Sky:
    """The simulated sky.

    Attributes
    ----------
    galaxies, stars : pandas.DataFrame
        One row per object: ``object_id`` (int64), ``kind``, ``ra``, ``dec`` (deg, epoch
        2016.0), ``z`` (NaN for stars), ``pmra``, ``pmdec`` (mas/yr, pmra includes cos dec),
        ``i_mag`` (AB), ``f_<band>`` true total flux (uJy) for every band,
        :data:`TRUTH_PHYSICS` (true stellar mass, SFR, dust luminosity), plus model truth
        (galaxies: ``red``, ``r_half_arcsec`` and, for the ``"sed"`` model, the grid model's
        parameters and properties (:class:`skysense.sim.sedmodel.GalaxyModels`), for
        ``"blackbody"`` ``t_star_k``, ``d4000``, ``young_frac``, ``t_dust_k``,
        ``l_star_lsun``; stars: ``t_eff_k``).
    geometry : FieldGeometry
    seed : int
    counts : NumberCounts
        The galaxy counts model used.
    mag_limit : float
        Faintest galaxy simulated (suprime_i, AB).
    star_density_deg2 : float
    """

    galaxies: pd.DataFrame
    stars: pd.DataFrame
    geometry: FieldGeometry
    seed: int
    counts: NumberCounts
    mag_limit: float
    star_density_deg2: float
    epoch: float = TRUTH_EPOCH
    sed_model: str = "sed"

    @property
    def objects(self) -> pd.DataFrame:
        """Galaxies then stars in the truth-table layout (see :func:`truth_table`)."""
        return truth_table(self)


def truth_table(sky: Sky) -> pd.DataFrame:
    """``truth/objects.parquet`` columns: object_id, kind, ra, dec, z, pmra, pmdec, f_<band>
    (uJy), mstar_msun, sfr_msun_yr, l_dust_lsun (NaN for stars)."""
    cols = ["object_id", "kind", "ra", "dec", "z", "pmra", "pmdec"] + [f"f_{b}" for b in BANDS]
    cols += TRUTH_PHYSICS
    stars = sky.stars.reindex(columns=cols)
    return pd.concat([sky.galaxies[cols], stars], ignore_index=True)


def _galaxies(
    geom: FieldGeometry,
    seed: int,
    counts: NumberCounts,
    mag_limit: float,
    ir_ratio_log10: float,
    m_min: float,
    sed_model: str = "sed",
) -> pd.DataFrame:
    rng = substream(seed, "sky.galaxies")
    n = rng.poisson(counts.expected(m_min, mag_limit, geom.solid_angle_deg2()))
    ra, dec = geom.sample_uniform(n, rng)
    i_mag = counts.sample(n, m_min, mag_limit, rng)
    z_med = 0.6 * 10.0 ** (0.1 * (i_mag - 22.5))
    z = np.clip(z_med / 1.412 * rng.gamma(2.0, 1.0, n) ** (2.0 / 3.0), 0.01, 6.0)
    red = rng.uniform(size=n) < 0.35 * np.exp(-z / 1.2)
    t_star = np.clip(rng.normal(4300.0, 300.0, n), 3500.0, 6000.0)
    young = np.where(red, rng.uniform(0.0, 0.03, n), rng.uniform(0.15, 0.7, n))
    d4000 = np.where(red, rng.normal(1.9, 0.1, n), rng.normal(1.25, 0.08, n))
    d4000 = np.clip(d4000, 1.05, 2.4)
    # Dust luminosity tied to the stellar one; star formation (hence dust) rises with z.
    log_ratio = np.where(
        red,
        rng.normal(-1.3, 0.3, n),
        rng.normal(ir_ratio_log10 + 2.0 * np.log10(1.0 + z), 0.35, n),
    )
    ratio = 10.0**log_ratio
    t_dust = np.clip(rng.normal(26.0 + 4.0 * np.minimum(z, 3.0), 3.0, n), 18.0, 55.0)
    # The black-body draws above are made for either model: the sizes below (and every other
    # stream) are then the same whichever SED model the galaxies get.
    r_half = np.clip(10.0 ** rng.normal(math.log10(0.8) - 0.08 * (i_mag - 20.0), 0.15, n), 0.1, 8.0)
    base = {
        "object_id": np.arange(1, n + 1, dtype=np.int64),
        "kind": pd.Series(["galaxy"] * n, dtype="str"),
        "ra": ra,
        "dec": dec,
        "z": z,
        "pmra": np.zeros(n),
        "pmdec": np.zeros(n),
        "i_mag": i_mag,
        "red": red,
    }
    if sed_model == "sed":
        from skysense.sim.sedmodel import draw_galaxy_models, sim_model_grid

        grid = sim_model_grid(BANDS)
        gm = draw_galaxy_models(grid, z, i_mag, red, substream(seed, "sky.galaxies.sed"))
        frame = pd.DataFrame({**base, **gm.properties, "mass_formed_msun": gm.mass_formed,
                              "grid_model": gm.model, "r_half_arcsec": r_half})  # fmt: skip
        for k, band in enumerate(grid.bands):
            frame[f"f_{band}"] = gm.fluxes_ujy[:, k]
        return frame
    fluxes, l_star = galaxy_band_fluxes_ujy(i_mag, z, ratio, t_star, d4000, young, t_dust)
    frame = pd.DataFrame(
        {
            **base,
            "t_star_k": t_star,
            "d4000": d4000,
            "young_frac": young,
            "t_dust_k": t_dust,
            "l_star_lsun": l_star,
            "l_dust_lsun": l_star * ratio,
            "r_half_arcsec": r_half,
            "mstar_msun": np.full(n, np.nan),
            "sfr_msun_yr": np.full(n, np.nan),
        }
    )
    for band in BANDS:
        frame[f"f_{band}"] = fluxes[band]
    return frame


def _stars(
    geom: FieldGeometry, seed: int, density_deg2: float, first_id: int, sed_model: str = "sed"
) -> pd.DataFrame:
    rng = substream(seed, "sky.stars")
    lo, hi = STAR_MAG_RANGE
    n = rng.poisson(density_deg2 * geom.solid_angle_deg2()) if density_deg2 > 0 else 0
    ra, dec = geom.sample_uniform(n, rng)
    # Inverse CDF of dN/dm ~ 10^(s m) on [lo, hi).
    s = STAR_SLOPE * math.log(10.0)
    u = rng.uniform(size=n)
    i_mag = np.log(np.exp(s * lo) + u * (np.exp(s * hi) - np.exp(s * lo))) / s
    cool = rng.uniform(size=n) < 0.6
    t_eff = np.where(cool, rng.uniform(3200.0, 4200.0, n), rng.uniform(4500.0, 6500.0, n))
    sigma_pm = np.maximum(2.5, 25.0 * 10.0 ** (-0.15 * (i_mag - 14.0)))
    pmra = rng.normal(0.0, 1.0, n) * sigma_pm - 1.5
    pmdec = rng.normal(0.0, 1.0, n) * sigma_pm - 2.5
    if sed_model == "sed":
        from skysense.sim.sedmodel import star_band_fluxes_filters

        fluxes = star_band_fluxes_filters(i_mag, t_eff, BANDS)
    else:
        fluxes = star_band_fluxes_ujy(i_mag, t_eff)
    frame = pd.DataFrame(
        {
            "object_id": np.arange(first_id, first_id + n, dtype=np.int64),
            "kind": pd.Series(["star"] * n, dtype="str"),
            "ra": ra,
            "dec": dec,
            "z": np.full(n, np.nan),
            "pmra": pmra,
            "pmdec": pmdec,
            "i_mag": i_mag,
            "t_eff_k": t_eff,
        }
    )
    for band in BANDS:
        frame[f"f_{band}"] = fluxes[band]
    return frame


def simulate_sky(
    *,
    seed: int = 0,
    area_deg2: float = 1.0,
    center: tuple[float, float] = (150.1, 2.2),
    mag_limit: float = 26.0,
    star_density_deg2: float = 3000.0,
    counts: NumberCounts = GALAXY_COUNTS,
    ir_ratio_log10: float = -0.42,
    m_min: float = 14.0,
    sed_model: str = "sed",
) -> Sky:
    """Draw the galaxies and stars of a square field.

    Parameters
    ----------
    seed : int
        Field seed; galaxies and stars use independent sub-streams of it.
    area_deg2 : float, deg^2
        Exact solid angle of the square field.
    center : (float, float), deg
        Field centre (ra, dec); any ra (wraps through 0/360) and |dec| <= 90.
    mag_limit : float, AB mag
        Faintest suprime_i magnitude simulated. Galaxies fainter than every survey are kept:
        they make the far-infrared maps confusion limited.
    star_density_deg2 : float, deg^-2
        Stars with 14 <= i < 24 per deg^2 (3000: high Galactic latitude).
    counts : NumberCounts
        Galaxy differential counts in suprime_i.
    ir_ratio_log10 : float
        log10 of L_dust / L_star for a star-forming galaxy at z = 0 (it rises as (1 + z)^2);
        the default gives SPIRE confusion noise close to the measured 5.8/6.3/6.8 mJy/beam.
    m_min : float, AB mag
        Brightest galaxy simulated.
    sed_model : {"sed", "blackbody"}
        Galaxy SEDs from the model family of :mod:`skysense.sed` integrated through the real
        filter curves (default; needs the ``sed`` extra: bagpipes, astro-sedpy), or the
        earlier black bodies read at effective wavelengths (``ir_ratio_log10`` applies to this
        one only). Positions, magnitudes, redshifts, sizes and stars' motions are the same
        for both.

    Returns
    -------
    Sky

    Raises
    ------
    InputError
        On a non-integer or negative seed, a bad centre/area or magnitude range.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        ra0, dec0 = (float(c) for c in center)
    except (TypeError, ValueError):
        raise InputError(f"center must be (ra, dec) in degrees, got {center!r}") from None
    geom = FieldGeometry(ra0, dec0, float(area_deg2))
    if not (math.isfinite(mag_limit) and m_min < mag_limit <= 30.0):
        raise InputError(f"mag_limit must be in ({m_min}, 30], got {mag_limit}")
    if not (math.isfinite(star_density_deg2) and star_density_deg2 >= 0):
        raise InputError(f"star_density_deg2 must be >= 0, got {star_density_deg2}")
    if sed_model not in SED_MODELS:
        raise InputError(f"sed_model must be one of {', '.join(SED_MODELS)}, got {sed_model!r}")
    galaxies = _galaxies(
        geom, int(seed), counts, float(mag_limit), ir_ratio_log10, m_min, sed_model
    )
    stars = _stars(geom, int(seed), float(star_density_deg2), len(galaxies) + 1, sed_model)
    return Sky(
        galaxies=galaxies,
        stars=stars,
        geometry=geom,
        seed=int(seed),
        counts=counts,
        mag_limit=float(mag_limit),
        star_density_deg2=float(star_density_deg2),
        sed_model=sed_model,
    )
