"""Survey catalogues against the truth: astrometry, photometry, conventions, duplicates."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from skysense.errors import InputError
from skysense.sim import (
    DEFAULT_SURVEYS,
    make_reference_catalogue,
    make_survey_catalogue,
    simulate_sky,
)
from skysense.sim.sed import VEGA_TO_AB, ujy_to_ab_mag
from skysense.sim.surveys import positions_at_epoch

SPECS = {s.name: s for s in DEFAULT_SURVEYS}


@pytest.fixture(scope="module")
def sky():
    # Extra stars so the star-based checks have numbers.
    return simulate_sky(seed=7, area_deg2=0.06, star_density_deg2=20000.0)


@pytest.fixture(scope="module")
def catalogues(sky):
    return {name: make_survey_catalogue(sky, spec) for name, spec in SPECS.items()}


def _joined(cat, sky):
    """Catalogue rows with their true object (non-duplicates)."""
    table = cat.table.copy()
    table["object_id"] = cat.rows.object_id.to_numpy()
    table["is_duplicate"] = cat.rows.is_duplicate.to_numpy()
    truth = sky.objects.set_index("object_id")
    table = table[~table.is_duplicate]
    return table, truth.loc[table.object_id.to_numpy()].reset_index()


@pytest.mark.parametrize("name", list(SPECS))
def test_positions_scatter_by_stated_sigma_about_stated_offset(name, catalogues, sky):
    spec = SPECS[name]
    table, truth = _joined(catalogues[name], sky)
    ra_t, dec_t = positions_at_epoch(truth.ra, truth.dec, truth.pmra, truth.pmdec, spec.epoch)
    dec = table[spec.dec_column].to_numpy()
    dra = (
        ((table[spec.ra_column].to_numpy() - ra_t + 180) % 360 - 180)
        * np.cos(np.radians(dec))
        * 3600
    )
    ddec = (dec - dec_t) * 3600
    n = len(table)
    assert n > 500
    for delta, offset in ((dra, spec.offset_ra_arcsec), (ddec, spec.offset_dec_arcsec)):
        sigma = spec.pos_sigma_arcsec
        # Mean recovers the offset within its standard error; scatter the stated sigma within
        # the standard error of a standard deviation, sigma / sqrt(2n).
        assert abs(delta.mean() - offset) < 4 * sigma / math.sqrt(n)
        assert abs(np.std(delta - offset) - sigma) < 4 * sigma / math.sqrt(2 * n)


def test_stars_observed_at_survey_epoch(catalogues, sky):
    """Proper motion matters: star positions moved by pm * (epoch - 2016) (regression slope 1)."""
    spec = SPECS["cfhtls"]
    table, truth = _joined(catalogues["cfhtls"], sky)
    star = (truth.kind == "star").to_numpy()
    assert star.sum() > 200
    dt = spec.epoch - 2016.0
    shift = truth.pmdec.to_numpy()[star] * dt / 1000.0  # arcsec
    resid = (table[spec.dec_column].to_numpy()[star] - truth.dec.to_numpy()[star]) * 3600
    resid -= spec.offset_dec_arcsec
    slope = np.sum(resid * shift) / np.sum(shift**2)
    slope_err = spec.pos_sigma_arcsec / math.sqrt(np.sum(shift**2))
    assert abs(slope - 1.0) < 4 * slope_err
    assert slope_err < 0.1


def test_vega_magnitudes_carry_vega_to_ab_offsets(catalogues, sky):
    spec = SPECS["ukidss"]
    table, truth = _joined(catalogues["ukidss"], sky)
    for b in spec.bands:
        mag = table[b.total].to_numpy()
        err = table[b.total_err].to_numpy()
        good = (mag != spec.missing_value) & (err < 0.05)
        assert good.sum() > 100
        resid = (
            mag[good] + VEGA_TO_AB[b.band] - ujy_to_ab_mag(truth[f"f_{b.band}"].to_numpy()[good])
        )
        # m_AB = m_Vega + offset: residuals centred on zero, pulls of unit width.
        assert abs(np.median(resid)) < 0.01
        assert np.std(resid / err[good]) == pytest.approx(1.0, abs=0.15)
    assert catalogues["ukidss"].config["bands"][0]["vega_to_ab"] == 0.938
    assert catalogues["ukidss"].config["bands"][1]["vega_to_ab"] == 1.900


@pytest.mark.parametrize("name", ["cfhtls", "suprime", "ukidss"])
def test_point_source_aperture_correction_constant(name, catalogues, sky):
    """For stars m_ap - m_tot equals the survey's aperture correction (flat curve of growth)."""
    spec = SPECS[name]
    table, truth = _joined(catalogues[name], sky)
    stars = (truth.kind == "star").to_numpy()
    for b in spec.bands:
        tot, ap = table[b.total].to_numpy(), table[b.aperture].to_numpy()
        err = table[b.total_err].to_numpy()
        good = stars & (err < 0.03) & (tot != spec.missing_value) & (ap != spec.missing_value)
        good &= np.isfinite(tot) & np.isfinite(ap)
        assert good.sum() > 20, b.band
        assert np.median(ap[good] - tot[good]) == pytest.approx(b.aperture_correction_mag, abs=0.01)
        # Galaxies lose more light than stars in the aperture.
        gal = (
            ~stars & (err < 0.03) & np.isfinite(tot) & np.isfinite(ap) & (tot != spec.missing_value)
        )
        assert np.median(ap[gal] - tot[gal]) > b.aperture_correction_mag + 0.05


def test_flux_survey_is_unbiased_in_ujy(catalogues, sky):
    spec = SPECS["swire"]
    table, truth = _joined(catalogues["swire"], sky)
    b = spec.bands[0]
    f, e = table[b.total].to_numpy(), table[b.total_err].to_numpy()
    good = np.isfinite(f)
    pulls = (f[good] - truth[f"f_{b.band}"].to_numpy()[good]) / e[good]
    # Bright objects only: selection at the limit (Eddington bias) would shift faint ones.
    bright = truth[f"f_{b.band}"].to_numpy()[good] > 20 * np.median(e[good])
    assert abs(np.mean(pulls[bright])) < 0.1
    assert np.std(pulls[bright]) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("name", list(SPECS))
def test_detection_limit_and_errors_follow_depth(name, catalogues, sky):
    spec = SPECS[name]
    cat = catalogues[name]
    det = next(b for b in spec.bands if b.band == spec.detection_band)
    truth = sky.objects
    inside = sky.geometry.contains(truth.ra.to_numpy(), truth.dec.to_numpy(), spec.coverage)
    true_mag = ujy_to_ab_mag(truth[f"f_{det.band}"].to_numpy())
    detected = np.isin(truth.object_id, cat.rows.object_id[~cat.rows.is_duplicate])
    # Objects 1 mag above the limit are found (but for the random missing fraction), objects
    # 1.5 mag below it essentially never.
    bright = inside & (true_mag < det.depth_5sigma_ab - 1.0)
    faint = inside & (true_mag > det.depth_5sigma_ab + 1.5)
    assert detected[bright].mean() > 1 - det.missing_fraction - 0.01
    assert detected[faint].mean() < 0.01
    # Nothing is catalogued outside the footprint (allowing for motion + scatter at the edge).
    assert not detected[
        ~sky.geometry.contains(
            truth.ra.to_numpy(), truth.dec.to_numpy(), _grow(spec.coverage, 0.01)
        )
    ].any()


def _grow(cov, d):
    x0, x1, y0, y1 = cov
    return (max(0, x0 - d), min(1, x1 + d), max(0, y0 - d), min(1, y1 + d))


@pytest.mark.parametrize("name", list(SPECS))
def test_duplicates_near_bright_parents(name, catalogues, sky):
    spec = SPECS[name]
    cat = catalogues[name]
    rows = cat.rows
    assert rows.source_id.is_unique
    dups = rows[rows.is_duplicate]
    assert len(dups) == cat.meta["n_duplicates"] > 0
    truth = sky.objects.set_index("object_id")
    parent_mag = ujy_to_ab_mag(truth.loc[dups.object_id, f"f_{spec.detection_band}"].to_numpy())
    assert np.all(parent_mag < spec.duplicate_mag)
    # Each duplicate lies 0.6-2 arcsec (+ scatter) from its parent's catalogue row.
    table = cat.table.assign(object_id=rows.object_id.to_numpy(), dup=rows.is_duplicate.to_numpy())
    parents = table[~table.dup].set_index("object_id")
    d = table[table.dup]
    p = parents.loc[d.object_id]
    sep = (
        np.hypot(
            (d[spec.ra_column].to_numpy() - p[spec.ra_column].to_numpy())
            * np.cos(np.radians(d[spec.dec_column].to_numpy())),
            d[spec.dec_column].to_numpy() - p[spec.dec_column].to_numpy(),
        )
        * 3600
    )
    assert np.all(sep < 2.0 + 6 * spec.pos_sigma_arcsec)
    assert np.all(sep > 0.6 - 6 * spec.pos_sigma_arcsec)


def test_missing_values_use_survey_sentinels(catalogues):
    cfht = catalogues["cfhtls"].table
    assert (cfht["MAG_AUTO_U"] == 99.0).any() and not cfht["MAG_AUTO_U"].isna().any()
    assert ((cfht["MAG_AUTO_U"] == 99.0) == (cfht["MAGERR_AUTO_U"] == 99.0)).all()
    ukidss = catalogues["ukidss"].table
    assert (ukidss["jPetroMag"] == -999999500.0).any()
    sup = catalogues["suprime"].table
    assert sup["i_apmag_2"].isna().any()
    swire = catalogues["swire"].table
    assert swire["FLUX_AP2_IRAC1"].isna().any()
    # Real magnitudes are never mistaken for sentinels.
    good = cfht["MAG_AUTO_R"][cfht["MAG_AUTO_R"] != 99.0]
    assert good.between(10, 35).all()


def test_stellarity_separates_bright_stars(catalogues, sky):
    table, truth = _joined(catalogues["cfhtls"], sky)
    bright = (table["MAGERR_AUTO_R"] < 0.02).to_numpy()
    star = (truth.kind == "star").to_numpy()
    cls = table["CLASS_STAR"].to_numpy()
    assert np.median(cls[bright & star]) > 0.9 > 0.1 > np.median(cls[bright & ~star])
    assert ((cls >= 0) & (cls <= 1)).all()


def test_survey_streams_are_independent(sky):
    """Changing one survey leaves the others' rows untouched."""
    base = make_survey_catalogue(sky, SPECS["suprime"])
    changed = dataclasses.replace(SPECS["cfhtls"], offset_ra_arcsec=1.0, pos_sigma_arcsec=0.5)
    make_survey_catalogue(sky, changed)
    again = make_survey_catalogue(sky, SPECS["suprime"])
    pd.testing.assert_frame_equal(base.table, again.table)


def test_reference_catalogue(sky):
    ref = make_reference_catalogue(sky)
    assert (ref.phot_g_mean_mag < 20).all() and len(ref) > 50
    assert (ref.ref_epoch == 2016.0).all()
    truth = sky.stars.set_index("object_id").loc[ref.object_id]
    dra = (ref.ra.to_numpy() - truth.ra.to_numpy()) * np.cos(np.radians(ref.dec.to_numpy())) * 3.6e6
    pull = dra / ref.ra_error.to_numpy()
    assert np.std(pull) == pytest.approx(1.0, abs=0.2)
    assert np.std(
        (ref.pmra.to_numpy() - truth.pmra.to_numpy()) / ref.pmra_error.to_numpy()
    ) == pytest.approx(1.0, abs=0.2)


def test_config_names_the_catalogue_columns(catalogues):
    for cat in catalogues.values():
        cols = set(cat.table.columns)
        conf = cat.config
        assert set(conf["columns"].values()) <= cols
        for band in conf["bands"]:
            for key in (
                "mag",
                "mag_err",
                "mag_ap",
                "mag_ap_err",
                "flux",
                "flux_err",
                "flux_ap",
                "flux_ap_err",
            ):
                if key in band:
                    assert band[key] in cols


@pytest.mark.parametrize(
    "change",
    [
        {"name": "Bad-Name"},
        {"format": "xlsx"},
        {"photometry": "ST"},
        {"coverage": (0.5, 0.2, 0.0, 1.0)},
        {"detection_band": "spire_250"},
        {"pos_sigma_arcsec": -0.1},
    ],
)
def test_invalid_survey_spec(change, sky):
    with pytest.raises(InputError):
        make_survey_catalogue(sky, dataclasses.replace(SPECS["cfhtls"], **change))


def test_select_surveys_keeps_order_and_names_unknown_ones():
    from skysense.sim import DEFAULT_SURVEYS, select_surveys

    got = select_surveys(["ukidss", "cfhtls"])
    assert [s.name for s in got] == ["ukidss", "cfhtls"]
    assert got[1] is next(s for s in DEFAULT_SURVEYS if s.name == "cfhtls")
    assert select_surveys([]) == ()
    with pytest.raises(InputError, match=r"unknown survey\(s\) \['x', 'y'\]; known: \['cfhtls'"):
        select_surveys(["cfhtls", "x", "y"])
