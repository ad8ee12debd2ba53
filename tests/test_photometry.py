"""The shared flux <-> AB magnitude conversions, checked against astropy.units."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import ConfigError, InputError
from skysense.photometry import (
    FLUX_UNITS,
    UJY_ZEROPOINT_MAG,
    UJY_ZEROPOINT_MAG_3631,
    flux_to_ujy,
    flux_ujy_to_mag,
    mag_to_flux_ujy,
    vega_to_ab,
)

MAGS = np.array([-1.0, 0.0, 16.4, 20.0, 23.9, 31.5])


def test_help_zeropoint_matches_astropy_abmag():
    flux, _ = mag_to_flux_ujy(MAGS)
    expected = (MAGS * u.ABmag).to(u.uJy).value
    np.testing.assert_allclose(flux, expected, rtol=1e-12)
    mag, _ = flux_ujy_to_mag(expected)
    np.testing.assert_allclose(mag, (expected * u.uJy).to(u.ABmag).value, atol=1e-12)


def test_3631_jy_zeropoint():
    # astropy's ABmag is 48.60 mag in cgs (3630.78 Jy); the 3631 Jy zero point is 6e-5 mag fainter.
    assert UJY_ZEROPOINT_MAG == pytest.approx((1 * u.uJy).to(u.ABmag).value, abs=1e-12)
    three = (3631 * u.Jy).to(u.ABmag).value  # m_AB of 3631 Jy in astropy's system
    assert UJY_ZEROPOINT_MAG_3631 == pytest.approx(UJY_ZEROPOINT_MAG - three, abs=1e-12)
    flux, _ = mag_to_flux_ujy(MAGS, zeropoint=UJY_ZEROPOINT_MAG_3631)
    np.testing.assert_allclose(flux, ((MAGS + three) * u.ABmag).to(u.uJy).value, rtol=1e-12)
    assert mag_to_flux_ujy(0.0, zeropoint=UJY_ZEROPOINT_MAG_3631)[0] == pytest.approx(3631e6)


@pytest.mark.parametrize("unit", ["nJy", "uJy", "mJy", "Jy", "erg/s/cm2/Hz"])
def test_flux_units_match_astropy(unit):
    values = np.array([0.5, 2.0, 123.0])
    astropy_unit = u.Unit("erg / (s cm2 Hz)") if unit == "erg/s/cm2/Hz" else u.Unit(unit)
    np.testing.assert_allclose(
        flux_to_ujy(values, unit), (values * astropy_unit).to(u.uJy).value, rtol=1e-12
    )
    assert unit in FLUX_UNITS


def test_flux_density_per_wavelength_via_spectral_density():
    # 1 uJy at 5000 A in f_lambda, converted back with astropy's spectral_density equivalency.
    wav = 5000 * u.AA
    flam = (1 * u.uJy).to(u.erg / u.s / u.cm**2 / u.AA, u.spectral_density(wav))
    back = flam.to(u.erg / u.s / u.cm**2 / u.Hz, u.spectral_density(wav)).value
    np.testing.assert_allclose(flux_to_ujy([back], "erg/s/cm2/Hz"), [1.0], rtol=1e-10)


def test_errors_first_order_against_astropy():
    mag, merr = 20.0, 0.01
    flux, ferr = mag_to_flux_ujy([mag], [merr])
    lo = ((mag + merr) * u.ABmag).to(u.uJy).value
    hi = ((mag - merr) * u.ABmag).to(u.uJy).value
    assert ferr[0] == pytest.approx((hi - lo) / 2, rel=1e-4)
    m, me = flux_ujy_to_mag(flux, ferr)
    assert me[0] == pytest.approx(merr, rel=1e-12)


def test_non_positive_fluxes_have_no_magnitude_and_no_warning():
    with np.errstate(all="raise"):
        m, me = flux_ujy_to_mag(np.array([0.0, -5.0, np.nan, 1.0]), np.array([1.0, 1.0, 1.0, 0.1]))
    assert np.isnan(m[:3]).all() and np.isnan(me[:3]).all()
    assert m[3] == pytest.approx(23.9)
    _, none = flux_ujy_to_mag(np.array([1.0]))
    assert np.isnan(none).all()


def test_unknown_unit_and_vega():
    with pytest.raises(ConfigError, match="unknown flux unit 'W'") as exc:
        flux_to_ujy([1.0], "W")
    assert isinstance(exc.value, InputError) and isinstance(exc.value, ValueError)
    assert vega_to_ab([10.0], 1.9)[0] == pytest.approx(11.9)


@settings(max_examples=50, deadline=None)
@given(st.floats(-5, 35), st.floats(0, 1))
def test_round_trip(mag, merr):
    f, fe = mag_to_flux_ujy([mag], [merr])
    m, me = flux_ujy_to_mag(f, fe)
    assert m[0] == pytest.approx(mag, abs=1e-9)
    assert me[0] == pytest.approx(merr, abs=1e-9)
