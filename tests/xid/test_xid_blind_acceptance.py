"""Acceptance of blind extraction: completeness and reliability against simulation truth."""

from __future__ import annotations

import numpy as np
import pytest
from _xid_toy import read_toy

from skysense.errors import InputError
from skysense.xid.blind.engine import extract_tiles
from skysense.xid.blind.extract import extract_sources, matched_filter
from skysense.xid.blind.stats import brightest_owner, completeness_reliability
from skysense.xid.skymap import SkyMap

FWHM = 18.15


def test_completeness_reliability_hand_checked():
    # truth: a bright source with a faint neighbour, a lone faint one, one never detected
    dec = np.full(4, 0.0)
    t_ra = np.array([0.0, 2.0, 100.0, 200.0]) / 3600
    t_flux = np.array([40.0, 5.0, 8.0, 30.0])
    # detections: the blend (owner: the bright one), the faint one, and a spurious peak
    ra = np.array([1.0, 101.0, 300.0]) / 3600
    flux = np.array([44.0, 20.0, 10.0])
    owner = brightest_owner(ra, np.zeros(3), t_ra, dec, t_flux, 3.0)
    assert owner.tolist() == [0, 2, -1]
    r = completeness_reliability(
        ra, np.zeros(3), flux, t_ra, dec, t_flux, radius_arcsec=3.0, edges_mjy=[4, 16, 64]
    )
    assert r.recovered.tolist() == [True, False, True, False]
    # 8 mJy owner of a 20 mJy detection: less than half its flux, so not reliable
    assert r.reliable.tolist() == [True, False, False]
    assert r.bins.n_true.tolist() == [2, 2] and r.bins.n_det.tolist() == [1, 2]
    np.testing.assert_allclose(r.bins.completeness, [0.5, 0.5])
    np.testing.assert_allclose(r.bins.reliability, [0.0, 0.5])
    assert r.flux50_mjy == pytest.approx(8.0) and np.isnan(r.flux90_mjy)
    assert r.reliability_above50 == pytest.approx(1 / 3)
    with pytest.raises(InputError, match="edges"):
        completeness_reliability(ra, ra, flux, t_ra, dec, t_flux, radius_arcsec=3, edges_mjy=[5])


@pytest.fixture(scope="module")
def sim_250():
    """0.25 deg^2 of skysense.sim: every galaxy injected, SPIRE 250 um noise and confusion."""
    from skysense.sim import DEFAULT_MAPS, make_maps, simulate_sky
    from skysense.sim.maps import map_sources

    sky = simulate_sky(seed=5, area_deg2=0.25)
    spec = tuple(s for s in DEFAULT_MAPS if s.band == "spire_250")
    m = make_maps(sky, spec)["spire_250"]
    smap = SkyMap("spire_250", m.image.astype(float), m.error.astype(float), m.wcs, FWHM)
    return smap, map_sources(sky), m.confusion_mjy_beam


@pytest.mark.slow
def test_sim_field_completeness_and_reliability_versus_flux(sim_250):
    smap, truth, confusion_true = sim_250
    df = extract_sources(smap, snr_threshold=5, confusion_mjy=None)
    # the map-based confusion estimate is close to the simulation's (clipped) confusion
    assert df.attrs["confusion_mjy"] == pytest.approx(confusion_true, rel=0.3)
    edges = np.geomspace(3, 200, 16)
    r = completeness_reliability(
        df.ra.to_numpy(),
        df.dec.to_numpy(),
        df.flux_mjy.to_numpy(),
        truth.ra.to_numpy(),
        truth.dec.to_numpy(),
        truth.f_spire_250.to_numpy(),
        radius_arcsec=0.5 * FWHM,
        edges_mjy=edges,
    )
    fm = matched_filter(
        smap.image_mjy, smap.error_mjy, FWHM, 6.0, confusion_mjy=df.attrs["confusion_mjy"]
    )
    sigma = float(np.nanmedian(fm.error_mjy))  # instrumental + confusion, filtered
    # a 5-sigma cut: half the sources near 5 sigma, 90% not much above it
    assert 4 * sigma < r.flux50_mjy < 6.5 * sigma
    assert r.flux50_mjy < r.flux90_mjy < 1.8 * r.flux50_mjy
    assert r.reliability_above50 > 0.9
    bright = truth.f_spire_250.to_numpy() > 2 * r.flux90_mjy
    assert r.recovered[bright].mean() > 0.95
    # below 2 sigma nothing is recovered on its own
    assert r.recovered[truth.f_spire_250.to_numpy() < 2 * sigma].mean() < 0.01


@pytest.mark.slow
def test_sim_field_tiled_equals_single_map(sim_250):
    smap, _, _ = sim_250
    one = extract_sources(smap, snr_threshold=5, confusion_mjy=None)
    tiled = extract_tiles(smap, tile_pix=110, snr_threshold=5, confusion_mjy=None)
    assert tiled.attrs["n_tiles"] == 9 and len(tiled) == len(one) > 100
    np.testing.assert_allclose(tiled.flux_mjy, one.flux_mjy, rtol=1e-4)
    np.testing.assert_allclose(tiled.ra, one.ra, atol=1e-7)


@pytest.mark.acceptance
@pytest.mark.parametrize("example", ["eg3", "eg6"])
def test_toy_maps_completeness_flux_accuracy_and_tiles(shared_data, example):
    sky, src = read_toy(shared_data, example)
    truth = src.rename(columns={"F": "flux"})
    df = extract_sources(sky, snr_threshold=5)
    sigma = float(np.median(df.flux_err_mjy))
    edges = sigma * np.geomspace(1, 100, 21)
    r = completeness_reliability(
        df.ra.to_numpy(),
        df.dec.to_numpy(),
        df.flux_mjy.to_numpy(),
        truth.ra.to_numpy(),
        truth.dec.to_numpy(),
        truth.flux.to_numpy(),
        radius_arcsec=1.5 * 4.0,  # truth sits on integer pixels: 1.5 pixels
        edges_mjy=edges,
    )
    assert r.reliable.all()
    assert 3 * sigma < r.flux50_mjy < 7 * sigma
    assert r.recovered[truth.flux.to_numpy() > 10 * sigma].all()
    owner = brightest_owner(
        df.ra.to_numpy(),
        df.dec.to_numpy(),
        truth.ra.to_numpy(),
        truth.dec.to_numpy(),
        truth.flux.to_numpy(),
        6.0,
    )
    true = truth.flux.to_numpy()[owner]
    rel = (df.flux_mjy.to_numpy() - true) / true
    bright = true > 10 * sigma
    assert np.median(np.abs(rel[bright])) < 0.05
    # the pulls of bright sources are honest, too (blends of faint neighbours add a tail)
    pull = (df.flux_mjy.to_numpy() - true) / df.flux_err_mjy.to_numpy()
    assert np.median(np.abs(pull[bright])) < 1.2
    # tile by tile (eg6's noise rises from the centre: tiles share the whole map's filter)
    tiled = extract_tiles(sky, tile_pix=64, snr_threshold=5)
    assert len(tiled) == len(df)
    np.testing.assert_allclose(tiled.flux_mjy, df.flux_mjy, rtol=1e-4)
