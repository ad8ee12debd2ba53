"""Tiled (Dask) blind extraction: equal to the single-map extraction, edges counted once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skysense.errors import InputError
from skysense.xid.blind.engine import extract_tiles, pixel_tiles
from skysense.xid.blind.extract import extract_sources
from skysense.xid.io import write_map
from skysense.xid.model import GaussianBeam, pointing_matrix
from skysense.xid.simulate import simulate_field, tan_wcs
from skysense.xid.skymap import SkyMap

FWHM, PIX = 18.15, 6.0
COLUMNS = ["x_pix", "y_pix", "ra", "dec", "flux_mjy", "flux_err_mjy", "snr_det", "ra_err"]


@pytest.fixture(scope="module")
def field():
    return simulate_field(
        1500, size_pix=330, noise_mjy=2.0, flux_min_mjy=2, flux_max_mjy=150, random_state=4
    )


@pytest.mark.parametrize("confusion", [0.0, None])
def test_tiled_equals_single_map(field, confusion):
    one = extract_sources(field.sky, snr_threshold=4, confusion_mjy=confusion)
    tiled = extract_tiles(
        field.sky, tile_pix=80, snr_threshold=4, confusion_mjy=confusion, scheduler="threads"
    )
    assert tiled.attrs["n_tiles"] == 25
    assert len(one) > 200
    assert len(tiled) == len(one)
    # same order (peak S/N), same sources; the same numbers to rounding, except where a blend's
    # nonlinear fit stops a hair apart (a chain of overlapping beams crosses the buffer):
    # never more than 2% of the 1-sigma error
    pos_err_pix = one.ra_err.to_numpy() / PIX
    for col, scale in (
        ("x_pix", pos_err_pix),
        ("y_pix", pos_err_pix),
        ("flux_mjy", one.flux_err_mjy.to_numpy()),
        ("snr_det", np.ones(len(one))),
    ):
        diff = np.abs(tiled[col].to_numpy() - one[col].to_numpy())
        assert np.all(diff <= 0.02 * scale), col
        assert np.mean(diff <= 1e-6 * np.abs(one[col].to_numpy())) > 0.99, col
    for col in COLUMNS[2:]:
        np.testing.assert_allclose(tiled[col], one[col], rtol=1e-4, err_msg=col)
    assert list(tiled.columns) == list(one.columns)
    assert (tiled.blind_id.to_numpy() == np.arange(len(tiled))).all()
    assert tiled.attrs["confusion_mjy"] == pytest.approx(one.attrs["confusion_mjy"])
    assert tiled.attrs["filter"] == one.attrs["filter"]


def test_source_on_a_tile_corner_is_found_once():
    n = 120
    # one source on the corner of four 60-pixel tiles, a neighbour two beams away across the
    # tile edge (deblended with it), one far away
    x = np.array([59.5, 59.5 + 2.2 * FWHM / PIX, 20.0])
    y = np.array([59.5, 60.6, 90.0])
    yy, xx = np.mgrid[0:n, 0:n]
    amat = pointing_matrix(x, y, xx.ravel(), yy.ravel(), GaussianBeam(FWHM), PIX, min_fraction=1e-6)
    rng = np.random.default_rng(0)
    img = (amat @ np.array([50.0, 30.0, 20.0])).reshape(n, n) + 0.5 * rng.standard_normal((n, n))
    sky = SkyMap("spire_250", img, np.full((n, n), 0.5), tan_wcs(n, n, PIX), FWHM)
    tiled = extract_tiles(sky, tile_pix=60, scheduler="synchronous")
    assert tiled.attrs["n_tiles"] == 4
    assert len(tiled) == 3
    got = tiled.sort_values("x_pix")
    np.testing.assert_allclose(got.x_pix, np.sort(x), atol=0.02)
    np.testing.assert_allclose(
        got.flux_mjy, np.array([20.0, 50.0, 30.0]), atol=4 * got.flux_err_mjy.max()
    )


def test_pixel_tiles_cover_each_pixel_once():
    cover = np.zeros((101, 77), int)
    for (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) in pixel_tiles(cover.shape, 30, 7):
        cover[y0:y1, x0:x1] += 1
        assert cy0 == max(y0 - 7, 0) and cy1 == min(y1 + 7, 101)
        assert cx0 == max(x0 - 7, 0) and cx1 == min(x1 + 7, 77)
    assert (cover == 1).all()


def test_empty_map_gives_the_single_map_columns():
    f = simulate_field(0, size_pix=120, noise_mjy=2.0, random_state=1)
    tiled = extract_tiles(f.sky, tile_pix=60, snr_threshold=6)
    assert len(tiled) == 0
    assert list(tiled.columns) == list(extract_sources(f.sky, snr_threshold=6).columns)


def test_masked_tiles_are_skipped():
    f = simulate_field(60, size_pix=160, flux_min_mjy=20, noise_mjy=2.0, random_state=2)
    img = f.sky.image_mjy.copy()
    img[:, 80:] = np.nan  # half the field unobserved: its tiles have no usable pixel
    sky = SkyMap("spire_250", img, f.sky.error_mjy, f.sky.wcs, FWHM)
    one = extract_sources(sky)
    tiled = extract_tiles(sky, tile_pix=40)
    assert len(tiled) == len(one) > 10
    np.testing.assert_allclose(tiled.flux_mjy, one.flux_mjy, rtol=1e-6)


def test_validation_errors(field):
    with pytest.raises(InputError, match="tile_pix"):
        extract_tiles(field.sky, tile_pix=5)
    with pytest.raises(InputError, match="buffer_fwhm"):
        extract_tiles(field.sky, tile_pix=100, buffer_fwhm=1.0)
    nan = SkyMap("spire_250", np.full((50, 50), np.nan), np.ones((50, 50)), tan_wcs(50, 50, PIX))
    with pytest.raises(InputError, match="FWHM"):
        extract_tiles(nan, tile_pix=100)
    nan.fwhm_arcsec = FWHM
    with pytest.raises(InputError, match="usable pixel"):
        extract_tiles(nan, tile_pix=100)


def test_cli_blind_tiled_equals_untiled(tmp_path, field):
    import pandas as pd

    from skysense.cli.__main__ import main

    write_map(dataclasses.replace(field.sky, fwhm_arcsec=FWHM), tmp_path / "map.fits")
    base = ["xid", "blind", str(tmp_path / "map.fits"), "--band", "spire_250", "--snr", "5"]
    assert main([*base, "-o", str(tmp_path / "one")]) == 0
    assert main([*base, "--tile", "100", "-o", str(tmp_path / "tiled")]) == 0
    one = pd.read_parquet(tmp_path / "one.parquet")
    tiled = pd.read_parquet(tmp_path / "tiled.parquet")
    assert len(one) == len(tiled) > 50
    np.testing.assert_allclose(tiled.flux_mjy, one.flux_mjy, rtol=1e-6)
    assert main([*base, "--tile", "2", "-o", str(tmp_path / "bad")]) == 2
