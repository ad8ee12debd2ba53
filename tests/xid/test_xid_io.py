"""Map and prior readers: units, WCS, masks, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from skysense.errors import InputError
from skysense.xid.io import read_map, read_prior
from skysense.xid.simulate import tan_wcs


def _write(path, image, error=None, unit="Jy/beam", wcs=True, eunit=None):
    hdr = tan_wcs(image.shape[1], image.shape[0], 6.0).to_header() if wcs else fits.Header()
    if unit:
        hdr["BUNIT"] = unit
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(image, header=hdr, name="IMAGE")]
    if error is not None:
        ehdr = hdr.copy()
        if eunit is not None:
            ehdr["BUNIT"] = eunit
        hdus.append(fits.ImageHDU(error, header=ehdr, name="ERROR"))
    fits.HDUList(hdus).writeto(path)
    return path


def test_jy_converted_to_mjy_and_nan_masked(tmp_path):
    img = np.full((10, 12), 0.004)
    img[2, 3] = np.nan
    err = np.full((10, 12), 0.002)
    err[5, 5] = 0.0
    sky = read_map(_write(tmp_path / "m.fits", img, err), band="spire_250")
    assert sky.image_mjy[0, 0] == pytest.approx(4.0) and sky.error_mjy[0, 0] == pytest.approx(2.0)
    assert not sky.good[2, 3] and not sky.good[5, 5] and sky.good.sum() == 118
    assert sky.pixel_arcsec == pytest.approx(6.0)


def test_separate_noise_file_with_its_own_unit(tmp_path):
    m = _write(tmp_path / "m.fits", np.full((5, 5), 3.0), unit="mJy/beam")
    n = tmp_path / "n.fits"
    fits.PrimaryHDU(np.full((5, 5), 0.001), header=fits.Header({"BUNIT": "Jy/beam"})).writeto(n)
    sky = read_map(m, band="spire_250", noise_path=n)
    assert sky.error_mjy[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"wcs": False}, "celestial WCS"),
        ({"unit": None}, "BUNIT"),
        ({"unit": "MJy/sr"}, "unsupported map unit"),
        ({"eunit": "K"}, "unsupported map unit"),
    ],
)
def test_bad_maps_named(tmp_path, kwargs, match):
    path = _write(tmp_path / "m.fits", np.ones((5, 5)), np.ones((5, 5)), **kwargs)
    with pytest.raises(InputError, match=match) as exc:
        read_map(path, band="spire_250")
    assert "m.fits" in str(exc.value)


def test_all_nan_map_and_shape_mismatch(tmp_path):
    with pytest.raises(InputError, match="no usable pixel"):
        read_map(_write(tmp_path / "a.fits", np.full((4, 4), np.nan), np.ones((4, 4))), band="b")
    with pytest.raises(InputError, match="shape"):
        read_map(_write(tmp_path / "b.fits", np.ones((4, 4)), np.ones((4, 5))), band="b")
    with pytest.raises(InputError, match="noise map"):
        read_map(_write(tmp_path / "c.fits", np.ones((4, 4))), band="b")


def test_read_prior_columns_and_bad_rows(tmp_path):
    p = tmp_path / "p.csv"
    pd.DataFrame(
        {"ID": [1, 2], "RA": [150.0, 150.1], "Dec": [2.0, 2.1], "flux_upper_spire_250": [9.0, 8.0]}
    ).to_csv(p, index=False)
    df = read_prior(p)
    assert list(df.columns[:3]) == ["id", "ra", "dec"] and df["id"].tolist() == ["1", "2"]
    assert "flux_upper_spire_250" in df.columns
    q = tmp_path / "q.parquet"
    pd.DataFrame({"id": ["a", "b"], "ra": [150.0, np.nan], "dec": [2.0, 2.0]}).to_parquet(q)
    with pytest.raises(InputError, match="row 1"):
        read_prior(q)
    r = tmp_path / "r.csv"
    pd.DataFrame({"id": ["a"], "x": [1.0]}).to_csv(r, index=False)
    with pytest.raises(InputError, match="RA"):
        read_prior(r)


def test_write_map_round_trips_through_read_map(tmp_path):
    from skysense.xid.io import write_map
    from skysense.xid.skymap import SkyMap

    rng = np.random.default_rng(4)
    img, err = rng.normal(size=(9, 11)), rng.uniform(0.5, 1.0, size=(9, 11))
    img[3, 4] = np.nan
    sky = SkyMap("spire_350", img, err, tan_wcs(11, 9, 10.0), 25.2)
    back = read_map(write_map(sky, tmp_path / "m.fits"), band="spire_350")
    np.testing.assert_array_equal(back.image_mjy, img)
    np.testing.assert_array_equal(back.error_mjy, err)
    assert back.fwhm_arcsec == pytest.approx(25.2) and back.pixel_arcsec == pytest.approx(10.0)
    assert list(tmp_path.iterdir()) == [tmp_path / "m.fits"]  # no temporary file left


def test_a_failed_tile_joins_with_its_sources_flagged_and_writes_as_fits(tmp_path):
    from astropy.table import Table

    from skysense.xid.io import read_tiles, write_catalogue, write_tile

    good = pd.DataFrame(
        {
            "HELP_ID": ["a", "b"],
            "RA": [1.0, 1.1],
            "Dec": [2.0, 2.1],
            "F_spire_250": [5.0, 7.0],
            "flag_xid_spire_250": [False, True],
            "xid_tile": "t1",
        }
    )
    failed = pd.DataFrame({"HELP_ID": ["c"], "RA": [1.2], "Dec": [2.2], "xid_tile": "t2"})
    unf = pd.DataFrame({"id": ["c"], "band": ["all"], "reason": ["tile failed: bad prior"]})
    paths = [
        write_tile(good, unf.iloc[:0], tmp_path / "t1.parquet"),
        write_tile(failed, unf, tmp_path / "t2.parquet"),
    ]
    cat, unfitted = read_tiles(paths)
    assert cat["flag_xid_spire_250"].dtype == bool
    assert cat["flag_xid_spire_250"].tolist() == [False, True, True]
    assert np.isnan(cat["F_spire_250"].iloc[2])
    assert unfitted["id"].tolist() == ["c"]
    fits_path = next(p for p in write_catalogue(cat, tmp_path / "cat") if str(p).endswith(".fits"))
    assert Table.read(fits_path)["flag_xid_spire_250"].tolist() == [False, True, True]
