"""Astrometry: proper-motion propagation against astropy, offset recovery, cos(dec) shifts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.catalog.astrometry import (
    apply_offset,
    match_offsets,
    measure_offset,
    propagate_positions,
)
from skysense.catalog.match import angular_sep_arcsec
from skysense.catalog.plots import plot_offsets


def _astropy_propagate(ra, dec, pmra, pmdec, t0, t1):
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    c = SkyCoord(
        ra=ra * u.deg,
        dec=dec * u.deg,
        pm_ra_cosdec=pmra * u.mas / u.yr,
        pm_dec=pmdec * u.mas / u.yr,
        obstime=Time(t0, format="jyear"),
        frame="icrs",
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA warns about the missing distance
        moved = c.apply_space_motion(new_obstime=Time(t1, format="jyear"))
    return moved.ra.deg, moved.dec.deg


@pytest.mark.parametrize("dec0", [0.0, 45.0, 80.0, -85.0])
def test_propagation_matches_astropy_apply_space_motion(dec0):
    rng = np.random.default_rng(11)
    n = 200
    ra = rng.uniform(0, 360, n)
    dec = np.clip(dec0 + rng.uniform(-2, 2, n), -89.9, 89.9)
    pmra = rng.normal(0, 300, n)
    pmdec = rng.normal(0, 300, n)
    ours = propagate_positions(ra, dec, pmra, pmdec, 2016.0, 2000.0)
    ref = _astropy_propagate(ra, dec, pmra, pmdec, 2016.0, 2000.0)
    sep = angular_sep_arcsec(ours[0], ours[1], ref[0], ref[1])
    # Motions are up to ~16 arcsec; agreement to 0.1 mas.
    assert sep.max() < 1e-4


def test_ra_shift_divides_by_cos_dec_at_high_declination():
    # 1000 mas/yr east for 10 yr at dec=80: 10 arcsec on the sky = 10/cos(80) arcsec of RA.
    ra, dec = propagate_positions(np.array([10.0]), np.array([80.0]), [1000.0], [0.0], 2000, 2010)
    dra_arcsec = (ra[0] - 10.0) * 3600
    assert dra_arcsec == pytest.approx(10.0 / np.cos(np.radians(80.0)), rel=1e-5)
    assert angular_sep_arcsec(10.0, 80.0, ra[0], dec[0])[()] == pytest.approx(10.0, rel=1e-6)
    # apply_offset does the same for a constant offset.
    ra2, dec2 = apply_offset(np.array([10.0]), np.array([80.0]), 1.0, 0.0)
    assert (ra2[0] - 10.0) * 3600 == pytest.approx(1.0 / np.cos(np.radians(80.0)), rel=1e-9)
    assert angular_sep_arcsec(10.0, 80.0, ra2[0], dec2[0])[()] == pytest.approx(1.0, rel=1e-6)


def test_propagation_wraps_ra():
    ra, _ = propagate_positions(np.array([359.9999]), np.array([0.0]), [1000.0], [0.0], 0, 1)
    assert 0.0 <= ra[0] < 360.0
    assert ra[0] == pytest.approx((359.9999 + 1 / 3600) % 360, abs=1e-9)


@pytest.mark.parametrize("dec0", [2.0, 80.0])
def test_planted_offset_is_recovered_within_its_error(dec0):
    rng = np.random.default_rng(7)
    n = 1500
    ra_ref = 150 + rng.uniform(-0.1, 0.1, n) / np.cos(np.radians(dec0))
    dec_ref = dec0 + rng.uniform(-0.1, 0.1, n)
    plant = (0.42, -0.27)  # reference - survey, arcsec
    noise = 0.08
    ra_s, dec_s = apply_offset(ra_ref, dec_ref, -plant[0], -plant[1])
    ra_s = ra_s + rng.normal(0, noise, n) / 3600 / np.cos(np.radians(dec_s))
    dec_s = dec_s + rng.normal(0, noise, n) / 3600
    off = measure_offset(ra_s, dec_s, ra_ref, dec_ref, 1.0)
    assert off.n_matches > 0.95 * n
    assert abs(off.dra_cosdec_arcsec - plant[0]) < 4 * off.dra_err_arcsec
    assert abs(off.ddec_arcsec - plant[1]) < 4 * off.ddec_err_arcsec
    assert off.dra_err_arcsec == pytest.approx(1.2533 * noise / np.sqrt(off.n_matches), rel=0.2)
    ra_c, dec_c = apply_offset(ra_s, dec_s, off.dra_cosdec_arcsec, off.ddec_arcsec)
    _, _, dra, ddec = match_offsets(ra_c, dec_c, ra_ref, dec_ref, 1.0)
    assert abs(np.median(dra)) < 4 * off.dra_err_arcsec
    assert abs(np.median(ddec)) < 4 * off.ddec_err_arcsec


def test_too_few_matches_gives_zero_offset():
    off = measure_offset(np.array([1.0]), np.array([1.0]), np.array([50.0]), np.array([1.0]))
    assert off.dra_cosdec_arcsec == 0.0 and np.isnan(off.dra_err_arcsec)


def test_plot_is_written(tmp_path):
    rng = np.random.default_rng(1)
    before = (rng.normal(0.3, 0.1, 50), rng.normal(-0.2, 0.1, 50))
    after = (rng.normal(0, 0.1, 50), rng.normal(0, 0.1, 50))
    plot_offsets(before, after, tmp_path / "p.png", title="t", radius_arcsec=1.0)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@settings(max_examples=150, deadline=None)
@given(
    st.floats(0, 359.999),
    st.floats(-88, 88),
    st.floats(-5000, 5000),
    st.floats(-5000, 5000),
    st.floats(-40, 40),
)
def test_motion_length_and_direction(ra, dec, pmra, pmdec, dt):
    """The displacement is |pm| * |dt| along position angle atan2(pmra, pmdec)."""
    ra1, dec1 = propagate_positions(
        np.array([ra]), np.array([dec]), [pmra], [pmdec], 2000, 2000 + dt
    )
    expected = np.hypot(pmra, pmdec) * abs(dt) / 1000.0  # arcsec
    sep = angular_sep_arcsec(ra, dec, ra1[0], dec1[0])[()]
    assert sep == pytest.approx(expected, rel=1e-5, abs=1e-9)
    if expected > 1e-3:
        a, d, a1, d1 = np.radians([ra, dec, ra1[0], dec1[0]])
        pa = np.arctan2(
            np.sin(a1 - a) * np.cos(d1),
            np.cos(d) * np.sin(d1) - np.sin(d) * np.cos(d1) * np.cos(a1 - a),
        )
        want = np.arctan2(pmra, pmdec) if dt > 0 else np.arctan2(-pmra, -pmdec)
        assert abs((pa - want + np.pi) % (2 * np.pi) - np.pi) < 1e-4
