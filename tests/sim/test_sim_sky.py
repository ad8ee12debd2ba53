"""The simulated sky against its own input model: counts, redshifts, geometry, SEDs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.integrate import quad

from skysense.errors import InputError
from skysense.sim import FieldGeometry, NumberCounts, simulate_sky
from skysense.sim.geometry import sky_to_tangent, tangent_to_sky
from skysense.sim.sed import (
    BANDS,
    ab_mag_to_ujy,
    galaxy_sed_ujy,
    luminosity_distance_m,
    ujy_to_ab_mag,
)


@pytest.fixture(scope="module")
def sky():
    return simulate_sky(seed=3, area_deg2=0.05)


def test_galaxy_number_counts_match_input_model(sky):
    """Histogram of true i magnitudes vs the model: chi-square with Poisson errors."""
    edges = np.arange(14.0, 26.01, 0.5)
    observed, _ = np.histogram(sky.galaxies.i_mag, edges)
    area = sky.geometry.solid_angle_deg2()
    expected = np.array([sky.counts.expected(a, b, area) for a, b in zip(edges[:-1], edges[1:])])
    # Merge the sparse bright bins into one so every bin expects >= 10 objects.
    first = int(np.argmax(np.cumsum(expected) >= 10))
    obs = np.concatenate([[observed[: first + 1].sum()], observed[first + 1 :]])
    exp = np.concatenate([[expected[: first + 1].sum()], expected[first + 1 :]])
    chi2 = float(np.sum((obs - exp) ** 2 / exp))
    assert stats.chi2.sf(chi2, len(exp)) > 1e-3, (chi2, len(exp))
    # ...and per bin: no bin beyond 4 sigma.
    assert np.all(np.abs(obs - exp) < 4 * np.sqrt(exp) + 1)


def test_total_count_is_poisson_about_model():
    s = simulate_sky(seed=11, area_deg2=0.02, mag_limit=24.0)
    expect = s.counts.expected(14.0, 24.0, s.geometry.solid_angle_deg2())
    assert abs(len(s.galaxies) - expect) < 4 * math.sqrt(expect)


def test_number_counts_integral_matches_density():
    counts = NumberCounts()
    for lo, hi in [(15.0, 18.0), (18.0, 20.0), (20.0, 26.0)]:
        numeric, _ = quad(lambda m: float(counts.density(m)), lo, hi)
        assert counts.expected(lo, hi, 1.0) == pytest.approx(numeric, rel=1e-8)


def test_star_counts_and_proper_motions(sky):
    stars = sky.stars
    expect = sky.star_density_deg2 * sky.geometry.solid_angle_deg2()
    assert abs(len(stars) - expect) < 4 * math.sqrt(expect)
    assert np.all(np.isnan(stars.z)) and np.all(stars.kind == "star")
    # Dispersion shrinks with magnitude: bright stars move faster.
    bright = np.hypot(stars.pmra, stars.pmdec)[stars.i_mag < 18].median()
    faint = np.hypot(stars.pmra, stars.pmdec)[stars.i_mag > 22].median()
    assert bright > faint > 1.0
    assert np.all(sky.galaxies.pmra == 0) and np.all(sky.galaxies.pmdec == 0)


def test_redshifts_rise_with_magnitude(sky):
    g = sky.galaxies
    z_bright = g.z[(g.i_mag > 21) & (g.i_mag < 22)].median()
    z_faint = g.z[(g.i_mag > 24.5) & (g.i_mag < 25.5)].median()
    assert 0.3 < z_bright < z_faint < 2.0


def test_i_band_truth_equals_drawn_magnitude(sky):
    np.testing.assert_allclose(
        ujy_to_ab_mag(sky.galaxies.f_suprime_i), sky.galaxies.i_mag, atol=1e-9
    )


def test_truth_fluxes_finite_positive(sky):
    objects = sky.objects
    for band in BANDS:
        f = objects[f"f_{band}"].to_numpy()
        assert np.all(np.isfinite(f)) and np.all(f >= 0), band
    assert objects.object_id.is_unique
    assert objects.object_id.dtype == np.int64


def test_dust_luminosity_integral_is_l_dust():
    """Integrating the rest-frame dust spectrum over frequency gives back L_dust (independent)."""
    z = np.array([0.5])
    lam = np.geomspace(0.5, 3e4, 20000)  # um, observed
    _, dust = galaxy_sed_ujy(
        lam,
        z,
        np.array([0.0]),
        np.array([1e11]),
        np.array([4000.0]),
        np.array([1.5]),
        np.array([0.0]),
        np.array([30.0]),
    )
    nu = 2.99792458e14 / lam
    flux_si = dust * 1e-32
    lum = -np.trapezoid(flux_si, nu) * 4 * np.pi * luminosity_distance_m(z)[0] ** 2
    assert lum / (1e11 * 3.828e26) == pytest.approx(1.0, rel=2e-3)


def test_dust_peak_follows_wien_law():
    lam = np.geomspace(20.0, 2000.0, 4000)
    peaks = []
    for t in (25.0, 40.0):
        _, dust = galaxy_sed_ujy(
            lam,
            np.array([0.01]),
            np.array([0.0]),
            np.array([1e10]),
            np.array([4000.0]),
            np.array([1.5]),
            np.array([0.0]),
            np.array([t]),
        )
        peaks.append(lam[np.argmax(dust)] / 1.01)
    # S_nu of a beta = 1.5 modified black body peaks at lambda ~ 2.9e3 / (T * 1.35) um-ish;
    # independently of constants, the peak wavelength scales as 1/T.
    assert peaks[0] / peaks[1] == pytest.approx(40.0 / 25.0, rel=0.02)


def test_ab_magnitude_round_trip():
    mags = np.array([10.0, 20.0, 23.9, 30.0])
    np.testing.assert_allclose(ujy_to_ab_mag(ab_mag_to_ujy(mags)), mags)
    assert ab_mag_to_ujy(23.9) == pytest.approx(1.0, rel=1e-3)  # 23.9 AB = 1 uJy
    assert np.isnan(ujy_to_ab_mag(np.array([0.0, -1.0]))).all()


def test_luminosity_distance_matches_astropy():
    from astropy.cosmology import Planck18

    z = np.array([0.05, 0.37, 1.0, 2.5, 5.9])
    np.testing.assert_allclose(
        luminosity_distance_m(z), Planck18.luminosity_distance(z).to_value("m"), rtol=2e-4
    )


def test_geometry_solid_angle_and_uniform_sampling():
    geom = FieldGeometry(10.0, 60.0, 4.0)
    assert geom.solid_angle_deg2() == pytest.approx(4.0, rel=1e-10)
    # Halves of the square carry half the solid angle, by symmetry.
    assert geom.solid_angle_deg2((0, 0.5, 0, 1)) == pytest.approx(2.0, rel=1e-10)
    # Uniform per steradian: the fraction of points in a corner box equals its area fraction.
    ra, dec = geom.sample_uniform(200_000, np.random.default_rng(1))
    frac = geom.contains(ra, dec, (0.0, 0.2, 0.0, 0.2)).mean()
    expect = geom.solid_angle_deg2((0.0, 0.2, 0.0, 0.2)) / 4.0
    assert abs(frac - expect) < 4 * math.sqrt(expect * (1 - expect) / 200_000)
    assert geom.contains(ra, dec).all()


def test_field_across_ra_zero():
    s = simulate_sky(seed=1, area_deg2=0.05, center=(0.05, -30.0), mag_limit=23.0)
    ra = s.galaxies.ra.to_numpy()
    assert ra.min() >= 0.0 and ra.max() < 360.0
    assert (ra > 359.0).any() and (ra < 1.0).any()
    assert s.geometry.contains(ra, s.galaxies.dec.to_numpy()).all()


@settings(max_examples=60, deadline=None)
@given(
    ra0=st.floats(0.0, 359.999),
    dec0=st.floats(-89.0, 89.0),
    xi=st.floats(-0.02, 0.02),
    eta=st.floats(-0.02, 0.02),
)
def test_tangent_projection_round_trip(ra0, dec0, xi, eta):
    ra, dec = tangent_to_sky(np.array([xi]), np.array([eta]), ra0, dec0)
    xi2, eta2 = sky_to_tangent(ra, dec, ra0, dec0)
    assert xi2[0] == pytest.approx(xi, abs=1e-12)
    assert eta2[0] == pytest.approx(eta, abs=1e-12)


def test_deterministic_and_seed_dependent():
    a = simulate_sky(seed=5, area_deg2=0.01)
    b = simulate_sky(seed=5, area_deg2=0.01)
    c = simulate_sky(seed=6, area_deg2=0.01)
    assert a.objects.equals(b.objects)
    assert not a.objects[["ra", "dec"]].equals(c.objects[["ra", "dec"]].iloc[: len(a.objects)])


def test_stars_independent_of_galaxy_settings():
    """Sub-streams: changing the galaxy depth does not move the stars."""
    a = simulate_sky(seed=5, area_deg2=0.01, mag_limit=25.0)
    b = simulate_sky(seed=5, area_deg2=0.01, mag_limit=24.0)
    np.testing.assert_array_equal(a.stars.ra.to_numpy(), b.stars.ra.to_numpy())
    np.testing.assert_array_equal(a.stars.pmra.to_numpy(), b.stars.pmra.to_numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"seed": 1.5},
        {"area_deg2": 0.0},
        {"area_deg2": float("nan")},
        {"center": (10.0, 95.0)},
        {"center": "north"},
        {"mag_limit": 10.0},
        {"star_density_deg2": -3.0},
    ],
)
def test_invalid_parameters_raise(kwargs):
    with pytest.raises(InputError):
        simulate_sky(**kwargs)


@pytest.mark.parametrize("beta,alpha", [(1.5, 2.0), (1.8, 1.5)])
def test_dust_power_law_joins_smoothly(beta, alpha):
    """Value and logarithmic slope are continuous where the mid-IR power law takes over."""
    from skysense.sim.sed import _dust_join, _dust_shape

    x_c = _dust_join(beta, alpha)
    eps = 1e-6
    x = np.array([x_c * (1 - eps), x_c * (1 + eps)])
    g = _dust_shape(x, beta, alpha)
    assert g[1] / g[0] == pytest.approx(1.0, abs=1e-4)
    # Below the join the modified black body's slope is -alpha too (Casey 2012 condition).
    xb = np.array([x_c * (1 - 1e-5), x_c * (1 - 1e-6)])
    slope = np.diff(np.log(_dust_shape(xb, beta, alpha))) / np.diff(np.log(xb))
    assert slope[0] == pytest.approx(-alpha, abs=2e-3)
