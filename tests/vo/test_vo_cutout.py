"""Cutouts: SODA/DALI region parsing and WCS-correct FITS cutouts, checked independently.

The geometry is checked against answers that do not use the code under test: pixel centres
inside a circle by astropy's ``SkyCoord.separation``; inside a polygon by matplotlib's planar
point-in-polygon on the TAN-projected vertices (a gnomonic projection maps great circles to
straight lines, so the spherical polygon is exactly the planar one in pixel space).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from matplotlib.path import Path as MplPath

from skysense.errors import InputError
from skysense.vo.cutout import (
    Circle,
    NoOverlapError,
    Polygon,
    Range,
    cutout_hdu,
    cutout_hdulist,
    parse_circle,
    parse_polygon,
    parse_pos,
    region_contains,
)


def make_wcs(ra0, dec0, pix_arcsec, nx, ny, rot_deg=0.0) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra0, dec0]
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    s = pix_arcsec / 3600.0
    c, si = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    w.wcs.cd = np.array([[-s * c, s * si], [s * si, s * c]])
    return w


def make_hdu(w: WCS, nx: int, ny: int, name="IMAGE", seed=0) -> fits.ImageHDU:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(ny, nx)).astype(np.float32)
    header = w.to_header()
    header["BUNIT"] = "mJy/beam"
    header["BAND"] = "spire_250"
    header["FWHM"] = 18.15
    return fits.ImageHDU(data=data, header=header, name=name)


def check_cutout(hdu: fits.ImageHDU, cut: fits.ImageHDU, inside_parent: np.ndarray):
    """World coordinates and values of the cutout equal the parent's, and the cutout holds
    every parent pixel whose centre is in the region (``inside_parent``: (ny, nx) bool)."""
    x0, y0 = cut.header["SSXORIG"], cut.header["SSYORIG"]
    ny, nx = cut.data.shape
    parent = WCS(hdu.header)
    child = WCS(cut.header)
    yy, xx = np.mgrid[0:ny, 0:nx]
    c_ra, c_dec = child.pixel_to_world_values(xx, yy)
    p_ra, p_dec = parent.pixel_to_world_values(xx + x0, yy + y0)
    dra = (c_ra - p_ra + 180.0) % 360.0 - 180.0
    assert np.max(np.abs(dra * np.cos(np.radians(p_dec)))) < 1e-9
    assert np.max(np.abs(c_dec - p_dec)) < 1e-9
    np.testing.assert_array_equal(cut.data, hdu.data[y0 : y0 + ny, x0 : x0 + nx])
    assert cut.header["BUNIT"] == "mJy/beam" and cut.header["BAND"] == "spire_250"
    iy, ix = np.nonzero(inside_parent)
    assert len(iy) > 0
    assert ix.min() >= x0 and ix.max() < x0 + nx
    assert iy.min() >= y0 and iy.max() < y0 + ny
    # Tight: the box is the bounding box of the pixels in the region.
    assert ix.min() == x0 and ix.max() == x0 + nx - 1
    assert iy.min() == y0 and iy.max() == y0 + ny - 1


def pixel_centres(w: WCS, nx: int, ny: int):
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra, dec = w.pixel_to_world_values(xx, yy)
    return xx, yy, ra, dec


# --------------------------------------------------------------------------------------------
# parsing


def test_parse_shapes():
    assert parse_pos("CIRCLE 10 20 0.5") == Circle(10.0, 20.0, 0.5)
    assert parse_pos("  circle\t359.5  -89 1e-3 ") == Circle(359.5, -89.0, 0.001)
    assert parse_pos("RANGE 350 10 -5 5") == Range(350.0, 10.0, -5.0, 5.0)
    r = parse_pos("RANGE -Inf +Inf -90 -80")
    assert r.full_ra and r.dec_min == -90 and r.dec_max == -80
    p = parse_pos("POLYGON 10 0 11 0 11 1 10 1")
    assert p == Polygon((10.0, 11.0, 11.0, 10.0), (0.0, 0.0, 1.0, 1.0))
    assert parse_circle("1 2 3") == Circle(1.0, 2.0, 3.0)
    assert parse_polygon("0 0 1 0 0 1").ra_deg == (0.0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty value"),
        ("BOX 1 2 3 4", "unknown shape 'BOX'"),
        ("CIRCLE 1 2", "3 numbers"),
        ("CIRCLE 1 abc 3", "value 2 ('abc') is not a number"),
        ("CIRCLE 400 0 1", "RA must be in [0, 360]"),
        ("CIRCLE 10 95 1", "Dec must be in [-90, 90]"),
        ("CIRCLE 10 10 0", "radius must be in (0, 180]"),
        ("CIRCLE 10 10 nan", "NaN"),
        ("RANGE 1 2 3", "4 numbers"),
        ("RANGE 1 2 5 3", "dec_min 5 exceeds dec_max 3"),
        ("POLYGON 1 2 3 4", "at least 3 vertices"),
        ("POLYGON 1 2 3 4 5", "pairs"),
        ("POLYGON 0 0 1 0 1 0", "coincide"),
        ("POLYGON 0 0 1 0 2 0", "one great circle"),
    ],
)
def test_parse_errors_are_clear(text, fragment):
    with pytest.raises(InputError) as err:
        parse_pos(text)
    assert fragment in str(err.value)
    assert str(err.value).startswith("POS")


@given(
    ra=st.floats(0, 360),
    dec=st.floats(-90, 90),
    r=st.floats(1e-6, 180),
)
def test_circle_roundtrip(ra, dec, r):
    assume(r > 0)
    c = Circle(ra, dec, r)
    assert parse_pos(c.to_dali()) == c


@given(st.text(alphabet="CIRLEPOYGNAcirle0123456789.-+eE \tinf", max_size=40))
def test_parser_never_crashes(text):
    try:
        region = parse_pos(text)
    except InputError:
        return
    assert isinstance(region, Circle | Range | Polygon)


@given(
    ras=st.lists(st.floats(0, 360), min_size=3, max_size=8),
    decs=st.lists(st.floats(-89, 89), min_size=3, max_size=8),
)
def test_polygon_roundtrip_or_clear_error(ras, decs):
    n = min(len(ras), len(decs))
    text = "POLYGON " + " ".join(f"{a!r} {d!r}" for a, d in zip(ras[:n], decs[:n]))
    try:
        p = parse_pos(text)
    except InputError as exc:
        assert "POS POLYGON" in str(exc)
        return
    assert p.ra_deg == tuple(ras[:n]) and p.dec_deg == tuple(decs[:n])


# --------------------------------------------------------------------------------------------
# geometry against independent answers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ra0=st.one_of(
        st.floats(0, 360, exclude_max=True),
        st.floats(359.9, 360, exclude_max=True),
        st.floats(0, 0.1),
    ),
    dec0=st.floats(-80, 80),
    pix=st.floats(1.0, 30.0),
    nx=st.integers(30, 90),
    ny=st.integers(30, 90),
    rot=st.floats(0, 360),
    fx=st.floats(-0.2, 1.2),
    fy=st.floats(-0.2, 1.2),
    r_pix=st.floats(1.5, 40.0),
)
def test_circle_cutout_matches_brute_force(ra0, dec0, pix, nx, ny, rot, fx, fy, r_pix):
    w = make_wcs(ra0, dec0, pix, nx, ny, rot)
    hdu = make_hdu(w, nx, ny)
    cra, cdec = w.pixel_to_world_values(fx * (nx - 1), fy * (ny - 1))
    region = Circle(float(cra) % 360.0, float(cdec), r_pix * pix / 3600.0)
    xx, yy, ra, dec = pixel_centres(w, nx, ny)
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(
        SkyCoord(region.ra_deg * u.deg, region.dec_deg * u.deg)
    )
    inside = sep.deg <= region.radius_deg
    # Pixels within a hair of the edge may go either way in floating point; skip such cases.
    assume(not np.any(np.abs(sep.deg - region.radius_deg) < 1e-10))
    if not inside.any():
        with pytest.raises(NoOverlapError):
            cutout_hdu(hdu, region)
        return
    check_cutout(hdu, cutout_hdu(hdu, region), inside)


@settings(max_examples=30, deadline=None)
@given(
    ra0=st.one_of(st.floats(0, 360, exclude_max=True), st.floats(0, 0.05)),
    dec0=st.floats(-75, 75),
    rot=st.floats(0, 360),
    pts=st.lists(st.tuples(st.floats(0.1, 0.9), st.floats(0.1, 0.9)), min_size=3, max_size=3),
)
def test_triangle_cutout_matches_planar_polygon(ra0, dec0, rot, pts):
    nx = ny = 60
    w = make_wcs(ra0, dec0, 10.0, nx, ny, rot)
    hdu = make_hdu(w, nx, ny)
    px = np.array([p[0] * (nx - 1) for p in pts])
    py = np.array([p[1] * (ny - 1) for p in pts])
    area = 0.5 * abs((px[1] - px[0]) * (py[2] - py[0]) - (px[2] - px[0]) * (py[1] - py[0]))
    assume(area > 20.0)
    vra, vdec = w.pixel_to_world_values(px, py)
    region = Polygon(tuple(float(a) % 360.0 for a in vra), tuple(float(d) for d in vdec))
    xx, yy, _, _ = pixel_centres(w, nx, ny)
    path = MplPath(np.column_stack([px, py]))
    pts_xy = np.column_stack([xx.ravel(), yy.ravel()])
    inside = path.contains_points(pts_xy).reshape(xx.shape)
    # Ignore pixels within 1e-6 pixel of an edge (either answer is right there).
    near = path.contains_points(pts_xy, radius=1e-6) != path.contains_points(pts_xy, radius=-1e-6)
    assume(not near.any())
    assume(inside.any())
    ours = region_contains(region, *w.pixel_to_world_values(xx, yy))
    np.testing.assert_array_equal(ours, inside)
    check_cutout(hdu, cutout_hdu(hdu, region), inside)


def test_range_across_ra_zero():
    nx, ny = 80, 60
    w = make_wcs(0.02, 10.0, 6.0, nx, ny)
    hdu = make_hdu(w, nx, ny)
    region = parse_pos("RANGE 359.98 0.03 9.97 10.02")
    xx, yy, ra, dec = pixel_centres(w, nx, ny)
    inside = ((ra >= 359.98) | (ra <= 0.03)) & (dec >= 9.97) & (dec <= 10.02)
    assert (ra[inside] > 359).any() and (ra[inside] < 1).any()  # both sides of RA = 0
    np.testing.assert_array_equal(region_contains(region, ra, dec), inside)
    check_cutout(hdu, cutout_hdu(hdu, region), inside)


def test_circle_around_pole_and_region_larger_than_map():
    nx, ny = 50, 50
    w = make_wcs(123.0, 89.99, 3.0, nx, ny)
    hdu = make_hdu(w, nx, ny)
    cut = cutout_hdu(hdu, Circle(300.0, 90.0, 1.0))  # holds the whole map
    assert cut.data.shape == (ny, nx)
    check_cutout(hdu, cut, np.ones((ny, nx), bool))
    cut = cutout_hdu(hdu, parse_pos("RANGE -Inf +Inf 89.999 90"))
    _, _, ra, dec = pixel_centres(w, nx, ny)
    check_cutout(hdu, cut, dec >= 89.999)


def test_no_overlap_and_bad_hdu():
    w = make_wcs(150.0, 2.0, 6.0, 40, 40)
    hdu = make_hdu(w, 40, 40)
    with pytest.raises(NoOverlapError, match="does not overlap"):
        cutout_hdu(hdu, Circle(30.0, -40.0, 1.0))
    with pytest.raises(InputError, match="not a 2-D image"):
        cutout_hdu(fits.ImageHDU(data=np.zeros(5), name="VEC"), Circle(150, 2, 0.01))
    with pytest.raises(InputError, match="no 2-D celestial WCS"):
        cutout_hdu(fits.ImageHDU(data=np.zeros((4, 4))), Circle(150, 2, 0.01))


def test_hdulist_cuts_every_image_extension():
    w = make_wcs(35.0, -5.0, 6.0, 70, 50)
    hdul = fits.HDUList(
        [fits.PrimaryHDU(), make_hdu(w, 70, 50, "IMAGE", 1), make_hdu(w, 70, 50, "ERROR", 2)]
    )
    out = cutout_hdulist(hdul, Circle(35.0, -5.0, 0.02))
    assert [h.name for h in out] == ["PRIMARY", "IMAGE", "ERROR"]
    assert out["IMAGE"].data.shape == out["ERROR"].data.shape
    x0, y0 = out["ERROR"].header["SSXORIG"], out["ERROR"].header["SSYORIG"]
    ny, nx = out["ERROR"].data.shape
    np.testing.assert_array_equal(out["ERROR"].data, hdul["ERROR"].data[y0 : y0 + ny, x0 : x0 + nx])
    with pytest.raises(InputError, match="no 2-D image"):
        cutout_hdulist(fits.HDUList([fits.PrimaryHDU()]), Circle(35.0, -5.0, 0.02))
