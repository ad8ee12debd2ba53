"""The registry of published maps: metadata, copies, persistence, and name safety."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysense.errors import InputError
from skysense.vo.backends import open_backend
from skysense.vo.maps import (
    default_maps_dir,
    get_map,
    list_maps,
    map_info_from_fits,
    publish_map,
    unpublish_map,
)


def write_map(path, ra0=150.1, dec0=2.2, nx=64, ny=48, pix_arcsec=6.0, band="spire_250"):
    """A FITS map in the layout of contract 1: empty primary, IMAGE and ERROR."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    w.wcs.cdelt = [-pix_arcsec / 3600, pix_arcsec / 3600]
    header = w.to_header()
    header["BUNIT"] = "mJy/beam"
    header["BAND"] = band
    header["FWHM"] = 18.15
    rng = np.random.default_rng(3)
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(rng.normal(size=(ny, nx)).astype(np.float32), header, name="IMAGE"),
            fits.ImageHDU(np.full((ny, nx), 0.5, np.float32), header, name="ERROR"),
        ]
    )
    hdul.writeto(path)
    return w


def test_map_info_against_astropy(tmp_path):
    w = write_map(tmp_path / "m.fits", ra0=0.01, dec0=-30.0, nx=80, ny=60, pix_arcsec=4.0)
    info = map_info_from_fits(tmp_path / "m.fits", name="spire_test", description="a test")
    assert info.shape == (60, 80)
    assert info.extensions == ["IMAGE", "ERROR"]
    assert info.band == "spire_250" and info.unit == "mJy/beam" and info.fwhm_arcsec == 18.15
    assert info.pixel_arcsec == pytest.approx(4.0, rel=1e-9)
    assert (info.em_min_m, info.em_max_m) == (2.1e-4, 2.9e-4)
    assert (info.facility, info.instrument) == ("Herschel", "SPIRE")
    # Corners: astropy's own footprint (pixel-edge corners), wrapped into [0, 360).
    expected = w.calc_footprint(axes=(80, 60), center=False)
    got = np.array(info.footprint)
    dra = (got[:, 0] - expected[:, 0] + 180) % 360 - 180
    assert np.allclose(dra, 0, atol=1e-9) and np.allclose(got[:, 1], expected[:, 1], atol=1e-9)
    assert info.center_ra == pytest.approx(0.01, abs=1e-6) or info.center_ra > 359.9
    half_diag_deg = math.hypot(40, 30) * 4.0 / 3600
    assert info.radius_deg == pytest.approx(half_diag_deg, rel=1e-3)
    assert info.s_region.startswith("POLYGON ")
    # DALI polygon: counter-clockwise seen from inside, i.e. (v0 x v1) . v2 < 0, and a valid
    # POS value that holds the map centre.
    from skysense.vo.cutout import parse_pos, region_contains

    poly = parse_pos(info.s_region)
    v = np.radians(np.column_stack([poly.ra_deg, poly.dec_deg]))
    xyz = np.column_stack(
        [np.cos(v[:, 1]) * np.cos(v[:, 0]), np.cos(v[:, 1]) * np.sin(v[:, 0]), np.sin(v[:, 1])]
    )
    assert np.dot(np.cross(xyz[0], xyz[1]), xyz[2]) < 0
    assert region_contains(poly, info.center_ra, info.center_dec)
    assert WCS(info.wcs().to_header()).wcs.ctype[0] == "RA---TAN"


def test_publish_copies_and_persists(tmp_path):
    write_map(tmp_path / "in.fits")
    db = tmp_path / "vo.duckdb"
    backend = open_backend(db)
    try:
        info = publish_map(backend, tmp_path / "in.fits", name="spire250", description="SPIRE")
        assert info.path == str((default_maps_dir(backend) / "spire250.fits").resolve())
        assert info.path.startswith(str(tmp_path / "vo.duckdb.work"))
        with fits.open(info.path) as a, fits.open(tmp_path / "in.fits") as b:
            np.testing.assert_array_equal(a["IMAGE"].data, b["IMAGE"].data)
        assert info.published
    finally:
        backend.close()
    (tmp_path / "in.fits").unlink()  # the service keeps its own copy
    backend = open_backend(db)
    try:
        again = get_map(backend, "spire250")
        assert again == info
        assert [m.name for m in list_maps(backend)] == ["spire250"]
        # Re-publishing the same name replaces it.
        write_map(tmp_path / "in2.fits", ra0=10.0, band="mips_24")
        replaced = publish_map(backend, tmp_path / "in2.fits", name="spire250")
        assert replaced.band == "mips_24" and get_map(backend, "spire250").band == "mips_24"
        assert len(list_maps(backend)) == 1
        assert unpublish_map(backend, "spire250")
        assert not unpublish_map(backend, "spire250")
        assert get_map(backend, "spire250") is None
        assert not (tmp_path / "vo.duckdb.work" / "maps" / "spire250.fits").exists()
    finally:
        backend.close()


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "Upper", "", "1abc", "x" * 65, "a.b"])
def test_names_cannot_be_paths(tmp_path, name):
    write_map(tmp_path / "in.fits")
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        with pytest.raises(InputError, match="map name"):
            publish_map(backend, tmp_path / "in.fits", name=name)
        assert get_map(backend, name) is None
    finally:
        backend.close()


def test_bad_files(tmp_path):
    backend = open_backend(tmp_path / "vo.duckdb")
    try:
        with pytest.raises(InputError, match="no such file"):
            publish_map(backend, tmp_path / "missing.fits", name="m")
        (tmp_path / "junk.fits").write_bytes(b"not a fits file at all" * 200)
        with pytest.raises(InputError, match="junk.fits"):
            publish_map(backend, tmp_path / "junk.fits", name="m")
        fits.HDUList([fits.PrimaryHDU()]).writeto(tmp_path / "empty.fits")
        with pytest.raises(InputError, match="no 2-D image"):
            publish_map(backend, tmp_path / "empty.fits", name="m")
        fits.HDUList([fits.PrimaryHDU(np.zeros((5, 5)))]).writeto(tmp_path / "nowcs.fits")
        with pytest.raises(InputError, match="no celestial WCS"):
            publish_map(backend, tmp_path / "nowcs.fits", name="m")
        assert list_maps(backend) == []
    finally:
        backend.close()
