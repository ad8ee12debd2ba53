"""Far-infrared maps: exact beam-normalised injection, WCS, noise and confusion."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from astropy.modeling.functional_models import Gaussian2D
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import InputError
from skysense.sim import DEFAULT_MAPS, inject_point_sources, make_maps, simulate_sky
from skysense.sim.maps import FWHM_TO_SIGMA, MapSpec, map_sources

MAPS = {m.band: m for m in DEFAULT_MAPS}


def test_pixel_sums_equal_flux_times_beam_area():
    rng = np.random.default_rng(0)
    sigma = 18.15 * FWHM_TO_SIGMA / 6.0
    n = 300
    x, y = rng.uniform(20, 180, n), rng.uniform(20, 130, n)
    flux = rng.lognormal(2.0, 1.0, n)
    image = inject_point_sources((150, 200), x, y, flux, sigma)
    # Sum of a beam-normalised Gaussian over pixels = 2 pi sigma^2 / pix^2 per unit flux; the
    # 5-sigma cut-off drops exp(-12.5) = 3.7e-6 of it.
    expected = flux.sum() * 2 * math.pi * sigma**2
    assert image.sum() == pytest.approx(expected, rel=1e-5)
    assert image.sum() < expected


def test_single_source_peak_and_sum_per_source():
    sigma = 2.09
    for x0, y0 in [(30.0, 40.0), (30.37, 40.81)]:
        image = inject_point_sources(
            (80, 70), np.array([x0]), np.array([y0]), np.array([7.0]), sigma
        )
        if x0 == int(x0):
            assert image[int(y0), int(x0)] == pytest.approx(7.0)  # peak = flux (mJy/beam)
        assert image.sum() == pytest.approx(7.0 * 2 * math.pi * sigma**2, rel=1e-5)
        # Flux-weighted centroid is the true sub-pixel position.
        yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
        assert (image * xx).sum() / image.sum() == pytest.approx(x0, abs=1e-4)
        assert (image * yy).sum() / image.sum() == pytest.approx(y0, abs=1e-4)


def test_injection_matches_astropy_modeling_brute_force():
    """Independent peer: astropy Gaussian2D evaluated on every pixel, source by source."""
    sky = simulate_sky(seed=2, area_deg2=0.002)
    sources = map_sources(sky)
    for band in ("spire_250", "mips_24"):
        spec = MAPS[band]
        sim = make_maps(sky, (spec,), noise=False)[band]
        ny, nx = sim.image.shape
        yy, xx = np.mgrid[:ny, :nx]
        x, y = sim.wcs.wcs_world2pix(sources.ra, sources.dec, 0)
        flux = sources[f"f_{band}"].to_numpy()
        brute = np.zeros((ny, nx))
        for k in range(len(flux)):
            brute += Gaussian2D(flux[k], x[k], y[k], spec.sigma_pix, spec.sigma_pix)(xx, yy)
        # Differences come only from the 5-sigma cut-off (and float32 storage).
        tol = flux.max() * math.exp(-12.5) * 1.01 + 1e-6 * np.abs(brute).max()
        assert np.abs(sim.image - brute).max() < tol + 1e-6 * np.abs(brute).max()
        assert len(flux) > 100


def test_wcs_round_trip_single_source():
    """A lone source: its WCS pixel position is where the flux peaks, and back."""
    for center in [(150.1, 2.2), (0.01, -5.0), (200.0, 85.0)]:
        sky = simulate_sky(seed=4, area_deg2=0.01, center=center, mag_limit=20.0)
        one = sky.galaxies.iloc[[0]].copy()
        one["f_spire_250"] = 50_000.0  # uJy
        lone = dataclasses.replace(sky, galaxies=one, stars=sky.stars.iloc[:0])
        sim = make_maps(lone, (MAPS["spire_250"],), noise=False)["spire_250"]
        img = sim.image.astype(float)
        yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
        xc, yc = (img * xx).sum() / img.sum(), (img * yy).sum() / img.sum()
        x_wcs, y_wcs = sim.wcs.wcs_world2pix(one.ra.to_numpy(), one.dec.to_numpy(), 0)
        assert xc == pytest.approx(float(x_wcs[0]), abs=1e-3)
        assert yc == pytest.approx(float(y_wcs[0]), abs=1e-3)
        ra, dec = sim.wcs.wcs_pix2world(xc, yc, 0)
        sep = math.hypot((float(ra) - one.ra.iloc[0] + 180) % 360 - 180, 0) * math.cos(
            math.radians(one.dec.iloc[0])
        )
        assert sep * 3600 < 0.01 and abs(float(dec) - one.dec.iloc[0]) * 3600 < 0.01
        assert img.max() == pytest.approx(50.0, rel=0.3)  # mJy/beam; pixel-phase dependent


def test_noise_matches_error_map_and_confusion_order():
    sky = simulate_sky(seed=9, area_deg2=0.05)
    clean = make_maps(sky, noise=False)
    noisy = make_maps(sky, noise=True)
    for band, sim in noisy.items():
        pull = (sim.image.astype(float) - clean[band].image) / sim.error
        assert np.std(pull) == pytest.approx(1.0, abs=0.03)
        assert abs(np.mean(pull)) < 0.05
        np.testing.assert_array_equal(sim.error, clean[band].error)
        # ERROR grows towards the corners (coverage falls).
        err = sim.error
        assert err[0, 0] == pytest.approx(
            MAPS[band].noise_mjy_beam * MAPS[band].noise_edge_factor, rel=1e-3
        )
        assert err[err.shape[0] // 2, err.shape[1] // 2] == pytest.approx(
            MAPS[band].noise_mjy_beam, rel=1e-3
        )
    # Confusion noise of the right order (real SPIRE: 5.8 / 6.3 / 6.8 mJy/beam).
    for band in ("spire_250", "spire_350", "spire_500"):
        assert 3.0 < clean[band].confusion_mjy_beam < 12.0, band


def test_maps_deterministic_and_noise_streams_independent():
    sky = simulate_sky(seed=1, area_deg2=0.005)
    a = make_maps(sky)
    b = make_maps(sky, (MAPS["spire_350"],))
    np.testing.assert_array_equal(a["spire_350"].image, b["spire_350"].image)
    c = make_maps(sky, seed=2)
    assert not np.array_equal(a["spire_350"].image, c["spire_350"].image)


def test_map_shape_covers_field():
    sky = simulate_sky(seed=1, area_deg2=0.01, mag_limit=20.0)
    for spec in DEFAULT_MAPS:
        sim = make_maps(sky, (spec,), noise=False)[spec.band]
        ny, nx = sim.image.shape
        assert ny == nx and nx % 2 == 1
        assert nx * spec.pixel_arcsec >= sky.geometry.side_deg * 3600
        x, y = sim.wcs.wcs_world2pix(sky.galaxies.ra, sky.galaxies.dec, 0)
        assert (
            (x > -0.5).all() and (x < nx - 0.5).all() and (y > -0.5).all() and (y < ny - 0.5).all()
        )
        assert sim.header()["BUNIT"] == "mJy/beam"


def test_invalid_inputs():
    with pytest.raises(InputError):
        inject_point_sources((10, 10), np.zeros(2), np.zeros(3), np.zeros(2), 1.0)
    with pytest.raises(InputError):
        inject_point_sources((10, 10), np.zeros(2), np.zeros(2), np.zeros(2), 0.0)
    with pytest.raises(InputError):
        inject_point_sources(
            (10, 10),
            np.zeros(1),
            np.zeros(1),
            np.ones(1),
            1.0,
            out=np.zeros((10, 10), dtype=np.float32),
        )
    acc = np.ones((30, 30))
    inject_point_sources((0, 0), np.array([15.0]), np.array([15.0]), np.array([2.0]), 1.0, out=acc)
    assert acc.sum() == pytest.approx(900 + 2 * 2 * math.pi, rel=1e-6)
    sky = simulate_sky(seed=1, area_deg2=0.001, mag_limit=20.0)
    with pytest.raises(InputError):
        make_maps(sky, (MapSpec("megacam_u", 1.0, 1.0, 1.0),))
    with pytest.raises(InputError):
        make_maps(sky, (MapSpec("spire_250", 0.0, 18.0, 1.0),))


def test_non_finite_sources_are_skipped():
    image = inject_point_sources(
        (20, 20), np.array([10.0, np.nan]), np.array([10.0, 3.0]), np.array([1.0, 1.0]), 1.5
    )
    assert np.isfinite(image).all()
    assert image.sum() == pytest.approx(2 * math.pi * 1.5**2, rel=1e-5)
    assert isinstance(
        map_sources(simulate_sky(seed=0, area_deg2=0.001, mag_limit=20)), pd.DataFrame
    )


@settings(max_examples=50, deadline=None)
@given(
    sigma=st.floats(1.0, 4.0),  # the maps have sigma >= 1.28 px
    x0=st.floats(25.0, 35.0),
    y0=st.floats(25.0, 35.0),
    flux=st.floats(1e-3, 1e4),
)
def test_injection_conserves_beam_integral(sigma, x0, y0, flux):
    image = inject_point_sources((60, 60), np.array([x0]), np.array([y0]), np.array([flux]), sigma)
    assert image.sum() == pytest.approx(flux * 2 * math.pi * sigma**2, rel=1e-5)
    assert image.max() <= flux * (1 + 1e-12)
