"""Small seeded pristine catalogues with a known truth, for the preparation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from skysense.catalog.astrometry import propagate_positions

SURVEY_EPOCH = 2008.5
REF_EPOCH = 2016.0


def make_survey(
    n: int = 3000,
    *,
    center_ra: float = 150.0,
    center_dec: float = 2.0,
    size_deg: float = 0.3,
    offset_arcsec: tuple[float, float] = (0.3, -0.2),
    apcor_mag: float = -0.25,
    star_fraction: float = 0.3,
    dup_fraction: float = 0.03,
    pos_noise_arcsec: float = 0.05,
    seed: int = 1,
):
    """A pristine catalogue and a Gaia-like reference.

    Returns ``(raw, reference, truth)``: ``raw`` has SExtractor-like columns and Vega-free
    magnitudes; the survey positions equal the truth at ``SURVEY_EPOCH`` minus the planted
    offset ``(dRA cos dec, dDec)``, so the measured reference - survey offset is the plant.
    """
    rng = np.random.default_rng(seed)
    cosd = np.cos(np.radians(center_dec))
    ra = (center_ra + (rng.random(n) - 0.5) * size_deg / cosd) % 360.0
    dec = center_dec + (rng.random(n) - 0.5) * size_deg
    star = rng.random(n) < star_fraction
    pmra = np.where(star, rng.normal(0, 15, n), 0.0)
    pmdec = np.where(star, rng.normal(0, 15, n), 0.0)
    mag_u = rng.uniform(16.0, 24.0, n)
    mag_k = mag_u - rng.uniform(0.5, 2.0, n)
    # Truth at the survey epoch: the reference epoch positions moved back.
    ra_s, dec_s = propagate_positions(ra, dec, pmra, pmdec, REF_EPOCH, SURVEY_EPOCH)
    dra, ddec = offset_arcsec
    noise = pos_noise_arcsec / 3600.0
    obs_ra = ra_s - dra / 3600.0 / np.cos(np.radians(dec_s)) + rng.normal(0, noise, n) / cosd
    obs_dec = dec_s - ddec / 3600.0 + rng.normal(0, noise, n)
    merr_u = 0.01 + 0.02 * 10 ** (0.4 * (mag_u - 22))
    obs_u = mag_u + rng.normal(0, merr_u)
    ap_u = obs_u - apcor_mag + np.where(star, rng.normal(0, 0.02, n), rng.uniform(0.2, 1.0, n))
    flux_k_njy = 10 ** ((23.9 - mag_k) / 2.5) * 1e3
    ferr_k_njy = flux_k_njy * 0.05 + 50.0
    class_star = np.where(star, rng.uniform(0.92, 1.0, n), rng.uniform(0.0, 0.5, n))
    raw = pd.DataFrame(
        {
            "SeqNr": np.arange(1, n + 1, dtype=np.int64),
            "ALPHA_J2000": obs_ra % 360.0,
            "DELTA_J2000": obs_dec,
            "CLASS_STAR": class_star,
            "MAG_AUTO_U": obs_u,
            "MAGERR_AUTO_U": merr_u,
            "MAG_APER_U": ap_u,
            "MAGERR_APER_U": merr_u,
            "FLUX_K": flux_k_njy + rng.normal(0, ferr_k_njy),
            "FLUXERR_K": ferr_k_njy,
            "FLAGS": np.where(rng.random(n) < 0.02, 4, 0).astype(np.int16),
        }
    )
    # A few missing measurements as sentinels.
    miss = rng.random(n) < 0.02
    raw.loc[miss, ["MAG_AUTO_U", "MAGERR_AUTO_U"]] = 99.0
    # Duplicates: later rows, slightly displaced, noisier.
    n_dup = int(dup_fraction * n)
    src = rng.choice(np.flatnonzero(~miss), n_dup, replace=False)
    dup = raw.iloc[src].copy()
    dup["SeqNr"] = np.arange(n + 1, n + n_dup + 1)
    dup["ALPHA_J2000"] += 0.1 / 3600.0 / cosd
    dup["MAGERR_AUTO_U"] *= 3.0
    dup["FLUXERR_K"] *= 3.0
    raw = pd.concat([raw, dup], ignore_index=True)
    ref = pd.DataFrame(
        {
            "source_id": np.arange(star.sum(), dtype=np.int64),
            "ra": ra[star],
            "dec": dec[star],
            "ra_error": 0.1,
            "dec_error": 0.1,
            "pmra": pmra[star],
            "pmdec": pmdec[star],
            "phot_g_mean_mag": mag_u[star] - 0.8,
            "ref_epoch": REF_EPOCH,
        }
    )
    truth = {
        "offset_arcsec": offset_arcsec,
        "apcor_mag": apcor_mag,
        "star": star,
        "dup_source_rows": src,
        "n": n,
    }
    return raw, ref, truth


def survey_config(file: str = "cfhtls.parquet") -> dict:
    """Contract-2 configuration of :func:`make_survey`'s columns."""
    return {
        "survey": "cfhtls",
        "file": file,
        "epoch": SURVEY_EPOCH,
        "columns": {
            "id": "SeqNr",
            "ra": "ALPHA_J2000",
            "dec": "DELTA_J2000",
            "stellarity": "CLASS_STAR",
        },
        "bands": [
            {
                "name": "megacam_u",
                "mag": "MAG_AUTO_U",
                "mag_err": "MAGERR_AUTO_U",
                "mag_ap": "MAG_APER_U",
                "mag_ap_err": "MAGERR_APER_U",
                "system": "AB",
                "missing": [99.0, -99.0],
            },
            {
                "name": "ukidss_k",
                "flux": "FLUX_K",
                "flux_err": "FLUXERR_K",
                "flux_unit": "nJy",
                "flag": "FLAGS",
            },
        ],
        "cuts": [],
        "dedupe_radius_arcsec": 0.3,
    }
