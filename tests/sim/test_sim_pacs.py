"""PACS 100/160 um maps in the simulator: HELP's band names, beams, fluxes from the same SEDs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from skysense.sim import DEFAULT_MAPS, FIR_BANDS, PACS_MAPS, make_maps, simulate_sky
from skysense.sim.maps import map_sources
from skysense.sim.sed import EFFECTIVE_WAVELENGTH_UM
from skysense.xid.columns import MAP_BANDS


def test_pacs_maps_use_helps_band_names_and_the_xid_band_table():
    assert [m.band for m in PACS_MAPS] == ["pacs_green", "pacs_red"]
    assert set(PACS_MAPS) <= set(DEFAULT_MAPS) and {"pacs_green", "pacs_red"} <= set(FIR_BANDS)
    # the simulator and XID+ agree on every map band's beam and pixel (two tables, one truth)
    for spec in DEFAULT_MAPS:
        band = MAP_BANDS[spec.band]
        assert (spec.fwhm_arcsec, spec.pixel_arcsec) == (band.fwhm_arcsec, band.pixel_arcsec)
        assert spec.instrument == band.instrument
        assert EFFECTIVE_WAVELENGTH_UM[spec.band] == pytest.approx(band.wavelength_um, rel=0.02)
    # PACS beams (Observer's Manual, 20"/s scans): 6.69 x 6.89" and 10.65 x 12.13"
    assert 6.6 < MAP_BANDS["pacs_green"].fwhm_arcsec < 7.0
    assert 10.6 < MAP_BANDS["pacs_red"].fwhm_arcsec < 12.2


def test_pacs_names_are_in_the_help_filter_list(shared_data):
    # the fixture skips when the reference data are absent; a missing file in them is an error
    path = shared_data / "crossmatch" / "help_filters.csv"
    names = pd.read_csv(path, encoding="utf-8-sig")["filter_file"].str.replace(".xml", "")
    for spec in DEFAULT_MAPS:
        assert spec.band in set(names), spec.band


@pytest.fixture(scope="module")
def sky():
    return simulate_sky(seed=4, area_deg2=0.01)


def test_pacs_fluxes_sit_on_the_galaxies_dust_seds(sky):
    """f(100), f(160) lie between MIPS 24 and SPIRE 250 on a smooth far-infrared SED: for a
    modified black body the log-flux is concave in log-wavelength around the peak, so the PACS
    fluxes are at least the log-linear interpolation between 24 and 250 um for most galaxies."""
    src = map_sources(sky)
    f = {b: src[f"f_{b}"].to_numpy() for b in ("mips_24", "pacs_green", "pacs_red", "spire_250")}
    assert np.all(np.isfinite(f["pacs_green"])) and np.all(f["pacs_green"] >= 0)
    # z < 1.4 only: beyond, 24 um samples the rest-frame 7.7-8.6 um PAH bands of the Draine &
    # Li dust model (the simulator's default SEDs, #17), which lift f(24) above any smooth
    # continuum (76 % of the bright galaxies pass at all z, seed 4, against 98 % below z = 1.4)
    z = sky.galaxies.set_index("object_id")["z"].reindex(src.object_id).to_numpy()
    bright = (f["spire_250"] > 1.0) & (z < 1.4)  # mJy
    assert bright.sum() > 50
    lam = {"mips_24": 23.68, "pacs_green": 100.0, "pacs_red": 160.0, "spire_250": 250.0}
    for b in ("pacs_green", "pacs_red"):
        t = math.log(lam[b] / lam["mips_24"]) / math.log(lam["spire_250"] / lam["mips_24"])
        chord = (1 - t) * np.log(f["mips_24"][bright]) + t * np.log(f["spire_250"][bright])
        assert np.mean(np.log(f[b][bright]) >= chord) > 0.9
    # 160 um is nearer the dust peak of z ~ 1 galaxies than 100 um: brighter on average
    assert np.median(f["pacs_red"][bright] / f["pacs_green"][bright]) > 1.0


def test_pacs_map_peaks_are_the_true_fluxes_and_headers_name_the_band(sky):
    maps = make_maps(sky, PACS_MAPS, noise=False)
    src = map_sources(sky)
    for spec in PACS_MAPS:
        m = maps[spec.band]
        f = src[f"f_{spec.band}"].to_numpy()
        # the brightest source, far from the edges: its pixel-centred value is its flux plus
        # the (small) wings of its neighbours, so within a few per cent
        k = int(np.argmax(f))
        x, y = m.wcs.wcs_world2pix(src.ra.to_numpy()[k], src.dec.to_numpy()[k], 0)
        i, j = int(round(float(x))), int(round(float(y)))
        dx, dy = float(x) - i, float(y) - j
        sigma = spec.sigma_pix
        expected = f[k] * math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
        assert m.image[j, i] == pytest.approx(expected, rel=0.05)
        # total signal = total flux x beam area (5-sigma cut-off; sources near the edge lose a bit)
        assert m.image.sum() == pytest.approx(f.sum() * spec.beam_area_pix, rel=0.05)
        hdu = m.hdulist()["IMAGE"].header
        assert hdu["BAND"] == spec.band and hdu["INSTRUME"] == "PACS"
        assert hdu["FWHM"] == spec.fwhm_arcsec and hdu["BUNIT"] == "mJy/beam"
    # PACS resolves what SPIRE confuses: far lower confusion noise than SPIRE 250
    spire = make_maps(sky, tuple(s for s in DEFAULT_MAPS if s.band == "spire_250"), noise=False)
    assert maps["pacs_green"].confusion_mjy_beam < 0.3 * spire["spire_250"].confusion_mjy_beam


def test_written_field_has_pacs_maps_the_pipeline_config_lists(tmp_path):
    from skysense.pipeline import write_sim_config
    from skysense.sim import read_manifest, write_field

    write_field(tmp_path / "field", seed=6, area_deg2=0.002, progress=False)
    manifest = read_manifest(tmp_path / "field")
    for band in ("pacs_green", "pacs_red"):
        entry = manifest["maps"][band]
        with fits.open(tmp_path / "field" / entry["file"]) as hdul:
            assert hdul["IMAGE"].header["BAND"] == band
            assert hdul["ERROR"].data.min() > 0
    cfg = write_sim_config(tmp_path / "field", tmp_path / "field.yaml").read_text()
    assert "{band: pacs_green, file: field/maps/pacs_green.fits}" in cfg
    assert "{band: pacs_red, file: field/maps/pacs_red.fits}" in cfg
