"""Magnitude/flux conversions against hand computations, error propagation, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.catalog.aperture import aperture_correction
from skysense.catalog.photometry import sentinels_to_nan
from skysense.photometry import flux_to_ujy, flux_ujy_to_mag, mag_to_flux_ujy, vega_to_ab


def test_hand_values():
    # m = 23.9 is 1 uJy; m = 16.4 is 10**3 uJy; m = 0 is 3631 Jy within the 23.9 rounding.
    f, _ = mag_to_flux_ujy(np.array([23.9, 16.4, 0.0]))
    assert f[0] == pytest.approx(1.0, rel=1e-12)
    assert f[1] == pytest.approx(1000.0, rel=1e-12)
    assert f[2] * 1e-6 == pytest.approx(3631.0, rel=1e-4)
    m, _ = flux_ujy_to_mag(np.array([3631e6, 1.0, 0.0, -5.0]))
    assert m[0] == pytest.approx(0.0, abs=1e-4)
    assert m[1] == pytest.approx(23.9, abs=1e-12)
    assert np.isnan(m[2]) and np.isnan(m[3])


def test_error_propagation_by_hand_and_numerically():
    # merr = 0.1 at m = 20: f = 10**(3.9/2.5) = 36.3078 uJy; ferr = f * 0.1 * ln10 / 2.5.
    f, ferr = mag_to_flux_ujy(np.array([20.0]), np.array([0.1]))
    assert f[0] == pytest.approx(36.30780547701, rel=1e-10)
    assert ferr[0] == pytest.approx(36.30780547701 * 0.1 * np.log(10) / 2.5, rel=1e-12)
    # Numerical derivative of m(f) agrees with the propagated magnitude error.
    flux, err = np.array([12.5]), np.array([0.3])
    m, merr = flux_ujy_to_mag(flux, err)
    h = 1e-6
    dm = (flux_ujy_to_mag(flux + h)[0] - flux_ujy_to_mag(flux - h)[0]) / (2 * h)
    assert merr[0] == pytest.approx(abs(dm[0]) * 0.3, rel=1e-6)
    # Negative fluxes keep NaN magnitude errors, not negative ones.
    assert np.isnan(flux_ujy_to_mag(np.array([-1.0]), np.array([1.0]))[1][0])


def test_units_vega_and_sentinels():
    assert flux_to_ujy(np.array([1.0]), "mJy")[0] == 1000.0
    assert flux_to_ujy(np.array([1.0]), "nJy")[0] == pytest.approx(1e-3)
    assert flux_to_ujy(np.array([1e-29]), "erg/s/cm2/Hz")[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown flux unit"):
        flux_to_ujy(np.array([1.0]), "W")
    assert vega_to_ab(np.array([15.0]), 1.9)[0] == pytest.approx(16.9)
    out = sentinels_to_nan(np.array([99.0, 20.0, -99.0, np.inf]), [99.0, -99.0])
    assert np.isnan(out[[0, 2, 3]]).all() and out[1] == 20.0


@settings(max_examples=200, deadline=None)
@given(st.floats(-5, 35, allow_nan=False), st.floats(0, 2, allow_nan=False))
def test_mag_flux_round_trip(mag, merr):
    f, ferr = mag_to_flux_ujy(np.array([mag]), np.array([merr]))
    m, me = flux_ujy_to_mag(f, ferr)
    assert m[0] == pytest.approx(mag, abs=1e-9)
    assert me[0] == pytest.approx(merr, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.floats(-5, 35, allow_nan=False), st.floats(0.01, 5, allow_nan=False))
def test_brighter_is_more_flux_and_ratio_law(mag, dm):
    f1, _ = mag_to_flux_ujy(np.array([mag]))
    f2, _ = mag_to_flux_ujy(np.array([mag + dm]))
    assert f1[0] > f2[0]
    assert f1[0] / f2[0] == pytest.approx(10 ** (0.4 * dm), rel=1e-9)


def test_aperture_correction_recovers_planted_value():
    rng = np.random.default_rng(3)
    n = 4000
    star = rng.random(n) < 0.3
    m_tot = rng.uniform(15, 25, n)
    truth = -0.31
    scatter = 0.03
    m_ap = m_tot - truth + np.where(star, rng.normal(0, scatter, n), rng.uniform(0.1, 1.5, n))
    # Saturated bright stars have a different (wrong) difference: the default range skips them.
    m_ap[star & (m_tot < 15.8)] += 0.5
    stell = np.where(star, 0.98, 0.1)
    res = aperture_correction(m_tot, m_ap, stell)
    assert abs(res.value_mag - truth) < 4 * res.error_mag
    assert res.error_mag == pytest.approx(1.2533 * scatter / np.sqrt(res.n_stars), rel=0.2)
    assert res.mag_min > 15.8
    # An explicit range is honoured.
    res2 = aperture_correction(m_tot, m_ap, stell, mag_min=18, mag_max=20)
    assert (res2.mag_min, res2.mag_max) == (18, 20)
    assert abs(res2.value_mag - truth) < 4 * res2.error_mag


def test_aperture_correction_too_few_stars_is_nan():
    res = aperture_correction(np.arange(5.0), np.arange(5.0), np.ones(5))
    assert np.isnan(res.value_mag) and res.n_stars < 10
