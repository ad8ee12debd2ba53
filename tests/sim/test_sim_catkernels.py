"""The catalogue-only simulator's numba kernels against the field simulator's numpy code
(:mod:`skysense.sim.surveys`) and the number counts' own cumulative law, on the same
random deviates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skysense.photometry import UJY_ZEROPOINT_MAG_3631
from skysense.sim import _catkernels as kern
from skysense.sim.sed import VEGA_TO_AB, ab_mag_to_ujy
from skysense.sim.sky import GALAXY_COUNTS, TRUTH_EPOCH
from skysense.sim.surveys import (
    DEFAULT_SURVEYS,
    measure_photometry,
    offset_positions,
    photometry_columns,
    positions_at_epoch,
)

COUNTS = np.array([GALAXY_COUNTS.n0, GALAXY_COUNTS.m0, GALAXY_COUNTS.alpha_faint,
                   GALAXY_COUNTS.m_break, GALAXY_COUNTS.alpha_bright])  # fmt: skip


@pytest.mark.parametrize("m_hi", [18.0, 24.5, 27.0])
def test_galaxy_magnitudes_invert_the_cumulative_counts(m_hi):
    u = np.linspace(0.0, 1.0, 2001)[:-1]
    mag = kern.galaxy_mag_from_uniform(u, COUNTS, 14.0, m_hi)
    c_lo, c_hi = GALAXY_COUNTS.cumulative(14.0), GALAXY_COUNTS.cumulative(m_hi)
    back = (GALAXY_COUNTS.cumulative(mag) - c_lo) / (c_hi - c_lo)
    np.testing.assert_allclose(back, u, atol=1e-9)
    assert np.all(np.diff(mag) > 0) and mag[0] == 14.0 and mag[-1] < m_hi


@pytest.mark.parametrize("name", ["cfhtls", "ukidss", "swire"])
def test_photometry_equals_the_field_simulators(name):
    """Same deviates in the same roles: the kernel's columns are measure_photometry +
    photometry_columns' (AB and Vega magnitudes with a sentinel, fluxes with NaN)."""
    spec = next(s for s in DEFAULT_SURVEYS if s.name == name)
    nb, n = len(spec.bands), 4000
    rng = np.random.default_rng(3)
    true = {b.band: 10.0 ** rng.uniform(-1.0, 3.0, n) for b in spec.bands}
    r_half = np.where(rng.uniform(size=n) < 0.3, 0.0, rng.uniform(0.1, 3.0, n))
    # A loss rate high enough to see many sentinels.
    spec = dataclasses.replace(
        spec, bands=tuple(dataclasses.replace(b, missing_fraction=0.2) for b in spec.bands)
    )
    expected = photometry_columns(
        spec, measure_photometry(spec, true, r_half, np.random.default_rng(9)), np.arange(n)
    )
    # measure_photometry's draws, per band: total noise, aperture noise, loss, aperture loss.
    again = np.random.default_rng(9)
    g_noise, u_lost = np.empty((2 * nb, n)), np.empty((2 * nb, n))
    for b in range(nb):
        g_noise[2 * b], g_noise[2 * b + 1] = again.normal(0.0, 1.0, n), again.normal(0.0, 1.0, n)
        u_lost[2 * b], u_lost[2 * b + 1] = again.uniform(size=n), again.uniform(size=n)
    depth = ab_mag_to_ujy(np.array([b.depth_5sigma_ab for b in spec.bands])) / 5.0
    vega = spec.photometry == "Vega"
    out = np.empty((4 * nb, n))
    no = np.zeros(n, bool)
    kern.photometry(
        np.arange(n), np.arange(n), no, np.ones(n), np.array([true[b.band] for b in spec.bands]),
        np.arange(nb), -1, r_half, np.zeros(n), np.ones(n), np.full(n, -1), np.ones(n),
        g_noise, u_lost, depth, 0.6 * depth,
        10.0 ** (-0.4 * np.array([b.aperture_correction_mag for b in spec.bands])),
        np.array([b.missing_fraction for b in spec.bands]),
        np.array([VEGA_TO_AB[b.band] if vega else 0.0 for b in spec.bands]),
        spec.photometry != "flux", UJY_ZEROPOINT_MAG_3631, spec.aperture_radius_arcsec,
        no, np.nan if spec.missing_value is None else float(spec.missing_value), False, out,
    )  # fmt: skip
    for k, b in enumerate(spec.bands):
        for j, col in enumerate((b.total, b.total_err, b.aperture, b.aperture_err)):
            # 1e-8: the field simulator's magnitude error factor is 1.0857362 (2.5/ln 10 rounded).
            np.testing.assert_allclose(out[4 * k + j], expected[col], rtol=1e-8, err_msg=col)
    missing = out[0] != out[0] if spec.missing_value is None else out[0] == spec.missing_value
    assert 0.1 < missing.mean() < 0.5


def test_detection_keeps_a_duplicate_only_with_its_parent():
    src = np.array([0, 1, 2, 0, 1])  # three objects, then two duplicates
    scale = np.array([1.0, 1.0, 1.0, 0.5, 0.5])
    true = np.array([100.0, 1.0, 100.0])
    g = np.zeros(5)
    bad_band = np.array([-1, -1, 0, -1, -1])
    total, sigma, keep = kern.detect(true, src, scale, g, np.ones(5), bad_band,
                                     np.array([1, 1, 1e-3, 1, 1]), 0, 2.0, 0.01)  # fmt: skip
    np.testing.assert_allclose(sigma, np.hypot(2.0, 0.01 * true[src] * scale))
    np.testing.assert_allclose(total, [100.0, 1.0, 0.1, 50.0, 0.5])
    # Object 1 is below 5 sigma, object 2 has its flux cut by a bad measurement; the
    # duplicate of 0 survives, that of 1 goes with its parent.
    assert keep.tolist() == [True, False, False, True, False]


def test_positions_equal_the_field_simulators():
    rng = np.random.default_rng(4)
    n_obj, n_dup = 500, 50
    ra, dec = rng.uniform(0, 360, n_obj), rng.uniform(-89.9, 89.9, n_obj)
    moving = rng.uniform(size=n_obj) < 0.3
    pmra = np.where(moving, rng.normal(0, 30, n_obj), 0.0)
    pmdec = np.where(moving, rng.normal(0, 30, n_obj), 0.0)
    src = np.concatenate([np.arange(n_obj), rng.integers(0, n_obj, n_dup)])
    idx = np.sort(rng.choice(n_obj + n_dup, 300, replace=False))
    sep, angle = rng.uniform(0.6, 2.0, n_dup), rng.uniform(0, 2 * np.pi, n_dup)
    g = rng.normal(size=(2, idx.size))
    spec = DEFAULT_SURVEYS[0]
    ra_k, dec_k = kern.place(idx, src, n_obj, ra, dec, pmra, pmdec, spec.epoch - TRUTH_EPOCH,
                             sep, angle, g, spec.offset_ra_arcsec, spec.offset_dec_arcsec,
                             spec.pos_sigma_arcsec)  # fmt: skip
    o = src[idx]
    r, d = positions_at_epoch(ra[o], dec[o], pmra[o], pmdec[o], spec.epoch)
    dup = idx >= n_obj
    j = idx[dup] - n_obj
    r[dup], d[dup] = offset_positions(r[dup], d[dup], sep[j] * np.sin(angle[j]),
                                      sep[j] * np.cos(angle[j]))  # fmt: skip
    r, d = offset_positions(r, d, spec.offset_ra_arcsec + spec.pos_sigma_arcsec * g[0],
                            spec.offset_dec_arcsec + spec.pos_sigma_arcsec * g[1])  # fmt: skip
    np.testing.assert_allclose(dec_k, np.clip(d, -90, 90), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ra_k, r, rtol=0, atol=1e-9)
