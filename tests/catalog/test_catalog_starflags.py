"""flag_gaia thresholds and the bright-star mask against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from skysense.catalog.match import angular_sep_arcsec
from skysense.catalog.starflags import StarMaskLaw, gaia_flag, star_mask


def test_gaia_flag_thresholds():
    dec0 = 30.0
    seps = np.array([0.3, 0.59, 0.61, 1.49, 1.51, 1.99, 2.01, 10.0])
    ra = 100.0 + np.arange(len(seps)) * 0.01
    ref_ra = ra + seps / 3600 / np.cos(np.radians(dec0))
    dec = np.full(len(seps), dec0)
    assert gaia_flag(ra, dec, ref_ra, dec).tolist() == [3, 3, 2, 2, 1, 1, 0, 0]


def test_gaia_flag_uses_the_nearest_reference():
    ra = np.array([0.0])
    ref_ra = np.array([1.8, 0.5]) / 3600
    assert gaia_flag(ra, np.zeros(1), ref_ra, np.zeros(2))[0] == 3
    assert gaia_flag(ra, np.zeros(1), ref_ra[:0], np.zeros(0))[0] == 0


def test_radius_law():
    law = StarMaskLaw()
    r = law.radius_arcsec(np.array([16.0, 15.0, 11.0, 0.0, 25.0]))
    assert r[0] == pytest.approx(10.0)
    assert r[1] / r[0] == pytest.approx(10**0.2)
    assert r[2] == pytest.approx(10 * 10 ** (0.2 * 5))
    assert r[3] == law.r_max_arcsec and r[4] == law.r_min_arcsec


def test_star_mask_against_brute_force():
    rng = np.random.default_rng(2)
    ra = rng.uniform(0, 0.2, 3000)
    dec = rng.uniform(-0.1, 0.1, 3000)
    s_ra = rng.uniform(0, 0.2, 30)
    s_dec = rng.uniform(-0.1, 0.1, 30)
    s_mag = rng.uniform(8, 20, 30)
    law = StarMaskLaw()
    got = star_mask(ra, dec, s_ra, s_dec, s_mag, law)
    sep = angular_sep_arcsec(ra[:, None], dec[:, None], s_ra[None], s_dec[None])
    radius = law.radius_arcsec(s_mag)
    want = ((sep <= radius[None]) & (s_mag < law.mag_limit)[None]).any(axis=1)
    assert got.tolist() == want.tolist()
    assert 0 < got.sum() < len(ra)
