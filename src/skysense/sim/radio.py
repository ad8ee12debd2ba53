"""A simulated radio survey of the field, with its hosts as truth (HELP DMU 8/9-like).

A radio survey sees a fraction of the galaxies: ``density_deg2`` sources per deg^2 inside its
coverage, each on a host galaxy drawn with a preference for bright hosts (a Gaussian in i
magnitude over the galaxy counts; hosts go down to the field's magnitude limit, so some are
fainter than every optical survey: those radio sources have no counterpart in the
masterlist, and Q0 < 1 as in real data). Fluxes follow a power law dN/dS ~ S^-slope above
``flux_min_ujy``, measured with Gaussian noise. Positions scatter around the host by an
elliptical Gaussian whose 1-sigma semi-major axis is ``0.6 FWHM / SNR`` (Condon 1997), with
a random axis ratio and position angle, plus a circular systematic term: broad errors for
faint sources, as in real radio catalogues.

Written by :func:`skysense.sim.write_field` as ``catalogues/<name>.csv`` with a radio ID
configuration ``catalogues/<name>_radio.yaml`` (for ``skysense catalog radio-id``) and the
truth ``truth/radio.parquet`` (``radio_id``, ``object_id`` of the host, host ``ra``, ``dec``
and ``i_mag``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from skysense.errors import InputError
from skysense.sim._rng import substream
from skysense.sim.sky import Sky

__all__ = ["RadioSpec", "DEFAULT_RADIO", "make_radio_catalogue", "radio_config"]


@dataclasses.dataclass(frozen=True)
class RadioSpec:
    """A simulated radio survey.

    Parameters
    ----------
    name : str
        File stem.
    band : str
        HELP band name of the flux column in the masterlist (``f_<band>``).
    coverage : (x0, x1, y0, y1)
        Footprint as fractions of the field side (as :class:`~skysense.sim.SurveySpec`).
    density_deg2 : float, deg^-2
        Radio sources per deg^2.
    flux_min_ujy, slope : float
        Power-law fluxes above ``flux_min_ujy`` (uJy), dN/dS ~ S^-slope.
    noise_ujy : float, uJy
        Flux noise.
    beam_fwhm_arcsec : float, arcsec
    systematic_arcsec : float, arcsec
        Circular systematic positional scatter.
    host_mag : (float, float)
        Mean and width of the hosts' i magnitudes (AB) relative to the counts.
    """

    name: str = "vla"
    band: str = "vla_1p4ghz"
    coverage: tuple[float, float, float, float] = (0.12, 0.88, 0.12, 0.88)
    density_deg2: float = 2500.0
    flux_min_ujy: float = 80.0
    slope: float = 1.7
    noise_ujy: float = 20.0
    beam_fwhm_arcsec: float = 6.0
    systematic_arcsec: float = 0.3
    host_mag: tuple[float, float] = (21.0, 1.5)

    def validate(self) -> None:
        if not (self.density_deg2 > 0 and self.flux_min_ujy > 0 and self.slope > 1):
            raise InputError("radio survey: density, flux_min_ujy must be > 0 and slope > 1")


DEFAULT_RADIO = RadioSpec()


def make_radio_catalogue(
    sky: Sky, spec: RadioSpec = DEFAULT_RADIO
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observe the sky with the radio survey.

    Parameters
    ----------
    sky : Sky
    spec : RadioSpec

    Returns
    -------
    (catalogue, truth) : DataFrame, DataFrame
        ``catalogue``: ``radio_id, ra, dec`` (deg), ``flux_ujy, flux_err_ujy`` (uJy),
        ``maj_err_arcsec, min_err_arcsec`` (1-sigma, arcsec), ``pa_err_deg`` (east of north);
        ``truth``: ``radio_id, object_id, ra, dec, i_mag`` of each host.
    """
    spec.validate()
    rng = substream(sky.seed, f"radio.{spec.name}")
    gal = sky.galaxies
    inside = sky.geometry.contains(gal.ra.to_numpy(), gal.dec.to_numpy(), spec.coverage)
    x0, x1, y0, y1 = spec.coverage
    area = sky.geometry.solid_angle_deg2() * (x1 - x0) * (y1 - y0)
    n = min(int(rng.poisson(spec.density_deg2 * area)), int(inside.sum()))
    mag = gal.i_mag.to_numpy()
    # Importance weights: host magnitudes ~ N(host_mag) although galaxies follow the counts.
    dens = sky.counts.density(mag)
    w = np.where(
        inside, np.exp(-0.5 * ((mag - spec.host_mag[0]) / spec.host_mag[1]) ** 2) / dens, 0
    )
    hosts = np.sort(rng.choice(len(gal), size=n, replace=False, p=w / w.sum()))
    u = rng.uniform(size=n)
    flux = spec.flux_min_ujy * (1 - u) ** (-1.0 / (spec.slope - 1.0))
    measured = flux + rng.normal(0, spec.noise_ujy, n)
    snr = np.maximum(measured / spec.noise_ujy, 3.0)
    major = 0.6 * spec.beam_fwhm_arcsec / snr
    minor = major * rng.uniform(0.6, 1.0, n)
    pa = rng.uniform(0.0, 180.0, n)
    t = np.radians(pa)
    z1, z2 = rng.normal(size=(2, n))
    east = (
        major * z1 * np.sin(t) + minor * z2 * np.cos(t) + rng.normal(0, spec.systematic_arcsec, n)
    )
    north = (
        major * z1 * np.cos(t) - minor * z2 * np.sin(t) + rng.normal(0, spec.systematic_arcsec, n)
    )
    hra, hdec = gal.ra.to_numpy()[hosts], gal.dec.to_numpy()[hosts]
    dec = hdec + north / 3600.0
    ra = np.mod(hra + east / 3600.0 / np.cos(np.radians(hdec)), 360.0)
    ids = np.array([f"{spec.name.upper()}_{i + 1:05d}" for i in range(n)])
    cat = pd.DataFrame({
        "radio_id": ids, "ra": ra, "dec": dec, "flux_ujy": measured,
        "flux_err_ujy": np.full(n, spec.noise_ujy), "maj_err_arcsec": major,
        "min_err_arcsec": minor, "pa_err_deg": pa,
    })  # fmt: skip
    truth = pd.DataFrame({
        "radio_id": ids, "object_id": gal.object_id.to_numpy()[hosts], "ra": hra, "dec": hdec,
        "i_mag": mag[hosts], "flux_ujy": flux,
    })  # fmt: skip
    return cat, truth


def radio_config(spec: RadioSpec, catalogue_file: str) -> dict:
    """The radio ID configuration of the simulated survey (``skysense catalog radio-id``).

    The optical side is the masterlist's ``m_suprime_i`` (the field's deep detection band),
    with 0.1 arcsec positional errors; the search uses 1-mag cells, as a small field needs.
    """
    return {
        "radio": {
            "file": catalogue_file, "band": spec.band, "id": "radio_id", "ra": "ra",
            "dec": "dec", "flux": "flux_ujy", "flux_err": "flux_err_ujy", "flux_unit": "uJy",
            "position_error": {"major": "maj_err_arcsec", "minor": "min_err_arcsec",
                               "pa": "pa_err_deg"},
        },
        "optical": {"magnitude": "m_suprime_i", "position_error": {"sigma": 0.1}},
        "method": {
            "search_radius_arcsec": 5.0, "background_inner_arcsec": 10.0,
            "background_outer_arcsec": 30.0, "mag_edges": [16.0, 27.0, 1.0],
            "systematic_arcsec": spec.systematic_arcsec,
        },
    }  # fmt: skip
