"""HEALPix helpers: index against a reference implementation, range covers against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _adql_support import offset_points, sep_deg
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import InputError
from skysense.vo import hpx


def _ang2pix_nest_ref(order: int, ra_deg: float, dec_deg: float) -> int:
    """Reference NESTED ang2pix (Gorski et al. 2005; HEALPix C++ ang2pix_nest_z_phi)."""
    nside = 1 << order
    z = math.sin(math.radians(dec_deg))
    za = abs(z)
    tt = (math.radians(ra_deg) % (2 * math.pi)) / (math.pi / 2)
    if za <= 2 / 3:
        t1 = nside * (0.5 + tt)
        t2 = nside * z * 0.75
        jp = int(t1 - t2)
        jm = int(t1 + t2)
        ifp, ifm = jp >> order, jm >> order
        face = (ifp | 4) if ifp == ifm else (ifp if ifp < ifm else ifm + 8)
        ix = jm & (nside - 1)
        iy = nside - (jp & (nside - 1)) - 1
    else:
        ntt = min(3, int(tt))
        tp = tt - ntt
        tmp = nside * math.sqrt(3 * (1 - za))
        jp = min(int(tp * tmp), nside - 1)
        jm = min(int((1 - tp) * tmp), nside - 1)
        if z >= 0:
            face, ix, iy = ntt, nside - jm - 1, nside - jp - 1
        else:
            face, ix, iy = ntt + 8, jp, jm
    ipf = 0
    for b in range(order):
        ipf |= ((ix >> b) & 1) << (2 * b) | ((iy >> b) & 1) << (2 * b + 1)
    return face * nside * nside + ipf


def test_hpx_index_matches_reference():
    rng = np.random.default_rng(3)
    ra = rng.uniform(0, 360, 3000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 3000)))
    for order in (0, 3, 10, 14):
        got = hpx.hpx_index(ra, dec, order)
        ref = np.array([_ang2pix_nest_ref(order, a, d) for a, d in zip(ra, dec)])
        assert got.dtype == np.int64
        # Points on a cell boundary may round either way; there are none at this sample size.
        assert np.array_equal(got, ref)


def test_hpx_index_wraps_ra_and_validates():
    assert hpx.hpx_index([360.0], [10.0], 8)[0] == hpx.hpx_index([0.0], [10.0], 8)[0]
    assert hpx.hpx_index([-10.0], [10.0], 8)[0] == hpx.hpx_index([350.0], [10.0], 8)[0]
    assert hpx.hpx_index([], [], 5).shape == (0,)
    with pytest.raises(ValueError, match="finite"):
        hpx.hpx_index([np.nan], [0.0], 5)
    with pytest.raises(ValueError, match=r"\[-90, 90\]"):
        hpx.hpx_index([0.0], [91.0], 5)
    with pytest.raises(ValueError, match="shape"):
        hpx.hpx_index([0.0, 1.0], [0.0], 5)
    with pytest.raises(ValueError, match="order"):
        hpx.hpx_index([0.0], [0.0], 30)


def test_merge_and_cap_ranges():
    r = np.array([[10, 12], [1, 3], [4, 5], [20, 30], [25, 26], [13, 13]])
    merged = hpx.merge_ranges(r)
    assert merged.tolist() == [[1, 5], [10, 13], [20, 30]]
    capped = hpx.cap_ranges(merged, 2)
    # The smallest gap (5 -> 10) is closed; the cover only grows.
    assert capped.tolist() == [[1, 13], [20, 30]]
    assert hpx.cap_ranges(merged, 1).tolist() == [[1, 30]]
    assert hpx.merge_ranges(np.zeros((0, 2), np.int64)).shape == (0, 2)


def _covered(idx: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(ranges[:, 0], idx, side="right") - 1
    ok = pos >= 0
    out = np.zeros(len(idx), dtype=bool)
    out[ok] = idx[ok] <= ranges[pos[ok], 1]
    return out


@settings(max_examples=60, deadline=None)
@given(
    ra=st.one_of(st.floats(0, 360), st.sampled_from([0.0, 359.99999, 360.0])),
    dec=st.one_of(st.floats(-90, 90), st.sampled_from([90.0, -90.0, 89.999, -89.9999])),
    log_r=st.floats(-4.5, math.log10(90)),
    order=st.sampled_from([10, 14]),
)
def test_cone_ranges_never_lose_a_point(ra, dec, log_r, order):
    radius = 10**log_r
    rng = np.random.default_rng(0)
    n = 3000
    # Points inside the cone, many right at its edge.
    sep = radius * np.concatenate([rng.uniform(0, 1, n // 2), 1 - rng.uniform(0, 1e-6, n // 2)])
    pra, pdec = offset_points(ra, dec, sep, rng.uniform(0, 2 * np.pi, n))
    inside = sep_deg(ra, dec, pra, pdec) <= radius
    ranges = hpx.cone_ranges(ra, dec, radius, order)
    assert len(ranges) <= 48
    assert np.all(ranges[1:, 0] > ranges[:-1, 1])  # sorted, disjoint
    assert _covered(hpx.hpx_index(pra, pdec, order), ranges)[inside].all()


@settings(max_examples=40, deadline=None)
@given(
    ra=st.one_of(st.floats(0, 360), st.sampled_from([0.0, 359.9999999, 360.0])),
    dec=st.one_of(st.floats(-90, 90), st.sampled_from([90.0, -90.0, 89.9999999])),
    log_r=st.one_of(st.floats(-10, -1), st.just(-math.inf)),
    order=st.sampled_from([27, 28, 29]),
)
def test_tiny_cones_on_an_order_29_index(ra, dec, log_r, order):
    # HATS' _healpix_29 (tables served over their files): cdshealpix refines two orders below
    # the search depth and panicked (a BaseException, HTTP 500 and a dead server) for cones
    # under ~1e-7 deg, radius 0 included.
    radius = 10**log_r
    rng = np.random.default_rng(1)
    n = 400
    sep = radius * np.concatenate([rng.uniform(0, 1, n // 2), 1 - rng.uniform(0, 1e-6, n // 2)])
    pra, pdec = offset_points(ra, dec, sep, rng.uniform(0, 2 * np.pi, n))
    inside = sep_deg(ra, dec, pra, pdec) <= radius
    ranges = hpx.cone_ranges(ra, dec, radius, order)
    assert len(ranges) >= 1
    assert _covered(hpx.hpx_index(pra, pdec, order), ranges)[inside].all()


@pytest.mark.parametrize(
    "ra,dec,radius,order",
    [(8.0, 12.5, 17.8, 10), (254.64374008033676, -7.996715233731307, 22.748864308131523, 14)],
)
def test_large_cones_keep_the_cells_cdshealpix_drops(ra, dec, radius, order):
    # Found by the property test above: cdshealpix' coverage of these cones misses a cell
    # holding points just inside the edge.
    rng = np.random.default_rng(0)
    n = 3000
    sep = radius * np.concatenate([rng.uniform(0, 1, n // 2), 1 - rng.uniform(0, 1e-6, n // 2)])
    pra, pdec = offset_points(ra, dec, sep, rng.uniform(0, 2 * np.pi, n))
    inside = sep_deg(ra, dec, pra, pdec) <= radius
    ranges = hpx.cone_ranges(ra, dec, radius, order)
    assert _covered(hpx.hpx_index(pra, pdec, order), ranges)[inside].all()


def test_cone_ranges_are_tight_for_small_cones():
    ranges = hpx.cone_ranges(150.0, 2.0, 0.05, 14)
    n_cells = int((ranges[:, 1] - ranges[:, 0] + 1).sum())
    cell_area = 4 * math.pi / (12 * 4**14)
    cone_area = math.pi * math.radians(0.05) ** 2
    assert n_cells * cell_area < 20 * cone_area
    assert hpx.cone_ranges(10, 10, 180, 5).tolist() == [[0, 12 * 4**5 - 1]]
    assert hpx.cone_ranges(10, 10, 120, 5).tolist() == [[0, 12 * 4**5 - 1]]
    assert hpx.cone_ranges(10, 10, -1, 5).shape == (0, 2)


@settings(max_examples=40, deadline=None)
@given(
    ra=st.floats(0, 360),
    dec=st.floats(-88, 88),
    size=st.floats(1e-3, 40),
    k=st.integers(3, 7),
    reverse=st.booleans(),
)
def test_polygon_ranges_never_lose_a_point(ra, dec, size, k, reverse):
    # A star-shaped polygon around (ra, dec): every point inside lies within `size` of it.
    rng = np.random.default_rng(k)
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    vr, vd = offset_points(ra, dec, size * rng.uniform(0.4, 1, k), ang)
    if reverse:
        vr, vd = vr[::-1], vd[::-1]
    from _adql_support import polygon_truth

    n = 4000
    pra, pdec = offset_points(ra, dec, size * rng.uniform(0, 1, n), rng.uniform(0, 2 * np.pi, n))
    inside, _ = polygon_truth(pra, pdec, vr, vd)
    ranges = hpx.polygon_ranges(vr, vd, 14)
    assert len(ranges) <= 48
    assert _covered(hpx.hpx_index(pra, pdec, 14), ranges)[inside].all()


@pytest.mark.parametrize("radius", [1e-4, 2.8e-4, 0.01, 0.5, 3.0, 12.0])
def test_circle_cells_cover_every_circle(radius):
    rng = np.random.default_rng(5)
    m = 300
    ra = rng.uniform(0, 360, m)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, m)))
    dec[:40] = rng.uniform(87, 90, 40) * rng.choice([-1, 1], 40)
    ra[40:60] = rng.choice([0.0, 359.99999], 20)
    ra[-1] = np.nan  # no ranges for a NULL position
    row, lo, hi = hpx.circle_cells(ra, dec, radius, 14)
    assert not np.any(row == m - 1)
    for j in range(m - 1):
        sel = row == j
        r = np.stack([lo[sel], hi[sel]], axis=1)
        assert np.all(r[1:, 0] > r[:-1, 1] + 1), "ranges of one row are merged and disjoint"
        pra, pdec = offset_points(
            ra[j],
            dec[j],
            radius * np.sqrt(rng.uniform(0, 1, 60)) * 0.999999,
            rng.uniform(0, 2 * np.pi, 60),
        )
        assert _covered(hpx.hpx_index(pra, pdec, 14), r).all()


@pytest.mark.parametrize("radius", [1 / 3600, 2.5 / 3600, 0.05, 1.0])
def test_circle_cell_keys_cover_every_circle(radius):
    """Every point inside a circle has its index, shifted to the cells' depth, among that
    row's cells (the equality form of the cross-match join), at the poles and RA=0/360 too."""
    rng = np.random.default_rng(6)
    m = 300
    ra = rng.uniform(0, 360, m)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, m)))
    dec[:40] = rng.uniform(87, 90, 40) * rng.choice([-1, 1], 40)
    ra[40:60] = rng.choice([0.0, 359.99999], 20)
    ra[-1] = np.nan
    row, cell, depth = hpx.circle_cell_keys(ra, dec, radius, 14)
    assert depth == hpx.neighbour_depth(radius, 14) and depth <= 14
    assert not np.any(row == m - 1)
    assert np.all(np.diff(row) >= 0)
    shift = 2 * (14 - depth)
    for j in range(m - 1):
        mine = cell[row == j]
        assert 1 <= len(mine) <= 9 and len(np.unique(mine)) == len(mine)
        pra, pdec = offset_points(
            ra[j],
            dec[j],
            radius * np.sqrt(rng.uniform(0, 1, 60)) * 0.999999,
            rng.uniform(0, 2 * np.pi, 60),
        )
        assert np.isin(hpx.hpx_index(pra, pdec, 14) >> shift, mine).all()


def test_circle_cell_keys_large_circles_and_bad_input():
    assert hpx.circle_cell_keys([10.0], [0.0], 5.0, 14) is None  # ranges serve those
    with pytest.raises(ValueError, match="radius"):
        hpx.circle_cell_keys([10.0], [0.0], -1.0, 14)
    row, cell, _ = hpx.circle_cell_keys([], [], 0.1, 14)
    assert row.size == cell.size == 0


def test_circle_cells_empty_inputs():
    row, lo, hi = hpx.circle_cells([], [], 0.1, 14)
    assert row.size == lo.size == hi.size == 0
    with pytest.raises(ValueError, match="shape"):
        hpx.circle_cells([1.0], [1.0, 2.0], 0.1)


def test_cone_ranges_equal_the_public_cdshealpix_coverage():
    """The direct call into cdshealpix' compiled cone search and the small-array merge give
    exactly the ranges of cdshealpix.nested.cone_search (astropy angles) merged by NumPy."""
    import astropy.units as u
    import cdshealpix.nested as nested
    from astropy.coordinates import Latitude, Longitude

    rng = np.random.default_rng(11)
    for k in range(400):
        ra = rng.uniform(0, 360)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1)))
        if k % 10 == 0:
            dec = rng.choice([-1, 1]) * rng.uniform(89, 90)
        r = 10 ** rng.uniform(-4, 1.5)
        got = hpx.cone_ranges(ra, dec, r, 14, max_ranges=10_000)
        depth = hpx.depth_for_radius(r, 14)
        pad = 0.05 if r > 1.0 else 1e-9  # cone_ranges' margin (large cones get 5%)
        ipix, depths, _ = nested.cone_search(
            Longitude(ra * u.deg), Latitude(dec * u.deg), (r * (1 + pad) + 1e-9) * u.deg, depth
        )
        ipix = np.asarray(ipix, np.int64)
        shift = 2 * (14 - np.asarray(depths, np.int64))
        want = hpx.merge_ranges(np.stack([ipix << shift, ((ipix + 1) << shift) - 1], axis=1))
        np.testing.assert_array_equal(got, want)


def test_a_cdshealpix_panic_becomes_an_input_error(monkeypatch):
    # A Rust panic is a BaseException (pyo3's PanicException): left alone it passes every
    # `except Exception` of the server. Depth 31 makes cdshealpix panic for real.
    if hpx._raw_cone_search is None:
        pytest.skip("no compiled cone search to call directly")
    try:
        hpx._raw_cone_search(np.uint8(29), np.uint8(2), 0.1, 0.1, 0.0, False)
    except BaseException as exc:  # noqa: BLE001 -- the panic's own type is not importable
        panic = type(exc)
    else:
        pytest.skip("this cdshealpix does not panic past order 29")
    assert not issubclass(panic, Exception)

    def boom(*args, **kwargs):
        raise panic("index out of bounds")

    monkeypatch.setattr(hpx, "_raw_cone_search", boom)
    with pytest.raises(InputError, match="cannot cover the cone"):
        hpx.cone_ranges(10.0, 20.0, 0.01, 14)
