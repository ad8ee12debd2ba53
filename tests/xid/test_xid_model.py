"""Pointing matrix and priors against brute-force evaluations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from skysense.errors import InputError
from skysense.xid.model import (
    BackgroundPrior,
    GaussianBeam,
    PRFBeam,
    band_model,
    default_upper_bounds,
    duplicate_columns,
    pointing_matrix,
)


def _brute(sx, sy, px, py, fwhm, pix, frac):
    s = fwhm / 2.3548200450309493
    out = np.zeros((px.size, sx.size))
    for j in range(sx.size):
        for i in range(px.size):
            v = np.exp(-0.5 * (((px[i] - sx[j]) * pix) ** 2 + ((py[i] - sy[j]) * pix) ** 2) / s**2)
            out[i, j] = v if v >= frac else 0.0
    return out


def test_gaussian_pointing_matrix_matches_brute_force():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:20, 0:25]
    good = rng.random(xx.shape) > 0.1  # some masked pixels
    px, py = xx[good], yy[good]
    sx, sy = rng.uniform(-2, 26, 7), rng.uniform(-2, 21, 7)
    a = pointing_matrix(sx, sy, px, py, GaussianBeam(18.0), 6.0, min_fraction=1e-3)
    assert isinstance(a, sp.csr_matrix) and a.shape == (px.size, 7)
    np.testing.assert_allclose(a.toarray(), _brute(sx, sy, px, py, 18.0, 6.0, 1e-3), atol=1e-12)


def test_prf_beam_interpolates_a_gaussian():
    # a PRF image of the same Gaussian sampled at 1 arcsec reproduces the analytic beam
    off = np.arange(-60, 61)
    xx, yy = np.meshgrid(off, off)
    beam = GaussianBeam(18.0)
    prf = PRFBeam(5 * beam.evaluate(xx, yy), 1.0)
    rng = np.random.default_rng(2)
    yy2, xx2 = np.mgrid[0:15, 0:15]
    sx, sy = rng.uniform(3, 11, 5), rng.uniform(3, 11, 5)
    a_prf = pointing_matrix(sx, sy, xx2.ravel(), yy2.ravel(), prf, 6.0, min_fraction=1e-3)
    a_g = pointing_matrix(sx, sy, xx2.ravel(), yy2.ravel(), beam, 6.0, min_fraction=1e-3)
    np.testing.assert_allclose(
        a_prf.toarray(), a_g.toarray(), atol=5e-3
    )  # bilinear error at 1 arcsec sampling


@settings(max_examples=30, deadline=None)
@given(
    x=st.floats(0, 9),
    y=st.floats(0, 9),
    fwhm=st.floats(3.0, 30.0),
    frac=st.floats(1e-4, 0.5),
)
def test_pointing_matrix_entries_bounded_and_cut(x, y, fwhm, frac):
    yy, xx = np.mgrid[0:10, 0:10]
    a = pointing_matrix(
        np.array([x]),
        np.array([y]),
        xx.ravel(),
        yy.ravel(),
        GaussianBeam(fwhm),
        4.0,
        min_fraction=frac,
    )
    v = a.toarray()[:, 0]
    assert np.all(v[v > 0] >= frac) and v.max() <= 1.0
    # the nearest pixel always carries the beam at its true offset
    k = int(round(y)) * 10 + int(round(x))
    expect = GaussianBeam(fwhm).evaluate((round(x) - x) * 4.0, (round(y) - y) * 4.0)
    assert v[k] == pytest.approx(expect if expect >= frac else 0.0)


def test_default_upper_bound_is_max_pixel_plus_background_margin():
    a = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 0.2], [0.0, 1.0]]))
    d = np.array([3.0, 10.0, -1.0])
    up = default_upper_bounds(a, d, BackgroundPrior(-2.0, 1.5))
    np.testing.assert_allclose(up, [10 + 2 + 3, 10 + 2 + 3])


def test_duplicate_columns_found():
    a = sp.csr_matrix(np.array([[1.0, 0.3, 1.0], [0.5, 0.2, 0.5]]))
    assert duplicate_columns(a) == [(0, 2)]


def test_bounds_lower_above_upper_named():
    a = sp.csr_matrix(np.eye(3))
    with pytest.raises(InputError, match="row 1"):
        band_model(
            "spire_250", a, np.ones(3), np.ones(3), flux_lower=[0, 5, 0], flux_upper=[1, 2, 1]
        )


def test_loguniform_needs_positive_lower():
    a = sp.csr_matrix(np.eye(2))
    with pytest.raises(InputError, match="log-uniform"):
        band_model(
            "spire_250",
            a,
            np.ones(2),
            np.ones(2),
            flux_lower=[0, 1],
            flux_upper=[3, 3],
            flux_kind="loguniform",
        )


def test_lognormal_needs_median_and_scatter():
    a = sp.csr_matrix(np.eye(2))
    with pytest.raises(InputError, match="log-normal flux prior.*flux_mu"):
        band_model("spire_250", a, np.ones(2), np.ones(2), flux_kind="lognormal")
    with pytest.raises(InputError, match="median mu must be > 0"):
        band_model(
            "spire_250",
            a,
            np.ones(2),
            np.ones(2),
            flux_kind="lognormal",
            flux_mu=[1.0, -1.0],
            flux_sigma=[0.5, 0.5],
            flux_lower=[0.1, 0.1],
        )


def test_noise_must_be_positive():
    a = sp.csr_matrix(np.eye(2))
    with pytest.raises(InputError, match="noise"):
        band_model("spire_250", a, np.ones(2), np.array([1.0, 0.0]))
